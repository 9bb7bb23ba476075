"""Writing the index: articles -> chunks -> vectors -> stores, as a new generation.

``IndexBuilder`` plans which articles keep their chunks and vectors and which are chunked and
embedded anew, then ``_GenerationWriter`` writes the next generation and publishes it.
Reading lives in ``quotebot.index.reader``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from quotebot.index import generation_files, storage
from quotebot.index.articles import Article, Chunk, Span
from quotebot.index.backends import keyword_backend, vector_backend
from quotebot.index.chunking import chunk_article
from quotebot.index.embedding import DocumentEncoder
from quotebot.index.errors import CorruptIndexError, ExitCode, IndexMismatchError, QuotebotError
from quotebot.index.lock import IndexLock
from quotebot.index.manifest import FORMAT_VERSION, ChunkingSettings, Counts, Manifest, StoreRef, article_fingerprint
from quotebot.index.onnx_encoder import encoder_dir, export_onnx_encoders
from quotebot.index.reader import QuoteIndex
from quotebot.index.settings import KeywordIndexSettings, VectorStoreSettings
from quotebot.index.tables import (
    ARTICLE_ROW,
    CHUNK_ROW,
    article_record,
    chunk_rows,
    record_line,
    sentence_rows,
    write_record_lines,
)
from quotebot.index.text import tokenize
from quotebot.index.threads import InThread
from quotebot.index.vectorize import ArticleVectors, ChunkedArticle, embedding_text, stream_article_vectors

__all__ = ["BuildProgress", "IdCollisionError", "IndexBuilder", "IndexChange", "UnknownArticleError"]

# What stands in the token file for a chunk without a single BM25 token.
NO_TOKENS = "\x00"


# Chunks articles, in order: (sentences, chunks) for each.
Chunker = Callable[[list[Article]], list[tuple[list[Span], list[Chunk]]]]


class Vectorizer(Protocol):
    """Chunks and embeds new articles somewhere other than this process (index/ray_build.py)."""

    def chunk(self, articles: Sequence[Article], chunk_tokens: int, chunk_overlap: int) -> list[tuple[list[Span], list[Chunk]]]: ...

    def embed_articles(
        self, embedder: DocumentEncoder, articles: Sequence[ChunkedArticle], on_batch: Callable[[int, int], None] | None = None
    ) -> list[ArticleVectors]: ...


@dataclass(frozen=True)
class BuildProgress:
    articles_done: int
    articles_total: int
    chunks_done: int
    seconds: float
    texts_done: int = 0  # sentences embedded, those of an unfinished article included
    texts_total: int = 0


class IndexChange(BaseModel):
    """What one build, add or remove did to the index."""

    model_config = ConfigDict(frozen=True)

    manifest: Manifest
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    unchanged: int = 0
    embedded_chunks: int = 0
    seconds: float = 0.0
    kept_unread: list[str] = Field(
        default_factory=list, description="indexed articles kept because their file or folder could not be read"
    )
    renamed: list[str] = Field(
        default_factory=list, description="ids qualified by their folder because another file had the id"
    )


class UnknownArticleError(QuotebotError):
    """``index remove`` was given an id the index does not hold."""

    exit_code = ExitCode.USAGE


class IndexBuilder:
    """Chunks, embeds and stores articles as a new generation of ``index_dir``.

    Every change writes a whole new generation and publishes it atomically, under the
    index's writer lock. Articles whose title and text are unchanged keep their chunks,
    chunk ids, vectors and tokens from the live generation: only new or changed articles
    are chunked and embedded.
    """

    def __init__(
        self,
        embedder: DocumentEncoder,
        chunk_tokens: int,
        chunk_overlap: int,
        export_onnx: bool = True,
        vector_store: VectorStoreSettings | None = None,
        keyword_index: KeywordIndexSettings | None = None,
        vectorizer: Vectorizer | None = None,
    ) -> None:
        self.embedder = embedder
        # Where new articles are chunked and embedded: here (None), or e.g. on Ray (index/ray_build.py).
        self.vectorizer = vectorizer
        self.chunking = ChunkingSettings(chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
        self.export_onnx = export_onnx
        # The stores, as configured (index.vector_store, index.keyword_index): the backend
        # decides their layout (FAISS: flat or HNSW by size) and writes their files.
        self.vector_store = vector_store or VectorStoreSettings()
        self.keyword_index = keyword_index or KeywordIndexSettings()
        self.vectors = vector_backend(self.vector_store.backend, self.vector_store.options)
        self.keywords = keyword_backend(self.keyword_index.backend, self.keyword_index.options)

    def build(
        self,
        articles: Sequence[Article],
        index_dir: Path,
        on_progress: Callable[[BuildProgress], None] | None = None,
        *,
        unreadable: Sequence[str] = (),
    ) -> IndexChange:
        """Make the index hold exactly ``articles``, re-embedding only what changed.

        ``unreadable``: absolute paths of folders and files the load could not read
        (``LoadReport.unreadable``). A read error must never remove an indexed article, so
        every indexed article that may have come from there is kept as it is, and named
        in ``IndexChange.kept_unread``.
        """
        with IndexLock(index_dir, "index build"):
            previous = self._previous(index_dir, required=False)
            target: list[Article | int] = list(articles)
            kept: list[str] = []
            if previous is not None and unreadable:
                incoming = {article.id for article in articles}
                for position, record in enumerate(previous.articles.records):
                    read_from = _file_of(record)
                    if record["id"] not in incoming and _may_come_from(read_from, unreadable):
                        target.append(position)
                        kept.append(record["id"])
            change = self._write(target, previous, index_dir, on_progress)
            return change.model_copy(update={"kept_unread": kept})

    def add(
        self, articles: Sequence[Article], index_dir: Path, on_progress: Callable[[BuildProgress], None] | None = None
    ) -> IndexChange:
        """Add ``articles`` to the live index; one with an id already there replaces it.

        An article whose id is taken by an article from another file (``a/x.txt`` and
        ``b/x.txt`` added from folders ``a`` and ``b`` are both ``x.txt``) replaces nothing:
        its id is qualified by its folder's name (``b/x.txt``), and ``IndexChange.renamed``
        says so; if that id is taken too, ``IdCollisionError`` names both files.
        """
        with IndexLock(index_dir, "index add"):
            previous = self._previous(index_dir, required=True)
            assert previous is not None
            articles, renamed = _without_collisions(articles, previous)
            incoming = {article.id: article for article in articles}
            target: list[Article | int] = [
                incoming.pop(article_id) if article_id in incoming else position
                for position, article_id in enumerate(previous.articles)
            ]
            target.extend(incoming.values())
            change = self._write(target, previous, index_dir, on_progress)
            return change.model_copy(update={"renamed": renamed})

    def remove(self, article_ids: Sequence[str], index_dir: Path) -> IndexChange:
        """Drop the named articles; every id must be in the index, or nothing changes."""
        with IndexLock(index_dir, "index remove"):
            previous = self._previous(index_dir, required=True)
            assert previous is not None
            unknown = [article_id for article_id in article_ids if article_id not in previous.articles]
            if unknown:
                raise UnknownArticleError(f"not in the index at {index_dir}: {', '.join(unknown)} (see `quotebot index list`)")
            dropped = set(article_ids)
            target: list[Article | int] = [
                position for position, article_id in enumerate(previous.articles) if article_id not in dropped
            ]
            return self._write(target, previous, index_dir, None)

    def _previous(self, index_dir: Path, *, required: bool) -> QuoteIndex | None:
        """The live index to update, as a private copy; None when a build starts afresh."""
        try:
            return QuoteIndex.load(
                index_dir,
                model=self.embedder.model,
                chunking=self.chunking,
                mmap=False,
                vector_store=self.vector_store,
                keyword_index=self.keyword_index,
            )
        except (storage.IndexMissingError, IndexMismatchError, CorruptIndexError):
            # A build replaces a missing, outdated or damaged index; add and remove need one.
            if required:
                raise
            return None

    def _write(
        self,
        target: Sequence[Article | int],
        previous: QuoteIndex | None,
        index_dir: Path,
        on_progress: Callable[[BuildProgress], None] | None,
    ) -> IndexChange:
        """``target``: the next generation's articles in order; an int is a previous article kept as it is."""
        started = time.perf_counter()
        plan = _plan(target, previous, self._chunk_all)
        if previous is not None and plan.unchanged_from(previous):
            self._export(index_dir)  # nothing to write: a new generation would only make bots reload
            return IndexChange(manifest=previous.manifest, unchanged=len(target))
        # Ray's driver is left in this thread; here, the vectors come while the writer writes.
        embedding = _Embedding(
            lambda check: self._embed(plan.to_embed, started, on_progress, check), in_thread=self.vectorizer is None
        )
        generation = storage.new_generation(index_dir)
        try:
            with generation_files.Finisher(generation) as finisher:
                manifest = _GenerationWriter(generation, self, plan, embedding.result, previous, finisher).write(started)
                synced = finisher.synced()
            self._export(index_dir)
            storage.publish(generation, synced)
        except BaseException:
            embedding.cancel()
            storage.discard(generation)
            raise
        return IndexChange(
            manifest=manifest,
            added=plan.added,
            updated=plan.updated,
            removed=plan.removed,
            unchanged=len(target) - len(plan.to_embed),
            embedded_chunks=sum(len(item.chunks) for item in plan.to_embed),
            seconds=manifest.build_seconds,
        )

    def _chunk_all(self, articles: list[Article]) -> list[tuple[list[Span], list[Chunk]]]:
        settings = self.chunking
        if self.vectorizer is not None:
            return self.vectorizer.chunk(articles, settings.chunk_tokens, settings.chunk_overlap)
        return [
            chunk_article(a.id, a.text, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
            for a in articles
        ]

    def _export(self, index_dir: Path) -> None:
        if self.export_onnx:
            # Made once per index folder, while the model is at hand; later calls find it there.
            export_onnx_encoders(self.embedder.model, encoder_dir(index_dir, self.embedder.model))

    def _embed(
        self,
        to_embed: list[ChunkedArticle],
        started: float,
        on_progress: Callable[[BuildProgress], None] | None,
        check: Callable[[], None] = lambda: None,
    ) -> dict[str, ArticleVectors]:
        """The new articles' vectors; ``check`` is called after each batch (it raises to stop)."""
        if not to_embed:
            return {}

        def report(articles_done: int, chunks_done: int, texts_done: int = 0, texts_total: int = 0) -> None:
            check()
            if on_progress:
                seconds = time.perf_counter() - started
                on_progress(BuildProgress(articles_done, len(to_embed), chunks_done, seconds, texts_done, texts_total))

        if self.vectorizer is not None:
            vectors: Iterable[ArticleVectors] = self.vectorizer.embed_articles(self.embedder, to_embed, report)
        else:
            vectors = stream_article_vectors(self.embedder, to_embed, report)
        # Sentence vectors are kept as they are written (float16), as they arrive: the
        # generation's vectors are held at half their size until the writer stores them.
        return {
            item.article.id: ArticleVectors(chunks=item_vectors.chunks, sentences=item_vectors.sentences.astype(np.float16))
            for item, item_vectors in zip(to_embed, vectors)
        }


class IdCollisionError(QuotebotError):
    """Two different files would be one article: their ids collide even when qualified."""

    exit_code = ExitCode.BAD_INPUT


def _same_file(first: str, second: str) -> bool:
    if first == second:
        return True
    try:
        return Path(first).resolve() == Path(second).resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def _may_come_from(source: str | None, unreadable: Sequence[str]) -> bool:
    """Whether an indexed article may have been read from one of the ``unreadable`` paths
    (``source``: the file it was read from, ``metadata["file"]``; older indexes kept it in ``source``).

    Records of JSON files have no file as their source: they are kept whenever anything
    was unreadable (keeping one article too many is reported; losing one is not undone).
    """
    if not source:
        return True
    path = os.path.abspath(source)
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in unreadable)


