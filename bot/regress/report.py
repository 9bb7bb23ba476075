"""What a regression run says: the table, each failure and change in detail, the summary line.

The same ``case_report`` text is what ``quotebot regress`` prints under the table and what
the pytest plugin shows for a failing item, so both speak with one voice.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

from quotebot.bot.regress.fixtures import Expect
from quotebot.bot.regress.runner import CHANGED, FAILED, PASSED, SKIPPED, CaseResult
from quotebot.bot.render import answer_to_text, source_line
from quotebot.bot.safe_text import json_line
from quotebot.retrieval.answer import Answer

_STATUS_WORD = {PASSED: "pass", FAILED: "FAIL", SKIPPED: "skip", CHANGED: "changed"}
_MIN_WIDTH = 100
_DEFAULT_WIDTH = 140  # when the output is not a terminal (CI logs are wide)
_INDENT = "  "


def summary_line(results: Sequence[CaseResult]) -> str:
    """``N passed, M failed`` and ``, K skipped`` when any were; changed cases count as passed."""
    counts = count(results)
    line = f"{counts[PASSED] + counts[CHANGED]} passed, {counts[FAILED]} failed"
    return line + (f", {counts[SKIPPED]} skipped" if counts[SKIPPED] else "")


def count(results: Sequence[CaseResult]) -> dict[str, int]:
    counts = dict.fromkeys((PASSED, FAILED, SKIPPED, CHANGED), 0)
    for result in results:
        counts[result.status] += 1
    return counts


def table(results: Sequence[CaseResult], width: int | None = None) -> str:
    """One row per question (a conversation has a row per turn): status, question, expected, got."""
    width = width or max(shutil.get_terminal_size((_DEFAULT_WIDTH, 24)).columns, _MIN_WIDTH)
    rows: list[tuple[str, str, str, Answer | str]] = []
    for result in results:
        turns = result.case.case.turns
        for number, turn in enumerate(turns):
            status = _STATUS_WORD[result.status] if number == 0 else ""
            question = f"{number + 1}. {turn.question}" if len(turns) > 1 else turn.question
            if result.skip_reason is not None:
                got: Answer | str = f"skipped: {result.skip_reason}" if number == 0 else ""
            else:
                got = result.turns[number].answer
            rows.append((status, question, expected_summary(turn.expect), got))
    header = ("STATUS", "QUESTION", "EXPECTED", "GOT")
    status_width = max([len(header[0])] + [len(row[0]) for row in rows])
    question_width = min(max([len(header[1])] + [len(row[1]) for row in rows]), 42)
    expected_width = min(max([len(header[2])] + [len(row[2]) for row in rows]), 30)
    got_width = max(width - status_width - question_width - expected_width - 6, 40)
    widths = (status_width, question_width, expected_width, got_width)
    lines = [_row(header, widths), _row(tuple("-" * w for w in widths), widths)]
    for status, question, expected, got in rows:
        got_text = got if isinstance(got, str) else got_summary(got, got_width)
        lines.append(_row((status, question, expected, got_text), widths))
    return "\n".join(line.rstrip() for line in lines)


def expected_summary(expect: Expect | None) -> str:
    """The expectations in a few words, for the table."""
    if expect is None:
        return "(not checked)"
    parts = []
    if expect.abstain is True:
        parts.append("abstain")
    elif expect.abstain is False:
        parts.append("an answer")
    if expect.quote_contains:
        parts.append(("any of " if len(expect.quote_contains) > 1 else "") + _quoted_list(expect.quote_contains))
    if expect.quote_contains_all:
        parts.append("all of " + _quoted_list(expect.quote_contains_all))
    if expect.article is not None:
        parts.append(f"from {_quoted(expect.article)}")
    if expect.not_contains:
        parts.append("not " + _quoted_list(expect.not_contains))
    if expect.within_top is not None:
        parts.append(f"in top {expect.within_top}")
    if expect.min_confidence is not None:
        parts.append(f"confidence >= {expect.min_confidence:g}")
    return "; ".join(parts) or "(not checked)"


def got_summary(answer: Answer, width: int | None = None) -> str:
    """The first quote with its source, or the abstention; within ``width`` the source keeps its place."""
    if not answer.answered or not answer.quotes:
        return f"abstained (confidence {answer.confidence:g})"
    first = answer.quotes[0]
    text, source = " ".join(first.text.split()), source_line(first)
    if width is None or len(text) + len(source) + 5 <= width:
        return f"{_quoted(text)} — {source}"
    budget = max(width * 2 // 5, 24)
    if len(source) > budget:  # shorten the title, keep the paragraph
        title = first.title or first.article_id
        shorter = _fit(title, max(len(title) - (len(source) - budget), 8))
        source = source_line(first.model_copy(update={"title": shorter}))
    return f"{_quoted(_fit(text, max(width - len(source) - 5, 10)))} — {source}"


def case_report(result: CaseResult, *, header: bool = True) -> str:
    """A failing or changed case in full: where it is, every failure, the answers, the diff.

    Without ``header`` (pytest names the case itself) the failures open the report, one a line.
    """
    fixture, case = result.fixture, result.case
    if header:
        lines = [f"{_STATUS_WORD[result.status]} {fixture.display}:{case.line}: {case.label}"]
        lines.extend(f"{_INDENT}- {failure}" for failure in result.failures)
    else:
        lines = list(result.failures)
    several = len(result.turns) > 1
    for number, turn in enumerate(result.turns, 1):
        if not turn.failures and not (result.status == FAILED and several):
            continue
        heading = f"answer to turn {number} ({turn.question})" if several else "answer"
        lines.append(f"{_INDENT}{heading} (confidence {turn.answer.confidence:g}):")
        lines.append(textwrap.indent(answer_to_text(turn.answer), _INDENT))
    if result.change is not None:
        lines.append(f"{_INDENT}{result.change.summary}{':' if result.change.diff else ''}")
        if result.change.diff:
            lines.append(textwrap.indent(result.change.diff, _INDENT * 2))
    return "\n".join(lines)


def details(results: Sequence[CaseResult]) -> str:
    """The ``case_report`` of every case that failed or changed, blank-line separated."""
    reports = [case_report(r) for r in results if r.status in (FAILED, CHANGED) or r.change is not None]
    return "\n\n".join(reports)


def results_to_json(results: Sequence[CaseResult]) -> dict[str, Any]:
    counts = count(results)
    return {
        "cases": [_case_json(result) for result in results],
        "summary": {
            "passed": counts[PASSED] + counts[CHANGED],
            "failed": counts[FAILED],
            "skipped": counts[SKIPPED],
            "changed": sum(1 for r in results if r.change is not None and r.change.kind == CHANGED),
        },
    }


def _case_json(result: CaseResult) -> dict[str, Any]:
    return {
        "file": result.fixture.display,
        "line": result.case.line,
        "case": result.case.key,
        "tags": list(result.case.tags),
        "status": result.status,
        "failures": result.failures,
        "skip_reason": result.skip_reason,
        "change": None if result.change is None else {"kind": result.change.kind, "diff": result.change.diff},
        "turns": [
            {"question": turn.question, "failures": list(turn.failures), "answer": turn.answer.model_dump(mode="json")}
            for turn in result.turns
        ],
        "seconds": round(result.seconds, 3),
    }


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(_fit(cell, width).ljust(width) for cell, width in zip(cells, widths))


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _quoted(text: str) -> str:
    return json_line(text)  # escapes every control character: article text prints inert


def _quoted_list(texts: Sequence[str]) -> str:
    return ", ".join(_quoted(text) for text in texts)
