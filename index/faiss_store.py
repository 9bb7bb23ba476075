"""The FAISS vector store: the ``faiss`` backend of quotebot.index.backends.

Chunk vectors under stable int64 ids, searched by inner product. The store comes in two
kinds, chosen by corpus size (``choose_vector_index``; the ``kind`` option):

- ``flat``: exact search, cost linear in the number of chunks; right for small corpora.
- ``hnsw``: approximate search over an HNSW graph, ~2 ms at a million chunks (recall@10
  0.92 there on realistic vectors, 0.98-1.0 up to 100,000 chunks, with the defaults below);
  removed chunks stay as tombstones until a rebuild of the graph (slow path).

``FaissBackend.writer`` moves an index from one kind to the other when an update takes it
past the threshold (or the configured kind changed). ``FaissVectorStore.load(path, mmap=True)``
maps the vectors (and the HNSW graph) from the file instead of reading them, so a served index
costs page cache, shared by every process that maps it, rather than private memory. A mapped
store is read-only: faiss would abort the process on ``add``, so ``add``/``remove`` raise
``ReadOnlyIndexError`` first.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from quotebot.index.errors import CorruptIndexError, QuotebotError
from quotebot.index.manifest import StoreRef


class _Faiss:
    """faiss, imported when this module first uses it: settings import this module to check
    the ``index.vector_store`` options, and a one-shot `quotebot ask` imports faiss (~60 ms)
    only once its model is loading in another thread (quotebot.bot.wiring.new_bot)."""

    def __getattr__(self, name: str) -> object:
        import faiss as module

        # One OpenMP thread: a single query is measured twice as fast on one thread as on
        # two, and the bot answers one question at a time per worker.
        module.omp_set_num_threads(1)
        globals()["faiss"] = module  # from now on the module itself
        return getattr(module, name)


faiss = _Faiss()

VectorIndexKind = Literal["flat", "hnsw"]
FLAT: VectorIndexKind = "flat"
HNSW: VectorIndexKind = "hnsw"
VECTOR_INDEX_KINDS = ("auto", FLAT, HNSW)

# "auto" picks HNSW from this many chunks on, flat below. Measured on this machine
# (bench/results/vector-scale.md, 384-d, one thread, warm): exact flat search of one query
# costs ~0.05 ms per 1,000 chunks, so it passes 5 ms -- more than a whole warm answer on
# the BBC corpus (3-4 ms) -- at ~77,000 chunks and takes 9 ms at 100,000, where HNSW
# answers in ~3 ms with recall@10 0.99. Below it flat is exact, builds in no time and
# removes in place.
HNSW_MIN_CHUNKS = 100_000

# HNSW defaults, from bench/results/vector-scale.md (realistic vectors, one search thread):
# M=32 with efConstruction=80 builds a million chunks in 2.5 minutes on two cores (float16
# storage: 1 GB); efSearch=600 then answers in ~2 ms with recall@10 0.92 at 1M chunks
# (0.85 with efSearch=300; 0.99 at 100,000).
# Search time grows about linearly with efSearch, so users who want more recall at 1M
# raise ``index.hnsw_ef_search`` (no rebuild) and stay far inside the 25 ms budget.
# A search is always at least k wide (the bot asks k=50), see ``search``.
DEFAULT_HNSW_M = 32
DEFAULT_HNSW_EF_CONSTRUCTION = 80
DEFAULT_HNSW_EF_SEARCH = 600

# HNSW removal keeps removed rows as tombstones until they pass this share of the rows,
# then rebuilds the graph (see FaissVectorStore.remove).
HNSW_MAX_TOMBSTONE_FRACTION = 0.2
# A filtered HNSW search scores up to this many allowed chunks exactly (their stored vectors
# times the query: ~5 ms at 20,000) instead of walking the graph, where a narrow filter
# would starve the beam; see FaissVectorStore._search_within.
EXACT_FILTER_MAX_IDS = 20_000
REBUILD_BATCH = 100_000  # rows decoded at a time while rebuilding a graph

VECTORS_FILE = "chunk_vectors.faiss"  # the store's one file in a generation folder


class ReadOnlyIndexError(QuotebotError):
    """A change to a vector store loaded with ``mmap=True``; load it with ``mmap=False`` to change it.

    A bug in the caller, not the user's doing: it keeps the INTERNAL exit code."""


