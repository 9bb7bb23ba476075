"""Article pages and Markdown as a reader sees them: realistic pages with every kind of
boilerplate, whose boilerplate must never be indexed, let alone quoted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from quotebot.bot import wiring
from quotebot.bot.chat import QuoteBot
from quotebot.bot.progress import BuildReporter
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder
from quotebot.index.builder import IndexBuilder
from quotebot.index.loaders import load_articles
from quotebot.retrieval.retriever import paragraph_number

PAGES = Path(__file__).parent / "web_pages"

# Text of every piece of boilerplate on the two test pages: none of it may reach the index.
GUANTANAMO_BOILERPLATE = (
    "We use cookies",
    "Accept all cookies",
    "Weather forecast",
    "Business",
    "Subscribe now",
    "one pound a week",
    "Reader1234",
    "TrollFace",
    "Comments (3)",
    "Most read",
    "Celebrity chef",
    "Lottery winner",
    "Camp X-Ray detainees moved",
    "Copyright 2005",
    "newsletter",
    "Advertisement loaded",
    "TRACKING-PIXEL-ID",
    "font-family",
    "Daily Example News",
    "By Jane Reporter",
)
MARKET_BOILERPLATE = (
    "847 partners",
    "Manage preferences",
    "Log in",
    "Trending now",
    "Oil slides",
    "ZeroFee",
    "Share on Facebook",
    "Email this story",
    "Morning Metals newsletter",
    "Sign up",
    "Read more",
    "Aluminium smelters",
    "MetalHead99",
    "skeptic_investor",
    "Careers",
    "free cruise",
    "NewsArticle",
    "Wire Service",
)


def load_one(path: Path):
    report = load_articles([path])
    assert len(report.articles) == 1, report
    return report.articles[0], report


def test_a_news_page_is_read_as_its_article_and_metadata() -> None:
    article, report = load_one(PAGES / "guantanamo.html")
    assert report.fallbacks == []
    assert article.title == "Guantanamo man 'suing government'"  # the site name is not part of it
    assert article.text.startswith("A British man held at Guantanamo Bay")  # the headline is not paragraph 1
    assert article.text.endswith("want all of them returned to the UK.")
    assert article.date == "2005-01-12T09:30:00+00:00"  # from <time datetime>
    assert article.url == "https://news.example.com/world/guantanamo-man-suing-government"  # rel=canonical
    assert article.source == "Daily Example News"
    assert article.author == "Jane Reporter"
    for boilerplate in GUANTANAMO_BOILERPLATE:
        assert boilerplate not in article.text, boilerplate


def test_a_div_soup_page_keeps_only_the_story() -> None:
    article, _ = load_one(PAGES / "market_report.html")
    assert article.title == "Copper hits record as mines strike"
    assert article.date == "2024-05-03T14:05:00+00:00"  # article:published_time
    assert article.url == "https://wire.example.org/markets/copper-record-strike"  # og:url
    assert article.source == "Wire Service"
    assert article.text.count("\n\n") == 3  # four paragraphs, nothing else
    for boilerplate in MARKET_BOILERPLATE:
        assert boilerplate not in article.text, boilerplate


def test_paragraph_numbers_agree_with_the_same_article_as_txt(tmp_path: Path) -> None:
    html, _ = load_one(PAGES / "guantanamo.html")
    txt_path = tmp_path / "guantanamo.txt"
    txt_path.write_text(f"{html.title}\n\n{html.text}\n", encoding="utf-8")
    txt, _ = load_one(txt_path)
    assert txt.title == html.title
    for sentence in ("Feroz Abbasi, 24", "His solicitor", "Four British detainees"):
        assert paragraph_number(html.text, html.text.index(sentence)) == paragraph_number(txt.text, txt.text.index(sentence))
    assert paragraph_number(html.text, html.text.index("Feroz Abbasi")) == 2


def test_the_date_comes_from_htmldate_when_trafilatura_has_none(tmp_path: Path) -> None:
    page = (
        "<html><head><title>Floods close schools</title></head><body><article><h1>Floods close schools</h1>"
        "<p>Heavy rain closed forty schools across the county on Tuesday, the council said.</p>"
        "<p>Published on 2023-11-14 by the county desk.</p></article></body></html>"
    )
    path = tmp_path / "floods.html"
    path.write_text(page, encoding="utf-8")
    article, _ = load_one(path)
    assert article.date is not None and article.date.startswith("2023-11-14")


def test_a_page_extraction_finds_nothing_in_falls_back_and_is_counted(tmp_path: Path) -> None:
    (tmp_path / "menu.html").write_text(
        "<html><head><title>Site map</title></head><body><nav><a href='/a'>Archive of old stories</a></nav></body></html>",
        encoding="utf-8",
    )
    report = load_articles([tmp_path])
    assert [article.text for article in report.articles] == ["Archive of old stories"]
    assert report.fallbacks == [(tmp_path / "menu.html").as_posix()]


def test_markdown_is_stored_as_the_text_a_reader_sees(tmp_path: Path) -> None:
    path = tmp_path / "library.md"
    path.write_text(
        "# Mayor opens **new** library\n\n"
        "The mayor, [Jane Smith](https://example.com/jane), said the library\nwould open on *Monday*.\n\n"
        "- It holds `40,000` books.\n- It cost £3m.\n\n"
        "![a photo of the library](library.jpg)\n",
        encoding="utf-8",
    )
    article, _ = load_one(path)
    assert article.title == "Mayor opens new library"
    assert article.text == (
        "The mayor, Jane Smith, said the library would open on Monday.\n\nIt holds 40,000 books.\n\nIt cost £3m."
    )


def test_unsupported_files_are_counted_and_named_in_the_summary(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text("Headline\n\nA story.\n", encoding="utf-8")
    for name in ("report.pdf", "table.csv", "notes.rst", "other.pdf"):
        (tmp_path / name).write_bytes(b"data")
    report = load_articles([tmp_path])
    assert len(report.articles) == 1
    assert sorted(Path(path).name for path in report.unsupported) == ["notes.rst", "other.pdf", "report.pdf", "table.csv"]
    stream = io.StringIO()
    from quotebot.index.manifest import Counts, Manifest
    from quotebot.index.builder import IndexChange

    manifest = Manifest.model_construct(counts=Counts(articles=1, chunks=1, sentences=1))  # all the summary reads
    BuildReporter(stream).finished(
        IndexChange(manifest=manifest), tmp_path, skipped=0, duplicates=0, unsupported=report.unsupported
    )
    summary = stream.getvalue()
    assert "4 files of kinds quotebot does not read: 2 .pdf, 1 .csv, 1 .rst" in summary
    for name in ("report.pdf", "table.csv", "notes.rst", "other.pdf"):
        assert name in summary


@pytest.fixture(scope="module")
def page_bot(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QuoteBot:
    index_dir = tmp_path_factory.mktemp("pages") / "index"
    articles = load_articles([PAGES]).articles
    IndexBuilder(embedder, 120, 1, export_onnx=False).build(articles, index_dir)
    return wiring.new_bot(Settings(), index_dir, embedder=embedder)


@pytest.mark.parametrize(
    "question",
    [
        "Does the site use cookies?",
        "Accept all cookies",
        "How much does a subscription cost per week?",
        "What did Reader1234 write in the comments?",
        "What are the most read stories?",
        "Who won the lottery and bought a village?",
        "What does the newsletter offer?",
        "Who owns the copyright?",
        "What do the reader comments say about copper?",
        "What are the trending stories about oil and gold?",
        "How many partners store information on my device?",
        "Which brokerage advertises zero fees?",
        "What did the Guantanamo man do?",
        "How high did copper prices climb?",
    ],
)
def test_no_boilerplate_is_ever_quoted(page_bot: QuoteBot, question: str) -> None:
    answer = page_bot.ask(question, conversation=question)
    texts = {article_id: page_bot.retriever.index.articles[article_id].text for article_id in page_bot.retriever.index.articles}
    for quote in answer.quotes:
        assert texts[quote.article_id][quote.start : quote.end] == quote.text
        for boilerplate in GUANTANAMO_BOILERPLATE + MARKET_BOILERPLATE:
            assert boilerplate not in quote.text, (question, quote.text)


def test_the_page_answers_from_its_article(page_bot: QuoteBot) -> None:
    answer = page_bot.ask("How high did copper prices climb?")
    assert answer.answered
    assert "$11,250 a tonne" in " ".join(quote.text for quote in answer.quotes)
    first = answer.quotes[0]
    assert first.url is not None and first.source in ("Wire Service", "Daily Example News")
