"""Every answer the bot gives to a question set, as JSON lines: to check that a change meant
to be faster changes no answer.

    .venv/bin/python bench/answers_dump.py --index-dir DIR --questions bench/news_questions.yaml \
        --corpus ../shared/data/news/bbc.jsonl --titles 200 > before.jsonl
    (change the code)
    .venv/bin/python bench/answers_dump.py ... > after.jsonl
    .venv/bin/python bench/answers_dump.py --compare before.jsonl after.jsonl

Questions: every question of the news question set (answerable or not) whose article is in
the corpus, plus ``--titles`` headline questions spread over the corpus (as
bench/index_scale.py asks them). ``--evidence`` adds every candidate sentence's unrounded
ranker log-odds and confidence. ``--compare`` says how many answers differ: quotes (text,
offsets, answer span) must be equal, scores and confidences within 1e-9.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOLERANCE = 1e-9


def questions(news: Path | None, corpus: Path, titles: int) -> list[str]:
    import yaml

    articles = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = {a["id"] for a in articles}
    asked: list[str] = []
    if news is not None:
        data = yaml.safe_load(news.read_text(encoding="utf-8"))
        asked += [q["q"] for entry in data["articles"] if entry["article"] in ids for q in entry["questions"]]
    step = max(1, len(articles) // titles) if titles else 0
    if titles:
        asked += [f"What happened: {a['title'].strip()}?" for a in articles[::step][:titles] if a.get("title")]
    return asked


def dump(args: argparse.Namespace) -> None:
    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings

    settings = load_settings(ROOT / "config.yaml")
    bot = wiring.new_bot(settings, args.index_dir)
    bot.warm_up()
    for number, question in enumerate(questions(args.questions, args.corpus, args.titles)):
        answer = bot.ask(question, conversation=str(number))
        record = answer.model_dump(mode="json")
        if args.evidence:  # every candidate's ranker log-odds and confidence, unrounded
            record["evidence"] = [
                [c.article_id, c.sentence, c.ranker, c.confidence] for c in bot.retriever.evidence(question)
            ]
        print(json.dumps(record))


def _differs(before, after, path: str = "") -> str | None:
    if isinstance(before, float) and isinstance(after, float):
        return None if abs(before - after) <= TOLERANCE else f"{path}: {before!r} != {after!r}"
    if isinstance(before, dict) and isinstance(after, dict):
        if before.keys() != after.keys():
            return f"{path}: keys differ"
        for key in before:
            found = _differs(before[key], after[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return f"{path}: {len(before)} items != {len(after)}"
        for number, (one, two) in enumerate(zip(before, after)):
            found = _differs(one, two, f"{path}[{number}]")
            if found:
                return found
        return None
    return None if before == after else f"{path}: {before!r} != {after!r}"


def compare(first: Path, second: Path) -> int:
    before = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    after = [json.loads(line) for line in second.read_text(encoding="utf-8").splitlines()]
    if len(before) != len(after):
        print(f"{len(before)} answers against {len(after)}")
        return 1
    differing = [(b["question"], d) for b, a in zip(before, after) if (d := _differs(b, a))]
    for question, difference in differing[:20]:
        print(f"{question}\n    {difference}")
    print(f"{len(before)} answers, {len(differing)} differ (quotes exact, numbers within {TOLERANCE})")
    return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--questions", type=Path, default=None, help="the news question set (YAML)")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--titles", type=int, default=200)
    parser.add_argument("--evidence", action="store_true", help="also every candidate's unrounded ranker and confidence")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        raise SystemExit(compare(*args.compare))
    if not args.index_dir or not args.corpus:
        parser.error("--index-dir and --corpus are needed to dump answers")
    dump(args)


if __name__ == "__main__":
    main()
