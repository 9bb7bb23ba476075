"""The regression runner over a small corpus: messages, conversations, the index cache, snapshots, JUnit.

The corpus (tests/fixtures/regress_corpus: a bridge, an orchard and a library story) is
copied to tmp_path so edits and snapshots stay out of the repository. Every test shares
the session's loaded model.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from quotebot.bot.regress.fixtures import FixtureFile, load_fixture
from quotebot.bot.regress.junit import write_junit
from quotebot.bot.regress.report import case_report, summary_line, table
from quotebot.bot.regress.runner import CaseResult, RegressionSession
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder
from quotebot.index.onnx_encoder import OnnxQueryEncoder
from quotebot.index.settings import IndexSettings

# Every test here indexes a corpus and asks it through the runner: the full tier.
pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parent / "fixtures" / "regress_corpus"

FIXTURE = """
corpus: articles/
cases:
  - question: How much did the bridge repair cost?
    tags: [bridge]
    expect:
      quote_contains: 48 million euros
      article: harbour.txt
  - question: Who cut the ribbon?
    tags: [bridge]
    expect: {quote_contains: Tomas Berg}
  - question: Who won the Tour de France?
    expect: {abstain: true}
  - question: Which day is busiest for families at the library?
    expect:
      quote_contains: busiest day for families
      within_top: 2
  - question: What will happen to apple prices?
    skip: the orchard story is being rewritten
  - tags: [orchard]
    conversation:
      - question: Who is Tomas Berg?
        expect: {quote_contains: Farmer Tomas Berg}
      - question: What did he lose?
        expect: {quote_contains: lost nearly all of his early varieties}
"""

SMALL_FIXTURE = """
corpus: articles/
cases:
  - question: How much did the bridge repair cost?
    expect: {quote_contains: bridge reopened}
  - question: Who won the Tour de France?
    expect: {abstain: true}
  - question: What will happen to apple prices?
    skip: not now
"""


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index cache for the test session (test_regress_* share it): each corpus is built once."""
    return tmp_path_factory.getbasetemp() / "regress-cache"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(CORPUS, tmp_path / "articles")
    return tmp_path


def write_fixture(folder: Path, text: str = FIXTURE, name: str = "qa_demo.yaml") -> FixtureFile:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_fixture(path)


def run_all(session: RegressionSession, fixture: FixtureFile) -> list[CaseResult]:
    return [session.run_case(fixture, case) for case in fixture.cases]


@pytest.fixture
def session(settings: Settings, embedder: Embedder, cache_root: Path) -> RegressionSession:
    return RegressionSession(settings, embedder=embedder, cache_root=cache_root)


def test_cases_pass_fail_and_skip_with_useful_messages(workdir: Path, session: RegressionSession) -> None:
    fixture = write_fixture(workdir)
    results = run_all(session, fixture)
    assert [r.status for r in results] == ["passed", "failed", "passed", "passed", "skipped", "passed"]
    ribbon = results[1]
    assert ribbon.failures == ['first quote does not contain "Tomas Berg"']
    report = case_report(ribbon)
    assert report.splitlines()[0] == f"FAIL {fixture.path}:8: Who cut the ribbon?"
    assert '  - first quote does not contain "Tomas Berg"' in report
    # What came instead: the quote in full, with its source, as the chat shows it.
    assert "Mayor Ines Duarte cut the ribbon" in report
    assert "— Harbour bridge reopens after two-year repair, paragraph 1" in report
    assert summary_line(results) == "4 passed, 1 failed, 1 skipped"


def test_the_table_has_status_question_expected_and_got(workdir: Path, session: RegressionSession) -> None:
    results = run_all(session, write_fixture(workdir))
    lines = table(results, width=160).splitlines()
    assert lines[0].split() == ["STATUS", "QUESTION", "EXPECTED", "GOT"]
    ribbon = next(line for line in lines if "Who cut the ribbon?" in line)
    assert ribbon.startswith("FAIL")
    assert '"Tomas Berg"' in ribbon
    assert '"Mayor Ines Duarte cut the ribbon' in ribbon and "Harbour bridge" in ribbon and "paragraph 1" in ribbon
    abstain = next(line for line in lines if "Tour de France" in line)
    assert "abstain" in abstain and "abstained (confidence" in abstain
    assert any(line.startswith("skip") and "skipped: the orchard story is being rewritten" in line for line in lines)
    turns = [line for line in lines if "1. Who is Tomas Berg?" in line or "2. What did he lose?" in line]
    assert len(turns) == 2 and turns[0].startswith("pass") and turns[1].startswith(" ")


