"""Building, persisting and loading the index: articles -> chunks -> vectors -> stores."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from index import storage
from index.chunking import chunk_article
from index.embedding import Embedder
from index.manifest import FORMAT_VERSION, ChunkingSettings, Counts, Manifest
from index.models import Article, Chunk, Span
from index.onnx_encoder import encoder_dir, export_query_encoder
from index.stores import CorruptIndexError, FaissVectorStore, KeywordIndex, VectorStore
from index.text import tokenize


class IndexMismatchError(Exception):
    """The index on disk was built with other settings than the configured ones."""


@dataclass(frozen=True)
class BuildProgress:
    articles_done: int
    articles_total: int
    chunks_done: int
    seconds: float


@dataclass(frozen=True)
class _ChunkedCorpus:
    articles: list[Article]
    chunks: list[Chunk]
    sentences: dict[str, list[Span]]


class QuoteIndex:
    """A loaded index: articles with their verbatim text, chunks, sentences and both stores.

    Chunk ``i`` is id ``i`` in the vector and keyword stores. Sentences are numbered per
    article in text order; ``sentence_row`` maps them to rows of ``sentence_vectors``.
    """

    def __init__(
        self,
        manifest: Manifest,
        articles: list[Article],
        chunks: list[Chunk],
        vectors: VectorStore,
        keywords: KeywordIndex,
        sentence_vectors: np.ndarray,
    ) -> None:
        self.manifest = manifest
        self.articles = {article.id: article for article in articles}
        self.chunks = chunks
        self.vectors = vectors
        self.keywords = keywords
        self.sentence_vectors = sentence_vectors
        self._sentences = _sentences_by_article(chunks)
        self._sentence_base = _running_offsets(articles, self._sentences)

    def sentences_of(self, article_id: str) -> list[Span]:
        return self._sentences[article_id]

    def sentence_row(self, article_id: str, sentence: int) -> int:
        return self._sentence_base[article_id] + sentence

    @classmethod
    def load(
        cls, index_dir: Path, *, model: str | None = None, chunking: ChunkingSettings | None = None
    ) -> QuoteIndex:
        """Load the live generation; refuse one built with another model or chunking."""
        generation = storage.current_generation(index_dir)
        manifest = _read_manifest(generation)
        _check_compatible(manifest, index_dir, model, chunking)
        _check_file_sizes(generation, manifest)
        articles = [Article.model_validate(record) for record in _read_jsonl(generation / storage.ARTICLES_FILE)]
        chunks = [_chunk_from_record(record) for record in _read_jsonl(generation / storage.CHUNKS_FILE)]
        vectors = FaissVectorStore.load(generation / storage.CHUNK_VECTORS_FILE)
        keywords = KeywordIndex.load(generation / storage.KEYWORD_DIR)
        sentence_vectors = _load_array(generation / storage.SENTENCE_VECTORS_FILE)
        _check_counts(manifest, articles, chunks, vectors, sentence_vectors, generation)
        return cls(manifest, articles, chunks, vectors, keywords, sentence_vectors)


class IndexBuilder:
    """Chunks, embeds and stores articles as a new generation of ``index_dir``."""

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
    ) -> Manifest:
        """Write a complete index, then publish it atomically; on any failure the old one stays."""
        started = time.perf_counter()
        generation = storage.new_generation(index_dir)
        try:
            corpus = self._chunk(articles)
            chunk_vectors, sentence_vectors = self._embed(corpus, started, on_progress)
            manifest = self._write(generation, corpus, chunk_vectors, sentence_vectors, started)
            if self.export_query_encoder:
                # Made once per index folder; the torch model is loaded now anyway.
                export_query_encoder(self.embedder.model, encoder_dir(index_dir, self.embedder.model))
            storage.publish(generation)
        except BaseException:
            storage.discard(generation)
            raise
        return manifest

    def _chunk(self, articles: Sequence[Article]) -> _ChunkedCorpus:
        chunks: list[Chunk] = []
        sentences: dict[str, list[Span]] = {}
        for article in articles:
            article_sentences, article_chunks = chunk_article(
                article.id,
                article.text,
                chunk_tokens=self.chunking.chunk_tokens,
                chunk_overlap=self.chunking.chunk_overlap,
            )
            sentences[article.id] = article_sentences
            chunks.extend(article_chunks)
        return _ChunkedCorpus(list(articles), chunks, sentences)

    def _embed(
        self,
        corpus: _ChunkedCorpus,
        started: float,
        on_progress: Callable[[BuildProgress], None] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Chunk and sentence vectors, embedded article by article so progress is honest."""
        texts: list[str] = []
        is_chunk: list[bool] = []
        articles_done: list[int] = []
        chunks_of: dict[str, list[Chunk]] = {}
        for chunk in corpus.chunks:
            chunks_of.setdefault(chunk.article_id, []).append(chunk)
        for number, article in enumerate(corpus.articles, 1):
            for chunk in chunks_of.get(article.id, []):
                texts.append(embedding_text(article, Span(start=chunk.start, end=chunk.end)))
                is_chunk.append(True)
            for span in corpus.sentences[article.id]:
                texts.append(embedding_text(article, span))
                is_chunk.append(False)
            articles_done.extend([number] * (len(texts) - len(articles_done)))
        vectors = self._embed_in_batches(texts, is_chunk, articles_done, len(corpus.articles), started, on_progress)
        chunk_rows = np.asarray(is_chunk, dtype=bool)
        # corpus.chunks and the sentence rows are both article by article, as embedded.
        return vectors[chunk_rows], vectors[~chunk_rows]

    def _embed_in_batches(
        self,
        texts: list[str],
        is_chunk: list[bool],
        articles_done: list[int],
        articles_total: int,
        started: float,
        on_progress: Callable[[BuildProgress], None] | None,
    ) -> np.ndarray:
        step = max(self.embedder.batch_size * 8, 256)
        parts = []
        chunks_done = 0
        for begin in range(0, len(texts), step):
            parts.append(self.embedder.embed(texts[begin : begin + step]))
            end = min(begin + step, len(texts))
            chunks_done += sum(is_chunk[begin:end])
            if on_progress:
                seconds = time.perf_counter() - started
                on_progress(BuildProgress(articles_done[end - 1], articles_total, chunks_done, seconds))
        return np.concatenate(parts) if parts else np.zeros((0, self.embedder.dimension), dtype=np.float32)

    def _write(
        self,
        generation: Path,
        corpus: _ChunkedCorpus,
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
        started: float,
    ) -> Manifest:
        _write_jsonl(generation / storage.ARTICLES_FILE, (a.model_dump(exclude={"content_hash"}) for a in corpus.articles))
        _write_jsonl(generation / storage.CHUNKS_FILE, (_chunk_to_record(c) for c in corpus.chunks))
        vectors = FaissVectorStore(self.embedder.dimension)
        vectors.add(np.arange(len(corpus.chunks), dtype=np.int64), chunk_vectors)
        vectors.save(generation / storage.CHUNK_VECTORS_FILE)
        by_id = {article.id: article for article in corpus.articles}
        # BM25 sees the title too, as the embeddings do: questions name the story's subject.
        keywords = KeywordIndex.build(
            [tokenize(embedding_text(by_id[c.article_id], Span(start=c.start, end=c.end))) for c in corpus.chunks]
        )
        keywords.save(generation / storage.KEYWORD_DIR)
        # float16 halves the file; cosine ranking of sentences is unaffected at this precision.
        np.save(generation / storage.SENTENCE_VECTORS_FILE, sentence_vectors.astype(np.float16))
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=self.embedder.model,
            dimension=self.embedder.dimension,
            chunking=self.chunking,
            counts=Counts(
                articles=len(corpus.articles), chunks=len(corpus.chunks), sentences=len(sentence_vectors)
            ),
            article_hashes={a.id: a.content_hash for a in corpus.articles},
            file_sizes=_file_sizes(generation),
            built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
        )
        (generation / storage.MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        return manifest


def embedding_text(article: Article, span: Span) -> str:
    """What is embedded for a chunk or sentence: the slice, with the article title as context.

    The title tells the model what "he" or "the minister" in a bare sentence is about; on
    the seed article it lifts the sentence that answers above look-alikes that only share
    a name.
    """
    text = span.slice(article.text)
    return f"{article.title}. {text}" if article.title else text


def _sentences_by_article(chunks: list[Chunk]) -> dict[str, list[Span]]:
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


def _chunk_to_record(chunk: Chunk) -> dict:
    return {
        "article_id": chunk.article_id,
        "ordinal": chunk.ordinal,
        "start": chunk.start,
        "end": chunk.end,
        "first_sentence": chunk.first_sentence,
        "sentences": [[s.start, s.end] for s in chunk.sentences],
    }


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


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path)
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
    chunks: list[Chunk],
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
