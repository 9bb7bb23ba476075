"""The report of ``quotebot eval``: a pydantic model (``--json``) and its table for people."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from quotebot.retrieval.evaluation.abstention import WRONG_ABSTAIN_TARGET, WRONG_ANSWER_TARGET, ThresholdPoint


class SystemMetrics(BaseModel):
    """One system's scores over the questions asked; rates in 0..1 (see ``metrics``)."""

    model_config = ConfigDict(frozen=True)

    system: str
    quote_at_1: float
    quote_at_1_within_limit: float  # quote@1 counting only first quotes of <= 2 sentences and <= 400 chars
    quote_at_3: float
    passage_at_1: float
    passage_at_5: float
    passage_at_20: float
    mrr: float
    answered: float
    latency_p50_ms: float
    latency_p95_ms: float
    first_quote_chars_p50: float  # over answered questions
    first_quote_over_limit: int  # answered questions whose first quote is > 2 sentences or > 400 chars
    # Over quote@1 hits, the answer marked inside the first quote (None: the system marks none):
    marked_in_hits: float | None = None  # share of hits with a marked answer
    marked_overlap: float | None = None  # share of hits whose marked answer overlaps a gold answer
    marked_f1: float | None = None  # mean token F1 of the marked answer (0 where none is marked)


class CorpusInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    sha256: str
    articles: int
    chunks: int
    sentences: int
    index_built_now: bool


class MachineLoad(BaseModel):
    """Where latency was measured: CPUs and the 1-minute load average before and after the run."""

    model_config = ConfigDict(frozen=True)

    cpus: int
    load_before: float | None
    load_after: float | None


class AbstentionReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    out_of_corpus: CorpusInfo
    questions: int
    configured: ThresholdPoint  # at the configured retrieval.abstain_threshold
    suggested: ThresholdPoint | None  # on a 0.01 grid, by the rule of abstention.suggest_threshold
    wrong_answer_target: float = WRONG_ANSWER_TARGET
    wrong_abstain_target: float = WRONG_ABSTAIN_TARGET
    gold_found_out_of_corpus: int  # out-of-corpus first quotes that contain a gold answer anyway
    curve: list[ThresholdPoint]


class UnansweredMetrics(BaseModel):
    """One system on questions the corpus does not answer: every answer is a wrong one."""

    model_config = ConfigDict(frozen=True)

    system: str
    questions: int
    wrong_answers: float  # share answered (quotebot: confidence >= the configured threshold)
    gold_in_first_quote: int  # answered with a first quote holding a gold answer anyway (a check: ~0)


class ArticleScore(BaseModel):
    """quotebot on one SQuAD article indexed alone."""

    model_config = ConfigDict(frozen=True)

    article: int  # 1-based SQuAD article number
    title: str
    paragraphs: int
    chunks: int
    questions: int
    quote_at_1: float
    answered: float
    foreign_wrong_answers: float  # other articles' questions asked against it, answered


class PerArticleReport(BaseModel):
    """``--per-article``: each SQuAD article indexed alone, asked its own questions and some of
    the other articles' (of the same half), which it cannot answer."""

    model_config = ConfigDict(frozen=True)

    articles: int
    questions: int  # own questions, each asked against its own article
    systems: list[SystemMetrics]
    foreign_questions: int  # other articles' questions, summed over the articles
    foreign_per_article: int
    foreign: list[UnansweredMetrics]
    configured: ThresholdPoint  # own questions in corpus, foreign ones out of corpus
    curve: list[ThresholdPoint]
    per_article: list[ArticleScore]
    indexes_built_now: int
    seconds: float


class LeftOutReport(BaseModel):
    """``--left-out``: each question against the open corpus without its own paragraph, counted
    only when no gold answer string is left anywhere in the corpus (the subject is there, the
    answer is not)."""

    model_config = ConfigDict(frozen=True)

    questions: int  # asked in the main run
    counted: int  # of them, those whose every gold answer occurs in no other paragraph
    systems: list[UnansweredMetrics]
    configured: ThresholdPoint  # the open-corpus run in corpus, the left-out run out of corpus
    curve: list[ThresholdPoint]
    seconds: float


class KindScore(BaseModel):
    """quotebot on one kind of question: quote@1 for answerable kinds, wrong answers for unanswerable."""

    model_config = ConfigDict(frozen=True)

    kind: str
    questions: int
    quote_at_1: float | None = None
    wrong_answers: float | None = None


class NewsModeReport(BaseModel):
    """One way of asking the news set (the article alone, or the whole corpus), one half."""

    model_config = ConfigDict(frozen=True)

    mode: str  # "article alone" or "whole corpus"
    half: str  # "tune" or "report"
    articles: int
    answerable: int
    systems: list[SystemMetrics]  # over the answerable questions
    unanswerable: int
    abstention: list[UnansweredMetrics]  # over the unanswerable ones
    configured: ThresholdPoint  # quotebot: answerable in corpus, unanswerable out of it
    by_kind: list[KindScore]


class NewsReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    questions_file: str
    sha256: str
    questions: int
    articles: int
    corpus: CorpusInfo | None  # the whole corpus (None when only the articles alone were asked)
    corpus_files: list[str]  # each as "<file>: <articles used> of <articles in it>"
    retrieval: dict[str, Any]
    modes: list[NewsModeReport]
    query_encoder: str = ""
    seconds: float
    machine: MachineLoad | None = None


class EvalReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    dataset: CorpusInfo  # the open corpus: every paragraph of the file
    articles: str  # the SQuAD articles whose questions were asked, "A:B" (1-based, inclusive) or "all"
    limit: int | None
    questions: int
    retrieval: dict[str, Any]  # the configured retrieval settings quotebot ran with
    systems: list[SystemMetrics]
    abstention: AbstentionReport | None = None
    per_article: PerArticleReport | None = None
    left_out: LeftOutReport | None = None
    query_encoder: str = ""  # what embedded the questions (the bot's: the index's ONNX export, else torch)
    seconds: float
    machine: MachineLoad | None = None


def render_table(report: EvalReport) -> str:
    """The report for people: the systems side by side, then the abstention curve."""
    data = report.dataset
    limit = f", limit {report.limit}" if report.limit else ""
    lines = [
        f"SQuAD {data.file}: questions of articles {report.articles} ({report.questions:,} questions{limit}); "
        f"open corpus of all {data.articles:,} paragraphs ({data.chunks:,} chunks)",
        "retrieval: " + ", ".join(f"{key}={value}" for key, value in report.retrieval.items()),
        f"questions embedded by {report.query_encoder}",
        "",
        *_system_lines(report.systems),
        "",
    ]
    lines.append(
        "q@1 fit: quote@1 counting only first quotes of at most 2 sentences and 400 chars; "
        "first quotes (answered), p50 chars / how many do not fit: "
        + ", ".join(f"{s.system} {s.first_quote_chars_p50:.0f}/{s.first_quote_over_limit}" for s in report.systems)
    )
    for s in report.systems:
        if s.marked_overlap is not None:
            lines.append(
                f"answer marked in {s.system}'s quote@1 hits: marked {s.marked_in_hits:.3f}, "
                f"overlaps a gold answer {s.marked_overlap:.3f}, token F1 {s.marked_f1:.3f}"
            )
    if report.abstention:
        lines += ["", *_abstention_lines(report.abstention)]
    if report.per_article:
        lines += ["", *_per_article_lines(report.per_article)]
    if report.left_out:
        lines += ["", *_left_out_lines(report.left_out)]
    machine = report.machine
    load = (
        f"; {machine.cpus} CPUs, load average {machine.load_before} before, {machine.load_after} after"
        if machine
        else ""
    )
    lines += ["", f"({report.seconds:.0f} s{load})"]
    return "\n".join(lines)


def _abstention_lines(a: AbstentionReport) -> list[str]:
    other = a.out_of_corpus
    lines = [
        f"abstention: the same {a.questions:,} questions against {other.file} "
        f"({other.articles:,} articles, {other.chunks:,} chunks), where the answers are not",
        f"{'threshold':>9} {'wrong answers':>13} {'wrong abstentions':>17} {'quote@1':>7}",
    ]
    for p in a.curve:
        lines.append(f"{p.threshold:>9.2f} {p.wrong_answer_rate:>13.3f} {p.wrong_abstain_rate:>17.3f} {p.quote_at_1:>7.3f}")
    c = a.configured
    lines.append(
        f"configured threshold {c.threshold:g}: wrong answers {c.wrong_answer_rate:.1%}, "
        f"wrong abstentions {c.wrong_abstain_rate:.1%}, quote@1 {c.quote_at_1:.3f}"
    )
    if a.suggested is not None:
        g = a.suggested
        lines.append(
            f"suggested threshold {g.threshold:.2f}: wrong answers {g.wrong_answer_rate:.1%}, "
            f"wrong abstentions {g.wrong_abstain_rate:.1%}, quote@1 {g.quote_at_1:.3f} "
            f"(0.01 grid: best quote@1 with both <= {a.wrong_answer_target:.0%}/{a.wrong_abstain_target:.0%}, "
            f"else the smallest worse error)"
        )
    lines.append(f"out-of-corpus first quotes that hold a gold answer anyway: {a.gold_found_out_of_corpus}")
    return lines


