"""Fit the sentence ranker and the confidence model (retrieval/weights.json) on tuning halves only.

    python bench/fit_ranker.py ../shared/data/squad/dev-v1.1.json --bbc ../shared/data/news/bbc.jsonl \
        --news bench/news_questions.yaml --cache-dir /work/wt/eval-cache --write

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
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from quotebot.bot import wiring
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder
from quotebot.index.onnx_encoder import query_encoder_for
from quotebot.index.loaders import load_articles
from quotebot.retrieval.evaluation.cache import article_file_index, cached_index, squad_index, subset_index
from quotebot.retrieval.evaluation.masking import ExcludingIndex
from quotebot.retrieval.evaluation.metrics import contains_answer
from quotebot.retrieval.evaluation.news import load_news_set
from quotebot.retrieval.evaluation.squad import load_squad
from quotebot.retrieval.features import confidence_terms, ranker_terms
from quotebot.retrieval.ranker import WEIGHTS_FILE, LogisticModel, Models
from quotebot.retrieval.retriever import Retriever
from quotebot.retrieval.settings import RetrievalSettings

TUNING_ARTICLES = (1, 24)
ANSWERABLE = {"open", "article", "news", "news-alone"}
ONE_ARTICLE_ANSWERED = 0.95  # share of answerable questions a one-article corpus must answer (issue #13)
CONFIDENCE_DEPTH = 3  # candidates per question the confidence is fitted on (the quotes shown)
L2 = 1.0
NEWS_WEIGHT = 3.0  # a news question counts this many times in the ranker: news is what users ask about


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


def collect(retriever: Retriever, question: str, answers, set_name: str, qid: str, rows: list) -> None:
    """Every candidate sentence of one question, with its features and whether it holds an answer."""
    candidates = retriever.evidence(" ".join(question.split()))
    for candidate in candidates:
        text = retriever.index.articles[candidate.article_id].text[candidate.start : candidate.end]
        label = set_name in ANSWERABLE and bool(answers) and contains_answer(text, answers)
        rows.append((set_name, qid, label, dict(candidate.values)))


def gather(args: argparse.Namespace) -> list:
    rng = random.Random(13)
    squad = load_squad(args.squad)
    index_settings = Settings().index  # the stores and chunking a user's index has
    embedder = Embedder(model=index_settings.model)
    builder = wiring.new_builder(index_settings, embedder, export_onnx=False)
    cached = squad_index(squad, args.cache_dir, builder)
    encoder = CachingEncoder(query_encoder_for(cached.index_dir, index_settings.model, torch_model=lambda: embedder))
    bbc = article_file_index(args.bbc, args.cache_dir, builder) if args.bbc and args.bbc_index else None
    settings = args.retrieval_settings.model_dump() | {"abstain_threshold": 0.0}
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
    if bbc is not None:
        bbc_retriever = Retriever(bbc.index, encoder, **settings)
        negatives = rng.sample(open_sample, min(args.negatives, len(open_sample)))
        for n, q in enumerate(negatives, 1):
            collect(bbc_retriever, q.question, q.answers, "bbc", q.id, rows)
            progress("bbc", n, len(negatives))

    # Related but unanswered: own paragraph left out of both searches, no gold answer elsewhere.
    view = ExcludingIndex(cached.index)
    related = Retriever(view.index, encoder, **settings)
    counted = squad.answer_only_in_own_paragraph(open_sample)
    counted = rng.sample(counted, min(args.negatives, len(counted)))
    for n, q in enumerate(counted, 1):
        view.leave_out([q.paragraph_id])
        collect(related, q.question, q.answers, "related", q.id, rows)
        progress("related", n, len(counted))
    view.leave_out([])

    # One-article corpora: SQuAD articles of the tuning half, each indexed alone (as --per-article).
    for number in range(TUNING_ARTICLES[0], TUNING_ARTICLES[1] + 1):
        alone = subset_index(
            cached, squad.article_ids(number), args.cache_dir / f"{cached.index_dir.name}.articles" / f"{number:03d}",
            builder,
        )
        retriever = Retriever(alone.index, encoder, **settings)
        own = [q for q in questions if q.article_number == number]
        for q in rng.sample(own, min(args.per_article, len(own))):
            collect(retriever, q.question, q.answers, "article", q.id, rows)
        others = [q for q in questions if q.article_number != number]
        for q in rng.sample(others, args.per_article // 3):
            collect(retriever, q.question, q.answers, "other-article", f"{number}/{q.id}", rows)
        print(f"  article {number} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    # The news set's tuning half (BBC articles): each article alone, and the whole corpus.
    if args.news and args.bbc:
        tune = load_news_set(args.news).select("tune")
        wanted = {q.article_id for q in tune}
        texts = {a.id: a for a in load_articles([args.bbc]).articles if a.id in wanted}
        bbc_retriever = Retriever(bbc.index, encoder, **settings) if bbc is not None else None
        for q in tune:
            article_id, question, answers = q.article_id, q.question, q.expected
            if article_id not in texts:
                continue  # a Reuters article: no index of it here
            name = "news" if answers else "news-unanswerable"
            key = hashlib.sha256(f"news-alone/{article_id}/{texts[article_id].text}".encode()).hexdigest()
            alone = cached_index(args.cache_dir / "news-alone", key, lambda: [texts[article_id]], builder)
            collect(Retriever(alone.index, encoder, **settings), question, answers, name + "-alone", question, rows)
            if bbc_retriever is not None:
                collect(bbc_retriever, question, answers, name, question, rows)
        print(f"  news ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return rows


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


def fit_conditional_logit(groups: list, dropped: list[int] = (), l2: float = L2) -> np.ndarray:
    """Coefficients maximising, over questions, the log of the softmax mass on the right
    candidates (each set weighing by its share of questions, news counting ``NEWS_WEIGHT`` times)."""
    from scipy.optimize import minimize

    x = np.vstack([g[1] for g in groups])
    y = np.concatenate([g[2] for g in groups])
    sizes = np.array([len(g[2]) for g in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group_of = np.repeat(np.arange(len(groups)), sizes)
    weight = np.array([NEWS_WEIGHT if g[0].startswith("news") else 1.0 for g in groups])

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        scores = x @ beta
        top = np.maximum.reduceat(scores, starts)
        e = np.exp(scores - top[group_of])
        total = np.add.reduceat(e, starts)
        right = np.add.reduceat(e * y, starts)
        value = -(weight * (np.log(right) - np.log(total))).sum() + 0.5 * l2 * beta @ beta
        p = e / total[group_of]
        q = e * y / right[group_of]
        gradient = -x.T @ (weight[group_of] * (q - p)) + l2 * beta
        return value, gradient

    bounds = [(0.0, 0.0) if i in dropped else (None, None) for i in range(x.shape[1])]
    result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x


TERMS = ranker_terms()
CONFIDENCE_TERMS = confidence_terms()
from quotebot.retrieval.features import MAX_MARGIN  # noqa: E402


def _term(values: dict[str, float], term: str) -> float:
    result = 1.0
    for name in term.split("*"):
        result *= values[name]
    return result


LEVERS = {
    "answer type found / missing": ("type_found", "type_missing"),
    "numbers and years agree / conflict": ("number_agrees", "number_conflicts"),
    "news lead": ("lead", "lead_untyped"),
    "rare words and neighbours": ("window", "rare"),
    "keyword pairs": ("bigram",),
    "ranks among candidates": ("cosine_rank", "coverage_rank"),
}


def first_right(ranker: LogisticModel, rows: list) -> dict[str, list[bool]]:
    """Per answerable set: for each question, whether its best-ranked candidate holds an answer."""
    best: dict[tuple[str, str], tuple[float, bool]] = {}
    for set_name, qid, label, values in rows:
        if set_name not in ANSWERABLE:
            continue
        score = ranker.log_odds(values)
        if (set_name, qid) not in best or score > best[(set_name, qid)][0]:
            best[(set_name, qid)] = (score, label)
    out: dict[str, list[bool]] = defaultdict(list)
    for (set_name, _), (_, label) in best.items():
        out[set_name].append(label)
    return out


def top1(ranker: LogisticModel, rows: list) -> dict[str, float]:
    """Per answerable set: share of questions whose best-ranked candidate holds an answer."""
    return {name: sum(labels) / len(labels) for name, labels in sorted(first_right(ranker, rows).items())}


def ablate(rows: list) -> None:
    """What each lever gains: the ranker refitted without it, first sentence right per set."""
    full = fit_ranker(rows)
    print("lever (ranker refitted without it)      " + "  ".join(f"{n:>10}" for n in top1(full, rows)))
    print(f"{'all features':<40} " + "  ".join(f"{v:>10.3f}" for v in top1(full, rows).values()))
    for lever, names in LEVERS.items():
        ranker = fit_ranker(rows, drop=names)
        print(f"{'without ' + lever:<40} " + "  ".join(f"{v:>10.3f}" for v in top1(ranker, rows).values()))


def cross_validate(rows: list, drop: tuple[str, ...]) -> dict[str, float]:
    """First sentence right per set, each half of the questions ranked by a ranker fitted on
    the other half (halves by a hash of the question id): the honest measure of a lever."""
    def half(qid: str) -> int:
        return zlib.crc32(qid.split("/")[-1].encode()) % 2  # "7/<id>": the question, not the corpus

    right: dict[str, list[bool]] = defaultdict(list)
    for held_out in (0, 1):
        ranker = fit_ranker([r for r in rows if half(r[1]) != held_out], drop)
        for set_name, labels in first_right(ranker, [r for r in rows if half(r[1]) == held_out]).items():
            right[set_name].extend(labels)
    return {name: sum(labels) / len(labels) for name, labels in sorted(right.items())}


def fit(rows: list, drop: tuple[str, ...] = ()) -> tuple[Models, dict]:
    ranker = fit_ranker(rows, drop)
    return fit_confidence(rows, ranker)


def fit_ranker(rows: list, drop: tuple[str, ...] = ()) -> LogisticModel:
    by_question: dict[tuple[str, str], list] = defaultdict(list)
    for set_name, qid, label, values in rows:
        by_question[(set_name, qid)].append((label, values))
    # Ranker: a conditional logit (softmax over each question's candidates), fitted on the
    # answerable questions that have a right candidate at all: it learns what sets the
    # answering sentence apart from the others of the same question.
    groups = []
    for (set_name, _), candidates in by_question.items():
        if set_name in ANSWERABLE and any(label for label, _ in candidates) and len(candidates) > 1:
            x = np.array([[_term(values, t) for t in TERMS] for _, values in candidates])
            groups.append((set_name, x, np.array([float(label) for label, _ in candidates])))
    dropped = [i for i, t in enumerate(TERMS) if any(part in drop for part in t.split("*"))]
    coefficients = fit_conditional_logit(groups, dropped)
    return LogisticModel(TERMS, tuple(coefficients.tolist()), 0.0)


def fit_confidence(rows: list, ranker: LogisticModel) -> tuple[Models, dict]:
    by_question: dict[tuple[str, str], list] = defaultdict(list)
    for set_name, qid, label, values in rows:
        by_question[(set_name, qid)].append((label, values))
    # Confidence: the best few candidates of every question, each set weighing the same.
    tops: dict[tuple[str, str], list] = {}
    for key, candidates in by_question.items():
        scored = sorted(((ranker.log_odds(v), label, v) for label, v in candidates), key=lambda item: -item[0])
        best = scored[0][0]
        margin = best - scored[1][0] if len(scored) > 1 else MAX_MARGIN
        top = []
        for logit, label, values in scored[:CONFIDENCE_DEPTH]:
            values = dict(values, ranker=logit, ranker_gap=logit - best, margin=min(margin, MAX_MARGIN))
            top.append((label, values))
        tops[key] = top
    return Models(ranker, confidence_model(tops, list(tops), CONFIDENCE_TERMS)), tops


def confidence_model(tops: dict, keys: list, terms: tuple[str, ...]) -> LogisticModel:
    """The confidence over ``terms``, fitted on the questions ``keys`` of ``tops``: each set
    weighing the same, a question's first candidate twice its others."""
    per_set: dict[str, int] = defaultdict(int)
    for key in keys:
        per_set[key[0]] += len(tops[key])
    x, y, w = [], [], []
    for key in keys:
        for rank, (label, values) in enumerate(tops[key]):
            x.append([_term(values, t) for t in terms])
            y.append(float(label))
            w.append((1.0 if rank == 0 else 0.5) * 1000.0 / per_set[key[0]])
    coefficients, bias = fit_logistic(np.array(x), np.array(y), np.array(w))
    return LogisticModel(tuple(terms), tuple(coefficients.tolist()), bias)


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
    # The threshold: the highest at which one-article corpora (SQuAD articles alone, news
    # articles alone) still answer ONE_ARTICLE_ANSWERED of their answerable questions. A
    # user's own small corpus going silent on questions it answers is the worst failure a
    # new user meets; wrong answers on the unanswerable sets are printed above, at it.
    chosen = None
    for step in range(1, 200):  # (steps of 0.005: one of 0.01 moved the other sets' figures by 3 points)
        t = step / 200
        r = rates(models, tops, t)
        if all(r[name]["answered"] >= ONE_ARTICLE_ANSWERED for name in ("article", "news-alone") if name in r):
            chosen = t
    if chosen is not None:
        r = rates(models, tops, chosen)
        print(f"at {chosen}: " + ", ".join(f"{name} answered {r[name]['answered']:.3f}" for name in names))
        print(f"at {chosen}, first quote right: " + ", ".join(f"{n} {r[n]['right']:.3f}" for n in names if n in ANSWERABLE))
    return chosen


