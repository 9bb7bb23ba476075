"""The `quotebot eval` harness on a tiny hand-made SQuAD-format file (no shared data needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from quotebot.bot import eval_command, wiring
from quotebot.bot.cli import ExitCode, main
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder
from quotebot.index.manifest import ChunkingSettings
from quotebot.retrieval.evaluation import metrics
from quotebot.retrieval.evaluation.abstention import (
    THRESHOLDS,
    ThresholdPoint,
    suggest_threshold,
    threshold_curve,
    threshold_point,
)
from quotebot.index.onnx_encoder import SHARED_EXPORTS, OnnxQueryEncoder, encoder_dir
from quotebot.retrieval.evaluation.cache import article_file_index, squad_index, subset_index
from quotebot.retrieval.evaluation.harness import (
    QUOTEBOT,
    Evaluation,
    SystemRecord,
    evaluate,
    evaluate_left_out,
    evaluate_per_article,
    system_metrics,
)
from quotebot.retrieval.evaluation.masking import ExcludingIndex
from quotebot.retrieval.evaluation.news import NewsSetError, corpus_articles, half_of, load_news_set
from quotebot.index.loaders import load_articles
from quotebot.index.articles import Article
from quotebot.retrieval.evaluation.report import CorpusInfo, render_table
from quotebot.retrieval.evaluation.squad import SquadFormatError, SquadQuestion, load_squad, parse_article_range
from tests.conftest import SEEDS, assert_quotes_verbatim

PARAGRAPHS = {
    "Lake_Aldmere": [
        "Lake Aldmere is a freshwater lake in the northern highlands. It covers an area of 42 square "
        "kilometres and is nowhere deeper than 60 metres. The lake was formed by retreating glaciers "
        "about 12,000 years ago.",
        "The village of Harrowby sits on the eastern shore of the lake. Its stone harbour was built in "
        "1847 by the engineer Thomas Reddle. Fishing boats still leave the harbour every morning.",
    ],
    "Copper_mining_in_Calder_Valley": [
        "Copper has been mined in the Calder Valley since the Bronze Age. The largest mine, Great Orme "
        "Deep, closed in 1921 after its lower shafts flooded. More than two hundred miners lost their jobs.",
        "Copper ore was carried by rail to the smelter at Port Caldy. The railway opened in 1868 and was "
        "the first in the county to use steam locomotives.",
    ],
}
# (article, paragraph index, question, gold answers)
QUESTIONS = [
    ("Lake_Aldmere", 0, "How large is Lake Aldmere?", ["42 square kilometres", "42 square  kilometres"]),
    ("Lake_Aldmere", 1, "Who built the harbour of Harrowby?", ["Thomas Reddle", "the engineer Thomas Reddle"]),
    ("Lake_Aldmere", 1, "When was the stone harbour in Harrowby built?", ["1847"]),
    ("Copper_mining_in_Calder_Valley", 0, "When did the Great Orme Deep mine close?", ["1921"]),
    ("Copper_mining_in_Calder_Valley", 1, "Where was the copper ore smelted?", ["Port Caldy"]),
    ("Copper_mining_in_Calder_Valley", 1, "What is the colour of copper?", []),  # unanswerable: skipped
]


def write_squad(path: Path) -> Path:
    data = []
    for title, contexts in PARAGRAPHS.items():
        paragraphs = []
        for number, context in enumerate(contexts):
            qas = []
            for q_number, (q_title, q_paragraph, question, answers) in enumerate(QUESTIONS):
                if (q_title, q_paragraph) == (title, number):
                    gold = [{"text": a, "answer_start": context.find(" ".join(a.split()))} for a in answers]
                    qas.append({"id": f"q{q_number + 1}", "question": question, "answers": gold})
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    return write_squad(tmp_path / "tiny-squad.json")


@pytest.fixture
def cache(tmp_path: Path, seed_index_dir: Path, settings: Settings) -> Path:
    """An eval cache that already holds the ONNX query encoder (exported with the seed index)."""
    cache = tmp_path / "cache"
    model = settings.index.model
    shutil.copytree(encoder_dir(seed_index_dir, model), encoder_dir(cache / SHARED_EXPORTS, model))
    return cache


# -- metrics -------------------------------------------------------------------------------


def test_normalize_lowercases_and_collapses_white_space() -> None:
    assert metrics.normalize("  The\n Quick\t\tFox  ") == "the quick fox"
    assert metrics.normalize("") == ""


def test_contains_answer_after_normalising_both_sides() -> None:
    quote = "Its stone harbour was built in\n1847 by  the engineer Thomas REDDLE."
    assert metrics.contains_answer(quote, ["thomas reddle"])
    assert metrics.contains_answer(quote, ["nobody", "Engineer  Thomas"])
    assert not metrics.contains_answer(quote, ["Reddle Thomas"])
    assert not metrics.contains_answer(quote, ["", "  "])  # a blank gold answer matches nothing
    assert not metrics.contains_answer(quote, [])


def test_quote_rank_is_the_first_quote_holding_an_answer() -> None:
    quotes = ["It flooded.", "The mine closed in 1921.", "In 1921 it closed."]
    assert metrics.quote_rank(quotes, ["1921"]) == 2
    assert metrics.quote_rank(quotes, ["flooded", "1921"]) == 1
    assert metrics.quote_rank(quotes, ["1868"]) is None
    assert metrics.quote_rank([], ["1921"]) is None


def test_passage_rank_counts_chunks_not_articles() -> None:
    ranking = ["B/1", "B/1", "A/2", "A/1"]
    assert metrics.passage_rank(ranking, "A/2") == 3
    assert metrics.passage_rank(ranking, "B/1") == 1
    assert metrics.passage_rank(ranking, "C/1") is None


def test_hit_rate_and_mrr_by_hand() -> None:
    ranks = [1, 2, None, 4]
    assert metrics.hit_rate(ranks, 1) == 0.25
    assert metrics.hit_rate(ranks, 3) == 0.5
    assert metrics.hit_rate(ranks, 5) == 0.75
    assert metrics.mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)  # 0.4375
    assert metrics.hit_rate([], 1) == 0.0
    assert metrics.mean_reciprocal_rank([]) == 0.0
    assert metrics.rate([True, False, True, True]) == 0.75


def test_percentile_interpolates_linearly() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert metrics.percentile(values, 50) == 25.0
    assert metrics.percentile(values, 95) == pytest.approx(38.5)  # rank 2.85: 30 + 0.85 * 10
    assert metrics.percentile(values, 0) == 10.0
    assert metrics.percentile(values, 100) == 40.0
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) == 0.0
    with pytest.raises(ValueError):
        metrics.percentile(values, 101)


def test_system_metrics_by_hand() -> None:
    def record(rank: int | None, passage: int | None, latency: float, quote: str | None, sentences: int = 1) -> SystemRecord:
        return SystemRecord(
            answered=quote is not None, confidence=0.9, quote_rank=rank, raw_quote_rank=rank, passage_rank=passage,
            latency_ms=latency, first_quote=quote, first_quote_article="A/1" if quote else None,
            first_quote_sentences=sentences if quote else None,
        )

    records = [
        record(1, 1, 10.0, "x" * 100),
        record(1, 3, 20.0, "x" * 401),  # right, but too long for a chat bubble
        record(3, 6, 30.0, "x" * 50, sentences=2),
        record(None, None, 40.0, None),  # abstained
    ]
    m = system_metrics("quotebot", records)
    assert (m.quote_at_1, m.quote_at_1_within_limit, m.quote_at_3) == (0.5, 0.25, 0.75)
    assert (m.passage_at_1, m.passage_at_5, m.passage_at_20) == (0.25, 0.5, 0.75)
    assert m.mrr == pytest.approx((1 + 1 + 1 / 3) / 4)
    assert m.answered == 0.75
    assert (m.latency_p50_ms, m.latency_p95_ms) == (25.0, 38.5)
    assert (m.first_quote_chars_p50, m.first_quote_over_limit) == (100.0, 1)


# -- abstention ----------------------------------------------------------------------------


def test_threshold_point_by_hand() -> None:
    in_corpus = [0.9, 0.5, 0.2, 0.6]
    right = [True, False, True, True]
    out_of_corpus = [0.1, 0.4, 0.7]
    point = threshold_point(0.5, in_corpus, right, out_of_corpus)
    assert point.wrong_answer_rate == pytest.approx(1 / 3)  # only 0.7 is answered
    assert point.wrong_abstain_rate == 0.25  # only 0.2 is abstained on (0.5 >= 0.5 answers)
    assert point.quote_at_1 == 0.5  # 0.9 and 0.6 answered right; 0.5 answered wrong; 0.2 abstained
    curve = threshold_curve(in_corpus, right, out_of_corpus)
    assert [p.threshold for p in curve] == list(THRESHOLDS) and THRESHOLDS[:3] == (0.0, 0.05, 0.1)
    assert (curve[0].wrong_answer_rate, curve[0].wrong_abstain_rate, curve[0].quote_at_1) == (1.0, 0.0, 0.75)
    assert (curve[-1].wrong_answer_rate, curve[-1].wrong_abstain_rate, curve[-1].quote_at_1) == (0.0, 1.0, 0.0)


def test_suggested_threshold_meets_both_targets_with_the_best_quote_at_1() -> None:
    def point(t: float, wrong_answer: float, wrong_abstain: float, q1: float) -> ThresholdPoint:
        return ThresholdPoint(threshold=t, wrong_answer_rate=wrong_answer, wrong_abstain_rate=wrong_abstain, quote_at_1=q1)

    curve = [point(0.3, 0.20, 0.02, 0.80), point(0.4, 0.09, 0.05, 0.78), point(0.5, 0.05, 0.08, 0.78), point(0.6, 0.02, 0.2, 0.7)]
    assert suggest_threshold(curve).threshold == 0.4  # 0.4 and 0.5 meet both; same quote@1: the lower
    # Nothing meets both: the smallest worse error (0.5: max 0.15).
    curve = [point(0.3, 0.30, 0.05, 0.8), point(0.5, 0.15, 0.12, 0.7), point(0.7, 0.05, 0.3, 0.5)]
    assert suggest_threshold(curve).threshold == 0.5
    assert suggest_threshold([]) is None


# -- SQuAD loading -------------------------------------------------------------------------


def test_every_paragraph_becomes_an_article(squad_file: Path) -> None:
    squad = load_squad(squad_file)
    assert [a.id for a in squad.articles] == [
        "Lake_Aldmere/1",
        "Lake_Aldmere/2",
        "Copper_mining_in_Calder_Valley/1",
        "Copper_mining_in_Calder_Valley/2",
    ]
    assert squad.articles[2].title == "Copper mining in Calder Valley"
    assert squad.articles[1].text == PARAGRAPHS["Lake_Aldmere"][1]
    assert squad.titles == ("Lake_Aldmere", "Copper_mining_in_Calder_Valley")
    assert len(squad.sha256) == 64


def test_questions_carry_gold_answers_and_paragraph(squad_file: Path) -> None:
    questions = load_squad(squad_file).questions
    assert [q.id for q in questions] == ["q1", "q2", "q3", "q4", "q5"]  # q6 has no answer
    assert questions[1].answers == ("Thomas Reddle", "the engineer Thomas Reddle")
    assert questions[1].paragraph_id == "Lake_Aldmere/2"
    assert [q.article_number for q in questions] == [1, 1, 1, 2, 2]


def test_articles_range_narrows_questions_not_the_corpus(squad_file: Path) -> None:
    squad = load_squad(squad_file)
    assert [q.id for q in squad.select((2, 2))] == ["q4", "q5"]
    assert [q.id for q in squad.select((1, 2))] == ["q1", "q2", "q3", "q4", "q5"]
    assert len(squad.articles) == 4
    assert [q.id for q in squad.select(None, 2)] == ["q1", "q3"]  # evenly spread: 0 and 5 // 2
    assert [q.id for q in squad.select((1, 1), 10)] == ["q1", "q2", "q3"]
    with pytest.raises(ValueError, match="articles 1 to 2"):
        squad.select((2, 3))


def test_parse_article_range() -> None:
    assert parse_article_range("25:48") == (25, 48)
    assert parse_article_range("7") == (7, 7)
    for bad in ("x", "3:1", "0:4", "1:"):
        with pytest.raises(ValueError):
            parse_article_range(bad)


def test_bad_squad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SquadFormatError, match="no such file"):
        load_squad(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SquadFormatError, match="not valid JSON"):
        load_squad(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(SquadFormatError, match="not a SQuAD-format file"):
        load_squad(tmp_path / "other.json")


# -- end to end ----------------------------------------------------------------------------

CHUNKING = ChunkingSettings(chunk_tokens=120, chunk_overlap=1)


def _builder(embedder: Embedder):
    """The eval's index builder, wired from settings as `quotebot eval` wires it."""
    index = Settings().index.model_copy(update=CHUNKING.model_dump())
    return wiring.new_builder(index, embedder, export_onnx=False)


