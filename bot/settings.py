"""All settings, read from config.yaml and ``QUOTEBOT_<SECTION>__<KEY>`` environment variables.

Each section is the settings model of the subsystem that owns it; this module only
composes them, resolves relative paths against the config file's folder, and turns every
mistake into a one-line ``SettingsError`` naming the file, line and key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quotebot.bot.telegram.settings import TelegramSettings
from quotebot.index.yamlerrors import YamlLocatedError, describe_validation_error, parse_yaml
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.settings import IndexSettings, WebSettings
from quotebot.retrieval.settings import RetrievalSettings

ENV_PREFIX = "QUOTEBOT_"
# Other names a setting's variable is documented under; the QUOTEBOT_<SECTION>__<KEY> form
# wins when both are set.
ENV_ALIASES = {"QUOTEBOT_TELEGRAM_API_BASE_URL": "QUOTEBOT_TELEGRAM__API_BASE_URL"}
DEFAULT_CONFIG_NAME = "config.yaml"


class SettingsError(QuotebotError):
    """A bad config file or environment variable; ``str()`` is the one-line message."""

    exit_code = ExitCode.USAGE


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    color: Literal["auto", "always", "never"] = Field("auto", description="Colour quotes on a terminal.")
    history_file: Path = Field(
        Path("~/.local/state/quotebot/history"), description="Where `quotebot chat` keeps its input history."
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    web: WebSettings = Field(default_factory=WebSettings)


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read settings: ``config_file`` (or ./config.yaml if present), then the environment.

    Relative paths in the file are taken from the file's folder, so the bot works from any
    working directory.
    """
    environ = dict(os.environ) if environ is None else environ
    if config_file is None and Path(DEFAULT_CONFIG_NAME).is_file():
        config_file = Path(DEFAULT_CONFIG_NAME)
    raw, lines = _read_yaml(config_file) if config_file else ({}, {})
    from_environment = _apply_environment(raw, environ)
    where = str(config_file) if config_file else "settings"
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(_describe(error, where, lines, from_environment)) from None
    base = config_file.resolve().parent if config_file else Path.cwd()
    return _resolve_paths(settings, base)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: cannot read config file ({error})") from None
    try:
        data, lines = parse_yaml(text, str(path), forbid_duplicate_keys=True)
    except YamlLocatedError as error:
        raise SettingsError(str(error)) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}:1: the config file must be a mapping of sections")
    return data, lines


def _apply_environment(raw: dict[str, Any], environ: dict[str, str]) -> dict[tuple[str, ...], str]:
    """``QUOTEBOT_RETRIEVAL__MAX_QUOTES=5`` sets ``retrieval.max_quotes``; values are YAML scalars.

    Returns which keys came from which variable, so an error can name the variable.
    """
    origins: dict[tuple[str, ...], str] = {}
    for name, value in sorted(environ.items()):
        canonical = ENV_ALIASES.get(name, name)
        if canonical != name and (canonical in environ or not value.strip()):
            continue
        if not canonical.startswith(ENV_PREFIX) or "__" not in canonical:
            continue
        section, _, key = canonical[len(ENV_PREFIX) :].lower().partition("__")
        if section not in Settings.model_fields:
            raise SettingsError(f"environment variable {name}: unknown section '{section}'")
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise SettingsError(f"environment variable {name}: section '{section}' is not a mapping")
        try:
            target[key] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            target[key] = value
        origins[(section, key)] = name
    return origins


def _describe(
    error: ValidationError,
    where: str,
    lines: dict[tuple[str, ...], int],
    from_environment: dict[tuple[str, ...], str],
) -> str:
    first = error.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    if loc[:2] in from_environment:
        where, lines = f"environment variable {from_environment[loc[:2]]}", {}
    return describe_validation_error(error, where, lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def absolute(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else base / path

    index = settings.index.model_copy(
        update={
            "corpus": [absolute(p) for p in settings.index.corpus],
            "index_dir": absolute(settings.index.index_dir),
        }
    )
    chat = settings.chat.model_copy(update={"history_file": absolute(settings.chat.history_file)})
    return settings.model_copy(update={"index": index, "chat": chat})
