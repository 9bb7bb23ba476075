"""Fit the sentence ranker and the confidence model (retrieval/weights.json) on tuning halves only.

    python bench/fit_ranker.py ../shared/data/squad/dev-v1.1.json ../shared/data/news/bbc.jsonl \
        --cache-dir /work/wt/eval-cache [--write]

What it asks, all from the tuning half (SQuAD articles 1-24; the report half 25-48 is never read):

- open: each question against the open corpus of every SQuAD paragraph (answer present);
- bbc: the same questions against BBC news (answer absent: out of corpus);
- article: each SQuAD article 1-24 indexed alone, its own questions (a one-article corpus);
- other-article: questions of other articles 1-24 against that one article (answer absent);
- related: the open corpus with the question's own paragraph left out, only where no gold
  answer string remains anywhere in it (the subject is there, the answer is not).

The ranker (log-odds that a sentence holds a gold answer) is fitted on every candidate
sentence of the answerable questions; the confidence (probability that a quoted sentence
answers) on the three best candidates of every question of every set at once, each set
weighing the same. It then prints, for thresholds on a grid, each set's rates on the tuning
half, and the threshold that meets every target. ``--write`` rewrites retrieval/weights.json.
Re-run it after any change to features or vectors: it is the one command that fits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from quotebot.index.embedding import Embedder
from quotebot.index.manifest import ChunkingSettings
from quotebot.index.onnx_encoder import query_encoder_for
from quotebot.retrieval.evaluation.cache import article_file_index, cache_key, cached_index, squad_index
from quotebot.retrieval.evaluation.metrics import contains_answer, normalize
from quotebot.retrieval.evaluation.squad import load_squad
from quotebot.retrieval.features import CONFIDENCE_FEATURES, RANKER_FEATURES
from quotebot.retrieval.ranker import WEIGHTS_FILE, LogisticModel, Models, load_models
from quotebot.retrieval.retriever import Retriever
from quotebot.retrieval.settings import RetrievalSettings

TUNING_ARTICLES = (1, 24)
ANSWERABLE = {"open", "article"}
CONFIDENCE_DEPTH = 3  # candidates per question the confidence is fitted on (the quotes shown)
L2 = 1.0


class CachingEncoder:
    """The query encoder, remembering every question's vector (one question, several corpora)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.model = encoder.model
        self.cache: dict[str, np.ndarray] = {}

    def warm_up(self) -> None:
        self.encoder.warm_up()

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.cache]
        if missing:
            for text, vector in zip(missing, self.encoder.embed(missing)):
                self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts])


class LeaveOut(Retriever):
    """The retriever with one article's chunks removed from both rankings (related-but-unanswered)."""

    left_out: str = ""

    def _fused_chunks(self, query_vector, query_tokens, prefer_articles, limit=None):
        dense_ids, dense_scores = self.index.vectors.search(query_vector, self.dense_candidates + 10)
        keyword_ids, _ = self.index.keywords.search(query_tokens, self.keyword_candidates + 10)
        keep = lambda ids: np.array([i for i in ids.tolist() if self.index.chunks[i].article_id != self.left_out], dtype=np.int64)  # noqa: E731
        kept_dense = [(i, s) for i, s in zip(dense_ids.tolist(), dense_scores.tolist()) if self.index.chunks[i].article_id != self.left_out]
        return self._fuse(
            np.array([i for i, _ in kept_dense], dtype=np.int64),
            np.array([s for _, s in kept_dense], dtype=np.float32),
            keep(keyword_ids),
            prefer_articles,
            limit,
        )


def collect(retriever: Retriever, question: str, answers: tuple[str, ...], set_name: str, qid: str, rows: list) -> None:
    candidates = retriever.evidence(" ".join(question.split()))
    for candidate in candidates:
        text = retriever.index.articles[candidate.article_id].text[candidate.start : candidate.end]
        label = set_name in ANSWERABLE and contains_answer(text, answers)
        rows.append((set_name, qid, label, dict(candidate.values)))