@pytest.mark.slow
def test_harness_scores_three_systems_over_the_open_corpus(
    squad_file: Path, cache: Path, embedder: Embedder, settings: Settings
) -> None:
    squad = load_squad(squad_file)
    first = squad_index(squad, cache, _builder(embedder))
    assert first.built and first.index.manifest.counts.articles == 4
    assert OnnxQueryEncoder.available(encoder_dir(first.index_dir, embedder.model))  # like `quotebot index build`
    again = squad_index(squad, cache, _builder(embedder))
    assert not again.built and again.index_dir == first.index_dir  # cached by content hash: a rerun only re-asks
    seeds = article_file_index(SEEDS / sorted(p.name for p in SEEDS.iterdir())[0], cache, _builder(embedder)).index
    index = again.index
    info = CorpusInfo(file="tiny", sha256=squad.sha256, articles=4, chunks=len(index.chunks), sentences=0, index_built_now=True)
    run = evaluate(
        squad.select(), index, embedder, settings.retrieval, dataset=info, articles="all",
        out_of_corpus=(seeds, info.model_copy(update={"file": "seeds"})),
    )
    report = run.report
    assert [s.system for s in report.systems] == ["quotebot", "BM25", "dense"]
    assert report.questions == 5
    by_name = {s.system: s for s in report.systems}
    for s in report.systems:
        assert 0 <= s.quote_at_1 <= s.quote_at_3 <= 1
        assert s.passage_at_1 <= s.passage_at_5 <= s.passage_at_20 <= 1
        assert s.first_quote_over_limit == 0
        assert s.latency_p50_ms <= s.latency_p95_ms
    # Four one-chunk paragraphs: the gold one is always among the first five of the ranking.
    assert by_name["quotebot"].passage_at_5 == 1.0 and by_name["dense"].passage_at_5 == 1.0
    assert by_name["quotebot"].quote_at_1 >= 0.8
    records = {r.question.id: r.systems[QUOTEBOT] for r in run.records}
    assert records["q4"].first_quote == "The largest mine, Great Orme Deep, closed in 1921 after its lower shafts flooded."
    assert records["q4"].quote_rank == 1 and records["q4"].passage_rank == 1
    # Abstention: 21 thresholds; at 0 everything is answered, above 1 nothing.
    curve = report.abstention.curve
    assert len(curve) == 21 and curve[0].wrong_answer_rate == 1.0 and curve[0].wrong_abstain_rate == 0.0
    assert all(a.wrong_answer_rate >= b.wrong_answer_rate for a, b in zip(curve, curve[1:]))
    assert report.abstention.configured.threshold == settings.retrieval.abstain_threshold
    assert "quotebot" in render_table(report) and "suggested threshold" in render_table(report)