def _file_of(record: dict) -> str | None:
    """The file an article was read from: ``metadata["file"]`` (``source`` names the site or
    feed); older indexes and records kept a file's path in ``source``."""
    return (record.get("metadata") or {}).get("file") or record.get("source")


def _without_collisions(articles: Sequence[Article], previous: QuoteIndex) -> tuple[list[Article], list[str]]:
    """``articles`` with every id that names another file's article qualified by its folder.

    A file article's id is its path below the folder given; the folder is its source with
    that suffix removed. Records (no file source) are matched by id, as documented.
    """
    result, renamed = [], []
    for article in articles:
        indexed = _indexed_source(previous, article.id)
        source = _file_of(article.model_dump(include={"metadata", "source"}))
        if not indexed or not source or _same_file(indexed, source):
            result.append(article)  # new, a record, or the same file again: added or replaced as before
            continue
        qualified = _qualified_id(article.id, source)
        taken = _indexed_source(previous, qualified) if qualified else None
        if qualified is None or (taken is not None and not _same_file(taken, source)):
            raise IdCollisionError(
                f"{source}: its id '{article.id}' is already the article from {indexed}, "
                f"and no folder name tells them apart; rename one of the files"
            )
        if taken is None:
            renamed.append(f"{article.id} -> {qualified} ({indexed} is another file)")
        result.append(article.model_copy(update={"id": qualified}))
    return result, renamed


