"""config.yaml and environment overrides: every mistake is one line naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from quotebot.bot.settings import SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_is_valid_and_documented() -> None:
    root = Path(__file__).resolve().parent.parent
    settings = load_settings(root / "config.yaml", environ={})
    readme = (root / "README.md").read_text(encoding="utf-8")
    for section in ("index", "retrieval", "chat", "telegram"):
        for key in type(getattr(settings, section)).model_fields:
            assert f"`{section}.{key}`" in readme, f"{section}.{key} is not documented in README.md"


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    config = write(tmp_path, "index:\n  index_dir: idx\n  corpus: [articles]\n")
    settings = load_settings(config, environ={})
    assert settings.index.index_dir == tmp_path / "idx"
    assert settings.index.corpus == [tmp_path / "articles"]


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    config = write(tmp_path, "retrieval:\n  max_quotes: 2\n  max_qoutes: 3\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config, environ={})
    assert str(error.value) == f"{config}:3: retrieval.max_qoutes: unknown key"


def test_ill_typed_key_names_file_line_and_key(tmp_path: Path) -> None:
    config = write(tmp_path, "index:\n  chunk_tokens: many\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config, environ={})
    message = str(error.value)
    assert message.startswith(f"{config}:2: index.chunk_tokens: ")
    assert "integer" in message and "\n" not in message


def test_unknown_section(tmp_path: Path) -> None:
    config = write(tmp_path, "retreival:\n  max_quotes: 2\n")
    with pytest.raises(SettingsError, match=r"config.yaml:1: retreival: unknown key"):
        load_settings(config, environ={})


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    config = write(tmp_path, "index:\n  chunk_tokens: [1, 2\n")
    with pytest.raises(SettingsError, match=r"config.yaml:\d+: "):
        load_settings(config, environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "retrieval:\n  max_quotes: 2\n")
    settings = load_settings(config, environ={"QUOTEBOT_RETRIEVAL__MAX_QUOTES": "5"})
    assert settings.retrieval.max_quotes == 5


def test_bad_environment_variable_is_named(tmp_path: Path) -> None:
    config = write(tmp_path, "")
    with pytest.raises(SettingsError, match="QUOTEBOT_RETRIEVAL__MAX_QUOTES"):
        load_settings(config, environ={"QUOTEBOT_RETRIEVAL__MAX_QUOTES": "lots"})
    with pytest.raises(SettingsError, match="QUOTEBOT_NOPE__X: unknown section 'nope'"):
        load_settings(config, environ={"QUOTEBOT_NOPE__X": "1"})
