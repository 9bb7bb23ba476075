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

from collections.abc import Callable, Iterator, Sequence
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

# Sentences embedded per call of the encoder: enough for its length sorting to leave little
# padding (BBC's sentences, 2,000 at a time, pad as little as sorted all at once), few
# enough that the texts and float32 vectors in flight stay a few MB whatever the corpus.
WINDOW_TEXTS = 2048
# Model batches per encoder call inside a window: each call is sorted by length on its own,
# and the progress line moves after each.
PROGRESS_BATCHES = 8

# Called after each batch with (articles finished, their chunks, sentences embedded,
# sentences in all): the sentences count those of an article still in progress, so one
# huge article does not stall the progress line.
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
    return list(stream_article_vectors(embedder, articles, on_batch))


def stream_article_vectors(
    embedder: DocumentEncoder,
    articles: Sequence[ChunkedArticle],
    on_batch: BatchCallback | None = None,
    window: int | None = None,
) -> Iterator[ArticleVectors]:
    """Each article's vectors, in order, embedding a bounded window of whole articles'
    sentences at a time (about ``window`` texts): a build never holds every text of the
    corpus, nor its vectors in float32. Within a window the encoder sorts by length, so a
    window of thousands of texts pads about as little as the whole corpus sorted at once."""
    total = sum(len(item.sentences) for item in articles)
    done_texts = done_chunks = 0
    for first, last in _windows(articles, window or WINDOW_TEXTS):
        part = articles[first:last]
        texts = [embedding_text(item.article, span) for item in part for span in item.sentences]
        ends = np.cumsum([len(item.sentences) for item in part])  # where each article's texts end
        chunk_ends = np.cumsum([len(item.chunks) for item in part])
        vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        # Several steps per window, so one huge article does not stall the progress line.
        step = max(embedder.batch_size * PROGRESS_BATCHES, 512)
        for begin in range(0, len(texts), step):
            end = min(begin + step, len(texts))
            vectors[begin:end] = embedder.embed(texts[begin:end])
            if on_batch:
                finished = int(np.searchsorted(ends, end, side="right"))  # this window's articles all done
                chunks = done_chunks + (int(chunk_ends[finished - 1]) if finished else 0)
                on_batch(first + finished, chunks, done_texts + end, total)
        start = 0
        for item in part:
            sentences = vectors[start : start + len(item.sentences)]
            start += len(item.sentences)
            yield ArticleVectors(chunks=chunk_vectors(item.chunks, sentences), sentences=sentences)
        done_texts += len(texts)
        done_chunks += int(chunk_ends[-1]) if len(part) else 0
        if on_batch and not texts:
            on_batch(last, done_chunks, done_texts, total)


def _windows(articles: Sequence[ChunkedArticle], window: int) -> Iterator[tuple[int, int]]:
    """(first, last) article positions of consecutive windows of about ``window`` sentences."""
    first, size = 0, 0
    for position, item in enumerate(articles):
        size += len(item.sentences)
        if size >= window:
            yield first, position + 1
            first, size = position + 1, 0
    if first < len(articles):
        yield first, len(articles)


def chunk_vectors(chunks: Sequence[Chunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the mean of its sentences' vectors, L2-normalised (inner product
    = cosine, as for every other vector in the index)."""
    result = np.zeros((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        first = chunk.first_sentence
        result[row] = sentence_vectors[first : first + len(chunk.sentences)].mean(axis=0, dtype=np.float32)
    result /= np.maximum(np.linalg.norm(result, axis=1, keepdims=True), 1e-12)
    return result
