"""The chat's filter commands, shared by the terminal chat and Telegram: /since, /until,
/source, /topic, /filters and /clear. A filter holds for one conversation until cleared."""

from __future__ import annotations

from pydantic import ValidationError

from quotebot.bot.chat import QuoteBot
from quotebot.index.filters import ArticleFilter

FILTER_COMMANDS = ("since", "until", "source", "topic", "filters", "clear")

FILTER_HELP = """\
  /since DATE    only articles from DATE on (2024-05-01, or 7d for a week ago)
  /until DATE    only articles up to DATE
  /source NAME   only articles from this site or feed (e.g. /source Reuters)
  /topic NAME    only articles on this topic
  /filters       show the filters of this conversation
  /clear         drop the filters"""

_USAGE = {
    "since": "/since DATE, e.g. /since 2024-05-01 or /since 7d",
    "until": "/until DATE, e.g. /until 2024-05-31",
    "source": "/source NAME, e.g. /source Reuters",
    "topic": "/topic NAME, e.g. /topic business",
}


def filter_command(bot: QuoteBot, conversation: str, command: str, argument: str) -> str:
    """Carry out one filter command in ``conversation``; the reply to show."""
    command = command.lower().lstrip("/")
    argument = " ".join(argument.split())
    current = bot.filter_of(conversation)
    if command == "filters":
        return describe_scope(bot, current)
    if command == "clear":
        bot.set_filter(conversation, ArticleFilter())
        return "Filters cleared. " + describe_scope(bot, ArticleFilter())
    if command not in _USAGE:
        raise ValueError(f"not a filter command: /{command}")
    if not argument:
        return f"Usage: {_USAGE[command]}"
    field = {"since": "since", "until": "until", "source": "sources", "topic": "topics"}[command]
    try:
        updated = ArticleFilter(**{**current.model_dump(), field: argument})
    except ValidationError as error:
        return f"{_reason(error)}. Usage: {_USAGE[command]}"
    bot.set_filter(conversation, updated)
    return describe_scope(bot, updated)


def describe_scope(bot: QuoteBot, article_filter: ArticleFilter) -> str:
    """"Answering from 12 articles from Reuters since 2024-05-01." or why none match."""
    matching, total = bot.count_matching(article_filter)
    if article_filter.is_empty:
        return f"No filters: answering from all {total:,} article{'s' * (total != 1)}."
    scope = article_filter.describe()
    if matching == 0:
        return f"No articles {scope} (of {total:,} indexed). /clear drops the filters."
    return f"Answering from {matching:,} article{'s' * (matching != 1)} {scope} (of {total:,})."


def _reason(error: ValidationError) -> str:
    message = str(error.errors()[0].get("msg", "invalid value"))
    message = message.removeprefix("Value error, ").rstrip(".")
    return message[:1].upper() + message[1:]
