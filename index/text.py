"""Keyword tokens: the one tokenizer shared by BM25 and sentence scoring.

Lower-cased words, English stop words dropped, irregular verb forms taken back to their
base ("lost" to "lose", which no stemmer does), then Snowball-stemmed ("urged" and
"urges" meet). Numbers are kept whole: "1987" and "3.5" are often the answer.

Changing what this returns changes every BM25 index: bump ``index.manifest.FORMAT_VERSION``.
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

# Past forms of common irregular verbs, which news questions ask in the base form ("What
# did he lose?") and articles tell in the past ("he lost"). Forms that are also common
# words of their own ("left", "fed", "bit", "saw") are left out.
_IRREGULAR = {
    form: base
    for base, forms in {
        "arise": "arose arisen", "beat": "beaten", "become": "became", "begin": "began begun",
        "bite": "bitten", "blow": "blew blown", "break": "broke broken", "bring": "brought",
        "build": "built", "buy": "bought", "catch": "caught", "choose": "chose chosen", "come": "came",
        "deal": "dealt", "dig": "dug", "draw": "drew drawn", "drink": "drank drunk", "drive": "drove driven",
        "eat": "ate eaten", "fall": "fell fallen", "feel": "felt", "fight": "fought",
        "find": "found", "flee": "fled", "fly": "flew flown", "forbid": "forbade forbidden",
        "forget": "forgot forgotten", "freeze": "froze frozen", "get": "got gotten", "give": "gave given",
        "go": "went gone", "grow": "grew grown", "hang": "hung", "hear": "heard", "hide": "hid hidden",
        "hold": "held", "keep": "kept", "know": "knew known", "lay": "laid", "lead": "led",
        "lend": "lent", "lose": "lost", "make": "made", "meet": "met", "pay": "paid",
        "ride": "rode ridden", "ring": "rang rung", "rise": "rose risen", "run": "ran", "see": "seen",
        "seek": "sought", "sell": "sold", "send": "sent", "shake": "shook shaken", "shoot": "shot",
        "sing": "sang sung", "sink": "sank sunk", "sit": "sat", "sleep": "slept", "speak": "spoke spoken",
        "spend": "spent", "stand": "stood", "steal": "stole stolen", "strike": "struck", "swear": "swore sworn",
        "swim": "swam swum", "take": "took taken", "teach": "taught", "tear": "tore torn", "tell": "told",
        "think": "thought", "throw": "threw thrown", "understand": "understood", "wake": "woke woken",
        "wear": "wore worn", "win": "won", "write": "wrote written",
    }.items()
    for form in forms.split()
}

_stemmer = Stemmer.Stemmer("english")


def _stem(word: str) -> str:  # (memoised per word by _word_token)
    return _stemmer.stemWord(word)


@lru_cache(maxsize=65536)
def word_tokens(word: str) -> tuple[str, ...]:
    """``tokenize`` of one word, memoised: sentence scoring and answer marking look the same
    words up for every candidate of every question."""
    return tuple(tokenize(word))


def tokenize(text: str) -> list[str]:
    """The keyword tokens of ``text``, in order, repeats kept (BM25 counts them)."""
    tokens = []
    for word in TOKEN_PATTERN.findall(text.lower()):
        token = _WORD_TOKEN.get(word, _UNSEEN)
        if token is _UNSEEN:
            token = _word_token(word)
        if token is not None:
            tokens.append(token)
    return tokens


# Each lower-cased word's token (None: a stop word), memoised: a sentence's words are mostly
# words seen before, and a dict look-up costs a tenth of stripping, stemming and checking it.
_WORD_TOKEN: dict[str, str | None] = {}
_UNSEEN = object()
WORD_TOKEN_MEMO = 200_000  # words kept before the memo starts afresh (bounds its memory)


def _word_token(word: str) -> str | None:
    """The token of one lower-cased word ``TOKEN_PATTERN`` matched, or None when it is dropped."""
    token = word.replace("’", "'")
    if token.endswith("'s"):
        token = token[:-2]
    if token in STOP_WORDS or (len(token) < 2 and not token.isdigit()):
        token = None
    else:
        token = _stem(_IRREGULAR.get(token, token))
    if len(_WORD_TOKEN) >= WORD_TOKEN_MEMO:
        _WORD_TOKEN.clear()
    _WORD_TOKEN[word] = token
    return token