def _indexed_source(previous: QuoteIndex, article_id: str) -> str | None:
    """The source of the indexed article ``article_id``; None if there is none ("" for a record)."""
    if article_id not in previous.articles:
        return None
    return _file_of(previous.articles.records[previous.articles.position(article_id)]) or ""


def _qualified_id(article_id: str, file: str | None) -> str | None:
    """``x.txt`` from ``other/x.txt`` -> ``other/x.txt``: the id prefixed by its folder's name."""
    source = (file or "").replace(os.sep, "/")
    if not source.endswith(article_id) or len(source) == len(article_id):
        return None
    folder = source[: -len(article_id)].rstrip("/")
    name = folder.rsplit("/", 1)[-1]
    return f"{name}/{article_id}" if name not in ("", ".", "..") else None


@dataclass
class _Plan:
    """The next generation, article by article: each either kept from the previous
    generation (its position there) or new (chunked, with fresh chunk ids)."""

    entries: list[int | ChunkedArticle] = field(default_factory=list)
    new_ids: dict[str, list[int]] = field(default_factory=dict)
    to_embed: list[ChunkedArticle] = field(default_factory=list)
    dropped_chunk_ids: list[int] = field(default_factory=list)
    next_chunk_id: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def unchanged_from(self, previous: QuoteIndex) -> bool:
        return not self.to_embed and not self.removed and self.entries == list(range(len(previous.articles)))


