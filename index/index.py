"""Building, persisting and loading the index: articles -> chunks -> vectors -> stores."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from index import storage
from index.chunking import chunk_article
from index.embedding import Embedder
from index.lock import IndexLock
from index.manifest import FORMAT_VERSION, ChunkingSettings, Counts, Manifest
from index.models import Article, Chunk, Span
from index.onnx_encoder import encoder_dir, export_query_encoder
from index.stores import CorruptIndexError, FaissVectorStore, KeywordIndex, VectorStore
from index.text import tokenize
from index.vectorize import ArticleVectors, ChunkedArticle, embed_articles, embedding_text


class IndexMismatchError(Exception):
    """The index on disk was built with other settings than the configured ones."""


@dataclass(frozen=True)
class BuildProgress:
    articles_done: int
    articles_total: int
    chunks_done: int
    seconds: float


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
        articles: list[Article],
        chunks: dict[int, Chunk],
        vectors: VectorStore,
        keywords: KeywordIndex,
        sentence_vectors: np.ndarray,
        generation: str = "",
    ) -> None:
        self.manifest = manifest
        self.articles = {article.id: article for article in articles}
        self.chunks = chunks
        self.vectors = vectors
        self.keywords = keywords
        self.sentence_vectors = sentence_vectors
        self.generation = generation
        self._sentences = _sentences_by_article(chunks.values())
        self._sentence_base = _running_offsets(articles, self._sentences)

    def sentences_of(self, article_id: str) -> list[Span]:
        return self._sentences.get(article_id, [])

    def sentence_row(self, article_id: str, sentence: int) -> int:
        return self._sentence_base[article_id] + sentence

    def chunk_ids_of(self, article_id: str) -> list[int]:
        return [chunk_id for chunk_id, chunk in self.chunks.items() if chunk.article_id == article_id]

    @classmethod
    def load(
        cls,
        index_dir: Path,
        *,
        model: str | None = None,
        chunking: ChunkingSettings | None = None,
        mmap: bool = True,
    ) -> QuoteIndex:
        """Load the live generation; refuse one built with another model or chunking.

        ``mmap`` maps the vectors instead of reading them (a server's choice); a writer
        loads with ``mmap=False`` to get a copy it may change. A generation replaced and
        deleted by a writer while being read is simply read again from the new pointer.
        """
        for attempt in range(LOAD_ATTEMPTS):
            generation = storage.current_generation(index_dir)
            try:
                return cls._load_generation(generation, index_dir, model, chunking, mmap)
            except CorruptIndexError:
                replaced = storage.current_generation(index_dir) != generation
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
    ) -> QuoteIndex:
        manifest = _read_manifest(generation)
        _check_compatible(manifest, index_dir, model, chunking)
        _check_file_sizes(generation, manifest)
        articles = [Article.model_validate(record) for record in _read_jsonl(generation / storage.ARTICLES_FILE)]
        chunks = _chunks_from_records(_read_jsonl(generation / storage.CHUNKS_FILE), generation)
        vectors = FaissVectorStore.load(generation / storage.CHUNK_VECTORS_FILE, mmap=mmap)
        keywords = KeywordIndex.load(generation / storage.KEYWORD_DIR)
        sentence_vectors = _load_array(generation / storage.SENTENCE_VECTORS_FILE, mmap)
        _check_counts(manifest, articles, chunks, vectors, sentence_vectors, generation)
        return cls(manifest, articles, chunks, vectors, keywords, sentence_vectors, generation.name)


# A reader retries when a writer replaced the generation it was reading (the writer
# deletes the old one once the new one is live).
LOAD_ATTEMPTS = 3


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


class UnknownArticleError(Exception):
    """``index remove`` was given an id the index does not hold."""


class IndexBuilder:
    """Chunks, embeds and stores articles as a new generation of ``index_dir``.

    Every change writes a whole new generation and publishes it atomically, under the
    index's writer lock. Articles whose title and text are unchanged keep their chunks,
    chunk ids and vectors from the live generation: only new or changed articles are
    embedded.
    """

    def __init__(
        self, embedder: Embedder, chunk_tokens: int, chunk_overlap: int, export_query_encoder: bool = True
    ) -> None:
        self.embedder = embedder
        self.chunking = ChunkingSettings(chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
        self.export_query_encoder = export_query_encoder

    def build(
        self,
        articles: Sequence[Article],
        index_dir: Path,
        on_progress: Callable[[BuildProgress], None] | None = None,
    ) -> IndexChange:
        """Make the index hold exactly ``articles``, re-embedding only what changed."""
        with IndexLock(index_dir, "index build"):
            previous = self._previous(index_dir, required=False)
            return self._write(list(articles), previous, index_dir, on_progress)

    def add(
        self,
        articles: Sequence[Article],
        index_dir: Path,
        on_progress: Callable[[BuildProgress], None] | None = None,
    ) -> IndexChange:
        """Add ``articles`` to the live index; one with an id already there replaces it."""
        with IndexLock(index_dir, "index add"):
            previous = self._previous(index_dir, required=True)
            assert previous is not None
            incoming = {article.id: article for article in articles}
            target = [incoming.pop(article.id, article) for article in previous.articles.values()]
            target.extend(incoming.values())
            return self._write(target, previous, index_dir, on_progress)

    def remove(self, article_ids: Sequence[str], index_dir: Path) -> IndexChange:
        """Drop the named articles; every id must be in the index, or nothing changes."""
        with IndexLock(index_dir, "index remove"):
            previous = self._previous(index_dir, required=True)
            assert previous is not None
            unknown = [article_id for article_id in article_ids if article_id not in previous.articles]
            if unknown:
                raise UnknownArticleError(
                    f"not in the index at {index_dir}: {', '.join(unknown)} (see `quotebot index list`)"
                )
            dropped = set(article_ids)
            target = [article for article in previous.articles.values() if article.id not in dropped]
            return self._write(target, previous, index_dir, None)

    def _previous(self, index_dir: Path, *, required: bool) -> QuoteIndex | None:
        """The live index to update, as a private copy; None when a build starts afresh."""
        try:
            return QuoteIndex.load(index_dir, model=self.embedder.model, chunking=self.chunking, mmap=False)
        except (storage.IndexMissingError, IndexMismatchError, CorruptIndexError):
            # A build replaces a missing, outdated or damaged index; add and remove need one.
            if required:
                raise
            return None

    def _write(
        self,
        target: list[Article],
        previous: QuoteIndex | None,
        index_dir: Path,
        on_progress: Callable[[BuildProgress], None] | None,
    ) -> IndexChange:
        started = time.perf_counter()
        plan = _plan(target, previous, self.chunking)
        if previous is not None and _same_articles(target, previous):
            # Nothing to write: a new generation would only make every running bot reload.
            self._export(index_dir)
            return IndexChange(manifest=previous.manifest, unchanged=len(target))
        embedded = self._embed(plan.to_embed, started, on_progress)
        generation = storage.new_generation(index_dir)
        try:
            manifest = self._write_generation(generation, plan, embedded, previous, started)
            self._export(index_dir)
            storage.publish(generation)
        except BaseException:
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

    def _export(self, index_dir: Path) -> None:
        if self.export_query_encoder:
            # Made once per index folder, while the model is at hand; later calls find it there.
            export_query_encoder(self.embedder.model, encoder_dir(index_dir, self.embedder.model))

    def _embed(
        self,
        to_embed: list[ChunkedArticle],
        started: float,
        on_progress: Callable[[BuildProgress], None] | None,
    ) -> dict[str, ArticleVectors]:
        if not to_embed:
            return {}

        def report(articles_done: int, chunks_done: int) -> None:
            if on_progress:
                seconds = time.perf_counter() - started
                on_progress(BuildProgress(articles_done, len(to_embed), chunks_done, seconds))

        vectors = embed_articles(self.embedder, to_embed, report)
        return {item.article.id: item_vectors for item, item_vectors in zip(to_embed, vectors)}

    def _write_generation(
        self,
        generation: Path,
        plan: _Plan,
        embedded: dict[str, ArticleVectors],
        previous: QuoteIndex | None,
        started: float,
    ) -> Manifest:
        dimension = self.embedder.dimension
        vectors = previous.vectors if previous is not None else FaissVectorStore(dimension)
        if plan.dropped_chunk_ids:
            vectors.remove(np.asarray(plan.dropped_chunk_ids, dtype=np.int64))
        new_ids, new_vectors, sentence_parts = [], [], []
        for article, chunk_ids in zip(plan.articles, plan.chunk_ids):
            fresh = embedded.get(article.id)
            if fresh is not None:
                new_ids.extend(chunk_ids)
                new_vectors.append(fresh.chunks)
                sentence_parts.append(fresh.sentences)
            else:
                assert previous is not None  # reused articles come from the previous index
                base = previous.sentence_row(article.id, 0)
                sentence_parts.append(previous.sentence_vectors[base : base + len(previous.sentences_of(article.id))])
        if new_ids:
            vectors.add(np.asarray(new_ids, dtype=np.int64), np.concatenate(new_vectors))
        vectors.save(generation / storage.CHUNK_VECTORS_FILE)
        sentence_vectors = (
            np.concatenate(sentence_parts).astype(np.float16) if sentence_parts else np.zeros((0, dimension), np.float16)
        )
        # float16 halves the file; cosine ranking of sentences is unaffected at this precision.
        np.save(generation / storage.SENTENCE_VECTORS_FILE, sentence_vectors)
        all_chunks = [(chunk_id, chunk) for chunks, ids in zip(plan.chunks, plan.chunk_ids) for chunk_id, chunk in zip(ids, chunks)]
        _write_jsonl(generation / storage.ARTICLES_FILE, (a.model_dump(exclude={"content_hash"}) for a in plan.articles))
        _write_jsonl(generation / storage.CHUNKS_FILE, (_chunk_to_record(i, c) for i, c in all_chunks))
        by_id = {article.id: article for article in plan.articles}
        # BM25 sees the title too, as the embeddings do: questions name the story's subject.
        keywords = KeywordIndex.build(
            np.asarray([chunk_id for chunk_id, _ in all_chunks], dtype=np.int64),
            [tokenize(embedding_text(by_id[c.article_id], Span(start=c.start, end=c.end))) for _, c in all_chunks],
        )
        keywords.save(generation / storage.KEYWORD_DIR)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=self.embedder.model,
            dimension=dimension,
            chunking=self.chunking,
            counts=Counts(articles=len(plan.articles), chunks=len(all_chunks), sentences=len(sentence_vectors)),
            next_chunk_id=plan.next_chunk_id,
            vector_index=vectors.kind,
            article_hashes={a.id: article_fingerprint(a) for a in plan.articles},
            file_sizes=_file_sizes(generation),
            built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
        )
        (generation / storage.MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        return manifest


def article_fingerprint(article: Article) -> str:
    """What decides whether an article must be embedded again: its title and its text."""
    return hashlib.sha256(f"{article.title}\x00{article.text}".encode("utf-8")).hexdigest()


@dataclass
class _Plan:
    """The next generation's articles in order, each with its chunks and their ids."""

    articles: list[Article]
    chunks: list[list[Chunk]]
    chunk_ids: list[list[int]]
    to_embed: list[ChunkedArticle]
    dropped_chunk_ids: list[int]
    next_chunk_id: int
    added: list[str]
    updated: list[str]
    removed: list[str]


def _plan(target: list[Article], previous: QuoteIndex | None, chunking: ChunkingSettings) -> _Plan:
    """Which articles keep their chunks and vectors, which are chunked and embedded anew."""
    old_hashes = previous.manifest.article_hashes if previous is not None else {}
    old_chunk_ids = _chunk_ids_by_article(previous)
    next_id = previous.manifest.next_chunk_id if previous is not None else 0
    plan = _Plan([], [], [], [], [], next_id, [], [], [])
    for article in target:
        old_hash = old_hashes.get(article.id)
        if old_hash is not None and old_hash == article_fingerprint(article):
            assert previous is not None
            ids = old_chunk_ids.get(article.id, [])
            plan.articles.append(article)
            plan.chunks.append([previous.chunks[i] for i in ids])
            plan.chunk_ids.append(ids)
            continue
        if old_hash is not None:
            plan.updated.append(article.id)
            plan.dropped_chunk_ids.extend(old_chunk_ids.get(article.id, []))
        else:
            plan.added.append(article.id)
        sentences, chunks = chunk_article(
            article.id, article.text, chunk_tokens=chunking.chunk_tokens, chunk_overlap=chunking.chunk_overlap
        )
        ids = list(range(plan.next_chunk_id, plan.next_chunk_id + len(chunks)))
        plan.next_chunk_id += len(chunks)
        plan.articles.append(article)
        plan.chunks.append(chunks)
        plan.chunk_ids.append(ids)
        plan.to_embed.append(ChunkedArticle(article, sentences, chunks))
    kept = {article.id for article in target}
    for article_id in old_hashes:
        if article_id not in kept:
            plan.removed.append(article_id)
            plan.dropped_chunk_ids.extend(old_chunk_ids.get(article_id, []))
    return plan


def _same_articles(target: list[Article], previous: QuoteIndex) -> bool:
    """The same articles in the same order with the same fields (dates and urls included)."""
    return len(target) == len(previous.articles) and all(
        article == old for article, old in zip(target, previous.articles.values())
    )


def _chunk_ids_by_article(index: QuoteIndex | None) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    if index is not None:
        for chunk_id, chunk in index.chunks.items():
            ids.setdefault(chunk.article_id, []).append(chunk_id)
    return ids


def _sentences_by_article(chunks: Iterable[Chunk]) -> dict[str, list[Span]]:
    sentences: dict[str, list[Span]] = {}
    for chunk in chunks:
        known = sentences.setdefault(chunk.article_id, [])
        for offset, span in enumerate(chunk.sentences):
            if chunk.first_sentence + offset >= len(known):
                known.append(span)
    return sentences


def _running_offsets(articles: list[Article], sentences: dict[str, list[Span]]) -> dict[str, int]:
    offsets, total = {}, 0
    for article in articles:
        offsets[article.id] = total
        total += len(sentences.get(article.id, ()))
    return offsets


def _chunk_to_record(chunk_id: int, chunk: Chunk) -> dict:
    return {
        "id": chunk_id,
        "article_id": chunk.article_id,
        "ordinal": chunk.ordinal,
        "start": chunk.start,
        "end": chunk.end,
        "first_sentence": chunk.first_sentence,
        "sentences": [[s.start, s.end] for s in chunk.sentences],
    }


def _chunks_from_records(records: list[dict], generation: Path) -> dict[int, Chunk]:
    chunks: dict[int, Chunk] = {}
    for number, record in enumerate(records, 1):
        try:
            chunk_id = int(record["id"])
            chunk = _chunk_from_record(record)
        except (KeyError, TypeError, ValueError, ValidationError):
            raise CorruptIndexError(
                f"{generation / storage.CHUNKS_FILE}:{number}: damaged chunk record: run `quotebot index build`"
            ) from None
        if chunk_id in chunks:
            raise CorruptIndexError(f"{generation / storage.CHUNKS_FILE}:{number}: chunk id {chunk_id} appears twice")
        chunks[chunk_id] = chunk
    return chunks


def _chunk_from_record(record: dict) -> Chunk:
    spans = tuple(Span(start=s, end=e) for s, e in record["sentences"])
    return Chunk(
        article_id=record["article_id"],
        ordinal=record["ordinal"],
        start=record["start"],
        end=record["end"],
        first_sentence=record["first_sentence"],
        sentences=spans,
    )


def _write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False))
            handle.write("\n")


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                records.append(json.loads(line))
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: run `quotebot index build`") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptIndexError(f"{path}:{number}: damaged index file: run `quotebot index build`") from None
    return records


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as error:
        raise CorruptIndexError(f"{path}: unreadable vectors ({error}): run `quotebot index build`") from None


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the live index, without loading the rest."""
    return _read_manifest(storage.current_generation(index_dir))


def _read_manifest(generation: Path) -> Manifest:
    path = generation / storage.MANIFEST_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing manifest: run `quotebot index build`") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptIndexError(f"{path}: damaged manifest: run `quotebot index build`") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {version} at {generation.parent}, this quotebot reads format {FORMAT_VERSION}: "
            f"run `quotebot index build` to rebuild it"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError:
        raise CorruptIndexError(f"{path}: damaged manifest: run `quotebot index build`") from None


def _check_compatible(
    manifest: Manifest, index_dir: Path, model: str | None, chunking: ChunkingSettings | None
) -> None:
    rebuild = f"run `quotebot index build` to rebuild {index_dir}"
    if model is not None and manifest.model != model:
        raise IndexMismatchError(f"index was built with model '{manifest.model}', config says '{model}': {rebuild}")
    if chunking is not None and manifest.chunking != chunking:
        built = manifest.chunking
        raise IndexMismatchError(
            f"index was built with chunk_tokens={built.chunk_tokens}, chunk_overlap={built.chunk_overlap}; "
            f"config says chunk_tokens={chunking.chunk_tokens}, chunk_overlap={chunking.chunk_overlap}: {rebuild}"
        )


def _file_sizes(generation: Path) -> dict[str, int]:
    return {
        str(path.relative_to(generation)): path.stat().st_size
        for path in sorted(generation.rglob("*"))
        if path.is_file() and path.name != storage.MANIFEST_FILE
    }


def _check_file_sizes(generation: Path, manifest: Manifest) -> None:
    for name, size in manifest.file_sizes.items():
        path = generation / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            found = "missing" if actual is None else f"{actual} bytes, manifest says {size}"
            raise CorruptIndexError(f"{path}: damaged index file ({found}): run `quotebot index build`")


def _check_counts(
    manifest: Manifest,
    articles: list[Article],
    chunks: dict[int, Chunk],
    vectors: VectorStore,
    sentence_vectors: np.ndarray,
    generation: Path,
) -> None:
    counts = manifest.counts
    found = Counts(articles=len(articles), chunks=len(chunks), sentences=len(sentence_vectors))
    if found != counts or len(vectors) != counts.chunks:
        raise CorruptIndexError(
            f"{generation}: index files disagree with the manifest ({found}, {len(vectors)} vectors; "
            f"manifest: {counts}): run `quotebot index build`"
        )
