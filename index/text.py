"""Keyword tokens: the one tokenizer shared by BM25 and sentence scoring.

Lower-cased words, English stop words dropped, Snowball-stemmed ("urged" and "urges"
meet). Numbers are kept whole: "1987" and "3.5" are often the answer.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

TOKEN_PATTERN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?")

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t also said says""".split()
)

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    """The keyword tokens of ``text``, in order, repeats kept (BM25 counts them)."""
    tokens = []
    for match in TOKEN_PATTERN.finditer(text.lower()):
        word = match.group().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        tokens.append(_stem(word))
    return tokens
