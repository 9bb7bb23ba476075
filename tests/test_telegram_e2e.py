"""`quotebot telegram` end to end: the real CLI in a subprocess, the real PTB stack, a fake Bot API.

One bot process serves all the polling tests (starting one costs seconds) and one more the
webhook tests; each test talks in chats of its own. Nothing here touches the network:
the fake Bot API and the webhook listen on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from quotebot.bot import wiring
from quotebot.bot.render import NOT_FOUND
from quotebot.bot.settings import Settings
from quotebot.bot.telegram import formatting
from quotebot.index.articles import Article
from quotebot.index.embedding import Embedder
from quotebot.index.loaders import load_articles
from quotebot.index.onnx_encoder import encoder_dir
from tests.fake_bot_api import BOT_ID, BOT_USERNAME, Call, FakeBotApi, parse_html

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TOKEN = "123456:TEST"
GROUP = -100500
OTHER_GROUP = -100999
STRANGER = 666
WEBHOOK_SECRET = "s3cret_TOKEN-1"
HERZOG = "What did Herzog ask Lavrov?"
BLIND_EYE = "not to turn ‘a blind eye’ to Iran’s hostile activities"
# Answered by two quotes (the "blind eye" one first): the "More" button shows the second.
HERZOG_ON_IRAN = "What did Herzog say about Iran?"

MARKUP_TITLE = "Bold <b> tags & entities"
MARKUP_TEXT = (
    "Web designers met in Tallinn to talk about markup.\n\n"
    "The designer Zorblat Quenth explained that the <b> tag makes text bold & the <i> tag makes it italic, "
    "and that a stray </b> breaks pages.\n\nThe meeting ended early."
)
MARKUP_URL = "https://example.org/markup?a=1&b=2"
_WORDS = "amber basalt cobalt dune ember fjord garnet harbor iris jade kelp lichen marble nectar onyx pebble".split()
# One sentence of ~8,600 characters (with emoji, two UTF-16 units each) and no comma to cut
# it at: it is quoted whole, and no message holds it.
LONG_SENTENCE = "The Quillfeather expedition catalogued " + " and ".join(
    f"the {_WORDS[i % len(_WORDS)]} specimen number {i} 🦋" for i in range(260)
) + "."
# The article is that one sentence: a shorter neighbour would rightly be quoted first.
LONG_TEXT = LONG_SENTENCE


# -- the bot under test ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder, settings: Settings) -> Path:
    """The seed article plus one with HTML-like text and one with a sentence too long for a message."""
    index_dir = tmp_path_factory.mktemp("telegram-index")
    # The query encoder export depends only on the model: reuse the seed index's instead of exporting again.
    shutil.copytree(encoder_dir(seed_index_dir, settings.index.model), encoder_dir(index_dir, settings.index.model))
    articles = load_articles([SEEDS]).articles + [
        Article(id="markup.txt", title=MARKUP_TITLE, text=MARKUP_TEXT, url=MARKUP_URL, date="2024-05-02",
                source="Example Wire"),
        Article(id="quillfeather.txt", title="The Quillfeather expedition", text=LONG_TEXT, date="2024-06-01"),
    ]
    wiring.new_builder(settings.index, embedder, index_dir=index_dir).build(articles, index_dir)
    return index_dir


@dataclass
class BotProcess:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_bot(fake: FakeBotApi, index_dir: Path, workdir: Path, *args: str, ready: str) -> BotProcess:
    config = workdir / "config.yaml"
    config.write_text(
        "telegram:\n"
        "  allowed_user_ids: [" + ", ".join(str(user) for user in range(1001, 1100)) + "]\n"
        f"  allowed_chat_ids: [{GROUP}]\n"
        "  poll_timeout_seconds: 2\n"
        "  max_retries: 2\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUOTEBOT_", "TELEGRAM_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        QUOTEBOT_TELEGRAM_API_BASE_URL=fake.base_url,  # the single-underscore alias the issue names
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    log = workdir / "bot.log"
    before = fake.started(ready)
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "quotebot.bot.cli", "telegram", "--config", str(config), "--index-dir", str(index_dir), *args],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(process, log)
    deadline = time.monotonic() + 120
    while fake.started(ready) <= before:
        if process.poll() is not None or time.monotonic() > deadline:
            bot.stop()
            pytest.fail(f"the bot did not start (exit code {process.returncode}):\n{bot.output()}")
        time.sleep(0.05)
    return bot


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBotApi]:
    with FakeBotApi(TOKEN, bot_id=BOT_ID, username=BOT_USERNAME) as server:
        yield server


@pytest.fixture(scope="module")
def polling_bot(fake: FakeBotApi, corpus_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    bot = start_bot(fake, corpus_index, tmp_path_factory.mktemp("polling"), ready="getUpdates")
    yield bot
    bot.stop()


def ask(fake: FakeBotApi, chat_id: int, text: str, *, count: int = 1, **message: object) -> list[Call]:
    """Send ``text`` in a chat and return the bot's next ``count`` messages there."""
    mark = fake.mark()
    fake.inject_message(chat_id, text, **message)
    return fake.wait_for("sendMessage", chat_id=chat_id, since=mark, count=count)


