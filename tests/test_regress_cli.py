"""``quotebot regress``: output, exit codes, -k, --json, --junit, --update and --fail-on-change.

Most tests call the CLI's ``main`` in-process with the session's model put in the runner's
model cache; two run the installed ``quotebot`` for real exit codes and output (one of them
loads the model, the other fails before it would).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from quotebot.bot.cli import main
from quotebot.bot.regress import runner
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parent / "fixtures" / "regress_corpus"
QUOTEBOT = Path(sys.executable).parent / "quotebot"

FIXTURE = """
corpus: articles/
cases:
  - question: How much did the bridge repair cost?
    tags: [bridge]
    expect: {quote_contains: 48 million euros, article: harbour.txt}
  - question: Who cut the ribbon?
    tags: [bridge]
    expect: {quote_contains: Tomas Berg}
  - question: Who won the Tour de France?
    expect: {abstain: true}
  - question: What will happen to apple prices?
    skip: the orchard story is being rewritten
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder, settings: Settings) -> Path:
    """A project folder: config.yaml, articles/ and qa_demo.yaml; the CLI shares the loaded model."""
    monkeypatch.setitem(runner._EMBEDDERS, (settings.index.model, settings.index.batch_size), embedder)
    shutil.copytree(CORPUS, tmp_path / "articles")
    (tmp_path / "config.yaml").write_text("index:\n  index_dir: .quotebot/index\n", encoding="utf-8")
    write(tmp_path / "qa_demo.yaml", FIXTURE)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index cache for the test session (test_regress_* share it): each corpus is built once."""
    return tmp_path_factory.getbasetemp() / "regress-cache"


def regress(project: Path, *args: str, cache: Path | None = None) -> int:
    """``quotebot --config project/config.yaml regress ARGS``; ``cache`` saves rebuilding the same corpus."""
    options = ["--cache-dir", str(cache)] if cache else []
    return main(["--config", str(project / "config.yaml"), "regress", *args, *options])


def test_table_details_and_the_summary_alone_on_the_last_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = regress(project, str(project / "qa_demo.yaml"))
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.rstrip("\n").splitlines()
    assert lines[-1] == "2 passed, 1 failed, 1 skipped"
    assert lines[0].split() == ["STATUS", "QUESTION", "EXPECTED", "GOT"]
    assert any(line.startswith("FAIL") and "Who cut the ribbon?" in line for line in lines)
    assert f"FAIL {project / 'qa_demo.yaml'}:6: Who cut the ribbon?" in lines
    assert '  - first quote does not contain "Tomas Berg"' in lines
    # The corpus was indexed beside the configured index, once.
    assert "indexing 3 articles into" in err
    assert len([p for p in (project / ".quotebot" / "regress-cache").iterdir() if p.name != "query-encoders"]) == 1


def test_exit_0_when_all_selected_cases_pass_and_a_rerun_only_reasks(
    project: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    assert regress(project, str(project), "-k", "bridge and not ribbon", cache=shared_cache) == 0
    out, err = capsys.readouterr()
    assert out.rstrip("\n").splitlines()[-2:] == ["3 of 4 cases deselected by -k", "1 passed, 0 failed"]
    assert regress(project, str(project), "-k", "tour de france or apple", cache=shared_cache) == 0
    out, err = capsys.readouterr()
    assert out.rstrip("\n").splitlines()[-1] == "1 passed, 0 failed, 1 skipped"
    assert "indexing" not in err


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path) -> None:
    assert regress(project, str(project / "qa_demo.yaml"), "--json", cache=shared_cache) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["summary"] == {"passed": 2, "failed": 1, "skipped": 1, "changed": 0}
    ribbon = document["cases"][1]
    assert (ribbon["case"], ribbon["status"], ribbon["line"]) == ("Who cut the ribbon?", "failed", 6)
    assert ribbon["failures"] == ['first quote does not contain "Tomas Berg"']
    answer = ribbon["turns"][0]["answer"]
    assert answer["answered"] and "Mayor Ines Duarte" in answer["quotes"][0]["text"]
    assert err.rstrip("\n").splitlines()[-1] == "2 passed, 1 failed, 1 skipped"


def test_junit_file(project: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path) -> None:
    target = project / "out" / "regress.xml"
    regress(project, str(project / "qa_demo.yaml"), "--junit", str(target), cache=shared_cache)
    assert f"wrote JUnit XML to {target}" in capsys.readouterr().out
    suite = ET.parse(target).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")


def test_update_then_changes_are_reported_and_fail_only_on_request(
    project: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    fixture = write(
        project / "qa_demo.yaml",
        """
        corpus: articles/
        cases:
          - question: How much did the bridge repair cost?
            expect: {quote_contains: bridge reopened}
        """,
    )
    assert regress(project, str(fixture), "--update", cache=shared_cache) == 0
    snapshot = project / "qa_demo.snapshot.json"
    assert f"updated {snapshot}" in capsys.readouterr().out
    assert "48 million euros" in snapshot.read_text(encoding="utf-8")

    article = project / "articles" / "harbour.txt"
    article.write_text(article.read_text(encoding="utf-8").replace("48 million", "52 million"), encoding="utf-8")
    assert regress(project, str(fixture), cache=shared_cache) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[-2:] == [
        "1 answer changed against the snapshot (--fail-on-change makes that a failure)",
        "1 passed, 0 failed",
    ]
    assert any(line.startswith("changed") and "How much did the bridge repair cost?" in line for line in lines)
    assert "    -    years and cost 48 million euros." in lines
    assert "    +    years and cost 52 million euros." in lines

    assert regress(project, str(fixture), "--fail-on-change", cache=shared_cache) == 1
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[-1] == "0 passed, 1 failed"
    assert "  - answer changed against the snapshot (--fail-on-change)" in lines

    # Recording is not failing.
    assert regress(project, str(fixture), "--update", "--fail-on-change", cache=shared_cache) == 0
    assert "52 million euros" in snapshot.read_text(encoding="utf-8")
    capsys.readouterr()
    assert regress(project, str(fixture), "--fail-on-change", cache=shared_cache) == 0


def test_bad_fixtures_exit_2_with_one_line_each(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(project / "qa_bad.yaml", "cases:\n  - question: Who?\n    expect:\n      abstian: true\n")
    worse = write(project / "qa_worse.yaml", "cases:\n  - tags: [x]\n")
    assert regress(project, str(project / "qa_demo.yaml"), str(bad), str(worse)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"quotebot: error: {bad}:4: cases[0].expect.abstian: unknown key (did you mean abstain?)",
        f"quotebot: error: {worse}:2: cases[0]: missing question (a case has `question`, "
        "or `conversation` with a list of turns)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "nothing like this"], "quotebot: error: -k 'nothing like this' selects none of the 4 cases"),
        (["-k", "bridge and"], "quotebot: error: -k 'bridge and': expected a word, 'not' or '(', found the end"),
    ],
)
def test_bad_selections_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert regress(project, str(project / "qa_demo.yaml"), *args) == 2
    assert capsys.readouterr().err.strip() == message


def test_missing_fixture_and_empty_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty").mkdir()
    assert regress(project, str(project / "qa_nope.yaml"), str(project / "empty")) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"quotebot: error: {project / 'qa_nope.yaml'}: fixture file not found",
        f"quotebot: error: {project / 'empty'}: no qa_*.yaml fixture files in this folder",
    ]


def test_a_damaged_snapshot_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "qa_demo.snapshot.json").write_text('{"format": 1, "cases": [{"case": 3}]}', encoding="utf-8")
    assert regress(project, str(project / "qa_demo.yaml")) == 2
    assert capsys.readouterr().err == (
        f"quotebot: error: {project / 'qa_demo.snapshot.json'}: not a quotebot snapshot (format 1): rerun with --update\n"
    )


# -- the installed command ---------------------------------------------------------------


def test_installed_command_rejects_a_bad_fixture_with_exit_2(tmp_path: Path) -> None:
    bad = write(tmp_path / "qa_bad.yaml", "cases:\n  - question: [not, a, string]\n")
    done = subprocess.run([str(QUOTEBOT), "regress", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"quotebot: error: {bad}:2: cases[0].question: Input should be a valid string\n"


def test_installed_command_runs_cases_and_writes_junit(tmp_path: Path, shared_cache: Path) -> None:
    shutil.copytree(CORPUS, tmp_path / "articles")
    fixture = write(tmp_path / "qa_demo.yaml", FIXTURE)
    junit = tmp_path / "junit.xml"
    command = [str(QUOTEBOT), "regress", fixture.name, "--junit", str(junit), "--cache-dir", str(shared_cache)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1] == "2 passed, 1 failed, 1 skipped"
    assert "FAIL qa_demo.yaml:6: Who cut the ribbon?" in done.stdout
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "1")
