"""The telegram settings section, the token, and `quotebot telegram`'s one-line errors and log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from quotebot.bot.cli import ExitCode, main
from quotebot.bot.settings import SettingsError, load_settings
from quotebot.bot.telegram.command import _OneLineFormatter
from quotebot.bot.telegram.settings import TelegramSettings, TokenError, read_token

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_has_the_section_with_defaults() -> None:
    settings = load_settings(ROOT / "config.yaml", environ={})
    assert settings.telegram == TelegramSettings()


def test_environment_overrides(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telegram:\n  allowed_chat_ids: [1]\n", encoding="utf-8")
    settings = load_settings(
        config,
        environ={
            "QUOTEBOT_TELEGRAM__ALLOWED_CHAT_IDS": "[-100, 5]",
            "QUOTEBOT_TELEGRAM__API_BASE_URL": "http://127.0.0.1:8081/bot",
        },
    )
    assert settings.telegram.allowed_chat_ids == [-100, 5]
    assert settings.telegram.api_base_url == "http://127.0.0.1:8081/bot"


def test_single_underscore_base_url_alias() -> None:
    base = TelegramSettings()
    assert load_settings(None, environ={}).telegram == base
    aliased = load_settings(None, environ={"QUOTEBOT_TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot"}).telegram
    assert aliased.api_base_url == "http://127.0.0.1:9/bot"
    both = {"QUOTEBOT_TELEGRAM_API_BASE_URL": "http://a/bot", "QUOTEBOT_TELEGRAM__API_BASE_URL": "http://b/bot"}
    assert load_settings(None, environ=both).telegram.api_base_url == "http://b/bot", "the canonical name wins"


def test_the_token_is_never_a_config_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telegram:\n  token: 123:abc\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="telegram.token: unknown key"):
        load_settings(config, environ={})


def test_token_from_environment_then_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  42:FILE\n", encoding="utf-8")
    from_file = TelegramSettings(token_file=Path("token"))
    assert read_token(from_file, tmp_path, {"TELEGRAM_BOT_TOKEN": "42:ENV"}) == "42:ENV"
    assert read_token(from_file, tmp_path, {}) == "42:FILE"
    with pytest.raises(TokenError, match="TELEGRAM_BOT_TOKEN"):
        read_token(TelegramSettings(), tmp_path, {})
    with pytest.raises(TokenError, match="cannot read the bot token"):
        read_token(TelegramSettings(token_file=Path("missing")), tmp_path, {})


def test_bad_base_url_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="QUOTEBOT_TELEGRAM__API_BASE_URL"):
        load_settings(None, environ={"QUOTEBOT_TELEGRAM__API_BASE_URL": "ftp://x"})


@pytest.mark.parametrize(
    ("argv", "environment", "message"),
    [
        (["telegram"], {}, "no bot token: set TELEGRAM_BOT_TOKEN"),
        (["telegram", "--secret-token", "abc"], {"TELEGRAM_BOT_TOKEN": "1:x"}, "--secret-token only applies with --webhook"),
        (["telegram", "--webhook", "--secret-token", "no spaces"], {"TELEGRAM_BOT_TOKEN": "1:x"}, "secret token must be"),
        (["telegram"], {"TELEGRAM_BOT_TOKEN": "1:x", "QUOTEBOT_TELEGRAM_API_BASE_URL": "nope"}, "QUOTEBOT_TELEGRAM_API_BASE_URL"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str],
    environment: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "QUOTEBOT_TELEGRAM_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no config.yaml here: defaults
    assert main(argv) == ExitCode.USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("quotebot: error: ") and message in error


def test_log_lines_hide_secrets_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUOTEBOT_DEBUG", raising=False)
    formatter = _OneLineFormatter(["123:SECRET"])
    try:
        raise ValueError("POST https://api.telegram.org/bot123:SECRET/getMe failed")
    except ValueError as error:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "calling %s", ("bot123:SECRET",), (type(error), error, None))
    line = formatter.format(record)
    assert "123:SECRET" not in line and "[redacted]" in line
    assert "Traceback" not in line and "ValueError" in line
