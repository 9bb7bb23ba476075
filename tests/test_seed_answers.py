"""The questions a new user asks first, answered over the seed article."""

from __future__ import annotations

import pytest

from quotebot.bot.chat import QuoteBot


def test_herzog_question_quotes_the_blind_eye_sentence(seed_bot: QuoteBot) -> None:
    answer = seed_bot.ask("What did Herzog ask Lavrov?")
    assert answer.answered
    first = answer.quotes[0]
    assert "not to turn ‘a blind eye’ to Iran’s hostile activities" in first.text
    assert first.text.startswith("Due to the growing Russian influence")
    assert first.title == "Russia and Israel resume military cooperation in Syria"


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of Australia?",
        "How do I bake sourdough bread?",
        "Who won the 2018 football World Cup?",
        "What is the boiling point of water?",
    ],
)
def test_unrelated_questions_abstain(seed_bot: QuoteBot, question: str) -> None:
    answer = seed_bot.ask(question)
    assert not answer.answered
    assert answer.quotes == ()
    assert answer.confidence < seed_bot.retriever.abstain_threshold


def test_follow_up_resolves_he_to_herzog(seed_bot: QuoteBot) -> None:
    seed_bot.ask("What did Herzog ask Lavrov?", conversation="c1")
    answer = seed_bot.ask("and what did he say about Hezbollah?", conversation="c1")
    assert answer.answered
    assert "violation of the border between us and Lebanon, by Hezbollah" in answer.quotes[0].text


def test_conversations_are_separate(seed_bot: QuoteBot) -> None:
    seed_bot.ask("What did Herzog ask Lavrov?", conversation="a")
    seed_bot.ask("What did Lavrov say about the accident?", conversation="b")
    answer = seed_bot.ask("and what did he say about Hezbollah?", conversation="a")
    # Conversation b's question about Lavrov must not leak into a's "he".
    assert "violation of the border between us and Lebanon, by Hezbollah" in answer.quotes[0].text


def test_answers_to_other_questions_quote_the_right_sentence(seed_bot: QuoteBot) -> None:
    cases = {
        "Who is the Executive Chairman of the Jewish Agency?": "Executive Chairman of the Jewish Agency, Isaac Herzog",
        "What did Lavrov say about the accident?": "After the tragic accident",
        "Which plane was shot down?": "Il-20 reconnaissance plane",
        "Who should meet Putin again?": "Prime Minister Netanyahu and President Putin meet once again",
    }
    for question, expected in cases.items():
        answer = seed_bot.ask(question)
        assert answer.answered, question
        assert expected in answer.quotes[0].text, (question, answer.quotes[0].text)


def test_quotes_come_from_different_places_best_first(seed_bot: QuoteBot) -> None:
    answer = seed_bot.ask("What did Herzog ask Lavrov?")
    spans = [(q.article_id, q.start, q.end) for q in answer.quotes]
    assert len(spans) == len(set(spans))
    for a in answer.quotes:
        for b in answer.quotes:
            if a is not b and a.article_id == b.article_id:
                assert a.end <= b.start or b.end <= a.start, "quotes overlap"
    scores = [q.score for q in answer.quotes]
    assert scores == sorted(scores, reverse=True)
    assert 0.0 <= answer.confidence <= 1.0


def test_paragraph_numbers_count_line_breaks() -> None:
    from quotebot.retrieval.retriever import paragraph_number

    text = "\nFirst paragraph. Still first.\n\nSecond one.\nThird, after a single break."
    assert paragraph_number(text, text.index("First")) == 1
    assert paragraph_number(text, text.index("Still")) == 1
    assert paragraph_number(text, text.index("Second")) == 2
    assert paragraph_number(text, text.index("Third")) == 3
