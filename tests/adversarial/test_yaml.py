"""YAML that hung every command (alias bombs) or was accepted wrongly (duplicate keys): item 3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quotebot.bot.regress.fixtures import FixtureError, load_fixture
from quotebot.bot.settings import SettingsError, load_settings
from quotebot.index.yamlerrors import YamlLocatedError, parse_yaml
from tests.adversarial.helpers import alias_bomb

ROOT = Path(__file__).resolve().parents[2]


def test_the_bomb_is_small() -> None:
    assert len(alias_bomb(9)) < 600  # the bomb was 470 bytes


def test_an_alias_bomb_in_a_fixture_is_refused_with_file_and_line(tmp_path: Path) -> None:
    fixture = tmp_path / "qa_bomb.yaml"
    fixture.write_text(alias_bomb(9) + "cases:\n  - question: what?\n    tags: *a9\n", encoding="utf-8")
    with pytest.raises(FixtureError) as caught:
        load_fixture(fixture)
    message = str(caught.value)
    assert message.startswith(f"{fixture}:") and "alias" in message and "\n" not in message


def test_an_alias_bomb_in_config_yaml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("index:\n  chunk_tokens: 120\n" + "x_" + alias_bomb(9).replace("\n", "\n", 1), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"config.yaml:\d+: aliases expand"):
        load_settings(config, environ={})


def test_a_modest_use_of_aliases_still_works() -> None:
    data, lines = parse_yaml("base: &b {x: 1}\nfirst: *b\nsecond: *b\n", "t.yaml")
    assert data == {"base": {"x": 1}, "first": {"x": 1}, "second": {"x": 1}}
    assert lines[("second",)] == 3


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlLocatedError, match="refers to a node that contains it"):
        parse_yaml("a: &a [1, *a]\n", "t.yaml")


def test_yaml_nested_too_deeply_is_one_line() -> None:
    with pytest.raises(YamlLocatedError, match="nested too deeply|t.yaml"):
        parse_yaml("[" * 50_000 + "]" * 50_000, "t.yaml")


def test_the_regress_command_refuses_a_bomb_quickly(tmp_path: Path) -> None:
    fixture = tmp_path / "qa_bomb.yaml"
    fixture.write_text(alias_bomb(9) + "cases:\n  - question: what?\n    tags: *a9\n", encoding="utf-8")
    # With the old line map this ran for minutes and took gigabytes; 60 s is a hang, not a figure.
    result = subprocess.run(
        [sys.executable, "-m", "quotebot.bot.cli", "regress", str(fixture)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "alias" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_duplicate_keys_in_config_yaml_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("retrieval:\n  max_quotes: 3\nretrieval:\n  max_quotes: 5\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"config.yaml:3: retrieval: duplicate key"):
        load_settings(config, environ={})
