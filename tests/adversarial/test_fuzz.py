"""Fuzzing with hypothesis: no input makes a loader crash, no article text makes bad Telegram HTML.

Loaders: random bytes in every supported file type, and random JSON shapes (any nesting,
any value types, lone surrogate escapes, huge numbers) as .json and .jsonl, load without an
unexpected exception (what `quotebot index build` would report as exit 70), and every
article they give can be written to an index (UTF-8, JSON). Telegram: any article text and
title give messages the fake Bot API, which parses HTML like Telegram, accepts, within the
length and entity limits.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotebot.bot.telegram import formatting
from quotebot.index.loaders import InputError, LoadReport, load_articles
from quotebot.index.tables import article_record, write_records
from quotebot.retrieval.answer import Quote
from tests.fake_bot_api import MAX_ENTITIES, parse_html, utf16_len

SUFFIXES = [".txt", ".md", ".html", ".htm", ".json", ".jsonl"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with every code point, lone surrogates included (JSON can encode them as \ud800).
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)),
    max_leaves=30,
)
records = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"id": st.one_of(any_text, st.integers(), json_values), "text": st.one_of(any_text, json_values)},
        optional={
            "title": st.one_of(any_text, json_values),
            "date": st.one_of(any_text, json_values),
            "url": st.one_of(any_text, json_values),
            "source": st.one_of(any_text, json_values),
            "metadata": json_values,
        },
    ),
)


def _load_and_store(folder: Path) -> LoadReport:
    """Load ``folder`` as `index build` does, then write what it gave as the index would."""
    report = load_articles([folder])
    for article in report.articles:
        article.content_hash  # noqa: B018 (hashes the UTF-8 text)
        write_records(folder / "records.out", [article_record(article)])
        article.text.encode("utf-8")
    try:
        load_articles([folder], strict=True)
    except InputError:
        pass  # strict mode stops with the one-line error: that is its contract
    return report


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_never_crash_a_loader(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / f"input{suffix}").write_bytes(data)
        report = _load_and_store(folder)
        assert len(report.articles) + len(report.skipped) >= 1 or report.duplicates


@FUZZ
@given(data=st.lists(records, max_size=5), ascii_only=st.booleans())
def test_random_json_shapes_never_crash_a_loader(data: list, ascii_only: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        try:
            whole = json.dumps(data, ensure_ascii=ascii_only)
            lines = "\n".join(json.dumps(record, ensure_ascii=ascii_only) for record in data)
        except ValueError:
            return
        (folder / "records.json").write_bytes(whole.encode("utf-8", "surrogatepass"))
        (folder / "records.jsonl").write_bytes(lines.encode("utf-8", "surrogatepass"))
        _load_and_store(folder)


# Article text as the index holds it: any code point but a lone surrogate (the loaders refuse those).
article_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=9000)


@FUZZ
@given(texts=st.lists(article_text, min_size=1, max_size=3), title=article_text)
def test_any_article_text_gives_valid_telegram_html_within_limits(texts: list[str], title: str) -> None:
    quotes = [
        Quote(text=text, article_id="a.txt", title=title, start=0, end=len(text), score=0.5, paragraph=1) for text in texts
    ]
    messages = formatting.quote_messages(quotes)
    messages += formatting.sources_messages([(title, None), (texts[0][:200], "2018-01-01")])
    plan = formatting.plan_more(quotes, 0, 1, True)
    messages += [page for page in [plan.edit, *(plan.send or [])] if page]
    assert messages
    for message in messages:
        visible, entities = parse_html(message)  # raises like Telegram's "can't parse entities"
        assert visible.strip()
        assert utf16_len(visible) <= formatting.MAX_MESSAGE_UTF16
        assert entities <= MAX_ENTITIES
