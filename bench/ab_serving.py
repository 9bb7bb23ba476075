"""The serving figures of two versions of quotebot, measured alternately on one index, so a
busy machine slows both alike: cold `quotebot ask`, `index add` of one article (each on a
fresh copy of the index) and warm p50/p95 (bench/index_scale.py's `serve`).

    git archive main | tar -x -C /tmp/main-src
    mkdir -p /tmp/main-path/quotebot && for p in index retrieval bot; do ln -s /tmp/main-src/$p /tmp/main-path/quotebot/$p; done
    .venv/bin/python bench/ab_serving.py ../shared/data/news/bbc.jsonl --index-dir DIR \\
        --other /tmp/main-path --news-questions bench/news_questions.yaml --rounds 5

``--other`` is put first on PYTHONPATH for the "other" runs (a folder holding a ``quotebot``
package of the other version's ``index``, ``retrieval`` and ``bot``); "this" runs the
installed quotebot. The index is only read (each add runs on a copy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "quotebot.bot.cli"]


def run(command: list[str], other: Path | None) -> tuple[float, str]:
    env = dict(os.environ)
    if other is not None:
        env["PYTHONPATH"] = f"{other}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(other)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    return wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--other", type=Path, required=True)
    parser.add_argument("--news-questions", type=Path, required=True)
    parser.add_argument("--cold-question", default="What did Herzog ask Lavrov?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-rounds", type=int, default=2)
    args = parser.parse_args()
    import yaml

    articles = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = {a["id"] for a in articles}
    data = yaml.safe_load(args.news_questions.read_text(encoding="utf-8"))
    questions = [q["q"] for e in data["articles"] if e["article"] in ids for q in e["questions"] if q.get("expect") is not None]
    scratch = Path(tempfile.mkdtemp(prefix="quotebot-ab-"))
    versions = {"this": None, "other": args.other}
    figures: dict[str, dict[str, list[float]]] = {name: {"cold_s": [], "add_s": [], "p50_ms": [], "p95_ms": []} for name in versions}
    try:
        (scratch / "q.txt").write_text("\n".join(questions) + "\n", encoding="utf-8")
        source = dict(articles[len(articles) // 2])
        source["id"] = f"bench-new-{source.get('id')}"
        source["text"] += "\n\nThis paragraph was added for the benchmark."
        (scratch / "new.jsonl").write_text(json.dumps(source) + "\n", encoding="utf-8")
        for _ in range(args.rounds):
            for name, other in versions.items():
                figures[name]["cold_s"].append(run([*CLI, "ask", args.cold_question, "--index-dir", str(args.index_dir)], other)[0])
            for name, other in versions.items():
                copy = scratch / f"add-{name}"
                shutil.copytree(args.index_dir, copy)
                figures[name]["add_s"].append(run([*CLI, "index", "add", str(scratch / "new.jsonl"), "--index-dir", str(copy)], other)[0])
                shutil.rmtree(copy)
        for _ in range(args.warm_rounds):
            for name, other in versions.items():
                _, out = run([sys.executable, str(ROOT / "bench" / "index_scale.py"), "serve", str(args.index_dir), str(scratch / "q.txt")], other)
                warm = json.loads(out.strip().splitlines()[-1])
                figures[name]["p50_ms"].append(warm["p50_ms"])
                figures[name]["p95_ms"].append(warm["p95_ms"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average now: {os.getloadavg()[0]:.2f}; {len(questions)} warm questions; cold question {args.cold_question!r}")
    for name in versions:
        row = figures[name]
        print(f"{name:>5}: cold ask median {statistics.median(row['cold_s']):.2f} s (min {min(row['cold_s']):.2f}), "
              f"index add median {statistics.median(row['add_s']):.2f} s (min {min(row['add_s']):.2f}), "
              f"warm p50 {statistics.median(row['p50_ms']):.1f} ms (min {min(row['p50_ms']):.1f}), p95 {statistics.median(row['p95_ms']):.1f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
