"""What a question asks for, and where a sentence holds something of that kind.

"How many ..." is answered by a number, "When ..." by a date, "Who ..." by a name,
"Why ..." by a reason. A sentence holding no such thing, or only the ones the question
already names, rarely answers however well it matches the question's own words. The same
matches, found as character spans, mark the answer inside a quote (``retrieval.span``).

No tagger is available (MiniLM, BM25 and the text are what there is), so names are runs
of capitalised words and amounts are numbers with their units: crude, but the same on
one article and on a whole archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache

from quotebot.index.lazyre import lazy
from quotebot.index.text import tokenize


class AnswerType(str, Enum):
    PERCENT = "percent"
    AMOUNT = "amount"  # money
    NUMBER = "number"  # a count, a size, a duration, a rate
    DATE = "date"
    PERSON = "person"
    ORGANISATION = "organisation"
    PLACE = "place"
    NAME = "name"  # "which ..." of some other capitalised thing
    REASON = "reason"
    REQUEST = "request"  # "What did X ask Y?": what someone urged, asked or called for
    SAYING = "saying"  # "What did X say about Y?": what someone said, quoted


_NOUN_TYPES = {
    AnswerType.PERSON: "player|man|woman|person|people|minister|president|leader|chairman|chief|king|queen|actor|actress"
    "|singer|star|author|writer|director|manager|coach|boss|official|judge|scientist|artist|musician|politician"
    "|governor|senator|mp|captain|founder|executive|spokesman|spokeswoman|son|daughter|father|mother|wife|husband",
    AnswerType.ORGANISATION: "company|companies|firm|firms|organisation|organization|group|team|club|party|bank|agency"
    "|band|university|college|school|network|channel|newspaper|magazine|airline|carrier|broadcaster|label|studio"
    "|retailer|manufacturer|maker|operator|institution|union|body|brand|regulator|court|government|department|ministry",
    AnswerType.PLACE: "country|countries|city|cities|state|town|region|place|nation|continent|area|island|river"
    "|capital|county|province|location|venue|stadium|district|village",
    AnswerType.DATE: "year|date|day|month|century|decade|time|period|season|era",
    AnswerType.PERCENT: "percentage|percent|proportion|share|rate",
    AnswerType.AMOUNT: "price|cost|amount|sum|value|fee|salary|budget|fine|revenue|profit|profits|sales|deficit|debt",
}
_WH_NOUN = lazy(r"\b(?:which|what)\s+(\w+)(?:\s+(\w+))?")
_AUXILIARIES = frozenset("is was are were did does do has have had will would can could should may might".split())

_PERCENT_QUESTION = lazy(r"\bwhat (?:percentage|percent|proportion|share)\b|\bhow much\b.*\b(?:percent|%)")
_AMOUNT_QUESTION = lazy(
    r"\bhow much (?:money|cash|did|does|do|was|were|is|are|will|would|has|have|had)\b.*"
    r"\b(?:cost|pay|paid|worth|spend|spent|earn|earned|raise|raised|sell|sold|buy|bought|invest|make|made|lose|lost"
    r"|owe|fine|fined|price|charge|charged|bid|offer|offered|value|valued|profit|deal|claim|claiming|claimed|lend|lent"
    r"|lending|borrow|borrowed|receive|received|seek|sought|seeking|demand|demanded|award|awarded|donate|donated)"
    r"|\bhow much money\b"
)
_NUMBER_QUESTION = lazy(
    r"\bhow (?:many|much|long|old|far|large|big|often|tall|high|fast|deep|wide|heavy|low|small)\b"
    r"|\bwhat (?:number|amount|size|age|speed|distance)\b|\bby how\b"
)
_DATE_QUESTION = lazy(r"\bwhen\b|\bwhat time\b|\bin what (?:year|month)\b|\bhow long ago\b")
_PERSON_QUESTION = lazy(r"\b(?:who|whom|whose)\b")
_PLACE_QUESTION = lazy(r"\bwhere\b")
# "What did Herzog ask Lavrov?", "What did the union call for?", "What was he urged to do?"
# One-word request verbs, as a question asks them; retrieval.features counts them as one keyword.
REQUEST_WORDS = ("ask", "urge", "request", "demand", "beg", "plead", "implore", "appeal")
_REQUEST_VERB = lazy(rf"\b(?:{'|'.join((*REQUEST_WORDS, 'call on', 'call for'))})\b")
_WHAT_DID = lazy(r"\bwhat (?:did|does|do|has|have|had|will|would) (.+)")
_REQUEST_PASSIVE = lazy(r"\bwhat (?:was|were|is|are|has|have|had)\b.*\b(?:asked|urged|called on|pressed|told|begged) to\b")
# Words before a request or speech word that make it a noun ("the demand", "on Demand", "high demand").
_NOUN_BEFORE = frozenset("the a an of for on in high".split())


_SAYING_VERB = lazy(r"\b(?:say|tell|reply|answer|warn|add|claim|admit|describe|call|insist|argue|predict)\b")
_SAYING_NOUN = lazy(r"\bwhat (?:warning|comment|remark|message|reply|answer|explanation|description) (?:did|does|has|had)\b")


def _verb_after_subject(asked: str, verb_pattern: re.Pattern) -> bool:
    """"What did <subject> <verb> ...?": the verb after a short subject, not a noun ("demand for")."""
    found = _WHAT_DID.search(asked)
    if not found:
        return False
    rest = found.group(1)
    verb = verb_pattern.search(rest)
    if not verb:
        return False
    subject = rest[: verb.start()].split()
    return 1 <= len(subject) <= 5 and subject[-1] not in _NOUN_BEFORE and not rest[verb.end() :].startswith(" for")


def _asks_for_request(asked: str) -> bool:
    """"What did <subject> ask/urge/call for ...?", or "What was he urged to do?"."""
    return _verb_after_subject(asked, _REQUEST_VERB) or bool(_REQUEST_PASSIVE.search(asked))


def _asks_for_saying(asked: str) -> bool:
    """"What did <subject> say/reply/warn ...?", "What warning did <subject> give?"."""
    return _verb_after_subject(asked, _SAYING_VERB) or bool(_SAYING_NOUN.search(asked))


_REASON_QUESTION = lazy(r"\bwhy\b|\bwhat (?:caused|causes|led|prompted|made|reason)\b|\bfor what reason\b|\bhow come\b")

NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
    "|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands"
    "|million|millions|billion|billions|trillion|dozen|dozens|half|quarter|third|double|twice|triple"
)
_NUM = rf"(?:\d+(?:[.,]\d+)*|(?:{NUMBER_WORDS})(?:[- ](?:{NUMBER_WORDS}))*\b)"
_SCALE = r"(?:\s?(?:bn|m|k|mln|bln|million|billion|trillion|thousand|hundred)\b)?"  # (mln, bln: wire style)
_UNIT = (
    r"(?:\s?%|\s?(?:per\s?cent|percentage points?|points?|years?|months?|weeks?|days?|hours?|minutes?|seconds?"
    r"|miles?|kilometres?|kilometers?|km|metres?|meters?|m|feet|foot|ft|inches|kg|kilograms?|tonnes?|tons?|pounds?"
    r"|dollars?|euros?|yen|people|times|mph|km/h|degrees?|acres?|square \w+|games?|goals?|seats?|votes?|jobs?"
    r"|members?|copies|units|cars|children|workers|staff|employees)\b)?"
)
_CURRENCY = r"(?:[$£€¥]|US\$|Rs\.?\s?)"
# Money named by a word after the figure ("2 mln dlrs", "131.2 mln riyals", "40 pence").
_CURRENCY_WORDS = (
    r"dollars?|dlrs|pounds?|stg|sterling|euros?|yen|francs?|marks?|rupees?|yuan|riyals?|dinars?|pesos?|lire|lira"
    r"|crowns?|guilders?|rand|roubles?|rubles?|pence|cents?"
)
_NUMBER_SPAN = lazy(rf"(?:{_CURRENCY}\s?)?\b{_NUM}{_SCALE}{_UNIT}", re.IGNORECASE)
_PERCENT_SPAN = lazy(rf"\b{_NUM}\s?(?:%|per\s?cent\b|percent\b|percentage points?\b)", re.IGNORECASE)
_AMOUNT_SPAN = lazy(
    rf"{_CURRENCY}\s?\d+(?:[.,]\d+)*{_SCALE}|\b{_NUM}{_SCALE}\s?(?:{_CURRENCY_WORDS})\b",
    re.IGNORECASE,
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
# A month or a weekday is a date, not the person, place or organisation a question asks for.
_CALENDAR_NAME = lazy(rf"(?:{_MONTHS}|{_DAYS})")
_DATE_SPAN = lazy(
    rf"\b(?:(?:early|late|mid)[- ])?(?:\d{{1,2}}(?:st|nd|rd|th)?\s)?(?:{_MONTHS})(?:\s\d{{1,2}}(?:st|nd|rd|th)?)?(?:,?\s\d{{4}})?\b"
    rf"|\b(?:{_DAYS})\b|\b(?:1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b\d{{1,2}}(?:st|nd|rd|th)\s(?:century|centuries)\b"
    rf"|(?i:\b(?:{NUMBER_WORDS}|\d+|a|an|the)\s(?:years?|months?|weeks?|days?|decades?|centuries)\s(?:ago|later|earlier|after|before)\b)"
    r"|\b(?:last|next|this)\s(?:year|month|week|weekend|season|spring|summer|autumn|winter)\b|\b(?:yesterday|today|tomorrow)\b",
)
# A name: capitalised words, joined by "of", "the", "de", "&" and the like ("Bank of England").
_NAME_SPAN = lazy(
    r"\b(?:[A-Z][\w'’.-]*|[A-Z]{2,})(?:\s(?:of|the|de|du|van|von|for|and|&)\s[A-Z][\w'’.-]*|\s(?:[A-Z][\w'’.-]*|\d+))*"
)
# What was asked for: the words after a request verb, up to the end of the clause.
_REQUEST_SPAN = lazy(
    r"\b(?:asked|asks|asking|urged|urges|urging|called on|calls on|calling on|called for|calls for|calling for"
    r"|requested|requests|demanded|demands|appealed to|appeals to|appealed for|pressed|pleaded with|implored"
    r"|begged)\b\s+(?P<what>[^.;]+)",
    re.IGNORECASE,
)
# What was said: words in quotation marks, or what follows a speech verb ("said that ...").
_QUOTED_SPAN = lazy(r"“(?P<said>[^”]{3,})”?|\"(?P<straight>[^\"]{3,})\"?|‘(?P<single>[^’]{12,})’")
_SAID_SPAN = lazy(
    r"\b(?:said|says|told|added|warned|claimed|insisted|admitted|argued|replied|predicted)\b[,:]?\s+(?:that\s+)?(?P<said>[^.;]{12,})",
    re.IGNORECASE,
)
_REASON_SPAN = lazy(
    r"\b(?:because(?: of)?|due to|owing to|thanks to|as a result of|in order to|so that|since|amid|after|following"
    r"|in response to|caused by|blamed|reason|led to|so as to|in protest)\b[^.;:]*",
    re.IGNORECASE,
)
# Sentence-initial words that are capitalised only because they open the sentence.
_OPENERS = frozenset(
    "The A An In On At It He She They We I This That These Those But And However After Before When While If As For "
    "His Her Its Their Our Some Many Most Mr Mrs Ms Dr There Here According Despite Although".split()
)

_YEAR = lazy(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_DIGITS = lazy(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class QuestionType:
    """What a question asks for; ``kind`` is ``None`` when it gives no cue ("What did X say?")."""

    kind: AnswerType | None
    known_words: frozenset[str]  # lower-cased words of the question: a match made of them only is no answer
    years: frozenset[str]  # years the question names
    numbers: frozenset[str]  # other numbers it names (digits as written, commas dropped)
    counted: frozenset[str] = frozenset()  # keyword stems of what "how many ..." counts ("first downs")
    topic: frozenset[str] = frozenset()  # keyword stems of what "What did X say about ...?" is about


def question_type(question: str) -> QuestionType:
    asked = question.lower()
    words = frozenset(re.findall(r"[\w'’]+", asked))
    years = frozenset(_YEAR.findall(question))
    numbers = frozenset(n.replace(",", "") for n in _DIGITS.findall(question)) - years
    kind = _kind(asked)
    counted = _counted(asked) if kind in (AnswerType.NUMBER, AnswerType.AMOUNT) else frozenset()
    topic = _topic(asked) if kind in (AnswerType.SAYING, AnswerType.REQUEST) else frozenset()
    return QuestionType(kind, words, years, numbers, counted, topic)


_ABOUT = lazy(r"\b(?:about|on|over|regarding|concerning)\s+(.+)")


def _topic(asked: str) -> frozenset[str]:
    """"What did Herzog say about Hezbollah?": what the saying must be about ("hezbollah")."""
    found = _ABOUT.search(asked)
    return frozenset(tokenize(found.group(1))) if found else frozenset()


# "How many first downs did ...", "how much rice does ...": what is counted runs from the
# question word to its verb (or a preposition). Measures and comparisons are not the thing counted.
_COUNTED = lazy(r"\b(?:how (?:many|much)|what number of)\s+((?:[\w'’-]+\s*){1,4})")
_COUNT_ENDS = _AUXILIARIES | frozenset("a an the per in on of at for to from".split())
_NOT_COUNTED = frozenset("more fewer less money times".split())


def _counted(asked: str) -> frozenset[str]:
    found = _COUNTED.search(asked)
    if not found:
        return frozenset()
    words = []
    for word in found.group(1).split():
        if word in _COUNT_ENDS:
            break
        if word not in _NOT_COUNTED:
            words.append(word)
    return frozenset(tokenize(" ".join(words)))


def _kind(asked: str) -> AnswerType | None:
    if _REASON_QUESTION.search(asked):
        return AnswerType.REASON
    if _asks_for_request(asked):
        return AnswerType.REQUEST
    if _asks_for_saying(asked):
        return AnswerType.SAYING
    if _PERCENT_QUESTION.search(asked):
        return AnswerType.PERCENT
    if re.search(r"\bby how (?:much|many)\b", asked):
        return AnswerType.NUMBER  # a rise or fall: a percentage, an amount or a count
    if _AMOUNT_QUESTION.search(asked):
        return AnswerType.AMOUNT
    if re.search(r"\bhow long ago\b", asked):
        return AnswerType.DATE
    if _NUMBER_QUESTION.search(asked):
        return AnswerType.NUMBER
    if _DATE_QUESTION.search(asked):
        return AnswerType.DATE
    wh = _WH_NOUN.search(asked)
    nouns = [w for w in (wh.groups() if wh else ()) if w] if wh and wh.group(1) not in _AUXILIARIES else []
    for noun in nouns:  # "which company", "what Russian city"
        for kind, kinds in _NOUN_TYPES.items():
            if re.fullmatch(kinds, noun):
                return kind
    if _PERSON_QUESTION.search(asked):
        return AnswerType.PERSON
    if _PLACE_QUESTION.search(asked):
        return AnswerType.PLACE
    if wh and asked.lstrip().startswith("which") and nouns:
        return AnswerType.NAME  # "which <thing>": a named one
    return None


def answer_spans(asked: QuestionType, sentence: str) -> list[tuple[int, int]]:
    """Character spans in ``sentence`` of things of the kind ``asked`` wants that the
    question does not already name; empty when it gives no cue or the sentence has none."""
    kind = asked.kind
    if kind is None:
        return []
    spans = [span for span, words in _kind_spans(kind, sentence) if words is None or not _named_by(asked, words)]
    if kind is AnswerType.AMOUNT and not spans:
        # "how much did it cost" is also answered by a bare figure ("9.3bn", "500,000"), not
        # by a number in words ("signed by his two wives").
        numbers = answer_spans(replace(asked, kind=AnswerType.NUMBER), sentence)
        return [(start, end) for start, end in numbers if any(c.isdigit() for c in sentence[start:end])]
    return spans


# Sentences whose things of each kind are kept (a question's candidates are mostly sentences
# asked about before: the same story, asked again).
KIND_SPANS_CACHE = 16384


@lru_cache(maxsize=KIND_SPANS_CACHE)
def _kind_spans(kind: AnswerType, sentence: str) -> tuple[tuple[tuple[int, int], str | None], ...]:
    """The things of ``kind`` in ``sentence``, whatever the question: each span with the words
    ``answer_spans`` checks the question does not already name (None: no such check)."""
    if kind is AnswerType.REASON:
        return tuple((m.span(), None) for m in _REASON_SPAN.finditer(sentence))
    if kind is AnswerType.SAYING:
        quoted = [_said(m) for m in _QUOTED_SPAN.finditer(sentence)]
        return tuple((span, None) for span in quoted or [m.span("said") for m in _SAID_SPAN.finditer(sentence)])
    if kind is AnswerType.REQUEST:
        return tuple((m.span("what"), m.group("what")) for m in _REQUEST_SPAN.finditer(sentence))
    if kind is AnswerType.PERCENT:
        pattern = _PERCENT_SPAN
    elif kind is AnswerType.AMOUNT:
        pattern = _AMOUNT_SPAN
    elif kind is AnswerType.NUMBER:
        pattern = _NUMBER_SPAN
    elif kind is AnswerType.DATE:
        pattern = _DATE_SPAN
    else:
        names = [(span, sentence[span[0] : span[1]]) for span in _names(sentence)]
        names = [(span, text) for span, text in names if not _CALENDAR_NAME.fullmatch(text)]
        if kind is AnswerType.PERSON:
            names = [(span, text) for span, text in names if _looks_like_person(text)]
        return tuple(names)
    spans = []
    for match in pattern.finditer(sentence):
        text = match.group().strip()
        if kind is AnswerType.NUMBER and _YEAR.fullmatch(text):
            continue  # "the 2001 Act" counts nothing: a bare year is a date, not how many
        if text:
            start = match.start() + len(match.group()) - len(match.group().lstrip())
            spans.append(((start, start + len(text)), text))
    return tuple(spans)


def _names(sentence: str) -> list[tuple[int, int]]:
    spans = []
    for match in _NAME_SPAN.finditer(sentence):
        start, end = match.span()
        words = match.group().split()
        if start == _first_word_start(sentence) and words[0] in _OPENERS:
            if len(words) == 1:
                continue
            start += len(words[0]) + 1
        if match.group().endswith(".") and match.group()[-2:-1].islower():
            end -= 1  # the sentence's full stop, not an initial's ("J.K.")
        spans.append((start, end))
    return spans


def _said(match: re.Match) -> tuple[int, int]:
    group = next(name for name in ("said", "straight", "single") if match.group(name))
    return match.span(group)


# Words that make a capitalised run an organisation or a place, not a person.
_NOT_PERSON_WORDS = frozenset(
    "union services service association council board party bank group company corporation ministry department"
    " committee commission agency court university college school club league federation institute foundation"
    " office government parliament assembly house street road city county news airlines airways inc ltd plc"
    " co corp".split()
)


def _looks_like_person(name: str) -> bool:
    """A person is named with two words or more ("Marc Rothemund", "Mr Clarke"), none of
    them an organisation's ("Services Union"); a lone capitalised word is as often a
    nationality, a place or a brand ("Australian", "Apple")."""
    words = [re.sub(r"['’]s$", "", w.lower()) for w in name.split()]
    return len(words) >= 2 and not any(w in _NOT_PERSON_WORDS for w in words)


def _first_word_start(sentence: str) -> int:
    stripped = sentence.lstrip("\"'“‘( ")
    return len(sentence) - len(stripped)


def _named_by(asked: QuestionType, text: str) -> bool:
    """Whether every word of ``text`` is already in the question (the question names it)."""
    words = _plain_words(text)
    return bool(words) and all(w in asked.known_words or f"{w}'s" in asked.known_words for w in words)


@lru_cache(maxsize=KIND_SPANS_CACHE)
def _plain_words(text: str) -> tuple[str, ...]:
    """The lower-cased words of ``text``, a possessive "'s" dropped ("Apple's": apple)."""
    return tuple(re.sub(r"['’]s$", "", w.lower()) for w in re.findall(r"[\w'’]+", text))


def number_agreement(asked: QuestionType, text: str) -> tuple[float, float]:
    """(agrees, contradicts) for the numbers and years the question names.

    agrees: the text holds one of them. contradicts: the question names a year and the text
    gives other years but not that one ("in 2003" asked, a sentence about 2004), or a number
    likewise.
    """
    if not asked.years and not asked.numbers:
        return 0.0, 0.0
    years = set(_YEAR.findall(text))
    numbers = {n.replace(",", "") for n in _DIGITS.findall(text)} - years
    agrees = bool(asked.years & years) or bool(asked.numbers & numbers)
    contradicts = (bool(asked.years) and bool(years) and not asked.years & years) or (
        bool(asked.numbers) and bool(numbers) and not asked.numbers & numbers and not asked.years & years
    )
    return float(agrees), float(contradicts and not agrees)


def names_numbers(asked: QuestionType) -> bool:
    return bool(asked.years or asked.numbers)
