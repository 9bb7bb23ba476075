"""Fixture files: the format, and one-line errors naming file, line and field. No model is loaded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from quotebot.bot.regress.fixtures import FixtureError, find_fixture_files, load_fixture
from quotebot.bot.regress.pytest_plugin import glob_to_regex
from quotebot.bot.regress.selection import SelectionError, compile_selection
from quotebot.index.yamlerrors import YamlLocatedError, format_loc, nearest_line, parse_yaml

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "qa_test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(FixtureError) as error:
        load_fixture(path)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_the_example_of_the_issue_loads(tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    path = write(
        tmp_path,
        """
        corpus: articles/
        cases:
          - question: What did Herzog ask Lavrov?
            expect:
              quote_contains: ["blind eye"]
              article: seed-article-id
          - question: What is the capital of Australia?
            expect:
              abstain: true
          - conversation:
              - question: What did Herzog ask Lavrov?
              - question: And what did he say about Hezbollah?
                expect: {quote_contains: ["Hezbollah"]}
        """,
    )
    fixture = load_fixture(path)
    assert fixture.corpus == ((tmp_path / "articles").resolve(),)
    assert [case.line for case in fixture.cases] == [3, 7, 10]
    first, abstain, conversation = (case.case for case in fixture.cases)
    assert first.turns[0].expect is not None and first.turns[0].expect.quote_contains == ("blind eye",)
    assert abstain.turns[0].expect is not None and abstain.turns[0].expect.abstain is True
    assert [turn.question for turn in conversation.turns] == [
        "What did Herzog ask Lavrov?",
        "And what did he say about Hezbollah?",
    ]
    assert conversation.turns[0].expect is None
    assert fixture.snapshot_path == tmp_path / "qa_test.snapshot.json"


def test_every_key_and_the_short_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        cases:
          - question: "  Who   cut the ribbon? "
            tags: bridge
            skip: waiting for the new corpus
            expect:
              quote_contains: Ines Duarte
              quote_contains_all: [cut the ribbon, engineers]
              not_contains: [Tomas Berg]
              article: harbour.txt
              min_confidence: 0.5
              within_top: 2
              abstain: false
        """,
    )
    (case,) = load_fixture(path).cases
    assert case.case.question == "Who   cut the ribbon?"
    assert case.tags == ("bridge",)
    assert case.case.skip == "waiting for the new corpus"
    expect = case.case.turns[0].expect
    assert expect is not None
    assert expect.quote_contains == ("Ines Duarte",)
    assert expect.quote_contains_all == ("cut the ribbon", "engineers")
    assert (expect.article, expect.min_confidence, expect.within_top, expect.abstain) == ("harbour.txt", 0.5, 2, False)
    assert load_fixture(path).corpus is None  # no corpus: the configured index


