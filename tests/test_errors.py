"""One error hierarchy: every quotebot exception is a QuotebotError carrying its exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import quotebot.bot
import quotebot.index
import quotebot.retrieval
from quotebot.index.errors import CorruptIndexError, ExitCode, QuotebotError, UserError, exit_code_of, is_user_error

# Modules that import optional or heavy front-end pieces at import time are still walked:
# every module of the three packages is importable in the test environment.
PACKAGES = (quotebot.index, quotebot.retrieval, quotebot.bot)


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for package in PACKAGES:
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(module_info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == module.__name__:
                    found.append(value)
    return found


def test_every_exception_class_is_a_quotebot_error_with_an_exit_code():
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk found the package's errors
    strays = [f"{kind.__module__}.{kind.__qualname__}" for kind in classes if not issubclass(kind, QuotebotError)]
    assert strays == []
    for kind in classes:
        assert isinstance(kind.exit_code, ExitCode)


def test_exit_codes_of_the_errors_a_user_meets():
    from quotebot.bot.settings import SettingsError
    from quotebot.index.embedding import ModelNotFoundError
    from quotebot.index.loaders import InputError
    from quotebot.index.lock import IndexLockedError
    from quotebot.index.storage import IndexMissingError

    assert exit_code_of(SettingsError("x")) is ExitCode.USAGE
    assert exit_code_of(IndexMissingError("x")) is ExitCode.NO_INDEX
    assert exit_code_of(CorruptIndexError("x")) is ExitCode.NO_INDEX
    assert exit_code_of(InputError("x")) is ExitCode.BAD_INPUT
    assert exit_code_of(ModelNotFoundError("x")) is ExitCode.NO_MODEL
    assert exit_code_of(IndexLockedError("x")) is ExitCode.LOCKED
    assert exit_code_of(UserError("x", ExitCode.FAILED)) is ExitCode.FAILED
    assert exit_code_of(ValueError("x")) is ExitCode.INTERNAL
    assert is_user_error(SettingsError("x")) and not is_user_error(KeyError("x"))


def test_the_error_module_imports_nothing_heavy():
    code = (
        "import sys; import quotebot.index.errors as e; e.CorruptIndexError('x');"
        "heavy = [m for m in ('faiss', 'numpy', 'torch', 'bm25s', 'pydantic') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module", ["quotebot.index.reader", "quotebot.retrieval.retriever"])
def test_readers_do_not_import_the_onnx_export_or_the_builder(module):
    code = (
        f"import sys; import {module};"
        "print(','.join(m for m in ('quotebot.index.builder', 'quotebot.index.onnx_encoder', 'onnx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
