"""Chunks -> vectors: the embedding step of an index build, article by article.

Late chunking: the model reads each chunk ("title. chunk text") once. The chunk's vector is
the mean of all its token embeddings, exactly what embedding the chunk text alone gives; a
sentence's vector is the mean of the token embeddings inside the sentence's characters,
so it is read in the context of its chunk and its title, and costs no pass of its own.
A sentence in the overlap of two chunks gets the mean of its two readings; one that no
chunk holds whole within the model's window (a very long chunk is truncated) is embedded
alone, as "title. sentence".

An article is embedded as a whole, so a build, an ``index add`` and an incremental
rebuild all produce the same vectors for the same article, and the vectors of an
unchanged article can be carried over from the previous generation unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.embedding import DocumentEncoder, TokenVectors
from index.models import Article, Chunk, Span


@dataclass(frozen=True)
class ChunkedArticle:
    """An article with its sentences and chunks, ready to embed."""

    article: Article
    sentences: list[Span]
    chunks: list[Chunk]


@dataclass(frozen=True)
class ArticleVectors:
    """One article's vectors: a row per chunk and a row per sentence, in text order."""

    chunks: np.ndarray
    sentences: np.ndarray


# Called after each batch with (articles finished, chunks finished) so far.
BatchCallback = Callable[[int, int], None]


def embedding_text(article: Article, span: Span) -> str:
    """What is embedded for a chunk or sentence: the slice, with the article title as context.

    The title tells the model what "he" or "the minister" in a bare sentence is about; on
    the seed article it lifts the sentence that answers above look-alikes that only share
    a name.
    """
    text = span.slice(article.text)
    return f"{article.title}. {text}" if article.title else text


def _title_prefix(article: Article) -> int:
    """Characters ``embedding_text`` puts before the slice."""
    return len(article.title) + 2 if article.title else 0


def embed_articles(
    embedder: DocumentEncoder, articles: Sequence[ChunkedArticle], on_batch: BatchCallback | None = None
) -> list[ArticleVectors]:
    """The chunk and sentence vectors of each article, in the order given."""
    pooled = [_Pooled.empty(item, embedder.dimension) for item in articles]
    jobs = [(position, ordinal) for position, item in enumerate(articles) for ordinal in range(len(item.chunks))]
    # Several model batches per call keeps the encoder's length sorting useful while the
    # progress line still moves and the token embeddings in memory stay bounded.
    step = max(embedder.batch_size * 4, 128)
    finished, chunks_done = 0, 0
    for begin in range(0, len(jobs), step):
        part = jobs[begin : begin + step]
        texts = [embedding_text(articles[p].article, _chunk_span(articles[p].chunks[o])) for p, o in part]
        for (position, ordinal), tokens in zip(part, embedder.embed_tokens(texts)):
            pooled[position].add_chunk(articles[position], ordinal, tokens)
        chunks_done += len(part)
        # Articles before the next job's are complete; the last batch completes them all.
        done_until = jobs[begin + step][0] if begin + step < len(jobs) else len(articles)
        _finish(embedder, articles[finished:done_until], pooled[finished:done_until])
        finished = done_until
        if on_batch:
            on_batch(finished, chunks_done)
    _finish(embedder, articles[finished:], pooled[finished:])  # articles without chunks
    return [ArticleVectors(chunks=item.chunks, sentences=item.sentences) for item in pooled]


def _chunk_span(chunk: Chunk) -> Span:
    return Span(start=chunk.start, end=chunk.end)


@dataclass
class _Pooled:
    """One article's vectors as its chunks are read: sentence sums until ``_finish``."""

    chunks: np.ndarray
    sentences: np.ndarray
    readings: np.ndarray = field(repr=False)  # how many chunks read each sentence whole

    @classmethod
    def empty(cls, item: ChunkedArticle, dimension: int) -> _Pooled:
        return cls(
            chunks=np.zeros((len(item.chunks), dimension), dtype=np.float32),
            sentences=np.zeros((len(item.sentences), dimension), dtype=np.float32),
            readings=np.zeros(len(item.sentences), dtype=np.int32),
        )

    def add_chunk(self, item: ChunkedArticle, ordinal: int, tokens: TokenVectors) -> None:
        chunk = item.chunks[ordinal]
        self.chunks[ordinal] = _unit(tokens.vectors.mean(axis=0))
        words = ~tokens.special
        starts, ends = tokens.offsets[words, 0], tokens.offsets[words, 1]
        vectors = tokens.vectors[words]
        # Characters the model read: the window may have cut the text short.
        read_until = int(ends[-1]) if len(ends) else 0
        shift = _title_prefix(item.article) - chunk.start
        for offset, span in enumerate(chunk.sentences):
            start, end = span.start + shift, span.end + shift
            if end > read_until:
                break  # this sentence and the ones after it were truncated away
            first, last = np.searchsorted(starts, start), np.searchsorted(ends, end, side="right")
            if last > first:
                number = chunk.first_sentence + offset
                self.sentences[number] += _unit(vectors[first:last].mean(axis=0))
                self.readings[number] += 1


def _finish(embedder: DocumentEncoder, items: Sequence[ChunkedArticle], pooled: Sequence[_Pooled]) -> None:
    """Normalise the sentence vectors; embed alone the sentences no chunk read whole."""
    alone = [(p, n) for p, item in enumerate(pooled) for n in np.flatnonzero(item.readings == 0).tolist()]
    if alone:
        texts = [embedding_text(items[p].article, items[p].sentences[n]) for p, n in alone]
        for (p, n), vector in zip(alone, embedder.embed(texts)):
            pooled[p].sentences[n] = vector
            pooled[p].readings[n] = 1
    for item in pooled:
        item.sentences /= np.maximum(np.linalg.norm(item.sentences, axis=1, keepdims=True), 1e-12)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