def visible(call: Call) -> str:
    return parse_html(call.text)[0]


# -- polling -------------------------------------------------------------------------------


def test_starts_with_commands_registered_and_polls(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    assert [call.method for call in fake.calls()][:3] == ["getMe", "setMyCommands", "deleteWebhook"]
    assert fake.started("getUpdates") >= 1
    assert {"ask", "sources", "help", "start"} <= {command["command"] for command in fake.commands}


def test_question_gets_typing_then_the_quote_in_a_blockquote(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    mark = fake.mark()
    [reply] = ask(fake, 1001, HERZOG_ON_IRAN)
    assert reply.params["parse_mode"] == "HTML"
    assert reply.text.startswith("<blockquote>") and BLIND_EYE in visible(reply)
    assert "<i>— Russia and Israel resume military cooperation in Syria, paragraph 1</i>" in reply.text
    [button] = reply.buttons
    assert button["text"] == "More" and len(button["callback_data"].encode()) <= 64
    methods = [call.method for call in fake.calls(chat_id=1001, since=mark)]
    assert methods.index("sendChatAction") < methods.index("sendMessage")
    assert fake.calls("sendChatAction", chat_id=1001, since=mark)[0].params["action"] == "typing"


def test_more_shows_the_next_passages_until_there_are_none(
    polling_bot: BotProcess, fake: FakeBotApi, corpus_index: Path, embedder: Embedder
) -> None:
    # How many passages answer is the chat core's to say (only quotes that answer are
    # shown); the bot must show them one "More" at a time and then offer no more.
    answering = len(wiring.new_bot(Settings(), corpus_index, embedder=embedder).ask(HERZOG_ON_IRAN).quotes)
    assert answering >= 2
    [reply] = ask(fake, 1002, HERZOG_ON_IRAN)
    assert reply.text.count("<blockquote>") == 1
    message_id = reply.result["message_id"]
    data = reply.buttons[0]["callback_data"]
    for shown in range(2, answering + 1):
        mark = fake.mark()
        fake.inject_callback(1002, message_id, data)
        [edit] = fake.wait_for("editMessageText", chat_id=1002, since=mark)
        methods = [call.method for call in fake.calls(since=mark) if call.method != "getUpdates"]
        assert methods.index("answerCallbackQuery") < methods.index("editMessageText")
        assert edit.text.count("<blockquote>") == shown and BLIND_EYE in visible(edit)
        data = edit.buttons[0]["callback_data"] if edit.buttons else None
    assert data is None, "every passage that answers is shown: no more button"
    # A stale button pressed again: the query is answered, nothing changes.
    mark = fake.mark()
    fake.inject_callback(1002, message_id, reply.buttons[0]["callback_data"])
    fake.wait_for("answerCallbackQuery", since=mark)
    assert not fake.calls("editMessageText", chat_id=1002, since=mark)
    assert not fake.calls("sendMessage", chat_id=1002, since=mark)


def test_more_tapped_before_the_bot_has_its_reply_still_shows_more(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    # The button shows as soon as Telegram has the message; the bot learns the message's id
    # only from the reply to sendMessage, here held back a second.
    fake.delay_next_reply("sendMessage", 1.0)
    [reply] = ask(fake, 1006, HERZOG_ON_IRAN)
    mark = fake.mark()
    fake.inject_callback(1006, reply.result["message_id"], reply.buttons[0]["callback_data"])
    [edit] = fake.wait_for("editMessageText", chat_id=1006, since=mark)
    assert edit.text.count("<blockquote>") == 2
    [answered] = fake.calls("answerCallbackQuery", since=mark)
    assert "text" not in answered.params, "no 'expired' alert"


def test_follow_up_questions_work_per_chat(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    ask(fake, 1003, HERZOG)
    [follow_up] = ask(fake, 1003, "and what did he say about Hezbollah?")
    assert "violation of the border between us and Lebanon, by Hezbollah" in visible(follow_up)


def test_unanswerable_question_gets_a_short_honest_reply(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    [reply] = ask(fake, 1004, "What is the capital of Australia?")
    assert reply.text == NOT_FOUND and not reply.buttons


def test_start_help_and_sources(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    # The example is about an article of this index (the newest; none is dated here, so the last).
    example = 'What is "The Quillfeather expedition" about?'
    [start] = ask(fake, 1005, "/start")
    assert example in start.text and "3 news articles" in start.text and "Herzog" not in start.text
    [help_] = ask(fake, 1005, "/help")
    assert "/ask" in help_.text and "/sources" in help_.text and f"@{BOT_USERNAME}" in help_.text
    assert example in help_.text
    [sources] = ask(fake, 1005, "/sources")
    assert "Russia and Israel resume military cooperation in Syria" in sources.text
    assert "Bold &lt;b&gt; tags &amp; entities" in sources.text
    [usage] = ask(fake, 1005, "/ask")
    assert f"/ask {example}" in usage.text
    [answer] = ask(fake, 1005, f"/ask {HERZOG}")
    assert BLIND_EYE in visible(answer)
    [unknown] = ask(fake, 1005, "/frobnicate")
    assert unknown.text == formatting.UNKNOWN_COMMAND_MESSAGE


def test_group_answers_commands_mentions_and_replies_and_ignores_the_rest(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    mark = fake.mark()
    chatter = fake.inject_message(GROUP, "hello everyone, what did Herzog ask Lavrov?", chat_type="supergroup", user_id=1010)
    fake.inject_message(GROUP, f"/ask@other_bot {HERZOG}", chat_type="supergroup", user_id=1010)

    question = fake.inject_message(GROUP, f"/ask@{BOT_USERNAME} {HERZOG}", chat_type="supergroup", user_id=1010)
    [answer] = fake.wait_for("sendMessage", chat_id=GROUP, since=mark)
    assert BLIND_EYE in visible(answer)
    assert answer.params["reply_parameters"]["message_id"] == question["message_id"]

    [mention] = ask(fake, GROUP, f"@{BOT_USERNAME} which plane was shot down?", chat_type="supergroup", user_id=1011)
    assert "Il-20" in mention.text
    [reply] = ask(
        fake, GROUP, "who should meet Putin again?", chat_type="supergroup", user_id=1012,
        reply_to_message_id=answer.result["message_id"],
    )  # fmt: skip
    assert "Netanyahu and President Putin" in visible(reply)
    [plain] = ask(fake, GROUP, "/ask which plane was shot down?", chat_type="supergroup", user_id=1012)
    assert "Il-20" in plain.text

    sent = fake.calls("sendMessage", chat_id=GROUP, since=mark)
    assert len(sent) == 4, "the chatter and /ask@other_bot get no answer"
    assert all(call.params["reply_parameters"]["message_id"] != chatter["message_id"] for call in sent)


def test_article_markup_is_escaped(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    [reply] = ask(fake, 1006, "What did Zorblat explain about the bold tag?")
    # The article's markup arrives escaped; the only real <b> tags mark the answer inside the quote.
    assert "the &lt;b&gt; tag makes text bold &amp; the &lt;i&gt; tag" in reply.text.replace("<b>", "").replace("</b>", "")
    assert "a stray &lt;/b&gt; breaks pages" in reply.text
    # The title links to the article (the URL escaped as an attribute) and the date follows it.
    assert ('<i>— <a href="https://example.org/markup?a=1&amp;b=2">Bold &lt;b&gt; tags &amp; entities</a> '
            "(2024-05-02), paragraph ") in reply.text
    assert "the <b> tag makes text bold & the <i> tag" in visible(reply)  # what the user reads


def test_filters_hold_per_chat(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    [reply] = ask(fake, 1020, "/source example wire")
    assert visible(reply) == "Answering from 1 article from example wire (of 3)."
    [inside] = ask(fake, 1020, "What did Zorblat explain about the bold tag?")
    assert "a stray &lt;/b&gt; breaks pages" in inside.text
    [outside] = ask(fake, 1020, HERZOG)  # the Herzog article is not from Example Wire
    assert BLIND_EYE not in outside.text
    [other_chat] = ask(fake, 1021, HERZOG)  # another chat has no filter
    assert BLIND_EYE in visible(other_chat)
    [bounded] = ask(fake, 1020, "/since 2030-01-01")
    assert visible(bounded).startswith("No articles from example wire since 2030-01-01 (of 3 indexed).")
    [nothing] = ask(fake, 1020, "What did Zorblat explain about the bold tag?")
    assert visible(nothing) == "No articles from example wire since 2030-01-01."
    [shown] = ask(fake, 1020, "/filters")
    assert "since 2030-01-01" in visible(shown)
    [cleared] = ask(fake, 1020, "/clear")
    assert visible(cleared) == "Filters cleared. No filters: answering from all 3 articles."
    [again] = ask(fake, 1020, HERZOG)
    assert BLIND_EYE in visible(again)


def test_very_long_answer_is_split_into_valid_messages(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    mark = fake.mark()
    fake.inject_message(1007, "What did the Quillfeather expedition catalogue?")
    # The fake refuses any message over 4096 UTF-16 units or with broken HTML: all were accepted.
    # The last part carries the source line (and the "more" button, when more quotes answer).
    fake.wait_for("sendMessage", chat_id=1007, since=mark, where=lambda call: "— The Quillfeather expedition" in visible(call))
    parts = fake.calls("sendMessage", chat_id=1007, since=mark)
    assert len(parts) >= 3 and all(part.ok for part in parts)
    assert not fake.calls("sendMessage", chat_id=1007, since=mark, ok=False)
    for part in parts:
        text = visible(part)
        assert len(text.encode("utf-16-le")) // 2 <= 4096
        assert part.text.startswith("<blockquote expandable>")
    assert "— The Quillfeather expedition (2024-06-01), paragraph " in visible(parts[-1])
    assert not any(part.buttons for part in parts[:-1])  # a button only ever under the last part
    quoted = " ".join(visible(part).split("\n— ")[0] for part in parts)
    assert quoted == LONG_SENTENCE


def test_429_is_retried_and_the_answer_delivered(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, chat_id=1008)
    [reply] = ask(fake, 1008, HERZOG)
    assert BLIND_EYE in visible(reply)
    [refused] = fake.calls("sendMessage", chat_id=1008, ok=False)
    assert refused.status == 429 and refused.at < reply.at


def test_500_on_send_message_is_survived(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    fake.fail_next("sendMessage", 500, "Internal Server Error", chat_id=1009)
    [apology] = ask(fake, 1009, HERZOG)
    assert apology.text == formatting.ERROR_MESSAGE
    [answer] = ask(fake, 1009, HERZOG)
    assert BLIND_EYE in visible(answer)
    assert polling_bot.process.poll() is None


def test_unauthorised_chats_are_refused_politely(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    [refusal] = ask(fake, STRANGER, HERZOG)
    assert "Sorry" in refusal.text and str(STRANGER) in refusal.text and "<blockquote>" not in refusal.text
    [group_refusal] = ask(fake, OTHER_GROUP, f"/ask {HERZOG}", chat_type="group", user_id=STRANGER)
    assert str(OTHER_GROUP) in group_refusal.text
    # An allowed user is answered in any chat, e.g. a group not on the list.
    [allowed] = ask(fake, OTHER_GROUP, f"/ask {HERZOG}", chat_type="group", user_id=1013)
    assert BLIND_EYE in visible(allowed)


def test_sigterm_stops_cleanly_and_the_log_keeps_the_token_out(polling_bot: BotProcess, fake: FakeBotApi) -> None:
    mark = fake.mark()
    assert polling_bot.stop() == 0
    output = polling_bot.output()
    assert TOKEN not in output and "bot123456" not in output
    assert "Traceback" not in output
    assert "stopped" in output.splitlines()[-1]
    # PTB confirms the last offset with a final getUpdates(timeout=0) on the way out.
    assert any(call.params.get("timeout") in (0, None) for call in fake.calls("getUpdates", since=mark))


@pytest.mark.parametrize(
    ("token", "reachable", "code", "message"),
    [
        ("999:WRONG", True, 2, "the Bot API rejected the bot token"),
        (TOKEN, False, 1, "cannot start the bot: NetworkError"),
    ],
)
def test_startup_failures_are_one_line_errors(
    corpus_index: Path, tmp_path: Path, token: str, reachable: bool, code: int, message: str
) -> None:
    with FakeBotApi(TOKEN) as server:
        base_url = server.base_url if reachable else f"http://127.0.0.1:{free_port()}/bot"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUOTEBOT_", "TELEGRAM_"))}
        env.update(TELEGRAM_BOT_TOKEN=token, QUOTEBOT_TELEGRAM__API_BASE_URL=base_url, NO_PROXY="127.0.0.1")
        result = subprocess.run(
            [sys.executable, "-m", "quotebot.bot.cli", "telegram", "--index-dir", str(corpus_index)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"quotebot: error: {message}")
    assert token not in result.stderr and "Traceback" not in result.stderr


# -- webhook -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def webhook_bot(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BotProcess, FakeBotApi, str]]:
    port = free_port()
    with FakeBotApi(TOKEN, bot_id=BOT_ID, username=BOT_USERNAME) as server:
        bot = start_bot(
            server,
            corpus_index,
            tmp_path_factory.mktemp("webhook"),
            "--webhook", "--listen", "127.0.0.1", "--port", str(port), "--url-path", "hook",
            "--webhook-url", "https://bot.example/hook", "--secret-token", WEBHOOK_SECRET,
            ready="setWebhook",
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/hook"
        _wait_listening(port)
        yield bot, server, url
        bot.stop()


def _wait_listening(port: int) -> None:
    # setWebhook is called just before the server starts listening.
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def post_update(url: str, update: dict, secret: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return httpx.post(url, content=json.dumps(update), headers=headers, timeout=10, trust_env=False)


def test_webhook_answers_updates_carrying_the_secret(webhook_bot: tuple[BotProcess, FakeBotApi, str]) -> None:
    bot, fake, url = webhook_bot
    assert fake.webhook is not None
    assert fake.webhook["url"] == "https://bot.example/hook" and fake.webhook["secret_token"] == WEBHOOK_SECRET
    assert not fake.calls("getUpdates")
    mark = fake.mark()
    response = post_update(url, {"update_id": 1, **fake.message_update(1020, HERZOG)}, WEBHOOK_SECRET)
    assert response.status_code == 200
    [reply] = fake.wait_for("sendMessage", chat_id=1020, since=mark)
    assert BLIND_EYE in visible(reply)


@pytest.mark.parametrize("secret", ["wrong-secret", None])
def test_webhook_refuses_a_wrong_or_missing_secret(webhook_bot: tuple[BotProcess, FakeBotApi, str], secret: str | None) -> None:
    bot, fake, url = webhook_bot
    response = post_update(url, {"update_id": 2, **fake.message_update(1021, HERZOG)}, secret)
    assert response.status_code == 403


def test_webhook_stops_cleanly_on_sigterm(webhook_bot: tuple[BotProcess, FakeBotApi, str]) -> None:
    bot, fake, url = webhook_bot
    assert bot.stop() == 0
    output = bot.output()
    assert TOKEN not in output and WEBHOOK_SECRET not in output and "Traceback" not in output
    assert not fake.calls("sendMessage", chat_id=1021), "the updates with a bad secret were never handled"
