"""A fake Telegram Bot API server on 127.0.0.1 for running the real PTB stack offline.

Standard library only: ``ThreadingHTTPServer`` speaking the Bot API's HTTP contract
(``POST /bot<token>/<method>``, form or JSON bodies, ``{"ok": ..., "result": ...}`` replies,
errors by HTTP status with ``description`` and ``parameters.retry_after``).

Tests inject updates (``inject_message``, ``inject_callback``), which the bot fetches with
getUpdates (long polling) like from Telegram, and wait for the bot's calls (``wait_for``).
Faults are injected with ``fail_next``. Like Telegram it refuses invalid HTML, texts over
4096 UTF-16 units, callback_data over 64 bytes, unknown chats, edits that change nothing,
and answering a callback query twice. It is stricter than Telegram in two ways, so that
bugs show: a bare "&" in HTML is refused, and so are more than 100 entities (Telegram
silently drops their formatting).
"""

from __future__ import annotations

import html.parser
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

TOKEN = "123456:TEST"
BOT_ID = 123456
BOT_USERNAME = "quote_test_bot"
MAX_TEXT_UTF16 = 4096
MAX_ENTITIES = 100
MAX_CALLBACK_DATA_BYTES = 64
DEFAULT_WAIT_SECONDS = 30.0

# Form fields that are plain strings; every other field is JSON-decoded (PTB's encoding).
_STRING_FIELDS = {
    "text", "parse_mode", "action", "callback_query_id", "url", "secret_token", "data",
    "inline_message_id", "business_connection_id", "message_effect_id", "language_code",
}  # fmt: skip
_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "span",
    "a", "code", "pre", "blockquote", "tg-emoji", "tg-time",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Call:
    """One request the bot made, with what the fake answered."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int = 200
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return self.params.get("text", "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


@dataclass
class _Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None


@dataclass
class _SentMessage:
    chat: dict[str, Any]
    message_id: int
    html: str
    text: str
    reply_markup: Any
    from_bot: bool


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    reply_delays: dict[str, float] = field(default_factory=dict)  # method -> seconds, once
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[tuple[int, int], _SentMessage] = field(default_factory=dict)
    open_queries: set[str] = field(default_factory=set)
    confirmed_offset: int = 0
    started: dict[str, int] = field(default_factory=dict)  # requests begun, by method (calls are logged when done)
    webhook: dict[str, Any] | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)


class FakeBotApi:
    """The fake server. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, token: str = TOKEN, *, bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Quote Bot", "username": username}
        self._state = _State()
        self._changed = threading.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval: shutdown() waits for it, every test teardown would pay 0.5 s.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._closing = True  # long polls return at once
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """PTB's base_url form: the bot appends its token."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- injecting updates ---------------------------------------------------------------------

    def inject_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """Queue a user's text message for getUpdates; returns the message."""
        update = self.message_update(
            chat_id, text, user_id=user_id, chat_type=chat_type, reply_to_message_id=reply_to_message_id
        )
        self.inject(update)
        return update["message"]

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's text message update as Telegram delivers it, not yet queued.

        A leading /command gets its bot_command entity and @words get mention entities,
        because PTB's CommandHandler and mention filters read entities, not the text.
        """
        user_id = user_id if user_id is not None else (chat_id if chat_type == "private" else 1)
        chat = self._chat(chat_id, chat_type)
        with self._changed:
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
                "text": text,
            }
            entities = _entities(text)
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None:
                message["reply_to_message"] = self._message_json(chat_id, reply_to_message_id)
            self._remember(chat, message["message_id"], text, text, None, from_bot=False)
        return {"message": message}

    def inject_callback(self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None) -> str:
        """Queue a press on an inline button of the bot's message; returns the callback query id."""
        update = self.callback_update(chat_id, message_id, data, user_id=user_id)
        self.inject(update)
        return update["callback_query"]["id"]

    def callback_update(self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None) -> dict[str, Any]:
        """A button press update, not yet queued (the query can be answered once)."""
        user_id = chat_id if user_id is None else user_id
        with self._changed:
            query_id = f"q{next(self._query_ids)}"
            self._state.open_queries.add(query_id)
            message = self._message_json(chat_id, message_id)
        return {
            "callback_query": {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            }
        }

    def inject(self, update: dict[str, Any]) -> int:
        """Queue any update (an ``update_id`` is added); returns the update id."""
        return self.inject_many([update])[0]

    def inject_many(self, updates: list[dict[str, Any]]) -> list[int]:
        """Queue updates at once, so one getUpdates can fetch them together."""
        with self._changed:
            ids = []
            for update in updates:
                update = {"update_id": next(self._update_ids), **update}
                self._state.updates.append(update)
                ids.append(update["update_id"])
            self._changed.notify_all()
        return ids

    # -- observing the bot ---------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the call log: ``wait_for(..., since=mark)`` looks only at later calls."""
        with self._changed:
            return len(self._state.calls)

    def calls(
        self,
        method: str | None = None,
        *,
        chat_id: int | None = None,
        since: int = 0,
        ok: bool | None = None,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        with self._changed:
            return self._matching(method, chat_id, since, ok, where)

    def wait_for(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        since: int = 0,
        ok: bool | None = True,
        where: Callable[[Call], bool] | None = None,
        count: int = 1,
        timeout: float = DEFAULT_WAIT_SECONDS,
    ) -> list[Call]:
        """Block until ``count`` matching calls were made; returns them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._matching(method, chat_id, since, ok, where)
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.chat_id, c.status) for c in self._state.calls[since:]][-20:]
                    raise AssertionError(f"timed out waiting for {count} {method} (chat {chat_id}); last calls: {seen}")
                self._changed.wait(left)

    def _matching(
        self,
        method: str | None,
        chat_id: int | None,
        since: int,
        ok: bool | None,
        where: Callable[[Call], bool] | None,
    ) -> list[Call]:
        return [
            call
            for call in self._state.calls[since:]
            if (method is None or call.method == method)
            and (chat_id is None or call.chat_id == chat_id)
            and (ok is None or call.ok == ok)
            and (where is None or where(call))
        ]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = DEFAULT_WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for the fake's state")
                self._changed.wait(left)

    def started(self, method: str) -> int:
        """How many ``method`` requests have begun (a long poll is logged only when it returns)."""
        with self._changed:
            return self._state.started.get(method, 0)

    @property
    def confirmed_offset(self) -> int:
        """Updates below this id were confirmed by the bot's getUpdates offset (fetched and done)."""
        with self._changed:
            return self._state.confirmed_offset

    @property
    def webhook(self) -> dict[str, Any] | None:
        with self._changed:
            return self._state.webhook

    @property
    def commands(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._state.commands)

    def message(self, chat_id: int, message_id: int) -> _SentMessage:
        with self._changed:
            return self._state.messages[(chat_id, message_id)]

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        *,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next ``method`` call (in ``chat_id``, if given) with this error instead."""
        with self._changed:
            self._state.faults.append(_Fault(method, status, description, retry_after, chat_id))

    def delay_next_reply(self, method: str, seconds: float) -> None:
        """Log the next ``method`` call at once but hold its HTTP reply ``seconds``.

        The call is visible to the test before the bot has its result: a user can tap a
        button the moment it shows, while the bot still waits for the reply that sent it.
        """
        with self._changed:
            self._state.reply_delays[method] = seconds

    # -- serving (called by the HTTP handler threads) ------------------------------------------

    def handle(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        call = Call(method, params, time.monotonic())
        with self._changed:
            self._state.started[method] = self._state.started.get(method, 0) + 1
            self._changed.notify_all()
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            self._raise_fault(method, params)
            if method == "getUpdates":
                result = self._get_updates(params)  # may block: never under the lock
            else:
                with self._changed:
                    result = self._dispatch(method, params)
            call.result = result
            body = {"ok": True, "result": result}
        except ApiError as error:
            call.status, call.error = error.status, error.description
            body = error.body()
        with self._changed:
            self._state.calls.append(call)
            self._changed.notify_all()
            delay = self._state.reply_delays.pop(method, 0.0)
        time.sleep(delay)  # outside the lock: only this reply waits
        return call.status, body

    def _raise_fault(self, method: str, params: dict[str, Any]) -> None:
        with self._changed:
            for fault in self._state.faults:
                if fault.method == method and fault.chat_id in (None, params.get("chat_id")):
                    self._state.faults.remove(fault)
                    raise ApiError(fault.status, fault.description, fault.retry_after)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self._changed:
            if self._state.webhook:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
            if offset:
                # The offset confirms every update below it: Telegram forgets them.
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
                self._state.confirmed_offset = max(self._state.confirmed_offset, offset)
                self._changed.notify_all()
            while True:
                pending = [u for u in self._state.updates if u["update_id"] >= offset][:limit]
                left = deadline - time.monotonic()
                if pending or left <= 0 or self._closing:
                    return pending
                self._changed.wait(left)

    def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params)

    # -- the methods (under the lock) ----------------------------------------------------------

    def _api_getMe(self, params: dict[str, Any]) -> Any:  # noqa: N802 (Bot API names)
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False}

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:  # noqa: N802
        self._state.webhook = None
        if params.get("drop_pending_updates"):
            self._state.updates.clear()
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> Any:  # noqa: N802
        secret = params.get("secret_token")
        if secret is not None and not (1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)):
            raise bad_request("secret token contains unallowed characters")
        if not params.get("url"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self._state.webhook = dict(params)
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:  # noqa: N802
        webhook = self._state.webhook or {}
        return {"url": webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    def _api_setMyCommands(self, params: dict[str, Any]) -> Any:  # noqa: N802
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be a list of at most 100")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not (1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._state.commands = commands
        return True

    def _api_sendChatAction(self, params: dict[str, Any]) -> Any:  # noqa: N802
        self._known_chat(params.get("chat_id"))
        if params.get("action") not in {"typing", "upload_photo", "record_video", "upload_document", "find_location"}:
            raise bad_request("wrong parameter action in request")
        return True

    def _api_sendMessage(self, params: dict[str, Any]) -> Any:  # noqa: N802
        chat = self._known_chat(params.get("chat_id"))
        text = self._checked_text(params)
        _check_markup(params.get("reply_markup"))
        reply = params.get("reply_parameters")
        if reply and (chat["id"], reply.get("message_id")) not in self._state.messages:
            if not reply.get("allow_sending_without_reply"):
                raise bad_request("message to be replied not found")
        message_id = next(self._message_ids)
        self._remember(chat, message_id, params["text"], text, params.get("reply_markup"), from_bot=True)
        return self._message_json(chat["id"], message_id)

    def _api_editMessageText(self, params: dict[str, Any]) -> Any:  # noqa: N802
        sent = self._editable(params)
        text = self._checked_text(params)
        _check_markup(params.get("reply_markup"))
        if text == sent.text and params["text"] == sent.html and params.get("reply_markup") == sent.reply_markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        sent.html, sent.text, sent.reply_markup = params["text"], text, params.get("reply_markup")
        return self._message_json(sent.chat["id"], sent.message_id)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:  # noqa: N802
        sent = self._editable(params)
        _check_markup(params.get("reply_markup"))
        if params.get("reply_markup") == sent.reply_markup or (not params.get("reply_markup") and not sent.reply_markup):
            raise bad_request("message is not modified: specified new message content and reply markup are exactly the same")
        sent.reply_markup = params.get("reply_markup")
        return self._message_json(sent.chat["id"], sent.message_id)

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:  # noqa: N802
        query_id = params.get("callback_query_id")
        if query_id not in self._state.open_queries:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(params.get("text") or "") > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._state.open_queries.discard(query_id)
        return True

    # -- helpers -------------------------------------------------------------------------------

    def _chat(self, chat_id: int, chat_type: str) -> dict[str, Any]:
        with self._changed:
            chat = {"id": chat_id, "type": chat_type}
            chat.update({"first_name": f"User{chat_id}"} if chat_type == "private" else {"title": f"Group {chat_id}"})
            self._state.chats[chat_id] = chat
            return chat

    def _known_chat(self, chat_id: Any) -> dict[str, Any]:
        chat = self._state.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _checked_text(self, params: dict[str, Any]) -> str:
        """The text as Telegram would show it, after checking it like Telegram does."""
        raw = params.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise bad_request("message text is empty")
        if params.get("parse_mode") == "HTML":
            text, entities = parse_html(raw)
        elif params.get("parse_mode"):
            raise bad_request(f"unsupported parse_mode {params['parse_mode']} (the fake knows HTML only)")
        else:
            text, entities = raw, len(params.get("entities") or [])
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        if entities > MAX_ENTITIES:
            raise bad_request(f"too many entities ({entities}; the fake refuses what Telegram would drop)")
        return text

    def _editable(self, params: dict[str, Any]) -> _SentMessage:
        if params.get("inline_message_id"):
            raise bad_request("the fake does not support inline messages")
        sent = self._state.messages.get((params.get("chat_id"), params.get("message_id")))
        if sent is None:
            raise bad_request("message to edit not found")
        if not sent.from_bot:
            raise bad_request("message can't be edited")
        return sent

    def _remember(self, chat: dict[str, Any], message_id: int, raw: str, text: str, markup: Any, *, from_bot: bool) -> None:
        self._state.messages[(chat["id"], message_id)] = _SentMessage(chat, message_id, raw, text, markup, from_bot)

    def _message_json(self, chat_id: int, message_id: int) -> dict[str, Any]:
        sent = self._state.messages.get((chat_id, message_id))
        if sent is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        sender = self.bot_user if sent.from_bot else {"id": chat_id, "is_bot": False, "first_name": "User"}
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),  # date 0 would make PTB see an InaccessibleMessage
            "chat": sent.chat,
            "from": sender,
            "text": sent.text,
        }
        if sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message


# -- HTML as Telegram reads it --------------------------------------------------------------


class _TelegramHtml(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.open: list[str] = []
        self.entities = 0
        self.error: str | None = None

    def fail(self, message: str) -> None:
        self.error = self.error or message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.fail(f'Unsupported start tag "{tag}"')
        if tag == "blockquote" and "blockquote" in self.open:
            self.fail("Blockquote entities can't be nested")
        if tag == "a" and not dict(attrs).get("href"):
            self.fail("Can't find href in the a tag")
        self.open.append(tag)
        self.entities += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.fail(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.fail(f'Unmatched end tag "{tag}"')
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        if "&" in data:
            self.fail("Character '&' must be escaped as &amp;")
        if "<" in data or ">" in data:
            self.fail("Unsupported character '<' or '>' in text: escape it")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED_ENTITIES:
            self.fail(f'Unsupported HTML entity "&{name};"')
        self.text.append(_NAMED_ENTITIES.get(name, ""))

    def handle_charref(self, name: str) -> None:
        try:
            self.text.append(chr(int(name[1:], 16) if name[:1] in "xX" else int(name)))
        except ValueError:
            self.fail(f"Bad character reference &#{name};")

    def unknown_decl(self, data: str) -> None:
        self.fail("Unsupported declaration")

    def handle_comment(self, data: str) -> None:
        self.fail("Unsupported comment")


def parse_html(markup: str) -> tuple[str, int]:
    """(visible text, entity count) of Telegram HTML; ApiError 400 like Telegram's when invalid."""
    parser = _TelegramHtml()
    parser.feed(markup)
    parser.close()
    if parser.rawdata:  # HTMLParser keeps an unfinished "<b" or "&amp" here
        parser.fail("Unclosed tag or entity at the end of the text")
    if parser.open and not parser.error:
        parser.fail(f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
    if parser.error:
        raise bad_request(f"can't parse entities: {parser.error}")
    return "".join(parser.text), parser.entities


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_markup(markup: Any) -> None:
    if not markup:
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise bad_request("BUTTON_TEXT_EMPTY")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities (offsets in UTF-16 units), as Telegram marks them."""
    entities = []
    position = 0
    for word in text.split(" "):
        length = utf16_len(word)
        if word.startswith("/") and position == 0 and len(word) > 1:
            entities.append({"type": "bot_command", "offset": 0, "length": length})
        elif word.startswith("@") and len(word) > 1:
            entities.append({"type": "mention", "offset": position, "length": length})
        position += length + 1
    return entities


# -- HTTP -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    # http.server writes headers and body separately: with Nagle and delayed ACKs every
    # request stalls ~40 ms.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self._serve()

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        fake: FakeBotApi = self.server.fake  # type: ignore[attr-defined]
        try:
            token, method = self._route()
            status, body = fake.handle(token, method, self._params())
        except ApiError as error:
            status, body = error.status, error.body()
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            # PTB cancels its long poll on shutdown: the client is gone, nothing to report.
            self.close_connection = True

    def _route(self) -> tuple[str, str]:
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            raise ApiError(404, "Not Found")
        return parts[0][3:], parts[1]

    def _params(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if not body:
            return {}
        if kind == "application/json":
            return json.loads(body)
        if kind != "application/x-www-form-urlencoded":
            raise bad_request(f"the fake does not accept {kind or 'this body'} (no file uploads)")
        params: dict[str, Any] = {}
        for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
            params[name] = value if name in _STRING_FIELDS else _json_or_str(value)
        return params

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: test output is for failures


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
