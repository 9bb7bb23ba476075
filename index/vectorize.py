"""Chunks -> vectors: the embedding step of an index build, article by article.

An article is embedded as a whole, so a build, an ``index add`` and an incremental
rebuild all produce the same vectors for the same article, and the vectors of an
unchanged article can be carried over from the previous generation unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.embedding import Embedder
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


def embed_articles(
    embedder: Embedder, articles: Sequence[ChunkedArticle], on_batch: BatchCallback | None = None
) -> list[ArticleVectors]:
    """The chunk and sentence vectors of each article, in the order given."""
    texts: list[str] = []
    owner: list[int] = []  # article position of each text
    is_chunk: list[bool] = []
    for position, item in enumerate(articles):
        for chunk in item.chunks:
            texts.append(embedding_text(item.article, Span(start=chunk.start, end=chunk.end)))
            is_chunk.append(True)
        for span in item.sentences:
            texts.append(embedding_text(item.article, span))
            is_chunk.append(False)
        owner.extend([position] * (len(texts) - len(owner)))
    vectors = _embed_in_batches(embedder, texts, owner, is_chunk, on_batch)
    # Each article's rows are contiguous: its chunks, then its sentences.
    result, row = [], 0
    for item in articles:
        chunks_end = row + len(item.chunks)
        sentences_end = chunks_end + len(item.sentences)
        result.append(ArticleVectors(chunks=vectors[row:chunks_end], sentences=vectors[chunks_end:sentences_end]))
        row = sentences_end
    return result


def _embed_in_batches(
    embedder: Embedder, texts: list[str], owner: list[int], is_chunk: list[bool], on_batch: BatchCallback | None
) -> np.ndarray:
    # Several model batches per call keeps sentence-transformers' length sorting useful
    # while the progress line still moves.
    step = max(embedder.batch_size * 8, 256)
    parts = []
    chunks_done = 0
    for begin in range(0, len(texts), step):
        end = min(begin + step, len(texts))
        parts.append(embedder.embed(texts[begin:end]))
        chunks_done += sum(is_chunk[begin:end])
        if on_batch:
            finished = owner[end - 1] + 1 if end == len(texts) else owner[end - 1]
            on_batch(finished, chunks_done)
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)
