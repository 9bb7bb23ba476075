"""``quotebot telegram``: run the Telegram bot, by long polling or (``--webhook``) as a webhook server.

Imports nothing heavy at module level (``quotebot --help`` loads this module); the model,
the index and python-telegram-bot are loaded by the handler.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

from quotebot.bot.settings import Settings
from quotebot.bot.telegram.settings import TokenError, read_token
from quotebot.index.errors import ExitCode, UserError

SECRET_ENVIRONMENT_VARIABLE = "TELEGRAM_WEBHOOK_SECRET"
# What setWebhook accepts as secret_token.
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_REDACTED = "[redacted]"


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "telegram",
        help="run the Telegram bot (long polling, or --webhook)",
        description="Run the Telegram bot. The token comes from TELEGRAM_BOT_TOKEN or telegram.token_file; "
        "see docs/telegram.md.",
        parents=[common],
    )
    parser.add_argument("--webhook", action="store_true", help="receive updates by webhook instead of long polling")
    parser.add_argument("--listen", default="127.0.0.1", metavar="ADDRESS", help="webhook: address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="webhook: port to listen on (default: 8443)")
    parser.add_argument("--url-path", default="telegram", metavar="PATH", help="webhook: path of the webhook URL (default: telegram)")
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help="webhook: the public HTTPS URL Telegram posts to (default: http://LISTEN:PORT/PATH, for a local Bot API server)",
    )
    parser.add_argument(
        "--secret-token",
        metavar="SECRET",
        help=f"webhook: secret Telegram sends with every update; others get 403 (default: ${SECRET_ENVIRONMENT_VARIABLE})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    telegram = settings.telegram
    try:
        token = read_token(telegram, _config_folder(args))
    except TokenError as error:
        raise UserError(str(error), ExitCode.USAGE) from None
    secret = _secret_token(args)
    _configure_logging(secrets=[token, secret])
    log = logging.getLogger("quotebot.telegram")

    from telegram.error import InvalidToken, TelegramError

    from quotebot.bot import wiring
    from quotebot.bot.telegram.app import build_application

    started = time.perf_counter()
    core = wiring.new_bot(settings)
    core.warm_up()  # once, before the first update: no user waits for the model to load
    application = build_application(core, telegram, token)
    articles = len(core.sources())
    log.info("%d article%s indexed; model ready in %.1f s", articles, "s" * (articles != 1), time.perf_counter() - started)
    try:
        if args.webhook:
            _run_webhook(application, args, secret, log)
        else:
            log.info("long polling %s", _public_url(telegram.api_base_url))
            application.run_polling(
                allowed_updates=["message", "callback_query"],
                timeout=telegram.poll_timeout_seconds,
            )
    except InvalidToken:
        raise UserError("the Bot API rejected the bot token (check TELEGRAM_BOT_TOKEN)", ExitCode.USAGE) from None
    except TelegramError as error:
        raise UserError(f"cannot start the bot: {type(error).__name__}: {error}", ExitCode.FAILED) from None
    log.info("stopped")
    return ExitCode.OK


def _run_webhook(application, args: argparse.Namespace, secret: str | None, log: logging.Logger) -> None:
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a TCP port", ExitCode.USAGE)
    if secret is None:
        log.warning("no --secret-token: anyone who finds the webhook URL can send the bot updates")
    log.info("webhook server on %s:%d/%s", args.listen, args.port, args.url_path.lstrip("/"))
    _answer_bad_json_with_400()
    application.run_webhook(
        listen=args.listen,
        port=args.port,
        url_path=args.url_path,
        webhook_url=args.webhook_url,
        secret_token=secret,
        allowed_updates=["message", "callback_query"],
    )


def _answer_bad_json_with_400() -> None:
    """Make PTB's webhook answer a body that is not a JSON object with 400, not 500.

    PTB parses the body outside its own error handling: a bad body raised, tornado answered
    500 and logged a traceback, and a sender (or Telegram) would retry. PTB has no hook for
    the request handler, so the class its Updater builds the web app from is swapped for
    one whose handler checks the body first. Only this process's webhook server is affected.
    """
    import json

    import tornado.web
    from telegram.ext import _updater
    from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookAppClass

    class CheckedTelegramHandler(TelegramHandler):
        async def post(self) -> None:
            self._validate_post()  # the secret and content type first: 403 before 400
            try:
                data = json.loads(self.request.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise tornado.web.HTTPError(400, reason="Body is not JSON") from None
            if not isinstance(data, dict):
                raise tornado.web.HTTPError(400, reason="Body is not a JSON object")
            await super().post()

    class CheckedWebhookApp(WebhookAppClass):
        # WebhookAppClass.__init__ with the handler class replaced (it takes no handler argument).
        def __init__(self, webhook_path, bot, update_queue, secret_token=None) -> None:  # type: ignore[no-untyped-def]
            self.shared_objects = {"bot": bot, "update_queue": update_queue, "secret_token": secret_token}
            handlers = [(rf"{webhook_path}/?", CheckedTelegramHandler, self.shared_objects)]
            tornado.web.Application.__init__(self, handlers)  # type: ignore[arg-type]

    _updater.WebhookAppClass = CheckedWebhookApp  # type: ignore[attr-defined]


def _config_folder(args: argparse.Namespace) -> Path:
    # The same folder load_settings takes relative paths from.
    return args.config.resolve().parent if args.config else Path.cwd()


def _secret_token(args: argparse.Namespace) -> str | None:
    if not args.webhook:
        if args.secret_token:
            raise UserError("--secret-token only applies with --webhook", ExitCode.USAGE)
        return None
    secret = args.secret_token or os.environ.get(SECRET_ENVIRONMENT_VARIABLE) or None
    if secret is not None and not _SECRET_TOKEN.match(secret):
        raise UserError("the webhook secret token must be 1-256 characters of A-Z, a-z, 0-9, _ and -", ExitCode.USAGE)
    return secret


def _public_url(base_url: str) -> str:
    return base_url.replace("{token}", "")


class _OneLineFormatter(logging.Formatter):
    """Log lines without tracebacks (unless QUOTEBOT_DEBUG is set) and with secrets blanked out.

    httpx and PTB may put request URLs, which contain the token, into messages and errors.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = [secret for secret in secrets if secret]
        self.debug = bool(os.environ.get("QUOTEBOT_DEBUG"))

    def formatException(self, exc_info) -> str:  # noqa: N802 (logging's name)
        if self.debug:
            return super().formatException(exc_info)
        error = exc_info[1]
        return f"({type(error).__name__}: {error}; QUOTEBOT_DEBUG=1 shows the traceback)"

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return super().formatStack(stack_info) if self.debug else ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.debug:
            text = " ".join(text.splitlines())  # one record, one line: easy to grep and to ship
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text


def _configure_logging(secrets: list[str | None]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter([s for s in secrets if s]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # httpx logs every request URL at INFO, and the URL holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # which CPU build it loaded is no news
