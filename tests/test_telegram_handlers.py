"""The Telegram handlers in-process: the real Application and PTB Bot over HTTP to the fake
Bot API, with a stub chat core (canned answers) and a fake clock where time matters.

Updates go straight to ``Application.process_update``, which returns when the handlers (and
the error handler) are done, so the tests need no waiting. The tests that are about
concurrency run the real polling loop instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from telegram import Update
from telegram.ext import Application

import quotebot.bot.telegram.app as app_module
from quotebot.bot.chat import ArticleSummary
from quotebot.bot.render import NOT_FOUND
from quotebot.bot.telegram import formatting
from quotebot.bot.telegram.app import build_application
from quotebot.bot.telegram.settings import TelegramSettings
from quotebot.retrieval.answer import Answer, Quote
from tests.fake_bot_api import BOT_USERNAME, FakeBotApi, parse_html

TOKEN = "123456:TEST"


def quote(text: str, title: str = "An article", paragraph: int = 1) -> Quote:
    return Quote(text=text, article_id="a.txt", title=title, start=0, end=len(text), score=0.5, paragraph=paragraph)


def answer(*texts: str) -> Answer:
    return Answer(question="q", answered=bool(texts), confidence=0.9 if texts else 0.1, quotes=tuple(map(quote, texts)))


@dataclass
class StubCore:
    """Canned answers in place of QuoteBot; records what it was asked."""

    reply: Callable[[str, str], Answer] = lambda question, conversation: answer("The first passage.")
    asked: list[tuple[str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    articles: list[ArticleSummary] = field(default_factory=lambda: [ArticleSummary("a.txt", "Tom & Jerry <3", "2018-12-01", 3)])
    example: str = "Who caught Jerry?"

    def ask(self, question: str, conversation: str = "default") -> Answer:
        self.asked.append((question, conversation))
        return self.reply(question, conversation)

    def forget(self, conversation: str) -> None:
        self.forgotten.append(conversation)

    def sources(self) -> list[ArticleSummary]:
        return list(self.articles)

    def example_question(self) -> str:
        return self.example


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    fake: FakeBotApi
    app: Application
    core: StubCore

    async def send(self, update: dict[str, Any]) -> None:
        """Hand one update to the Application; returns when its handlers are done."""
        await self.app.process_update(Update.de_json({"update_id": 1, **update}, self.app.bot))

    async def say(self, chat_id: int, text: str, **options: Any) -> None:
        await self.send(self.fake.message_update(chat_id, text, **options))

    async def press(self, chat_id: int, message_id: int, data: str, **options: Any) -> None:
        await self.send(self.fake.callback_update(chat_id, message_id, data, **options))


@asynccontextmanager
async def running(core: StubCore, clock: Clock | None = None, *, poll: bool = False, **settings: Any) -> AsyncIterator[Bot]:
    with FakeBotApi(TOKEN, username=BOT_USERNAME) as fake:
        config = TelegramSettings(api_base_url=fake.base_url, **settings)
        application = build_application(core, config, TOKEN, **({"clock": clock} if clock else {}))
        async with application:
            await application.post_init(application)  # run_polling calls it; the manual lifecycle does not
            await application.start()
            if poll:
                await application.updater.start_polling(timeout=1)
            try:
                yield Bot(fake, application, core)
            finally:
                if poll:
                    await application.updater.stop()
                await application.stop()


def run(test: Callable[[], Any]) -> Any:
    return asyncio.run(test())


# -- answers -------------------------------------------------------------------------------


def test_answer_is_one_quote_with_its_source_and_a_more_button() -> None:
    core = StubCore(lambda q, c: answer("First <passage> & more.", "Second.", "Third."))

    async def scenario() -> None:
        async with running(core) as bot:
            await bot.say(42, "  what happened?  ")
            [typing] = bot.fake.calls("sendChatAction", chat_id=42)
            [reply] = bot.fake.calls("sendMessage", chat_id=42)
            assert typing.params["action"] == "typing" and typing.at < reply.at
            assert reply.text == "<blockquote>First &lt;passage&gt; &amp; more.</blockquote>\n<i>— An article, paragraph 1</i>"
            assert reply.params["parse_mode"] == "HTML"
            assert [b["text"] for b in reply.buttons] == ["More"]

    run(scenario)
    assert core.asked == [("  what happened?  ", "tg:42")]


def test_not_found_gets_the_shared_wording_and_no_button() -> None:
    async def scenario() -> None:
        async with running(StubCore(lambda q, c: answer())) as bot:
            await bot.say(42, "what is the capital of Australia?")
            [reply] = bot.fake.calls("sendMessage", chat_id=42)
            assert reply.text == NOT_FOUND and not reply.buttons

    run(scenario)


def test_more_grows_the_message_then_continues_in_a_new_one_when_it_would_not_fit() -> None:
    long_a, long_b = "alpha " * 500, "beta " * 600  # 3,000 characters each: two do not fit one message
    core = StubCore(lambda q, c: answer("Short first.", long_a.strip(), long_b.strip()))

    async def scenario() -> None:
        async with running(core) as bot:
            await bot.say(7, "question")
            [first] = bot.fake.calls("sendMessage", chat_id=7)
            message_id = first.result["message_id"]

            await bot.press(7, message_id, first.buttons[0]["callback_data"])
            [grown] = bot.fake.calls("editMessageText", chat_id=7)
            assert grown.text.startswith("<blockquote>Short first.</blockquote>")
            assert "<blockquote expandable>alpha alpha" in grown.text
            assert grown.buttons, "one more passage to show"

            mark = bot.fake.mark()
            await bot.press(7, message_id, grown.buttons[0]["callback_data"])
            [dropped] = bot.fake.calls("editMessageReplyMarkup", chat_id=7, since=mark)
            assert not dropped.params.get("reply_markup")
            [continued] = bot.fake.calls("sendMessage", chat_id=7, since=mark)
            assert continued.text.startswith("<blockquote expandable>beta beta") and not continued.buttons
            assert [c.method for c in bot.fake.calls(since=mark)][0] == "answerCallbackQuery"

    run(scenario)


def test_a_very_long_quote_is_split_between_blockquotes_with_the_button_on_the_last_part() -> None:
    text = "word " * 2000 + "🦋" * 1500  # 10,000 characters plus 3,000 UTF-16 units of emoji

    async def scenario() -> None:
        async with running(StubCore(lambda q, c: answer(text.strip(), "Second."))) as bot:
            await bot.say(8, "question")
            parts = bot.fake.calls("sendMessage", chat_id=8)
            assert len(parts) >= 4 and all(part.ok for part in parts)
            assert [bool(part.buttons) for part in parts] == [False] * (len(parts) - 1) + [True]
            assert "— An article, paragraph 1" in parse_html(parts[-1].text)[0]

    run(scenario)


def test_expired_more_button_says_so_and_disappears() -> None:
    clock = Clock()

    async def scenario() -> None:
        async with running(StubCore(lambda q, c: answer("One.", "Two.")), clock, more_ttl_seconds=60) as bot:
            await bot.say(9, "question")
            [reply] = bot.fake.calls("sendMessage", chat_id=9)
            clock.now += 61
            await bot.press(9, reply.result["message_id"], reply.buttons[0]["callback_data"])
            [answered] = bot.fake.calls("answerCallbackQuery")
            assert answered.params["text"] == formatting.EXPIRED_MESSAGE
            assert bot.fake.calls("editMessageReplyMarkup", chat_id=9)
            assert not bot.fake.calls("editMessageText")

    run(scenario)


def test_message_is_not_modified_is_harmless() -> None:
    async def scenario() -> None:
        async with running(StubCore(lambda q, c: answer("One.", "Two."))) as bot:
            await bot.say(10, "question")
            [reply] = bot.fake.calls("sendMessage", chat_id=10)
            bot.fake.fail_next("editMessageText", 400, "Bad Request: message is not modified: specified new message content ...")
            mark = bot.fake.mark()
            await bot.press(10, reply.result["message_id"], reply.buttons[0]["callback_data"])
            assert [c.status for c in bot.fake.calls("editMessageText", since=mark)] == [400]
            assert not bot.fake.calls("sendMessage", since=mark), "no 'something went wrong'"

    run(scenario)


def test_garbage_callback_data_is_answered_and_ignored() -> None:
    async def scenario() -> None:
        async with running(StubCore()) as bot:
            await bot.say(11, "question")
            [reply] = bot.fake.calls("sendMessage", chat_id=11)
            await bot.press(11, reply.result["message_id"], "more:nonexistent:1")
            await bot.press(11, reply.result["message_id"], "something else")
            assert [c.params.get("text") for c in bot.fake.calls("answerCallbackQuery")] == [formatting.EXPIRED_MESSAGE]
            assert not bot.fake.calls("editMessageText")

    run(scenario)


# -- commands and groups -------------------------------------------------------------------


def test_sources_follow_the_index_when_it_changes() -> None:
    """The bot reloads new generations (an `index add` while it runs): /sources must follow."""
    core = StubCore()

    async def scenario() -> None:
        async with running(core) as bot:
            await bot.say(12, "/sources")
            core.articles = core.articles + [ArticleSummary("b.txt", "Spike returns", None, 2)]
            await bot.say(12, "/sources")
            first, second = [c.text for c in bot.fake.calls("sendMessage", chat_id=12)]
            assert "1 article indexed" in first and "Spike" not in first
            assert "2 articles indexed" in second and "• Spike returns" in second

    run(scenario)


def test_commands() -> None:
    core = StubCore()

    async def scenario() -> None:
        async with running(core) as bot:
            assert [c["command"] for c in bot.fake.commands] == ["ask", "sources", "new", "help", "start"]
            for text in ("/start", "/help", "/sources", "/new", "/ask", "/ask  what now?", "/nope"):
                await bot.say(12, text)
            texts = [c.text for c in bot.fake.calls("sendMessage", chat_id=12)]
            assert "Who caught Jerry?" in texts[0] and "1 news article by quoting it" in texts[0]
            assert "/sources" in texts[1] and "Who caught Jerry?" in texts[1]
            assert texts[2] == "<b>1 article indexed</b>\n\n• Tom &amp; Jerry &lt;3 <i>(2018-12-01)</i>"
            assert texts[3] == formatting.NEW_CONVERSATION_MESSAGE
            assert texts[4] == formatting.ask_usage_message("Who caught Jerry?")
            assert "The first passage." in texts[5]
            assert texts[6] == formatting.UNKNOWN_COMMAND_MESSAGE

    run(scenario)
    assert core.forgotten == ["tg:12"] and core.asked == [("what now?", "tg:12")]


def test_group_messages_are_answered_only_when_addressed() -> None:
    core = StubCore()

    async def scenario() -> None:
        async with running(core) as bot:
            group = {"chat_type": "supergroup", "user_id": 5}
            await bot.say(-100, "just chatting", **group)
            await bot.say(-100, "/unknown", **group)
            await bot.say(-100, "/ask@other_bot is this for you?", **group)
            assert not bot.fake.calls("sendMessage")
            await bot.say(-100, f"@{BOT_USERNAME.upper()} what happened in Syria?", **group)
            await bot.say(-100, f"/ask@{BOT_USERNAME} and then?", **group)
            [first, second] = bot.fake.calls("sendMessage", chat_id=-100)
            await bot.say(-100, "who said so?", reply_to_message_id=first.result["message_id"], **group)
            assert len(bot.fake.calls("sendMessage", chat_id=-100)) == 3
            assert all("reply_parameters" in c.params for c in bot.fake.calls("sendMessage", chat_id=-100))

    run(scenario)
    assert [q.strip() for q, _ in core.asked] == ["what happened in Syria?", "and then?", "who said so?"]


def test_non_text_in_private_gets_a_hint() -> None:
    async def scenario() -> None:
        async with running(StubCore()) as bot:
            update = bot.fake.message_update(13, "x")
            del update["message"]["text"]
            update["message"]["location"] = {"latitude": 52.5, "longitude": 13.4}
            await bot.send(update)
            [reply] = bot.fake.calls("sendMessage", chat_id=13)
            assert reply.text == formatting.TEXT_ONLY_MESSAGE

    run(scenario)


# -- guards --------------------------------------------------------------------------------


def test_allowlist_refuses_others_politely_even_their_button_presses() -> None:
    core = StubCore(lambda q, c: answer("One.", "Two."))

    async def scenario() -> None:
        async with running(core, allowed_chat_ids=[-200], allowed_user_ids=[21]) as bot:
            await bot.say(21, "allowed user")
            await bot.say(-200, "/ask allowed chat", chat_type="group", user_id=99)
            await bot.say(99, "stranger")
            [refusal] = bot.fake.calls("sendMessage", chat_id=99)
            assert "Sorry" in refusal.text and "<code>99</code>" in refusal.text
            [reply] = bot.fake.calls("sendMessage", chat_id=21)
            await bot.press(21, reply.result["message_id"], reply.buttons[0]["callback_data"], user_id=99)
            [answered] = bot.fake.calls("answerCallbackQuery")
            assert answered.params["show_alert"] is True and not bot.fake.calls("editMessageText")

    run(scenario)
    assert [c for _, c in core.asked] == ["tg:21", "tg:-200"]


def test_questions_per_chat_are_rate_limited_with_one_warning_per_window() -> None:
    clock = Clock()
    core = StubCore()

    async def scenario() -> None:
        async with running(core, clock, questions_per_minute=2) as bot:
            for _ in range(4):
                await bot.say(30, "question")
            await bot.say(31, "another chat is not limited")
            texts = [c.text for c in bot.fake.calls("sendMessage", chat_id=30)]
            assert len(texts) == 3 and "Please wait 60 s" in texts[2]
            clock.now += 61
            await bot.say(30, "question")
            assert len(bot.fake.calls("sendMessage", chat_id=30)) == 4

    run(scenario)
    assert len(core.asked) == 4


def test_a_failing_answer_is_reported_to_the_user_and_the_bot_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    failures = iter([RuntimeError("index on fire")])

    def reply(question: str, conversation: str) -> Answer:
        error = next(failures, None)
        if error:
            raise error
        return answer("Fine again.")

    async def scenario() -> None:
        async with running(StubCore(reply)) as bot:
            await bot.say(40, "first")
            await bot.say(40, "second")
            texts = [c.text for c in bot.fake.calls("sendMessage", chat_id=40)]
            assert texts[0] == formatting.ERROR_MESSAGE and "Fine again." in texts[1]

    run(scenario)
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "chat 40" in record.getMessage() and "RuntimeError: index on fire" in record.getMessage()


# -- concurrency ---------------------------------------------------------------------------


def test_typing_is_renewed_while_a_slow_answer_is_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "TYPING_REFRESH_SECONDS", 0.01)
    fake_ref: list[FakeBotApi] = []

    def slow(question: str, conversation: str) -> Answer:
        fake_ref[0].wait_for("sendChatAction", chat_id=50, count=3)  # the answer is ready only then
        return answer("Done.")

    async def scenario() -> None:
        async with running(StubCore(slow)) as bot:
            fake_ref.append(bot.fake)
            await bot.say(50, "slow question")
            methods = [c.method for c in bot.fake.calls(chat_id=50)]
            assert methods.count("sendChatAction") >= 3 and methods[-1] == "sendMessage"

    run(scenario)


def test_a_slow_answer_in_one_chat_does_not_hold_up_another() -> None:
    release = threading.Event()

    def reply(question: str, conversation: str) -> Answer:
        if conversation == "tg:60":
            assert release.wait(timeout=30), "chat 61 was never answered while chat 60 waited"
        return answer(f"Answer for {conversation}.")

    async def scenario() -> None:
        async with running(StubCore(reply), poll=True) as bot:
            bot.fake.inject_message(60, "slow")
            await asyncio.to_thread(bot.fake.wait_for, "sendChatAction", chat_id=60)
            bot.fake.inject_message(61, "quick")
            await asyncio.to_thread(bot.fake.wait_for, "sendMessage", chat_id=61)
            release.set()
            [slow] = await asyncio.to_thread(bot.fake.wait_for, "sendMessage", chat_id=60)
            assert "tg:60" in slow.text

    run(scenario)


def test_questions_in_one_chat_are_answered_in_order() -> None:
    def reply(question: str, conversation: str) -> Answer:
        return answer(f"Answer to {question}.")

    async def scenario() -> None:
        async with running(StubCore(reply), poll=True) as bot:
            bot.fake.inject_many([bot.fake.message_update(70, f"q{n}") for n in range(8)])
            sent = await asyncio.to_thread(bot.fake.wait_for, "sendMessage", chat_id=70, count=8)
            assert [c.text.split("Answer to ")[1].split(".")[0] for c in sent] == [f"q{n}" for n in range(8)]

    run(scenario)
