"""A one-shot command's start: only what it needs is set up, imported or compiled, and what
loads in a thread (the models) gives what loading it in line gives."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quotebot.bot import cli
from quotebot.index.lazyre import LazyPattern, lazy
from quotebot.index.onnx_encoder import OnnxDocumentEncoder, OnnxQueryEncoder, encoder_dir, loading_document_encoder

MODEL = "all-MiniLM-L6-v2"


def _commands(parser) -> set[str]:
    [subparsers] = [action for action in parser._actions if action.dest == "==SUPPRESS==" and action.choices]
    return set(subparsers.choices)


def test_the_command_line_sets_up_the_command_it_runs_and_all_when_unsure() -> None:
    assert cli._command_in(["ask", "What?"]) == "ask"
    assert cli._command_in(["--index-dir", "ask", "index", "add", "x"]) == "index"  # a value named "ask" is a value
    assert cli._command_in(["--config=c.yaml", "telegram"]) == "telegram"
    for unsure in ([], ["--help"], ["--version"], ["--conf", "c.yaml", "ask"], ["asks"], ["--index-dir"]):
        assert cli._command_in(unsure) is None, unsure
    everything = _commands(cli.build_parser())
    assert {"index", "ask", "chat", *cli.COMMAND_MODULES} == everything
    assert _commands(cli.build_parser("ask")) == {"ask"}
    assert _commands(cli.build_parser("feeds")) == {"feeds"}


def test_a_command_given_after_options_runs_and_help_lists_every_command(capsys) -> None:
    assert cli.main(["index"]) == cli.ExitCode.USAGE  # no index command: the whole help
    shown = capsys.readouterr().out
    assert all(name in shown for name in ("ask", "chat", "eval", "telegram", "regress", "feeds"))
    with pytest.raises(SystemExit) as done:
        cli.main(["--index-dir", "somewhere", "ask", "--help"])
    assert done.value.code == 0 and "--batch FILE" in capsys.readouterr().out


def test_loading_settings_does_not_import_faiss() -> None:
    """`quotebot ask` imports FAISS once its model is loading in a thread, not to validate settings."""
    code = (
        "import os, sys; os.environ.pop('PYDANTIC_DISABLE_PLUGINS', None)\n"
        "from quotebot.bot import cli\n"
        "cli._settings(cli.build_parser('ask').parse_args(['ask', 'q']))\n"
        "print('faiss' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


_SPACES = lazy(r"\s+")


def _spaces() -> re.Pattern[str]:
    return _SPACES  # type: ignore[return-value]


def test_a_lazy_pattern_is_the_compiled_pattern_once_used() -> None:
    assert isinstance(_spaces(), LazyPattern)
    assert _spaces().split("a  b\tc") == ["a", "b", "c"]
    assert _spaces() is re.compile(r"\s+")  # its own module's name now holds the pattern itself
    elsewhere = lazy(r"(\d+)-(\d+)", re.ASCII)  # held by a local: works through the stand-in
    match = elsewhere.fullmatch("12-34")
    assert match is not None and match.groups() == ("12", "34")
    assert elsewhere.flags == re.compile(r"(\d+)-(\d+)", re.ASCII).flags
    assert elsewhere.compiled() is re.compile(r"(\d+)-(\d+)", re.ASCII)


def test_an_encoder_loaded_in_a_thread_embeds_as_one_loaded_in_line(seed_index_dir: Path) -> None:
    export = encoder_dir(seed_index_dir, MODEL)
    questions = ["What did Herzog ask Lavrov?", "Who won?"]
    early = OnnxQueryEncoder(export, MODEL)
    early.start_warm_up()
    early.start_warm_up()  # a second start changes nothing
    assert np.array_equal(early.embed(questions), OnnxQueryEncoder(export, MODEL).embed(questions))
    documents = loading_document_encoder(seed_index_dir, MODEL, 16)
    assert isinstance(documents, OnnxDocumentEncoder)
    assert np.array_equal(documents.embed(questions), OnnxDocumentEncoder(export, MODEL).embed(questions))


def test_a_model_that_fails_to_load_in_the_thread_fails_the_first_use(seed_index_dir: Path, tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(encoder_dir(seed_index_dir, MODEL), export)
    for name in ("model.int8.onnx", "model.int8.opt.onnx"):
        (export / name).write_bytes(b"not a model")
    encoder = OnnxQueryEncoder(export, MODEL)
    encoder.start_warm_up()
    with pytest.raises(Exception, match="(?i)protobuf|load|invalid|parse"):
        encoder.embed(["What did Herzog ask Lavrov?"])
    assert loading_document_encoder(tmp_path / "no-index", MODEL, 16) is None
