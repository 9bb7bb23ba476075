"""The answer inside a quote: the few words that answer, to be shown in bold.

Candidates are the things of the kind the question asks for (a number, a date, a name, a
reason: ``answer_types.answer_spans``), or, for a question that gives no such cue, the
phrases of the quote between the question's own words, function words and clause
punctuation. Each is scored by how closely the question's distinct words surround it (the
answer sits where the question's words gather, in the same clause), less what it already
shares with the question; the best is marked. None when nothing qualifies: the quote is
still shown, only unmarked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from quotebot.index.text import STOP_WORDS, tokenize
from quotebot.retrieval.answer_types import AnswerType, QuestionType, answer_spans

_WORD = re.compile(r"[\w'’.%$£€-]*\w[%]?|[$£€]\d[\w.,]*")
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]\"“”‘—–]|\s-\s|\.\s|\s'|’\s")
_SENTENCE_BREAK = re.compile(r"[.!?][\"”’)]?\s")
# The longest phrase we mark, in words: a whole clause in bold marks nothing.
MAX_SPAN_WORDS = 8
_FIGURES = {AnswerType.PERCENT, AnswerType.AMOUNT, AnswerType.NUMBER, AnswerType.DATE}
_NAMED = {AnswerType.PERSON, AnswerType.ORGANISATION, AnswerType.PLACE, AnswerType.NAME}
_CLAUSES = {AnswerType.REASON, AnswerType.SAYING, AnswerType.REQUEST}


@dataclass(frozen=True)
class _Words:
    """The quote's words, which of them are the question's, and the clause and sentence each is in."""

    matches: list[re.Match]
    keyword: list[str | None]
    clause: list[int]
    sentence: list[int]

    @classmethod
    def of(cls, quote: str, keywords: set[str]) -> _Words:
        matches = list(_WORD.finditer(quote))
        clause, sentence = [], []
        c = s = 0
        position = 0
        for match in matches:
            gap = quote[position : match.start()]
            c += bool(_CLAUSE_BREAK.search(gap))
            s += bool(_SENTENCE_BREAK.search(gap))
            clause.append(c)
            sentence.append(s)
            position = match.end()
        return cls(matches, [_keyword_in(m.group(), keywords) for m in matches], clause, sentence)

    def covering(self, span: tuple[int, int]) -> tuple[int, int] | None:
        inside = [i for i, m in enumerate(self.matches) if m.start() < span[1] and span[0] < m.end()]
        return (inside[0], inside[-1]) if inside else None


def answer_span(asked: QuestionType, keywords: set[str], quote: str) -> tuple[int, int] | None:
    """Offsets into ``quote`` of its answering words, or ``None``."""
    words = _Words.of(quote, keywords)
    kind = asked.kind
    typed = answer_spans(asked, quote) if kind is not None else []
    if kind in _CLAUSES:
        anchors = [m.span() for m, k in zip(words.matches, words.keyword) if k]
        return min(typed, key=lambda span: (_distance(span, anchors), span[0])) if typed else _phrase(words, quote)
    candidates = [(span, 0.0) for span in typed]
    if kind in _NAMED:
        # A name of another kind than the one asked ("who" answered by a band, a team):
        # still a name, but after the ones of the asked kind.
        seen = set(typed)
        others = answer_spans(QuestionType(AnswerType.NAME, asked.known_words, asked.years, asked.numbers), quote)
        candidates += [(span, -NAME_OF_OTHER_KIND) for span in others if span not in seen]
    if candidates:
        return _best(words, candidates)
    if kind in _FIGURES:
        return None  # it asks for a figure and the quote has none: mark nothing rather than guess
    return _phrase(words, quote)


# How much lower a name not of the asked kind starts.
NAME_OF_OTHER_KIND = 0.6
# How much each of the question's words inside a candidate costs: the answer is what the
# question does not say.
SHARED_WORD_COST = 0.7


def _best(words: _Words, candidates: list[tuple[tuple[int, int], float]]) -> tuple[int, int] | None:
    best = None
    for span, prior in candidates:
        covered = words.covering(span)
        if covered is None:
            continue
        score = prior + _closeness(words, *covered) - SHARED_WORD_COST * _shared(words, *covered)
        key = (score, -span[0])
        if best is None or key > best[0]:
            best = (key, span)
    return best[1] if best else None


SPLIT_AT_FUNCTION_WORDS = False
# Function words that end a noun phrase: prepositions, conjunctions, pronouns, auxiliaries
# (not "the", "a", "of": they sit inside one, "the Bank of England").
_PHRASE_BREAKS = frozenset(STOP_WORDS - {"the", "a", "an", "of", "s", "t", "own", "same", "other", "more", "most", "few", "all", "each", "both", "some", "any", "no"})


def _phrase(words: _Words, quote: str) -> tuple[int, int] | None:
    """The best phrase among the runs between the question's words, clause punctuation and
    function words, for a question that names no kind of answer."""
    if not any(words.keyword):
        return None
    candidates = []
    run: list[int] = []
    for i in range(len(words.matches) + 1):
        boundary = (
            i == len(words.matches)
            or words.keyword[i] is not None
            or (run and words.clause[i] != words.clause[run[-1]])
            or (SPLIT_AT_FUNCTION_WORDS and words.matches[i].group().lower() in _PHRASE_BREAKS)
        )
        if boundary:
            trimmed = _trim([words.matches[j] for j in run])
            if trimmed:
                first = run[[words.matches[j] for j in run].index(trimmed[0])]
                candidates.append((first, first + len(trimmed) - 1))
            run = []
        if i < len(words.matches) and words.keyword[i] is None:
            run.append(i)
    best = None
    for first, last in candidates:
        last = min(last, first + MAX_SPAN_WORDS - 1)
        content = sum(1 for j in range(first, last + 1) if words.matches[j].group().lower() not in STOP_WORDS)
        score = _closeness(words, first, last) + 0.05 * min(content, 4)
        key = (score, -first)
        if best is None or key > best[0]:
            best = (key, (first, last))
    if best is None:
        return None
    first, last = best[1]
    trimmed = _trim(words.matches[first : last + 1])
    return (trimmed[0].start(), trimmed[-1].end()) if trimmed else None


def _closeness(words: _Words, first: int, last: int) -> float:
    """How closely the question's distinct words surround words ``first..last``: for each, its
    nearest occurrence outside the span, counted in words, farther across a clause or a
    sentence; a word right after the question's words counts a little more than one before."""
    nearest: dict[str, float] = {}
    for i, keyword in enumerate(words.keyword):
        if keyword is None or first <= i <= last:
            continue
        if i < first:
            gap = first - i - 1
            crossing = (words.clause[first] != words.clause[i], words.sentence[first] != words.sentence[i])
        else:
            gap = i - last - 1 + BEFORE_PENALTY
            crossing = (words.clause[last] != words.clause[i], words.sentence[last] != words.sentence[i])
        distance = gap + CLAUSE_COST * crossing[0] + SENTENCE_COST * crossing[1]
        nearest[keyword] = min(nearest.get(keyword, distance), distance)
    return sum(1.0 / (1.0 + d / DISTANCE_SCALE) for d in nearest.values())


