"""Fixtures of the adversarial suite: a private copy of the seed index to damage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from quotebot.bot.cli import main


@pytest.fixture
def index_copy(seed_index_dir: Path, tmp_path: Path) -> Path:
    """A copy of the seed index that a test may damage."""
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target, symlinks=True)
    return target


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``quotebot`` in this process: ``(exit code, stdout, stderr)``."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
