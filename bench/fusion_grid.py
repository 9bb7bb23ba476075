"""passage@1 / passage@5 of the fused chunk ranking over a grid of fusion settings, on SQuAD's
tuning half (articles 1-24): each question's dense, BM25 and best-sentence rankings are read
once from a built open-corpus index, then fused for every grid point.

    .venv/bin/python bench/fusion_grid.py ../shared/data/squad/dev-v1.1.json --index-dir DIR

DIR: the open-corpus SQuAD index `quotebot eval squad` builds (under its --cache-dir).
Tuning half only: the report half is what `quotebot eval` reports (quality-levers.md, fourth round).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RRF_K = (3, 5, 8)
KEYWORD_WEIGHTS = (1.5, 2.0, 2.5, 3.3)
SENTENCE_WEIGHTS = (0.0, 1.0, 1.5, 2.3)


def rankings(retriever, questions):
    """Each question's gold paragraph, its three rankings (as the retriever's fusion takes
    them) and the article of every chunk in them."""
    for q in questions:
        vector = retriever.embedder.embed([q.question])[0]
        _, tokens = retriever._query_keywords(q.question, "")
        dense_ids, dense_scores = retriever.index.vectors.search(vector, retriever.dense_candidates)
        keyword_ids, keyword_scores = retriever.index.keywords.search(tokens, retriever.keyword_candidates)
        dense_ids = retriever._newer_first(dense_ids, dense_scores)  # (as _fused_chunks does)
        keyword_ids = retriever._newer_first(keyword_ids, keyword_scores)
        sentence_ids = retriever._by_best_sentence(vector, dense_ids, keyword_ids)
        articles = {int(c): retriever.index.chunks[int(c)].article_id for c in sentence_ids.tolist()}
        yield q.paragraph_id, (dense_ids, dense_scores, keyword_ids, sentence_ids), articles


def passages(retriever, runs, rrf_k: int, keyword_weight: float, sentence_weight: float) -> tuple[float, float]:
    """passage@1 and passage@5 of the retriever's own fusion (``_fuse``) at these settings."""
    retriever.rrf_k, retriever.keyword_weight, retriever.sentence_weight = rrf_k, keyword_weight, sentence_weight
    first = five = 0
    for gold, ranked, articles in runs:
        top = [articles[chunk_id] for chunk_id, _ in retriever._fuse(*ranked, (), 5)[0]]
        first += top[0] == gold
        five += gold in top
    return first / len(runs), five / len(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=2000, help="questions of the tuning half (evenly spread)")
    args = parser.parse_args()
    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings
    from quotebot.retrieval.evaluation.squad import load_squad

    questions = load_squad(args.squad).select((1, 24), args.limit)
    bot = wiring.new_bot(load_settings(ROOT / "config.yaml"), args.index_dir)
    bot.warm_up()
    retriever = bot.retriever
    runs = list(rankings(retriever, questions))
    print(f"{len(runs)} questions of SQuAD articles 1-24; passage@1 / passage@5 (dense ranking weighs 1)")
    print("rrf_k keyword " + " ".join(f"{'sentence ' + str(w):>15}" for w in SENTENCE_WEIGHTS))
    for rrf_k, keyword_weight in itertools.product(RRF_K, KEYWORD_WEIGHTS):
        cells = [passages(retriever, runs, rrf_k, keyword_weight, w) for w in SENTENCE_WEIGHTS]
        print(f"{rrf_k:5d} {keyword_weight:7.1f} " + " ".join(f"{p1:>7.3f} / {p5:.3f}" for p1, p5 in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
