"""Answers as Telegram HTML, split into messages Telegram accepts. Pure: no I/O, no PTB.

What is said (the not-found line, the source line) comes from ``bot.render``; this module
only decides the markup. Every piece of article or user text goes through ``escape``.

A reply is built from self-contained *blocks* (a quote with its source line, one line of
the source list, ...) and blocks are packed greedily into messages, so a message never
ends inside a tag or between a quote and its source.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from quotebot.bot.render import ANSWER_CLOSE, ANSWER_OPEN, NOT_FOUND, marked_text, not_found_text, source_parts
from quotebot.retrieval.answer import Answer, Quote

# Bot API limits (telegram.constants MessageLimit / InlineKeyboardButtonLimit; a test checks they agree).
MAX_MESSAGE_UTF16 = 4096  # text after entity parsing, counted in UTF-16 code units
MAX_ENTITIES = 100  # Telegram silently drops the formatting of any further entity
MAX_CALLBACK_DATA_BYTES = 64

# A quote longer than this is cut at word boundaries into several blockquotes, so that the
# last piece plus its source line (at most SOURCE_LINE_MAX_UTF16) still fits one message.
QUOTE_PIECE_UTF16 = 3500
SOURCE_LINE_MAX_UTF16 = 300
# Quotes longer than this are sent collapsed (<blockquote expandable>), like the retriever's
# longest "readable in a chat bubble" first quote.
EXPANDABLE_FROM_UTF16 = 400
# /sources lists at most this many articles; a 20k-article corpus must not become 100 messages.
MAX_SOURCES_LISTED = 100

BLOCK_SEPARATOR = "\n\n"
ELLIPSIS = "…"

_TAG = re.compile(r"<[^>]*>")
_OPENING_TAG = re.compile(r"<[a-z]")


def escape(text: str) -> str:
    """Text safe inside Telegram HTML: only <, > and & need escaping outside attributes."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Block:
    """A self-contained piece of Telegram HTML with its visible length and entity count."""

    html: str
    length: int
    entities: int

    @classmethod
    def of(cls, markup: str) -> Block:
        # Our own markup is well formed, so stripping tags and unescaping gives exactly the
        # text Telegram counts after parsing entities.
        visible = html.unescape(_TAG.sub("", markup))
        return cls(markup, utf16_len(visible), len(_OPENING_TAG.findall(markup)))


def pack(
    blocks: Sequence[Block],
    *,
    limit: int = MAX_MESSAGE_UTF16,
    max_entities: int = MAX_ENTITIES,
    joiner: str = BLOCK_SEPARATOR,
) -> list[str]:
    """Join blocks (with ``joiner``) into as few messages as fit Telegram's limits, splitting only between blocks."""
    separator = utf16_len(joiner)
    messages: list[str] = []
    current: list[str] = []
    length = entities = 0
    for block in blocks:
        if block.length > limit or block.entities > max_entities:
            raise ValueError(f"a block of {block.length} characters and {block.entities} entities fits no message")
        extra = block.length + (separator if current else 0)
        if current and (length + extra > limit or entities + block.entities > max_entities):
            messages.append(joiner.join(current))
            current, length, entities = [], 0, 0
            extra = block.length
        current.append(block.html)
        length += extra
        entities += block.entities
    if current:
        messages.append(joiner.join(current))
    return messages


# -- answers -------------------------------------------------------------------------------


def quote_blocks(quote: Quote) -> list[Block]:
    """The quote in a blockquote (cut into pieces if very long), its source line under the last."""
    # Line breaks inside a quote are layout, as on the terminal; the answer is in bold.
    text = marked_text(quote)
    visible = text.replace(ANSWER_OPEN, "").replace(ANSWER_CLOSE, "")
    opening = "<blockquote expandable>" if utf16_len(visible) > EXPANDABLE_FROM_UTF16 else "<blockquote>"
    quoted = [f"{opening}{piece}</blockquote>" for piece in _bold_answer(_pieces(text, QUOTE_PIECE_UTF16))]
    quoted[-1] += f"\n<i>{source_markup(quote)}</i>"
    return [Block.of(markup) for markup in quoted]


def source_markup(quote: Quote) -> str:
    """"— Title (date), paragraph N", the title a link to the article when it has a URL;
    the title is shortened so the line stays within SOURCE_LINE_MAX_UTF16."""
    title, rest = source_parts(quote)
    room = SOURCE_LINE_MAX_UTF16 - utf16_len(f"— {rest}")
    title = shorten(title, max(room, 20))
    if quote.url and quote.url.startswith(("http://", "https://")):
        return f'— <a href="{html.escape(quote.url, quote=True)}">{escape(title)}</a>{escape(rest)}'
    return escape(f"— {title}{rest}")


def _bold_answer(pieces: list[str]) -> list[str]:
    """Escaped pieces with the answer in <b>; an answer cut between pieces is bold in each."""
    marked: list[str] = []
    inside = False
    for piece in pieces:
        html_piece = "<b>" if inside else ""
        for char in piece:
            if char == ANSWER_OPEN:
                html_piece += "<b>"
                inside = True
            elif char == ANSWER_CLOSE:
                html_piece += "</b>"
                inside = False
            else:
                html_piece += escape(char)
        marked.append(html_piece + ("</b>" if inside else ""))
    return [piece.replace("<b></b>", "") for piece in marked]


