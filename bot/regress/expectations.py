"""Checking one ``Answer`` against an ``Expect``: a list of failure messages, empty when it holds.

Matching is a case-insensitive substring match after collapsing runs of whitespace. The
quote keys (``quote_contains``, ``quote_contains_all``, ``article``) must all hold for one
and the same quote: the first quote, or with ``within_top: N`` any one of the first N.
``not_contains`` must hold for every quote looked at (the first, or the first N).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from quotebot.bot.regress.fixtures import Expect
from quotebot.retrieval.answer import Answer, Quote


def normalize(text: str) -> str:
    """Whitespace runs collapsed to one space, case folded: what matching compares."""
    return " ".join(text.split()).casefold()


def contains(text: str, needle: str) -> bool:
    return normalize(needle) in normalize(text)


def check(answer: Answer, expect: Expect | None) -> list[str]:
    """Why ``answer`` does not meet ``expect`` (one message per broken expectation)."""
    if expect is None:
        return []
    failures: list[str] = []
    if expect.abstain is True and answer.answered:
        failures.append(f"expected an abstention, got an answer (confidence {answer.confidence:g})")
    elif expect.wants_answer and not answer.answered:
        failures.append(f"expected an answer, got an abstention (confidence {answer.confidence:g})")
    elif answer.answered:
        failures.extend(_quote_failures(answer.quotes, expect))
    if expect.min_confidence is not None and answer.confidence < expect.min_confidence:
        failures.append(f"confidence {answer.confidence:g} is below min_confidence {expect.min_confidence:g}")
    return failures


def article_matches(quote: Quote, article: str) -> bool:
    """``article`` names the quote's article by id, or by its exact title."""
    return article in (quote.article_id, quote.title)


def _quote_failures(quotes: tuple[Quote, ...], expect: Expect) -> list[str]:
    top = expect.within_top or 1
    looked_at = quotes[:top]
    failures: list[str] = []
    if _has_positive_keys(expect):
        misses = [_misses(quote, expect) for quote in looked_at]
        if not any(not reasons for reasons in misses):
            if top == 1:
                failures.extend(f"first quote {reason}" for reason in misses[0])
            else:
                have = f" (the answer has {len(quotes)})" if len(quotes) < top else ""
                failures.append(f"none of the first {top} quotes {' and '.join(_requirements(expect))}{have}")
    for number, quote in enumerate(looked_at, 1):
        found = [text for text in expect.not_contains or () if contains(quote.text, text)]
        if found:
            which = "first quote" if number == 1 else f"quote {number}"
            failures.append(f"{which} contains {_texts(found)}, which not_contains forbids")
    return failures


def _has_positive_keys(expect: Expect) -> bool:
    return any(value is not None for value in (expect.quote_contains, expect.quote_contains_all, expect.article))


def _misses(quote: Quote, expect: Expect) -> list[str]:
    """What ``quote`` lacks of the positive quote keys, as phrases after "first quote"."""
    reasons = []
    if expect.quote_contains and not any(contains(quote.text, text) for text in expect.quote_contains):
        many = len(expect.quote_contains) > 1
        reasons.append(f"does not contain {'any of ' if many else ''}{_texts(expect.quote_contains)}")
    if expect.quote_contains_all:
        missing = [text for text in expect.quote_contains_all if not contains(quote.text, text)]
        if missing:
            reasons.append(f"does not contain {_texts(missing)} (quote_contains_all)")
    if expect.article is not None and not article_matches(quote, expect.article):
        source = f"{_quoted(quote.article_id)} ({_quoted(quote.title)})"
        reasons.append(f"comes from {source}, not {_quoted(expect.article)}")
    return reasons


def _requirements(expect: Expect) -> list[str]:
    wanted = []
    if expect.quote_contains:
        many = len(expect.quote_contains) > 1
        wanted.append(f"contains {'any of ' if many else ''}{_texts(expect.quote_contains)}")
    if expect.quote_contains_all:
        wanted.append(f"contains all of {_texts(expect.quote_contains_all)}")
    if expect.article is not None:
        wanted.append(f"comes from {_quoted(expect.article)}")
    return wanted


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _texts(texts: Iterable[str]) -> str:
    return ", ".join(_quoted(text) for text in texts)
