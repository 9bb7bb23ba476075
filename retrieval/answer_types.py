"""Question-type cues: what kind of words the answer to a question is made of.

"How many ..." is answered by a number, "When ..." by a date, "Who ..." by a name. A
sentence with no word of the expected kind rarely answers, however well it matches the
question's own words; this cue is one small term of the sentence score.
"""

from __future__ import annotations

import re

_NUMBER_QUESTION = re.compile(
    r"\bhow (many|much|long|old|far|large|big|often|tall|high|fast)\b|\bwhat (percentage|percent|number|amount|proportion)\b"
)
_DATE_QUESTION = re.compile(
    r"\bwhen\b|\bwhat (year|date|day|month|century|decade|time|period)\b|\bwhich (year|century|decade)\b|\bin what year\b"
)
_PERSON_QUESTION = re.compile(r"\b(who|whom|whose)\b")
_PLACE_QUESTION = re.compile(r"\bwhere\b")

_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|thousand|million|billion|dozen|half)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b(January|February|March|April|May|June|July|August|September|October"
    r"|November|December|century|centuries|decade|[Ss]pring|[Ss]ummer|[Aa]utumn|[Ww]inter)\b"
)
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+")

# When the question gives no cue, every sentence gets this middle value.
NO_CUE = 0.5


def answer_type_match(question: str, sentence: str) -> float:
    """1 when the sentence holds a word of the kind the question asks for, 0 when not."""
    asked = question.lower()
    if _NUMBER_QUESTION.search(asked):
        return float(bool(_NUMBER.search(sentence)))
    if _DATE_QUESTION.search(asked):
        return float(bool(_DATE.search(sentence)))
    if _PERSON_QUESTION.search(asked) or _PLACE_QUESTION.search(asked):
        # A name the question does not already use (the sentence's first word is
        # capitalised anyway, so it does not count).
        known = set(_CAPITALISED.findall(question))
        return float(any(name not in known for name in _CAPITALISED.findall(sentence[1:])))
    return NO_CUE
