"""The two searchable stores kept side by side: dense vectors (FAISS) and BM25 keywords.

Both map a chunk's row number (an int64 id) to a score. ``VectorStore`` is the small
protocol another engine (sharded FAISS, Qdrant, ...) would implement; the shared test
mixin in tests/ checks any implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import bm25s
import faiss
import numpy as np

# One OpenMP thread: a single query is measured twice as fast on one thread as on two,
# and the bot answers one question at a time per worker.
faiss.omp_set_num_threads(1)


class CorruptIndexError(Exception):
    """An index file is missing, truncated or unreadable; ``str()`` names the file."""


@runtime_checkable
class VectorStore(Protocol):
    dimension: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def ids(self) -> np.ndarray:
        """Every id the store holds (what `quotebot index verify` checks against the chunks)."""
        ...

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest ids to one normalised vector and their inner products, best first."""
        ...

    def save(self, path: Path) -> None: ...


class FaissVectorStore:
    """Exact inner-product search over normalised vectors, ids kept by ``IndexIDMap2``."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self.kind = "flat"
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (IndexIDMap2 keeps the id -> row map to find them)."""
        rows = [self._index.reconstruct(int(i)) for i in ids]
        return np.vstack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self._index.search(query, min(k, len(self)))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> FaissVectorStore:
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise CorruptIndexError(f"{path}: unreadable FAISS index ({_first_line(error)})") from None
        return cls(index.d, index)


KEYWORD_IDS_FILE = "chunk_ids.npy"


class KeywordIndex:
    """BM25 (bm25s) over pre-tokenised chunks; row ``i`` of bm25s is chunk ``ids[i]``.

    bm25s cannot add or remove documents, so an index update builds it anew from the
    kept chunks' tokens: that is cheap beside embedding.
    """

    def __init__(self, bm25: bm25s.BM25 | None = None, ids: np.ndarray | None = None) -> None:
        self._bm25 = bm25
        self.ids = ids if ids is not None else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: np.ndarray, token_lists: list[list[str]]) -> KeywordIndex:
        if len(ids) != len(token_lists):
            raise ValueError(f"{len(ids)} ids for {len(token_lists)} token lists")
        if not token_lists:
            return cls(None, np.zeros(0, dtype=np.int64))
        bm25 = bm25s.BM25()
        # An empty token list would break bm25s; a placeholder token matches no query.
        bm25.index([tokens or ["\x00"] for tokens in token_lists], show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def search(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` chunk ids with a positive BM25 score, best first."""
        if self._bm25 is None or not tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self._bm25.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top].astype(np.float32)

    def idf(self, tokens: list[str]) -> np.ndarray:
        """BM25's inverse document frequency of each token (0 for unknown tokens)."""
        if self._bm25 is None:
            return np.zeros(len(tokens), dtype=np.float32)
        vocab = self._bm25.vocab_dict
        indptr = self._bm25.scores["indptr"]
        total = self._bm25.scores["num_docs"]
        weights = []
        for token in tokens:
            row = vocab.get(token)
            if row is not None and row + 1 >= len(indptr):
                row = None  # bm25s keeps an empty-string entry outside the matrix
            frequency = 0 if row is None else int(indptr[row + 1] - indptr[row])
            weights.append(0.0 if row is None else float(np.log(1 + (total - frequency + 0.5) / (frequency + 0.5))))
        return np.asarray(weights, dtype=np.float32)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(path), show_progress=False)
        np.save(path / KEYWORD_IDS_FILE, self.ids)

    @classmethod
    def load(cls, path: Path) -> KeywordIndex:
        try:
            ids = np.load(path / KEYWORD_IDS_FILE)
            bm25 = bm25s.BM25.load(str(path), show_progress=False, verbosity=0) if len(ids) else None
        except Exception as error:  # bm25s raises whatever numpy/json raise on a damaged file
            raise CorruptIndexError(f"{path}: unreadable BM25 index ({_first_line(error)})") from None
        if bm25 is not None and int(bm25.scores["num_docs"]) != len(ids):
            raise CorruptIndexError(f"{path}: BM25 index holds {bm25.scores['num_docs']} chunks, its id map {len(ids)}")
        return cls(bm25, ids)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
