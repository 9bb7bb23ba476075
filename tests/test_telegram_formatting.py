"""Telegram HTML rendering and splitting (pure), checked with the fake Bot API's HTML reader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from quotebot.bot.telegram import formatting
from quotebot.bot.telegram.formatting import (
    MAX_CALLBACK_DATA_BYTES,
    MAX_ENTITIES,
    MAX_MESSAGE_UTF16,
    Block,
    escape,
    pack,
    plan_more,
    quote_blocks,
    quote_messages,
    shorten,
    sources_messages,
    utf16_len,
)
from quotebot.retrieval.answer import Quote
from tests.fake_bot_api import ApiError, parse_html


def quote(text: str, title: str = "Title", paragraph: int = 3) -> Quote:
    return Quote(text=text, article_id="a", title=title, start=0, end=len(text), score=0.5, paragraph=paragraph)


def accepted(message: str) -> str:
    """The visible text, after checking the message like Telegram (the fake) does."""
    text, entities = parse_html(message)
    assert utf16_len(text) <= MAX_MESSAGE_UTF16 and entities <= MAX_ENTITIES
    return text


def test_limits_are_telegrams() -> None:
    assert MAX_MESSAGE_UTF16 == MessageLimit.MAX_TEXT_LENGTH
    assert MAX_ENTITIES == MessageLimit.MESSAGE_ENTITIES
    assert MAX_CALLBACK_DATA_BYTES == InlineKeyboardButtonLimit.MAX_CALLBACK_DATA


def test_escape_and_utf16_length() -> None:
    assert escape('<b>Tom & "Jerry"</b>') == '&lt;b&gt;Tom &amp; "Jerry"&lt;/b&gt;'
    assert utf16_len("a🦋é") == 4  # the butterfly is a surrogate pair


def test_a_quote_is_a_blockquote_with_its_source_line_under_it() -> None:
    [block] = quote_blocks(quote("He said <b>no</b> & left.\nThen   more.", title="A & B"))
    assert block.html == "<blockquote>He said &lt;b&gt;no&lt;/b&gt; &amp; left. Then more.</blockquote>\n<i>— A &amp; B, paragraph 3</i>"
    assert accepted(block.html) == "He said <b>no</b> & left. Then more.\n— A & B, paragraph 3"
    assert block.entities == 2 and block.length == utf16_len(accepted(block.html))


def test_long_quotes_are_expandable() -> None:
    [block] = quote_blocks(quote("x " * 300))
    assert block.html.startswith("<blockquote expandable>")


def test_a_quote_too_long_for_a_message_is_cut_between_words_into_valid_messages() -> None:
    words = [f"w{i}🦋" for i in range(3000)]
    messages = quote_messages([quote(" ".join(words), title="T" * 1000)])
    assert len(messages) >= 4
    texts = [accepted(m) for m in messages]
    assert all(m.startswith("<blockquote expandable>") and m.count("<blockquote") == 1 for m in messages)
    assert texts[-1].endswith("…") and "— T" in texts[-1]
    body = " ".join(t.split("\n— ")[0] for t in texts)
    assert body.split() == words  # nothing lost, no word cut


def test_a_single_huge_word_is_cut_where_it_must_be() -> None:
    messages = quote_messages([quote("🦋" * 5000)])
    assert "".join(accepted(m).split("\n— ")[0] for m in messages) == "🦋" * 5000


def test_pack_never_exceeds_the_entity_limit() -> None:
    blocks = [Block.of(f"<b>{n}</b>") for n in range(250)]
    messages = pack(blocks)
    assert len(messages) == 3
    assert [parse_html(m)[1] for m in messages] == [100, 100, 50]


def test_pack_refuses_a_block_no_message_can_hold() -> None:
    with pytest.raises(ValueError):
        pack([Block.of("x" * (MAX_MESSAGE_UTF16 + 1))])


def test_more_grows_the_message_while_it_fits() -> None:
    quotes = [quote("one"), quote("two " * 700), quote("three " * 500)]
    grown = plan_more(quotes, start=0, shown=1, can_grow=True)
    assert grown.edit is not None and grown.edit.count("<blockquote") == 2 and grown.send == ()
    assert (grown.start, grown.shown, grown.can_grow) == (0, 2, True)
    moved = plan_more(quotes, start=0, shown=2, can_grow=True)
    assert moved.edit is None and len(moved.send) == 1 and "three" in moved.send[0]
    assert (moved.start, moved.shown, moved.can_grow) == (2, 3, True)


def test_more_after_a_split_first_answer_sends_a_new_message() -> None:
    plan = plan_more([quote("x " * 5000), quote("next")], start=0, shown=1, can_grow=False)
    assert plan.edit is None and "next" in plan.send[0]


def test_sources_are_escaped_and_capped() -> None:
    articles = [(f"Article <{n}> & co", "2020-01-01" if n % 2 else None) for n in range(250)]
    messages = sources_messages(articles)
    text = "\n".join(accepted(m) for m in messages)
    assert text.startswith("250 articles indexed")
    assert "• Article <0> & co\n" in text and "• Article <1> & co (2020-01-01)" in text
    assert "Article <99> & co" in text and "Article <100>" not in text
    assert text.endswith("…and 150 more.")
    assert sources_messages([]) == ["No articles are indexed yet."]
    # One list: a line per article, no blank line after every tenth.
    listed = text.split("\n\n", 1)[1]
    assert "\n\n" not in listed and len(listed.splitlines()) == 101


def test_other_replies_escape_what_they_quote() -> None:
    for message in (
        formatting.start_message(2, "What about <b> & co?"),
        formatting.help_message("What about <b> & co?", "my_bot"),
        formatting.ask_usage_message("<i>"),
        formatting.refusal_message(-100123),
        formatting.slow_down_message(12.4),
        formatting.not_found_message(),
    ):
        accepted(message)


def test_shorten() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("one two three four", 12) == "one two…"
    assert utf16_len(shorten("🦋" * 100, 11)) <= 11


def test_the_fake_reads_html_like_telegram() -> None:
    assert parse_html("<b>a</b> &lt;&amp;&gt; <blockquote expandable>q</blockquote>") == ("a <&> q", 2)
    for broken in ("<b>open", "a & b", "<div>x</div>", "<b><i>x</b></i>", "&nbsp;", "<blockquote><blockquote>x</blockquote></blockquote>"):
        with pytest.raises(ApiError):
            parse_html(broken)


printable = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=3000)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(printable.filter(str.strip), min_size=1, max_size=4), title=printable)
def test_any_answer_renders_to_messages_telegram_accepts(texts: list[str], title: str) -> None:
    quotes = [quote(text, title=title) for text in texts]
    messages = quote_messages(quotes)
    visible = [accepted(message) for message in messages]
    assert sum(v.count("\n— ") for v in visible) >= len(quotes)  # every quote keeps its source line
