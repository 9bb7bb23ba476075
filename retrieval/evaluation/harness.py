"""Runs quotebot and the two baselines over SQuAD questions and builds the ``EvalReport``.

Each question is asked of every system exactly as a user's is (white space collapsed,
a fresh conversation). quotebot is the configured ``Retriever`` run with
``abstain_threshold=0``, so every question gets its quotes and its confidence; the
configured threshold is then applied to the confidence (``Answer.confidence``, rounded to
4 decimals: the same decision as the live retriever's unless the confidence lies within
0.00005 below the threshold), and the abstention curve sweeps other thresholds over the
same run. Latency is the wall time of ``answer`` alone, question embedding included (warm
model; the ranking read for passage@k is taken by a separate, untimed call that reuses the
question's vector, so each question is embedded once per system).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quotebot.index.embedding import TextEncoder
from quotebot.index.reader import QuoteIndex
from quotebot.retrieval.answer import Answer
from quotebot.retrieval.evaluation import metrics
from quotebot.retrieval.evaluation.abstention import SUGGESTION_THRESHOLDS, suggest_threshold, threshold_curve, threshold_point
from quotebot.retrieval.evaluation.baselines import Answerer, Bm25Baseline, DenseBaseline
from quotebot.retrieval.evaluation.masking import ExcludingIndex
from quotebot.retrieval.evaluation.report import (
    AbstentionReport,
    ArticleScore,
    CorpusInfo,
    EvalReport,
    KindScore,
    LeftOutReport,
    MachineLoad,
    NewsModeReport,
    PerArticleReport,
    SystemMetrics,
    UnansweredMetrics,
)
from quotebot.retrieval.evaluation.news import KINDS, NewsQuestion
from quotebot.retrieval.evaluation.squad import SquadQuestion, evenly_spread
from quotebot.retrieval.retriever import MAX_QUOTE_CHARS, Retriever
from quotebot.retrieval.settings import RetrievalSettings

PASSAGE_DEPTH = 20  # chunks of each system's ranking read for passage@1/5/20
MAX_QUOTE_SENTENCES = 2
QUOTEBOT = "quotebot"


@dataclass
class SystemRecord:
    """One system's outcome on one question."""

    answered: bool
    confidence: float
    quote_rank: int | None  # among the quotes it answers with (None if it abstains)
    raw_quote_rank: int | None  # among its quotes before any abstention (quotebot: threshold 0)
    passage_rank: int | None
    latency_ms: float
    first_quote: str | None
    first_quote_article: str | None
    first_quote_sentences: int | None
    # The answer marked inside the first quote: its text, whether it overlaps a gold answer
    # there and its token F1 (read for quote@1 hits only).
    marked_answer: str | None = None
    marked_overlaps: bool = False
    marked_f1: float = 0.0


@dataclass
class QuestionRecord:
    question: SquadQuestion
    systems: dict[str, SystemRecord] = field(default_factory=dict)
    out_of_corpus_confidence: float | None = None
    out_of_corpus_first_quote: str | None = None
    # open: the open corpus; per-article: its own article alone; foreign: another article
    # alone (no answer there); left-out: the open corpus without its own paragraph.
    mode: str = "open"
    corpus: str | None = None  # per-article and foreign: the SQuAD article number asked against

    def to_json(self) -> dict:
        q = self.question
        return {
            "mode": self.mode,
            "corpus": self.corpus,
            "id": q.id,
            "question": q.question,
            "answers": list(q.answers),
            "paragraph": q.paragraph_id,
            "systems": {name: vars(record) for name, record in self.systems.items()},
            "out_of_corpus_confidence": self.out_of_corpus_confidence,
            "out_of_corpus_first_quote": self.out_of_corpus_first_quote,
        }


@dataclass
class EvalRun:
    report: EvalReport
    records: list[QuestionRecord]


class _LastQueryEmbedder:
    """The embedder, remembering the vector of the last single text it embedded.

    ``forget()`` before each timed ``answer`` keeps the timing honest (the question is
    embedded inside it); the untimed ``search_chunks`` after it then reuses the vector.
    """

    def __init__(self, embedder: TextEncoder) -> None:
        self._embedder = embedder
        self._last: tuple[str, np.ndarray] | None = None

    def __getattr__(self, name: str):
        return getattr(self._embedder, name)

    def forget(self) -> None:
        self._last = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1 and self._last is not None and self._last[0] == texts[0]:
            return self._last[1][None, :]
        vectors = self._embedder.embed(texts)
        if len(texts) == 1:
            self._last = (texts[0], vectors[0])
        return vectors