def _plan(target: Sequence[Article | int], previous: QuoteIndex | None, chunk_all: Chunker) -> _Plan:
    """Which articles keep their chunks and vectors, which are chunked (all at once, by
    ``chunk_all``) and embedded anew."""
    plan = _Plan(next_chunk_id=previous.manifest.next_chunk_id if previous is not None else 0)
    new: list[tuple[int, Article, QuoteIndex | None]] = []  # (place in plan.entries, article, index it replaces)
    hashes = previous.manifest.article_hashes if previous is not None else {}
    kept: set[str] = set()
    for item in target:
        if isinstance(item, int):  # kept by position (add, remove)
            assert previous is not None
            plan.entries.append(item)
            kept.add(previous.articles.records[item]["id"])
            continue
        kept.add(item.id)
        old_hash = hashes.get(item.id)
        if old_hash is not None and old_hash == article_fingerprint(item):
            assert previous is not None
            position = previous.articles.position(item.id)
            if previous.articles.records[position] == article_record(item):
                plan.entries.append(position)
                continue
            # Only its date, url or metadata changed: indexed again like a changed article
            # (rare, and one path for every change is worth an embedding).
        new.append((len(plan.entries), item, previous if old_hash is not None else None))
        plan.entries.append(-1)  # filled in below, once chunked
    for (place, article, replaced), chunked in zip(new, chunk_all([article for _, article, _ in new])):
        _plan_new(plan, place, article, replaced, chunked)
    for article_id in hashes:
        if article_id not in kept:
            assert previous is not None
            plan.removed.append(article_id)
            plan.dropped_chunk_ids.extend(previous.chunk_ids_of(article_id))
    return plan


def _plan_new(
    plan: _Plan, place: int, article: Article, replaced: QuoteIndex | None, chunked: tuple[list[Span], list[Chunk]]
) -> None:
    if replaced is not None:
        plan.updated.append(article.id)
        plan.dropped_chunk_ids.extend(replaced.chunk_ids_of(article.id))
    else:
        plan.added.append(article.id)
    sentences, chunks = chunked
    plan.new_ids[article.id] = list(range(plan.next_chunk_id, plan.next_chunk_id + len(chunks)))
    plan.next_chunk_id += len(chunks)
    item = ChunkedArticle(article, sentences, chunks)
    plan.entries[place] = item
    plan.to_embed.append(item)


