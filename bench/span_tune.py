"""Tune the answer marked inside a quote (retrieval/span.py) offline, in seconds.

Which sentence is quoted does not depend on span.py, so the questions are asked once
(``collect``): every first quote is saved with what ``answer_span`` was handed for it (the
question's type and keywords) and the gold answers. ``score`` then re-runs the current
``answer_span`` over the saved quotes and prints what ``quotebot eval squad`` reports as
"answer marked in quotebot's quote@1 hits": over questions whose first quote holds a gold
answer and whose confidence reaches the configured threshold, the share where something is
marked, where the mark overlaps a gold answer occurrence, and the mean token F1
(``metrics.marked_answer_scores``, the eval's own function).

    # SQuAD, tuning half (open corpus, the eval's cached index):
    python bench/span_tune.py collect-squad ../shared/data/squad/dev-v1.1.json --articles 1:24 \\
        --cache-dir ../eval-cache6 --out /tmp/span-tune.jsonl
    # news question set, each article alone (its cached article-alone indexes):
    python bench/span_tune.py collect-news bench/news_questions.yaml --index-dir ../eval-cache6/<key> \\
        --out /tmp/span-news.jsonl
    python bench/span_tune.py score /tmp/span-tune.jsonl [--show-misses 40]

Heavy steps (collect) take minutes; run them under ``flock /tmp/heavy.lock nice -n 5``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from quotebot.retrieval.answer_types import question_type
from quotebot.retrieval.evaluation import metrics


class _Recorder:
    """Stands in for ``retriever.answer_span``: remembers the keywords it was handed."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, asked, keywords, quote, **options):
        self.calls.append((sorted(keywords), quote))
        return self.real(asked, keywords, quote, **options)


def _ask(retriever, recorder: _Recorder, question: str, answers, threshold: float, **extra) -> dict:
    from quotebot.retrieval.evaluation.harness import ask_as_user

    recorder.calls.clear()
    answer = retriever.answer(ask_as_user(question))
    first = answer.quotes[0] if answer.quotes else None
    keywords = recorder.calls[0][0] if recorder.calls else []
    return {
        "question": ask_as_user(question),
        "answers": list(answers),
        "quote": first.text if first else None,
        "keywords": keywords,
        "confidence": answer.confidence,
        "answered": answer.confidence >= threshold and first is not None,
        **extra,
    }


def _patched_retriever(index, encoder, retrieval):
    from quotebot.retrieval import retriever as module

    recorder = _Recorder(module.answer_span)
    module.answer_span = recorder
    unthresholded = retrieval.model_dump() | {"abstain_threshold": 0.0}
    return module.Retriever(index, encoder, **unthresholded), recorder


def collect_squad(args: argparse.Namespace) -> None:
    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings
    from quotebot.retrieval.evaluation.cache import squad_index
    from quotebot.retrieval.evaluation.squad import load_squad, parse_article_range

    settings = load_settings(args.config)
    squad = load_squad(args.path)
    questions = squad.select(parse_article_range(args.articles), args.limit)
    embedder = wiring.torch_embedder(settings.index)
    builder = wiring.new_builder(settings.index, embedder, export_onnx=False)
    cached = squad_index(squad, args.cache_dir.resolve(), builder)
    if cached.built:
        print("note: the index was not cached and has been built now", file=sys.stderr)
    encoder = wiring.query_encoder(settings.index, cached.index_dir, torch_model=lambda: embedder)
    retriever, recorder = _patched_retriever(cached.index, encoder, settings.retrieval)
    threshold = settings.retrieval.abstain_threshold
    with open(args.out, "w", encoding="utf-8") as out:
        for done, q in enumerate(questions, 1):
            record = _ask(retriever, recorder, q.question, q.answers, threshold, id=q.id)
            out.write(json.dumps(record) + "\n")
            if done % 100 == 0:
                print(f"{done}/{len(questions)}", file=sys.stderr)


def collect_news(args: argparse.Namespace) -> None:
    """Each answerable question against its article alone (the cached article-alone indexes
    of `quotebot eval news`: ``<index-dir>.alone/<article id>``, questions embedded by the
    query encoder of ``<index-dir>``)."""
    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings
    from quotebot.index.reader import QuoteIndex
    from quotebot.retrieval.evaluation.news import load_news_set

    settings = load_settings(args.config)
    news = load_news_set(args.path)
    base = args.index_dir.resolve()
    encoder = wiring.query_encoder(settings.index, base, torch_model=lambda: wiring.torch_embedder(settings.index))
    threshold = settings.retrieval.abstain_threshold
    with open(args.out, "w", encoding="utf-8") as out:
        for article_id in news.article_ids:
            questions = [q for q in news.select(args.half) if q.article_id == article_id and q.answerable]
            if not questions:
                continue
            index = QuoteIndex.load(
                base.parent / f"{base.name}.alone" / article_id,
                model=settings.index.model,
                vector_store=settings.index.vector_store,
                keyword_index=settings.index.keyword_index,
            )
            retriever, recorder = _patched_retriever(index, encoder, settings.retrieval)
            for q in questions:
                record = _ask(retriever, recorder, q.question, q.expected, threshold, id=q.id, kind=q.kind, half=q.half)
                out.write(json.dumps(record) + "\n")