def retrieval_settings(parser: argparse.ArgumentParser, items: list[str]) -> RetrievalSettings:
    """The retrieval settings with each ``--retrieval KEY=VALUE`` applied; a usage error names the bad one."""
    for item in items:
        if "=" not in item:
            parser.error(f"--retrieval {item}: expected KEY=VALUE, e.g. candidate_chunks=12")
    try:
        return RetrievalSettings(**dict(item.split("=", 1) for item in items))
    except ValidationError as error:
        problem = error.errors()[0]
        parser.error(f"--retrieval {'.'.join(map(str, problem['loc']))}: {problem['msg']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--bbc", type=Path, help="bbc.jsonl: the news set's articles")
    parser.add_argument("--bbc-index", action="store_true", help="also ask against the whole of --bbc (out of corpus; news whole corpus)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".quotebot/eval-cache"))
    parser.add_argument("--news", type=Path, help="bench/news_questions.yaml: add its tuning half (BBC articles)")
    parser.add_argument("--open-limit", type=int, default=None, help="at most N open-corpus questions (all by default)")
    parser.add_argument("--negatives", type=int, default=1500, help="questions asked of bbc and of related")
    parser.add_argument("--per-article", type=int, default=60, help="own questions per one-article corpus")
    parser.add_argument("--rows", type=Path, help="save (or, if it exists, reuse) the gathered features here")
    parser.add_argument(
        "--retrieval", action="append", default=[], metavar="KEY=VALUE",
        help="gather with this retrieval setting instead of its default (e.g. candidate_chunks=12); repeatable",
    )
    parser.add_argument("--write", action="store_true", help="rewrite retrieval/weights.json")
    parser.add_argument(
        "--cv", action="append", default=[], metavar="FEATURES",
        help="print two-fold cross-validated first sentences right with these comma-separated ranker "
        "features left out ('' for none); repeatable",
    )
    parser.add_argument("--levers", action="store_true", help="also refit without each lever and print what it gains")
    args = parser.parse_args()
    args.retrieval_settings = retrieval_settings(parser, args.retrieval)  # checked before any index is read
    if args.rows and args.rows.exists():
        rows = [tuple(r) for r in json.loads(args.rows.read_text())]
    else:
        rows = gather(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    if args.levers:
        ablate(rows)
    for features in args.cv:
        drop = tuple(f for f in features.split(",") if f)
        shares = cross_validate(rows, drop)
        print(f"cross-validated, without {', '.join(drop) or 'nothing'}: " + ", ".join(f"{n} {v:.3f}" for n, v in shares.items()))
    models, tops = fit(rows)
    print("first sentence right (ranker alone): " + ", ".join(f"{n} {v:.3f}" for n, v in top1(models.ranker, rows).items()))
    print(json.dumps({"ranker": models.ranker.to_json(), "confidence": models.confidence.to_json()}, indent=1))
    chosen = report(models, tops)
    print(f"threshold for config.yaml (retrieval.abstain_threshold): {chosen}")
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
