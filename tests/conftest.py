"""Shared fixtures: one loaded model and one seed index per test session.

Every answer a test gets from ``seed_bot`` is checked against the seed files read
independently of the index: each quote must be the exact slice of its article.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # loopback must never go through a proxy

from quotebot.bot import wiring  # noqa: E402
from quotebot.bot.chat import QuoteBot  # noqa: E402
from quotebot.bot.settings import Settings  # noqa: E402
from quotebot.index.embedding import Embedder  # noqa: E402
from quotebot.index.loaders import load_articles  # noqa: E402
from quotebot.retrieval.answer import Answer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def assert_quotes_verbatim(answer: Answer, articles: dict[str, str]) -> None:
    """The product's invariant: ``article.text[start:end] == quote.text`` for every quote."""
    for quote in answer.quotes:
        assert quote.article_id in articles, f"quote from unknown article {quote.article_id}"
        assert articles[quote.article_id][quote.start : quote.end] == quote.text


class CheckedQuoteBot(QuoteBot):
    """A real QuoteBot whose every answer is checked for verbatim quotes."""

    source_texts: dict[str, str]

    def ask(self, question: str, conversation: str = "default") -> Answer:
        answer = super().ask(question, conversation)
        assert_quotes_verbatim(answer, self.source_texts)
        return answer


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    model = Embedder()
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """The seed articles as the loaders read them from disk, by id."""
    return {a.id: a.text for a in load_articles([SEEDS]).articles}


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, settings: Settings) -> Path:
    index_dir = tmp_path_factory.mktemp("seed-index")
    articles = load_articles([SEEDS]).articles
    wiring.new_builder(settings.index, embedder, index_dir=index_dir).build(articles, index_dir)
    return index_dir


@pytest.fixture
def seed_bot(seed_index_dir: Path, embedder: Embedder, settings: Settings, seed_texts: dict[str, str]) -> QuoteBot:
    """A fresh bot (no conversation history) over the seed index."""
    core = wiring.new_bot(settings, seed_index_dir, embedder=embedder)
    bot = CheckedQuoteBot(core.retriever, core.live_index)
    bot.source_texts = seed_texts
    return bot


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """QA fixture cases (the regression runner over a real corpus, via the pytest plugin) are e2e."""
    from quotebot.bot.regress.pytest_plugin import QACase

    for item in items:
        if isinstance(item, QACase):
            item.add_marker(pytest.mark.e2e)
