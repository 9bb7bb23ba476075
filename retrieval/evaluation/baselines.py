"""The two baselines ``quotebot eval`` reports beside quotebot, over the same index.

Both read the very chunks, sentences and stores of the ``QuoteIndex`` quotebot answers
from, and answer with the same ``Answer`` model; neither ever abstains.

- ``Bm25Baseline``: the top chunks by BM25 (the index's bm25s store); in their sentences,
  the best by BM25 of the sentence against the question, with the chunk-level idf and
  sentence length normalised by the candidates' mean length.
- ``DenseBaseline``: the top chunks by FAISS (MiniLM vectors); in their sentences, the best
  by cosine of the stored sentence vector with the question's.

A quote is one sentence, exactly as the index split it (no neighbour is added).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from quotebot.index.articles import Span
from quotebot.index.embedding import TextEncoder
from quotebot.index.reader import QuoteIndex
from quotebot.index.text import tokenize
from quotebot.retrieval.answer import Answer, Quote
from quotebot.retrieval.retriever import paragraph_number


class Answerer(Protocol):
    """What the harness asks of a system: an answer, and its chunk ranking (for passage@k)."""

    def answer(self, question: str) -> Answer: ...

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]: ...


_Sentence = tuple[str, int, Span]  # article id, sentence number in the article, span


class _SentencePicker:
    def __init__(self, index: QuoteIndex, candidate_chunks: int, max_quotes: int) -> None:
        self.index = index
        self.candidate_chunks = candidate_chunks
        self.max_quotes = max_quotes

    def _sentences(self, chunk_ids: Sequence[int]) -> list[_Sentence]:
        """The sentences of the chunks, each once, in chunk-rank then text order."""
        seen: set[tuple[str, int]] = set()
        sentences = []
        for chunk_id in chunk_ids:
            chunk = self.index.chunks[chunk_id]
            for offset, span in enumerate(chunk.sentences):
                key = (chunk.article_id, chunk.first_sentence + offset)
                if key not in seen:
                    seen.add(key)
                    sentences.append((chunk.article_id, chunk.first_sentence + offset, span))
        return sentences

    def _answer(
        self, question: str, sentences: list[_Sentence], scores: Sequence[float], *, positive_only: bool
    ) -> Answer:
        # Stable sort: ties keep chunk-rank order.
        order = sorted(range(len(sentences)), key=lambda i: -scores[i])
        quotes = []
        for i in order[: self.max_quotes]:
            if positive_only and scores[i] <= 0:
                break
            article_id, _, span = sentences[i]
            article = self.index.articles[article_id]
            quotes.append(
                Quote(
                    text=span.slice(article.text),
                    article_id=article_id,
                    title=article.title,
                    start=span.start,
                    end=span.end,
                    score=round(float(scores[i]), 4),
                    paragraph=paragraph_number(article.text, span.start),
                )
            )
        return Answer(question=question, answered=bool(quotes), confidence=1.0 if quotes else 0.0, quotes=tuple(quotes))


class Bm25Baseline(_SentencePicker):
    """BM25 alone: chunks by bm25s, the sentence by BM25 with the chunk-level idf."""

    name = "BM25"

    def __init__(
        self, index: QuoteIndex, *, candidate_chunks: int = 8, max_quotes: int = 3, k1: float = 1.5, b: float = 0.75
    ) -> None:
        super().__init__(index, candidate_chunks, max_quotes)
        self.k1 = k1  # bm25s's defaults
        self.b = b

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]:
        ids, scores = self.index.keywords.search(tokenize(question), k)
        return list(zip(ids.tolist(), scores.tolist()))

    def answer(self, question: str) -> Answer:
        terms = list(dict.fromkeys(tokenize(question)))
        ids, _ = self.index.keywords.search(terms, self.candidate_chunks)
        sentences = self._sentences(ids.tolist())
        if not sentences or not terms:
            return Answer(question=question, answered=False, confidence=0.0)
        idf = dict(zip(terms, self.index.keywords.idf(terms).tolist()))
        counts = [Counter(tokenize(span.slice(self.index.articles[a].text))) for a, _, span in sentences]
        lengths = [sum(c.values()) for c in counts]
        mean_length = max(sum(lengths) / len(lengths), 1.0)
        scores = []
        for count, length in zip(counts, lengths):
            norm = self.k1 * (1 - self.b + self.b * length / mean_length)
            scores.append(sum(idf[t] * count[t] * (self.k1 + 1) / (count[t] + norm) for t in terms if count[t]))
        # A sentence sharing no keyword with the question is no BM25 evidence at all.
        return self._answer(question, sentences, scores, positive_only=True)


class DenseBaseline(_SentencePicker):
    """Dense alone: chunks by FAISS, the sentence by cosine of the stored sentence vectors."""

    name = "dense"

    def __init__(self, index: QuoteIndex, embedder: TextEncoder, *, candidate_chunks: int = 8, max_quotes: int = 3) -> None:
        super().__init__(index, candidate_chunks, max_quotes)
        self.embedder = embedder

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]:
        ids, scores = self.index.vectors.search(self.embedder.embed([question])[0], k)
        return list(zip(ids.tolist(), scores.tolist()))

    def answer(self, question: str) -> Answer:
        vector = self.embedder.embed([question])[0]
        ids, _ = self.index.vectors.search(vector, self.candidate_chunks)
        sentences = self._sentences(ids.tolist())
        if not sentences:
            return Answer(question=question, answered=False, confidence=0.0)
        rows = [self.index.sentence_row(article_id, number) for article_id, number, _ in sentences]
        cosines = self.index.sentence_vectors[rows].astype(np.float32) @ vector
        # Dense alone always has a nearest sentence, however far: it answers with it.
        return self._answer(question, sentences, cosines.tolist(), positive_only=False)