class FaissVectorStore:
    """Inner-product search over normalised vectors under stable ids (``IndexIDMap2``).

    ``kind="flat"``: ``IndexFlatIP``, exact, float32. ``kind="hnsw"``: ``IndexHNSWSQ`` with
    float16 storage and the inner-product metric: approximate, half the memory (fp16 changes
    a cosine by ~1e-3 and recall@10 not at all, measured); ``hnsw_m`` links per node (fixed
    once built), ``hnsw_ef_construction`` build effort, ``hnsw_ef_search`` search effort.
    """

    def __init__(
        self,
        dimension: int,
        index: faiss.Index | None = None,
        *,
        kind: VectorIndexKind = FLAT,
        hnsw_m: int = DEFAULT_HNSW_M,
        hnsw_ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION,
        hnsw_ef_search: int = DEFAULT_HNSW_EF_SEARCH,
        read_only: bool = False,
        path: Path | None = None,
    ) -> None:
        self.dimension = dimension
        self.read_only = read_only
        self._path = path
        if index is None:
            if kind not in (FLAT, HNSW):
                raise ValueError(f"unknown vector index kind {kind!r}: expected 'flat' or 'hnsw'")
            index = _new_faiss_index(kind, dimension, hnsw_m, hnsw_ef_construction, hnsw_ef_search)
        self._index = index
        self.kind: VectorIndexKind = _kind_of(index)
        self._live_only = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)  # excludes tombstones (-1)
        self._dead = int((self._id_map() < 0).sum()) if self.kind == HNSW else 0

    # --- what it is ----------------------------------------------------------------------

    @property
    def params(self) -> dict[str, int]:
        """The HNSW parameters (``hnsw_m``, ``hnsw_ef_construction``, ``hnsw_ef_search``); empty for flat."""
        if self.kind != HNSW:
            return {}
        hnsw = self._inner().hnsw
        return {
            "hnsw_m": int(hnsw.nb_neighbors(1)),
            "hnsw_ef_construction": int(hnsw.efConstruction),
            "hnsw_ef_search": int(hnsw.efSearch),
        }

    @property
    def tombstones(self) -> int:
        """Removed chunks an HNSW graph still holds as waypoints (never returned); 0 for flat."""
        return self._dead

    def set_ef_search(self, ef_search: int) -> None:
        """Change HNSW search effort (a search-time setting: no rebuild, fine on a mapped store)."""
        if self.kind != HNSW:
            raise ValueError("ef_search applies to an hnsw store only")
        if ef_search < 1:
            raise ValueError(f"ef_search must be >= 1, got {ef_search}")
        self._inner().hnsw.efSearch = int(ef_search)

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._dead

    def __repr__(self) -> str:
        mode = ", read-only" if self.read_only else ""
        return f"FaissVectorStore({self.kind}, {len(self)} x {self.dimension}{mode})"

    # --- changes ---------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._check_writable("add")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids) and ids.min() < 0:
            raise ValueError("vector ids must be >= 0 (negative ids mark removed rows)")
        if len(ids):
            with _build_threads():
                self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Forget ``ids``; returns how many it held. Flat: removed in place.

        HNSW: faiss cannot unlink graph nodes. Removed rows become tombstones (id -1): they
        stay in the graph as waypoints and are never returned. Once more than
        ``HNSW_MAX_TOMBSTONE_FRACTION`` of the rows are tombstones, the graph is rebuilt from
        the live rows' stored vectors: the slow path, as long as building an index that size
        (minutes at a million chunks, bench/results/vector-scale.md).
        """
        self._check_writable("remove")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if self.kind == FLAT:
            return int(self._index.remove_ids(ids))
        id_map = self._id_map()  # a writable view of the index's row -> id table
        gone = np.isin(id_map, ids[ids >= 0])
        removed = int(gone.sum())
        if removed:
            id_map[gone] = -1
            self._index.construct_rev_map()
            self._dead += removed
            if self._dead > HNSW_MAX_TOMBSTONE_FRACTION * self._index.ntotal:
                self.compact()
        return removed

    def compact(self) -> None:
        """Rebuild an HNSW graph from its live rows, dropping tombstones (see ``remove``)."""
        self._check_writable("compact")
        if self.kind != HNSW or self._dead == 0:
            return
        old = self._index
        rows = np.flatnonzero(self._id_map() >= 0)
        live_ids = self._id_map()[rows].copy()
        params = self.params
        self._index = _new_faiss_index(HNSW, self.dimension, params["hnsw_m"], params["hnsw_ef_construction"],
                                       params["hnsw_ef_search"])
        self._dead = 0
        storage = faiss.downcast_index(faiss.downcast_index(old.index).storage)
        for start in range(0, len(rows), REBUILD_BATCH):  # decoded a batch at a time: no second full copy
            batch = rows[start : start + REBUILD_BATCH]
            with _build_threads():
                self._index.add_with_ids(storage.reconstruct_batch(batch), live_ids[start : start + REBUILD_BATCH])
        del old

    # --- reads -----------------------------------------------------------------------------

    def ids(self) -> np.ndarray:
        id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return id_map[id_map >= 0] if self._dead else id_map

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids``, in that order (float32; an hnsw store's are its float16
        values, within ~1e-3 of what was added); ``KeyError`` for an id it does not hold."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        id_map = self._id_map()
        order = np.argsort(id_map, kind="stable")
        at = np.searchsorted(id_map, ids, sorter=order)
        found = at < len(id_map)
        found[found] = id_map[order[at[found]]] == ids[found]
        found &= ids >= 0
        if not found.all():
            raise KeyError(f"ids not in the vector store: {ids[~found][:10].tolist()}")
        rows = order[at].astype(np.int64)
        if len(rows) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        inner = self._inner()
        if self.kind == FLAT:
            stored = faiss.rev_swig_ptr(inner.get_xb(), self._index.ntotal * self.dimension)
            return stored.reshape(-1, self.dimension)[rows]
        return faiss.downcast_index(inner.storage).reconstruct_batch(rows)

    def search(
        self, vector: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``allowed`` (sorted int64 chunk ids): search only among these (a filter); None: all."""
        _one_search_thread()
        if len(self) == 0 or k < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if allowed is not None:
            return self._search_within(query, k, np.ascontiguousarray(allowed, dtype=np.int64))
        k = min(k, len(self))
        if self.kind == HNSW:
            # faiss 1.15 does not widen the beam to k by itself: with efSearch < k the k
            # results are a narrow beam's leftovers. Search at least k wide, never returning
            # tombstones (they still guide the walk through the graph).
            params = faiss.SearchParametersHNSW(efSearch=max(k, int(self._inner().hnsw.efSearch)))
            if self._dead:
                params.sel = self._live_only
            scores, ids = self._index.search(query, k, params=params)
        else:
            scores, ids = self._index.search(query, k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _search_within(self, query: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Search among ``allowed`` ids only.

        Flat: faiss's exact search with an ID selector, the same scan as unfiltered. HNSW: a
        graph walk that skips non-allowed nodes loses recall when few pass (the beam fills
        with rejected nodes), so up to ``EXACT_FILTER_MAX_IDS`` allowed chunks are scored
        exactly from their stored vectors (complete by construction); beyond that the walk
        with the selector is as good as an unfiltered one.
        """
        if len(allowed) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, len(allowed))
        if self.kind == HNSW and len(allowed) <= EXACT_FILTER_MAX_IDS:
            held = allowed[np.isin(allowed, self.ids(), assume_unique=True)] if self._dead else allowed
            if len(held) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            scores = (self.vectors(held) @ query[0]).astype(np.float32)
            top = np.argsort(-scores, kind="stable")[:k]
            return held[top], scores[top]
        selector = faiss.IDSelectorBatch(allowed)
        if self.kind == HNSW:
            params = faiss.SearchParametersHNSW(efSearch=max(k, int(self._inner().hnsw.efSearch)), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    # --- files -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def commit(self, generation: Path) -> StoreRef:
        """Write the store into ``generation`` (one file); the reference says which kind it is."""
        self.save(generation / VECTORS_FILE)
        return StoreRef(backend=FaissBackend.name, path=VECTORS_FILE, params={"kind": self.kind, **self.params})

    @classmethod
    def load(cls, path: Path, mmap: bool = False, *, hnsw_ef_search: int | None = None) -> FaissVectorStore:
        """Read a saved store. ``mmap=True`` maps vectors and graph from the file (read-only,
        shared page cache; the file must then never be rewritten in place, only replaced or
        unlinked); ``mmap=False`` reads a private copy that ``add``/``remove`` may change.
        ``hnsw_ef_search`` overrides the saved search effort of an hnsw store."""
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as error:
            raise CorruptIndexError(f"{path}: unreadable FAISS index ({_first_line(error)})") from None
        try:
            store = cls(index.d, index, read_only=mmap, path=Path(path))
        except TypeError as error:
            raise CorruptIndexError(f"{path}: {error}") from None
        if hnsw_ef_search is not None and store.kind == HNSW:
            store.set_ef_search(hnsw_ef_search)
        return store

    # --- internals -------------------------------------------------------------------------

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            where = f"{self._path}: " if self._path else ""
            raise ReadOnlyIndexError(
                f"{where}cannot {action} vectors: the store is memory-mapped read-only (loaded with "
                "mmap=True); load it with mmap=False to change it"
            )

    def _inner(self) -> faiss.Index:
        return faiss.downcast_index(self._index.index)

    def _id_map(self) -> np.ndarray:
        """The row -> id table as a view of faiss memory (tombstones are -1)."""
        count = int(self._index.ntotal)
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        return faiss.rev_swig_ptr(self._index.id_map.data(), count)


def choose_vector_index(kind: str, expected_chunks: int) -> VectorIndexKind:
    """The concrete kind for a setting: ``auto`` is flat below ``HNSW_MIN_CHUNKS`` chunks, hnsw from it on."""
    if kind == "auto":
        return HNSW if expected_chunks >= HNSW_MIN_CHUNKS else FLAT
    if kind in (FLAT, HNSW):
        return kind  # type: ignore[return-value]
    raise ValueError(f"unknown vector index kind {kind!r}: expected one of {', '.join(VECTOR_INDEX_KINDS)}")


def new_vector_store(kind: str, dimension: int, expected_chunks: int, **params: int) -> FaissVectorStore:
    """An empty store for about ``expected_chunks`` chunks; ``kind`` is auto, flat or hnsw.

    ``params`` are ``hnsw_m``, ``hnsw_ef_construction``, ``hnsw_ef_search`` (ignored for flat).
    """
    unknown = set(params) - {"hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"}
    if unknown:
        raise TypeError(f"unknown vector store parameters: {', '.join(sorted(unknown))}")
    return FaissVectorStore(dimension, kind=choose_vector_index(kind, expected_chunks), **params)


class FaissOptions(BaseModel):
    """``index.vector_store`` keys of the faiss backend (the ``FaissBackend`` parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="Exact flat search, approximate HNSW, or auto (flat below 100,000 chunks)."
    )
    hnsw_m: int = Field(DEFAULT_HNSW_M, ge=4, le=128, description="HNSW links per chunk; used when a graph is built.")
    hnsw_ef_construction: int = Field(
        DEFAULT_HNSW_EF_CONSTRUCTION, ge=1, le=4096, description="HNSW build effort; used when a graph is built."
    )
    hnsw_ef_search: int = Field(
        DEFAULT_HNSW_EF_SEARCH, ge=1, le=4096, description="HNSW search breadth (recall vs time); applies on load."
    )


class FaissBackend:
    """Makes and opens ``FaissVectorStore``s (see quotebot.index.backends.VectorBackend)."""

    name = "faiss"
    Options = FaissOptions

    def __init__(
        self,
        kind: str = "auto",
        hnsw_m: int = DEFAULT_HNSW_M,
        hnsw_ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION,
        hnsw_ef_search: int | None = None,
    ) -> None:
        self.kind = kind  # auto: flat while small, HNSW from HNSW_MIN_CHUNKS on
        self.hnsw_ef_search = hnsw_ef_search  # None: a loaded graph keeps the effort it was saved with
        self.params = {
            "hnsw_m": hnsw_m,
            "hnsw_ef_construction": hnsw_ef_construction,
            "hnsw_ef_search": hnsw_ef_search or DEFAULT_HNSW_EF_SEARCH,
        }

    def open(self, generation: Path, ref: StoreRef, *, mmap: bool) -> FaissVectorStore:
        return FaissVectorStore.load(generation / ref.path, mmap=mmap, hnsw_ef_search=self.hnsw_ef_search)

    def writer(self, previous, *, dimension: int, expected_chunks: int, dropped: np.ndarray) -> FaissVectorStore:
        """``previous`` changed in place when it is still the right kind for ``expected_chunks``;
        else a new store of that kind holding its kept vectors (the flat <-> HNSW migration)."""
        kind = choose_vector_index(self.kind, expected_chunks)
        dropped = np.asarray(dropped, dtype=np.int64)
        if isinstance(previous, FaissVectorStore) and previous.kind == kind and not previous.read_only:
            if len(dropped):
                previous.remove(dropped)
            return previous
        store = new_vector_store(kind, dimension, expected_chunks, **self.params)
        if previous is not None:
            kept = np.setdiff1d(previous.ids(), dropped)
            if len(kept):
                store.add(kept, previous.vectors(kept))
        return store


def _new_faiss_index(kind: str, dimension: int, m: int, ef_construction: int, ef_search: int) -> faiss.Index:
    if kind == FLAT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if m < 2 or ef_construction < 1 or ef_search < 1:
        raise ValueError(f"HNSW needs M >= 2, ef_construction, ef_search >= 1: {m}, {ef_construction}, {ef_search}")
    hnsw = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_fp16, m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.hnsw.efSearch = ef_search
    return faiss.IndexIDMap2(hnsw)


def _kind_of(index: faiss.Index) -> VectorIndexKind:
    """The kind of a (loaded) faiss index; ``TypeError`` for anything this store did not write."""
    index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexIDMap2):
        raise TypeError(f"expected an IndexIDMap2 vector index, found {type(index).__name__}")
    inner = faiss.downcast_index(index.index)
    if inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise TypeError(f"expected an inner-product index, found metric {inner.metric_type}")
    if isinstance(inner, faiss.IndexHNSW):  # IndexHNSWSQ (what this store writes) or IndexHNSWFlat
        return HNSW
    if isinstance(inner, faiss.IndexFlat):
        return FLAT
    raise TypeError(f"expected a flat or HNSW index, found {type(inner).__name__}")


_searching_thread = threading.local()


def _one_search_thread() -> None:
    """One OpenMP thread for the calling thread's searches. faiss's thread count belongs to
    the thread that sets it, and a new thread starts with one per core: the retriever searches
    on a thread of its own (``Retriever._evidence``), where two would split the scan between
    them differently, giving scores that differ in the last bits (and answers that could
    differ), and compete with the asking thread for the second core."""
    if not getattr(_searching_thread, "one", False):
        faiss.omp_set_num_threads(1)
        _searching_thread.one = True


@contextlib.contextmanager
def _build_threads() -> Iterator[None]:
    """Every core while vectors are added (an HNSW graph builds in parallel), then back to
    the one thread a single query is fastest on."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
