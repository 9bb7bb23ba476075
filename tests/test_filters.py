"""Filters inside the search: the stores search only the allowed chunks, a filtered answer
never quotes outside the filter, an empty filter says so, and ties go to the newer article.
Also the filter commands of the chat, `ask --since/--source`, and `filter:` in fixtures."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from quotebot.bot import wiring
from quotebot.bot.chat import QuoteBot
from quotebot.bot.cli import main
from quotebot.bot.regress import runner
from quotebot.bot.render import answer_to_text
from quotebot.bot.settings import Settings
from quotebot.bot.terminal import TerminalChat
from quotebot.index.dates import normalize_date, user_date
from quotebot.index.embedding import Embedder
from quotebot.index.filters import ArticleFilter
from quotebot.index.builder import IndexBuilder
from quotebot.index.articles import Article
from quotebot.index.bm25_store import Bm25KeywordIndex as KeywordIndex
from quotebot.index.faiss_store import FaissVectorStore

RATES_TEXT = (
    "The central bank raised interest rates by half a point on Thursday to fight inflation.\n\n"
    "The governor said further rises could follow if prices kept climbing."
)
WIRE_STORY = (
    "Forecasters issued a storm warning for the whole coast on Friday, with winds of up to 120 km/h expected.\n\n"
    "Ferries to the islands were cancelled."
)
ARTICLES = [
    Article(id="reuters-rates", title="Central bank raises rates", text=RATES_TEXT, date="2024-05-03",
            source="Reuters", url="https://www.reuters.com/markets/rates", topic="markets"),
    Article(id="bbc-rates", title="Rates go up again", date="20 April 2024", source="BBC News", topic="markets",
            text="The central bank raised interest rates by a quarter point in April, its governor said on the radio."),
    Article(id="reuters-cup", title="Cup final won in extra time", date="2024-04-01", source="Reuters", topic="sport",
            text="The national team won the cup final in extra time after a goalless ninety minutes."),
    # A wire story run twice: the same words, a year apart, listed older first.
    Article(id="wire-2023", title="Storm warning for the coast", text=WIRE_STORY, date="2023-01-10", source="Wire"),
    Article(id="wire-2024", title="Storm warning for the coast", text=WIRE_STORY, date="2024-05-10", source="Wire"),
    Article(id="undated", title="Rates and mortgages", source="Blog",
            text="Interest rates went up, and mortgage holders will pay more each month."),
]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QuoteBot:
    index_dir = tmp_path_factory.mktemp("filters") / "index"
    IndexBuilder(embedder, 120, 1, export_onnx=False).build(ARTICLES, index_dir)
    return wiring.new_bot(Settings(), index_dir, embedder=embedder)


def sources_of(answer) -> set[str]:
    return {quote.article_id for quote in answer.quotes}


def test_dates_are_normalised_to_iso_8601() -> None:
    assert normalize_date("2024-05-03") == "2024-05-03"
    assert normalize_date("Thu, 02 May 2024 14:05:00 GMT") == "2024-05-02T14:05:00+00:00"
    assert normalize_date("26-FEB-1987 15:01:01.79") == "1987-02-26T15:01:01"
    assert normalize_date("20 April 2024") == "2024-04-20"
    assert normalize_date("2024-05-03T10:00:00Z") == "2024-05-03T10:00:00+00:00"
    assert normalize_date("soon") is None and normalize_date("2018") is None
    assert Article(id="a", title="t", text="x", date="May 1, 2024").date == "2024-05-01"
    assert user_date("7d", today=__import__("datetime").date(2024, 5, 10)) == "2024-05-03"
    with pytest.raises(ValueError, match="not a date"):
        user_date("yesterdayish")


def test_a_filter_describes_and_matches_articles() -> None:
    article_filter = ArticleFilter(since="2024-05-01", sources=["reuters"])
    assert article_filter.describe() == "from reuters since 2024-05-01"
    assert article_filter.matches({"date": "2024-05-03", "source": "Reuters"})
    assert article_filter.matches({"date": "2024-05-01T23:59:00", "url": "https://www.reuters.com/x"})  # by host
    assert not article_filter.matches({"date": "2024-04-30", "source": "Reuters"})
    assert not article_filter.matches({"source": "Reuters"})  # undated: never inside a date bound
    assert ArticleFilter(until="2024-05-03").matches({"date": "2024-05-03T22:00:00+00:00"})  # the whole day
    assert ArticleFilter(topics=["Business"]).matches({"metadata": {"topic": "business"}})  # older records


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vector_search_within_a_selection_is_the_exact_top_k_of_the_selection(kind: str) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 4000, dtype=np.int64)
    store = FaissVectorStore(32, kind=kind)
    store.add(ids, vectors)
    store.remove(ids[:50])  # tombstones (hnsw) must never come back
    allowed = np.sort(rng.choice(ids, size=30, replace=False))
    query = vectors[1234]
    found, scores = store.search(query, 10, allowed=allowed)
    live = allowed[~np.isin(allowed, ids[:50])]
    exact = live[np.argsort(-(vectors[live - 1000] @ query))[:10]]
    assert set(found.tolist()) <= set(live.tolist())
    assert found.tolist() == exact.tolist()
    assert np.all(np.diff(scores) <= 1e-6)
    assert store.search(query, 10, allowed=np.zeros(0, dtype=np.int64))[0].size == 0


def test_keyword_search_masks_chunks_outside_the_selection() -> None:
    keywords = KeywordIndex.build(np.array([10, 11, 12, 13]), [["storm", "coast"], ["storm"], ["rates"], ["storm", "storm"]])
    everything, _ = keywords.search(["storm"], 10)
    assert set(everything.tolist()) == {10, 11, 13}
    within, _ = keywords.search(["storm"], 10, allowed=np.array([11, 12]))
    assert within.tolist() == [11]


def test_a_filtered_answer_never_quotes_outside_the_filter(bot: QuoteBot) -> None:
    question = "By how much did the central bank raise interest rates?"
    unfiltered = bot.ask(question, conversation="u")
    assert unfiltered.answered and sources_of(unfiltered) & {"reuters-rates", "bbc-rates"}
    for article_filter, allowed in (
        (ArticleFilter(sources=["BBC"]), {"bbc-rates"}),
        (ArticleFilter(since="2024-05-01"), {"reuters-rates", "wire-2024"}),
        (ArticleFilter(until="2024-04-30", topics=["markets"]), {"bbc-rates"}),
        (ArticleFilter(sources=["reuters"], until="2024-04-15"), {"reuters-cup"}),
    ):
        answer = bot.ask(question, conversation=str(article_filter), article_filter=article_filter)
        assert sources_of(answer) <= allowed, (article_filter, answer.quotes)
        assert answer.filter == article_filter and answer.filtered_articles == len(allowed)
    bbc = bot.ask(question, conversation="bbc", article_filter=ArticleFilter(sources=["BBC"]))
    assert bbc.answered and "quarter point" in bbc.quotes[0].text
    assert (bbc.quotes[0].date, bbc.quotes[0].source) == ("2024-04-20", "BBC News")


def test_when_nothing_matches_the_bot_says_so(bot: QuoteBot) -> None:
    answer = bot.ask("What did the bank do?", article_filter=ArticleFilter(sources=["Reuters"], since="2025-05-01"))
    assert not answer.answered and answer.filtered_articles == 0
    assert answer_to_text(answer) == "No articles from Reuters since 2025-05-01."
    nothing = bot.ask("Who won the Tour de France?", article_filter=ArticleFilter(sources=["Reuters"]))
    assert answer_to_text(nothing) == "I couldn't find that in the 2 articles from Reuters."


def test_equal_answers_quote_the_newer_article_first(bot: QuoteBot) -> None:
    answer = bot.ask("When was the storm warning issued for the coast?")
    assert answer.answered
    wire = [quote.article_id for quote in answer.quotes if quote.article_id.startswith("wire")]
    assert wire[0] == "wire-2024"
    assert "(2024-05-10), paragraph 1" in answer_to_text(answer)  # the source line shows the date


def test_chat_filter_commands_hold_per_conversation(bot: QuoteBot, tmp_path: Path) -> None:
    script = "\n".join(
        [
            "/filters",
            "/source BBC",
            "By how much did the central bank raise interest rates?",
            "/since tomorrowish",
            "/since 2024-05-01",
            "What did the bank do?",
            "/clear",
            "/filters",
        ]
    )
    out = io.StringIO()
    TerminalChat(bot, color=False, history_file=tmp_path / "h", stdin=io.StringIO(script + "\n"), stdout=out).run()
    text = out.getvalue()
    assert "No filters: answering from all 6 articles." in text
    assert "Answering from 1 article from BBC (of 6)." in text
    assert "a quarter point" in text
    assert "Not a date: 'tomorrowish'" in text
    assert "No articles from BBC since 2024-05-01 (of 6 indexed). /clear drops the filters." in text
    assert "No articles from BBC since 2024-05-01." in text
    assert "Filters cleared. No filters: answering from all 6 articles." in text
    assert bot.filter_of("someone else").is_empty  # other conversations never saw the filter


def test_ask_takes_filters_and_prints_date_url_and_source(
    bot: QuoteBot, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    index_dir = bot.retriever.index.path.parent
    monkeypatch.setattr(wiring, "new_bot", lambda *args, **kwargs: bot)
    code = main(["ask", "What did the bank do with rates?", "--source", "reuters", "--json", "--index-dir", str(index_dir)])
    assert code == 0
    quote = json.loads(capsys.readouterr().out)["quotes"][0]
    assert (quote["article_id"], quote["date"], quote["url"], quote["source"]) == (
        "reuters-rates", "2024-05-03", "https://www.reuters.com/markets/rates", "Reuters"
    )
    assert main(["ask", "x", "--since", "last tuesday-ish", "--index-dir", str(index_dir)]) == 2
    assert "quotebot: error: --since: not a date" in capsys.readouterr().err


def test_a_fixture_case_may_carry_a_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder, settings: Settings, capsys
) -> None:
    monkeypatch.setitem(runner._EMBEDDERS, (settings.index.model, settings.index.batch_size), embedder)
    (tmp_path / "articles.jsonl").write_text(
        "\n".join(json.dumps(article.model_dump(exclude={"content_hash"})) for article in ARTICLES[:3]), encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text("index:\n  index_dir: .quotebot/index\n", encoding="utf-8")
    (tmp_path / "qa_filters.yaml").write_text(textwrap.dedent("""
        corpus: articles.jsonl
        cases:
          - question: By how much did the central bank raise interest rates?
            filter: {source: BBC}
            expect: {quote_contains: quarter point, article: bbc-rates, within_top: 3}
          - question: By how much did the central bank raise interest rates?
            filter: {source: Reuters, since: 2024-05-01}
            expect: {quote_contains: half a point, not_contains: quarter point, within_top: 3}
          - question: By how much did the central bank raise interest rates?
            filter: {since: 2030-01-01}
            expect: {abstain: true}
        """).lstrip(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main(["regress", "qa_filters.yaml", "--config", "config.yaml"])
    output = capsys.readouterr()
    assert code == 0, output.out + output.err
    (tmp_path / "qa_bad.yaml").write_text(
        "cases:\n  - question: q\n    filter: {since: someday}\n", encoding="utf-8"
    )
    assert main(["regress", "qa_bad.yaml", "--config", "config.yaml"]) != 0
    assert "qa_bad.yaml:3" in capsys.readouterr().err
