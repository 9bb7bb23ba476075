"""Sentence splitting and chunking of article text, all by character offsets.

The bot quotes articles verbatim, so nothing here rewrites text: sentences are
``Span``s into the original string and chunks are runs of whole sentences.

Splitting rules, in order:

1. A line break always ends a sentence (paragraphs, titles, list items).
2. Inside a line, a candidate boundary is a run of terminators (``. ! ? …``,
   so ``?!`` and ``...`` count as one), then any closing quotes/brackets (they
   stay with the sentence), then whitespace, then the next sentence's first
   character, which must be uppercase, a digit or an opening quote/bracket.
   Dots with no whitespace after them (``3.5``, ``$1.2bn``, ``U.S.-led``) and
   dots followed by lowercase (``etc. and``, ``... and then``) never split.
3. A candidate ending in a single ``.`` is then checked against the word before
   it; see ``ABBREVIATIONS`` and ``_ends_sentence_after_period``.

Everything is a handful of compiled regexes scanned once, plus a bounded look
back at the word before each candidate, so the cost is linear in the text.
"""

from __future__ import annotations

import re

from quotebot.index.articles import Chunk, Span
from quotebot.index.lazyre import lazy

# --- Abbreviations -------------------------------------------------------------
# Each group is matched case-sensitively against the word before a period
# (without the period and any surrounding quotes/brackets).

# Titles and name parts that precede a name: what follows is almost always a
# capitalised name, not a new sentence, so these never end a sentence.
_TITLES = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Gen", "Col", "Lt", "Sgt",
           "Capt", "Maj", "Rep", "Sen", "Gov", "Rev", "Hon", "Pres", "Supt")
