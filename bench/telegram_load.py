"""Load on the Telegram bot: many questions from many chats at once, through the fake Bot API.

    .venv/bin/python bench/telegram_load.py [--questions 200] [--chats 50] [--index-dir DIR]
                                            [--messages-per-second N] [--json]

Starts the fake Bot API server (tests/fake_bot_api.py) on 127.0.0.1 and the real
`quotebot telegram` (long polling) against it, waits until it polls, then queues all the
questions at once, spread over the chats, and waits for every answer. Time to answer is
from the moment the questions were queued to the bot's last message of that answer. The
per-chat question limit is switched off (these chats ask a few questions each, at once,
on purpose); the outgoing rate limit is the configured one (Telegram's 30 messages a
second) unless --messages-per-second says otherwise (0: no limit, the bot's own speed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives with the tests

from quotebot.bot.render import NOT_FOUND  # noqa: E402
from quotebot.bot.telegram.formatting import ERROR_MESSAGE  # noqa: E402
from tests.fake_bot_api import Call, FakeBotApi  # noqa: E402

TOKEN = "123456:BENCH"
FIRST_CHAT = 2001
QUESTIONS = [
    "What did Herzog ask Lavrov?",
    "Who is the Executive Chairman of the Jewish Agency?",
    "What did Lavrov say about the accident?",
    "Which plane was shot down?",
    "Who should meet Putin again?",
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200, help="questions in all (default: 200)")
    parser.add_argument("--chats", type=int, default=50, help="chats they come from (default: 50)")
    parser.add_argument("--config", type=Path, help="config file for the bot (default: ./config.yaml)")
    parser.add_argument("--index-dir", type=Path, help="index the bot answers from (default: the configured one)")
    parser.add_argument("--messages-per-second", type=float, help="outgoing rate limit (default: configured; 0: none)")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds (default: 300)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    if args.questions < 1 or not 1 <= args.chats <= args.questions:
        parser.error("need --questions >= --chats >= 1")

    with FakeBotApi(TOKEN) as fake, tempfile.TemporaryDirectory() as scratch:
        bot = start_bot(fake, args, Path(scratch) / "bot.log")
        try:
            figures = run_load(fake, args)
        finally:
            stopped = stop(bot)
        figures["bot_exit_code"] = stopped
        if stopped != 0:
            print((Path(scratch) / "bot.log").read_text(errors="replace")[-3000:], file=sys.stderr)

    if not args.json:
        print_table(figures)
    print(json.dumps(figures))
    return 0 if figures["delivered"] == args.questions and figures["errors"] == 0 else 1


def start_bot(fake: FakeBotApi, args: argparse.Namespace, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        QUOTEBOT_TELEGRAM_API_BASE_URL=fake.base_url,
        QUOTEBOT_TELEGRAM__QUESTIONS_PER_MINUTE="0",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if args.messages_per_second is not None:
        env["QUOTEBOT_TELEGRAM__MESSAGES_PER_SECOND"] = str(args.messages_per_second)
    command = [sys.executable, "-m", "quotebot.bot.cli", "telegram"]
    if args.config:
        command += ["--config", str(args.config)]
    if args.index_dir:
        command += ["--index-dir", str(args.index_dir)]
    with open(log, "wb") as sink:
        bot = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while fake.started("getUpdates") == 0:
        if bot.poll() is not None or time.monotonic() > deadline:
            stop(bot)
            sys.exit(f"the bot did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    return bot


def run_load(fake: FakeBotApi, args: argparse.Namespace) -> dict:
    chats = [FIRST_CHAT + n for n in range(args.chats)]
    asked: dict[int, int] = {chat: 0 for chat in chats}
    updates = []
    for number in range(args.questions):
        chat = chats[number % len(chats)]
        asked[chat] += 1
        updates.append(fake.message_update(chat, QUESTIONS[number % len(QUESTIONS)]))
    mark = fake.mark()
    queued = time.monotonic()
    fake.inject_many(updates)

    def done() -> bool:
        finals = fake.calls("sendMessage", since=mark, where=_final)
        return len(finals) >= args.questions

    try:
        fake.wait_until(done, timeout=args.timeout)
    except AssertionError:
        pass  # report what arrived
    finished = time.monotonic()

    finals = fake.calls("sendMessage", since=mark, where=_final)
    seconds = sorted(call.at - queued for call in finals)
    calls = fake.calls(since=mark)
    return {
        "questions": args.questions,
        "chats": args.chats,
        "delivered": len(finals),
        "answered": sum("<blockquote" in call.text for call in finals),
        "not_found": sum(call.text == NOT_FOUND for call in finals),
        "errors": sum(call.text == ERROR_MESSAGE for call in finals) + len(fake.calls("sendMessage", since=mark, ok=False)),
        "p50_s": round(_percentile(seconds, 50), 3) if seconds else None,
        "p95_s": round(_percentile(seconds, 95), 3) if seconds else None,
        "max_s": round(seconds[-1], 3) if seconds else None,
        "wall_s": round(finished - queued, 3),
        "bot_api_calls": len([c for c in calls if c.method != "getUpdates"]),
        "messages_per_second_limit": args.messages_per_second if args.messages_per_second is not None else "configured",
    }


def _final(call: Call) -> bool:
    """The last message of an answer: a quote with its source line, or a one-line reply."""
    return call.ok and ("<blockquote" not in call.text or "\n<i>— " in call.text)


def _percentile(sorted_values: list[float], percent: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(percent) - 1]


def stop(bot: subprocess.Popen) -> int:
    if bot.poll() is None:
        bot.send_signal(signal.SIGTERM)
    try:
        return bot.wait(timeout=30)
    except subprocess.TimeoutExpired:
        bot.kill()
        return bot.wait()


def print_table(figures: dict) -> None:
    rows = [
        ("questions (chats)", f"{figures['questions']} ({figures['chats']})"),
        ("answers delivered", f"{figures['delivered']} ({figures['answered']} quoted, {figures['not_found']} not found)"),
        ("errors", str(figures["errors"])),
        ("time to answer p50", f"{figures['p50_s']} s"),
        ("time to answer p95", f"{figures['p95_s']} s"),
        ("time to answer max", f"{figures['max_s']} s"),
        ("all answered after", f"{figures['wall_s']} s"),
        ("Bot API calls", str(figures["bot_api_calls"])),
        ("outgoing limit (msg/s)", str(figures["messages_per_second_limit"])),
    ]
    for name, value in rows:
        print(f"{name:<26}{value}")


if __name__ == "__main__":
    sys.exit(main())
