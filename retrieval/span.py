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


def answer_span(asked: QuestionType, keywords: set[str], quote: str, *, question: str = "") -> tuple[int, int] | None:
    """Offsets into ``quote`` of its answering words, or ``None``. ``question`` (as asked)
    lets "what/which <noun>" questions prefer the phrase that noun heads."""
    words = _Words.of(quote, keywords)
    asked_by = _Asked.of(question)
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
        return _best(words, candidates, asked_by)
    if kind in _FIGURES:
        return None  # it asks for a figure and the quote has none: mark nothing rather than guess
    return _phrase(words, quote, asked, asked_by)


_WH_HEAD = re.compile(
    r"\b(?:what|which)\s+(?:(?:type|kind|sort|form|name|part|piece|branch|style|genre)s?\s+of\s+(?:the\s+|a\s+|an\s+)?)?([a-z][\w-]*)"
    r"|\bname of (?:the |a |an )?([a-z][\w-]*)"
)
_NOT_HEADS = frozenset(
    "is was are were did does do has have had will would can could should may might must the a an".split()
)


_WH_CLAUSE = re.compile(r"\b(who|whom|what|which)\s+([\w'’-]+)(?:\s+([\w'’-]+))?")
_DO = frozenset("did does do".split())


@dataclass(frozen=True)
class _Asked:
    """What the question's wording says about where its answer sits in a sentence."""

    head: str | None  # the noun a "what/which <noun>" question asks for, as a keyword token
    # "subject": the wh-phrase is the subject ("Who headlined the show?"): the answer stands
    # before the question's other words; "object" ("Who did Denver beat?"): after them.
    role: str | None
    verb: str | None = None  # the question's verb, as a keyword token ("Who did Denver beat?": beat)

    @classmethod
    def of(cls, question: str) -> _Asked:
        asked = question.lower()
        head = None
        for found in _WH_HEAD.finditer(asked):
            word = found.group(1) or found.group(2)
            if word and word not in _NOT_HEADS:
                tokens = _tokens_of(word)
                head = tokens[0] if tokens else None
                break
        role = None
        clause = _WH_CLAUSE.search(asked)
        if clause:
            wh, first, second = clause.groups()
            after = second if wh in ("what", "which") and first not in _NOT_HEADS and first not in STOP_WORDS else first
            if after in _DO:
                role = "object"
            elif after in ("is", "was", "are", "were"):
                role = "subject" if after is second else None
            elif after is not None and after not in STOP_WORDS:
                role = "subject"
            elif after in ("has", "have", "had"):
                role = "subject"
        return cls(head, role, _verb(question, role))


_DETERMINERS = frozenset("the a an his her its their this that these those my our your".split())


def _verb(question: str, role: str | None) -> str | None:
    """The question's verb: for "What did <subject> <verb>", the first lower-case content
    word after the subject (a name, or a determiner and its noun); for "Who <verb>", the
    first content word after the wh-phrase."""
    if role is None:
        return None
    words = re.findall(r"[\w'’-]+", question)
    lowered = [w.lower() for w in words]
    starts = [i for i, w in enumerate(lowered) if w in ("who", "whom", "what", "which")]
    if not starts:
        return None
    i = starts[0] + 1
    if role == "object":
        while i < len(words) and lowered[i] not in _DO:
            i += 1
        i += 1
    for j in range(i, len(words)):
        word = words[j]
        if lowered[j] in STOP_WORDS or word[:1].isupper() or not word[:1].isalpha():
            continue
        previous = lowered[j - 1] if j > 0 else ""
        if role == "object" and (previous in _DETERMINERS or re.search(r"['’]s$", previous)):
            continue  # the subject's noun ("did his father make"), not its verb
        tokens = _tokens_of(lowered[j])
        return tokens[0] if tokens else None
    return None


# How much lower a name not of the asked kind starts.
NAME_OF_OTHER_KIND = 0.6
# How much each of the question's words inside a candidate costs: the answer is what the
# question does not say.
SHARED_WORD_COST = 0.7


def _best(words: _Words, candidates: list[tuple[tuple[int, int], float]], asked: _Asked) -> tuple[int, int] | None:
    best = None
    for span, prior in candidates:
        covered = words.covering(span)
        if covered is None:
            continue
        first, last = covered
        if TRIM_QUESTION_WORDS:
            # "NFL Commissioner Roger Goodell" asked "Who is the NFL commissioner?": Roger Goodell.
            while first <= last and words.keyword[first] not in (None, asked.head):
                first += 1
            while last >= first and words.keyword[last] not in (None, asked.head):
                last -= 1
            if first > last:
                continue
        trimmed = (first - covered[0]) + (covered[1] - last)
        score = prior + _closeness(words, first, last, asked.role) - SHARED_WORD_COST * _shared(words, first, last, asked.head)
        score -= TRIMMED_WORD_COST * trimmed
        score += _headed(words, first, last, asked.head) + _beside_verb(words, first, last, asked)
        if first > covered[0] or last < covered[1]:
            span = (max(span[0], words.matches[first].start()), min(span[1], words.matches[last].end()))
        key = (score, -span[0])
        if best is None or key > best[0]:
            best = (key, span)
    return best[1] if best else None


TRIM_QUESTION_WORDS = True
TRIMMED_WORD_COST = 0.7


