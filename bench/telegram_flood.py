"""A stranger floods the Telegram bot while an allowed user asks one question (issue #11, item 2).

    .venv/bin/python bench/telegram_flood.py [--flood 300] [--index-dir DIR] [--json]

The real PTB Application (long polling) and the real chat core over the index, against the
fake Bot API (tests/fake_bot_api.py) on 127.0.0.1. First the allowed user's question alone
(the baseline), then ``--flood`` messages from a chat not on the allowlist (text, /help,
/start, unknown commands and stickers), queued at once, followed by the same question. The
figure is the time from queuing to the allowed user's answer, and how many messages the
bot sent the stranger. Before the fix the stranger got a refusal per message, all queued
behind Telegram's 30 messages a second, and the answer waited 8.6 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives with the tests

from quotebot.bot import wiring  # noqa: E402
from quotebot.bot.settings import load_settings  # noqa: E402
from quotebot.bot.telegram.app import build_application  # noqa: E402
from quotebot.bot.telegram.settings import TelegramSettings  # noqa: E402
from tests.fake_bot_api import FakeBotApi  # noqa: E402

TOKEN = "123456:FLOOD"
ALLOWED = 1001
STRANGER = 666
QUESTION = "What did Herzog ask Lavrov?"


def flood_updates(fake: FakeBotApi, count: int) -> list[dict]:
    updates = []
    for number in range(count):
        kind = number % 5
        if kind == 4:
            update = fake.message_update(STRANGER, "x")
            del update["message"]["text"]
            update["message"]["sticker"] = {
                "file_id": "s", "file_unique_id": "u", "width": 1, "height": 1,
                "is_animated": False, "is_video": False, "type": "regular",
            }  # fmt: skip
        else:
            update = fake.message_update(STRANGER, [QUESTION, "/help", "/start", "/nonsense"][kind])
        updates.append(update)
    return updates


async def measure(core, flood: int) -> dict:
    with FakeBotApi(TOKEN) as fake:
        settings = TelegramSettings(api_base_url=fake.base_url, allowed_user_ids=[ALLOWED])
        application = build_application(core, settings, TOKEN)
        async with application:
            await application.start()
            await application.updater.start_polling(timeout=1)
            try:
                figures = {}
                for label, strangers in (("alone", 0), ("flooded", flood)):
                    mark = fake.mark()
                    queued = time.monotonic()
                    fake.inject_many([*flood_updates(fake, strangers), fake.message_update(ALLOWED, QUESTION)])
                    [answer] = await asyncio.to_thread(fake.wait_for, "sendMessage", chat_id=ALLOWED, since=mark, timeout=120)
                    figures[f"answer_{label}_s"] = round(answer.at - queued, 3)
                    await asyncio.sleep(1.0)  # the strangers' last handlers
                    figures[f"stranger_messages_{label}"] = len(fake.calls("sendMessage", chat_id=STRANGER, since=mark))
            finally:
                await application.updater.stop()
                await application.stop()
    return {"flood": flood, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=300, help="messages from the stranger (default: 300)")
    parser.add_argument("--config", type=Path, help="config file (default: ./config.yaml)")
    parser.add_argument("--index-dir", type=Path, help="index to answer from (default: the configured one)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    settings = load_settings(args.config)
    core = wiring.new_bot(settings, index_dir=args.index_dir.resolve() if args.index_dir else None)
    core.warm_up()
    figures = asyncio.run(measure(core, args.flood))
    if not args.json:
        print(f"answer to the allowed user, alone:             {figures['answer_alone_s']:.3f} s")
        print(f"answer to the allowed user, after {args.flood} strangers: {figures['answer_flooded_s']:.3f} s")
        print(f"messages the bot sent the stranger:            {figures['stranger_messages_flooded']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
