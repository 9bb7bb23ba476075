"""Every error quotebot reports to a person: one base class carrying its exit code.

An error a user can fix (a bad file, a missing index, a typo in config.yaml) is a
``QuotebotError``: its ``str()`` is the one line shown, its ``exit_code`` what the process
exits with. Front ends (the command line, the pytest plugin, the Telegram bot) map errors
through ``exit_code_of`` and never list classes of their own, so an error class can move
between modules without a front end silently losing track of it.

This module lives in ``index`` because index is the bottom layer every package may import;
it imports nothing but the standard library (naming ``CorruptIndexError`` must not load faiss).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # a check did not pass (regression cases, index verify)
    USAGE = 2  # bad command line, config file or environment variable
    NO_INDEX = 3  # index missing, built with other settings, or damaged
    BAD_INPUT = 4  # unreadable articles (with --strict), missing paths or question files
    NO_MODEL = 5  # the embedding model is not installed
    LOCKED = 6  # another `quotebot index` command is changing this index
    INTERNAL = 70  # a bug: please report it
    INTERRUPTED = 130  # Ctrl-C


class QuotebotError(Exception):
    """An error to show as one line (``str()``), with the exit code it means.

    Subclasses set ``exit_code``; an instance may carry another (``UserError``).
    """

    exit_code: ExitCode = ExitCode.INTERNAL


class UserError(QuotebotError):
    """A front end's own one-line error (a bad option, an unreadable question file)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = code

    @property
    def code(self) -> ExitCode:
        return self.exit_code


class CorruptIndexError(QuotebotError):
    """An index file is missing, truncated or unreadable; ``str()`` names the file."""

    exit_code = ExitCode.NO_INDEX


class IndexMismatchError(QuotebotError):
    """The index on disk was built with other settings (or format) than the configured ones."""

    exit_code = ExitCode.NO_INDEX


class IndexMissingError(QuotebotError):
    """No index has been built at this place yet."""

    exit_code = ExitCode.NO_INDEX


def exit_code_of(error: BaseException) -> ExitCode:
    """The exit code ``error`` means: its own for a ``QuotebotError``, INTERNAL (a bug) for the rest."""
    if isinstance(error, QuotebotError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a one-line message for a person (not a bug to show with a traceback)."""
    return isinstance(error, QuotebotError) and error.exit_code is not ExitCode.INTERNAL
