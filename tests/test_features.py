"""Sentence features that need no index: nearness of the answer, the thing counted."""

from __future__ import annotations

from quotebot.index.text import tokenize
from quotebot.retrieval.answer_types import answer_spans, question_type
from quotebot.retrieval.features import counts_what_is_asked, type_nearness


def _weights(question: str) -> dict[str, float]:
    tokens = tokenize(question)
    return {token: 1.0 / len(tokens) for token in tokens}


def test_an_answer_next_to_the_question_words_is_nearer_than_one_far_from_them() -> None:
    question = "How large was the UK trade gap in November?"
    asked, weights = question_type(question), _weights(question)
    near = "The UK trade gap was £3.1bn in November."
    far = "The UK trade gap narrowed in November, helped by exports to countries outside the EU rising 7.5%."
    near_value = type_nearness(near, answer_spans(asked, near), weights)
    far_value = type_nearness(far, answer_spans(asked, far), weights)
    assert 0.0 < far_value < near_value <= 1.0
    assert type_nearness("Nothing here.", [], weights) == 0.0


def test_a_number_counts_the_asked_thing_only_when_that_thing_follows_it() -> None:
    asked = question_type("How many cars a year will the Belvidere plant build?")
    robots = "Chrysler said it will increase the number of robots at Belvidere to 244 from 41."
    cars = "The plant will build 250,000 cars a year once it reopens."
    assert not counts_what_is_asked(asked, robots, answer_spans(asked, robots))
    assert counts_what_is_asked(asked, cars, answer_spans(asked, cars))


def test_the_weights_file_holds_a_weight_for_every_term_the_features_make() -> None:
    # A feature added or renamed without a refit (bench/fit_ranker.py --write) would be
    # silently ignored, or fail with a KeyError on the first question.
    from quotebot.retrieval.features import confidence_terms, ranker_terms
    from quotebot.retrieval.ranker import load_models

    models = load_models()
    assert models.ranker.features == ranker_terms()
    assert models.confidence.features == confidence_terms()
    assert any("*" in term for term, weight in zip(models.confidence.features, models.confidence.coefficients) if weight)