# Latin/connective abbreviations used mid-sentence: "e.g. The Times" or
# "Smith vs. Jones" continue the sentence, so these never end one either.
_CONNECTIVES = ("e.g", "i.e", "vs", "cf", "approx", "ca", "viz")
# Words that precede a number ("No. 10", "Jan. 5"): glued to a following digit;
# before a word they are treated like ``_SUFFIXES`` ("in Dec. The vote ...").
_BEFORE_NUMBER = ("No", "Nos", "Vol", "Art", "Fig", "Jan", "Feb", "Mar", "Apr",
                  "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
# Suffixes that often sit inside a sentence ("Apple Inc. shares", "Martin
# Luther King Jr. Day") but can also end one ("... bought by Apple Inc. The
# deal ..."): they end a sentence only before a common sentence starter.
_SUFFIXES = ("Jr", "Sr", "Inc", "Ltd", "Co", "Corp", "Bros", "Plc", "LLC")
# "etc." is deliberately absent: it ends a sentence unless lowercase follows,
# which the general rule (next sentence must start uppercase) already gives.

ABBREVIATIONS: tuple[str, ...] = _TITLES + _CONNECTIVES + _BEFORE_NUMBER + _SUFFIXES

_NEVER_END = frozenset(_TITLES + _CONNECTIVES)
_BEFORE_NUMBER_SET = frozenset(_BEFORE_NUMBER)
_SUFFIX_SET = frozenset(_SUFFIXES)

# Words that commonly begin a sentence. After an ambiguous abbreviation such as
# "U.S." or an initial such as "W.", a following starter ends the sentence
# ("moved to the U.S. The next day") while a name does not ("George W. Bush").
SENTENCE_STARTERS = frozenset(
    "The A An This That These Those There Then It Its He His She Her They Their "
    "We Our I You In On At As After Before When While If But And So Yet For "
    "However Meanwhile Also Still Some Many Most Such According".split()
)

# --- Regexes -------------------------------------------------------------------
_TERMINATORS = ".!?…"
_CLOSERS = "\"'”’)]}»"
_OPENERS = "\"'“‘([{«¿¡"

_LINE = lazy(r"[^\n\r\u2028\u2029\x85]+")
# The lookbehind makes each terminator run match once from its first character,
# so a long run of dots cannot make the scan quadratic.
_CANDIDATE = lazy(
    rf"(?<![{re.escape(_TERMINATORS)}])[{re.escape(_TERMINATORS)}]+"
    rf"[{re.escape(_CLOSERS)}]*(?P<space>\s+)"
)
_LAST_WORD = lazy(r"\S+$")
_INITIALISM = lazy(r"(?:[A-Za-z]\.)+[A-Za-z]|[A-Z]")  # U.S / A.B.C / W (fullmatch)
_NEXT_WORD = lazy(rf"[{re.escape(_OPENERS)}]*([A-Za-z]+)")
_LOOKBACK = 40  # characters to look back for the word before a period
_TOKEN = lazy(r"\w+|[^\w\s]")


# --- Sentence splitting --------------------------------------------------------
def split_sentences(text: str) -> list[Span]:
    """Split ``text`` into stripped, ordered, non-overlapping sentence spans.

    Every non-whitespace character lies in exactly one span.
    """
    spans: list[Span] = []
    for line in _LINE.finditer(text):
        start = line.start()
        for boundary, next_start in _boundaries(text, line.start(), line.end()):
            _append_stripped(spans, text, start, boundary)
            start = next_start
        _append_stripped(spans, text, start, line.end())
    return spans


def _boundaries(text: str, start: int, end: int):
    """Yield ``(sentence_end, next_sentence_start)`` for splits inside one line."""
    for match in _CANDIDATE.finditer(text, start, end):
        boundary, next_start = match.start("space"), match.end()
        if next_start < end and _is_boundary(text, match.start(), boundary, next_start):
            yield boundary, next_start


def _is_boundary(text: str, term_start: int, boundary: int, next_start: int) -> bool:
    first = text[next_start]
    if not (first.isupper() or first.isdigit() or first in _OPENERS):
        return False
    terminators = text[term_start:boundary].rstrip(_CLOSERS)
    if terminators != ".":  # "!", "?", "?!", "...": always a boundary here
        return True
    return _ends_sentence_after_period(text, term_start, next_start)


def _ends_sentence_after_period(text: str, period: int, next_start: int) -> bool:
    """Decide whether the single period at ``period`` ends the sentence."""
    found = _LAST_WORD.search(text, max(0, period - _LOOKBACK), period)
    word = found.group().strip(_OPENERS + _CLOSERS) if found else ""
    if word in _NEVER_END:
        return False
    if word in _BEFORE_NUMBER_SET and text[next_start].isdigit():
        return False
    if word in _BEFORE_NUMBER_SET or word in _SUFFIX_SET or _INITIALISM.fullmatch(word):
        return _starts_with_starter(text, next_start)
    return True


def _starts_with_starter(text: str, pos: int) -> bool:
    found = _NEXT_WORD.match(text, pos)
    return bool(found) and found.group(1) in SENTENCE_STARTERS


def _append_stripped(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        offset = start + len(piece) - len(piece.lstrip())
        spans.append(Span(start=offset, end=offset + len(stripped)))


# --- Chunking ------------------------------------------------------------------
def count_tokens(sentence: str) -> int:
    """Approximate token count: words plus individual punctuation marks.

    Runs of word characters count as one token and every other non-space
    character as one, which tracks subword tokenizers well enough for budgets.
    """
    return len(_TOKEN.findall(sentence))


def chunk_sentences(
    article_id: str,
    text: str,
    sentences: list[Span],
    *,
    chunk_tokens: int,
    chunk_overlap: int,
) -> list[Chunk]:
    """Group consecutive whole sentences into chunks of about ``chunk_tokens``.

    Sentences are added greedily while the chunk stays within budget; a sentence
    longer than the budget is a chunk on its own. Each next chunk starts
    ``chunk_overlap`` sentences before the previous one ended, but never at or
    before the previous chunk's start, and always takes at least one new
    sentence (even over budget), so consecutive chunks share exactly
    ``min(chunk_overlap, len(previous) - 1)`` sentences and the loop always ends.
    """
    if chunk_tokens < 1 or chunk_overlap < 0:
        raise ValueError("chunk_tokens must be >= 1 and chunk_overlap >= 0")
    sizes = [count_tokens(s.slice(text)) for s in sentences]
    chunks: list[Chunk] = []
    first, covered = 0, 0  # ``covered``: sentences before it are in some chunk
    while covered < len(sentences):
        last = _grow(sizes, first, covered + 1, chunk_tokens)
        chunks.append(_make_chunk(article_id, len(chunks), sentences, first, last))
        covered = last
        first = max(first + 1, last - chunk_overlap)
    return chunks


def _grow(sizes: list[int], first: int, min_end: int, budget: int) -> int:
    """End (exclusive) of a chunk from ``first``: at least ``min_end``, then greedy."""
    end = min_end
    total = sum(sizes[first:end])
    while end < len(sizes) and total + sizes[end] <= budget:
        total += sizes[end]
        end += 1
    return end


def _make_chunk(
    article_id: str, ordinal: int, sentences: list[Span], first: int, end: int
) -> Chunk:
    return Chunk(
        article_id=article_id,
        ordinal=ordinal,
        start=sentences[first].start,
        end=sentences[end - 1].end,
        first_sentence=first,
        sentences=tuple(sentences[first:end]),
    )


def chunk_article(
    article_id: str, text: str, *, chunk_tokens: int, chunk_overlap: int
) -> tuple[list[Span], list[Chunk]]:
    """Split ``text`` into sentences, then chunk them; returns ``(sentences, chunks)``."""
    sentences = split_sentences(text)
    chunks = chunk_sentences(
        article_id, text, sentences, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap
    )
    return sentences, chunks
