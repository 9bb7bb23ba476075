"""Wiring: parts built from settings in one place; the core free of front-end settings;
a live index whose readers never wait for a reload."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from quotebot.bot import wiring
from quotebot.bot.chat import ArticleSummary, QuoteBot, example_question
from quotebot.bot.settings import Settings
from quotebot.index import storage
from quotebot.index.embedding import Embedder
from quotebot.index.live import LiveIndex
from quotebot.index.reader import QuoteIndex
from quotebot.retrieval.retriever import Retriever
from quotebot.retrieval.settings import RetrievalSettings


def test_retriever_defaults_are_the_retrieval_settings_defaults() -> None:
    parameters = {
        name: parameter.default
        for name, parameter in inspect.signature(Retriever.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    settings = RetrievalSettings().model_dump()
    assert {name: parameters.get(name) for name in settings} == settings  # every key, with its default


def test_the_chat_core_and_telegram_import_no_front_end_settings_or_the_terminal() -> None:
    code = (
        "import sys; import quotebot.bot.chat; import quotebot.bot.telegram.app;"
        "print(','.join(m for m in ('quotebot.bot.settings', 'quotebot.bot.terminal', 'quotebot.bot.cli') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_bot_is_wired_from_settings(seed_index_dir: Path, embedder: Embedder) -> None:
    settings = Settings()
    settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"max_quotes": 1}), "telegram": settings.telegram}
    )
    bot = wiring.new_bot(settings, seed_index_dir, embedder=embedder)
    assert isinstance(bot, QuoteBot) and bot.retriever.max_quotes == 1
    assert bot.live_index is not None and bot.live_index.index_dir == seed_index_dir
    assert len(bot.ask("What did Herzog ask Lavrov?").quotes) == 1


def test_the_example_question_comes_from_the_index(seed_index_dir: Path, embedder: Embedder) -> None:
    bot = wiring.new_bot(Settings(), seed_index_dir, embedder=embedder)
    [seed] = bot.sources()
    assert bot.example_question() == f'What is "{seed.title}" about?'
    newest = [
        ArticleSummary("a", "Old news", "2020-01-01", 1),
        ArticleSummary("b", "New  bridge opens", "2024-05-02", 1),
        ArticleSummary("c", "Undated", None, 1),
    ]
    assert example_question(newest) == 'What is "New bridge opens" about?'
    assert example_question(newest[2:]) == 'What is "Undated" about?'
    assert example_question([]) == "What do the articles say?"


def _publish_copy(index_dir: Path) -> str:
    """A new generation with the same content, published as a writer would."""
    current = storage.current_generation(index_dir)
    fresh = storage.new_generation(index_dir)
    fresh.rmdir()
    shutil.copytree(current, fresh)
    (index_dir / storage.CURRENT_FILE).write_text(fresh.name + "\n", encoding="utf-8")
    return fresh.name


def test_readers_never_wait_for_a_reload(seed_index_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    loading, release = threading.Event(), threading.Event()
    loads = 0

    def slow_load() -> QuoteIndex:
        nonlocal loads
        loads += 1
        if loads > 1:  # the reload: hold it until the other reader has been answered
            loading.set()
            assert release.wait(30)
        return QuoteIndex.load(index_dir)

    live = LiveIndex(index_dir, load=slow_load)
    old = live.index
    new_name = _publish_copy(index_dir)
    loader = threading.Thread(target=live.refresh)
    loader.start()
    assert loading.wait(30)
    answered = threading.Event()
    seen: list[QuoteIndex] = []

    def other_reader() -> None:
        seen.append(live.refresh())
        answered.set()

    threading.Thread(target=other_reader).start()
    assert answered.wait(5), "a reader waited for the reload"
    assert seen == [old]  # answered from the loaded index meanwhile
    release.set()
    loader.join(30)
    assert live.refresh().generation == new_name and loads == 2


def test_sources_follow_a_reload(seed_index_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    bot = wiring.new_bot(Settings(), index_dir, embedder=embedder)
    assert [s.id for s in bot.sources()] == ["000_8df2fe3ddce01457.txt"]
    from quotebot.index.articles import Article

    article = Article(id="bridge.txt", title="Bridge reopens", text="The old bridge reopened on Monday after repairs.")
    wiring.new_builder(Settings().index, embedder, export_onnx=False).add([article], index_dir)
    assert [s.id for s in bot.sources()] == ["000_8df2fe3ddce01457.txt", "bridge.txt"]