class _Embedding:
    """The new articles' vectors, embedded in a thread while the writer writes all that
    does not need them (texts, records, rows, BM25): onnxruntime releases the GIL, so the
    two share the cores (a third of a one-article `index add`). ``result()`` waits for them
    and raises what the embedding raised; ``cancel()`` stops it after its current batch."""

    def __init__(self, embed: Callable[[Callable[[], None]], dict[str, ArticleVectors]], *, in_thread: bool = True) -> None:
        self._stop = threading.Event()
        self._call = InThread(embed, self._check, name="quotebot-embed", here=not in_thread)

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Cancelled

    def result(self) -> dict[str, ArticleVectors]:
        return self._call.result()

    def cancel(self) -> None:
        self._stop.set()
        self._call.wait()


class _Cancelled(QuotebotError):
    """Stops an embedding whose generation is abandoned (the writer's own error, or Ctrl-C,
    is what reaches the user)."""


class _GenerationWriter:
    """Writes one generation: kept articles are copied as row slices, new ones appended."""

    def __init__(
        self,
        generation: Path,
        builder: IndexBuilder,
        plan: _Plan,
        embedded: Callable[[], dict[str, ArticleVectors]],
        previous: QuoteIndex | None,
        finisher: generation_files.Finisher,
    ) -> None:
        self.generation = generation
        self.builder = builder
        self.plan = plan
        self._embedded = embedded  # waits for the new articles' vectors: asked as late as can be
        self.previous = previous
        self.finisher = finisher  # checksums and syncs each file once it is written
        self.previous_tokens = _read_tokens(previous) if previous is not None else []

    @property
    def embedded(self) -> dict[str, ArticleVectors]:
        return self._embedded()

    def write(self, started: float) -> Manifest:
        records, sizes, chunk_parts, sentence_parts, token_lines = [], [], [], [], []
        sentence_vectors = _SentenceVectorFile(self.generation / storage.SENTENCE_VECTORS_FILE, *self._sentence_vector_shape())
        with open(self.generation / storage.ARTICLE_TEXTS_FILE, "wb") as texts:
            for part in _runs(self.plan.entries):
                part_records, text, part_sizes, chunks, sentences, vectors, tokens = self._part_rows(part, len(records))
                texts.write(text)
                records.extend(part_records)
                sizes.append(part_sizes)
                chunk_parts.append(chunks)
                sentence_parts.append(sentences)
                sentence_vectors.put(vectors, len(sentences))
                token_lines.extend(tokens)
        self.finisher.written(storage.ARTICLE_TEXTS_FILE)
        if sentence_vectors.rows:
            self.finisher.sync(storage.SENTENCE_VECTORS_FILE)  # the kept rows reach the disk while the rest is written
        article_rows = _article_rows(np.concatenate(sizes) if sizes else np.zeros((0, 3), np.int64))
        chunks = np.concatenate(chunk_parts) if chunk_parts else np.zeros(0, CHUNK_ROW)
        # Each chunk row names its article's position in this generation (set once, for all).
        chunks["article"] = np.repeat(np.arange(len(article_rows), dtype=np.int32), article_rows["chunks"])
        write_record_lines(self.generation / storage.ARTICLES_FILE, self._record_lines(records))
        np.save(self.generation / storage.ARTICLE_ROWS_FILE, article_rows)
        np.save(self.generation / storage.CHUNKS_FILE, chunks)
        np.save(
            self.generation / storage.SENTENCES_FILE,
            np.concatenate(sentence_parts) if sentence_parts else np.zeros((0, 2), np.int32),
        )
        self.finisher.written(storage.ARTICLES_FILE, storage.ARTICLE_ROWS_FILE, storage.CHUNKS_FILE, storage.SENTENCES_FILE)
        keywords = self._write_keywords(chunks["id"], token_lines)
        self.finisher.written(storage.CHUNK_TOKENS_FILE, *self._files_in(keywords.path))
        # Only now the new articles' vectors (embedded meanwhile): a new article's part is its id.
        sentence_vectors.finish(self.embedded)
        self.finisher.written(storage.SENTENCE_VECTORS_FILE)
        vectors = self._write_vectors(len(chunks))
        self.finisher.written(*self._files_in(vectors.path))
        stores = vectors, keywords
        return self._write_manifest([r["id"] for r in records], len(chunks), sentence_vectors.rows, stores, started)

    def _sentence_vector_shape(self) -> tuple[int, int]:
        """(sentences, dimension) of the generation's sentence vectors, known before any is embedded."""
        kept = [entry for entry in self.plan.entries if isinstance(entry, int)]
        rows = sum(len(entry.sentences) for entry in self.plan.entries if not isinstance(entry, int))
        if kept:
            assert self.previous is not None
            rows += int(self.previous.articles.rows["sentences"][kept].sum())
        # (A previous index has the builder's model and dimension: asking the encoder would wait for it to load.)
        dimension = self.previous.manifest.dimension if self.previous is not None else self.builder.embedder.dimension
        return rows, dimension

    def _record_lines(self, records: list[dict]) -> list[bytes]:
        """Each record's line: a kept article's as the previous generation has it (its record
        is that line, read back), a new one's written out."""
        previous = self._previous_record_lines()
        return [
            previous[entry] if isinstance(entry, int) and previous is not None else record_line(record)
            for entry, record in zip(self.plan.entries, records)
        ]

    def _previous_record_lines(self) -> list[bytes] | None:
        if self.previous is None:
            return None
        try:
            lines = generation_files.record_lines((self.previous.path / storage.ARTICLES_FILE).read_bytes())
        except OSError:
            return None
        return lines if len(lines) == len(self.previous.articles) else None

    def _files_in(self, name: str) -> list[str]:
        """A store's files (its ``StoreRef.path``: one file or a folder), relative to the generation."""
        path = self.generation / name
        if path.is_file():
            return [name]
        return [str(file.relative_to(self.generation)) for file in sorted(path.rglob("*")) if file.is_file()]

    def _part_rows(self, part: range | ChunkedArticle, position: int):
        """A part's records, text, (text bytes, chunks, sentences) of each article, chunk rows,
        sentence rows, sentence vectors (a new article's id: its vectors may still be on their
        way) and token lines. A part is a run of consecutive previous articles, kept as they
        are and copied as one slice of each table (an `index add` copies the whole previous
        index as one run, not article by article), or one new article at ``position``."""
        if isinstance(part, range):
            previous = self.previous
            assert previous is not None
            first, last = part.start, part.stop - 1
            rows = previous.articles.rows[first : last + 1]
            chunk_start, chunk_end = previous.articles.chunk_base[first], previous.articles.chunk_base[last + 1]
            sentences = slice(int(previous.articles.sentence_base[first]), int(previous.articles.sentence_base[last + 1]))
            return (
                previous.articles.records[first : last + 1],
                previous.articles.texts_of(part),
                np.stack([rows["text_end"] - rows["text_start"], rows["chunks"], rows["sentences"]], axis=1),
                previous.chunks.rows[chunk_start:chunk_end],  # a view: write() copies it, setting "article"
                np.asarray(previous.chunks.sentences[sentences], dtype=np.int32),
                np.asarray(previous.sentence_vectors[sentences]),
                self.previous_tokens[chunk_start:chunk_end],
            )
        article = part.article
        text = article.text.encode("utf-8")
        tokens = [
            " ".join(tokenize(embedding_text(article, Span(start=c.start, end=c.end)))) or NO_TOKENS
            for c in part.chunks
        ]
        return (
            [article_record(article)],
            text,
            np.array([[len(text), len(part.chunks), len(part.sentences)]], dtype=np.int64),
            chunk_rows(part.chunks, self.plan.new_ids[article.id], position),
            sentence_rows(part.sentences),
            article.id,
            tokens,
        )

    def _write_vectors(self, total_chunks: int) -> StoreRef:
        """The previous generation's vectors less the dropped ones, plus the new, through the
        store the backend picks for the next generation's size."""
        vectors = self.builder.vectors.writer(
            self.previous.vectors if self.previous is not None else None,
            dimension=self.builder.embedder.dimension,
            expected_chunks=total_chunks,
            dropped=np.asarray(self.plan.dropped_chunk_ids, dtype=np.int64),
        )
        new = [item for item in self.plan.to_embed if item.chunks]
        if new:
            ids = np.concatenate([np.asarray(self.plan.new_ids[item.article.id], dtype=np.int64) for item in new])
            vectors.add(ids, np.concatenate([self.embedded[item.article.id].chunks for item in new]))
        return vectors.commit(self.generation)

    def _write_keywords(self, ids: np.ndarray, token_lines: list[str]) -> StoreRef:
        # BM25 sees the title too, as the embeddings do: questions name the story's subject.
        with open(self.generation / storage.CHUNK_TOKENS_FILE, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in token_lines))
        previous = None
        if self.previous is not None and self.previous.manifest.keyword_index.backend == self.builder.keywords.name:
            previous = self.previous.keywords  # kept chunks' tokens are taken from it, not split again
        return self.builder.keywords.build(ids, _TokenLines(token_lines), previous=previous).commit(self.generation)

    def _write_manifest(
        self, article_ids: list[str], chunks: int, sentences: int, stores: tuple[StoreRef, StoreRef], started: float
    ) -> Manifest:
        hashes = dict(self.previous.manifest.article_hashes) if self.previous is not None else {}
        for article_id in self.plan.removed:
            hashes.pop(article_id, None)
        for item in self.plan.to_embed:
            hashes[item.article.id] = article_fingerprint(item.article)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=self.builder.embedder.model,
            dimension=self.builder.embedder.dimension,
            chunking=self.builder.chunking,
            counts=Counts(articles=len(article_ids), chunks=chunks, sentences=sentences),
            next_chunk_id=self.plan.next_chunk_id,
            vector_store=stores[0],
            keyword_index=stores[1],
            article_hashes={article_id: hashes[article_id] for article_id in article_ids},
            file_sizes=generation_files.file_sizes(self.generation),
            file_checksums=self.finisher.checksums(),
            built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
        )
        (self.generation / storage.MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        return manifest


class _SentenceVectorFile:
    """The generation's sentence vectors (float16: half the file; cosine ranking of sentences
    is unaffected at this precision), written as they become known: a kept run's rows at once,
    so most of the file is written (and synced) while the new articles are being embedded, and
    a new article's rows when its vectors arrive (``finish``). The same bytes as ``np.save``."""

    def __init__(self, path: Path, rows: int, dimension: int) -> None:
        self.path = path
        self.rows = rows
        # (numpy cannot map an empty file: an index without sentences is saved at the end.)
        self._array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dimension)) if rows else None
        self._dimension = dimension
        self._at = 0
        self._pending: list[tuple[int, str]] = []  # (first row, article id) of rows still to come

    def put(self, vectors: np.ndarray | str, count: int) -> None:
        """The next ``count`` rows: ``vectors``, or a new article's id (its rows come later)."""
        if isinstance(vectors, str):
            self._pending.append((self._at, vectors))
        elif count:
            self._array[self._at : self._at + count] = vectors
        self._at += count

    def finish(self, embedded: dict[str, ArticleVectors]) -> None:
        if self._array is None:
            np.save(self.path, np.zeros((0, self._dimension), dtype=np.float16))
            return
        assert self._at == self.rows, "the parts hold as many sentences as the generation"
        for first, article_id in self._pending:
            rows = embedded[article_id].sentences
            self._array[first : first + len(rows)] = rows
        self._array = None  # unmapped; the finisher reads the file back and syncs it


