"""Tests for index.chunking: sentence splitting and sentence-aligned chunking."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotebot.index.chunking import (
    ABBREVIATIONS,
    chunk_article,
    chunk_sentences,
    count_tokens,
    split_sentences,
)
from quotebot.index.articles import Span

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_8df2fe3ddce01457.txt"
LINE_BREAKS = "\n\r\u2028\u2029\x85"


def sentences_of(text: str) -> list[str]:
    return [span.slice(text) for span in split_sentences(text)]


# --- Property-based ------------------------------------------------------------
# Fragments that exercise the splitter's rules; they are glued together with no
# separator, so the mix also produces odd spacing like "Mr.U.S.?!" or "3.5\n".
FRAGMENTS = [
    " ", "  ", "\n", "\r\n", "\n\n", "\t", "\u00a0", "\u2028",
    ".", "!", "?", "?!", "...", "…", ". ", "! ", "? ",
    '"', "'", "“", "”", "‘", "’", "(", ")", "[", "]",
    "The", "the", "He", "she", "George W. Bush", "3.5", "$1.2bn", "U.S.", "A.B.C.",
    "Jewish state.’ ", "said “Stop.” ", "Ünïcödé", "日本語。", "Ελληνικά", "🙂",
] + [abbreviation + "." for abbreviation in ABBREVIATIONS]

texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=40
).map("".join)


def assert_span_invariants(text: str, spans: list[Span]) -> None:
    previous_end = 0
    for span in spans:
        piece = span.slice(text)
        assert piece, "empty span"
        assert not piece[0].isspace() and not piece[-1].isspace(), "unstripped span"
        assert span.start >= previous_end, "spans overlap or are out of order"
        assert not any(c in LINE_BREAKS for c in piece), "a line break inside a sentence"
        assert text[previous_end : span.start].isspace() or previous_end == span.start
        previous_end = span.end
    assert text[previous_end:].strip() == "", "non-whitespace left after the last span"


@settings(max_examples=200, deadline=None)
@given(texts)
def test_split_invariants(text: str) -> None:
    assert_span_invariants(text, split_sentences(text))


@settings(max_examples=200, deadline=None)
@given(
    texts,
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=5),
)
def test_chunk_invariants(text: str, chunk_tokens: int, chunk_overlap: int) -> None:
    sentences, chunks = chunk_article(
        "a1", text, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap
    )
    assert_span_invariants(text, sentences)
    covered: set[int] = set()
    for ordinal, chunk in enumerate(chunks):
        first, count = chunk.first_sentence, len(chunk.sentences)
        assert chunk.ordinal == ordinal and chunk.article_id == "a1"
        assert count >= 1
        assert chunk.sentences == tuple(sentences[first : first + count])
        body = text[chunk.start : chunk.end]
        assert body.startswith(chunk.sentences[0].slice(text))
        assert body.endswith(chunk.sentences[-1].slice(text))
        assert (chunk.start, chunk.end) == (chunk.sentences[0].start, chunk.sentences[-1].end)
        covered.update(range(first, first + count))
    assert covered == set(range(len(sentences)))
    for previous, current in zip(chunks, chunks[1:]):
        previous_end = previous.first_sentence + len(previous.sentences)
        shared = previous_end - current.first_sentence
        assert shared == min(chunk_overlap, len(previous.sentences) - 1)
        assert current.first_sentence + len(current.sentences) > previous_end


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(min_value=1, max_value=40))
def test_chunks_without_overlap_are_greedy_within_budget(text: str, chunk_tokens: int) -> None:
    sentences, chunks = chunk_article("a1", text, chunk_tokens=chunk_tokens, chunk_overlap=0)
    sizes = [count_tokens(span.slice(text)) for span in sentences]
    for chunk in chunks:
        first, end = chunk.first_sentence, chunk.first_sentence + len(chunk.sentences)
        total = sum(sizes[first:end])
        assert len(chunk.sentences) == 1 or total <= chunk_tokens
        if end < len(sizes):  # it stopped only because the next sentence would not fit
            assert total + sizes[end] > chunk_tokens


# --- Real news text ------------------------------------------------------------
def test_seed_article_sentences() -> None:
    text = SEED.read_text(encoding="utf-8")
    found = sentences_of(text)
    assert found[0] == "Russia and Israel resume military cooperation in Syria"
    herzog = [s for s in found if s.startswith("Due to the growing Russian influence")]
    assert len(herzog) == 1 and herzog[0].endswith("Jewish state.’")
    assert any(s.startswith("Sergei Lavrov said, “After the tragic accident") for s in found)
    assert any(s.startswith("According to Isaac Herzog, “I welcome") for s in found)
    assert found[-1].endswith("such as Hamas.”")


def test_seed_article_chunks() -> None:
    text = SEED.read_text(encoding="utf-8")
    sentences, chunks = chunk_article("seed", text, chunk_tokens=80, chunk_overlap=1)
    assert len(chunks) > 1
    assert chunks[0].sentences[0] == sentences[0]
    assert chunks[-1].sentences[-1] == sentences[-1]


# --- Handwritten cases ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith went to Washington. He stayed.",
            ["Mr. Smith went to Washington.", "He stayed."],
        ),
        ("Dr. Jones and Prof. Lee met Gov. Brown.", ["Dr. Jones and Prof. Lee met Gov. Brown."]),
        ("The U.S. economy grew. Prices fell.", ["The U.S. economy grew.", "Prices fell."]),
        (
            "He moved to the U.S. The next day he left.",
            ["He moved to the U.S.", "The next day he left."],
        ),
        (
            "Talks at the U.N. Security Council stalled.",
            ["Talks at the U.N. Security Council stalled."],
        ),
        (
            "Growth was 3.5 percent. Costs hit $1.2bn. Fine.",
            ["Growth was 3.5 percent.", "Costs hit $1.2bn.", "Fine."],
        ),
        ("George W. Bush spoke. Then he left.", ["George W. Bush spoke.", "Then he left."]),
        ("It was Plan B. The rest failed.", ["It was Plan B.", "The rest failed."]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("She said “Go home.” They did.", ["She said “Go home.”", "They did."]),
        (
            "It ended (as expected.) Then rain came.",
            ["It ended (as expected.)", "Then rain came."],
        ),
        ("It was [sic.] Next one.", ["It was [sic.]", "Next one."]),
        ("Really?! Yes. Why? Because!", ["Really?!", "Yes.", "Why?", "Because!"]),
        (
            "He waited... and waited. Then… Nothing.",
            ["He waited... and waited.", "Then…", "Nothing."],
        ),
        (
            "Apples, pears, etc. are fruit. Bread etc. The end.",
            ["Apples, pears, etc. are fruit.", "Bread etc.", "The end."],
        ),
        ("Fruit, e.g. Apples, is good.", ["Fruit, e.g. Apples, is good."]),
        (
            "Smith vs. Jones was heard on Jan. 5 at No. 10 Downing St. London.",
            ["Smith vs. Jones was heard on Jan. 5 at No. 10 Downing St. London."],
        ),
        (
            "Shares of Apple Inc. rose. Apple Inc. The deal closed.",
            ["Shares of Apple Inc. rose.", "Apple Inc.", "The deal closed."],
        ),
        ("He joined NATO. Russia objected.", ["He joined NATO.", "Russia objected."]),
        ("The A.B.C. network aired it.", ["The A.B.C. network aired it."]),
        ("Revenue fell 5%. 2019 was worse.", ["Revenue fell 5%.", "2019 was worse."]),
        ("He left. “Why?” she asked.", ["He left.", "“Why?” she asked."]),
        ("no split. lowercase next", ["no split. lowercase next"]),
        ("No space.Here", ["No space.Here"]),
    ],
)
def test_handwritten_cases(text: str, expected: list[str]) -> None:
    assert sentences_of(text) == expected


def test_newlines_always_split() -> None:
    text = "Headline without a full stop\nBody text starts here\r\n\n- item one\n- item two\n"
    assert sentences_of(text) == [
        "Headline without a full stop",
        "Body text starts here",
        "- item one",
        "- item two",
    ]


def test_empty_and_whitespace_only() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t \n") == []


def test_offsets_point_into_original_text() -> None:
    text = "  First one.   Second one!\n\n  Third?  "
    spans = split_sentences(text)
    assert [(s.start, s.end) for s in spans] == [(2, 12), (15, 26), (30, 36)]


def test_long_terminator_runs_stay_fast() -> None:
    # A pathological run must not make the candidate regex quadratic.
    text = "a" + "." * 200_000 + " B" + ("word " * 100_000)
    assert len(split_sentences(text)) == 2


# --- Chunking edge cases ----------------------------------------------------------
def test_chunking_long_sentence_is_its_own_chunk() -> None:
    text = "Short. Long" + " word" * 50 + ". Tail."
    sentences, chunks = chunk_article("x", text, chunk_tokens=10, chunk_overlap=0)
    assert [len(c.sentences) for c in chunks] == [1, 1, 1]
    assert chunks[1].sentences[0] == sentences[1]


def test_chunking_huge_overlap_terminates_and_covers() -> None:
    text = " ".join(f"Sentence number {i}." for i in range(30))
    sentences, chunks = chunk_article("x", text, chunk_tokens=12, chunk_overlap=100)
    assert chunks[-1].sentences[-1] == sentences[-1]
    assert len(chunks) <= len(sentences)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_chunking_overlap_counts() -> None:
    text = " ".join(f"Sentence number {i}." for i in range(10))  # 4 tokens each
    _, chunks = chunk_article("x", text, chunk_tokens=12, chunk_overlap=1)
    assert [(c.first_sentence, len(c.sentences)) for c in chunks] == [
        (0, 3), (2, 3), (4, 3), (6, 3), (8, 2),
    ]
    assert chunks[1].id == "x#1"


def test_chunking_empty_and_invalid() -> None:
    assert chunk_sentences("x", "", [], chunk_tokens=10, chunk_overlap=2) == []
    with pytest.raises(ValueError):
        chunk_sentences("x", "", [], chunk_tokens=0, chunk_overlap=0)
    with pytest.raises(ValueError):
        chunk_sentences("x", "", [], chunk_tokens=5, chunk_overlap=-1)


def test_count_tokens() -> None:
    assert count_tokens("He said “stop.”") == 6
    assert count_tokens("") == 0
