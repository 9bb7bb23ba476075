"""What a build or add may never do: drop articles on a read error (item 1), replace an
article of another file (item 9); and the "Lower" items of `index build` and `index add`."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quotebot.bot.progress import BuildReporter, progress_line
from quotebot.bot.settings import Settings
from quotebot.index.articles import Article
from quotebot.index.builder import BuildProgress, IdCollisionError, IndexBuilder
from quotebot.index.chunking import chunk_article
from quotebot.index.embedding import Embedder
from quotebot.index.loaders import LoadReport, load_articles
from quotebot.index.reader import QuoteIndex, read_manifest
from quotebot.index.vectorize import ChunkedArticle, embed_articles
from tests.adversarial.helpers import run_python, shared_tmp

ROOT = Path(__file__).resolve().parents[2]
STORY = "The council approved the new budget on Tuesday. It takes effect in {month}.\n"


def _write(path: Path, title: str, month: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n" + STORY.format(month=month), encoding="utf-8")


@pytest.fixture
def builder(embedder: Embedder, settings: Settings) -> IndexBuilder:
    return IndexBuilder(embedder, settings.index.chunk_tokens, settings.index.chunk_overlap, export_onnx=False)


# -- item 1: a read error never removes indexed articles ------------------------------------------


def _unprivileged_load(corpus: Path) -> LoadReport:
    code = f"from quotebot.index.loaders import load_articles; print(load_articles([{str(corpus)!r}]).model_dump_json())"
    result = run_python(code, unprivileged=True)
    assert result.returncode == 0, result.stderr
    return LoadReport.model_validate_json(result.stdout)


def test_build_keeps_the_articles_of_an_unreadable_folder(builder: IndexBuilder, tmp_path: Path) -> None:
    root = shared_tmp()
    try:
        corpus = root / "corpus"
        _write(corpus / "open" / "a.txt", "Open story", "May")
        _write(corpus / "locked" / "b.txt", "Locked story", "June")
        _write(corpus / "gone.txt", "Deleted story", "July")
        index_dir = tmp_path / "index"
        builder.build(load_articles([corpus]).articles, index_dir)
        (corpus / "gone.txt").unlink()  # really deleted: that one goes
        (corpus / "locked").chmod(0o000)  # unreadable: that one stays
        report = _unprivileged_load(corpus)
        assert [a.id for a in report.articles] == ["open/a.txt"] and report.unreadable
        change = builder.build(report.articles, index_dir, unreadable=report.unreadable)
        assert change.kept_unread == ["locked/b.txt"]
        assert change.removed == ["gone.txt"]
        assert sorted(QuoteIndex.load(index_dir).articles) == ["locked/b.txt", "open/a.txt"]
    finally:
        (root / "corpus" / "locked").chmod(0o755)
        shutil.rmtree(root)


def test_the_summary_says_what_was_kept(builder: IndexBuilder, tmp_path: Path) -> None:
    _write(tmp_path / "c" / "a.txt", "A", "May")
    _write(tmp_path / "c" / "sub" / "b.txt", "B", "June")
    index_dir = tmp_path / "index"
    builder.build(load_articles([tmp_path / "c"]).articles, index_dir)
    articles = load_articles([tmp_path / "c" / "a.txt"]).articles
    change = builder.build(articles, index_dir, unreadable=[str((tmp_path / "c" / "sub").resolve())])
    stream = io.StringIO()
    BuildReporter(stream).finished(change, index_dir, skipped=1, duplicates=0)
    assert "1 kept because their file or folder could not be read" in stream.getvalue()
    assert "kept b.txt" in stream.getvalue() or "kept sub/b.txt" in stream.getvalue()


# -- item 9: the same file name in two folders --------------------------------------------------


def test_add_of_a_same_named_file_from_another_folder_keeps_both(builder: IndexBuilder, tmp_path: Path) -> None:
    _write(tmp_path / "first" / "x.txt", "First x", "May")
    _write(tmp_path / "other" / "x.txt", "Other x", "June")
    index_dir = tmp_path / "index"
    builder.build(load_articles([tmp_path / "first"]).articles, index_dir)
    change = builder.add(load_articles([tmp_path / "other"]).articles, index_dir)
    assert change.added == ["other/x.txt"] and change.updated == []
    assert len(change.renamed) == 1 and "x.txt -> other/x.txt" in change.renamed[0]
    index = QuoteIndex.load(index_dir)
    assert index.articles["x.txt"].title == "First x" and index.articles["other/x.txt"].title == "Other x"
    # The same files again, changed: each replaces its own article, nothing else.
    _write(tmp_path / "other" / "x.txt", "Other x, revised", "July")
    change = builder.add(load_articles([tmp_path / "other"]).articles, index_dir)
    assert change.updated == ["other/x.txt"] and change.added == [] and change.renamed == []
    _write(tmp_path / "first" / "x.txt", "First x, revised", "August")
    change = builder.add(load_articles([tmp_path / "first"]).articles, index_dir)
    assert change.updated == ["x.txt"] and change.added == []
    index = QuoteIndex.load(index_dir)
    assert index.articles["x.txt"].title == "First x, revised"
    assert index.articles["other/x.txt"].title == "Other x, revised"


def test_a_collision_no_folder_name_resolves_is_refused(builder: IndexBuilder, tmp_path: Path) -> None:
    _write(tmp_path / "first" / "x.txt", "First x", "May")
    _write(tmp_path / "b" / "x.txt", "B x", "June")
    _write(tmp_path / "z" / "b" / "x.txt", "Z x", "July")
    index_dir = tmp_path / "index"
    builder.build(load_articles([tmp_path / "first"]).articles, index_dir)
    builder.add(load_articles([tmp_path / "b"]).articles, index_dir)  # -> b/x.txt
    before = read_manifest(index_dir)
    with pytest.raises(IdCollisionError) as caught:
        builder.add(load_articles([tmp_path / "z" / "b"]).articles, index_dir)
    message = str(caught.value)
    assert "z/b/x.txt" in message and "first/x.txt" in message and "\n" not in message
    assert read_manifest(index_dir) == before  # nothing changed


# -- Lower: add on a missing index, the export step, progress, empty questions ------------------


def test_add_on_a_missing_index_fails_before_the_model_export(tmp_path: Path, cli) -> None:
    index_dir = tmp_path / "nothing"
    code, out, err = cli("index", "add", str(ROOT / "seeds"), "--index-dir", str(index_dir))
    assert code == 3 and "no index" in err
    assert not (index_dir / "query_encoder").exists()


def test_a_first_build_shows_the_export_and_reports_the_whole_time(tmp_path: Path) -> None:
    _write(tmp_path / "c" / "a.txt", "A story", "May")
    index_dir = tmp_path / "index"
    result = subprocess.run(
        [sys.executable, "-m", "quotebot.bot.cli", "index", "build", str(tmp_path / "c"), "--index-dir", str(index_dir)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("quotebot: preparing the model")
    total = float(re.search(r" in ([\d.]+) s", lines[-1]).group(1))
    assert total > read_manifest(index_dir).build_seconds  # the export is counted, not left out


def test_progress_moves_within_one_long_article(embedder: Embedder) -> None:
    text = " ".join(f"Sentence number {n} is about the harbour." for n in range(700))
    article = Article(id="long.txt", title="Long", text=text)
    sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
    calls: list[tuple[int, int, int, int]] = []
    embed_articles(embedder, [ChunkedArticle(article, sentences, chunks)], lambda *call: calls.append(call))
    assert len(calls) >= 2 and calls[0][0] == 0 and 0 < calls[0][2] < calls[0][3]
    line = progress_line(BuildProgress(0, 1, 0, 2.0, texts_done=calls[0][2], texts_total=calls[0][3]), bar=True)
    assert f"{calls[0][2]:,}/{calls[0][3]:,} passages" in line and "0/1 articles" in line and "   0%" not in line


@pytest.mark.parametrize("question", ["", "   ", "\t\n"])
def test_an_empty_question_is_a_usage_error(question: str, seed_index_dir: Path, cli) -> None:
    code, out, err = cli("ask", question, "--index-dir", str(seed_index_dir))
    assert code == 2 and "empty" in err and out == ""