def quote_messages(quotes: Sequence[Quote]) -> list[str]:
    return pack([block for quote in quotes for block in quote_blocks(quote)])


def not_found_message(answer: Answer | None = None) -> str:
    """The not-found line; with the answer, what a filter did ("No articles from Reuters since ...")."""
    return escape(not_found_text(answer) if answer is not None else NOT_FOUND)


@dataclass(frozen=True)
class MorePlan:
    """What pressing "More" does: edit the pressed message in place, or send new messages.

    ``start``/``shown``/``can_grow`` describe the message that carries the button afterwards:
    it shows quotes[start:shown], and ``can_grow`` says it holds them whole in one message.
    """

    edit: str | None
    send: tuple[str, ...]
    start: int
    shown: int
    can_grow: bool


def plan_more(quotes: Sequence[Quote], start: int, shown: int, can_grow: bool) -> MorePlan:
    """Show the next quote: in the same message while it fits, else in a new one."""
    following = shown + 1
    if can_grow:
        grown = quote_messages(quotes[start:following])
        if len(grown) == 1:
            return MorePlan(edit=grown[0], send=(), start=start, shown=following, can_grow=True)
    sent = quote_messages(quotes[shown:following])
    return MorePlan(edit=None, send=tuple(sent), start=shown, shown=following, can_grow=len(sent) == 1)


# -- other replies ---------------------------------------------------------------------------


def sources_messages(articles: Sequence[tuple[str, str | None]]) -> list[str]:
    """The /sources reply from (title, date) pairs, the first MAX_SOURCES_LISTED of them."""
    if not articles:
        return ["No articles are indexed yet."]
    count = len(articles)
    blocks = [Block.of(f"<b>{count} article{'s' * (count != 1)} indexed</b>\n")]  # a blank line under it
    lines = [
        "• " + escape(shorten(title, SOURCE_LINE_MAX_UTF16)) + (f" <i>({escape(date)})</i>" if date else "")
        for title, date in articles[:MAX_SOURCES_LISTED]
    ]
    if count > MAX_SOURCES_LISTED:
        lines.append(f"…and {count - MAX_SOURCES_LISTED:,} more.")
    # Groups of lines, small enough that packing can split a long list between them, joined
    # by a plain line break: the list reads as one list, with no blank line every 10 articles.
    for first in range(0, len(lines), 10):
        blocks.append(Block.of("\n".join(lines[first : first + 10])))
    return pack(blocks, joiner="\n")


def start_message(articles: int, example: str) -> str:
    return (
        f"Hi! I answer questions about {articles:,} news article{'s' * (articles != 1)} by quoting "
        f"{'them' if articles != 1 else 'it'} word for word, with the source under each quote. "
        "If the articles don't say, I tell you.\n\n"
        f"Try: <i>{escape(example)}</i>\n\n"
        "/help shows what else I can do."
    )


def help_message(example: str, bot_username: str) -> str:
    mention = f"@{escape(bot_username)}"
    return (
        "<b>Ask me anything about the indexed articles.</b> I reply with sentences quoted word for word "
        "and where they come from; \"More\" shows the next passages. Follow-up questions work "
        '("and what did he say about …?").\n\n'
        f"/ask <i>question</i> — ask, e.g. /ask {escape(example)}\n"
        "/sources — the indexed articles\n"
        "/new — start a new conversation\n"
        "/since <i>date</i>, /until <i>date</i>, /source <i>name</i>, /topic <i>name</i> — only those articles "
        "(e.g. /since 2024-05-01, /since 7d, /source Reuters)\n"
        "/filters — the filters of this chat; /clear — drop them\n"
        "/help — this help\n\n"
        f"In groups I answer /ask, messages that mention {mention}, and replies to my messages."
    )


def ask_usage_message(example: str) -> str:
    return f"Put the question after the command, e.g. /ask {escape(example)}"


def refusal_message(chat_id: int) -> str:
    return (
        "Sorry, I only answer in chats I have been set up for. "
        f"If you run this bot, add this chat (id <code>{chat_id}</code>) to the allowlist."
    )


def slow_down_message(wait_seconds: float) -> str:
    return f"You are asking faster than I can read. Please wait {max(1, round(wait_seconds))} s and ask again."


ERROR_MESSAGE = "Sorry, something went wrong while answering. Please try again."
EXPIRED_MESSAGE = "This answer has expired. Please ask again."
NEW_CONVERSATION_MESSAGE = "New conversation: I have forgotten what we talked about."
UNKNOWN_COMMAND_MESSAGE = "I don't know that command. /help lists what I can do."
TEXT_ONLY_MESSAGE = "Please send your question as text."


# -- helpers -------------------------------------------------------------------------------


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 units at a word boundary, with an ellipsis if cut."""
    if utf16_len(text) <= limit:
        return text
    return _pieces(text, limit - utf16_len(ELLIPSIS))[0].rstrip() + ELLIPSIS


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` UTF-16 units, between words where possible."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = max(1, _fitting_prefix(rest, limit))  # at least one character, or this never ends
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut // 2:  # a word boundary, unless that wastes half the piece (a huge "word")
            cut = space
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return pieces


def _fitting_prefix(text: str, limit: int) -> int:
    """Characters of ``text`` whose UTF-16 length is at most ``limit`` (code points never split)."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)