def test_a_conversation_is_asked_in_one_chat_and_failures_name_the_turn(
    workdir: Path, session: RegressionSession
) -> None:
    fixture = write_fixture(
        workdir,
        """
        corpus: articles/
        cases:
          - conversation:
              - question: Who is Tomas Berg?
              - question: What did he lose?
                expect: {quote_contains: the ribbon}
        """,
    )
    (result,) = run_all(session, fixture)
    assert result.failures == ['turn 2: first quote does not contain "the ribbon"']
    # The second turn was answered in the context of the first: Tomas Berg's loss.
    assert "lost nearly all of his early varieties" in result.turns[1].answer.quotes[0].text
    report = case_report(result)
    assert "answer to turn 2 (What did he lose?)" in report


def test_the_corpus_is_indexed_once_and_cached_by_content_and_settings(
    workdir: Path, settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    builds: list[Path] = []
    cache = tmp_path / "cache"

    def new_session(settings: Settings = settings) -> RegressionSession:
        return RegressionSession(settings, embedder=embedder, cache_root=cache, on_build=lambda n, p: builds.append(p))

    first = write_fixture(workdir)
    second = write_fixture(workdir, FIXTURE.replace("Tour de France", "Giro d'Italia"), name="qa_other.yaml")
    session = new_session()
    assert session.bot_for(first) is session.bot_for(second)
    assert len(builds) == 1  # two fixture files, one corpus: one index, one bot
    assert (builds[0] / "CURRENT").is_file() and json.loads((builds[0] / "corpus.json").read_text())["articles"] == [
        "harbour.txt",
        "library.txt",
        "orchard.md",
    ]

    results = run_all(new_session(), write_fixture(workdir, SMALL_FIXTURE))  # a rerun only re-asks
    assert len(builds) == 1 and [r.status for r in results] == ["passed", "passed", "skipped"]

    article = workdir / "articles" / "harbour.txt"
    article.write_text(article.read_text().replace("48 million", "52 million"))
    new_session().bot_for(first)  # new content: new index
    assert len(builds) == 2 and builds[1] != builds[0]

    rechunked = settings.model_copy(update={"index": IndexSettings(chunk_tokens=60)})
    new_session(rechunked).bot_for(first)  # other chunking: new index
    assert len(builds) == 3
    assert sorted(p.name for p in cache.iterdir()) == sorted([*(p.name for p in builds), "query-encoders"])
    # Each index answers without torch: the ONNX query encoder is exported once and linked in.
    assert all((p / "query_encoder" / "all-MiniLM-L6-v2" / "model.int8.onnx").is_file() for p in builds)
    assert isinstance(new_session().bot_for(first).retriever.embedder, OnnxQueryEncoder)


def test_snapshot_update_then_report_changes_with_a_diff(workdir: Path, settings: Settings, embedder: Embedder,
                                                         cache_root: Path) -> None:
    fixture = write_fixture(workdir, SMALL_FIXTURE)

    def session(**options: bool) -> RegressionSession:
        return RegressionSession(settings, embedder=embedder, cache_root=cache_root, **options)

    # No snapshot yet: nothing to compare with, nothing reported.
    assert all(r.change is None for r in run_all(session(), fixture))

    updating = session(update=True)
    run_all(updating, fixture)
    assert updating.write_snapshots() == [fixture.snapshot_path]
    recorded = json.loads(fixture.snapshot_path.read_text(encoding="utf-8"))
    assert recorded["format"] == 1 and recorded["fixture"] == "qa_demo.yaml"
    assert recorded["settings"]["model"] == settings.index.model
    assert [entry["case"] for entry in recorded["cases"]] == [
        "How much did the bridge repair cost?",
        "Who won the Tour de France?",
    ]
    cost = recorded["cases"][0]["turns"][0]
    assert list(cost) == ["question", "answered", "confidence", "quotes"]
    assert cost["confidence"] == round(cost["confidence"], 2)
    first_quote = cost["quotes"][0]
    assert list(first_quote) == [
        "article_id", "title", "paragraph", "start", "end", "text", "date", "url", "source",
        "answer_start", "answer_end", "answer",
    ]
    assert (first_quote["article_id"], first_quote["start"]) == ("harbour.txt", 0)
    assert first_quote["text"].endswith("cost 48 million euros.")
    assert first_quote["answer"] == "48 million euros"  # the asked amount, marked inside the quote

    assert all(r.change is None for r in run_all(session(), fixture))  # same answers: no change

    article = workdir / "articles" / "harbour.txt"
    article.write_text(article.read_text().replace("48 million", "52 million"))
    results = run_all(session(), fixture)
    changed = results[0]
    assert changed.status == "changed" and changed.failures == []  # the expectation still holds
    assert changed.change is not None
    diff = changed.change.diff.splitlines()
    assert diff[:2] == ["--- snapshot", "+++ now"]
    assert "-    years and cost 48 million euros." in diff
    assert "+    years and cost 52 million euros." in diff
    assert "changed" in case_report(changed) and "answer changed against the snapshot:" in case_report(changed)
    assert results[1].change is None  # the abstention did not change
    assert summary_line(results) == "2 passed, 0 failed, 1 skipped"  # a changed answer still passes...

    strict = run_all(session(fail_on_change=True), fixture)  # ...unless changes are failures
    assert strict[0].status == "failed"
    assert strict[0].failures == ["answer changed against the snapshot (--fail-on-change)"]


def test_an_update_of_some_cases_keeps_the_others(workdir: Path, settings: Settings, embedder: Embedder,
                                                  cache_root: Path) -> None:
    fixture = write_fixture(workdir, SMALL_FIXTURE)
    first = RegressionSession(settings, embedder=embedder, cache_root=cache_root, update=True)
    run_all(first, fixture)
    first.write_snapshots()
    before = json.loads(fixture.snapshot_path.read_text(encoding="utf-8"))

    only_one = RegressionSession(settings, embedder=embedder, cache_root=cache_root, update=True)
    only_one.run_case(fixture, fixture.cases[1])
    only_one.write_snapshots()
    assert json.loads(fixture.snapshot_path.read_text(encoding="utf-8")) == before
    assert not list(workdir.glob("*.tmp"))


def test_fail_on_change_without_a_snapshot_fails_every_case(workdir: Path, settings: Settings, embedder: Embedder,
                                                            cache_root: Path) -> None:
    fixture = write_fixture(workdir, "corpus: articles/\ncases:\n  - question: Who cut the ribbon?\n")
    strict = RegressionSession(settings, embedder=embedder, cache_root=cache_root, fail_on_change=True)
    (result,) = run_all(strict, fixture)
    assert result.failures == ["not in the snapshot yet (--update records it) (--fail-on-change)"]


def test_junit_xml_parses_and_counts(workdir: Path, session: RegressionSession, tmp_path: Path) -> None:
    results = run_all(session, write_fixture(workdir))
    target = tmp_path / "reports" / "junit.xml"
    write_junit(results, target)
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == ("6", "1", "1", "0")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == str(workdir / "qa_demo.yaml")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["How much did the bridge repair cost?", "Who cut the ribbon?"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == 'first quote does not contain "Tomas Berg"'
    assert "Mayor Ines Duarte" in (failure.text or "")
    assert cases[1].get("line") == "8"
    skipped = cases[4].find("skipped")
    assert skipped is not None and skipped.get("message") == "the orchard story is being rewritten"
    assert [p.get("value") for p in cases[0].iter("property")] == ["bridge"]
    assert all(float(c.get("time") or "x") >= 0 for c in cases)
