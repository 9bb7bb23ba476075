"""Checking an Answer against an Expect: the matching rules and the failure messages. No model is loaded."""

from __future__ import annotations

from typing import Any

import pytest

from quotebot.bot.regress.expectations import check, contains
from quotebot.bot.regress.fixtures import Expect
from quotebot.retrieval.answer import Answer, Quote

TITLE = "Harbour bridge reopens after two-year repair"
COST = "The Kelso harbour bridge reopened to traffic on Monday after a repair that cost 48 million euros."
RIBBON = "Mayor Ines Duarte cut the ribbon at nine in the morning and thanked the engineers."
FROST = "Farmer Tomas Berg said he lost nearly all of his early varieties in a single night."


def quote(text: str, article_id: str = "harbour.txt", title: str = TITLE, start: int = 0) -> Quote:
    end = start + len(text)
    return Quote(text=text, article_id=article_id, title=title, start=start, end=end, score=0.5, paragraph=1)


ANSWER = Answer(
    question="Who cut the ribbon?",
    answered=True,
    confidence=0.8123,
    quotes=(
        quote(RIBBON, start=117),
        quote(COST),
        quote(FROST, article_id="orchard.md", title="Frost damages apple orchards in the valley"),
    ),
)
ABSTENTION = Answer(question="Who won the Tour de France?", answered=False, confidence=0.0316)


def expect(**keys: Any) -> Expect:
    return Expect.model_validate(keys)


def test_matching_ignores_case_and_collapses_whitespace() -> None:
    assert contains("Mayor Ines  Duarte\ncut the ribbon", "ines duarte CUT   the ribbon")
    assert not contains("Mayor Ines Duarte", "Ines Duartes")


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"quote_contains": ["INES DUARTE"]},
        {"quote_contains": ["nobody", "cut the\n ribbon"]},
        {"quote_contains_all": ["Mayor", "engineers"]},
        {"article": "harbour.txt"},
        {"article": TITLE},
        {"not_contains": ["48 million"]},  # in quote 2, but only the first quote is looked at
        {"quote_contains": ["48 million"], "within_top": 2},
        {"quote_contains": ["Tomas Berg"], "article": "orchard.md", "within_top": 3},
        {"abstain": False, "min_confidence": 0.8123},
    ],
)
def test_expectations_that_hold(keys: dict[str, Any]) -> None:
    assert check(ANSWER, expect(**keys)) == []


@pytest.mark.parametrize(
    ("keys", "failures"),
    [
        ({"quote_contains": "48 million"}, ['first quote does not contain "48 million"']),
        (
            {"quote_contains": ["48 million", "Tomas"]},
            ['first quote does not contain any of "48 million", "Tomas"'],
        ),
        (
            {"quote_contains_all": ["Mayor", "bridge", "euros"]},
            ['first quote does not contain "bridge", "euros" (quote_contains_all)'],
        ),
        (
            {"article": "orchard.md"},
            [f'first quote comes from "harbour.txt" ("{TITLE}"), not "orchard.md"'],
        ),
        ({"article": "harbour"}, [f'first quote comes from "harbour.txt" ("{TITLE}"), not "harbour"']),
        (
            {"quote_contains": "ribbon", "article": "orchard.md"},
            [f'first quote comes from "harbour.txt" ("{TITLE}"), not "orchard.md"'],
        ),
        ({"not_contains": ["ribbon"]}, ['first quote contains "ribbon", which not_contains forbids']),
        (
            {"not_contains": ["ribbon", "euros"], "within_top": 2},
            [
                'first quote contains "ribbon", which not_contains forbids',
                'quote 2 contains "euros", which not_contains forbids',
            ],
        ),
        ({"abstain": True}, ["expected an abstention, got an answer (confidence 0.8123)"]),
        ({"min_confidence": 0.9}, ["confidence 0.8123 is below min_confidence 0.9"]),
        (
            {"quote_contains": "Tomas Berg", "within_top": 2},
            ['none of the first 2 quotes contains "Tomas Berg"'],
        ),
        (
            {"quote_contains": "Lenne valley", "within_top": 5},
            ['none of the first 5 quotes contains "Lenne valley" (the answer has 3)'],
        ),
    ],
)
def test_failures_say_what_was_expected_and_what_came(keys: dict[str, Any], failures: list[str]) -> None:
    assert check(ANSWER, expect(**keys)) == failures


def test_within_top_needs_one_quote_meeting_every_quote_key() -> None:
    # "Tomas" is in quote 3 and "harbour.txt" is quote 1's article, but no single quote has both.
    both = expect(quote_contains="Tomas", article="harbour.txt", within_top=3)
    assert check(ANSWER, both) == ['none of the first 3 quotes contains "Tomas" and comes from "harbour.txt"']


def test_abstentions() -> None:
    assert check(ABSTENTION, expect(abstain=True)) == []
    assert check(ABSTENTION, expect()) == []
    assert check(ABSTENTION, None) == []
    wanted = "expected an answer, got an abstention (confidence 0.0316)"
    assert check(ABSTENTION, expect(abstain=False)) == [wanted]
    # Any quote key means an answer is expected.
    assert check(ABSTENTION, expect(quote_contains="ribbon")) == [wanted]
    assert check(ABSTENTION, expect(not_contains="ribbon")) == [wanted]
    assert check(ABSTENTION, expect(abstain=True, min_confidence=0.5)) == [
        "confidence 0.0316 is below min_confidence 0.5"
    ]
