"""The python-telegram-bot Application: handlers that ask the chat core and render its Answer.

Handlers never search or score: they check who is asking, call ``QuoteBot.ask`` in a worker
thread (one conversation per chat, key ``tg:<chat id>``) and send what ``formatting`` made
of the answer. Polling or webhook, signals and shutdown are PTB's (see ``command.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import weakref
from collections.abc import Sequence
from typing import Any

from telegram import (
    BotCommand,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from quotebot.bot.chat import ChatCore
from quotebot.bot.filters import FILTER_COMMANDS, filter_command
from quotebot.bot.telegram import formatting
from quotebot.bot.telegram.settings import TelegramSettings
from quotebot.bot.telegram.state import (
    MORE_PATTERN,
    Allowlist,
    Clock,
    MoreState,
    MoreStore,
    QuestionLimiter,
    RefusalGate,
    more_data,
    parse_more_data,
)
from quotebot.retrieval.answer import Answer

log = logging.getLogger("quotebot.telegram")

# Telegram shows "typing…" for 5 seconds (or until the next message): renew it before it lapses.
TYPING_REFRESH_SECONDS = 4.0
# PTB's default pool; more concurrent updates than this need more connections, or requests
# wait for a free one and fail with "Pool timeout".
DEFAULT_CONNECTION_POOL = 256
MORE_BUTTON = "More"

BOT_COMMANDS = (
    BotCommand("ask", "Ask a question about the articles"),
    BotCommand("sources", "List the indexed articles"),
    BotCommand("new", "Start a new conversation"),
    BotCommand("since", "Only articles from a date on, e.g. /since 2024-05-01"),
    BotCommand("source", "Only articles from a source, e.g. /source Reuters"),
    BotCommand("filters", "Show this chat's filters"),
    BotCommand("clear", "Drop this chat's filters"),
    BotCommand("help", "How to use this bot"),
    BotCommand("start", "Say hello"),
)


def conversation_key(chat_id: int) -> str:
    return f"tg:{chat_id}"


def build_application(core: ChatCore, settings: TelegramSettings, token: str, *, clock: Clock = time.monotonic) -> Application:
    """A ready-to-run Application (``run_polling``/``run_webhook``) answering from ``core``."""
    handlers = Handlers(core, settings, clock=clock)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(_file_url(settings.api_base_url))
        .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .rate_limiter(
            AIORateLimiter(
                overall_max_rate=settings.messages_per_second,
                group_max_rate=settings.group_messages_per_minute,
                group_time_period=60,
                max_retries=settings.max_retries,
            )
        )
        .concurrent_updates(settings.concurrent_updates)
        .connection_pool_size(max(DEFAULT_CONNECTION_POOL, 2 * settings.concurrent_updates))
        .post_init(handlers.post_init)
        .build()
    )
    handlers.install(application)
    return application


def _file_url(base_url: str) -> str:
    # Telegram serves files from .../file/bot<token>; a self-hosted server mirrors that layout.
    return re.sub(r"/bot(\{token\})?$", r"/file/bot\1", base_url) if re.search(r"/bot(\{token\})?$", base_url) else base_url


class AddressedToBot(filters.MessageFilter):
    """A group message meant for the bot: it @mentions the bot or replies to one of its messages."""

    def filter(self, message: Message) -> bool:
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            return True
        for entity, text in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items():
            if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id:
                return True
            if entity.type == MessageEntity.MENTION and text[1:].lower() == (bot.username or "").lower():
                return True
        return False


class Handlers:
    """The bot's behaviour; one instance per Application, holding the per-process state."""

    def __init__(self, core: ChatCore, settings: TelegramSettings, *, clock: Clock = time.monotonic) -> None:
        self.core = core
        self.settings = settings
        self.allowlist = Allowlist.of(settings.allowed_chat_ids, settings.allowed_user_ids)
        self.limiter = QuestionLimiter(settings.questions_per_minute, clock=clock)
        self.refusals = RefusalGate(settings.refusal_window_seconds, clock=clock)
        self.more = MoreStore(settings.more_ttl_seconds, clock=clock)
        # One lock per chat: its questions are answered in order (follow-ups depend on it),
        # while other chats go on concurrently. Weak values: idle chats cost nothing.
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def install(self, application: Application) -> None:
        new_messages = filters.UpdateType.MESSAGE  # an edited question is not asked again
        private = new_messages & filters.ChatType.PRIVATE
        commands = {
            "start": self.start,
            "help": self.help,
            "ask": self.ask_command,
            "sources": self.sources,
            "new": self.new_conversation,
        }
        commands.update({name: self.filter_command for name in FILTER_COMMANDS})
        for name, callback in commands.items():
            application.add_handler(CommandHandler(name, callback, filters=new_messages))
        application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.private_text))
        application.add_handler(
            MessageHandler(
                new_messages & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND & AddressedToBot(),
                self.group_text,
            )
        )
        # Unknown commands get a hint in private chats only: in a group they may be another bot's.
        application.add_handler(MessageHandler(private & filters.COMMAND, self.unknown_command))
        application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, self.not_text))
        application.add_handler(CallbackQueryHandler(self.more_pressed, pattern=MORE_PATTERN))
        application.add_error_handler(self.on_error)

    async def post_init(self, application: Application) -> None:
        await application.bot.set_my_commands(list(BOT_COMMANDS))
        log.info("signed in as @%s; commands registered", application.bot.username)

    # -- commands ----------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            articles = len(await asyncio.to_thread(self.core.sources))
            example = await asyncio.to_thread(self.core.example_question)
            await self._reply(update, [formatting.start_message(articles, example)])

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            example = await asyncio.to_thread(self.core.example_question)
            await self._reply(update, [formatting.help_message(example, context.bot.username)])

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            # Asked each time: the bot reloads the index when `index add` publishes a new
            # generation (the core keeps the list of each generation, so this stays cheap).
            articles = await asyncio.to_thread(self.core.sources)
            await self._reply(update, formatting.sources_messages([(a.title or a.id, a.date[:10] if a.date else None) for a in articles]))

    async def new_conversation(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            self.core.forget(conversation_key(update.effective_chat.id))
            await self._reply(update, [formatting.NEW_CONVERSATION_MESSAGE])

    async def filter_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/since, /until, /source, /topic, /filters, /clear: this chat's filter (the chat core's commands)."""
        if await self._admitted(update):
            text = update.effective_message.text or ""
            command = text.split()[0].lstrip("/").split("@")[0].lower()
            key = conversation_key(update.effective_chat.id)
            reply = await asyncio.to_thread(filter_command, self.core, key, command, " ".join(context.args or []))
            await self._reply(update, [formatting.escape(reply)])

    async def ask_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        question = " ".join(context.args or [])
        if not question:
            if await self._may_reply(update):
                await self._reply(update, [formatting.ask_usage_message(await asyncio.to_thread(self.core.example_question))])
            return
        await self._answer(update, question)

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            await self._reply(update, [formatting.UNKNOWN_COMMAND_MESSAGE])

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_reply(update):
            await self._reply(update, [formatting.TEXT_ONLY_MESSAGE])

    # -- questions ---------------------------------------------------------------------------

    async def private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, update.effective_message.text or "")

    async def group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # "@quote_bot what did Herzog ask Lavrov?": the mention is an address, not part of the question.
        text = update.effective_message.text or ""
        question = re.sub(rf"@{re.escape(context.bot.username)}\b", " ", text, flags=re.IGNORECASE)
        await self._answer(update, question)

    async def _answer(self, update: Update, question: str) -> None:
        chat = update.effective_chat
        if not await self._may_reply(update):
            return
        if not question.strip():
            await self._reply(update, [formatting.ask_usage_message(await asyncio.to_thread(self.core.example_question))])
            return
        async with self._chat_lock(chat.id):
            started = time.perf_counter()
            async with _Typing(update.get_bot(), chat.id):
                # QuoteBot.ask is synchronous and CPU-bound: a thread keeps other chats moving.
                answer = await asyncio.to_thread(self.core.ask, question, conversation_key(chat.id))
            await self._send_answer(update, answer)
        log.info(
            "chat %s: %s in %.0f ms",
            chat.id,
            f"{len(answer.quotes)} quotes" if answer.answered else "not found",
            1000 * (time.perf_counter() - started),
        )

    async def _send_answer(self, update: Update, answer: Answer) -> None:
        if not answer.answered:
            await self._reply(update, [formatting.not_found_message(answer)])
            return
        pages = formatting.quote_messages(answer.quotes[:1])
        keyboard = None
        state = None
        if len(answer.quotes) > 1:
            state = MoreState(answer, shown=1, start=0, can_grow=len(pages) == 1, chat_id=update.effective_chat.id)
            keyboard = _more_keyboard(self.more.put(state), 1)
        sent = await self._reply(update, pages, keyboard)
        if state is not None and sent:
            state.message_id = sent[-1].message_id  # the button's message: only a press there counts

    # -- "More" ------------------------------------------------------------------------------

    async def more_pressed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        parsed = parse_more_data(query.data)
        if parsed is None:
            await query.answer()
            return
        chat_id = update.effective_chat.id if update.effective_chat else None  # None: an inline message
        if not self.allowlist.allows(chat_id, update.effective_user.id):
            await query.answer("Sorry, this bot is not open to you.", show_alert=True)
            return
        # Under the chat's lock: the message carrying this button may still be in flight
        # (a tap can beat the reply to sendMessage), and its id is known once that send is done.
        async with self._chat_lock(chat_id) if chat_id is not None else contextlib.nullcontext():
            await self._show_more(update, query, parsed, chat_id)

    async def _show_more(self, update: Update, query: CallbackQuery, parsed: tuple[str, int], chat_id: int | None) -> None:
        state_id, shown = parsed
        state = self.more.get(state_id)
        pressed_on = query.message.message_id if query.message is not None else None
        if state is not None and not state.belongs_to(chat_id, pressed_on):
            # Data copied to another chat or message: say no more than for an unknown id.
            await query.answer(formatting.EXPIRED_MESSAGE, show_alert=True)
            return
        if state is None:
            await query.answer(formatting.EXPIRED_MESSAGE, show_alert=True)
            await _drop_keyboard(query)
            return
        if shown != state.shown or state.finished:
            await query.answer()  # a second tap on a button whose press was already handled
            return
        plan = formatting.plan_more(state.answer.quotes, state.start, state.shown, state.can_grow)
        # Update before any await, so a concurrent second press sees the new state.
        state.start, state.shown, state.can_grow = plan.start, plan.shown, plan.can_grow
        keyboard = None if state.finished else _more_keyboard(state_id, state.shown)
        await query.answer()  # at once: the button's spinner stops and the query cannot time out
        if plan.edit is not None:
            await _edit(query, plan.edit, keyboard)
        else:
            await _drop_keyboard(query)  # the button moves to the newest message
            sent = await _send(update.get_bot(), update.effective_chat, plan.send, keyboard)
            if sent:
                state.message_id = sent[-1].message_id

    # -- plumbing ----------------------------------------------------------------------------

    async def _may_reply(self, update: Update) -> bool:
        """True if this update may get a reply: its chat is allowed and within its rate limit.

        Every reply (answers, commands, "text only", refusals) costs an outgoing message
        under Telegram's global rate limit, so none is sent without passing here.
        """
        if not await self._admitted(update):
            return False
        admission = self.limiter.admit(update.effective_chat.id)
        if not admission.allowed:
            if admission.warn:
                await self._reply(update, [formatting.slow_down_message(admission.wait_seconds)])
            return False
        return True

    async def _admitted(self, update: Update) -> bool:
        """True if the allowlist lets this chat or user in; else refuse politely, once a window."""
        chat, user = update.effective_chat, update.effective_user
        if self.allowlist.allows(chat.id, user.id if user else None):
            return True
        if self.refusals.first_in_window(chat.id):  # then silence: no reply, no log line
            log.info("refused chat %s (user %s): not on the allowlist", chat.id, user.id if user else "?")
            await self._reply(update, [formatting.refusal_message(chat.id)])
        return False

    async def _reply(
        self, update: Update, pages: Sequence[str], keyboard: InlineKeyboardMarkup | None = None
    ) -> list[Message]:
        message = update.effective_message
        # In groups the reply quotes the question, so it is clear whom it answers.
        quote = message.message_id if update.effective_chat.type != Chat.PRIVATE else None
        return await _send(update.get_bot(), update.effective_chat, pages, keyboard, reply_to=quote)

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the error in one line, tell the user if there is one, and carry on."""
        error = context.error
        where = _describe_update(update)
        log.error(
            "%s: %s: %s",
            where,
            type(error).__name__,
            error,
            exc_info=error if os.environ.get("QUOTEBOT_DEBUG") else None,
        )
        if not isinstance(update, Update) or update.effective_chat is None or isinstance(error, Forbidden):
            return  # a polling error, or a chat that blocked the bot: nobody to tell
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(formatting.ERROR_MESSAGE)
        except TelegramError:
            pass  # already answered before the error: the message below still tells them
        try:
            await update.get_bot().send_message(update.effective_chat.id, formatting.ERROR_MESSAGE)
        except TelegramError as second:
            log.error("%s: could not tell the user either: %s: %s", where, type(second).__name__, second)


