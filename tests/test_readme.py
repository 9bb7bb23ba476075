"""The README's samples are what the program prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from quotebot.bot.cli import main
from quotebot.bot.regress import runner
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_readme_regress_example_prints_the_summary_it_shows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embedder: Embedder,
    settings: Settings,
) -> None:
    example = re.search(r"^quotebot regress (\S+) +# a table, then \"([^\"]+)\"$", README, re.MULTILINE)
    assert example, "README.md lost its `quotebot regress` example"
    fixture, summary = example.groups()
    monkeypatch.setitem(runner._EMBEDDERS, (settings.index.model, settings.index.batch_size), embedder)
    monkeypatch.chdir(ROOT)  # the README's paths are the repository's
    argv = ["--config", str(ROOT / "config.yaml"), "regress", *shlex.split(fixture), "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip("\n").splitlines()[-1] == summary
