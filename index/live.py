"""The live generation of an index folder, for readers that run for hours (chat, Telegram).

A writer publishes a new generation by replacing ``CURRENT``; ``LiveIndex.refresh`` notices
that on the next question (one small file read) and loads the new generation, while the
loaded one keeps answering until the new one is complete. A generation that fails to load
is reported once and the old index stays in service.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from quotebot.index import storage
from quotebot.index.errors import CorruptIndexError, IndexMismatchError
from quotebot.index.manifest import ChunkingSettings
from quotebot.index.reader import QuoteIndex

log = logging.getLogger("quotebot.index")


class LiveIndex:
    def __init__(
        self,
        index_dir: Path,
        *,
        model: str | None = None,
        chunking: ChunkingSettings | None = None,
        hnsw_ef_search: int | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        self.chunking = chunking
        self.hnsw_ef_search = hnsw_ef_search
        self.index = self._load()
        self._unloadable: str | None = None
        self._loading = threading.Lock()

    def refresh(self) -> QuoteIndex:
        """The newest loadable generation: the loaded one unless a writer published another."""
        name = storage.current_name(self.index_dir)
        if name is None or name in (self.index.generation, self._unloadable):
            return self.index
        with self._loading:  # one thread loads; the others answer from the loaded index meanwhile
            if name in (self.index.generation, self._unloadable):
                return self.index
            try:
                self.index = self._load()
            except (storage.IndexMissingError, CorruptIndexError, IndexMismatchError) as error:
                self._unloadable = name
                log.warning("quotebot: the index changed but cannot be loaded (%s); still answering "
                            "from generation %s", error, self.index.generation)
        return self.index

    def _load(self) -> QuoteIndex:
        return QuoteIndex.load(
            self.index_dir, model=self.model, chunking=self.chunking, hnsw_ef_search=self.hnsw_ef_search
        )
