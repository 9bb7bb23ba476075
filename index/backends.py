"""The two stores behind an index, as protocols split by use, and the factory that makes them.

An index keeps every chunk twice: its vector in a *vector store* (dense search) and its
tokens in a *keyword index* (BM25). Both map a chunk's id (an int64 that stays the same
across index generations) to a score. Who needs what:

- retrieval searches (``VectorSearcher``, ``KeywordSearcher``);
- the builder writes (``VectorWriter``, ``KeywordWriter``): it changes a store and commits it
  into a new generation folder, getting back the ``StoreRef`` the manifest records;
- loading resolves that reference: ``open_vector_store(generation, manifest.vector_store)``.

A backend is a class named in ``VECTOR_BACKENDS`` or ``KEYWORD_BACKENDS`` (txtai's factory
idea): config.yaml's ``index.vector_store: {backend: faiss, ...}`` picks it, and the other keys
are its constructor's parameters, checked by its ``Options`` model when settings load.
Everything particular to one engine (FAISS's flat/HNSW choice, moving vectors between them,
memory-mapping) lives in its backend. Adding a backend touches a new module, a line of the
table below and a contract-test subclass (quotebot.index.testing); docs/extending.md has
the steps.

This module imports no engine: a backend module is imported when it is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from quotebot.index.errors import ExitCode, QuotebotError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from quotebot.index.manifest import StoreRef

# name -> "module:Class". The class takes its options as keyword arguments, has an ``Options``
# pydantic model of them, and offers the methods of ``VectorBackend`` / ``KeywordBackend``.
VECTOR_BACKENDS: dict[str, str] = {
    "faiss": "quotebot.index.faiss_store:FaissBackend",
}
KEYWORD_BACKENDS: dict[str, str] = {
    "bm25s": "quotebot.index.bm25_store:Bm25Backend",
}
DEFAULT_VECTOR_BACKEND = "faiss"
DEFAULT_KEYWORD_BACKEND = "bm25s"


class UnknownBackendError(QuotebotError):
    """An index names a backend this quotebot does not have (settings name theirs when they load)."""

    exit_code = ExitCode.NO_INDEX


# -- searching: what retrieval needs -------------------------------------------------------


@runtime_checkable
class VectorSearcher(Protocol):
    """Normalised vectors under stable int64 chunk ids, searched by inner product (= cosine).

    Filters (for instance only some articles' chunks) are keyword-only arguments of
    ``search`` with a default that filters nothing, so a caller that filters nothing works
    with every store.
    """

    dimension: int

    def __len__(self) -> int: ...

    def search(
        self, vector: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest ids to one normalised vector and their inner products, best first.

        Fewer when the store holds fewer; exact or approximate as the backend says.
        ``allowed`` (sorted int64 ids, a filter): the ``k`` nearest among these only, as
        complete as an unfiltered search (never fewer because others were nearer).
        """
        ...

    def ids(self) -> np.ndarray:
        """Every id the store holds (what `quotebot index verify` checks against the chunks)."""
        ...


@runtime_checkable
class KeywordSearcher(Protocol):
    """BM25-style keyword search over chunks' tokens (already stemmed by quotebot.index.text)."""

    def __len__(self) -> int: ...

    def search(
        self, tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` chunk ids with a positive score for ``tokens``, best first; with
        ``allowed`` (sorted int64 ids, a filter), the best among these only."""
        ...

    def idf(self, tokens: list[str]) -> np.ndarray:
        """Each token's inverse document frequency over the indexed chunks (0 for an unknown
        token): what a keyword is worth, which retrieval weighs a question's keywords by."""
        ...

    def ids(self) -> np.ndarray:
        """Every chunk id the index holds, in row order."""
        ...


# -- writing: what the builder needs -------------------------------------------------------


@runtime_checkable
class VectorWriter(Protocol):
    """A vector store being changed into the next generation's."""

    dimension: int

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (n x dimension, normalised) under ``ids`` (n new, unique ids >= 0)."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Forget these ids (unknown ones are ignored); returns how many were removed."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` in that order (to move them to another store)."""
        ...

    def commit(self, generation: Path) -> StoreRef:
        """Write the store into the generation folder; the reference loads it back."""
        ...


@runtime_checkable
class KeywordWriter(Protocol):
    """A keyword index built for the next generation."""

    def __len__(self) -> int: ...

    def commit(self, generation: Path) -> StoreRef:
        """Write the index into the generation folder; the reference loads it back."""
        ...


class VectorStore(VectorSearcher, VectorWriter, Protocol):
    """A loaded vector store: searchable, and writable unless it was loaded memory-mapped."""


# -- backends: making and opening stores -----------------------------------------------------


class VectorBackend(Protocol):
    """A vector engine, configured (``Options`` are its constructor's keyword arguments)."""

    name: str

    def open(self, generation: Path, ref: StoreRef, *, mmap: bool) -> VectorStore:
        """The store ``ref`` names in ``generation``. ``mmap``: read-only and shared (a server);
        else a private copy the builder may change. Damaged files: ``CorruptIndexError``."""
        ...

    def writer(
        self, previous: VectorStore | None, *, dimension: int, expected_chunks: int, dropped: np.ndarray
    ) -> VectorWriter:
        """The store the next generation is written through: ``previous`` (loaded privately)
        without the ``dropped`` ids, or a new one holding its other vectors, when the backend
        wants another layout for ``expected_chunks`` or ``previous`` is another backend's;
        an empty store when there is no ``previous``."""
        ...


class KeywordBackend(Protocol):
    name: str

    def open(self, generation: Path, ref: StoreRef, *, mmap: bool) -> KeywordSearcher: ...

    def build(self, ids: np.ndarray, token_lists: Sequence[list[str]], previous: KeywordSearcher | None = None) -> KeywordWriter:
        """A new index of one token list per chunk id (keyword indexes are rebuilt each generation).

        ``previous``: the last generation's index of this backend, if any. A chunk id it holds
        is the same text, so a backend may take such a chunk's tokens from it instead of
        reading ``token_lists[i]`` (the builder's lazy sequence then never splits them)."""
        ...


def backend_class(kind: str, name: str) -> type:
    """The class registered as ``name`` in the ``kind`` table ("vector" or "keyword")."""
    table = VECTOR_BACKENDS if kind == "vector" else KEYWORD_BACKENDS
    if name not in table:
        raise UnknownBackendError(f"unknown {kind} backend {name!r}: quotebot has {', '.join(sorted(table))}")
    module, _, attribute = table[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def options_model(kind: str, name: str) -> type[BaseModel]:
    """The pydantic model of a backend's options (what settings check the YAML keys against)."""
    return backend_class(kind, name).Options


def vector_backend(name: str = DEFAULT_VECTOR_BACKEND, options: Mapping[str, Any] | None = None) -> VectorBackend:
    """The backend ``name`` with ``options`` (checked by its ``Options``; the ones not given
    keep the constructor's defaults)."""
    cls = backend_class("vector", name)
    return cls(**cls.Options.model_validate(dict(options or {})).model_dump(exclude_unset=True))


def keyword_backend(name: str = DEFAULT_KEYWORD_BACKEND, options: Mapping[str, Any] | None = None) -> KeywordBackend:
    cls = backend_class("keyword", name)
    return cls(**cls.Options.model_validate(dict(options or {})).model_dump(exclude_unset=True))


def open_vector_store(
    generation: Path, ref: StoreRef, *, mmap: bool, configured: tuple[str, Mapping[str, Any]] | None = None
) -> VectorStore:
    """The vector store a manifest's ``ref`` names. The configured options apply when the
    index was built with the configured backend (search-time options such as FAISS's
    ``hnsw_ef_search``); another backend opens with its defaults."""
    options = configured[1] if configured is not None and configured[0] == ref.backend else None
    return vector_backend(ref.backend, options).open(generation, ref, mmap=mmap)


def open_keyword_index(
    generation: Path, ref: StoreRef, *, mmap: bool, configured: tuple[str, Mapping[str, Any]] | None = None
) -> KeywordSearcher:
    options = configured[1] if configured is not None and configured[0] == ref.backend else None
    return keyword_backend(ref.backend, options).open(generation, ref, mmap=mmap)
