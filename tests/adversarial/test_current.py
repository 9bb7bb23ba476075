"""``CURRENT``, the index's pointer file, trusted too much (item 6): bounded, validated, never echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quotebot.index import storage

SECRET = "root:x:0:0:SECRET-LINE-FROM-A-FILE-THAT-MUST-NOT-BE-PRINTED\n"


def _point(index_dir: Path, how: str, tmp_path: Path) -> None:
    current = index_dir / storage.CURRENT_FILE
    current.unlink()
    if how == "dev-zero":
        current.symlink_to("/dev/zero")
    elif how == "secret-symlink":
        secret = tmp_path / "passwd"
        secret.write_text(SECRET * 3)
        current.symlink_to(secret)
    elif how == "outside":
        outside = tmp_path / "outside" / "gen-evil"
        outside.mkdir(parents=True)
        live = next(index_dir.glob("gen-*")).name
        current.write_text(f"{live}/../../outside/gen-evil\n")
    elif how == "symlinked-generation":
        outside = tmp_path / "outside" / "gen-evil"
        outside.mkdir(parents=True)
        (index_dir / "gen-evil").symlink_to(outside, target_is_directory=True)
        current.write_text("gen-evil\n")
    elif how == "not-utf8":
        current.write_bytes(b"gen-\xff\xfe\n")
    elif how == "directory":
        current.mkdir()
    elif how == "fifo":
        os.mkfifo(current)
    elif how == "huge":
        current.write_text("gen-" + "x" * 10_000_000)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["dev-zero", "fifo", "secret-symlink", "outside", "symlinked-generation", "not-utf8", "directory", "huge"]
)
def test_a_bad_current_is_exit_3_in_one_line(how: str, index_copy: Path, tmp_path: Path, cli) -> None:
    _point(index_copy, how, tmp_path)
    code, out, err = cli("ask", "What did Herzog ask Lavrov?", "--index-dir", str(index_copy))
    assert code == 3, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quotebot: error: ")
    assert "SECRET" not in err and "xxxxxxxx" not in err and "evil/" not in err
    assert len(err) < 400


def test_current_is_read_with_a_bound(index_copy: Path, tmp_path: Path) -> None:
    _point(index_copy, "huge", tmp_path)
    with pytest.raises(storage.IndexMissingError, match=f"longer than {storage.MAX_CURRENT_BYTES} bytes"):
        storage.current_generation(index_copy)


def test_verify_reports_a_bad_current(index_copy: Path, tmp_path: Path, cli) -> None:
    _point(index_copy, "outside", tmp_path)
    code, out, err = cli("index", "verify", "--index-dir", str(index_copy))
    assert code == 1 and "CURRENT" in err


def test_a_good_current_still_works(index_copy: Path) -> None:
    generation = storage.current_generation(index_copy)
    assert generation.parent == index_copy and generation.name.startswith("gen-")
    assert os.path.samefile(generation, index_copy / storage.current_name(index_copy))