@pytest.mark.slow
def test_every_system_quotes_verbatim(squad_file: Path, cache: Path, embedder: Embedder, settings: Settings) -> None:
    squad = load_squad(squad_file)
    index = squad_index(squad, cache, _builder(embedder)).index
    texts = {a.id: a.text for a in squad.articles}
    evaluation = Evaluation(index, embedder, settings.retrieval)
    for system in evaluation.systems.values():
        for question in squad.questions:
            answer = system.answer(question.question)
            assert answer.quotes and len(answer.quotes) <= settings.retrieval.max_quotes
            assert_quotes_verbatim(answer, texts)


@pytest.mark.slow
def test_search_chunks_extends_the_ranking_answer_uses(
    squad_file: Path, cache: Path, embedder: Embedder, settings: Settings
) -> None:
    index = squad_index(load_squad(squad_file), cache, _builder(embedder)).index
    retriever = Evaluation(index, embedder, settings.retrieval).retriever
    ranking = retriever.search_chunks("Who built the harbour of Harrowby?", 20)
    assert len(ranking) == 4 and retriever.candidate_chunks == settings.retrieval.candidate_chunks
    assert index.chunks[ranking[0][0]].article_id == "Lake_Aldmere/2"
    assert [score for _, score in ranking] == sorted((score for _, score in ranking), reverse=True)


# -- the command ---------------------------------------------------------------------------


@pytest.mark.e2e
def test_eval_command_prints_json_and_writes_records(
    squad_file: Path,
    cache: Path,
    tmp_path: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(eval_command, "_embedder", lambda settings: embedder)
    records = tmp_path / "records.jsonl"
    argv = ["eval", "squad", str(squad_file), "--articles", "2:2", "--cache-dir", str(cache)]
    assert main(argv + ["--json", "--records", str(records)]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 2 and report["articles"] == "2:2"
    assert report["dataset"]["articles"] == 4 and report["dataset"]["index_built_now"] is True
    assert {s["system"] for s in report["systems"]} == {"quotebot", "BM25", "dense"}
    assert report["query_encoder"] == "OnnxQueryEncoder (all-MiniLM-L6-v2)"  # the bot's own query path
    lines = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["q4", "q5"]
    assert main(argv + ["--limit", "1"]) == ExitCode.OK  # a table this time, from the cache
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("SQuAD tiny-squad.json: questions of articles 2:2 (1 questions, limit 1)")


def test_eval_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "squad", str(tmp_path / "missing.json")]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json: no such file" in err
    write_squad(tmp_path / "s.json")
    assert main(["eval", "squad", str(tmp_path / "s.json"), "--articles", "3:4"]) == ExitCode.USAGE
    assert "the file has articles 1 to 2" in capsys.readouterr().err
    assert main(["eval", "squad", str(tmp_path / "s.json"), "--abstention", str(tmp_path / "no.jsonl")]) == ExitCode.BAD_INPUT
    assert "no such articles file" in capsys.readouterr().err


# -- one-article corpora, left-out paragraphs ---------------------------------------------


class _NoEmbedding:
    """An embedder that must not be asked to embed: subset indexes reuse the source's vectors."""

    def __init__(self, embedder: Embedder) -> None:
        self.model = embedder.model
        self.batch_size = embedder.batch_size
        self.dimension = embedder.dimension

    def embed(self, texts: list[str]):
        raise AssertionError(f"asked to embed {len(texts)} texts")


def test_subset_index_holds_only_its_articles_and_embeds_nothing(
    squad_file: Path, cache: Path, embedder: Embedder
) -> None:
    squad = load_squad(squad_file)
    source = squad_index(squad, cache, _builder(embedder))
    wanted = squad.article_ids(2)
    assert wanted == ["Copper_mining_in_Calder_Valley/1", "Copper_mining_in_Calder_Valley/2"]
    sub = subset_index(source, wanted, cache / "sub" / "002", _builder(_NoEmbedding(embedder)))
    assert sub.built and list(sub.index.articles) == wanted
    assert len(sub.index.keywords) == len(sub.index.chunks) == sum(len(source.index.chunk_ids_of(a)) for a in wanted)
    for article_id in wanted:  # the same chunks, with the very vectors of the open corpus
        ids = sub.index.chunk_ids_of(article_id)
        assert ids == source.index.chunk_ids_of(article_id)
        assert (sub.index.vectors.vectors(ids) == source.index.vectors.vectors(ids)).all()
    # BM25 statistics are the small corpus's own: "copper" is in both of its chunks, so it
    # weighs less there than in the open corpus, where two of four chunks hold it.
    assert sub.index.keywords.idf(["copper"])[0] < source.index.keywords.idf(["copper"])[0]
    again = subset_index(source, wanted, cache / "sub" / "002", _builder(_NoEmbedding(embedder)))
    assert not again.built and list(again.index.articles) == wanted
    # The source, whose files the subset was seeded from by hard links, is intact.
    reloaded = squad_index(squad, cache, _builder(embedder))
    assert not reloaded.built and len(reloaded.index.articles) == 4


def test_excluding_index_leaves_articles_out_of_both_searches(
    squad_file: Path, cache: Path, embedder: Embedder
) -> None:
    index = squad_index(load_squad(squad_file), cache, _builder(embedder)).index
    vector = embedder.embed(["Who built the harbour of Harrowby?"])[0]
    tokens = ["harbour", "harrowby"]
    view = ExcludingIndex(index)
    assert view.index.vectors.search(vector, 4)[0].tolist() == index.vectors.search(vector, 4)[0].tolist()
    view.leave_out(["Lake_Aldmere/2"])
    left_out = set(index.chunk_ids_of("Lake_Aldmere/2"))
    dense_all = [i for i in index.vectors.search(vector, 4)[0].tolist() if i not in left_out]
    dense_view = view.index.vectors.search(vector, 3)[0].tolist()
    assert dense_view == dense_all[:3] and not left_out & set(dense_view)
    keyword_ids = view.index.keywords.search(tokens, 4)[0].tolist()
    assert not left_out & set(keyword_ids)
    assert view.index.keywords.search(tokens, 4)[0].tolist() == [
        i for i in index.keywords.search(tokens, 4)[0].tolist() if i not in left_out
    ]
    view.leave_out([])
    assert set(index.chunk_ids_of("Lake_Aldmere/2")) <= set(view.index.vectors.search(vector, 4)[0].tolist())


def test_answer_only_in_own_paragraph(squad_file: Path) -> None:
    squad = load_squad(squad_file)
    counted = squad.answer_only_in_own_paragraph(squad.questions)
    assert [q.id for q in counted] == ["q1", "q2", "q3", "q4", "q5"]  # every gold answer is in one paragraph only
    elsewhere = SquadQuestion("x", "What was formed by glaciers?", ("the lake",), "Lake_Aldmere/1", 1)
    assert squad.answer_only_in_own_paragraph([elsewhere]) == []  # "the lake" is in Lake_Aldmere/2 too
    spaced = SquadQuestion("y", "Which copper mine closed?", ("Great  Orme DEEP",), "Copper_mining_in_Calder_Valley/1", 2)
    assert squad.answer_only_in_own_paragraph([spaced]) == [spaced]  # compared after normalize


@pytest.mark.slow
def test_per_article_asks_each_article_alone(
    squad_file: Path, cache: Path, embedder: Embedder, settings: Settings
) -> None:
    squad = load_squad(squad_file)
    source = squad_index(squad, cache, _builder(embedder))

    def article_index(number: int):
        sub = subset_index(source, squad.article_ids(number), cache / "per" / str(number), _builder(embedder))
        return sub.index, sub.built

    report, records = evaluate_per_article(
        squad.select(), squad.titles, article_index, embedder, settings.retrieval, foreign_per_article=2
    )
    assert report.articles == 2 and report.questions == 5 and report.indexes_built_now == 2
    assert report.foreign_questions == 4 and report.foreign_per_article == 2
    assert [s.system for s in report.systems] == [s.system for s in report.foreign] == ["quotebot", "BM25", "dense"]
    assert [(a.article, a.paragraphs, a.questions) for a in report.per_article] == [(1, 2, 3), (2, 2, 2)]
    for record in records:
        first = record.systems[QUOTEBOT].first_quote_article
        own_article = record.question.paragraph_id.rsplit("/", 1)[0]
        corpus = squad.titles[int(record.corpus) - 1]
        assert record.mode == ("per-article" if own_article == corpus else "foreign")
        assert first is None or first.startswith(corpus + "/")  # quotes come from the one article only
    # A two-paragraph article: its own questions find their paragraph in the first two chunks.
    assert report.systems[0].passage_at_5 == 1.0
    assert report.foreign[2].wrong_answers == 1.0  # dense alone always has a nearest sentence ...
    assert report.foreign[2].gold_in_first_quote == 0  # ... and cannot quote what is not there
    assert len(report.curve) == 21 and report.curve[0].wrong_answer_rate == 1.0
    assert "per article: each of 2 SQuAD articles indexed alone" in "\n".join(
        render_table(_report_with(report=report, squad=squad, index=source.index, embedder=embedder, settings=settings)).splitlines()
    )


def _report_with(*, report, squad, index, embedder, settings):
    info = CorpusInfo(file="tiny", sha256=squad.sha256, articles=4, chunks=len(index.chunks), sentences=0, index_built_now=False)
    run = evaluate(squad.select(limit=1), index, embedder, settings.retrieval, dataset=info, articles="all")
    return run.report.model_copy(update={"per_article": report})


def test_left_out_never_quotes_the_left_out_paragraph(
    squad_file: Path, cache: Path, embedder: Embedder, settings: Settings
) -> None:
    squad = load_squad(squad_file)
    index = squad_index(squad, cache, _builder(embedder)).index
    info = CorpusInfo(file="tiny", sha256=squad.sha256, articles=4, chunks=len(index.chunks), sentences=0, index_built_now=False)
    run = evaluate(squad.select(), index, embedder, settings.retrieval, dataset=info, articles="all")
    counted = squad.answer_only_in_own_paragraph(squad.select())
    report, records = evaluate_left_out(run.records, counted, index, embedder, settings.retrieval)
    assert report.questions == 5 and report.counted == 5
    for record in records:
        assert record.mode == "left-out"
        for system in record.systems.values():
            assert system.first_quote_article != record.question.paragraph_id
            assert system.passage_rank is None
    by_name = {s.system: s for s in report.systems}
    assert by_name["dense"].wrong_answers == 1.0  # the nearest sentence, however far
    assert all(s.gold_in_first_quote == 0 for s in report.systems)
    # In corpus: the open run; out of corpus: the left-out run, on the same questions.
    assert report.curve[0].wrong_answer_rate == 1.0 and report.curve[0].wrong_abstain_rate == 0.0


@pytest.mark.slow
def test_eval_command_per_article_and_left_out(
    squad_file: Path, cache: Path, tmp_path: Path, embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(eval_command, "_embedder", lambda settings: embedder)
    records = tmp_path / "records.jsonl"
    argv = ["eval", "squad", str(squad_file), "--cache-dir", str(cache), "--per-article", "--foreign", "1", "--left-out"]
    assert main(argv + ["--json", "--records", str(records)]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["per_article"]["articles"] == 2 and report["per_article"]["foreign_questions"] == 2
    assert report["left_out"]["counted"] == 5
    modes = [json.loads(line)["mode"] for line in records.read_text(encoding="utf-8").splitlines()]
    assert modes.count("open") == 5 and modes.count("per-article") == 5
    assert modes.count("foreign") == 2 and modes.count("left-out") == 5
    assert main(argv + ["--articles", "1:1"]) == ExitCode.OK  # one article: no other article of the half to ask
    out = capsys.readouterr().out
    assert "per article: each of 1 SQuAD articles indexed alone (0 indexes made now" in out
    assert "related but unanswered: 3 of the 3 questions" in out
    assert main(argv + ["--foreign", "-1"]) == ExitCode.USAGE


# -- the news question set -----------------------------------------------------------------

REGRESS_CORPUS = Path(__file__).parent / "fixtures" / "regress_corpus"
NEWS_SET = """
articles:
- article: harbour
  questions:
  - {q: "How much did the repair of the Kelso harbour bridge cost?", expect: "48 million euros", kind: how-much}
  - {q: "Who cut the ribbon at the harbour bridge?", expect: ["Ines Duarte"], kind: who}
  - {q: "What colour is the Kelso harbour bridge painted?", expect: null, kind: unanswerable}
- article: library
  questions:
  - {q: "How did the council vote on Sunday opening of the library?", expect: "23 to 14", kind: what}
  - {q: "What did librarian Sofia Marr say about Sundays?", expect: "busiest day for families", kind: quote}
- article: orchard
  questions:
  - {q: "How much emergency aid did the apple growers ask for?", expect: "two million euros", kind: how-much}
  - {q: "How many apple trees does Tomas Berg own?", expect: null, kind: unanswerable}
"""


def write_news_corpus(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The regress corpus as two JSON Lines files (the second grows the first's index) and a question set."""
    records = []
    for path in sorted(REGRESS_CORPUS.iterdir()):
        title, _, body = path.read_text(encoding="utf-8").lstrip("# ").partition("\n")
        records.append({"id": path.stem, "title": title.strip(), "text": body.strip()})
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in records[:2]), encoding="utf-8")
    second.write_text("".join(json.dumps(r) + "\n" for r in records[2:]), encoding="utf-8")
    questions = tmp_path / "news.yaml"
    questions.write_text(NEWS_SET, encoding="utf-8")
    return first, second, questions


def test_news_set_loads_with_halves_by_article_id(tmp_path: Path) -> None:
    _, _, path = write_news_corpus(tmp_path)
    news = load_news_set(path)
    assert [q.id for q in news.questions][:3] == ["harbour#1", "harbour#2", "harbour#3"]
    assert news.article_ids == ["harbour", "library", "orchard"]
    assert {q.half for q in news.questions if q.article_id == "library"} == {half_of("library")}
    assert half_of("library") in ("tune", "report") and half_of("x") == half_of("x")
    assert [q.answerable for q in news.questions].count(False) == 2
    assert news.questions[1].expected == ("Ines Duarte",)
    assert len(news.select("tune")) + len(news.select("report")) == len(news.questions)


@pytest.mark.parametrize(
    "text, message",
    [
        ("articles: []", "non-empty 'articles' list"),
        ("articles:\n- article: a\n  questions:\n  - {q: x, expect: y, kind: colour}", "question 1: 'kind' must be one of"),
        ("articles:\n- article: a\n  questions:\n  - {q: x, expect: null, kind: who}", "'expect: null' goes with"),
        ("articles:\n- article: a\n  questions:\n  - {q: x, expect: y, kind: who, note: z}", "unknown field 'note'"),
        ("articles:\n- article: a\n  questions: [{q: x, expect: y, kind: who}]\n- article: a\n  questions: [{q: x, expect: y, kind: who}]", "listed twice"),
        ("articles: [", "not valid YAML"),
        # an alias bomb is refused by the bounded parser config and fixtures use, not expanded
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\narticles: [*e, *e]", "alias bomb"),
    ],
)
def test_news_set_errors_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NewsSetError, match="bad.yaml") as error:
        load_news_set(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_news_set_checks_expected_text_against_the_articles(tmp_path: Path) -> None:
    _, _, path = write_news_corpus(tmp_path)
    path.write_text(NEWS_SET.replace("48 million euros", "84 million euros"), encoding="utf-8")
    articles = {a.id: a for a in load_articles([REGRESS_CORPUS]).articles}
    articles = {key.split(".")[0]: value for key, value in articles.items()}
    with pytest.raises(NewsSetError, match=r"harbour#1: expected text '84 million euros' is not in article harbour"):
        load_news_set(path).check_against(articles)
    path.write_text(NEWS_SET, encoding="utf-8")
    load_news_set(path).check_against(articles)
    with pytest.raises(NewsSetError, match="article orchard is not in the corpus"):
        load_news_set(path).check_against({k: v for k, v in articles.items() if k != "orchard"})


def test_corpus_articles_samples_only_large_files() -> None:
    small = [Article(id=f"s{i}", title="t", text="x") for i in range(3)]
    large = [Article(id=f"l{i}", title="t", text="x") for i in range(10)]
    chosen = corpus_articles([(Path("small"), small), (Path("large"), large)], ["l7"], per_file_limit=4)
    ids = [a.id for a in chosen]
    assert ids[:3] == ["s0", "s1", "s2"]  # under the limit: every article
    assert len(ids) == 3 + 4 and "l7" in ids  # over it: the needed ones plus an even sample
    assert ids[3:] == sorted(ids[3:], key=lambda i: int(i[1:]))  # file order kept


@pytest.mark.slow
def test_eval_news_asks_each_article_alone_and_the_whole_corpus(
    tmp_path: Path, cache: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(eval_command, "_embedder", lambda settings: embedder)
    first, second, questions = write_news_corpus(tmp_path)
    records = tmp_path / "records.jsonl"
    argv = ["eval", "news", str(questions), "--corpus", str(first), "--corpus", str(second), "--cache-dir", str(cache)]
    assert main(argv + ["--json", "--records", str(records)]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 7 and report["articles"] == 3
    assert report["corpus"]["articles"] == 3  # the second file's article embedded into the first's index
    assert report["corpus_files"] == ["first.jsonl: 2 of 2 articles", "second.jsonl: 1 of 1 articles"]
    modes = {(m["mode"], m["half"]) for m in report["modes"]}
    halves = {half_of(a) for a in ("harbour", "library", "orchard")}
    assert modes == {(mode, half) for mode in ("article alone", "whole corpus") for half in halves}
    for mode in report["modes"]:
        assert [s["system"] for s in mode["systems"]] == ["quotebot", "BM25", "dense"]
        assert mode["answerable"] + mode["unanswerable"] > 0
    lines = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 14
    for line in lines:
        first_article = line["systems"]["quotebot"]["first_quote_article"]
        if line["mode"] == "article alone" and first_article is not None:
            assert first_article == line["paragraph"]  # the article alone quotes nothing else
    by_question = {(line["mode"], line["id"]): line for line in lines}
    assert by_question[("whole corpus", "harbour#1")]["systems"]["quotebot"]["quote_rank"] == 1
    assert main(argv + ["--mode", "corpus", "--half", half_of("harbour")]) == ExitCode.OK  # a table, from the cache
    out = capsys.readouterr().out
    assert "whole corpus, " + half_of("harbour") + " half" in out and "article alone" not in out
    assert main(argv + ["--mode", "alone", "--json"]) == ExitCode.OK
    alone = json.loads(capsys.readouterr().out)
    assert alone["corpus"] is None and {m["mode"] for m in alone["modes"]} == {"article alone"}


def test_eval_news_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second, questions = write_news_corpus(tmp_path)
    assert main(["eval", "news", str(questions), "--corpus", str(tmp_path / "nope.jsonl")]) == ExitCode.BAD_INPUT
    assert "nope.jsonl: no such articles file (--corpus)" in capsys.readouterr().err
    assert main(["eval", "news", str(questions), "--corpus", str(first)]) == ExitCode.BAD_INPUT  # orchard is in second
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "orchard#1: article orchard is not in the corpus files given" in err
