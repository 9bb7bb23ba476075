"""Settings of the Telegram bot: the ``telegram:`` section of config.yaml.

The bot token is deliberately not a key here: config files get committed and shared. It
comes from the ``TELEGRAM_BOT_TOKEN`` environment variable, or from the file ``token_file``
names (a Docker or systemd secret).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quotebot.index.errors import ExitCode, QuotebotError

TOKEN_ENVIRONMENT_VARIABLE = "TELEGRAM_BOT_TOKEN"
# The issue names this spelling (single underscore); QUOTEBOT_TELEGRAM__API_BASE_URL works too.
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"


class TelegramSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base_url: str = Field(
        DEFAULT_API_BASE_URL,
        description="Bot API base URL in python-telegram-bot's base_url form: the token is appended "
        "(or replaces {token}). Change it for a self-hosted Bot API server or a test server.",
    )
    token_file: Path | None = Field(
        None, description="A file holding the bot token, used when TELEGRAM_BOT_TOKEN is not set."
    )
    allowed_chat_ids: list[int] = Field(
        default_factory=list, description="Chats the bot answers in; empty with allowed_user_ids empty: every chat."
    )
    allowed_user_ids: list[int] = Field(
        default_factory=list, description="Users the bot answers, in any chat; others are politely refused."
    )
    questions_per_minute: int = Field(
        20, ge=0, le=10_000, description="Questions one chat may ask per minute (0: no limit)."
    )
    refusal_window_seconds: int = Field(
        600,
        ge=1,
        le=7 * 86_400,
        description="A chat not on the allowlist is told so at most once in this many seconds, then ignored "
        "(a stranger must not make the bot send without limit).",
    )
    more_ttl_seconds: int = Field(
        3600, ge=10, le=7 * 86_400, description="How long a \"More\" button keeps working after the answer."
    )
    max_retries: int = Field(
        3, ge=0, le=20, description="Retries of a request that Telegram answered with 429 Too Many Requests."
    )
    messages_per_second: float = Field(
        30.0, ge=0, description="Outgoing requests per second for the whole bot (Telegram's limit; 0: no limit)."
    )
    group_messages_per_minute: float = Field(
        20.0, ge=0, description="Outgoing requests per minute in one group (Telegram's limit; 0: no limit)."
    )
    concurrent_updates: int = Field(
        64, ge=1, le=4096, description="Updates handled at once, so a slow answer in one chat holds up no other."
    )
    poll_timeout_seconds: int = Field(30, ge=0, le=300, description="Long-polling timeout of getUpdates.")

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class TokenError(QuotebotError):
    """No usable bot token; ``str()`` is the one-line message."""

    exit_code = ExitCode.USAGE


def read_token(settings: TelegramSettings, base: Path, environ: Mapping[str, str] | None = None) -> str:
    """The bot token from the environment, else from ``token_file`` (relative to ``base``)."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if token:
        return token
    if settings.token_file is None:
        raise TokenError(f"no bot token: set {TOKEN_ENVIRONMENT_VARIABLE} or telegram.token_file (see docs/telegram.md)")
    path = settings.token_file.expanduser()
    path = path if path.is_absolute() else base / path
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise TokenError(f"{path}: cannot read the bot token ({getattr(error, 'strerror', None) or error})") from None
    if not token:
        raise TokenError(f"{path}: the token file is empty")
    return token