# In words: how much farther a question word after the candidate counts, and a clause or
# sentence boundary between them; and the distance at which a word's pull halves.
BEFORE_PENALTY = 1
CLAUSE_COST = 3
SENTENCE_COST = 12
DISTANCE_SCALE = 3.0


def _shared(words: _Words, first: int, last: int) -> int:
    return sum(1 for i in range(first, last + 1) if words.keyword[i] is not None)


def _trim(words: list[re.Match]) -> list[re.Match]:
    """Without stop words at either end ("the", "of", "that")."""
    start, end = 0, len(words)
    while start < end and words[start].group().lower() in STOP_WORDS:
        start += 1
    while end > start and words[end - 1].group().lower() in STOP_WORDS:
        end -= 1
    return words[start:end]


def _keyword_in(word: str, keywords: set[str]) -> str | None:
    """The first of the question's keywords this word holds ("gold-themed": theme), if any."""
    return next((token for token in _tokens_of(word) if token in keywords), None)


@lru_cache(maxsize=65536)
def _tokens_of(word: str) -> tuple[str, ...]:
    return tuple(tokenize(word))


def _distance(span: tuple[int, int], anchors: list[tuple[int, int]]) -> int:
    if not anchors:
        return 0
    start, end = span
    return min(max(a_start - end, start - a_end, 0) for a_start, a_end in anchors)
