"""The answer inside a quote: the few words that answer, to be shown in bold.

For a question that asks for a kind of thing (a number, a date, a name, a reason) it is
the thing of that kind nearest the question's own words in the quote and not named by the
question. For any other question it is the run of words next to the question's words that
the question does not already say, cut at clause punctuation ("What did Lavrov reveal?" ->
the words after "revealed"). None when nothing qualifies: the quote is still shown, only
unmarked.
"""

from __future__ import annotations

import re
from functools import lru_cache

from quotebot.index.text import STOP_WORDS, tokenize
from quotebot.retrieval.answer_types import QuestionType, answer_spans

_WORD = re.compile(r"[\w'’.%$£€-]*\w[%]?|[$£€]\d[\w.,]*")
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]\"“”‘—–]|\s-\s|\.\s|\s'|’\s")
# The longest unmarked run we mark, in words: a whole clause in bold marks nothing.
MAX_SPAN_WORDS = 8


def answer_span(asked: QuestionType, keywords: set[str], quote: str) -> tuple[int, int] | None:
    """Offsets into ``quote`` of its answering words, or ``None``."""
    anchors = [m.span() for m in _WORD.finditer(quote) if _is_keyword(m.group(), keywords)]
    typed = answer_spans(asked, quote) if asked.kind is not None else []
    if typed:
        return min(typed, key=lambda span: (_distance(span, anchors), span[0]))
    if asked.kind is not None and asked.kind.value in {"percent", "amount", "number", "date"}:
        return None  # it asks for a figure and the quote has none: mark nothing rather than guess
    return _untyped_span(quote, keywords, anchors)


def _untyped_span(quote: str, keywords: set[str], anchors: list[int]) -> tuple[int, int] | None:
    if not anchors:
        return None
    runs: list[list[re.Match]] = [[]]
    position = 0
    for match in _WORD.finditer(quote):
        if _CLAUSE_BREAK.search(quote[position : match.start()]) or _is_keyword(match.group(), keywords):
            runs.append([])
        if not _is_keyword(match.group(), keywords):
            runs[-1].append(match)
        position = match.end()
    best = None
    for run in runs:
        words = _trim(run)
        if not words:
            continue
        span = (words[0].start(), words[-1].end())
        content = sum(1 for w in words if w.group().lower() not in STOP_WORDS)
        # Nearest to the question's words first, a run right after them before one right
        # before them ("What did Lavrov reveal?": what follows "revealed"); then the run
        # with most content words.
        key = (_reading_distance(span, anchors), -min(content, MAX_SPAN_WORDS), span[0])
        if best is None or key < best[0]:
            best = (key, words)
    if best is None:
        return None
    words = best[1][:MAX_SPAN_WORDS]
    words = _trim(words)
    return (words[0].start(), words[-1].end()) if words else None


def _trim(words: list[re.Match]) -> list[re.Match]:
    """Without stop words at either end ("the", "of", "that")."""
    start, end = 0, len(words)
    while start < end and words[start].group().lower() in STOP_WORDS:
        start += 1
    while end > start and words[end - 1].group().lower() in STOP_WORDS:
        end -= 1
    return words[start:end]


def _is_keyword(word: str, keywords: set[str]) -> bool:
    return _keyword_of(word) in keywords


@lru_cache(maxsize=65536)
def _keyword_of(word: str) -> str | None:
    tokens = tokenize(word)
    return tokens[0] if tokens else None


def _distance(span: tuple[int, int], anchors: list[tuple[int, int]]) -> int:
    if not anchors:
        return 0
    start, end = span
    return min(max(a_start - end, start - a_end, 0) for a_start, a_end in anchors)


# How many characters a run before the question's words counts as farther than one after.
BEFORE_PENALTY = 20


def _reading_distance(span: tuple[int, int], anchors: list[tuple[int, int]]) -> int:
    start, end = span
    after = [start - a_end for _, a_end in anchors if a_end <= start]
    before = [a_start - end for a_start, _ in anchors if a_start >= end]
    return min([*after, *(d + BEFORE_PENALTY for d in before)] or [0])
