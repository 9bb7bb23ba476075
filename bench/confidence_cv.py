"""Two-fold cross-validation of confidence models on the rows bench/fit_ranker.py gathers.

    python bench/fit_ranker.py ../shared/data/squad/dev-v1.1.json ... --rows ROWS   (gathers once)
    python bench/confidence_cv.py ROWS

The ranker is fitted on all rows (as the fit does); each confidence model is fitted on half of
the questions (split by a hash of the question id) and read on the other half, then back. For
each model it prints every set's share answered (and, for answerable sets, answered right) at
the highest threshold where SQuAD articles alone still answer 95 % and 94 % of their questions:
the same operating point for every model, so the rows compare. Tuning halves only: the rows
come from them (bench/results/quality-levers.md, third round).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_ranker  # noqa: E402

from quotebot.retrieval.features import CONFIDENCE_FEATURES  # noqa: E402

LEVELS = (0.95, 0.94)


def products(features: list[str]) -> list[str]:
    return [f"{a}*{b}" for i, a in enumerate(features) for b in features[i:]]


def fold(key: tuple[str, str]) -> int:
    return hashlib.sha256(key[1].encode()).digest()[0] % 2


def cross_validate(tops: dict, terms: list[str], name: str) -> None:
    held_out: dict[tuple[str, str], tuple[float, bool]] = {}
    for part in (0, 1):
        model = fit_ranker.confidence_model(tops, [k for k in tops if fold(k) != part], tuple(terms))
        for key in tops:
            if fold(key) == part:
                label, values = tops[key][0]
                held_out[key] = (model.probability(values), label)
    by_set: dict[str, list] = defaultdict(list)
    for (set_name, _), outcome in held_out.items():
        by_set[set_name].append(outcome)

    def at(threshold: float) -> dict[str, tuple[float, float]]:
        return {
            s: (float(np.mean([c >= threshold for c, _ in v])), float(np.mean([c >= threshold and r for c, r in v])))
            for s, v in by_set.items()
        }

    for level in LEVELS:
        chosen = max(t / 1000 for t in range(1, 1000) if at(t / 1000)["article"][0] >= level)
        rates = at(chosen)
        shown = " ".join(f"{s}={a:.3f}/{r:.3f}" for s, (a, r) in sorted(rates.items()))
        print(f"{name:34s} article>={level} t={chosen:.3f} {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=Path, help="the --rows file of bench/fit_ranker.py")
    args = parser.parse_args()
    rows = [tuple(r) for r in json.loads(args.rows.read_text())]
    ranker = fit_ranker.fit_ranker(rows)
    _, tops = fit_ranker.fit_confidence(rows, ranker)
    linear = [f for f in CONFIDENCE_FEATURES if f != "type_near"]
    more = ["type_near", "topic_said", "type_found", "number_conflicts", "lead", "cosine_gap", "coverage_gap",
            "with_previous", "bigram", "cosine_rank", "chunk_rank"]  # ranker features the confidence lacked
    cross_validate(tops, linear, "linear (before)")
    cross_validate(tops, linear + products(linear), "+ products of every pair")
    cross_validate(tops, list(CONFIDENCE_FEATURES) + products(list(CONFIDENCE_FEATURES)), "+ products, and type_near (kept)")
    cross_validate(tops, linear + more + products(linear + more), "+ products of 11 more features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
