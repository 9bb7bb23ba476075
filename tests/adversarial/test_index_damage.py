"""Damage that `verify` missed and that crashed `ask` (item 7), and `verify | head` (Lower)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quotebot.index import storage


def _generation(index_dir: Path) -> Path:
    return storage.current_generation(index_dir)


def _flip_bytes(path: Path, at_fraction: float = 0.5, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at_fraction)
    for offset in range(start, min(start + count, len(data))):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_array(path: Path, change) -> None:
    array = np.load(path)
    change(array)
    np.save(path, array)  # same shape and dtype: same size, so only the content changed


def assert_damaged_index_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quotebot: error: "), err
    assert "Traceback" not in err and "allow_pickle" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_verify_passes_on_an_intact_index_and_the_manifest_has_checksums(index_copy: Path, cli) -> None:
    code, out, err = cli("index", "verify", "--index-dir", str(index_copy))
    assert code == 0, err
    manifest = storage.current_generation(index_copy) / storage.MANIFEST_FILE
    assert '"file_checksums"' in manifest.read_text() and "sha256:" in manifest.read_text()


@pytest.mark.parametrize("name", [storage.CHUNK_VECTORS_FILE, storage.CHUNK_TOKENS_FILE, storage.SENTENCE_VECTORS_FILE])
def test_verify_sees_bytes_flipped_in_place(name: str, index_copy: Path, cli) -> None:
    path = _generation(index_copy) / name
    size = path.stat().st_size
    _flip_bytes(path, 0.9 if name == storage.CHUNK_VECTORS_FILE else 0.5)
    assert path.stat().st_size == size
    code, out, err = cli("index", "verify", "--index-dir", str(index_copy))
    assert code == 1
    assert f"{name}: its content does not match the checksum" in err


@pytest.mark.parametrize(
    ("file", "change"),
    [
        ("bm25/indices.csc.index.npy", lambda a: a.__setitem__(0, 10**6)),
        ("bm25/indptr.csc.index.npy", lambda a: a.__setitem__(1, 10**6)),
        ("bm25/chunk_ids.npy", lambda a: a.__setitem__(0, 10**9)),
        (storage.CHUNKS_FILE, lambda a: a["article"].__setitem__(0, 999)),
        (storage.CHUNKS_FILE, lambda a: a["sentence_count"].__setitem__(0, 10**6)),
        (storage.ARTICLE_ROWS_FILE, lambda a: a["chunks"].__setitem__(0, -3)),
        (storage.SENTENCES_FILE, lambda a: a.__setitem__((0, 1), -1)),
    ],
)
def test_out_of_range_values_are_the_damaged_index_error(file: str, change, index_copy: Path, cli) -> None:
    _edit_array(_generation(index_copy) / file, change)
    code, out, err = cli("ask", "What did Herzog ask Lavrov?", "--index-dir", str(index_copy))
    assert_damaged_index_error(code, out, err, "damaged", "quotebot index build")
    code, _, err = cli("index", "verify", "--index-dir", str(index_copy))
    assert code == 1 and "checksum" in err


def test_article_text_that_is_not_utf8_is_the_damaged_index_error(index_copy: Path, cli) -> None:
    path = _generation(index_copy) / storage.ARTICLE_TEXTS_FILE
    data = bytearray(path.read_bytes())
    data[0:4] = b"\xff\xfe\xff\xfe"
    path.write_bytes(bytes(data))
    code, out, err = cli("ask", "What did Herzog ask Lavrov?", "--index-dir", str(index_copy))
    assert_damaged_index_error(code, out, err, "damaged index")


def test_articles_jsonl_errors_name_their_line(index_copy: Path, cli) -> None:
    path = _generation(index_copy) / storage.ARTICLES_FILE
    data = bytearray(path.read_bytes())
    data[2] = 0xFF  # on line 1, not valid UTF-8
    path.write_bytes(bytes(data))
    code, out, err = cli("ask", "What did Herzog ask Lavrov?", "--index-dir", str(index_copy))
    assert_damaged_index_error(code, out, err, f"{storage.ARTICLES_FILE}:1:")


def test_a_damaged_npy_header_is_one_plain_line(index_copy: Path, cli) -> None:
    path = _generation(index_copy) / storage.SENTENCE_VECTORS_FILE
    data = bytearray(path.read_bytes())
    header = b"{'descr': '|O', 'fortran_order"  # an object array: numpy would suggest allow_pickle
    data[10 : 10 + len(header)] = header
    path.write_bytes(bytes(data))
    code, out, err = cli("ask", "What did Herzog ask Lavrov?", "--index-dir", str(index_copy))
    assert_damaged_index_error(code, out, err, "not a valid .npy array")
    assert "\\x" not in err and "b'" not in err


def test_verify_keeps_its_exit_code_through_a_broken_pipe(index_copy: Path) -> None:
    _flip_bytes(_generation(index_copy) / storage.CHUNK_TOKENS_FILE)
    command = f"{sys.executable} -m quotebot.bot.cli index verify --index-dir {index_copy} 2>&1 | head -c 50; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout
