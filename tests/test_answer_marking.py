"""The answer inside a quote: the Quote model's span, bold on Telegram, highlighted on a terminal."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from quotebot.bot.regress.snapshot import turn_record
from quotebot.bot.render import answer_to_json, answer_to_text
from quotebot.bot.telegram.formatting import QUOTE_PIECE_UTF16, quote_blocks
from quotebot.retrieval.answer import Answer, Quote

TEXT = "Rosneft bought the   Yugansk unit\nfor $9.3bn & more <at once>."


def marked(text: str = TEXT, word: str = "$9.3bn", offset: int = 100) -> Quote:
    start = text.index(word)
    return Quote(
        text=text, article_id="a", title="T", start=offset, end=offset + len(text), score=0.9, paragraph=1,
        answer_start=offset + start, answer_end=offset + start + len(word),
    )


def test_the_answer_span_lies_inside_the_quote() -> None:
    quote = marked()
    assert quote.answer_text == "$9.3bn"
    with pytest.raises(ValidationError):
        Quote(text="abc", article_id="a", title="", start=10, end=13, score=0, paragraph=1, answer_start=9, answer_end=12)
    with pytest.raises(ValidationError):
        Quote(text="abc", article_id="a", title="", start=10, end=13, score=0, paragraph=1, answer_start=11)


def test_telegram_shows_the_answer_in_bold_and_escapes_around_it() -> None:
    html = quote_blocks(marked())[0].html
    assert "<b>$9.3bn</b>" in html
    assert "&amp; more &lt;at once&gt;" in html
    assert "Yugansk unit for" in html  # white space collapsed as before


def test_an_answer_cut_between_telegram_pieces_is_bold_in_each() -> None:
    text = "x " * (QUOTE_PIECE_UTF16 // 2 - 3) + "the long answer runs across the cut and on" + " y" * 50
    quote = marked(text, "the long answer runs across the cut and on", offset=0)
    pieces = [block.html for block in quote_blocks(quote)]
    assert len(pieces) == 2
    for piece in pieces:
        assert piece.count("<b>") == piece.count("</b>") == 1


def test_an_unmarked_quote_renders_as_before() -> None:
    quote = Quote(text=TEXT, article_id="a", title="T", start=0, end=len(TEXT), score=0.5, paragraph=1)
    assert "<b>" not in quote_blocks(quote)[0].html
    assert answer_to_text(Answer(question="q", answered=True, confidence=0.9, quotes=(quote,)), color=True).count("\033[1;4;33m") == 0


def test_the_terminal_highlights_the_answer_only_in_colour() -> None:
    answer = Answer(question="q", answered=True, confidence=0.9, quotes=(marked(),))
    coloured = answer_to_text(answer, color=True)
    assert "\033[1;4;33m$9.3bn\033[0m\033[1m" in coloured
    plain = answer_to_text(answer)
    assert "$9.3bn" in plain and "\033" not in plain and "\x02" not in plain


def test_json_and_snapshots_carry_the_span() -> None:
    answer = Answer(question="q", answered=True, confidence=0.9, quotes=(marked(),))
    assert '"answer_start": ' in answer_to_json(answer)
    record = turn_record("q", answer)["quotes"][0]
    assert record["answer"] == "$9.3bn" and record["answer_end"] - record["answer_start"] == 6
