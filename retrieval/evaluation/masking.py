"""Leaving articles out of a search without building another index.

``ExcludingIndex`` is a view of a loaded ``QuoteIndex`` whose vector and keyword stores
never return the chunks of the articles left out. Each search asks its store for ``k``
more results than it needs for every excluded chunk and drops those: with a flat vector
store and BM25 (both exact) that is exactly the top ``k`` of the index without them. BM25
idf and the chunk count still include the left-out articles (one paragraph of thousands:
its weight on the statistics is negligible, and said so in docs/eval.md).

quotebot's retriever is run over the view as over any index, so the related-but-unanswered
evaluation asks every question of the open corpus with its own paragraph left out, at the
cost of a filter instead of an index build per question.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np

from quotebot.index.reader import QuoteIndex


class _ExcludingStore:
    """A store whose ``search`` skips the excluded ids; everything else is the store's."""

    def __init__(self, store, excluded: set[int]) -> None:
        self._store = store
        self._excluded = excluded  # shared with the view, changed by ExcludingIndex.leave_out

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def __len__(self) -> int:
        return len(self._store)

    def search(self, query, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not self._excluded:
            return self._store.search(query, k, allowed=allowed)
        ids, scores = self._store.search(query, k + len(self._excluded), allowed=allowed)
        keep = ~np.isin(ids, np.fromiter(self._excluded, dtype=np.int64, count=len(self._excluded)))
        return ids[keep][:k], scores[keep][:k]


class ExcludingIndex:
    """``index`` with the chunks of some articles left out of every search."""

    def __init__(self, index: QuoteIndex) -> None:
        self.source = index
        self._excluded: set[int] = set()
        self.index = copy.copy(index)
        self.index.vectors = _ExcludingStore(index.vectors, self._excluded)  # type: ignore[assignment]
        self.index.keywords = _ExcludingStore(index.keywords, self._excluded)  # type: ignore[assignment]

    def leave_out(self, article_ids: Iterable[str]) -> None:
        """From now on, searches skip the chunks of these articles (and of no others)."""
        self._excluded.clear()
        for article_id in article_ids:
            self._excluded.update(self.source.chunk_ids_of(article_id))
