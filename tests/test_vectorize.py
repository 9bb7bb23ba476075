"""The embedding step (index.vectorize) on the seed article with the packaged model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quotebot.index.articles import Article, Span
from quotebot.index.chunking import chunk_article
from quotebot.index.embedding import Embedder
from quotebot.index.vectorize import ArticleVectors, ChunkedArticle, embed_articles, embedding_text

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_8df2fe3ddce01457.txt"
TITLE, _, TEXT = SEED.read_text(encoding="utf-8").partition("\n\n")


def _chunked(article: Article) -> ChunkedArticle:
    sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
    return ChunkedArticle(article, sentences, chunks)


@pytest.fixture(scope="module")
def seed() -> ChunkedArticle:
    return _chunked(Article(id="seed.txt", title=TITLE.strip(), text=TEXT))


@pytest.fixture(scope="module")
def seed_vectors(embedder: Embedder, seed: ChunkedArticle) -> ArticleVectors:
    return embed_articles(embedder, [seed])[0]


@pytest.mark.slow
def test_each_sentence_is_its_text_embedded_once(embedder: Embedder, seed: ChunkedArticle, seed_vectors: ArticleVectors) -> None:
    sentence_texts = [embedding_text(seed.article, span) for span in seed.sentences]
    assert seed_vectors.sentences.shape == (len(seed.sentences), 384) and seed_vectors.sentences.dtype == np.float32
    cosine = (embedder.embed(sentence_texts) * seed_vectors.sentences).sum(axis=1)
    assert cosine.min() > 0.9999, cosine


def test_a_chunk_vector_is_the_normalised_mean_of_its_sentences(seed: ChunkedArticle, seed_vectors: ArticleVectors) -> None:
    assert len(seed.chunks) > 2 and seed_vectors.chunks.shape == (len(seed.chunks), 384)
    assert np.allclose(np.linalg.norm(seed_vectors.chunks, axis=1), 1.0, atol=1e-5)
    for chunk, vector in zip(seed.chunks, seed_vectors.chunks):
        own = seed_vectors.sentences[chunk.first_sentence : chunk.first_sentence + len(chunk.sentences)]
        mean = own.mean(axis=0)
        assert np.allclose(vector, mean / np.linalg.norm(mean), atol=1e-5)
        # Nearer to its own sentences than to the article's others.
        others = np.delete(seed_vectors.sentences, range(chunk.first_sentence, chunk.first_sentence + len(own)), axis=0)
        assert (own @ vector).mean() > (others @ vector).mean()


def test_the_title_is_context_of_every_text(seed: ChunkedArticle) -> None:
    span = seed.sentences[3]
    assert embedding_text(seed.article, span) == f"{seed.article.title}. {span.slice(seed.article.text)}"
    untitled = Article(id="x.txt", title="", text=seed.article.text)
    assert embedding_text(untitled, span) == span.slice(seed.article.text)


@pytest.mark.slow
def test_articles_keep_their_order_and_progress_is_reported(embedder: Embedder, seed: ChunkedArticle, seed_vectors: ArticleVectors) -> None:
    other = _chunked(Article(id="other.txt", title="", text="A short article. It has two sentences."))
    empty = ChunkedArticle(Article(id="empty.txt", title="Empty", text=" \n "), [], [])
    calls: list[tuple[int, int]] = []
    texts: list[tuple[int, int]] = []
    result = embed_articles(
        embedder, [other, empty, seed, other], lambda a, c, done, total: (calls.append((a, c)), texts.append((done, total)))
    )
    assert [len(v.chunks) for v in result] == [1, 0, len(seed.chunks), 1]
    assert [len(v.sentences) for v in result] == [2, 0, len(seed.sentences), 2]
    assert np.allclose(result[0].sentences, result[3].sentences, atol=1e-6)
    # Batched with other texts, the seed article gets the vectors it gets alone.
    assert np.allclose(result[2].chunks, seed_vectors.chunks, atol=1e-5)
    assert calls[-1] == (4, len(seed.chunks) + 2)
    assert calls == sorted(calls)
    total = 2 * 3 + len(seed.chunks) + len(seed.sentences)  # chunks and sentences of every article
    assert texts[-1] == (total, total) and texts == sorted(texts)
    assert embed_articles(embedder, []) == []
