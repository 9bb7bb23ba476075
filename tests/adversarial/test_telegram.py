"""Chats that made the bot reply without limit or leak across chats (item 2, "Lower" items).

The real PTB Application and Bot, over HTTP to the fake Bot API on 127.0.0.1; the flood
test runs the real polling loop with the real chat core over the seed index.
"""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

from quotebot.bot.chat import QuoteBot
from quotebot.bot.telegram import formatting
from quotebot.bot.telegram.command import _answer_bad_json_with_400
from tests.test_telegram_handlers import Clock, StubCore, answer, run, running

ALLOWED = 1001
STRANGER = 666
HERZOG = "What did Herzog ask Lavrov?"
BLIND_EYE = "blind eye"
FLOOD = 300


def sticker_update(fake, chat_id: int) -> dict:
    update = fake.message_update(chat_id, "x")
    message = update["message"]
    del message["text"]
    message["sticker"] = {
        "file_id": "s1", "file_unique_id": "u1", "width": 512, "height": 512,
        "is_animated": False, "is_video": False, "type": "regular",
    }  # fmt: skip
    return update


def stranger_flood(fake, count: int) -> list[dict]:
    kinds = [
        lambda: fake.message_update(STRANGER, HERZOG),
        lambda: fake.message_update(STRANGER, "/help"),
        lambda: fake.message_update(STRANGER, "/start"),
        lambda: fake.message_update(STRANGER, "/nonsense"),
        lambda: sticker_update(fake, STRANGER),
    ]
    return [kinds[number % len(kinds)]() for number in range(count)]


def test_a_flooding_stranger_gets_one_refusal_and_the_allowed_user_is_answered(seed_bot: QuoteBot) -> None:
    async def scenario() -> None:
        async with running(seed_bot, poll=True, allowed_user_ids=[ALLOWED]) as bot:
            fake = bot.fake
            mark = fake.mark()
            fake.inject_many([*stranger_flood(fake, FLOOD), fake.message_update(ALLOWED, HERZOG)])
            [reply] = await asyncio.to_thread(fake.wait_for, "sendMessage", chat_id=ALLOWED, since=mark)
            assert BLIND_EYE in reply.text
            await asyncio.sleep(0.5)  # the answer came last: let the strangers' handlers finish too
            refusals = fake.calls("sendMessage", chat_id=STRANGER, since=mark)
            assert len(refusals) == 1 and "Sorry" in refusals[0].text

    run(scenario)


def test_a_refused_chat_is_told_again_only_after_the_window() -> None:
    clock = Clock()

    async def scenario() -> None:
        async with running(StubCore(), clock, allowed_user_ids=[ALLOWED], refusal_window_seconds=600) as bot:
            for _ in range(5):
                await bot.say(STRANGER, "hello?")
            await bot.send(sticker_update(bot.fake, STRANGER))
            assert len(bot.fake.calls("sendMessage", chat_id=STRANGER)) == 1
            clock.now += 601
            await bot.say(STRANGER, "/help")
            assert len(bot.fake.calls("sendMessage", chat_id=STRANGER)) == 2

    run(scenario)


def test_commands_and_non_text_go_through_the_per_chat_limit() -> None:
    clock = Clock()

    async def scenario() -> None:
        async with running(StubCore(), clock, questions_per_minute=3) as bot:
            for command in ["/help", "/start", "/sources", "/new", "/bogus", "/help"]:
                await bot.say(7, command)
            await bot.send(sticker_update(bot.fake, 7))
            texts = [call.text for call in bot.fake.calls("sendMessage", chat_id=7)]
            assert len(texts) == 4  # three replies, then one "slow down", then silence
            assert texts[-1].startswith("You are asking faster")

    run(scenario)


def test_a_more_button_pressed_in_another_chat_changes_nothing_there() -> None:
    core = StubCore(lambda q, c: answer("First passage.", "Second passage.", "Third passage."))

    async def scenario() -> None:
        async with running(core) as bot:
            await bot.say(41, "what happened?")
            [reply] = bot.fake.calls("sendMessage", chat_id=41)
            data = reply.buttons[0]["callback_data"]
            await bot.say(42, "what happened?")  # chat 42 has a message of its own with the same id space
            [other] = bot.fake.calls("sendMessage", chat_id=42)
            before = bot.fake.calls()
            # The first chat's button data, replayed on chat 42's message, and on another message in 41.
            await bot.press(42, other.result["message_id"], data)
            await bot.press(41, reply.result["message_id"] - 1, data)  # the user's own question in chat 41
            after = bot.fake.calls()[len(before):]
            assert not [call for call in after if call.method in ("editMessageText", "editMessageReplyMarkup", "sendMessage")]
            assert all(call.params.get("text") == formatting.EXPIRED_MESSAGE for call in after if call.method == "answerCallbackQuery")
            # On its own message the button still works.
            await bot.press(41, reply.result["message_id"], data)
            [edit] = bot.fake.calls("editMessageText", chat_id=41)
            assert "Second passage." in edit.text

    run(scenario)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_webhook_body_that_is_not_json_gets_400() -> None:
    _answer_bad_json_with_400()
    port = _free_port()

    async def scenario() -> None:
        async with running(StubCore()) as bot:
            await bot.app.updater.start_webhook(
                listen="127.0.0.1", port=port, url_path="hook", webhook_url="https://bot.example/hook", secret_token="s3cret"
            )
            try:
                url = f"http://127.0.0.1:{port}/hook"
                headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"}
                async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
                    for body in [b"{not json", b"\xff\xfe", b"[1, 2]", b"[" * 100_000]:
                        response = await client.post(url, content=body, headers=headers)
                        assert response.status_code == 400, body[:10]
                    wrong = await client.post(url, content=b"{", headers={**headers, "X-Telegram-Bot-Api-Secret-Token": "no"})
                    assert wrong.status_code == 403
                    good = {"update_id": 5, **bot.fake.message_update(9, "hello")}
                    ok = await client.post(url, content=json.dumps(good).encode(), headers=headers)
                    assert ok.status_code == 200
            finally:
                await bot.app.updater.stop()

    run(scenario)
