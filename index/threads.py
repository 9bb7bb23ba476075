"""A call run on a thread of its own while the caller goes on; ``result()`` waits for it and
raises what it raised. Serves ``index add`` (vectors embedded while the writer writes) and
the question path (the question embedded while BM25 runs).

A thread per call, not a pool: concurrent.futures costs a one-shot `quotebot ask` 7-14 ms of
imports, a thread ~0.1 ms. ``Thread.start`` waits for the thread to run, which hands it the GIL
at once: otherwise a busy calling thread could keep it for the interpreter's switch interval
(5 ms) before the call began.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class InThread:
    """``function(*args)`` on a thread named ``name``, or, with ``here``, called here and now
    (what it raises then raises at once); ``seconds``: how long it took."""

    def __init__(self, function: Callable[..., Any], *args: Any, name: str, daemon: bool = False, here: bool = False) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread: threading.Thread | None = None
        if here:
            started = time.perf_counter()
            self._value = function(*args)
            self.seconds = time.perf_counter() - started
            return
        self._thread = threading.Thread(target=self._run, args=(function, args), name=name, daemon=daemon)
        self._thread.start()

    @property
    def in_thread(self) -> bool:
        return self._thread is not None

    def _run(self, function: Callable[..., Any], args: tuple) -> None:
        started = time.perf_counter()
        try:
            self._value = function(*args)
        except BaseException as error:  # raised where the result is read
            self._error = error
        self.seconds = time.perf_counter() - started

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value
