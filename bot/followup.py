"""Follow-up questions: which questions lean on the previous turn, and what they lean on.

"And what did he say about Hezbollah?" means nothing alone; after "What did Herzog ask
Lavrov?" it is about Herzog. We carry the names (else the keywords) of the question the
conversation is about as search context, and prefer the article of the last answer.
"""

from __future__ import annotations

import re

from quotebot.index.lazyre import lazy

_PRONOUN = lazy(
    r"\b(he|him|his|she|her|hers|they|them|their|theirs|it|its|this|that|these|those|there|then)\b",
    re.IGNORECASE,
)
_SINGULAR_PERSON = lazy(r"\b(he|him|his|she|her|hers)\b", re.IGNORECASE)
_LEANING_OPENER = lazy(r"^\s*(and|also|but|so|what about|how about|and what about|what else)\b", re.IGNORECASE)
_QUESTION_WORDS = frozenset(
    "what who whom whose when where why how which did does do is are was were can could will would should".split()
)
_NAME = lazy(r"\b[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*")


def leans_on_previous(question: str) -> bool:
    """True when the question needs the previous turn to be understood."""
    return bool(_LEANING_OPENER.match(question) or _PRONOUN.search(question))


def subject_of(question: str) -> list[str]:
    """What a question is about, to carry into the next turn: its names, else its words.

    Names come first in the order they appear; in "What did Herzog ask Lavrov?" the first
    is the grammatical subject, the one a later "he" most likely means.
    """
    names = [name for name in _NAME.findall(question) if name.split()[0].lower() not in _QUESTION_WORDS]
    if names:
        return list(dict.fromkeys(names))
    return [w for w in re.findall(r"[\w’'-]+", question) if w.lower() not in _QUESTION_WORDS]


def context_for(question: str, subject: list[str]) -> str:
    """The part of the previous subject a follow-up refers to.

    A singular personal pronoun ("he", "her") points at one person, the subject; anything
    else ("they", "and what about ...") carries the whole subject.
    """
    if subject and _SINGULAR_PERSON.search(question):
        return subject[0]
    return " ".join(subject)
