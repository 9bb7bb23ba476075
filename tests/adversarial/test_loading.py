"""Inputs that once crashed or silently shrank a load (issue #11, items 1, 4, 5 and "Lower")."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from quotebot.index.loaders import MAX_JSON_DEPTH, InputError, load_articles
from tests.adversarial.helpers import deep_json, run_python, shared_tmp

STORY = "The council approved the new budget on Tuesday. It takes effect in May.\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- item 1: unreadable and symlinked folders ---------------------------------------------------


@pytest.fixture
def corpus_with_locked_folder():
    root = shared_tmp()
    try:
        _write(root / "corpus" / "open" / "a.txt", "Open story\n\n" + STORY)
        _write(root / "corpus" / "locked" / "b.txt", "Locked story\n\n" + STORY.replace("May", "June"))
        (root / "corpus").chmod(0o755)
        (root / "corpus" / "open").chmod(0o755)
        (root / "corpus" / "locked").chmod(0o000)
        yield root / "corpus"
    finally:
        (root / "corpus" / "locked").chmod(0o755)
        shutil.rmtree(root)


def _load_unprivileged(corpus: Path, strict: bool) -> dict:
    code = textwrap.dedent(
        f"""
        import json
        from quotebot.index.loaders import InputError, load_articles
        try:
            report = load_articles([{str(corpus)!r}], strict={strict})
        except InputError as error:
            print(json.dumps({{"error": str(error)}}))
        else:
            print(json.dumps({{
                "ids": [a.id for a in report.articles],
                "skipped": [str(s) for s in report.skipped],
                "unreadable": report.unreadable,
            }}))
        """
    )
    result = run_python(code, unprivileged=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_an_unreadable_folder_is_a_warning_and_is_listed(corpus_with_locked_folder: Path) -> None:
    found = _load_unprivileged(corpus_with_locked_folder, strict=False)
    assert found["ids"] == ["open/a.txt"]
    assert len(found["skipped"]) == 1 and "locked" in found["skipped"][0]
    assert "cannot read folder" in found["skipped"][0]
    assert found["unreadable"] == [str(corpus_with_locked_folder / "locked")]


def test_an_unreadable_folder_is_an_error_when_strict(corpus_with_locked_folder: Path) -> None:
    found = _load_unprivileged(corpus_with_locked_folder, strict=True)
    assert "locked" in found["error"] and "cannot read folder" in found["error"]


def test_a_symlinked_folder_is_followed(tmp_path: Path) -> None:
    _write(tmp_path / "elsewhere" / "linked.txt", "Linked story\n\n" + STORY)
    _write(tmp_path / "corpus" / "a.txt", "A story\n\n" + STORY.replace("May", "July"))
    (tmp_path / "corpus" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    report = load_articles([tmp_path / "corpus"])
    assert sorted(a.id for a in report.articles) == ["a.txt", "more/linked.txt"]
    assert report.skipped == []


def test_a_symlink_loop_ends_with_a_warning(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "sub" / "a.txt", "A story\n\n" + STORY)
    (tmp_path / "corpus" / "sub" / "again").symlink_to(tmp_path / "corpus", target_is_directory=True)
    report = load_articles([tmp_path / "corpus"])
    assert [a.id for a in report.articles] == ["sub/a.txt"]
    assert any("symlink loop" in s.reason for s in report.skipped)


# -- item 4: deeply nested JSON ------------------------------------------------------------------

DEPTH = 100_000


def test_deep_json_file_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "deep.json", deep_json(DEPTH))
    _write(tmp_path / "ok.txt", "Fine\n\n" + STORY)
    report = load_articles([tmp_path])
    assert [a.id for a in report.articles] == ["ok.txt"]
    assert [(s.path.endswith("deep.json"), "nested" in s.reason) for s in report.skipped] == [(True, True)]


def test_deep_jsonl_line_is_skipped_and_the_rest_loaded(tmp_path: Path) -> None:
    good = json.dumps({"id": "r1", "text": STORY})
    _write(tmp_path / "feed.jsonl", good + "\n" + deep_json(DEPTH) + "\n")
    report = load_articles([tmp_path])
    assert [a.id for a in report.articles] == ["r1"]
    assert [(s.line, "nested" in s.reason) for s in report.skipped] == [(2, True)]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, DEPTH])
def test_deep_metadata_is_skipped(tmp_path: Path, depth: int) -> None:
    record = '{"id": "deep", "text": "%s", "extra": %s}' % (STORY.strip(), deep_json(depth))
    _write(tmp_path / "feed.jsonl", record + "\n")
    report = load_articles([tmp_path])
    assert report.articles == []
    assert len(report.skipped) == 1 and "nested" in report.skipped[0].reason


def test_json_that_python_cannot_parse_otherwise_is_skipped(tmp_path: Path) -> None:
    lines = [
        '{"id": "big", "text": "x", "n": ' + "9" * 5000 + "}",  # past int's 4,300-digit limit
        '{"id": "lone", "text": "half a pair \\ud800 here"}',  # valid JSON, not writable text
        '{"id": "ok", "text": "%s"}' % STORY.strip(),
    ]
    _write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n")
    report = load_articles([tmp_path])
    assert [a.id for a in report.articles] == ["ok"]
    assert [s.line for s in report.skipped] == [1, 2]


# -- item 5: file names that are not UTF-8 -------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.txt").write_text("Fine\n\n" + STORY, encoding="utf-8")
    bad = os.path.join(os.fsencode(corpus), b"caf\xe9.txt")
    with open(bad, "wb") as handle:
        handle.write(b"Bad name\n\nThe text is fine, the name is Latin-1.\n")
    report = load_articles([corpus])
    assert [a.id for a in report.articles] == ["ok.txt"]
    assert len(report.skipped) == 1
    assert "not valid UTF-8" in report.skipped[0].reason and "caf\\xe9.txt" in report.skipped[0].path
    with pytest.raises(InputError, match="caf"):
        load_articles([corpus], strict=True)


# -- Lower: UTF-16 with a byte order mark, and huge articles ------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_decoded(tmp_path: Path, encoding: str) -> None:
    text = "Grüße aus Köln\n\nDer Rat hat den Haushalt am Dienstag beschlossen.\n"
    bom = {"utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    (tmp_path / "de.txt").write_bytes(bom + text.encode(encoding))
    report = load_articles([tmp_path])
    assert report.skipped == []
    [article] = report.articles
    assert article.title == "Grüße aus Köln"
    assert article.text == "Der Rat hat den Haushalt am Dienstag beschlossen."


def test_an_article_past_max_article_chars_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "huge.txt", "Huge\n\n" + "A sentence that repeats. " * 500)
    _write(tmp_path / "feed.jsonl", json.dumps({"id": "long", "text": "word " * 3000}) + "\n")
    _write(tmp_path / "ok.txt", "Fine\n\n" + STORY)
    report = load_articles([tmp_path], max_article_chars=10_000)
    assert [a.id for a in report.articles] == ["ok.txt"]
    assert sorted(s.path.rsplit("/", 1)[-1] for s in report.skipped) == ["feed.jsonl", "huge.txt"]
    assert all("max_article_chars" in s.reason for s in report.skipped)