class _Typing:
    """Shows "typing…" in a chat until the block ends, renewing it while the answer takes long.

    The first chat action is sent concurrently with the work, and awaited at the end, so
    it never arrives after the answer (it would then show "typing…" for five more seconds).
    """

    def __init__(self, bot: Any, chat_id: int) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self._first: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Typing:
        self._first = asyncio.create_task(self._send())
        self._renewing = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._first is not None and self._renewing is not None
        self._renewing.cancel()
        await asyncio.gather(self._first, self._renewing, return_exceptions=True)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(TYPING_REFRESH_SECONDS)
            await self._send()

    async def _send(self) -> None:
        try:
            await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
        except TelegramError as error:  # a missing typing indicator is no reason to drop the answer
            log.debug("chat %s: typing indicator failed: %s", self.chat_id, error)


def _more_keyboard(state_id: str, shown: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(MORE_BUTTON, callback_data=more_data(state_id, shown))]])


async def _send(
    bot: Any,
    chat: Chat,
    pages: Sequence[str],
    keyboard: InlineKeyboardMarkup | None = None,
    *,
    reply_to: int | None = None,
) -> list[Message]:
    """Send ``pages`` in order; the first may quote ``reply_to``, the last carries ``keyboard``."""
    sent = []
    for number, page in enumerate(pages):
        first, last = number == 0, number == len(pages) - 1
        message = await bot.send_message(
            chat.id,
            page,
            reply_parameters=(
                ReplyParameters(reply_to, allow_sending_without_reply=True) if first and reply_to else None
            ),
            reply_markup=keyboard if last else None,
        )
        sent.append(message)
    return sent


async def _edit(query: Any, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as error:
        if not _not_modified(error):
            raise


async def _drop_keyboard(query: Any) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if not _not_modified(error):
            raise


def _not_modified(error: BadRequest) -> bool:
    # Telegram refuses an edit that changes nothing (a double tap, a retried request): harmless.
    return "message is not modified" in error.message.lower()


def _describe_update(update: object) -> str:
    if isinstance(update, Update):
        chat = update.effective_chat
        return f"update {update.update_id}" + (f" in chat {chat.id}" if chat else "")
    return "polling" if update is None else type(update).__name__
