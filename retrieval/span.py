"""The answer inside a quote: the few words that answer, to be shown in bold.

Candidates are the things of the kind the question asks for (a number, a date, a name:
``answer_types.answer_spans``), other names and numbers, and the phrases of the quote
between the question's own words and clause punctuation. Each is described by a few
generic cues (``FEATURES``): how closely the question's distinct words surround it and on
which side, whether the question asks for a subject ("Who headlined ...?": the answer
stands before the question's verb) or an object ("What did Warsz own?": after it), whether
it is the phrase the noun of a "what/which/how many <noun>" question heads or stands beside,
whether the question's words beside its wh-phrase stand beside it, how much of it the
question already says. ``WEIGHTS`` weighs the cues (fitted on SQuAD's tuning half
by bench/span_tune.py); the best candidate is marked. A reason, a request or a saying is
the clause of that kind nearest the question's words. None when nothing qualifies (a
figure asked and none in the quote): the quote is still shown, only unmarked.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from functools import cached_property

from quotebot.index.lazyre import lazy
from quotebot.index.text import STOP_WORDS, word_tokens
from quotebot.retrieval.answer_types import AnswerType, QuestionType, answer_spans

_WORD = lazy(r"[\w'’.%$£€-]*\w[%]?|[$£€]\d[\w.,]*")
_CLAUSE_BREAK = lazy(r"[,;:()\[\]\"“”‘—–]|\s-\s|\.\s|\s'|’\s")
_SENTENCE_BREAK = lazy(r"[.!?][\"”’)]?\s")
# The longest phrase we mark, in words: a whole clause in bold marks nothing.
MAX_SPAN_WORDS = 8
_FIGURES = {AnswerType.PERCENT, AnswerType.AMOUNT, AnswerType.NUMBER, AnswerType.DATE}
_NAMED = {AnswerType.PERSON, AnswerType.ORGANISATION, AnswerType.PLACE, AnswerType.NAME}
_CLAUSES = {AnswerType.REASON, AnswerType.SAYING, AnswerType.REQUEST}


def answer_span(asked: QuestionType, keywords: set[str], quote: str, *, question: str = "") -> tuple[int, int] | None:
    """Offsets into ``quote`` of its answering words, or ``None``. ``keywords`` are the
    question's keyword tokens; ``question`` (as asked) tells which noun it asks for and
    whether it asks for a subject or an object."""
    if asked.kind in _CLAUSES:
        typed = answer_spans(asked, quote)
        if typed:  # a reason, a request, a saying: the clause nearest the question's words
            words = _Words.of(quote, keywords)
            anchors = [m.span() for m, k in zip(words.matches, words.keyword) if k]
            return min(typed, key=lambda span: (_distance(span, anchors), span[0]))
    scored = candidates(asked, keywords, quote, question)
    if not scored:
        return None
    return max(scored, key=lambda c: (score(c.features), -c.span[0])).span


_OPENING_WH = lazy(r"^\W*(?:(?:in|on|at|from|for|by|to|with|during|of) )?(who|whom|whose|where|what|which)\b")
_ASKS_A_DATE = lazy(r"\b(?:when|year|date|day|month|century|decade|time|ago)\b")


def _opening_kind(asked: QuestionType, question: str) -> QuestionType:
    """A question the type reader calls a date only for a "when" inside it ("Where was the
    meeting held when the owners voted?") asks what its opening wh-word asks: a place, a
    person, or (what/which) no kind in particular."""
    opening = _OPENING_WH.match(question.lower())
    if asked.kind is not AnswerType.DATE or not opening or _ASKS_A_DATE.search(question.lower()[: opening.end() + 12]):
        return asked
    kind = {"where": AnswerType.PLACE, "who": AnswerType.PERSON, "whom": AnswerType.PERSON, "whose": AnswerType.PERSON}
    return replace(asked, kind=kind.get(opening.group(1)))


@dataclass(frozen=True)
class Candidate:
    span: tuple[int, int]  # offsets into the quote, the question's words trimmed off its ends
    features: dict[str, float]


# The weights of FEATURES, fitted on SQuAD v1.1 dev articles 1-24 (the tuning half) by
# `bench/span_tune.py fit`: a softmax over each quote's candidates whose target is the ones
# overlapping a gold answer.
WEIGHTS: dict[str, float] = {
    "near_before": 0.905,
    "near_after": 0.647,
    "subject_near_after": 0.052,
    "object_near_before": 0.409,
    "shared_words": -0.091,
    "trimmed_words": -0.344,
    "headed": 1.933,
    "beside_head": 1.148,
    "beside_verb": 0.694,
    "asked_kind": 0.520,
    "name": 0.190,
    "number": 0.165,
    "content_words": 0.266,
    "long": -0.170,
    "capitalised": 0.307,
    "same_clause": 0.876,
    "quoted": 0.908,
    "in_brackets": -0.329,
    "opens_sentence": 0.391,
    "one_word": -0.430,
    "phrase_for_name": -0.502,
    "head_follows": 0.625,
    "after_left": 1.370,
    "before_right": -0.229,
    "copula_subject": 0.734,
    "year_for_count": -0.474,
    "money_for_much": -0.189,
}
FEATURES = tuple(WEIGHTS)


def score(features: dict[str, float]) -> float:
    return sum(WEIGHTS[name] * value for name, value in features.items())


def candidates(asked: QuestionType, keywords: set[str], quote: str, question: str = "") -> list[Candidate]:
    """Every phrase of ``quote`` that could answer, with its ``FEATURES``.

    A question asking for a figure (a number, an amount, a date) gets the figures of that
    kind only, and none when the quote has none (unmarked beats a guess); one asking for a
    name gets the names of that kind (phrases only when there are none) and other names;
    a reason, a request or a saying without a clause of its kind gets phrases; any other
    gets phrases, names and numbers. Without any of the question's words in the quote,
    only things of the asked kind."""
    words = _Words.of(quote, keywords)
    by = _Asked.of(question)
    asked = _opening_kind(asked, question)
    kind = asked.kind
    spans: list[tuple[tuple[int, int], str]] = []
    if kind is not None and kind not in _CLAUSES:
        spans += [(span, "asked_kind") for span in answer_spans(asked, quote)]
    if kind in _CLAUSES:  # no clause of the asked kind: a phrase, not a name or a figure
        spans += [(span, "phrase") for span in _phrases(words)] if any(words.keyword) else []
    elif kind not in _FIGURES and any(words.keyword):  # phrases only beside the question's words
        seen = {span for span, _ in spans}
        for other, source in ((AnswerType.NAME, "name"), (AnswerType.NUMBER, "number")):
            if other is AnswerType.NUMBER and kind in _NAMED:
                continue
            typed = replace(asked, kind=other)
            spans += [(span, source) for span in answer_spans(typed, quote) if span not in seen]
        if not (kind in _NAMED and any(source == "asked_kind" for _, source in spans)):
            spans += [(span, "phrase") for span in _phrases(words)]
    # Each of two names joined by "and" is a candidate too ("Prime Minister Netanyahu and
    # President Putin" asked "Who should meet Putin?": Prime Minister Netanyahu).
    spans += [(part, source) for span, source in spans if source != "phrase" for part in _conjuncts(quote, span)]
    counting = kind in (AnswerType.NUMBER, AnswerType.AMOUNT, AnswerType.PERCENT)
    found = (_candidate(words, span, source, by, kind in _NAMED, counting) for span, source in spans)
    return [candidate for candidate in found if candidate is not None]


@dataclass
class _Words:
    """The quote's words, the question's keyword each holds, and its clause and sentence."""

    quote: str
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
        return cls(quote, matches, [_keyword_in(m.group(), keywords) for m in matches], clause, sentence)

    def covering(self, span: tuple[int, int]) -> tuple[int, int] | None:
        """The first and last word overlapping ``span``."""
        first = bisect_right(self.ends, span[0])  # the first word ending after the span starts
        last = bisect_left(self.starts, span[1]) - 1  # the last word starting before it ends
        return (first, last) if first <= last else None

    @cached_property
    def starts(self) -> list[int]:
        return [m.start() for m in self.matches]

    @cached_property
    def ends(self) -> list[int]:
        return [m.end() for m in self.matches]

    @cached_property
    def found(self) -> list[tuple[int, str]]:
        """(position, keyword) of each word holding one of the question's keywords."""
        return [(i, k) for i, k in enumerate(self.keyword) if k is not None]


_WH_HEAD = lazy(
    r"\b(?:what|which)\s+(?:(?:type|kind|sort|form|name|part|piece|branch|style|genre)s?\s+of\s+(?:the\s+|a\s+|an\s+)?)?([a-z][\w-]*)"
    r"|\bname of (?:the |a |an )?([a-z][\w-]*)"
    r"|\bhow (?:many|much) ((?:[a-z][\w'’-]*\s?)+)"
)
_NOT_HEADS = frozenset("is was are were did does do has have had will would can could should may might must the a an".split())


def _counted(phrase: str | None) -> str | None:
    """The noun "how many/much" counts: of its words before a function word, the last
    plural ("how many former Enron directors agreed ...": directors), else the first
    ("how much money")."""
    if not phrase:
        return None
    words = []
    for word in phrase.split():
        if word in STOP_WORDS:
            break
        words.append(word)
    plurals = [w for w in words if _PLURAL.search(w)]
    return plurals[-1] if plurals else (words[0] if words else None)


_PLURAL = lazy(r"(?:[^s'’]s|people|men|children|staff|police)$")
_WH_CLAUSE = lazy(r"\b(who|whom|what|which)\s+([\w'’-]+)(?:\s+([\w'’-]+))?")
_DO = frozenset("did does do".split())
_DETERMINERS = frozenset("the a an his her its their this that these those my our your".split())


@dataclass(frozen=True)
class _Asked:
    """What the question's wording says about where its answer sits in a sentence."""

    head: str | None  # the noun a "what/which/how many <noun>" question asks for, as a keyword token
    # "subject": the wh-phrase is the subject ("Who headlined the show?"): the answer stands
    # before the question's other words; "object" ("Who did Denver beat?"): after them.
    role: str | None
    verb: str | None  # the question's verb, as a keyword token ("Who did Denver beat?": beat)
    much: bool = False  # "how much ...?": money more often than not
    # The question's words on either side of its wh-phrase, where the answer stands in the
    # sentence ("... belong to what class?": after "belong"; "What is X linked to?": after "linked").
    left: str | None = None
    right: str | None = None
    copula: bool = False  # "What is/was ...?": the answer is the other side of an "is" in the quote

    @classmethod
    def of(cls, question: str) -> _Asked:
        asked = question.lower()
        head = None
        for found in _WH_HEAD.finditer(asked):
            word = found.group(1) or found.group(2) or _counted(found.group(3))
            if word and word not in _NOT_HEADS:
                tokens = word_tokens(word)
                head = tokens[0] if tokens else None
                break
        role, verb_from = None, 0
        clause = _WH_CLAUSE.search(asked)
        if clause:
            wh, first, second = clause.groups()
            has_head = wh in ("what", "which") and first not in _NOT_HEADS and first not in STOP_WORDS
            after = second if has_head else first
            if after in _DO:
                role = "object"
            elif after in ("is", "was", "are", "were"):
                role = "subject" if has_head else None  # "What garden was ...", not "Who was X?"
            elif after is not None and (after not in STOP_WORDS or after in ("has", "have", "had")):
                role = "subject"
            verb_from = clause.start(3) if has_head and clause.group(3) else clause.start(2)
        left, right = _context(question)
        copula = bool(re.match(r"\W*(?:what|who|which)\s+(?:is|was|are|were)\b", asked))
        much = bool(re.search(r"\bhow much\b", asked))
        return cls(head, role, _verb(question[verb_from:], role), much, left, right, copula)


_WH = frozenset("what which who whom whose when where how".split())
_PREPOSITIONS = frozenset("to in on at from for of with by about into as after before under over through against".split())


def _context(question: str) -> tuple[str | None, str | None]:
    """The content words right before and right after the wh-phrase (its wh-word and its
    noun), as keyword tokens; for a question that opens with it and ends on a preposition
    ("What is X linked to?"), its last content word stands before the answer."""
    words = [w.lower() for w in re.findall(r"[\w'’-]+", question)]
    at = next((i for i, w in enumerate(words) if w in _WH), None)
    if at is None:
        return None, None

    def keyword(candidates: list[str]) -> str | None:
        for word in candidates:
            if word not in STOP_WORDS and word not in _WH:
                tokens = word_tokens(word)
                if tokens:
                    return tokens[0]
        return None

    before = words[:at]
    in_situ = any(w not in STOP_WORDS for w in before)
    if not in_situ:
        if not (words and words[-1] in _PREPOSITIONS):
            return None, None
        before = words[at + 1 :]  # "What is X linked to?": the answer follows "linked to"
    after_phrase = at + 1
    if after_phrase < len(words) and words[at] in ("what", "which") and words[after_phrase] not in STOP_WORDS:
        after_phrase += 1
    right = keyword(words[after_phrase:]) if in_situ else None
    return keyword(list(reversed(before))), right


def _verb(rest: str, role: str | None) -> str | None:
    """The question's verb in ``rest`` (what follows its wh-phrase): for an object question
    ("did <subject> <verb>") the first lower-case content word after the subject (a name,
    or a determiner and its noun); for a subject question the first content word."""
    if role is None:
        return None
    words = re.findall(r"[\w'’-]+", rest)
    lowered = [w.lower() for w in words]
    start = 0
    if role == "object":
        start = next((i + 1 for i, w in enumerate(lowered) if w in _DO), len(words))
    for j in range(start, len(words)):
        if lowered[j] in STOP_WORDS or words[j][:1].isupper() or not words[j][:1].isalpha():
            continue
        previous = lowered[j - 1] if j > 0 else ""
        if role == "object" and (previous in _DETERMINERS or re.search(r"['’]s$", previous)):
            continue  # the subject's noun ("did his father make"), not its verb
        tokens = word_tokens(lowered[j])
        return tokens[0] if tokens else None
    return None


_YEAR = lazy(r"(?:1[0-9]{3}|20[0-9]{2})s?")
_MONEY = lazy(r"[$£€¥]|\b(?:dollars?|pounds?|euros?|yen|cents?)\b", re.IGNORECASE)
_AND = lazy(r"\s(?:and|&)\s")


def _conjuncts(quote: str, span: tuple[int, int]) -> list[tuple[int, int]]:
    text = quote[span[0] : span[1]]
    parts, start = [], 0
    for joint in _AND.finditer(text):
        parts.append((span[0] + start, span[0] + joint.start()))
        start = joint.end()
    return [*parts, (span[0] + start, span[1])] if parts else []


def _candidate(
    words: _Words, span: tuple[int, int], source: str, asked: _Asked, names_asked: bool, figure_asked: bool = False
) -> Candidate | None:
    covered = words.covering(span)
    if covered is None:
        return None
    first, last = covered
    # The question's words at either end are not the answer ("NFL Commissioner Roger
    # Goodell" asked "Who is the NFL commissioner?": Roger Goodell), unless it asks for them.
    while first <= last and words.keyword[first] not in (None, asked.head):
        first += 1
    while last >= first and words.keyword[last] not in (None, asked.head):
        last -= 1
    while first <= last and words.matches[first].group().lower() in STOP_WORDS:
        first += 1
    while last >= first and words.matches[last].group().lower() in STOP_WORDS:
        last -= 1
    if first > last:
        return None
    trimmed = (first - covered[0]) + (covered[1] - last)
    if trimmed:
        span = (max(span[0], words.matches[first].start()), min(span[1], words.matches[last].end()))
    before, after = _closeness(words, first, last)
    subject, obj = asked.role == "subject", asked.role == "object"
    content = sum(1 for m in words.matches[first : last + 1] if m.group().lower() not in STOP_WORDS)
    features = {
        "near_before": before,  # the question's words before it, the nearer the more
        "near_after": after,
        "subject_near_after": after if subject else 0.0,  # "Who headlined the show?": X headlined ...
        "object_near_before": before if obj else 0.0,  # "Who did Denver beat?": ... beat X
        "shared_words": float(sum(1 for k in words.keyword[first : last + 1] if k is not None and k != asked.head)),
        "trimmed_words": float(trimmed),
        "headed": float(asked.head is not None and words.keyword[last] == asked.head),
        "beside_head": _beside_head(words, first, last, asked.head),
        "beside_verb": _beside_verb(words, first, last, asked),
        "asked_kind": float(source == "asked_kind"),
        "name": float(source == "name"),
        "number": float(source == "number"),
        "phrase_for_name": float(source == "phrase" and names_asked),  # "Who ...?" answered by no name
        "content_words": min(content, 4) / 4,
        "long": float(last - first + 1 > 4),
        "capitalised": float(words.matches[first].group()[:1].isupper() and first > 0),
        "same_clause": _same_clause(words, first, last),
        "quoted": float(_enclosed(words.quote, span, _QUOTE_MARKS)),
        "in_brackets": float(_enclosed(words.quote, span, _BRACKETS)),
        "opens_sentence": float(first == 0 or words.sentence[first - 1] != words.sentence[first]),
        "one_word": float(first == last),
        "head_follows": _head_follows(words, last, asked.head),
        "after_left": _after_word(words, first, asked.left),
        "before_right": _before_word(words, last, asked.right),
        "copula_subject": float(asked.copula and _copula_follows(words, last)),
        "year_for_count": float(figure_asked and bool(_YEAR.fullmatch(words.quote[span[0] : span[1]]))),
        "money_for_much": float(asked.much and bool(_MONEY.search(words.quote[span[0] : span[1]]))),
    }
    return Candidate(span, features)


def _phrases(words: _Words) -> list[tuple[int, int]]:
    """Runs of words between the question's words and clause punctuation, at most
    MAX_SPAN_WORDS, without stop words at either end."""
    spans = []
    run: list[int] = []
    for i in range(len(words.matches) + 1):
        if i == len(words.matches) or words.keyword[i] is not None or (run and words.clause[i] != words.clause[run[-1]]):
            trimmed = _trim([words.matches[j] for j in run][:MAX_SPAN_WORDS])
            if trimmed:
                spans.append((trimmed[0].start(), trimmed[-1].end()))
            run = []
        if i < len(words.matches) and words.keyword[i] is None:
            run.append(i)
    return spans


def _closeness(words: _Words, first: int, last: int) -> tuple[float, float]:
    """How closely the question's distinct words surround words ``first..last``, as (those
    before it, those after it): each word's nearest occurrence outside the span, in words,
    farther across a clause or a sentence, adds 1 / (1 + distance / DISTANCE_SCALE)."""
    nearest: dict[str, tuple[float, bool]] = {}
    for i, keyword in words.found:
        if first <= i <= last:
            continue
        edge = first if i < first else last
        gap = first - i - 1 if i < first else i - last - 1
        distance = (
            gap + CLAUSE_COST * (words.clause[edge] != words.clause[i]) + SENTENCE_COST * (words.sentence[edge] != words.sentence[i])
        )
        if keyword not in nearest or distance < nearest[keyword][0]:
            nearest[keyword] = (distance, i < first)
    before = sum(1.0 / (1.0 + d / DISTANCE_SCALE) for d, is_before in nearest.values() if is_before)
    after = sum(1.0 / (1.0 + d / DISTANCE_SCALE) for d, is_before in nearest.values() if not is_before)
    return before, after


# In words: the cost of a clause or a sentence boundary between a candidate and a question
# word, and the distance at which a word's pull halves.
CLAUSE_COST = 1
SENTENCE_COST = 12
DISTANCE_SCALE = 8.0


def _beside_head(words: _Words, first: int, last: int, head: str | None) -> float:
    """1 for a phrase right beside the question's noun ("rock group Coldplay", "Coldplay, the group")."""
    if head is None:
        return 0.0
    before = first > 0 and words.keyword[first - 1] == head and words.clause[first - 1] == words.clause[first]
    after = last + 1 < len(words.matches) and words.keyword[last + 1] == head
    return float(before or after)


def _after_word(words: _Words, first: int, keyword: str | None) -> float:
    """1 when ``keyword`` stands right before the phrase, only function words between."""
    if keyword is None:
        return 0.0
    for i in range(first - 1, max(first - 4, -1), -1):
        if words.keyword[i] == keyword:
            return float(words.clause[i] == words.clause[first])
        if words.matches[i].group().lower() not in STOP_WORDS:
            return 0.0
    return 0.0


def _before_word(words: _Words, last: int, keyword: str | None) -> float:
    """1 when ``keyword`` stands right after the phrase, only function words between."""
    if keyword is None:
        return 0.0
    for i in range(last + 1, min(last + 4, len(words.matches))):
        if words.keyword[i] == keyword:
            return float(words.clause[i] == words.clause[last])
        if words.matches[i].group().lower() not in STOP_WORDS:
            return 0.0
    return 0.0


_COPULAS = frozenset("is was are were".split())


def _copula_follows(words: _Words, last: int) -> bool:
    """Whether "is/was" follows the phrase (an aside between allowed) and the question's
    words follow it ("The mermaid (syrenka) is Warsaw's symbol")."""
    for i in range(last + 1, min(last + 4, len(words.matches))):
        if words.matches[i].group().lower() in _COPULAS:
            return any(k is not None for k in words.keyword[i + 1 : i + 5])
        if words.keyword[i] is not None:
            return False
    return False


def _head_follows(words: _Words, last: int, head: str | None) -> float:
    """1 when the question's noun follows within three words in the clause ("How many
    directors ...?": "Eighteen former Enron directors")."""
    if head is None:
        return 0.0
    after = range(last + 1, min(last + 4, len(words.matches)))
    return float(any(words.keyword[i] == head and words.clause[i] == words.clause[last] for i in after))


def _beside_verb(words: _Words, first: int, last: int, asked: _Asked) -> float:
    """1 for a phrase right after the question's verb when the question asks for its object
    ("What did Warsz own?": "owned a village"), right before it when it asks for its subject,
    or after "<verb> by" (a passive's agent: "was headlined by the British rock group Coldplay")."""
    if asked.verb is None:
        return 0.0
    for i, keyword in words.found:
        if keyword != asked.verb:
            continue
        if i < first and words.clause[i] == words.clause[first]:
            between = [m.group().lower() for m in words.matches[i + 1 : first]]
            if all(w in STOP_WORDS for w in between) and (asked.role == "object" or "by" in between):
                return 1.0
        if i > last and asked.role == "subject" and words.clause[i] == words.clause[last]:
            if all(m.group().lower() in STOP_WORDS for m in words.matches[last + 1 : i]):
                return 1.0
    return 0.0


_QUOTE_MARKS = (('"', '"'), ("“", "”"))
_BRACKETS = (("(", ")"),)


def _enclosed(quote: str, span: tuple[int, int], pairs: tuple[tuple[str, str], ...]) -> bool:
    """Whether the span sits inside a pair of marks, like a "quoted name" or a (bracketed aside)."""
    before, after = quote[: span[0]], quote[span[1] :]
    for opening, closing in pairs:
        if opening == closing:
            if before.count(opening) % 2 == 1 and opening in after:
                return True
        elif before.rfind(opening) > before.rfind(closing) and closing in after:
            if opening not in after or after.find(closing) < after.find(opening):
                return True
    return False


def _same_clause(words: _Words, first: int, last: int) -> float:
    """The share of the question's distinct words in the quote that its clause holds."""
    everywhere = {k for _, k in words.found}
    clauses = {words.clause[first], words.clause[last]}
    near = {k for i, k in words.found if words.clause[i] in clauses and not first <= i <= last}
    return len(near) / len(everywhere) if everywhere else 0.0


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
    return next((token for token in word_tokens(word) if token in keywords), None)


def _distance(span: tuple[int, int], anchors: list[tuple[int, int]]) -> int:
    if not anchors:
        return 0
    start, end = span
    return min(max(a_start - end, start - a_end, 0) for a_start, a_end in anchors)
