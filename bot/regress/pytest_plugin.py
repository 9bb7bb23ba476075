"""pytest plugin: QA fixture files collected as tests, one item per case.

Registered through the ``pytest11`` entry point, so installing quotebot is enough. YAML
files whose path (relative to the rootdir) matches an ini ``quotebot_fixtures`` pattern
(default ``tests/**/qa_*.yaml``) become test files; each case is an item named by its
question, failing with the same report ``quotebot regress`` prints.

Settings (``[tool.pytest.ini_options]`` or pytest.ini):

- ``quotebot_fixtures``: glob patterns, one per line (``**`` spans folders).
- ``quotebot_config``: the config file (default: ``config.yaml`` in the rootdir, if any).
- ``quotebot_cache_dir``: where fixture corpora are indexed (default: beside the index).
- ``quotebot_fail_on_change``: answers that differ from the snapshot fail (default false).

Options: ``--quotebot-update`` records the answers in the snapshot files;
``--quotebot-fail-on-change`` is the ini key for one run.

Nothing heavy is imported until a fixture file is collected (its YAML and pydantic) or a
case runs (the bots, once per session; torch only to build a corpus index): a test run
without fixture files never imports torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from quotebot.index.errors import ExitCode, QuotebotError, is_user_error

if TYPE_CHECKING:
    from quotebot.bot.regress.fixtures import FixtureCase, FixtureFile
    from quotebot.bot.regress.runner import CaseResult, RegressionSession

DEFAULT_PATTERN = "tests/**/qa_*.yaml"


@dataclass
class _State:
    patterns: list[re.Pattern[str]]
    session: RegressionSession | None = None
    results: list[CaseResult] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quotebot", "quotebot QA fixtures")
    group.addoption(
        "--quotebot-update",
        action="store_true",
        default=False,
        help="record the answers of the QA fixture cases that ran in their snapshot files",
    )
    group.addoption(
        "--quotebot-fail-on-change",
        action="store_true",
        default=False,
        help="QA cases whose answers differ from the snapshot fail (ini: quotebot_fail_on_change)",
    )
    parser.addini(
        "quotebot_fixtures",
        type="linelist",
        default=[DEFAULT_PATTERN],
        help=f"glob patterns, relative to the rootdir, of QA fixture files to collect (default {DEFAULT_PATTERN})",
    )
    parser.addini("quotebot_config", default="", help="quotebot config file (default: rootdir/config.yaml)")
    parser.addini("quotebot_cache_dir", default="", help="where QA fixture corpora are indexed (default: by the index)")
    parser.addini("quotebot_fail_on_change", type="bool", default=False, help="QA answers unlike the snapshot fail")


def pytest_configure(config: pytest.Config) -> None:
    patterns = [glob_to_regex(pattern) for pattern in config.getini("quotebot_fixtures") if pattern.strip()]
    config.stash[_STATE] = _State(patterns)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    state = parent.config.stash.get(_STATE, None)
    if state is None or not _matches(file_path, parent.config.rootpath, state.patterns):
        return None
    return QAFile.from_parent(parent, path=file_path)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: ``*`` and ``?`` stay within a folder, ``**/`` spans any number of folders.

    A pattern without ``/`` matches the file name in any folder.
    """
    pattern = pattern.strip().replace(os.sep, "/").removeprefix("./")
    if "/" not in pattern:
        pattern = f"**/{pattern}"
    parts, position = [], 0
    while position < len(pattern):
        if pattern.startswith("**/", position):
            parts.append("(?:.*/)?")
            position += 3
        elif pattern.startswith("**", position):
            parts.append(".*")
            position += 2
        elif pattern[position] == "*":
            parts.append("[^/]*")
            position += 1
        elif pattern[position] == "?":
            parts.append("[^/]")
            position += 1
        else:
            parts.append(re.escape(pattern[position]))
            position += 1
    return re.compile("".join(parts) + r"\Z")


