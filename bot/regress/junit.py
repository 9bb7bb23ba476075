"""JUnit XML for CI systems: one ``testsuite`` per fixture file, one ``testcase`` per case.

The layout is the one pytest's ``--junitxml`` writes (``testsuites`` > ``testsuite`` >
``testcase`` with ``failure``/``skipped``), which GitLab, Jenkins, GitHub reporters and
Azure read. A failure's message is its first line; its text is the full case report.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from quotebot.bot.regress.report import case_report, count, got_summary
from quotebot.bot.regress.runner import CHANGED, FAILED, PASSED, SKIPPED, CaseResult


def write_junit(results: Sequence[CaseResult], path: Path) -> None:
    root = junit_tree(results)
    ET.indent(root)
    pending = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(pending, encoding="utf-8", xml_declaration=True)
    os.replace(pending, path)


def junit_tree(results: Sequence[CaseResult]) -> ET.Element:
    suites = ET.Element("testsuites", name="quotebot regress")
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.fixture.display, []).append(result)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for name, file_results in by_file.items():
        counts = count(file_results)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(file_results)),
            failures=str(counts[FAILED]),
            errors="0",
            skipped=str(counts[SKIPPED]),
            time=f"{sum(r.seconds for r in file_results):.3f}",
            timestamp=stamp,
            hostname=socket.gethostname(),
        )
        for result in file_results:
            suite.append(_testcase(result))
    totals = count(results)
    suites.set("tests", str(len(results)))
    suites.set("failures", str(totals[FAILED]))
    suites.set("errors", "0")
    suites.set("skipped", str(totals[SKIPPED]))
    suites.set("time", f"{sum(r.seconds for r in results):.3f}")
    return suites


def _testcase(result: CaseResult) -> ET.Element:
    path = Path(result.fixture.display)
    classname = ".".join(part for part in path.with_suffix("").parts if part.strip("./\\"))
    case = ET.Element(
        "testcase",
        classname=classname,
        name=result.case.key,
        file=str(path),
        line=str(result.case.line),
        time=f"{result.seconds:.3f}",
    )
    if result.case.tags:
        properties = ET.SubElement(case, "properties")
        for tag in result.case.tags:
            ET.SubElement(properties, "property", name="tag", value=tag)
    status = result.status
    if status == SKIPPED:
        ET.SubElement(case, "skipped", message=result.skip_reason or "skipped")
    elif status == FAILED:
        failure = ET.SubElement(case, "failure", message=result.failures[0], type="AnswerMismatch")
        failure.text = case_report(result)
    if status in (PASSED, CHANGED, FAILED) and result.turns:
        out = [f"Q: {turn.question}\nA: {got_summary(turn.answer)}" for turn in result.turns]
        if status == CHANGED and result.change is not None:
            out.append(case_report(result))
        ET.SubElement(case, "system-out").text = "\n".join(out)
    return case
