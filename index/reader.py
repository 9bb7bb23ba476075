"""Reading an index: ``QuoteIndex``, the loaded live generation that retrieval searches.

Writing lives in ``quotebot.index.builder``; this module imports neither the chunker, the
embedder nor the ONNX export, so a reader (the bot, ``index list``) loads only what it reads.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np

from quotebot.index import generation_files, storage
from quotebot.index.articles import Span
from quotebot.index.backends import KeywordSearcher, VectorStore, open_keyword_index, open_vector_store
from quotebot.index.errors import CorruptIndexError
from quotebot.index.manifest import ChunkingSettings, Counts, Manifest
from quotebot.index.settings import KeywordIndexSettings, VectorStoreSettings
from quotebot.index.tables import ArticleTable, ChunkTable

__all__ = ["QuoteIndex", "read_manifest"]

# Sentence vectors larger than this are read row by row (``sentence_vectors_at``) rather than
# through the map, which would come to count whole in the process's RSS; smaller ones are
# read through the map, which is faster (0.4 ms a question on BBC's 46 MB, against 0.8 ms).
READ_NOT_MAPPED_BYTES = 256 * 2**20

# A reader retries when a writer replaced the generation it was reading (the writer
# deletes the old one once the new one is live).
LOAD_ATTEMPTS = 3


class QuoteIndex:
    """A loaded index: articles with their verbatim text, chunks, sentences and both stores.

    ``chunks`` maps each chunk's stable int64 id (its id in the vector and keyword
    stores) to the chunk; ids are never reused, so they survive index updates. Sentences
    are numbered per article in text order; ``sentence_row`` maps them to rows of
    ``sentence_vectors``.
    """

    def __init__(
        self,
        manifest: Manifest,
        articles: ArticleTable,
        chunks: ChunkTable,
        vectors: VectorStore,
        keywords: KeywordSearcher,
        sentence_vectors: np.ndarray,
        path: Path,
    ) -> None:
        self.manifest = manifest
        self.articles = articles
        self.chunks = chunks
        self.vectors = vectors
        self.keywords = keywords
        self.sentence_vectors = sentence_vectors
        self.path = path  # the generation folder it was loaded from

    @property
    def generation(self) -> str:
        return self.path.name

    def sentences_of(self, article_id: str) -> list[Span]:
        return [Span(start=start, end=end) for start, end in self.sentence_offsets(article_id)]

    def sentence_offsets(self, article_id: str) -> list[tuple[int, int]]:
        """The article's sentences as (start, end) pairs: ``sentences_of`` without a model
        for each (the per-question scoring reads them by the thousand)."""
        rows = self._sentence_slice(self.articles.position(article_id))
        return [(start, end) for start, end in self.chunks.sentences[rows].tolist()]

    def sentence_vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of sentence ``rows``, as float32, in that order.

        A mapped index whose sentence vectors are large reads them from its file (one read per
        run of consecutive rows) rather than through the map: a question reads a few hundred
        scattered rows, and each first touch of a mapped page makes the kernel map the 64 KB
        around it into this process, so over a few hundred questions most of the file counts
        in the process's RSS (0.9 GB of a million-chunk index's 2.6 GB after 200 questions;
        read, none of it).
        """
        rows = np.asarray(rows, dtype=np.int64)
        stored = self.sentence_vectors
        opened = getattr(self, "_sentence_file", None)
        if opened is None or len(rows) == 0:
            return np.asarray(stored[rows], dtype=np.float32)
        row_bytes = stored.shape[1] * stored.dtype.itemsize
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = (np.flatnonzero(np.diff(ordered) != 1) + 1).tolist()
        read = np.empty((len(rows), stored.shape[1]), dtype=stored.dtype)  # in row order
        into = memoryview(read).cast("B")
        for begin, end in zip([0, *breaks], [*breaks, len(rows)]):
            at = opened.data_offset + int(ordered[begin]) * row_bytes
            os.preadv(opened.descriptor, [into[begin * row_bytes : end * row_bytes]], at)
        out = np.empty((len(rows), stored.shape[1]), dtype=np.float32)
        out[order] = read
        return out

    def sentence_row(self, article_id: str, sentence: int) -> int:
        return int(self.articles.sentence_base[self.articles.position(article_id)]) + sentence

    def chunk_ids_of(self, article_id: str) -> list[int]:
        position = self.articles.position(article_id)
        start, end = self.articles.chunk_base[position], self.articles.chunk_base[position + 1]
        return self.chunks.ids[start:end].tolist()

    def _sentence_slice(self, position: int) -> slice:
        base = self.articles.sentence_base
        return slice(int(base[position]), int(base[position + 1]))

    @classmethod
    def load(
        cls,
        index_dir: Path,
        *,
        model: str | None = None,
        chunking: ChunkingSettings | None = None,
        mmap: bool = True,
        vector_store: VectorStoreSettings | None = None,
        keyword_index: KeywordIndexSettings | None = None,
    ) -> QuoteIndex:
        """Load the live generation; refuse one built with another model or chunking.

        ``mmap`` maps the arrays and vectors instead of reading them (a server's choice);
        a writer loads with ``mmap=False`` to get a copy it may change. A generation
        replaced and deleted by a writer while being read is read again from the new pointer.
        The stores are opened by the backends the manifest names; the configured
        ``vector_store``/``keyword_index`` options apply to a store of the configured backend
        (search-time options, e.g. FAISS's ``hnsw_ef_search``).
        """
        stores = (vector_store, keyword_index)
        for attempt in range(LOAD_ATTEMPTS):
            generation = storage.current_generation(index_dir)
            try:
                return cls._load_generation(generation, index_dir, model, chunking, mmap, stores)
            except CorruptIndexError:
                replaced = storage.current_name(index_dir) != generation.name
                if not replaced or attempt == LOAD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(
        cls,
        generation: Path,
        index_dir: Path,
        model: str | None,
        chunking: ChunkingSettings | None,
        mmap: bool,
        stores: tuple[VectorStoreSettings | None, KeywordIndexSettings | None],
    ) -> QuoteIndex:
        manifest = generation_files.read_manifest(generation)
        generation_files.check_compatible(manifest, index_dir, model, chunking)
        generation_files.check_file_sizes(generation, manifest)
        articles, chunks = generation_files.read_tables(generation, mmap)
        vector_settings, keyword_settings = stores
        vectors = open_vector_store(
            generation, manifest.vector_store, mmap=mmap, configured=vector_settings.configured if vector_settings else None
        )
        keywords = open_keyword_index(
            generation, manifest.keyword_index, mmap=mmap, configured=keyword_settings.configured if keyword_settings else None
        )
        sentence_vectors = generation_files.load_array(generation / storage.SENTENCE_VECTORS_FILE, mmap)
        _check_counts(manifest, articles, chunks, vectors, keywords, sentence_vectors, generation)
        index = cls(manifest, articles, chunks, vectors, keywords, sentence_vectors, generation)
        if mmap and sentence_vectors.nbytes > READ_NOT_MAPPED_BYTES:
            # Opened now, while the generation is there: a writer may delete it once replaced.
            index._sentence_file = _OpenArray(generation / storage.SENTENCE_VECTORS_FILE)
        return index


