"""`quotebot` as a user runs it: real subprocesses, real model, one-line errors and exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quotebot.bot.cli import ExitCode
from quotebot.index import storage
from quotebot.index.reader import QuoteIndex, read_manifest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def quotebot(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("QUOTEBOT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "quotebot.bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("quotebot: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def index_dir(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("cli") / "index"
    shutil.copytree(seed_index_dir, target)
    return target


def test_ask_json_prints_the_contract(index_dir: Path, seed_texts: dict[str, str]) -> None:
    result = quotebot("ask", "What did Herzog ask Lavrov?", "--json", "--index-dir", str(index_dir))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert {"question", "answered", "confidence", "quotes"} <= answer.keys()
    assert answer["answered"] is True
    first = answer["quotes"][0]
    assert {"text", "article_id", "title", "start", "end", "score"} <= first.keys()
    assert "blind eye" in first["text"]
    for quote in answer["quotes"]:
        assert seed_texts[quote["article_id"]][quote["start"] : quote["end"]] == quote["text"]


def test_batch_answers_each_line_in_order(index_dir: Path, tmp_path: Path, seed_texts: dict[str, str]) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text(
        "What did Herzog ask Lavrov?\nWhat is the capital of Australia?\n\nWho is the Executive Chairman of the Jewish Agency?\n",
        encoding="utf-8",
    )
    result = quotebot("ask", "--batch", str(questions), "--json", "--index-dir", str(index_dir))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == [
        "What did Herzog ask Lavrov?",
        "What is the capital of Australia?",
        "Who is the Executive Chairman of the Jewish Agency?",
    ]
    assert [a["answered"] for a in answers] == [True, False, True]
    assert "blind eye" in answers[0]["quotes"][0]["text"]
    assert "Isaac Herzog" in answers[2]["quotes"][0]["text"]
    for answer in answers:
        for quote in answer["quotes"]:
            assert seed_texts[quote["article_id"]][quote["start"] : quote["end"]] == quote["text"]


def test_chat_follow_up_and_commands_when_piped(index_dir: Path) -> None:
    script = "What did Herzog ask Lavrov?\nand what did he say about Hezbollah?\n/sources\nWhat is the capital of Australia?\n/quit\n"
    result = quotebot("chat", "--index-dir", str(index_dir), stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\033[" not in out  # plain when piped
    words = " ".join(out.split())  # quotes are wrapped to the terminal width
    blind_eye = words.index("blind eye")
    border = words.index("violation of the border")
    assert blind_eye < border
    assert "    — Russia and Israel resume military cooperation in Syria, paragraph 1" in out
    assert "[000_8df2fe3ddce01457.txt]" in out
    assert "I couldn't find that in the articles." in out
    assert out.rstrip().endswith("bye")


def test_missing_index_is_one_line_with_what_to_run(tmp_path: Path) -> None:
    result = quotebot("ask", "anything", "--index-dir", str(tmp_path / "none"))
    assert_one_line_error(result, ExitCode.NO_INDEX, "quotebot index build")
    # A relative --index-dir is named as given, and so is the command that builds it there.
    result = quotebot("ask", "anything", "--index-dir", "some/none", cwd=tmp_path)
    assert_one_line_error(result, ExitCode.NO_INDEX, "no index at some/none:", "quotebot index build --index-dir some/none")


def test_index_list_stats_and_version(index_dir: Path) -> None:
    listing = quotebot("index", "list", "--index-dir", str(index_dir))
    assert listing.returncode == 0, listing.stderr
    chunks = read_manifest(index_dir).counts.chunks
    assert listing.stdout.splitlines() == [
        f"000_8df2fe3ddce01457.txt  {chunks} chunks  -  -  -  -  Russia and Israel resume military cooperation in Syria"
    ]
    stats = quotebot("index", "stats", "--json", "--index-dir", str(index_dir))
    assert stats.returncode == 0, stats.stderr
    manifest = json.loads(stats.stdout)
    assert "article_hashes" not in manifest and manifest["vector_store"]["backend"] == "faiss"
    verbose = json.loads(quotebot("index", "stats", "--json", "--verbose", "--index-dir", str(index_dir)).stdout)
    assert list(verbose["article_hashes"]) == ["000_8df2fe3ddce01457.txt"]
    version = quotebot("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"quotebot {importlib.metadata.version('quotebot')}"


def test_config_error_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("retrieval:\n  max_quotes: -1\n", encoding="utf-8")
    result = quotebot("index", "stats", "--config", str(config))
    assert_one_line_error(result, ExitCode.USAGE, "config.yaml:2: retrieval.max_quotes")


def test_mismatched_index_is_refused(index_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("index:\n  chunk_tokens: 60\n", encoding="utf-8")
    result = quotebot("ask", "x", "--config", str(config), "--index-dir", str(index_dir))
    assert_one_line_error(result, ExitCode.NO_INDEX, "chunk_tokens=120", "chunk_tokens=60", "quotebot index build")


@pytest.mark.slow
def test_build_warns_on_bad_files_and_strict_fails(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "000_8df2fe3ddce01457.txt", corpus)
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    (corpus / "feed.jsonl").write_text('{"id": 1, "title": "A", "text": "Fine text."}\n{"id": 2,\n', encoding="utf-8")
    index_dir = tmp_path / "index"
    lenient = quotebot("index", "build", str(corpus), "--index-dir", str(index_dir))
    assert lenient.returncode == 0, lenient.stderr
    assert "empty.txt" in lenient.stderr and "feed.jsonl:2:" in lenient.stderr
    assert "2 skipped" in lenient.stderr and "Traceback" not in lenient.stderr
    assert "DEBUG" not in lenient.stderr  # the ONNX export made first leaves logging as it was
    assert read_manifest(index_dir).counts.articles == 2

    strict = quotebot("index", "build", str(corpus), "--strict", "--index-dir", str(index_dir))
    assert_one_line_error(strict, ExitCode.BAD_INPUT, "empty.txt")
    assert read_manifest(index_dir).counts.articles == 2  # the previous index is untouched


def test_missing_corpus_path(tmp_path: Path) -> None:
    result = quotebot("index", "build", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "i"))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "nowhere")


@pytest.mark.slow
def test_killed_build_leaves_the_previous_index(index_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    shutil.copytree(index_dir, target)
    before = read_manifest(target)
    corpus = tmp_path / "many.jsonl"
    body = (SEEDS / "000_8df2fe3ddce01457.txt").read_text(encoding="utf-8")
    with open(corpus, "w", encoding="utf-8") as handle:
        for number in range(400):
            handle.write(json.dumps({"id": number, "title": f"Copy {number}", "text": f"Copy {number}. {body}"}) + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "quotebot.bot.cli", "index", "build", str(corpus), "--index-dir", str(target)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(target.glob("gen-*"))) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the build finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    index = QuoteIndex.load(target)
    assert index.manifest == before
    assert storage.current_generation(target).name == before_generation_name(index_dir)


def before_generation_name(index_dir: Path) -> str:
    return storage.current_generation(index_dir).name


def test_ask_into_a_pipe_closed_early_ends_quietly(index_dir: Path, tmp_path: Path) -> None:
    """`quotebot ask --batch ... | head -1`: the reader goes away after one line; the rest is
    not worth an error, and ending the process without its teardown (QUICK_EXIT_COMMANDS)
    must not make one of the flush it does first."""
    questions = tmp_path / "questions.txt"
    questions.write_text("What did Herzog ask Lavrov?\n" * 40, encoding="utf-8")
    command = [sys.executable, "-m", "quotebot.bot.cli", "ask", "--batch", str(questions), "--json", "--index-dir", str(index_dir)]
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    asked = subprocess.run(command, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=180)
    reader.stdin.close()
    first = reader.stdout.read().decode()
    reader.wait()
    assert asked.returncode == 0, asked.stderr
    assert asked.stderr == ""
    assert json.loads(first)["answered"] is True
