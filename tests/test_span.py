"""The answer marked inside a quote (retrieval.span): generic cues on sentences written for
these tests, in the style of news copy."""

from __future__ import annotations

from quotebot.index.text import tokenize
from quotebot.retrieval.answer_types import question_type
from quotebot.retrieval.span import FEATURES, WEIGHTS, answer_span, candidates


def marked(question: str, quote: str) -> str | None:
    keywords = set(tokenize(question))
    span = answer_span(question_type(question), keywords, quote, question=question)
    return quote[span[0] : span[1]] if span else None


def test_a_who_question_marks_the_name_without_the_question_words_around_it() -> None:
    quote = "In early 2012, Football League chairman Greg Clarke said the league planned a bigger final."
    assert marked("Who is the Football League chairman?", quote) == "Greg Clarke"


def test_a_who_question_marks_a_passive_agent() -> None:
    quote = "The suspension bridge was designed by the engineer Isambard Brunel and opened in 1864."
    assert marked("Who designed the suspension bridge?", quote) == "Isambard Brunel"


def test_a_which_question_marks_the_name_beside_its_noun() -> None:
    quote = "The squad trained at Stanford University and stayed at the Santa Clara Marriott hotel."
    assert marked("Which hotel did the squad stay at?", quote) == "Santa Clara Marriott"


def test_a_what_question_marks_the_name_of_its_noun() -> None:
    quote = "Built after the uprising, the Warsaw Citadel was a place of martyrdom for the Poles."
    assert marked("What citadel was built after the uprising?", quote) in ("Warsaw", "Warsaw Citadel")


def test_a_what_did_question_marks_the_object_after_its_verb() -> None:
    quote = "On Tuesday the city council approved a new cycle lane along the river, officials said."
    found = marked("What did the city council approve?", quote)
    assert found is not None and "cycle lane" in found and "council" not in found


def test_the_subject_of_an_is_whose_predicate_the_question_holds_is_a_cue() -> None:
    question, quote = "What is the city's symbol?", "The mermaid is the city's symbol and appears on its coat of arms."
    found = candidates(question_type(question), set(tokenize(question)), quote, question)
    cued = [quote[c.span[0] : c.span[1]] for c in found if c.features["copula_subject"]]
    assert cued == ["mermaid"] and WEIGHTS["copula_subject"] > 0
    assert marked(question, "The mermaid is the city's symbol.") == "mermaid"


def test_a_question_ending_on_a_preposition_marks_what_follows_its_last_words() -> None:
    quote = "Officials said the rise in complaints is linked to late deliveries over Christmas."
    found = marked("What is the rise in complaints linked to?", quote)
    assert found is not None and found.startswith("late deliveries")


def test_how_many_marks_the_number_that_counts_the_asked_noun() -> None:
    quote = "Some 2,800 workers of the plant's 3,300 hourly employees will be laid off for 18 weeks from March."
    assert marked("How many workers will be laid off?", quote) == "2,800 workers"


def test_a_year_is_not_how_much_was_paid() -> None:
    quote = "In April 1995 the venture fund put $2m into the search firm, its founders said."
    assert marked("How much did the venture fund put into the search firm?", quote) == "$2m"


def test_a_figure_asked_and_none_in_the_quote_marks_nothing() -> None:
    assert marked("How many people were hurt?", "Several people were hurt when the stand collapsed.") is None


def test_a_quote_without_the_question_words_still_marks_a_name_of_the_asked_kind() -> None:
    assert marked("Who chairs the inquiry?", "It is led by Lord Hutton, a former judge.") == "Lord Hutton"


def test_a_quote_without_the_question_words_marks_no_loose_phrase() -> None:
    assert marked("What did the regulator decide?", "It will take effect next spring.") is None


def test_every_candidate_carries_every_weighted_feature() -> None:
    question = "Which hotel did the squad stay at?"
    quote = "The squad trained at Stanford University and stayed at the Santa Clara Marriott hotel."
    found = candidates(question_type(question), set(tokenize(question)), quote, question)
    assert found and all(set(c.features) == set(FEATURES) == set(WEIGHTS) for c in found)
    assert all(quote[c.span[0] : c.span[1]].strip() == quote[c.span[0] : c.span[1]] for c in found)