def _system_lines(systems: list[SystemMetrics]) -> list[str]:
    lines = [
        f"{'system':<9} {'quote@1':>7} {'q@1 fit':>7} {'quote@3':>7} {'pass@1':>7} {'pass@5':>7} {'pass@20':>7} "
        f"{'MRR':>6} {'answered':>8} {'p50 ms':>7} {'p95 ms':>7}",
    ]
    for s in systems:
        lines.append(
            f"{s.system:<9} {s.quote_at_1:>7.3f} {s.quote_at_1_within_limit:>7.3f} {s.quote_at_3:>7.3f} "
            f"{s.passage_at_1:>7.3f} {s.passage_at_5:>7.3f} {s.passage_at_20:>7.3f} {s.mrr:>6.3f} "
            f"{s.answered:>8.3f} {s.latency_p50_ms:>7.1f} {s.latency_p95_ms:>7.1f}"
        )
    return lines


def _unanswered_lines(systems: list[UnansweredMetrics]) -> list[str]:
    lines = [f"{'system':<9} {'questions':>9} {'wrong answers':>13} {'gold in 1st quote':>17}"]
    for s in systems:
        lines.append(f"{s.system:<9} {s.questions:>9,} {s.wrong_answers:>13.3f} {s.gold_in_first_quote:>17}")
    return lines


def _point_line(label: str, p: ThresholdPoint) -> str:
    return (
        f"{label} {p.threshold:g}: wrong answers {p.wrong_answer_rate:.1%}, "
        f"wrong abstentions {p.wrong_abstain_rate:.1%}, quote@1 {p.quote_at_1:.3f}"
    )


def _curve_lines(curve: list[ThresholdPoint], every: int = 2) -> list[str]:
    lines = [f"{'threshold':>9} {'wrong answers':>13} {'wrong abstentions':>17} {'quote@1':>7}"]
    for p in curve[::every]:
        lines.append(f"{p.threshold:>9.2f} {p.wrong_answer_rate:>13.3f} {p.wrong_abstain_rate:>17.3f} {p.quote_at_1:>7.3f}")
    return lines


def _per_article_lines(r: PerArticleReport) -> list[str]:
    worst = sorted(r.per_article, key=lambda a: a.quote_at_1)[:5]
    return [
        f"per article: each of {r.articles} SQuAD articles indexed alone "
        f"({r.indexes_built_now} indexes made now, from the open corpus's vectors); {r.questions:,} own questions",
        *_system_lines(r.systems),
        "",
        f"other articles' questions against each article alone ({r.foreign_per_article} per article, "
        f"{r.foreign_questions:,} in all): every answer is wrong",
        *_unanswered_lines(r.foreign),
        "quotebot by threshold (own questions in corpus, other articles' out of corpus):",
        *_curve_lines(r.curve),
        _point_line("configured threshold", r.configured),
        "weakest articles (quote@1 / answered / others' wrong answers): "
        + "; ".join(f"{a.article} {a.title} {a.quote_at_1:.2f}/{a.answered:.2f}/{a.foreign_wrong_answers:.2f}" for a in worst),
        f"({r.seconds:.0f} s)",
    ]


def _left_out_lines(r: LeftOutReport) -> list[str]:
    return [
        f"related but unanswered: {r.counted:,} of the {r.questions:,} questions asked against the open corpus "
        f"without their own paragraph (only those whose gold answers occur in no other paragraph)",
        *_unanswered_lines(r.systems),
        "quotebot by threshold (open corpus in corpus, own paragraph left out out of corpus):",
        *_curve_lines(r.curve),
        _point_line("configured threshold", r.configured),
        f"({r.seconds:.0f} s)",
    ]


def render_news_table(report: NewsReport) -> str:
    """The news-set report for people: per mode and half, the systems side by side."""
    lines = [
        f"news set {report.questions_file}: {report.questions} questions over {report.articles} articles",
        (
            f"whole corpus: {report.corpus.articles:,} articles ({report.corpus.chunks:,} chunks) from "
            if report.corpus
            else "articles alone, from "
        )
        + "; ".join(report.corpus_files),
        "retrieval: " + ", ".join(f"{key}={value}" for key, value in report.retrieval.items()),
        f"questions embedded by {report.query_encoder}",
    ]
    for m in report.modes:
        lines += [
            "",
            f"{m.mode}, {m.half} half: {m.articles} articles, {m.answerable} answerable questions, "
            f"{m.unanswerable} unanswerable",
            *_system_lines(m.systems),
            "unanswerable (the article is about the subject, not the answer):",
            *_unanswered_lines(m.abstention),
            _point_line("quotebot at threshold", m.configured),
            "quotebot by kind: "
            + ", ".join(
                f"{k.kind} {k.quote_at_1:.2f}" if k.quote_at_1 is not None else f"{k.kind} wrong {k.wrong_answers:.2f}"
                for k in m.by_kind
            )
            + " (n: "
            + ", ".join(f"{k.questions}" for k in m.by_kind)
            + ")",
        ]
    machine = report.machine
    load = f"; {machine.cpus} CPUs, load average {machine.load_before} before, {machine.load_after} after" if machine else ""
    lines += ["", f"({report.seconds:.0f} s{load})"]
    return "\n".join(lines)
