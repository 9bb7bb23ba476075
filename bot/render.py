"""Turning an ``Answer`` into words for people; shared by every front end.

Front ends differ only in markup (ANSI on a terminal, HTML on Telegram); what is said,
and the source line under each quote, is decided here once.
"""

from __future__ import annotations

import textwrap

from quotebot.bot.safe_text import json_line, printable
from quotebot.retrieval.answer import Answer, Quote

NOT_FOUND = "I couldn't find that in the articles."
QUOTE_INDENT = "    "
WRAP_WIDTH = 88

_ANSI_QUOTE = "\033[1m"  # bold: the words the article actually says
_ANSI_SOURCE = "\033[2;36m"  # dim cyan: where they come from
_ANSI_ANSWER = "\033[1;4;33m"  # bold underlined yellow: the words that answer
_ANSI_RESET = "\033[0m"

# Stand-ins for where the answer starts and ends while a quote's white space is collapsed
# and wrapped (neither is white space, neither occurs in article text); each front end
# turns them into its own markup.
ANSWER_OPEN = "\x02"
ANSWER_CLOSE = "\x03"


def source_line(quote: Quote) -> str:
    """Where a quote comes from: the article title, its date and the paragraph."""
    title, rest = source_parts(quote)
    return title + rest


def source_parts(quote: Quote) -> tuple[str, str]:
    """The source line as (title, the rest): Telegram makes the title a link to the article."""
    title = quote.title or quote.article_id
    dated = f" ({quote.date[:10]})" if quote.date else ""
    return title, f"{dated}, paragraph {quote.paragraph}"


def not_found_text(answer: Answer) -> str:
    """Why there is no quote: nothing matched the filter, or nothing in it answers."""
    scope = answer.filter.describe() if answer.filter is not None else ""
    if scope and answer.filtered_articles == 0:
        return f"No articles {scope}."
    if scope:
        count = answer.filtered_articles or 0
        return f"I couldn't find that in the {count:,} article{'s' * (count != 1)} {scope}."
    return NOT_FOUND


def answer_to_json(answer: Answer) -> str:
    """One line of JSON: the contract of ``quotebot ask --json`` and ``--batch``."""
    return json_line(answer.model_dump(mode="json"))  # exact data, no raw control character


def marked_text(quote: Quote) -> str:
    """The quote with white space collapsed and its answer between ANSWER_OPEN and ANSWER_CLOSE."""
    # An article's own marker characters (control characters nobody sees) must not pass for ours.
    text = quote.text.replace(ANSWER_OPEN, " ").replace(ANSWER_CLOSE, " ")
    if quote.answer_start is not None and quote.answer_end is not None:
        start, end = quote.answer_start - quote.start, quote.answer_end - quote.start
        text = f"{text[:start]}{ANSWER_OPEN}{text[start:end]}{ANSWER_CLOSE}{text[end:]}"
    return " ".join(text.split())


def _printable_marked(text: str) -> str:
    """``printable`` for the text between the answer markers; the markers stay as they are."""
    return ANSWER_OPEN.join(
        ANSWER_CLOSE.join(printable(piece) for piece in part.split(ANSWER_CLOSE)) for part in text.split(ANSWER_OPEN)
    )


def answer_to_text(answer: Answer, *, color: bool = False, limit: int | None = None) -> str:
    """Quotes as indented blocks, each with its source under it; or the plain not-found line."""
    if not answer.answered:
        return not_found_text(answer)
    quotes = answer.quotes[:limit] if limit else answer.quotes
    return "\n\n".join(_quote_block(quote, color) for quote in quotes)


def _quote_block(quote: Quote, color: bool) -> str:
    # Article text is printed inert: an escape sequence in it must not drive the terminal.
    body = textwrap.fill(
        _printable_marked(marked_text(quote)) if color else printable(" ".join(quote.text.split())),
        width=WRAP_WIDTH,
        initial_indent=QUOTE_INDENT,
        subsequent_indent=QUOTE_INDENT,
    )
    source = f"{QUOTE_INDENT}— {printable(source_line(quote))}"
    if color:
        # The answer stands out inside the bold quote; the quote's bold resumes after it.
        body = body.replace(ANSWER_OPEN, _ANSI_ANSWER).replace(ANSWER_CLOSE, _ANSI_RESET + _ANSI_QUOTE)
        body = f"{_ANSI_QUOTE}{body}{_ANSI_RESET}"
        source = f"{_ANSI_SOURCE}{source}{_ANSI_RESET}"
    return f"{body}\n{source}"
