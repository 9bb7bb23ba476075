"""The pytest plugin: fixture files collected as one item per case, with the CLI's messages.

Inner pytest runs are in-process (pytester) and share the session's loaded model through
the runner's model cache; only the no-torch check needs a fresh process.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from quotebot.bot.regress import runner
from quotebot.bot.regress.fixtures import load_fixture
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder

pytestmark = pytest.mark.e2e

pytest_plugins = ["pytester"]

CORPUS = Path(__file__).resolve().parent / "fixtures" / "regress_corpus"

FIXTURE = """
corpus: ../articles
cases:
  - question: How much did the bridge repair cost?
    tags: [bridge]
    expect: {quote_contains: 48 million euros}
  - question: Who cut the ribbon?
    tags: [bridge]
    expect: {quote_contains: Tomas Berg}
  - question: Who won the Tour de France?
    expect: {abstain: true}
  - question: What will happen to apple prices?
    skip: the orchard story is being rewritten
"""



@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index cache for the test session (test_regress_* share it): each corpus is built once."""
    return tmp_path_factory.getbasetemp() / "regress-cache"


@pytest.fixture
def ini(cache_root: Path) -> str:
    # In-process runs find the project's packages already imported: not worth a warning each.
    return f"[pytest]\nquotebot_cache_dir = {cache_root}\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"


@pytest.fixture
def project(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    embedder: Embedder,
    settings: Settings,
    cache_root: Path,
    ini: str,
) -> Path:
    monkeypatch.setitem(runner._EMBEDDERS, (settings.index.model, settings.index.batch_size), embedder)
    root = pytester.path
    shutil.copytree(CORPUS, root / "articles")
    pytester.makeini(ini)
    fixture = write(root / "tests" / "qa_demo.yaml", FIXTURE)
    write(root / "tests" / "not_a_fixture.yaml", "key: value\n")  # does not match qa_*.yaml
    # Index and ask once out here: an in-process pytest run forgets the modules it imported,
    # and native ones (onnxruntime) must not be imported a second time.
    session = runner.RegressionSession(settings, embedder=embedder, cache_root=cache_root)
    session.bot_for(load_fixture(fixture)).ask("Who cut the ribbon?")
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_one_item_per_case_for_files_matching_the_pattern(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_inprocess("--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        "tests/qa_demo.yaml::How much did the bridge repair cost?",
        "tests/qa_demo.yaml::Who cut the ribbon?",
        "tests/qa_demo.yaml::Who won the Tour de France?",
        "tests/qa_demo.yaml::What will happen to apple prices?",
    ]


def test_failures_read_like_the_cli(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*_ tests/qa_demo.yaml:6: Who cut the ribbon? _*",
            'first quote does not contain "Tomas Berg"',
            "  answer (confidence *):",
            "      Mayor Ines Duarte cut the ribbon*",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "def runtest" not in result.stdout.str()
    result.stdout.fnmatch_lines(["FAILED tests/qa_demo.yaml::Who cut the ribbon? - first quote does not contain*"])


def test_k_selects_cases_by_tag_and_question(pytester: pytest.Pytester, project: Path) -> None:
    pytester.runpytest_inprocess("-k", "bridge and not ribbon").assert_outcomes(passed=1, deselected=3)
    pytester.runpytest_inprocess("-k", "Tour").assert_outcomes(passed=1, deselected=3)


def test_a_malformed_fixture_is_a_one_line_collection_error(pytester: pytest.Pytester, project: Path) -> None:
    write(project / "tests" / "qa_bad.yaml", "cases:\n  - question: Who?\n    expect: {abstain: maybe}\n")
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=1)  # pytest runs nothing when collecting fails
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting tests/qa_bad.yaml*",
            "tests/qa_bad.yaml:3: cases[0].expect.abstain: Input should be a valid boolean",
        ]
    )
    assert "pydantic" not in result.stdout.str()


def test_snapshots_update_and_changes_are_summarised(pytester: pytest.Pytester, project: Path) -> None:
    write(project / "tests" / "qa_demo.yaml", FIXTURE.replace("48 million euros", "bridge reopened"))
    updated = pytester.runpytest_inprocess("--quotebot-update")
    updated.stdout.fnmatch_lines(["quotebot: updated tests/qa_demo.snapshot.json"])
    assert (project / "tests" / "qa_demo.snapshot.json").is_file()

    article = project / "articles" / "harbour.txt"
    article.write_text(article.read_text(encoding="utf-8").replace("48 million", "52 million"), encoding="utf-8")
    changed = pytester.runpytest_inprocess("-k", "bridge and not ribbon")
    changed.assert_outcomes(passed=1, deselected=3)
    changed.stdout.fnmatch_lines(
        [
            "*quotebot: 1 answer(s) changed against snapshots*",
            "changed tests/qa_demo.yaml:3: How much did the bridge repair cost?",
            "    -    years and cost 48 million euros.",
            "    +    years and cost 52 million euros.",
        ]
    )
    strict = pytester.runpytest_inprocess("-k", "bridge and not ribbon", "-o", "quotebot_fail_on_change=true")
    strict.assert_outcomes(failed=1, deselected=3)
    strict.stdout.fnmatch_lines(["answer changed against the snapshot (--fail-on-change)", "  answer changed*:"])


def test_the_pattern_is_configurable(pytester: pytest.Pytester, project: Path, ini: str) -> None:
    write(project / "checks" / "answers.yml", FIXTURE)
    pytester.makeini(ini + "quotebot_fixtures =\n    checks/*.yml\n")
    result = pytester.runpytest_inprocess("--collect-only", "-q")
    collected = [line for line in result.outlines if "::" in line]
    assert "checks/answers.yml::Who cut the ribbon?" in collected
    assert not [line for line in collected if line.startswith("tests/")]


def test_no_torch_is_imported_when_there_are_no_fixture_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_plain():
            assert "quotebot.bot.regress.pytest_plugin" in sys.modules  # the plugin is active...
            assert "torch" not in sys.modules  # ...and light
            assert "quotebot.bot.regress.runner" not in sys.modules
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
