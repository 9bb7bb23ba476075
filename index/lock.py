"""One writer at a time: an advisory lock on ``index_dir/LOCK``.

``flock`` is held by the open file, so the kernel releases it when the writer exits in
any way, ``kill -9`` included: a crashed build never leaves a stale lock behind. The
holder writes who it is into the file, so a second writer can say whom it waits for.
Readers (the chat, the bot) never take the lock: they read published generations only.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from quotebot.index.errors import ExitCode, QuotebotError

LOCK_FILE = "LOCK"


class IndexLockedError(QuotebotError):
    """Another process is changing this index; ``str()`` says which one."""

    exit_code = ExitCode.LOCKED


class IndexLock:
    def __init__(self, index_dir: Path, purpose: str) -> None:
        self.path = index_dir / LOCK_FILE
        self.purpose = purpose
        self._descriptor: int | None = None

    def __enter__(self) -> IndexLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise IndexLockedError(
                f"{self.path.parent} is being changed by {holder}; try again when it has finished"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, self._holder().encode("utf-8"), 0)
        self._descriptor = descriptor
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._descriptor is not None:
            os.ftruncate(self._descriptor, 0)
            os.close(self._descriptor)  # closing releases the lock
            self._descriptor = None

    def _holder(self) -> str:
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        return f"`quotebot {self.purpose}` (pid {os.getpid()} on {socket.gethostname()}, since {since})"


def _read_holder(descriptor: int) -> str:
    text = os.pread(descriptor, 1000, 0).decode("utf-8", errors="replace").strip()
    return text or "another process"