def test_repeated_questions_get_distinct_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - question: Who?\n  - question: Who?\n  - question: What?\n")
    assert [case.key for case in load_fixture(path).cases] == ["Who?", "Who? (2)", "What?"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "cases:\n  - question: Who?\n    expect:\n      quote_contain: [x]\n",
            ":4: cases[0].expect.quote_contain: unknown key (did you mean quote_contains?)",
            id="unknown-key",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    expct: {abstain: true}\n",
            ":3: cases[0].expct: unknown key (did you mean expect?)",
            id="unknown-case-key",
        ),
        pytest.param("casez: []\n", ":1: casez: unknown key (did you mean cases?)", id="unknown-top-key"),
        pytest.param(
            "cases:\n  - question: Who?\n    expect:\n      abstain: maybe\n",
            ":4: cases[0].expect.abstain: Input should be a valid boolean",
            id="wrong-type-bool",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    expect:\n      within_top: two\n      quote_contains: x\n",
            ":4: cases[0].expect.within_top: Input should be a valid integer",
            id="wrong-type-int",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    expect:\n      quote_contains:\n        - fine\n        - 42\n",
            ":6: cases[0].expect.quote_contains[1]: Input should be a valid string",
            id="wrong-type-list-item",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n  - expect:\n      abstain: true\n",
            ":3: cases[1]: missing question (a case has `question`, or `conversation` with a list of turns)",
            id="missing-question",
        ),
        pytest.param(
            "cases:\n  - conversation:\n      - question: Who?\n      - expect: {abstain: true}\n",
            ":4: cases[0].conversation[1].question: required key is missing",
            id="missing-turn-question",
        ),
        pytest.param(
            "cases:\n  - question: '   '\n",
            ":2: cases[0].question: String should have at least 1 character",
            id="blank",
        ),
        pytest.param("cases: []\n", ":1: cases: must not be empty", id="no-cases"),
        pytest.param(
            "cases:\n  - question: Who?\n    expect: {quote_contains: []}\n",
            ":3: cases[0].expect.quote_contains: must not be empty",
            id="empty-list",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    expect: {abstain: true, quote_contains: x}\n",
            ":3: cases[0].expect: abstain: true cannot go with quote_contains (an abstention has no quotes)",
            id="abstain-with-quotes",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    expect: {within_top: 2}\n",
            ":3: cases[0].expect: within_top needs one of quote_contains, quote_contains_all, article, not_contains",
            id="within-top-alone",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    conversation:\n      - question: What?\n",
            ":2: cases[0]: a case has `question` or `conversation`, not both",
            id="question-and-conversation",
        ),
        pytest.param(
            "cases:\n  - conversation:\n      - question: What?\n    expect: {abstain: true}\n",
            ":2: cases[0]: in a conversation, `expect` goes under each turn",
            id="conversation-expect",
        ),
        pytest.param(
            "cases:\n  - question: Who?\n    skip: true\n",
            ":3: cases[0].skip: Input should be a valid string",
            id="skip-bool",
        ),
        pytest.param(
            "cases:\n  - question: a\n    question: b\n", ":3: cases[0].question: duplicate key", id="duplicate-key"
        ),
        pytest.param("cases: [\n  - question: a\n", ":2: expected the node content, but found '-'", id="bad-yaml"),
        pytest.param(
            "- question: a\n", ":1: a fixture file is a mapping with `cases` (and optionally `corpus`)", id="list"
        ),
        pytest.param("", ":1: the fixture file is empty: it needs `cases`", id="empty"),
        pytest.param(
            "corpus: nowhere/\ncases:\n  - question: a\n",
            ":1: corpus: no such file or folder: nowhere/",
            id="missing-corpus",
        ),
    ],
)
def test_a_malformed_fixture_is_one_line_with_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}{expected}"), message


def test_more_errors_are_counted_not_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - question: 1\n    expect: {abstain: 2}\n")
    assert error_of(path) == f"{path}:2: cases[0].question: Input should be a valid string (and 1 more)"


def test_messages_name_the_file_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "cases: 3\n")
    with pytest.raises(FixtureError, match=r"^tests/qa_x\.yaml:1: cases: "):
        load_fixture(path, display="tests/qa_x.yaml")


def test_unreadable_fixture_files(tmp_path: Path) -> None:
    assert error_of(tmp_path / "qa_nope.yaml") == f"{tmp_path / 'qa_nope.yaml'}: fixture file not found"
    binary = tmp_path / "qa_binary.yaml"
    binary.write_bytes(b"cases: \xff\xfe\n")
    assert "cannot read fixture file" in error_of(binary)


