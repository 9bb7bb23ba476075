"""Foundation figures on this machine: seed index build, cold `quotebot ask`, warm batch time.

    .venv/bin/python bench/foundation.py [--runs 5] [--questions 100] [--json]

Every figure is wall time of the real command line, as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Herzog ask Lavrov?",
    "Who is the Executive Chairman of the Jewish Agency?",
    "What did Lavrov say about the accident?",
    "Which plane was shot down?",
    "What is the capital of Australia?",
]


def timed(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/quotebot"), *args], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each cold command")
    parser.add_argument("--questions", type=int, default=100, help="questions in the warm batch")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "index"
        build = [timed("index", "build", "--index-dir", str(index_dir)) for _ in range(args.runs)]
        cold = [timed("ask", QUESTIONS[0], "--index-dir", str(index_dir)) for _ in range(args.runs)]
        one, many = Path(scratch) / "one.txt", Path(scratch) / "many.txt"
        one.write_text(QUESTIONS[0] + "\n")
        many.write_text("\n".join(QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions + 1)) + "\n")
        batch_one = statistics.median(timed("ask", "--batch", str(one), "--json", "--index-dir", str(index_dir)) for _ in range(3))
        batch_many = statistics.median(timed("ask", "--batch", str(many), "--json", "--index-dir", str(index_dir)) for _ in range(3))

    figures = {
        "seed_index_build_s": round(statistics.median(build), 2),
        "cold_ask_s": round(statistics.median(cold), 2),
        "warm_ms_per_question": round((batch_many - batch_one) / args.questions * 1000, 1),
        "runs": args.runs,
        "python": sys.version.split()[0],
    }
    if not args.json:
        print(f"{'seed index build (wall, median)':<40}{figures['seed_index_build_s']:>8.2f} s")
        print(f"{'cold quotebot ask (wall, median)':<40}{figures['cold_ask_s']:>8.2f} s")
        print(f"{'warm, per question in --batch':<40}{figures['warm_ms_per_question']:>8.1f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