def ask_as_user(question: str) -> str:
    """What ``QuoteBot.ask`` hands the retriever for a first question: white space collapsed."""
    return " ".join(question.split())


class Evaluation:
    """quotebot (the configured retriever) and the baselines over one open-corpus index."""

    def __init__(self, index: QuoteIndex, embedder: TextEncoder, retrieval: RetrievalSettings) -> None:
        self.index = index
        self.embedder = _LastQueryEmbedder(embedder)
        self.retrieval = retrieval
        unthresholded = retrieval.model_dump() | {"abstain_threshold": 0.0}
        self.retriever = Retriever(index, self.embedder, **unthresholded)  # type: ignore[arg-type]
        common = {"candidate_chunks": retrieval.candidate_chunks, "max_quotes": retrieval.max_quotes}
        self.systems: dict[str, Answerer] = {
            QUOTEBOT: self.retriever,
            Bm25Baseline.name: Bm25Baseline(index, **common),
            DenseBaseline.name: DenseBaseline(index, self.embedder, **common),  # type: ignore[arg-type]
        }

    def warm_up(self, question: str = "When was the first match played?") -> None:
        self.embedder.warm_up()
        for system in self.systems.values():
            system.answer(question)
            system.search_chunks(question, PASSAGE_DEPTH)

    def ask(self, question: SquadQuestion) -> QuestionRecord:
        text = ask_as_user(question.question)
        record = QuestionRecord(question)
        for name, system in self.systems.items():
            self.embedder.forget()
            started = time.perf_counter()
            answer = system.answer(text)
            latency_ms = (time.perf_counter() - started) * 1000
            ranking = system.search_chunks(text, PASSAGE_DEPTH)
            answered = answer.answered
            if name == QUOTEBOT:
                answered = answer.confidence >= self.retrieval.abstain_threshold
            record.systems[name] = self._record(question, answer, answered, ranking, latency_ms)
        return record

    def _record(
        self,
        question: SquadQuestion,
        answer: Answer,
        answered: bool,
        ranking: Sequence[tuple[int, float]],
        latency_ms: float,
    ) -> SystemRecord:
        raw_rank = metrics.quote_rank([q.text for q in answer.quotes], question.answers)
        article_ids = [self.index.chunks[chunk_id].article_id for chunk_id, _ in ranking[:PASSAGE_DEPTH]]
        first = answer.quotes[0] if answer.quotes else None
        marked = (
            (first.answer_start - first.start, first.answer_end - first.start)
            if first is not None and first.answer_start is not None and first.answer_end is not None
            else None
        )
        overlaps, f1 = metrics.marked_answer_scores(first.text, marked, question.answers) if first else (False, 0.0)
        return SystemRecord(
            answered=answered and first is not None,
            confidence=answer.confidence,
            quote_rank=raw_rank if answered else None,
            raw_quote_rank=raw_rank,
            passage_rank=metrics.passage_rank(article_ids, question.paragraph_id),
            latency_ms=round(latency_ms, 3),
            first_quote=first.text if first else None,
            first_quote_article=first.article_id if first else None,
            first_quote_sentences=self._sentences_in(first.article_id, first.start, first.end) if first else None,
            marked_answer=first.answer_text if first else None,
            marked_overlaps=overlaps,
            marked_f1=round(f1, 4),
        )

    def _sentences_in(self, article_id: str, start: int, end: int) -> int:
        return sum(1 for s in self.index.sentences_of(article_id) if s.start < end and start < s.end)


