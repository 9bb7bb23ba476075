"""The live generation of an index folder, for readers that run for hours (chat, Telegram).

A writer publishes a new generation by replacing ``CURRENT``; ``LiveIndex.refresh`` notices
that on the next question (one small file read) and loads the new generation. One thread
loads it; every other thread that asks meanwhile is answered from the loaded index at once,
never waiting for the load. A generation that fails to load is reported once and the old
index stays in service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from quotebot.index import storage
from quotebot.index.errors import CorruptIndexError, IndexMismatchError, IndexMissingError
from quotebot.index.reader import QuoteIndex

log = logging.getLogger("quotebot.index")


class LiveIndex:
    """``load()`` reads the live generation of ``index_dir`` (quotebot.bot.wiring.load_index
    checks it against the configured model and chunking)."""

    def __init__(self, index_dir: Path, load: Callable[[], QuoteIndex] | None = None) -> None:
        self.index_dir = index_dir
        self._load = load or (lambda: QuoteIndex.load(index_dir))
        self.index = self._load()
        self._unloadable: str | None = None
        self._loading = threading.Lock()

    def refresh(self) -> QuoteIndex:
        """The newest loadable generation: the loaded one unless a writer published another.

        The thread that notices a new generation loads it; a thread that finds a load under
        way gets the loaded index without waiting.
        """
        name = storage.current_name(self.index_dir)
        if name is None or name in (self.index.generation, self._unloadable):
            return self.index
        if not self._loading.acquire(blocking=False):
            return self.index  # another thread is loading it: answer from the loaded index meanwhile
        try:
            if name not in (self.index.generation, self._unloadable):
                self._reload(name)
        finally:
            self._loading.release()
        return self.index

    def _reload(self, name: str) -> None:
        try:
            self.index = self._load()
        except (IndexMissingError, CorruptIndexError, IndexMismatchError) as error:
            self._unloadable = name
            log.warning("quotebot: the index changed but cannot be loaded (%s); still answering "
                        "from generation %s", error, self.index.generation)