def gather(args: argparse.Namespace) -> list:
    rng = random.Random(13)
    squad = load_squad(args.squad)
    chunking = ChunkingSettings(chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap)
    embedder = Embedder(model=args.model)
    cached = squad_index(squad, args.cache_dir, embedder, chunking)
    encoder = CachingEncoder(query_encoder_for(cached.index_dir, args.model, torch_model=lambda: embedder))
    bbc = article_file_index(args.bbc, args.cache_dir, embedder, chunking)
    settings = RetrievalSettings().model_dump() | {"abstain_threshold": 0.0}
    questions = squad.select(TUNING_ARTICLES)
    rows: list = []
    started = time.perf_counter()

    def progress(name: str, done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"  {name}: {done}/{total} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    open_retriever = Retriever(cached.index, encoder, **settings)
    open_sample = questions if args.open_limit is None else rng.sample(questions, min(args.open_limit, len(questions)))
    for n, q in enumerate(open_sample, 1):
        collect(open_retriever, q.question, q.answers, "open", q.id, rows)
        progress("open", n, len(open_sample))
    bbc_retriever = Retriever(bbc.index, encoder, **settings)
    for n, q in enumerate(rng.sample(open_sample, min(args.negatives, len(open_sample))), 1):
        collect(bbc_retriever, q.question, q.answers, "bbc", q.id, rows)
        progress("bbc", n, args.negatives)

    # Related but unanswered: own paragraph left out, no gold answer anywhere else.
    corpus_text = [normalize(a.text) for a in squad.articles]
    related = LeaveOut(cached.index, encoder, **settings)
    pool = rng.sample(open_sample, min(len(open_sample), args.negatives * 3))
    taken = 0
    for q in pool:
        others = (t for a, t in zip(squad.articles, corpus_text) if a.id != q.paragraph_id)
        if any(normalize(ans) in t for t in others for ans in q.answers):
            continue
        related.left_out = q.paragraph_id
        collect(related, q.question, q.answers, "related", q.id, rows)
        taken += 1
        progress("related", taken, args.negatives)
        if taken >= args.negatives:
            break

    # One-article corpora: SQuAD articles of the tuning half, each indexed alone.
    by_article = defaultdict(list)
    for q in questions:
        by_article[q.article_number].append(q)
    for number in range(TUNING_ARTICLES[0], TUNING_ARTICLES[1] + 1):
        alone = one_article_index(squad, number, args.article_cache or args.cache_dir, embedder, chunking)
        retriever = Retriever(alone.index, encoder, **settings)
        own = by_article[number]
        for q in rng.sample(own, min(args.per_article, len(own))):
            collect(retriever, q.question, q.answers, "article", q.id, rows)
        others = [q for q in questions if q.article_number != number]
        for q in rng.sample(others, args.per_article // 2):
            collect(retriever, q.question, q.answers, "other-article", q.id, rows)
        print(f"  article {number} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return rows


def one_article_index(squad, number: int, cache_dir: Path, embedder, chunking):
    """SQuAD article ``number`` (all its paragraphs) indexed alone, cached like the eval's indexes."""
    paragraphs = [a for a in squad.articles if a.metadata["squad_article"] == number]
    key = cache_key(
        corpus_sha256=hashlib.sha256(f"{squad.sha256}/article-{number}".encode()).hexdigest(),
        corpus_kind="squad-one-article-v1",
        model=embedder.model,
        chunking=chunking,
    )
    return cached_index(cache_dir, key, lambda: paragraphs, embedder, chunking)


# -- fitting ---------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method (the bias is not penalised)."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (weights * (p - y)) + penalty * beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-7:
            break
    return beta[:-1], float(beta[-1])


def fit(rows: list) -> tuple[Models, dict]:
    by_question: dict[tuple[str, str], list] = defaultdict(list)
    for set_name, qid, label, values in rows:
        by_question[(set_name, qid)].append((label, values))
    # Ranker: every candidate of the answerable questions that have a right candidate at all.
    x, y = [], []
    for (set_name, _), candidates in by_question.items():
        if set_name in ANSWERABLE and any(label for label, _ in candidates):
            for label, values in candidates:
                x.append([values[f] for f in RANKER_FEATURES])
                y.append(float(label))
    coefficients, bias = fit_logistic(np.array(x), np.array(y), np.ones(len(y)))
    ranker = LogisticModel(RANKER_FEATURES, tuple(coefficients.tolist()), bias)
    # Confidence: the best few candidates of every question, each set weighing the same.
    tops: dict[tuple[str, str], list] = {}
    for key, candidates in by_question.items():
        scored = sorted(((ranker.log_odds(v), label, v) for label, v in candidates), key=lambda item: -item[0])
        best = scored[0][0]
        top = []
        for logit, label, values in scored[:CONFIDENCE_DEPTH]:
            values = dict(values, ranker=logit, ranker_gap=logit - best)
            top.append((label, values))
        tops[key] = top
    per_set = defaultdict(int)
    for (set_name, _), top in tops.items():
        per_set[set_name] += len(top)
    x, y, w = [], [], []
    for (set_name, _), top in tops.items():
        for rank, (label, values) in enumerate(top):
            x.append([values[f] for f in CONFIDENCE_FEATURES])
            y.append(float(label))
            w.append((1.0 if rank == 0 else 0.5) * 1000.0 / per_set[set_name])
    coefficients, bias = fit_logistic(np.array(x), np.array(y), np.array(w))
    confidence = LogisticModel(CONFIDENCE_FEATURES, tuple(coefficients.tolist()), bias)
    return Models(ranker, confidence), tops


def rates(models: Models, tops: dict, threshold: float) -> dict[str, dict[str, float]]:
    """Per set at ``threshold``: answered share, first quote right share (answerable sets)."""
    out: dict[str, list] = defaultdict(list)
    for (set_name, _), top in tops.items():
        label, values = top[0]
        confidence = models.confidence.probability(values)
        out[set_name].append((confidence >= threshold, label))
    result = {}
    for set_name, outcomes in out.items():
        answered = sum(a for a, _ in outcomes) / len(outcomes)
        right = sum(a and r for a, r in outcomes) / len(outcomes)
        result[set_name] = {"n": len(outcomes), "answered": answered, "right": right}
    return result


def report(models: Models, tops: dict) -> float:
    names = sorted({s for s, _ in tops})
    print("threshold " + " ".join(f"{n:>22}" for n in names))
    print("          " + " ".join(f"{'answered  right':>22}" for _ in names))
    chosen = None
    for step in range(5, 96, 5):
        t = step / 100
        r = rates(models, tops, t)
        print(f"{t:9.2f} " + " ".join(f"{r[n]['answered']:>13.3f} {r[n]['right']:>8.3f}" for n in names))
    for step in range(1, 100):
        t = step / 100
        r = rates(models, tops, t)
        meets = (
            r.get("bbc", {}).get("answered", 0) <= 0.08
            and r.get("other-article", {}).get("answered", 0) <= 0.05
            and r.get("related", {}).get("answered", 0) <= 0.50
            and r.get("article", {}).get("answered", 1) >= 0.95
        )
        if meets:
            chosen = t
            break
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("bbc", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=Path(".quotebot/eval-cache"))
    parser.add_argument("--article-cache", type=Path, help="where one-article indexes are cached (default: --cache-dir)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--chunk-tokens", type=int, default=120)
    parser.add_argument("--chunk-overlap", type=int, default=1)
    parser.add_argument("--open-limit", type=int, default=None, help="at most N open-corpus questions (all by default)")
    parser.add_argument("--negatives", type=int, default=1500, help="questions asked of bbc and of related")
    parser.add_argument("--per-article", type=int, default=60, help="own questions per one-article corpus")
    parser.add_argument("--rows", type=Path, help="save (or, if it exists, reuse) the gathered features here")
    parser.add_argument("--write", action="store_true", help="rewrite retrieval/weights.json")
    args = parser.parse_args()
    if args.rows and args.rows.exists():
        rows = [tuple(r) for r in json.loads(args.rows.read_text())]
    else:
        rows = gather(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    models, tops = fit(rows)
    print(json.dumps({"ranker": models.ranker.to_json(), "confidence": models.confidence.to_json()}, indent=1))
    chosen = report(models, tops)
    print(f"lowest threshold meeting every tuning target: {chosen}")
    if args.write:
        WEIGHTS_FILE.write_text(
            json.dumps(
                {
                    "note": "fitted by bench/fit_ranker.py on tuning halves only (SQuAD dev articles 1-24); do not edit",
                    "command": " ".join(["python bench/fit_ranker.py", *sys.argv[1:]]),
                    "suggested_threshold": chosen,
                    "ranker": models.ranker.to_json(),
                    "confidence": models.confidence.to_json(),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