SPLIT_AT_FUNCTION_WORDS = False
# Function words that end a noun phrase: prepositions, conjunctions, pronouns, auxiliaries
# (not "the", "a", "of": they sit inside one, "the Bank of England").
_PHRASE_BREAKS = frozenset(STOP_WORDS - {"the", "a", "an", "of", "s", "t", "own", "same", "other", "more", "most", "few", "all", "each", "both", "some", "any", "no"})


def _phrase(words: _Words, quote: str, asked: QuestionType | None = None, asked_by: _Asked = _Asked(None, None)) -> tuple[int, int] | None:
    """The best phrase for a question that names no kind of answer: a run of words between
    the question's words and clause punctuation, or a name or a figure of the quote."""
    if not any(words.keyword):
        return None
    candidates: list[tuple[tuple[int, int], float]] = []
    run: list[int] = []
    for i in range(len(words.matches) + 1):
        boundary = (
            i == len(words.matches)
            or words.keyword[i] is not None
            or (run and words.clause[i] != words.clause[run[-1]])
            or (SPLIT_AT_FUNCTION_WORDS and words.matches[i].group().lower() in _PHRASE_BREAKS)
        )
        if boundary:
            trimmed = _trim([words.matches[j] for j in run][:MAX_SPAN_WORDS])
            if trimmed:
                content = sum(1 for m in trimmed if m.group().lower() not in STOP_WORDS)
                candidates.append(((trimmed[0].start(), trimmed[-1].end()), RUN_CONTENT_BONUS * min(content, 4)))
            run = []
        if i < len(words.matches) and words.keyword[i] is None:
            run.append(i)
    if asked is not None:
        for kind, prior in ((AnswerType.NAME, NAME_PRIOR), (AnswerType.NUMBER, NUMBER_PRIOR)):
            typed = QuestionType(kind, asked.known_words, asked.years, asked.numbers)
            candidates += [(span, prior) for span in answer_spans(typed, quote)]
    return _best(words, candidates, asked_by)


RUN_CONTENT_BONUS = 0.05
NAME_PRIOR = 0.5
NUMBER_PRIOR = 0.0


# A phrase the question's noun heads ("the Santa Clara Marriott hotel"), or stands
# next to ("the hotel, the Santa Clara Marriott", "rock group Coldplay").
HEAD_BONUS = 1.0
BESIDE_HEAD_BONUS = 0.5


def _headed(words: _Words, first: int, last: int, head: str | None) -> float:
    if head is None:
        return 0.0
    if words.keyword[last] == head:
        return HEAD_BONUS
    before = first > 0 and words.keyword[first - 1] == head and words.clause[first - 1] == words.clause[first]
    after = last + 1 < len(words.matches) and words.keyword[last + 1] == head
    return BESIDE_HEAD_BONUS if before or after else 0.0


# A phrase right after the question's verb when the question asks for its object ("What
# did Warsz own?": "owned a village"), right before it when it asks for its subject, or
# after "<verb> by" (a passive's agent: "was headlined by the British rock group Coldplay").
VERB_BONUS = 0.8


def _beside_verb(words: _Words, first: int, last: int, asked: _Asked) -> float:
    if asked.verb is None:
        return 0.0
    for i, keyword in enumerate(words.keyword):
        if keyword != asked.verb:
            continue
        if i < first and words.clause[i] == words.clause[first]:
            between = [m.group().lower() for m in words.matches[i + 1 : first]]
            if all(w in STOP_WORDS for w in between) and (asked.role == "object" or "by" in between):
                return VERB_BONUS
        if i > last and asked.role == "subject" and words.clause[i] == words.clause[last]:
            if all(m.group().lower() in STOP_WORDS for m in words.matches[last + 1 : i]):
                return VERB_BONUS
    return 0.0


def _closeness(words: _Words, first: int, last: int, role: str | None = None) -> float:
    """How closely the question's distinct words surround words ``first..last``: for each, its
    nearest occurrence outside the span, counted in words, farther across a clause or a
    sentence; a word right after the question's words counts a little more than one before."""
    nearest: dict[str, float] = {}
    for i, keyword in enumerate(words.keyword):
        if keyword is None or first <= i <= last:
            continue
        if i < first:
            gap = first - i - 1 + (ROLE_COST if role == "subject" else 0)
            crossing = (words.clause[first] != words.clause[i], words.sentence[first] != words.sentence[i])
        else:
            gap = i - last - 1 + (0 if role == "subject" else ROLE_COST if role == "object" else BEFORE_PENALTY)
            crossing = (words.clause[last] != words.clause[i], words.sentence[last] != words.sentence[i])
        distance = gap + CLAUSE_COST * crossing[0] + SENTENCE_COST * crossing[1]
        nearest[keyword] = min(nearest.get(keyword, distance), distance)
    return sum(1.0 / (1.0 + d / DISTANCE_SCALE) for d in nearest.values())


# In words: how much farther a question word after the candidate counts, and a clause or
# sentence boundary between them; and the distance at which a word's pull halves.
BEFORE_PENALTY = 1
ROLE_COST = 2
CLAUSE_COST = 3
SENTENCE_COST = 12
DISTANCE_SCALE = 3.0


def _shared(words: _Words, first: int, last: int, head: str | None = None) -> int:
    return sum(1 for i in range(first, last + 1) if words.keyword[i] is not None and words.keyword[i] != head)


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