def evaluate(
    questions: Sequence[SquadQuestion],
    index: QuoteIndex,
    embedder: TextEncoder,
    retrieval: RetrievalSettings,
    *,
    dataset: CorpusInfo,
    articles: str,
    limit: int | None = None,
    out_of_corpus: tuple[QuoteIndex, CorpusInfo] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> EvalRun:
    """Ask every question of the three systems (and of ``out_of_corpus``), then score them."""
    started = time.perf_counter()
    load_before = load_average()
    evaluation = Evaluation(index, embedder, retrieval)
    evaluation.warm_up()
    records = []
    for done, question in enumerate(questions, 1):
        records.append(evaluation.ask(question))
        if on_progress:
            on_progress("asking", done, len(questions))
    abstention = None
    if out_of_corpus is not None:
        other_index, other_info = out_of_corpus
        other = Retriever(other_index, embedder, **(retrieval.model_dump() | {"abstain_threshold": 0.0}))
        for done, record in enumerate(records, 1):
            answer = other.answer(ask_as_user(record.question.question))
            record.out_of_corpus_confidence = answer.confidence
            record.out_of_corpus_first_quote = answer.quotes[0].text if answer.quotes else None
            if on_progress:
                on_progress(f"asking {other_info.file}", done, len(records))
        abstention = abstention_report(records, retrieval.abstain_threshold, other_info)
    report = EvalReport(
        dataset=dataset,
        articles=articles,
        limit=limit,
        questions=len(records),
        retrieval=retrieval.model_dump(),
        systems=[system_metrics(name, [r.systems[name] for r in records]) for name in evaluation.systems],
        abstention=abstention,
        query_encoder=f"{type(embedder).__name__} ({embedder.model})",
        seconds=round(time.perf_counter() - started, 1),
        machine=MachineLoad(cpus=os.cpu_count() or 0, load_before=load_before, load_after=load_average()),
    )
    return EvalRun(report, records)


def system_metrics(name: str, records: Sequence[SystemRecord]) -> SystemMetrics:
    quote_ranks = [r.quote_rank for r in records]
    passage_ranks = [r.passage_rank for r in records]
    latencies = [r.latency_ms for r in records]
    answered = [r for r in records if r.answered and r.first_quote is not None]
    within = [r.quote_rank if r.quote_rank != 1 or _within_limit(r) else None for r in records]
    hits = [r for r in records if r.quote_rank == 1]
    marked = [r for r in hits if r.marked_answer is not None]
    return SystemMetrics(
        system=name,
        quote_at_1=metrics.hit_rate(quote_ranks, 1),
        quote_at_1_within_limit=metrics.hit_rate(within, 1),
        quote_at_3=metrics.hit_rate(quote_ranks, 3),
        passage_at_1=metrics.hit_rate(passage_ranks, 1),
        passage_at_5=metrics.hit_rate(passage_ranks, 5),
        passage_at_20=metrics.hit_rate(passage_ranks, 20),
        mrr=metrics.mean_reciprocal_rank(quote_ranks),
        answered=metrics.rate([r.answered for r in records]),
        latency_p50_ms=round(metrics.percentile(latencies, 50), 2),
        latency_p95_ms=round(metrics.percentile(latencies, 95), 2),
        first_quote_chars_p50=metrics.percentile([len(r.first_quote or "") for r in answered], 50),
        first_quote_over_limit=sum(1 for r in answered if not _within_limit(r)),
        marked_in_hits=metrics.rate([r.marked_answer is not None for r in hits]) if marked else None,
        marked_overlap=metrics.rate([r.marked_overlaps for r in hits]) if marked else None,
        marked_f1=sum(r.marked_f1 for r in hits) / len(hits) if marked else None,
    )


def _within_limit(record: SystemRecord) -> bool:
    """Whether the first quote fits a chat bubble: at most two sentences and 400 characters."""
    return len(record.first_quote or "") <= MAX_QUOTE_CHARS and (record.first_quote_sentences or 0) <= MAX_QUOTE_SENTENCES


def abstention_report(records: Sequence[QuestionRecord], configured: float, other: CorpusInfo) -> AbstentionReport:
    ours = [r.systems[QUOTEBOT] for r in records]
    in_corpus = [r.confidence for r in ours]
    right = [r.raw_quote_rank == 1 for r in ours]
    out = [r.out_of_corpus_confidence or 0.0 for r in records]
    return AbstentionReport(
        out_of_corpus=other,
        questions=len(records),
        configured=threshold_point(configured, in_corpus, right, out),
        suggested=suggest_threshold(threshold_curve(in_corpus, right, out, SUGGESTION_THRESHOLDS)),
        gold_found_out_of_corpus=sum(
            1
            for r in records
            if r.out_of_corpus_first_quote and metrics.contains_answer(r.out_of_corpus_first_quote, r.question.answers)
        ),
        curve=threshold_curve(in_corpus, right, out),
    )


def unanswered_metrics(name: str, records: Sequence[QuestionRecord]) -> UnansweredMetrics:
    """One system on questions its corpus cannot answer: answering at all is the error."""
    ours = [r.systems[name] for r in records]
    return UnansweredMetrics(
        system=name,
        questions=len(records),
        wrong_answers=metrics.rate([s.answered for s in ours]),
        gold_in_first_quote=sum(
            1
            for r, s in zip(records, ours)
            if s.answered and s.first_quote and metrics.contains_answer(s.first_quote, r.question.answers)
        ),
    )


def _curve_of(in_corpus: Sequence[QuestionRecord], out_of_corpus: Sequence[QuestionRecord], configured: float):
    """quotebot's threshold curve and configured point: ``in_corpus`` answerable, ``out_of_corpus`` not."""
    confidences = [r.systems[QUOTEBOT].confidence for r in in_corpus]
    right = [r.systems[QUOTEBOT].raw_quote_rank == 1 for r in in_corpus]
    out = [r.systems[QUOTEBOT].confidence for r in out_of_corpus]
    return threshold_curve(confidences, right, out), threshold_point(configured, confidences, right, out)


def evaluate_per_article(
    questions: Sequence[SquadQuestion],
    titles: Sequence[str],
    article_index: Callable[[int], tuple[QuoteIndex, bool]],
    embedder: TextEncoder,
    retrieval: RetrievalSettings,
    *,
    foreign_per_article: int,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[PerArticleReport, list[QuestionRecord]]:
    """Each SQuAD article of ``questions`` indexed alone (``article_index(n)`` gives its index
    and whether it was made now), asked its own questions, then ``foreign_per_article`` of the
    other articles' questions among ``questions`` (evenly spread), which it cannot answer.

    Only questions of the chosen articles are asked, so the tuning and report halves stay apart.
    """
    started = time.perf_counter()
    numbers = sorted({q.article_number for q in questions})
    records: list[QuestionRecord] = []
    own_all: list[QuestionRecord] = []
    foreign_all: list[QuestionRecord] = []
    scores: list[ArticleScore] = []
    built = 0
    total = len(questions) + foreign_per_article * len(numbers)
    for number in numbers:
        index, built_now = article_index(number)
        built += built_now
        evaluation = Evaluation(index, embedder, retrieval)
        evaluation.warm_up()
        own = [q for q in questions if q.article_number == number]
        others = evenly_spread([q for q in questions if q.article_number != number], foreign_per_article)
        own_records, foreign_records = [], []
        for question in [*own, *others]:
            record = evaluation.ask(question)
            record.mode = "per-article" if question.article_number == number else "foreign"
            record.corpus = str(number)
            (own_records if record.mode == "per-article" else foreign_records).append(record)
            records.append(record)
            if on_progress:
                on_progress("per article", len(records), total)
        own_all += own_records
        foreign_all += foreign_records
        ours = system_metrics(QUOTEBOT, [r.systems[QUOTEBOT] for r in own_records])
        scores.append(
            ArticleScore(
                article=number,
                title=titles[number - 1],
                paragraphs=len(index.articles),
                chunks=len(index.chunks),
                questions=len(own_records),
                quote_at_1=round(ours.quote_at_1, 4),
                answered=round(ours.answered, 4),
                foreign_wrong_answers=round(unanswered_metrics(QUOTEBOT, foreign_records).wrong_answers, 4),
            )
        )
    names = list(own_all[0].systems) if own_all else [QUOTEBOT]
    curve, configured = _curve_of(own_all, foreign_all, retrieval.abstain_threshold)
    report = PerArticleReport(
        articles=len(numbers),
        questions=len(own_all),
        systems=[system_metrics(name, [r.systems[name] for r in own_all]) for name in names],
        foreign_questions=len(foreign_all),
        foreign_per_article=foreign_per_article,
        foreign=[unanswered_metrics(name, foreign_all) for name in names],
        configured=configured,
        curve=curve,
        per_article=scores,
        indexes_built_now=built,
        seconds=round(time.perf_counter() - started, 1),
    )
    return report, records


def evaluate_left_out(
    open_records: Sequence[QuestionRecord],
    counted: Sequence[SquadQuestion],
    index: QuoteIndex,
    embedder: TextEncoder,
    retrieval: RetrievalSettings,
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[LeftOutReport, list[QuestionRecord]]:
    """Ask each question of ``counted`` against the open ``index`` with its own paragraph left
    out of every search. ``open_records`` (the open-corpus run of the same questions) give the
    in-corpus side of the threshold curve; ``counted`` are those whose gold answers occur in
    no other paragraph (``squad.answer_only_in_own_paragraph``)."""
    started = time.perf_counter()
    view = ExcludingIndex(index)
    evaluation = Evaluation(view.index, embedder, retrieval)
    evaluation.warm_up()
    records = []
    for done, question in enumerate(counted, 1):
        view.leave_out([question.paragraph_id])
        record = evaluation.ask(question)
        record.mode = "left-out"
        records.append(record)
        if on_progress:
            on_progress("own paragraph left out", done, len(counted))
    view.leave_out([])
    ids = {q.id for q in counted}
    in_corpus = [r for r in open_records if r.question.id in ids]
    curve, configured = _curve_of(in_corpus, records, retrieval.abstain_threshold)
    report = LeftOutReport(
        questions=len(open_records),
        counted=len(records),
        systems=[unanswered_metrics(name, records) for name in evaluation.systems],
        configured=configured,
        curve=curve,
        seconds=round(time.perf_counter() - started, 1),
    )
    return report, records


def evaluate_news(
    mode: str,
    questions: Sequence[NewsQuestion],
    index_for: Callable[[str], QuoteIndex],
    embedder: TextEncoder,
    retrieval: RetrievalSettings,
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[NewsModeReport], list[QuestionRecord]]:
    """Ask every news question over ``index_for(article id)`` (the article alone, or one whole
    corpus for all), of quotebot and the baselines; one report per half."""
    records: list[QuestionRecord] = []
    evaluations: dict[int, Evaluation] = {}
    for number, question in enumerate(questions, 1):
        index = index_for(question.article_id)
        evaluation = evaluations.get(id(index))
        if evaluation is None:
            evaluations.clear()  # one index at a time: the article-alone indexes come in article order
            evaluation = evaluations[id(index)] = Evaluation(index, embedder, retrieval)
            evaluation.warm_up()
        record = evaluation.ask(question.as_gold(number))
        record.mode = mode
        record.corpus = question.article_id if mode == "article alone" else "whole corpus"
        records.append(record)
        if on_progress:
            on_progress(mode, number, len(questions))
    reports = []
    by_id = {q.id: q for q in questions}
    for half in ("tune", "report"):
        chosen = [r for r in records if by_id[r.question.id].half == half]
        if chosen:
            reports.append(_news_mode_report(mode, half, chosen, by_id, retrieval.abstain_threshold))
    return reports, records


def _news_mode_report(
    mode: str, half: str, records: list[QuestionRecord], by_id: dict[str, NewsQuestion], threshold: float
) -> NewsModeReport:
    answerable = [r for r in records if by_id[r.question.id].answerable]
    unanswerable = [r for r in records if not by_id[r.question.id].answerable]
    names = list(records[0].systems)
    _, configured = _curve_of(answerable, unanswerable, threshold)
    by_kind = []
    for kind in KINDS:
        of_kind = [r for r in records if by_id[r.question.id].kind == kind]
        if not of_kind:
            continue
        if kind == "unanswerable":
            by_kind.append(KindScore(kind=kind, questions=len(of_kind), wrong_answers=unanswered_metrics(QUOTEBOT, of_kind).wrong_answers))
        else:
            ranks = [r.systems[QUOTEBOT].quote_rank for r in of_kind]
            by_kind.append(KindScore(kind=kind, questions=len(of_kind), quote_at_1=metrics.hit_rate(ranks, 1)))
    return NewsModeReport(
        mode=mode,
        half=half,
        articles=len({by_id[r.question.id].article_id for r in records}),
        answerable=len(answerable),
        systems=[system_metrics(name, [r.systems[name] for r in answerable]) for name in names],
        unanswerable=len(unanswerable),
        abstention=[unanswered_metrics(name, unanswerable) for name in names],
        configured=configured,
        by_kind=by_kind,
    )


def load_average() -> float | None:
    """The 1-minute load average: latency means little on a machine busy with other work."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
