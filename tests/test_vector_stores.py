"""Vector stores by kind (flat, HNSW) and by loading (private copy, memory-mapped read-only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quotebot.index.backends import VectorSearcher, VectorStore
from quotebot.index.errors import CorruptIndexError
from quotebot.index.faiss_store import (
    DEFAULT_HNSW_EF_SEARCH,
    DEFAULT_HNSW_M,
    HNSW_MAX_TOMBSTONE_FRACTION,
    HNSW_MIN_CHUNKS,
    FaissOptions,
    FaissVectorStore,
    ReadOnlyIndexError,
    choose_vector_index,
    new_vector_store,
)
from quotebot.index.settings import IndexSettings
from quotebot.index.testing import VectorStoreContract, unit_vectors

KINDS = ["flat", "hnsw"]
FP16 = 1e-3  # an hnsw store keeps float16 vectors: inner products and vectors within this


def unit_rows(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    return unit_vectors(count, dimension, seed)


def filled(
    kind: str, count: int = 200, dimension: int = 16, first_id: int = 1000, **params: int
) -> tuple[FaissVectorStore, np.ndarray, np.ndarray]:
    store = FaissVectorStore(dimension, kind=kind, **params)
    ids, vectors = np.arange(first_id, first_id + count, dtype=np.int64), unit_rows(count, dimension)
    store.add(ids, vectors)
    return store, ids, vectors


# --- the shared contract (quotebot.index.testing), for each kind and loading ---------------


class TestHnswVectorStore(VectorStoreContract):
    backend = "faiss"
    options = {"kind": "hnsw"}
    score_tolerance = FP16  # an hnsw store keeps float16 vectors


class MappedAfterEachChange:
    """A store whose every read is served by a memory-mapped load of what was saved.

    Changes go to a private copy that is saved and mapped again, as the index writer and the
    readers do across generations, so the contract checks what a mapped store answers.
    """

    def __init__(self, dimension: int, kind: str, folder: Path) -> None:
        self.dimension = dimension
        self._private = FaissVectorStore(dimension, kind=kind)
        self._folder = folder
        self._saves = 0
        self._mapped = self._remap()

    def _remap(self) -> FaissVectorStore:
        self._saves += 1
        path = self._folder / f"generation-{self._saves}.faiss"
        self._private.save(path)
        mapped = FaissVectorStore.load(path, mmap=True)
        assert mapped.read_only
        return mapped

    def __len__(self) -> int:
        return len(self._mapped)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._private.add(ids, vectors)
        self._mapped = self._remap()

    def remove(self, ids: np.ndarray) -> int:
        removed = self._private.remove(ids)
        self._mapped = self._remap()
        return removed

    def ids(self) -> np.ndarray:
        return self._mapped.ids()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._mapped.vectors(ids)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._mapped.search(vector, k)

    def commit(self, generation: Path):
        return self._private.commit(generation)


class TestMappedFlatVectorStore(VectorStoreContract):
    backend = "faiss"
    options = {"kind": "flat"}

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "mapped"
        self.folder.mkdir()

    def make_store(self, dimension: int) -> VectorStore:
        return MappedAfterEachChange(dimension, self.options["kind"], self.folder)  # type: ignore[return-value]


class TestMappedHnswVectorStore(TestMappedFlatVectorStore):
    options = {"kind": "hnsw"}
    score_tolerance = FP16


# --- memory-mapped stores are read-only --------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_mapped_store_refuses_changes_with_a_python_error(tmp_path: Path, kind: str) -> None:
    store, ids, vectors = filled(kind)
    path = tmp_path / "vectors.faiss"
    store.save(path)
    mapped = FaissVectorStore.load(path, mmap=True)
    assert mapped.read_only and mapped.kind == kind
    # faiss itself would abort the whole process here; the store must refuse first.
    with pytest.raises(ReadOnlyIndexError, match="vectors.faiss.*mmap=False"):
        mapped.add(np.array([5], dtype=np.int64), unit_rows(1, 16, seed=9))
    with pytest.raises(ReadOnlyIndexError, match="mmap=False"):
        mapped.remove(ids[:3])
    assert len(mapped) == len(ids)  # nothing changed, and it still answers
    assert mapped.search(vectors[3], 1)[0][0] == ids[3]
    private = FaissVectorStore.load(path, mmap=False)
    assert not private.read_only
    assert private.remove(ids[:3]) == 3


# --- HNSW removes by tombstones, then by rebuilding ---------------------------------------


def test_hnsw_remove_leaves_tombstones_that_are_never_returned(tmp_path: Path) -> None:
    store, ids, vectors = filled("hnsw", hnsw_m=8, hnsw_ef_construction=20, hnsw_ef_search=30)
    gone = ids[: int(len(ids) * HNSW_MAX_TOMBSTONE_FRACTION) - 1]  # just under the rebuild point
    assert store.remove(np.concatenate([gone, [-7, 99_999]])) == len(gone)  # unknown ids are ignored
    assert store.remove(gone[:5]) == 0  # already gone
    assert store.tombstones == len(gone) and len(store) == len(ids) - len(gone)
    path = tmp_path / "v.faiss"
    store.save(path)
    for loaded in (store, FaissVectorStore.load(path), FaissVectorStore.load(path, mmap=True)):
        assert loaded.tombstones == len(gone) and len(loaded) == len(ids) - len(gone)
        assert set(loaded.ids().tolist()) == set(ids[len(gone) :].tolist())
        for row in range(len(gone)):
            found, _ = loaded.search(vectors[row], 50)
            assert len(found) == 50 and not np.isin(found, gone).any()
        for row in range(len(gone), len(ids), 9):
            assert loaded.search(vectors[row], 1)[0][0] == ids[row]
        with pytest.raises(KeyError):
            loaded.vectors(gone[:1])


def test_hnsw_remove_past_the_tombstone_limit_rebuilds_the_graph() -> None:
    store, ids, vectors = filled("hnsw", hnsw_m=8, hnsw_ef_construction=20, hnsw_ef_search=30)
    gone = ids[::3]
    assert store.remove(gone) == len(gone)
    assert store.tombstones == 0 and store._index.ntotal == len(ids) - len(gone)  # rebuilt
    assert store.params == {"hnsw_m": 8, "hnsw_ef_construction": 20, "hnsw_ef_search": 30}
    kept = ~np.isin(ids, gone)
    assert set(store.ids().tolist()) == set(ids[kept].tolist())
    for row in np.flatnonzero(~kept)[:20]:
        assert not np.isin(gone, store.search(vectors[row], 50)[0]).any()
    for row in np.flatnonzero(kept)[:20]:
        assert store.search(vectors[row], 1)[0][0] == ids[row]
    np.testing.assert_allclose(store.vectors(ids[kept]), vectors[kept], atol=FP16)


def test_negative_ids_are_refused() -> None:
    for kind in KINDS:
        with pytest.raises(ValueError, match=">= 0"):
            FaissVectorStore(16, kind=kind).add(np.array([3, -1]), unit_rows(2, 16))


def test_hnsw_remove_of_nothing_known_keeps_the_graph() -> None:
    store, ids, _ = filled("hnsw")
    index_before = store._index
    assert store.remove(np.array([1, 2, 3])) == 0
    assert store._index is index_before and len(store) == len(ids)


def test_hnsw_remove_of_everything_leaves_an_empty_store_that_takes_new_vectors() -> None:
    store, ids, vectors = filled("hnsw", count=30)
    assert store.remove(ids) == 30
    assert len(store) == 0 and store.search(vectors[0], 5)[0].size == 0
    store.add(np.array([7]), vectors[:1])
    assert store.search(vectors[0], 5)[0].tolist() == [7]


# --- ids are stable --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ids_stay_the_same_through_remove_add_save_and_load(tmp_path: Path, kind: str) -> None:
    store, ids, vectors = filled(kind, count=120)
    store.remove(ids[10:40])
    new_ids, new_vectors = np.arange(5000, 5020, dtype=np.int64), unit_rows(20, 16, seed=3)
    store.add(new_ids, new_vectors)
    store.save(tmp_path / "v.faiss")
    expected_ids = np.concatenate([ids[:10], ids[40:], new_ids])
    expected_vectors = np.concatenate([vectors[:10], vectors[40:], new_vectors])
    path = tmp_path / "v.faiss"
    for loaded in (store, FaissVectorStore.load(path), FaissVectorStore.load(path, mmap=True)):
        assert sorted(loaded.ids().tolist()) == sorted(expected_ids.tolist())
        np.testing.assert_allclose(loaded.vectors(expected_ids), expected_vectors, atol=FP16 if kind == "hnsw" else 0)
        for row in range(0, len(expected_ids), 7):
            assert loaded.search(expected_vectors[row], 1)[0][0] == expected_ids[row]


def test_vectors_of_an_unknown_id_is_a_key_error() -> None:
    store, ids, _ = filled("flat", count=10)
    with pytest.raises(KeyError, match="12345"):
        store.vectors(np.array([ids[0], 12345]))
    assert store.vectors(np.zeros(0, dtype=np.int64)).shape == (0, 16)
    assert FaissVectorStore(16).vectors(np.zeros(0, dtype=np.int64)).shape == (0, 16)


# --- save and load -----------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_round_trip(tmp_path: Path, kind: str, mmap: bool) -> None:
    store, ids, vectors = filled(kind, hnsw_m=12, hnsw_ef_construction=30, hnsw_ef_search=40)
    store.save(tmp_path / "v.faiss")
    loaded = FaissVectorStore.load(tmp_path / "v.faiss", mmap=mmap)
    assert isinstance(loaded, VectorSearcher)
    assert (loaded.kind, loaded.dimension, len(loaded), loaded.read_only) == (kind, 16, len(ids), mmap)
    assert loaded.params == store.params
    np.testing.assert_array_equal(loaded.ids(), store.ids())
    for row in (0, 57, 199):
        found, scores = loaded.search(vectors[row], 10)
        expected, expected_scores = store.search(vectors[row], 10)
        np.testing.assert_array_equal(found, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)


def test_ef_search_is_set_at_load_without_a_rebuild(tmp_path: Path) -> None:
    store, _, _ = filled("hnsw", hnsw_ef_search=40)
    store.save(tmp_path / "v.faiss")
    assert FaissVectorStore.load(tmp_path / "v.faiss", mmap=True, hnsw_ef_search=77).params["hnsw_ef_search"] == 77
    assert FaissVectorStore.load(tmp_path / "v.faiss", hnsw_ef_search=None).params["hnsw_ef_search"] == 40
    assert FaissVectorStore.load(tmp_path / "v.faiss").params["hnsw_m"] == DEFAULT_HNSW_M


def test_hnsw_search_is_at_least_k_wide() -> None:
    store, _, vectors = filled("hnsw", count=1500, hnsw_ef_search=1)
    narrow = [store.search(v, 50)[0] for v in vectors[:20]]
    store.set_ef_search(50)
    wide = [store.search(v, 50)[0] for v in vectors[:20]]
    for a, b in zip(narrow, wide):
        np.testing.assert_array_equal(a, b)


def test_search_asks_for_more_than_the_store_holds() -> None:
    for kind in KINDS:
        store, ids, vectors = filled(kind, count=5)
        found, scores = store.search(vectors[0], 50)
        assert sorted(found.tolist()) == sorted(ids.tolist()) and list(scores) == sorted(scores, reverse=True)
        assert store.search(vectors[0], 0)[0].size == 0


# --- damaged files -------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -9])
def test_truncated_file_is_a_corrupt_index_error_naming_it(
    tmp_path: Path, kind: str, mmap: bool, keep: float
) -> None:
    store, _, _ = filled(kind)
    path = tmp_path / "chunk_vectors.faiss"
    store.save(path)
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:cut])
    with pytest.raises(CorruptIndexError, match="chunk_vectors.faiss"):
        FaissVectorStore.load(path, mmap=mmap)


@pytest.mark.parametrize("mmap", [False, True])
def test_garbage_missing_or_foreign_files_are_corrupt_index_errors(tmp_path: Path, mmap: bool) -> None:
    import faiss

    garbage = tmp_path / "garbage.faiss"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    foreign = tmp_path / "foreign.faiss"
    faiss.write_index(faiss.IndexFlatL2(8), str(foreign))  # not a store this code wrote
    for path in (garbage, foreign, tmp_path / "missing.faiss"):
        with pytest.raises(CorruptIndexError, match=path.name):
            FaissVectorStore.load(path, mmap=mmap)


# --- choosing the kind -----------------------------------------------------------------------------


def test_auto_picks_flat_below_the_threshold_and_hnsw_from_it() -> None:
    assert new_vector_store("auto", 16, 0).kind == "flat"
    assert new_vector_store("auto", 16, HNSW_MIN_CHUNKS - 1).kind == "flat"
    assert new_vector_store("auto", 16, HNSW_MIN_CHUNKS).kind == "hnsw"
    assert new_vector_store("flat", 16, 10 * HNSW_MIN_CHUNKS).kind == "flat"
    assert new_vector_store("hnsw", 16, 10).kind == "hnsw"
    assert choose_vector_index("auto", 10 * HNSW_MIN_CHUNKS) == "hnsw"
    store = new_vector_store("hnsw", 16, 10, hnsw_m=8, hnsw_ef_search=20)
    assert (store.params["hnsw_m"], store.params["hnsw_ef_search"]) == (8, 20)
    assert new_vector_store("flat", 16, 10, hnsw_m=8).params == {}


def test_unknown_kinds_and_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="ivf"):
        new_vector_store("ivf", 16, 10)
    with pytest.raises(ValueError, match="ivf"):
        FaissVectorStore(16, kind="ivf")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hnsw_mm"):
        new_vector_store("hnsw", 16, 10, hnsw_mm=8)
    with pytest.raises(ValueError, match="ef_search"):
        new_vector_store("hnsw", 16, 10).set_ef_search(0)
    with pytest.raises(ValueError, match="hnsw"):
        new_vector_store("flat", 16, 10).set_ef_search(10)


def test_settings_defaults_are_the_store_defaults() -> None:
    settings = IndexSettings()
    assert settings.vector_store.backend == "faiss" and settings.vector_store.options == {}
    options = FaissOptions()
    assert (options.kind, options.hnsw_m, options.hnsw_ef_search) == ("auto", DEFAULT_HNSW_M, DEFAULT_HNSW_EF_SEARCH)
    store = new_vector_store(options.kind, 16, HNSW_MIN_CHUNKS, hnsw_m=options.hnsw_m, hnsw_ef_search=options.hnsw_ef_search)
    assert store.params["hnsw_m"] == DEFAULT_HNSW_M and store.params["hnsw_ef_search"] == DEFAULT_HNSW_EF_SEARCH


def test_vector_store_settings_are_checked_by_the_backend_with_the_key_named() -> None:
    from pydantic import ValidationError

    settings = IndexSettings.model_validate({"vector_store": {"backend": "faiss", "kind": "hnsw", "hnsw_m": 8}})
    assert settings.vector_store.options == {"kind": "hnsw", "hnsw_m": 8}
    with pytest.raises(ValidationError, match="hnsw_m"):
        IndexSettings.model_validate({"vector_store": {"backend": "faiss", "hnsw_m": 2}})
    with pytest.raises(ValidationError, match="hnsw_mm"):
        IndexSettings.model_validate({"vector_store": {"hnsw_mm": 8}})
    with pytest.raises(ValidationError, match="unknown backend 'qdrant'"):
        IndexSettings.model_validate({"vector_store": {"backend": "qdrant"}})
    # The keys this section had before vector_store are still read, as its options.
    older = IndexSettings.model_validate({"vector_index": "hnsw", "hnsw_m": 16, "hnsw_ef_search": 90})
    assert older.vector_store.options == {"kind": "hnsw", "hnsw_m": 16, "hnsw_ef_search": 90}


def test_a_search_on_another_thread_gives_the_same_ids_and_scores_to_the_bit() -> None:
    """The retriever searches on a thread of its own (with the question's encoder): faiss's
    OpenMP thread count belongs to each thread, and one that starts with one per core splits
    a large flat scan (here from ~10,000 vectors on) among them, moving the scores' last bits."""
    from quotebot.index.threads import InThread

    store, _, _ = filled("flat", count=16_000, dimension=384)
    queries = unit_rows(10, 384, seed=3)
    here = [store.search(query, 50) for query in queries]
    for query, (ids, scores) in zip(queries, here):
        other_ids, other_scores = InThread(store.search, query, 50, name="test").result()
        assert other_ids.tolist() == ids.tolist()
        assert other_scores.tobytes() == scores.tobytes()