def test_folders_are_searched_for_qa_files(tmp_path: Path) -> None:
    for name in ("qa_b.yaml", "sub/qa_a.yml", "sub/other.yaml", ".hidden/qa_c.yaml", "qa_b.snapshot.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("cases: []\n")
    found = find_fixture_files([tmp_path])
    assert sorted(path.relative_to(tmp_path).as_posix() for path in found) == ["qa_b.yaml", "sub/qa_a.yml"]


def test_the_project_fixture_is_rich_enough() -> None:
    fixture = load_fixture(ROOT / "tests" / "fixtures" / "qa_seed.yaml")
    cases = [case.case for case in fixture.cases]
    assert len(cases) >= 15
    abstentions = [c for c in cases if c.expect is not None and c.expect.abstain is True]
    assert len(abstentions) >= 3
    assert any(c.conversation is not None and len(c.conversation) >= 2 for c in cases)
    assert fixture.corpus == ((ROOT / "seeds").resolve(),)


# -- shared YAML helper ------------------------------------------------------------------


def test_yaml_lines_cover_keys_and_list_items() -> None:
    data, lines = parse_yaml("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n", "t.yaml")
    assert data == {"a": {"b": 1, "c": ["x", {"y": 2}]}}
    assert lines[("a", "b")] == 2
    assert lines[("a", "c", "1")] == 5
    assert lines[("a", "c", "1", "y")] == 5
    assert nearest_line(("a", "c", 0, "missing"), lines) == 4
    assert nearest_line(("zzz",), lines) is None
    assert format_loc(("cases", 2, "expect", "abstain")) == "cases[2].expect.abstain"
    assert format_loc(()) == "(top level)"


def test_yaml_syntax_errors_have_a_line() -> None:
    with pytest.raises(YamlLocatedError) as error:
        parse_yaml("a: 1\nb: c: d\n", "t.yaml")
    assert str(error.value) == "t.yaml:2: mapping values are not allowed here"


# -- -k and the plugin's file pattern ----------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("", ["Who cut the ribbon?", "What did the growers ask for?", "Who is Tomas Berg? → What did he lose?"]),
        ("ribbon", ["Who cut the ribbon?"]),
        ("RIBBON", ["Who cut the ribbon?"]),
        ("cut the", ["Who cut the ribbon?"]),
        ("orchard", ["What did the growers ask for?", "Who is Tomas Berg? → What did he lose?"]),
        ("orchard and not lose", ["What did the growers ask for?"]),
        ("bridge or (orchard and conversation)", ["Who cut the ribbon?", "Who is Tomas Berg? → What did he lose?"]),
        ("he lose", ["Who is Tomas Berg? → What did he lose?"]),
        ('"not"', []),
    ],
)
def test_k_selects_by_question_text_or_tag(tmp_path: Path, expression: str, selected: list[str]) -> None:
    path = write(
        tmp_path,
        """
        cases:
          - question: Who cut the ribbon?
            tags: [bridge]
          - question: What did the growers ask for?
            tags: [orchard]
          - tags: [orchard, conversation]
            conversation:
              - question: Who is Tomas Berg?
              - question: What did he lose?
        """,
    )
    select = compile_selection(expression)
    assert [case.key for case in load_fixture(path).cases if select(case)] == selected


def test_k_tags_match_whole_tags_only(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - question: Who?\n    tags: [smoke]\n")
    (case,) = load_fixture(path).cases
    assert compile_selection("smoke")(case)
    assert not compile_selection("smo")(case)


@pytest.mark.parametrize("expression", ["(ribbon", "ribbon and", "or ribbon", "ribbon )", "not"])
def test_k_syntax_errors(expression: str) -> None:
    with pytest.raises(SelectionError, match=r"^-k "):
        compile_selection(expression)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("tests/**/qa_*.yaml", "tests/qa_a.yaml", True),
        ("tests/**/qa_*.yaml", "tests/fixtures/deep/qa_a.yaml", True),
        ("tests/**/qa_*.yaml", "tests/fixtures/a_qa_a.yaml", False),
        ("tests/**/qa_*.yaml", "other/qa_a.yaml", False),
        ("tests/**/qa_*.yaml", "tests/qa_a.yml", False),
        ("tests/*.yaml", "tests/sub/qa_a.yaml", False),
        ("qa_*.yml", "deep/down/qa_a.yml", True),
        ("./checks/qa-?.yaml", "checks/qa-1.yaml", True),
    ],
)
def test_fixture_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(path)) is matches
