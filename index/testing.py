"""Contract tests every store backend must pass (as Haystack's ``haystack/testing/document_store.py``).

A backend's test module subclasses the contract and says how to make a store::

    from quotebot.index.testing import VectorStoreContract

    class TestMyVectorStore(VectorStoreContract):
        backend = "mine"          # its name in quotebot.index.backends.VECTOR_BACKENDS
        options = {"shards": 2}   # its options, as index.vector_store would give them

and pytest runs every ``test_*`` below against it: search, removal, stable ids, committing
into a generation folder and opening it again through the manifest's ``StoreRef``, read-only
mapped loads. Nothing here knows FAISS or bm25s. Importing this module needs pytest (a test
dependency), nothing else beyond quotebot's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from quotebot.index.backends import (
    KeywordSearcher,
    KeywordWriter,
    VectorSearcher,
    VectorWriter,
    keyword_backend,
    open_keyword_index,
    open_vector_store,
    vector_backend,
)
from quotebot.index.manifest import StoreRef


def unit_vectors(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class VectorStoreContract:
    """What a vector backend must do. Subclasses set ``backend`` (and ``options``)."""

    backend: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    # How far a returned inner product may be from the exact one (a store may keep fewer bits).
    score_tolerance: ClassVar[float] = 1e-5
    # How many chunks the empty store is made for (a backend may pick its layout by it).
    expected_chunks: ClassVar[int] = 1000

    def make_store(self, dimension: int) -> VectorWriter:
        """An empty writable store; override to test a store made another way."""
        return vector_backend(self.backend, self.options).writer(
            None, dimension=dimension, expected_chunks=self.expected_chunks, dropped=np.zeros(0, dtype=np.int64)
        )

    def reopen(self, store: VectorWriter, folder: Path, *, mmap: bool) -> VectorSearcher:
        """Commit ``store`` into ``folder`` and open it again by its reference, as a reader does."""
        folder.mkdir(parents=True, exist_ok=True)
        ref = store.commit(folder)
        assert isinstance(ref, StoreRef) and ref.backend == self.backend
        return open_vector_store(folder, ref, mmap=mmap, configured=(self.backend, self.options))

    # -- searching -----------------------------------------------------------------------------

    def test_the_store_offers_both_protocols(self) -> None:
        store = self.make_store(8)
        assert isinstance(store, VectorWriter) and isinstance(store, VectorSearcher)
        assert store.dimension == 8 and len(store) == 0

    def test_nearest_is_itself_with_its_id(self) -> None:
        store = self.make_store(16)
        vectors = unit_vectors(50, 16)
        store.add(np.arange(100, 150), vectors)
        ids, scores = store.search(vectors[7], 3)  # type: ignore[attr-defined]
        assert ids[0] == 107
        assert scores[0] == pytest.approx(1.0, abs=self.score_tolerance)
        assert list(scores) == sorted(scores, reverse=True)

    def test_scores_are_inner_products(self) -> None:
        store = self.make_store(16)
        vectors = unit_vectors(30, 16)
        store.add(np.arange(30), vectors)
        query = unit_vectors(1, 16, seed=5)[0]
        ids, scores = store.search(query, 5)  # type: ignore[attr-defined]
        np.testing.assert_allclose(scores, vectors[ids] @ query, atol=self.score_tolerance * 10)

    def test_empty_store_finds_nothing(self) -> None:
        ids, scores = self.make_store(8).search(unit_vectors(1, 8)[0], 5)  # type: ignore[attr-defined]
        assert len(ids) == 0 and len(scores) == 0

    def test_search_asks_for_more_than_the_store_holds(self) -> None:
        store = self.make_store(8)
        vectors = unit_vectors(5, 8)
        store.add(np.arange(10, 15), vectors)
        ids, scores = store.search(vectors[0], 50)  # type: ignore[attr-defined]
        assert sorted(ids.tolist()) == list(range(10, 15)) and list(scores) == sorted(scores, reverse=True)

    # -- writing ---------------------------------------------------------------------------------

    def test_wrong_dimension_is_refused(self) -> None:
        with pytest.raises(ValueError):
            self.make_store(8).add(np.arange(2), unit_vectors(2, 9))

    def test_removed_ids_are_never_returned(self) -> None:
        store = self.make_store(16)
        vectors = unit_vectors(20, 16)
        store.add(np.arange(20), vectors)
        assert store.remove(np.array([3, 4, 999])) == 2  # unknown ids are ignored
        assert len(store) == 18
        ids, _ = store.search(vectors[3], 20)  # type: ignore[attr-defined]
        assert 3 not in ids and 4 not in ids
        assert sorted(store.ids().tolist()) == [i for i in range(20) if i not in (3, 4)]

    def test_vectors_come_back_by_id(self) -> None:
        store = self.make_store(8)
        vectors = unit_vectors(10, 8)
        store.add(np.arange(40, 50), vectors)
        np.testing.assert_allclose(store.vectors(np.array([47, 41])), vectors[[7, 1]], atol=self.score_tolerance * 100)

    # -- generations -----------------------------------------------------------------------------

    @pytest.mark.parametrize("mmap", [False, True])
    def test_ids_survive_commit_and_open(self, tmp_path: Path, mmap: bool) -> None:
        store = self.make_store(16)
        vectors = unit_vectors(60, 16)
        ids = np.arange(1000, 1060, dtype=np.int64)
        store.add(ids, vectors)
        store.remove(ids[10:20])
        loaded = self.reopen(store, tmp_path / "gen", mmap=mmap)
        kept = np.concatenate([ids[:10], ids[20:]])
        assert sorted(loaded.ids().tolist()) == kept.tolist() and len(loaded) == len(kept)
        for row in (0, 25, 59):
            assert loaded.search(vectors[row], 1)[0][0] == ids[row]

    def test_the_writer_carries_a_previous_store_into_the_next_generation(self, tmp_path: Path) -> None:
        store = self.make_store(8)
        vectors = unit_vectors(30, 8)
        store.add(np.arange(30), vectors)
        previous = self.reopen(store, tmp_path / "gen-1", mmap=False)
        backend = vector_backend(self.backend, self.options)
        following = backend.writer(
            previous,  # type: ignore[arg-type]
            dimension=8,
            expected_chunks=self.expected_chunks,
            dropped=np.array([0, 1, 2], dtype=np.int64),
        )
        following.add(np.array([100]), unit_vectors(1, 8, seed=9))
        loaded = self.reopen(following, tmp_path / "gen-2", mmap=True)
        assert sorted(loaded.ids().tolist()) == list(range(3, 30)) + [100]


class KeywordIndexContract:
    """What a keyword backend must do. Subclasses set ``backend`` (and ``options``)."""

    backend: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    TEXTS = [["storm", "close", "port"], ["rate", "held", "bank"], ["storm", "and", "storm", "again"], []]

    def build(self, ids: np.ndarray, token_lists: list[list[str]]) -> KeywordWriter:
        return keyword_backend(self.backend, self.options).build(ids, token_lists)

    def built(self, tmp_path: Path, *, mmap: bool = False) -> KeywordSearcher:
        folder = tmp_path / "gen"
        folder.mkdir(parents=True, exist_ok=True)
        ref = self.build(np.array([10, 11, 12, 13]), self.TEXTS).commit(folder)
        assert isinstance(ref, StoreRef) and ref.backend == self.backend
        return open_keyword_index(folder, ref, mmap=mmap, configured=(self.backend, self.options))

    @pytest.mark.parametrize("mmap", [False, True])
    def test_ranks_chunk_ids_by_keyword_score(self, tmp_path: Path, mmap: bool) -> None:
        index = self.built(tmp_path, mmap=mmap)
        assert isinstance(index, KeywordSearcher)
        ids, scores = index.search(["storm"], 10)
        assert ids.tolist() == [12, 10]  # chunk ids, two mentions before one
        assert list(scores) == sorted(scores, reverse=True) and all(s > 0 for s in scores)
        assert index.search(["volcano"], 10)[0].size == 0
        assert index.search([], 10)[0].size == 0
        assert index.search(["storm"], 1)[0].tolist() == [12]

    def test_idf_weighs_rare_words_more(self, tmp_path: Path) -> None:
        idf = self.built(tmp_path).idf(["storm", "bank", "volcano"])
        assert idf[1] > idf[0] > 0 and idf[2] == 0

    def test_ids_in_row_order_and_length(self, tmp_path: Path) -> None:
        index = self.built(tmp_path)
        assert index.ids().tolist() == [10, 11, 12, 13] and len(index) == 4

    def test_an_empty_index_finds_nothing(self, tmp_path: Path) -> None:
        folder = tmp_path / "empty"
        folder.mkdir()
        ref = self.build(np.zeros(0, dtype=np.int64), []).commit(folder)
        index = open_keyword_index(folder, ref, mmap=False)
        assert len(index) == 0 and index.search(["storm"], 5)[0].size == 0
        assert index.idf(["storm"]).tolist() == [0.0]

    def test_ids_and_token_lists_must_pair_up(self) -> None:
        with pytest.raises(ValueError):
            self.build(np.array([1, 2]), [["a"]])