def _matches(path: Path, rootpath: Path, patterns: list[re.Pattern[str]]) -> bool:
    try:
        relative = path.resolve().relative_to(rootpath.resolve()).as_posix()
    except ValueError:
        relative = path.as_posix()
    return any(pattern.match(relative) for pattern in patterns)


class QACaseFailed(QuotebotError):
    """A case whose answers do not meet its expectations (or changed, with fail-on-change)."""

    exit_code = ExitCode.FAILED

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.failures[0] if result.failures else "failed")
        self.result = result


class QAFile(pytest.File):
    """A QA fixture file: one item per case."""

    def collect(self) -> Any:
        from quotebot.bot.regress.fixtures import load_fixture

        fixture = load_fixture(self.path, display=_display(self.path, self.config.rootpath), project_root=self.config.rootpath)
        for case in fixture.cases:
            item = QACase.from_parent(self, name=case.key, fixture=fixture, case=case)
            if case.case.skip is not None:
                item.add_marker(pytest.mark.skip(reason=case.case.skip))
            item.extra_keyword_matches.update(case.tags)
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if _is_one_line(excinfo.value):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class QACase(pytest.Item):
    """One case of a fixture file, asked through the session's shared bot."""

    def __init__(self, *, fixture: FixtureFile, case: FixtureCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixture = fixture
        self.case = case

    def runtest(self) -> None:
        from quotebot.bot.regress.runner import FAILED

        state = self.config.stash[_STATE]
        result = _session(self.config).run_case(self.fixture, self.case)
        state.results.append(result)
        if result.status == FAILED:
            raise QACaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, QACaseFailed):
            from quotebot.bot.regress.report import case_report

            return case_report(excinfo.value.result, header=False)
        if _is_one_line(excinfo.value):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.fixture.display}:{self.case.line}: {self.case.label}"


def _session(config: pytest.Config) -> RegressionSession:
    """The run's one ``RegressionSession``: the model and bots load once, on the first case."""
    state = config.stash[_STATE]
    if state.session is None:
        from quotebot.bot.regress.runner import RegressionSession
        from quotebot.bot.settings import load_settings

        settings = load_settings(_config_file(config))
        cache_dir = config.getini("quotebot_cache_dir")
        state.session = RegressionSession(
            settings,
            cache_root=(config.rootpath / cache_dir).resolve() if cache_dir else None,
            fail_on_change=_fail_on_change(config),
            update=bool(config.getoption("quotebot_update")),
        )
    return state.session


def _fail_on_change(config: pytest.Config) -> bool:
    return bool(config.getoption("quotebot_fail_on_change") or config.getini("quotebot_fail_on_change"))


def _config_file(config: pytest.Config) -> Path | None:
    configured = config.getini("quotebot_config")
    if configured:
        return config.rootpath / configured
    default = config.rootpath / "config.yaml"
    return default if default.is_file() else None


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None and state.session is not None and state.session.update:
        state.written = state.session.write_snapshots()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or state.session is None:
        return
    from quotebot.bot.regress.report import case_report
    from quotebot.bot.regress.runner import FAILED

    changed = [r for r in state.results if r.change is not None and r.change.kind == "changed" and r.status != FAILED]
    if changed:
        terminalreporter.write_sep("=", f"quotebot: {len(changed)} answer(s) changed against snapshots")
        for result in changed:
            terminalreporter.write_line(case_report(result))
    for path in state.written:
        terminalreporter.write_line(f"quotebot: updated {_display(path, config.rootpath)}")


def _display(path: Path, rootpath: Path) -> str:
    try:
        return path.resolve().relative_to(rootpath.resolve()).as_posix()
    except ValueError:
        return str(path)


def _is_one_line(error: BaseException) -> bool:
    """A user's error (bad fixture, missing index, ...) reads as its one line; a bug keeps its traceback."""
    return is_user_error(error)
