"""Chunks -> vectors: the embedding step of an index build, article by article.

Every sentence is embedded once, as a text of its own, "title. sentence", and nothing is
embedded twice: a chunk's vector is the mean of its sentences' vectors, L2-normalised. The
sentence vectors rank the sentences that answer; the chunk vectors find the passage. A
vector depends only on its own text, so a build, an ``index add`` and an incremental
rebuild produce the same vectors for the same article, and the vectors of an unchanged
article are carried over from the previous generation as they are.

Chunks used to be embedded as texts of their own as well, which doubled the model's work
(a chunk's 3.4 sentences hold as many word pieces as the chunk) for no measured gain in
quality: bench/results/index-scale.md and docs/scaling.md have the figures of the decision.
Late chunking (sentence vectors pooled from a chunk pass's token vectors) was dropped
earlier: it lost answers the seed fixtures expect ("What did Herzog ask Lavrov?").
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
EMBEDDING_RECIPE = "sentences embedded alone, as 'title. text'; chunk = normalised mean of its sentences"

# Called after each batch with (articles finished, chunks finished) so far.
# (articles done, their chunks, texts embedded, texts in all): texts count the chunks and
# sentences of an article still in progress, so one huge article does not stall the line.
BatchCallback = Callable[[int, int, int, int], None]


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
    ends: list[int] = []  # where each article's sentences end in ``texts``
    for item in articles:
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
            on_batch(finished, int(chunk_ends[finished - 1]) if finished else 0, end, len(texts))
    result, start = [], 0
    for item, end in zip(articles, ends):
        sentences = vectors[start:end]
        result.append(ArticleVectors(chunks=chunk_vectors(item.chunks, sentences), sentences=sentences))
        start = end
    return result


def chunk_vectors(chunks: Sequence[Chunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the mean of its sentences' vectors, L2-normalised (inner product
    = cosine, as for every other vector in the index)."""
    result = np.zeros((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        first = chunk.first_sentence
        result[row] = sentence_vectors[first : first + len(chunk.sentences)].mean(axis=0, dtype=np.float32)
    result /= np.maximum(np.linalg.norm(result, axis=1, keepdims=True), 1e-12)
    return result
