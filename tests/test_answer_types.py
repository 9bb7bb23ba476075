"""Question types and the answer spans they find in sentences (retrieval.answer_types, retrieval.span)."""

from __future__ import annotations

import pytest

from quotebot.index.text import tokenize
from quotebot.retrieval.answer_types import AnswerType, answer_spans, number_agreement, question_type
from quotebot.retrieval.span import answer_span

YUKOS = (
    "State-owned Rosneft bought the Yugansk unit for $9.3bn in a sale forced by Russia to part settle "
    "a $27.5bn tax claim against Yukos."
)
TIMEWARNER = (
    "Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn (£600m) for the three months "
    "to December, from $639m year-earlier."
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people died?", AnswerType.NUMBER),
        ("By how much did profits rise?", AnswerType.NUMBER),
        ("How much did Rosneft pay for Yugansk?", AnswerType.AMOUNT),
        ("What percentage of voters backed him?", AnswerType.PERCENT),
        ("When did the war start?", AnswerType.DATE),
        ("In what year was it founded?", AnswerType.DATE),
        ("How long ago was the Il-20 shot down?", AnswerType.DATE),
        ("Who is the Executive Chairman of the Jewish Agency?", AnswerType.PERSON),
        ("Which company bought Yugansk?", AnswerType.ORGANISATION),
        ("Which Russian city hosted the talks?", AnswerType.PLACE),
        ("Where are Russian forces operating?", AnswerType.PLACE),
        ("Why is Israel worried?", AnswerType.REASON),
        ("Which plane was shot down?", AnswerType.NAME),
        ("What did Lavrov underscore?", None),
        ("What did Herzog ask Lavrov?", AnswerType.REQUEST),
        ("What did the union call for?", AnswerType.REQUEST),
        ("What was he urged to do?", AnswerType.REQUEST),
        ("In the range between 1980 and 1990, what did demand for grow?", None),  # "demand" the noun
        ("What does ABC on Demand disallow?", None),
        ("What did Rob Andrew say about the Dublin match?", AnswerType.SAYING),
        ("What warning did Hiromichi Shirakawa give about the economy?", AnswerType.SAYING),
        ("What was Herzog's previous job?", None),
        ("What is Hamas?", None),
    ],
)
def test_question_types(question: str, kind: AnswerType | None) -> None:
    assert question_type(question).kind is kind


def _found(question: str, sentence: str) -> list[str]:
    return [sentence[a:b] for a, b in answer_spans(question_type(question), sentence)]


def test_amounts_percentages_and_counts_are_told_apart() -> None:
    assert _found("How much did Rosneft pay for Yugansk?", YUKOS) == ["$9.3bn", "$27.5bn"]
    assert _found("What percentage did profits jump?", TIMEWARNER) == ["76%"]
    assert "76%" in _found("By how much did profits rise?", TIMEWARNER)


def test_a_request_is_what_follows_the_request_verb() -> None:
    sentence = "Herzog also urged the Kremlin's top diplomat not to turn a blind eye to Iran's activities."
    assert _found("What did Herzog ask Lavrov?", sentence) == ["the Kremlin's top diplomat not to turn a blind eye to Iran's activities"]
    assert _found("What did Herzog ask Lavrov?", "Herzog met Lavrov in Moscow.") == []


def test_a_saying_is_the_quoted_words_else_what_follows_the_speech_verb() -> None:
    asked = "What did Lavrov say about the accident?"
    quoted = "Sergei Lavrov said, “After the tragic accident the measures have been taken.”"
    assert _found(asked, quoted) == ["After the tragic accident the measures have been taken."]
    assert _found(asked, "He warned that the amber light is flashing.") == ["the amber light is flashing"]
    assert _found(asked, "The accident happened in September.") == []


def test_a_person_is_two_names_or_more_not_a_nationality_or_a_brand() -> None:
    assert _found("Who is suing Apple over iTunes?", "A user of Apple's iTunes music service is suing the firm.") == []
    assert _found("Which official defended the courts?", "Australian tennis' top official defended the courts.") == []
    assert _found("Who leads the union?", "The Public and Commercial Services Union will act, said Mr Serwotka.") == ["Mr Serwotka"]


def test_a_month_or_weekday_is_no_place_or_person() -> None:
    assert _found("Which town did the lava flow towards?", "The town's residents had been evacuated in November.") == []
    assert _found("Who met on Monday?", "They met on Monday.") == []


def test_names_the_question_already_uses_are_no_answer() -> None:
    found = _found("Which company bought the Yugansk unit?", YUKOS)
    assert "State-owned Rosneft" in found or "Rosneft" in " ".join(found)
    assert "Yugansk" not in found
    assert _found("Who bought the unit?", "It was bought.") == []


def test_dates_include_relative_ones() -> None:
    sentence = "Three months after a Syrian force accidentally shot down a Russian military Il-20 plane, talks resumed."
    assert _found("How long ago was the Il-20 shot down?", sentence) == ["Three months after"]
    assert _found("When was it signed?", "It was signed on 3 March 2004 in Paris.") == ["3 March 2004"]


def test_years_the_question_names_agree_or_conflict() -> None:
    asked = question_type("How many cars were sold in 2003?")
    assert number_agreement(asked, "In 2003 it sold 10,000 cars.") == (1.0, 0.0)
    assert number_agreement(asked, "In 2004 it sold 12,000 cars.") == (0.0, 1.0)
    assert number_agreement(asked, "It sold many cars.") == (0.0, 0.0)
    assert number_agreement(question_type("How many cars were sold?"), "In 2004 it sold 12,000 cars.") == (0.0, 0.0)


def _marked(question: str, quote: str) -> str | None:
    keywords = set(tokenize(question)) - {"ask", "say"}
    span = answer_span(question_type(question), keywords, quote)
    return quote[span[0] : span[1]] if span else None


def test_the_marked_answer_is_the_asked_kind_nearest_the_question_words() -> None:
    assert _marked("How much did Rosneft pay for the Yugansk unit?", YUKOS) == "$9.3bn"


def test_an_open_question_marks_what_follows_its_words() -> None:
    quote = "The militaries of Jerusalem and Moscow have resumed cooperation to assure deconfliction, he said."
    marked = _marked("What have the militaries of Jerusalem and Moscow resumed?", quote)
    assert marked is not None and marked.startswith("cooperation")


def test_how_many_knows_what_it_counts() -> None:
    assert question_type("How many first downs did the Broncos have?").counted == set(tokenize("first downs"))
    assert question_type("How much rice does the U.S. want Japan to import?").counted == set(tokenize("rice"))
    assert question_type("How many times have they won?").counted == frozenset()  # a measure, not a thing
    assert question_type("Who won?").counted == frozenset()


def test_a_bare_year_is_no_count() -> None:
    asked = question_type("How many terror suspects are held?")
    sentence = "Under the Security Act 2001, 12 foreign terror suspects can be detained."
    assert [sentence[a:b] for a, b in answer_spans(asked, sentence)] == ["12"]


def test_a_saying_question_knows_its_topic() -> None:
    assert question_type("What did Lavrov say about fighting terrorism?").topic == set(tokenize("fighting terrorism"))
    assert question_type("What did Herzog ask Lavrov?").topic == frozenset()