class _OpenArray:
    """An .npy file open for reading rows, closed once nothing holds it (copies of an index
    share it); ``data_offset`` is where its rows begin, after the header."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            read_header(handle)
            self.data_offset = handle.tell()
        self.descriptor = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.descriptor)


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the live index, without loading the rest."""
    return generation_files.read_manifest(storage.current_generation(index_dir))


def _check_counts(
    manifest: Manifest,
    articles: ArticleTable,
    chunks: ChunkTable,
    vectors: VectorStore,
    keywords: KeywordSearcher,
    sentence_vectors: np.ndarray,
    generation: Path,
) -> None:
    counts = manifest.counts
    found = Counts(articles=len(articles), chunks=len(chunks), sentences=len(sentence_vectors))
    if found != counts or len(vectors) != counts.chunks or len(keywords) != counts.chunks or len(chunks.sentences) != counts.sentences:
        raise CorruptIndexError(
            f"{generation}: index files disagree with the manifest ({found}, {len(vectors)} vectors, "
            f"{len(keywords)} BM25 rows, {len(chunks.sentences)} sentence spans; manifest: {counts}): "
            f"run `quotebot index build`"
        )
    # The id maps: every id a store returns must be a chunk (else a KeyError mid-question).
    # Comparisons of int64 arrays: milliseconds even for a million chunks.
    if not np.array_equal(keywords.ids(), chunks.ids):
        raise CorruptIndexError(
            f"{generation / manifest.keyword_index.path}: damaged index (the BM25 id map does not match the chunks): "
            "run `quotebot index build`"
        )
    if not np.array_equal(np.sort(vectors.ids()), np.sort(chunks.ids)):
        raise CorruptIndexError(
            f"{generation / manifest.vector_store.path}: damaged index (the vector id map does not match the chunks): "
            "run `quotebot index build`"
        )
