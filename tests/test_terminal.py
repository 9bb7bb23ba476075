"""The terminal chat, piped: commands and /sources a page at a time."""

from __future__ import annotations

import io
from pathlib import Path

from quotebot.bot.chat import ArticleSummary
from quotebot.bot.cli import article_table
from quotebot.bot.terminal import SOURCES_PAGE, TerminalChat
from quotebot.retrieval.answer import Answer


class ListingCore:
    """A chat core that holds articles and answers nothing (the chat only renders)."""

    def __init__(self, count: int) -> None:
        self.articles = [ArticleSummary(f"a{n}.txt", f"Article {n}", None, 1) for n in range(1, count + 1)]

    def ask(self, question: str, conversation: str = "default") -> Answer:
        return Answer(question=question, answered=False, confidence=0.0)

    def forget(self, conversation: str) -> None:
        pass

    def sources(self) -> list[ArticleSummary]:
        return self.articles

    def example_question(self) -> str:
        return 'What is "Article 1" about?'


def chat(core: ListingCore, script: str, tmp_path: Path) -> str:
    out = io.StringIO()
    TerminalChat(core, color=False, history_file=tmp_path / "history", stdin=io.StringIO(script), stdout=out).run()
    return out.getvalue()


def test_sources_pages_a_long_list(tmp_path: Path) -> None:
    out = chat(ListingCore(45), "/sources\n/sources 3\n/sources 9\n", tmp_path)
    assert f"  Article {SOURCES_PAGE}  [a{SOURCES_PAGE}.txt]" in out
    assert f"(1-{SOURCES_PAGE} of 45 articles; /sources 2 for more)" in out
    assert "  Article 45  [a45.txt]" in out and "(41-45 of 45 articles)" in out
    assert "  Article 21  [" not in out  # page 2 was not asked for
    assert "/sources takes a page number from 1 to 3." in out


def test_index_list_aligns_its_columns_and_counts_one_chunk() -> None:
    rows = [({"id": "a.txt", "title": "A", "date": "2024-01-02"}, 1), ({"id": "longer-id.txt", "title": "B"}, 12)]
    assert article_table(rows) == [
        "a.txt          1 chunk    2024-01-02  A",
        "longer-id.txt  12 chunks  -           B",
    ]


def test_a_short_list_is_one_page_without_a_footer(tmp_path: Path) -> None:
    out = chat(ListingCore(3), "/sources\n", tmp_path)
    assert "  Article 3  [a3.txt]" in out and "of 3 articles" not in out
    assert "quotebot: 3 articles indexed." in out
