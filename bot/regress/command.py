"""``quotebot regress FIXTURE ...``: run regression fixtures and say what passed, failed and changed.

Output: a table (status, question, expected, got), the details of every failure and
change, then the summary ``N passed, M failed`` (``, K skipped``) alone on the last line.
Exit status: 0 when every case passes, 1 when any fails, 2 for a bad fixture file,
snapshot, corpus or ``-k`` expression.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quotebot.bot.settings import Settings
    from quotebot.index.embedding import Embedder


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "regress",
        help="check answers against YAML fixture files (regression tests)",
        description="Ask every case of the fixture files and check the answers. "
        "Exit 0 when all pass, 1 when any fails, 2 for a bad fixture.",
        parents=[common],
    )
    parser.add_argument(
        "fixtures",
        nargs="+",
        type=Path,
        metavar="FIXTURE",
        help="fixture file (YAML); a folder means every qa_*.yaml below it",
    )
    parser.add_argument(
        "-k",
        dest="select",
        metavar="EXPR",
        default="",
        help="only cases whose question contains EXPR or that are tagged EXPR; combine with and, or, not, ( )",
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="let a fixture's corpus lie outside its folder and the project (default: refused)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML to FILE")
    parser.add_argument("--update", action="store_true", help="record the answers in each fixture's snapshot file")
    parser.add_argument("--fail-on-change", action="store_true", help="answers that differ from the snapshot fail")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where fixture corpora are indexed (default: regress-cache beside the configured index)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings, *, embedder: Embedder | None = None) -> int:
    """The ``regress`` handler; ``embedder`` lets tests share a loaded model."""
    from quotebot.index.errors import ExitCode, UserError
    from quotebot.bot.regress import report
    from quotebot.bot.safe_text import json_line
    from quotebot.bot.regress.corpus import CorpusError
    from quotebot.bot.regress.fixtures import FixtureError, find_fixture_files, load_fixture
    from quotebot.bot.regress.runner import FAILED, RegressionSession
    from quotebot.bot.regress.selection import SelectionError, compile_selection
    from quotebot.bot.regress.snapshot import SnapshotError

    try:
        select = compile_selection(args.select)
    except SelectionError as error:
        raise UserError(str(error), ExitCode.USAGE) from None
    fixtures, problems, seen = [], [], set()
    # The project: the config file's folder (relative settings paths are taken from there too).
    project_root = args.config.resolve().parent if getattr(args, "config", None) else Path.cwd()
    for given in args.fixtures:
        found = find_fixture_files([given])
        if not found:
            problems.append(f"{given}: no qa_*.yaml fixture files in this folder")
        for path in found:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                fixtures.append(load_fixture(path, project_root=project_root, allow_outside=args.allow_outside))
            except FixtureError as error:
                problems.append(str(error))
    if problems:
        for problem in problems:
            print(f"quotebot: error: {problem}", file=sys.stderr)
        return ExitCode.USAGE

    planned = [(fixture, case) for fixture in fixtures for case in fixture.cases]
    selected = [(fixture, case) for fixture, case in planned if select(case)]
    if not selected:
        raise UserError(f"-k {args.select!r} selects none of the {len(planned)} cases", ExitCode.USAGE)

    session = RegressionSession(
        settings,
        embedder=embedder,
        cache_root=args.cache_dir.resolve() if args.cache_dir else None,
        fail_on_change=args.fail_on_change,
        update=args.update,
        on_skip=lambda skipped: print(f"quotebot: warning: skipped {skipped}", file=sys.stderr),
        on_build=lambda articles, folder: print(
            f"quotebot: indexing {articles} article{'s' if articles != 1 else ''} into {folder}", file=sys.stderr
        ),
    )
    try:
        results = [session.run_case(fixture, case) for fixture, case in selected]
    except (CorpusError, SnapshotError) as error:
        raise UserError(str(error), ExitCode.USAGE) from None

    notes = []
    if len(selected) < len(planned):
        notes.append(f"{len(planned) - len(selected)} of {len(planned)} cases deselected by -k")
    changed = [r for r in results if r.change is not None and r.change.kind == "changed"]
    if changed and not args.update:
        advice = "--update records the new answers" if args.fail_on_change else "--fail-on-change makes that a failure"
        notes.append(f"{len(changed)} answer{'s' if len(changed) != 1 else ''} changed against the snapshot ({advice})")
    if args.update:
        for path in session.write_snapshots():
            notes.append(f"updated {path}")
    if args.junit:
        from quotebot.bot.regress.junit import write_junit

        write_junit(results, args.junit)
        notes.append(f"wrote JUnit XML to {args.junit}")

    summary = report.summary_line(results)
    if args.json:
        print(json_line(report.results_to_json(results), indent=2))
        for note in notes:
            print(note, file=sys.stderr)
        print(summary, file=sys.stderr)
    else:
        print(report.table(results))
        details = report.details(results)
        if details:
            print(f"\n{details}")
        print()
        for note in notes:
            print(note)
        print(summary)
    return ExitCode.FAILED if any(r.status == FAILED for r in results) else ExitCode.OK
