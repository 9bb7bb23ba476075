"""Escape sequences in articles, titles and ids never reach the terminal raw (item 8); JSON stays exact."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from quotebot.bot import wiring
from quotebot.bot.settings import Settings
from quotebot.bot.terminal import TerminalChat
from quotebot.index.embedding import Embedder
from quotebot.index.builder import IndexBuilder
from quotebot.index.articles import Article
from quotebot.index.onnx_encoder import encoder_dir

RETITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
EVIL_ID = f"evil\nid{CLEAR}.txt"
EVIL_TITLE = f"Zorbaville news {RETITLE}"
EVIL_TEXT = (
    f"The mayor of Zorbaville announced {RETITLE}a new bridge over the river Quell on Monday.\n\n"
    "The bridge will cost four million crowns\u202e and open in May."
)
QUESTION = "What did the mayor of Zorbaville announce?"
RAW = ("\x1b", "\x07", "\u202e")


@pytest.fixture(scope="module")
def evil_index(tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder, settings: Settings) -> Path:
    index_dir = tmp_path_factory.mktemp("evil") / "index"
    shutil.copytree(encoder_dir(seed_index_dir, settings.index.model), encoder_dir(index_dir, settings.index.model))
    article = Article(id=EVIL_ID, title=EVIL_TITLE, text=EVIL_TEXT)
    IndexBuilder(embedder, settings.index.chunk_tokens, settings.index.chunk_overlap).build([article], index_dir)
    return index_dir


def _no_raw_controls(text: str) -> None:
    for raw in RAW:
        assert raw not in text, repr(text)


def test_ask_prints_escapes_inert(evil_index: Path, cli) -> None:
    code, out, err = cli("ask", QUESTION, "--index-dir", str(evil_index))
    assert code == 0, err
    _no_raw_controls(out)
    assert "\\x1b]0;pwned\\x07" in out  # shown, not hidden: the reader sees what the article holds


def test_ask_json_keeps_the_exact_text(evil_index: Path, cli) -> None:
    code, out, err = cli("ask", QUESTION, "--json", "--index-dir", str(evil_index))
    assert code == 0, err
    _no_raw_controls(out)
    [line] = out.splitlines()
    quote = json.loads(line)["quotes"][0]
    assert quote["article_id"] == EVIL_ID and quote["title"] == EVIL_TITLE
    assert EVIL_TEXT[quote["start"] : quote["end"]] == quote["text"] and RETITLE in quote["text"]


def test_index_list_keeps_one_row_per_article(evil_index: Path, cli) -> None:
    code, out, err = cli("index", "list", "--index-dir", str(evil_index))
    assert code == 0, err
    _no_raw_controls(out)
    assert len(out.splitlines()) == 1 and "\t" not in out and "evil\\x0aid\\x1b[2J.txt" in out
    code, out, err = cli("index", "list", "--json", "--index-dir", str(evil_index))
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["id"] == EVIL_ID and record["title"] == EVIL_TITLE


def test_index_remove_of_an_unknown_evil_id_prints_it_inert(evil_index: Path, cli) -> None:
    code, out, err = cli("index", "remove", f"nope{RETITLE}", "--index-dir", str(evil_index))
    assert code == 2
    _no_raw_controls(err)


def test_chat_prints_answers_and_sources_inert(evil_index: Path, settings: Settings, embedder: Embedder) -> None:
    bot = wiring.new_bot(settings, index_dir=evil_index, embedder=embedder)
    out = io.StringIO()
    chat = TerminalChat(bot, color=False, history_file=evil_index / "history", stdin=io.StringIO(f"{QUESTION}\n/sources\n"), stdout=out)
    chat.run()
    _no_raw_controls(out.getvalue())
    assert "pwned" in out.getvalue() and "Zorbaville news" in out.getvalue()