def score(args: argparse.Namespace) -> None:
    from quotebot.retrieval.span import answer_span

    records = [json.loads(line) for line in open(args.records, encoding="utf-8")]
    hits = [r for r in records if r["answered"] and r["quote"] and metrics.contains_answer(r["quote"], r["answers"])]
    marked = overlap = 0
    f1_sum = 0.0
    misses = []
    by_kind: Counter = Counter()
    by_kind_overlap: Counter = Counter()
    for r in hits:
        asked = question_type(r["question"])
        span = answer_span(asked, set(r["keywords"]), r["quote"], question=r["question"])
        overlaps, f1 = metrics.marked_answer_scores(r["quote"], span, r["answers"])
        kind = r.get("kind") or (asked.kind.value if asked.kind else "none")
        by_kind[kind] += 1
        by_kind_overlap[kind] += overlaps
        marked += span is not None
        overlap += overlaps
        f1_sum += f1
        if not overlaps:
            misses.append((r, span, kind))
    n = len(hits)
    print(f"{args.records}: {len(records)} questions, {n} quote@1 hits")
    if n:
        print(f"marked {marked / n:.3f}  overlaps a gold answer {overlap / n:.3f}  token F1 {f1_sum / n:.3f}")
    for kind, count in by_kind.most_common():
        print(f"  {kind:13} {count:4}  overlap {by_kind_overlap[kind] / count:.3f}")
    for r, span, kind in misses[: args.show_misses]:
        marked_text = r["quote"][span[0] : span[1]] if span else None
        print(f"\n[{kind}] {r['question']}\n  gold: {r['answers'][:3]}\n  marked: {marked_text!r}\n  quote: {r['quote']}")


def fit(args: argparse.Namespace) -> None:
    """Fit span.WEIGHTS: a softmax over each quote@1 hit's candidates, whose target shares
    its mass among the candidates overlapping a gold answer (more to the tighter ones, by
    token F1), L2-regularised. Prints the weights to paste into retrieval/span.py."""
    import numpy as np
    from scipy.optimize import minimize

    from quotebot.retrieval import span as span_module

    records = [json.loads(line) for line in open(args.records, encoding="utf-8")]
    hits = [r for r in records if r["answered"] and r["quote"] and metrics.contains_answer(r["quote"], r["answers"])]
    names = span_module.FEATURES
    groups = []
    for r in hits:
        asked = question_type(r["question"])
        if asked.kind is not None and asked.kind.value in ("reason", "saying", "request"):
            continue  # marked by the clause recognisers, not by WEIGHTS
        found = span_module.candidates(asked, set(r["keywords"]), r["quote"], r["question"])
        if len(found) < 2:
            continue
        scores = [metrics.marked_answer_scores(r["quote"], c.span, r["answers"]) for c in found]
        target = np.array([float(o) * (0.5 + 0.5 * f1) for o, f1 in scores])
        if target.sum() == 0 or target.sum() == len(target):
            continue
        x = np.array([[c.features[n] for n in names] for c in found])
        groups.append((x, target / target.sum()))

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, t in groups:
            z = x @ w
            z = z - z.max()
            p = np.exp(z) / np.exp(z).sum()
            total -= float(t @ np.log(p + 1e-12))
            grad -= x.T @ (t - p)
        return total / len(groups) + args.l2 * float(w @ w), grad / len(groups) + 2 * args.l2 * w

    start = np.array([span_module.WEIGHTS[n] for n in names])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    print(f"{len(groups)} quotes with a choice to make; loss {loss(start)[0]:.4f} -> {result.fun:.4f}")
    span_module.WEIGHTS.update(zip(names, result.x.tolist()))
    args.show_misses = 0
    score(args)
    print("WEIGHTS: dict[str, float] = {")
    for name, weight in zip(names, result.x):
        print(f'    "{name}": {weight:.3f},')
    print("}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True)
    squad = sub.add_parser("collect-squad", help="ask SQuAD questions once, save first quotes")
    squad.add_argument("path", type=Path)
    squad.add_argument("--articles", default="1:24", help="SQuAD articles A:B (tune on 1:24)")
    squad.add_argument("--limit", type=int, default=2000)
    squad.add_argument("--cache-dir", type=Path, required=True)
    squad.add_argument("--config", type=Path)
    squad.add_argument("--out", type=Path, required=True)
    squad.set_defaults(run=collect_squad)
    news = sub.add_parser("collect-news", help="ask the news set's questions of their article alone")
    news.add_argument("path", type=Path)
    news.add_argument("--index-dir", type=Path, required=True, help="the eval cache's news index folder")
    news.add_argument("--half", choices=["tune", "report"])
    news.add_argument("--config", type=Path)
    news.add_argument("--out", type=Path, required=True)
    news.set_defaults(run=collect_news)
    scoring = sub.add_parser("score", help="re-mark saved first quotes with the current span.py")
    scoring.add_argument("records", type=Path)
    scoring.add_argument("--show-misses", type=int, default=0)
    scoring.set_defaults(run=score)
    fitting = sub.add_parser("fit", help="fit span.WEIGHTS on saved first quotes (tuning half only)")
    fitting.add_argument("records", type=Path)
    fitting.add_argument("--l2", type=float, default=0.001)
    fitting.set_defaults(run=fit)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
