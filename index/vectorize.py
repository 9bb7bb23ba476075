"""Chunks -> vectors: the embedding step of an index build, article by article.

Every chunk and every sentence is embedded as a text of its own, "title. text": a chunk
vector finds the passage, a sentence vector ranks the sentences that answer. Both are what
the model gives for exactly that text, so a build, an ``index add`` and an incremental
rebuild produce the same vectors for the same article, and the vectors of an unchanged
article are carried over from the previous generation as they are.

Late chunking (each chunk read once, sentence vectors pooled from its token embeddings)
would halve the model's work but was dropped: it lost answers the seed fixtures expect
("What did Herzog ask Lavrov?"). Embedding the sentences as well as the chunks about
doubles the work, since a chunk's 3.4 sentences hold as many word pieces as the chunk
(docs/scaling.md, section 2; bench/results/index-scale.md has the build rates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from quotebot.index.articles import Article, Chunk, Span
from quotebot.index.embedding import DocumentEncoder


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


# Names how vectors are made from an article; caches of built indexes key on it, so one
# built by an earlier recipe is never mistaken for a current one.
EMBEDDING_RECIPE = "chunks and sentences embedded alone, as 'title. text'"

# Called after each batch with (articles finished, chunks finished) so far.
BatchCallback = Callable[[int, int], None]


def embedding_text(article: Article, span: Span) -> str:
    """What is embedded for a chunk or a sentence (and indexed by BM25 for a chunk): the
    slice, with the article title as context.

    The title tells the model what "he" or "the minister" in a bare sentence is about; on
    the seed article it lifts the sentence that answers above look-alikes that only share
    a name.
    """
    text = span.slice(article.text)
    return f"{article.title}. {text}" if article.title else text


def embed_articles(
    embedder: DocumentEncoder, articles: Sequence[ChunkedArticle], on_batch: BatchCallback | None = None
) -> list[ArticleVectors]:
    """The chunk and sentence vectors of each article, in the order given."""
    texts: list[str] = []
    ends: list[int] = []  # where each article's texts end in ``texts``
    for item in articles:
        texts.extend(embedding_text(item.article, Span(start=c.start, end=c.end)) for c in item.chunks)
        texts.extend(embedding_text(item.article, span) for span in item.sentences)
        ends.append(len(texts))
    chunk_ends = np.cumsum([len(item.chunks) for item in articles])
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    # Several model batches per call keeps the encoder's length sorting useful while the
    # progress line still moves.
    step = max(embedder.batch_size * 8, 256)
    for begin in range(0, len(texts), step):
        end = min(begin + step, len(texts))
        vectors[begin:end] = embedder.embed(texts[begin:end])
        if on_batch:
            finished = int(np.searchsorted(ends, end, side="right"))  # articles with every text done
            on_batch(finished, int(chunk_ends[finished - 1]) if finished else 0)
    result, start = [], 0
    for item, end in zip(articles, ends):
        split = start + len(item.chunks)
        result.append(ArticleVectors(chunks=vectors[start:split], sentences=vectors[split:end]))
        start = end
    return result