def _runs(entries: Sequence[int | ChunkedArticle]) -> Iterator[range | ChunkedArticle]:
    """The plan's entries as parts: each run of consecutive previous positions as one range,
    each new article on its own."""
    run: list[int] = []
    for entry in entries:
        if isinstance(entry, int) and run and entry == run[-1] + 1:
            run.append(entry)
            continue
        if run:
            yield range(run[0], run[-1] + 1)
        run = [entry] if isinstance(entry, int) else []
        if not isinstance(entry, int):
            yield entry
    if run:
        yield range(run[0], run[-1] + 1)


def _article_rows(sizes: np.ndarray) -> np.ndarray:
    """The article table from each article's (text bytes, chunks, sentences), texts end to end."""
    rows = np.zeros(len(sizes), dtype=ARTICLE_ROW)
    ends = np.cumsum(sizes[:, 0])
    rows["text_start"], rows["text_end"] = ends - sizes[:, 0], ends
    rows["chunks"], rows["sentences"] = sizes[:, 1], sizes[:, 2]
    return rows


class _TokenLines(Sequence[list[str]]):
    """The token file's lines as token lists, each split only when read."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[number] for number in range(*row.indices(len(self)))]
        line = self._lines[row]
        return [] if line == NO_TOKENS else line.split(" ")


def _read_tokens(index: QuoteIndex) -> list[str]:
    """The previous generation's BM25 tokens, a line per chunk: kept chunks are not tokenized again."""
    path = index.path / storage.CHUNK_TOKENS_FILE
    try:
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptIndexError(f"{path}: unreadable ({error}): run `quotebot index build`") from None
    if len(lines) != len(index.chunks):
        raise CorruptIndexError(f"{path}: {len(lines)} lines for {len(index.chunks)} chunks: run `quotebot index build`")
    return lines


