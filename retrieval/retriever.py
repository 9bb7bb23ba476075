"""From a question to an ``Answer``: hybrid chunk search, then the sentences that answer.

1. Dense (FAISS) and keyword (BM25) search over chunks, fused by reciprocal rank.
2. Every sentence of the best chunks is scored against the question: its own cosine,
   the share of the question's keyword weight it contains, and its chunk's fused rank.
3. The best sentences become quotes (a pronoun-led sentence takes its predecessor with
   it); the best sentence's evidence gives the confidence; too little and we abstain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.embedding import TextEncoder
from index.index import QuoteIndex
from index.models import Span
from index.text import tokenize
from retrieval.models import Answer, Quote

# The first quote must stay readable in a chat bubble: at most two sentences and this long.
MAX_QUOTE_CHARS = 400

# A sentence opening with one of these leans on the sentence before it.
_LEANING_START = re.compile(
    r"^[\"'“‘(]?(he|she|it|they|this|that|these|those|his|her|its|their|but|however|so|such|there)\b",
    re.IGNORECASE,
)
_BLANK_LINES = re.compile(r"\n\s*")


@dataclass(frozen=True)
class _Candidate:
    article_id: str
    sentence: int
    span: Span
    dense: float
    lexical: float
    chunk_prior: float
    score: float


class Retriever:
    """Answers questions from a loaded ``QuoteIndex``; parameters are the ``retrieval:`` keys."""

    # Weights of the sentence score; chosen on the seed corpus and SQuAD train-half articles.
    dense_weight = 0.45
    lexical_weight = 0.40
    chunk_weight = 0.15
    # Chunks at which idf gets half the say in keyword weights (see _keyword_weights).
    idf_shrinkage = 200

    def __init__(
        self,
        index: QuoteIndex,
        embedder: TextEncoder,
        *,
        dense_candidates: int = 50,
        keyword_candidates: int = 50,
        rrf_k: int = 60,
        candidate_chunks: int = 8,
        max_quotes: int = 3,
        abstain_threshold: float = 0.35,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.dense_candidates = dense_candidates
        self.keyword_candidates = keyword_candidates
        self.rrf_k = rrf_k
        self.candidate_chunks = candidate_chunks
        self.max_quotes = max_quotes
        self.abstain_threshold = abstain_threshold

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def answer(self, question: str, *, context: str = "", prefer_articles: Sequence[str] = ()) -> Answer:
        """Answer ``question``; ``context`` (earlier turns' subject) and ``prefer_articles`` steer follow-ups."""
        query_vector = self.embedder.embed([f"{question} {context}".strip()])[0]
        weights = self._keyword_weights(tokenize(question), tokenize(context))
        chunks = self._fused_chunks(query_vector, list(weights), prefer_articles)
        candidates = self._score_sentences(chunks, query_vector, weights)
        if not candidates:
            return Answer(question=question, answered=False, confidence=0.0)
        confidence = self._confidence(candidates[0])
        if confidence < self.abstain_threshold:
            return Answer(question=question, answered=False, confidence=round(confidence, 4))
        quotes = self._quotes(candidates)
        return Answer(question=question, answered=True, confidence=round(confidence, 4), quotes=tuple(quotes))

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``question`` asked afresh, as (chunk id, fused score), best first.

        The very ranking ``answer`` scores sentences in (its first ``candidate_chunks``), only
        longer; ``quotebot eval`` reads passage@k from it.
        """
        import copy  # a shallow copy ranks k chunks without touching this (shared) retriever

        query_vector = self.embedder.embed([question])[0]
        weights = self._keyword_weights(tokenize(question), [])
        ranker = copy.copy(self)
        ranker.candidate_chunks = k
        return ranker._fused_chunks(query_vector, list(weights), ())

    # -- 1. chunks ---------------------------------------------------------------------------

    def _fused_chunks(
        self, query_vector: np.ndarray, query_tokens: list[str], prefer_articles: Sequence[str]
    ) -> list[tuple[int, float]]:
        """The best chunk ids with their reciprocal-rank-fusion scores, best first."""
        dense_ids, _ = self.index.vectors.search(query_vector, self.dense_candidates)
        keyword_ids, _ = self.index.keywords.search(query_tokens, self.keyword_candidates)
        fused: dict[int, float] = {}
        for ranking in (dense_ids, keyword_ids):
            for rank, chunk_id in enumerate(ranking.tolist()):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        if prefer_articles:
            # A follow-up most likely continues in the article of the previous answer.
            bonus = 1.0 / (self.rrf_k + 1)
            for chunk_id in fused:
                if self.index.chunks[chunk_id].article_id in prefer_articles:
                    fused[chunk_id] += bonus
        best = sorted(fused.items(), key=lambda item: -item[1])
        return best[: self.candidate_chunks]

    # -- 2. sentences ------------------------------------------------------------------------

    def _score_sentences(
        self, chunks: list[tuple[int, float]], query_vector: np.ndarray, weights: dict[str, float]
    ) -> list[_Candidate]:
        if not chunks:
            return []
        prior_of: dict[tuple[str, int], float] = {}
        spans: dict[tuple[str, int], Span] = {}
        top_fused = chunks[0][1]
        for chunk_id, fused in chunks:
            chunk = self.index.chunks[chunk_id]
            for offset, span in enumerate(chunk.sentences):
                key = (chunk.article_id, chunk.first_sentence + offset)
                prior_of[key] = max(prior_of.get(key, 0.0), fused / top_fused)
                spans[key] = span
        keys = list(spans)
        rows = [self.index.sentence_row(article_id, sentence) for article_id, sentence in keys]
        dense = self.index.sentence_vectors[rows].astype(np.float32) @ query_vector
        candidates = []
        for (article_id, sentence), cosine in zip(keys, dense.tolist()):
            span = spans[(article_id, sentence)]
            text = span.slice(self.index.articles[article_id].text)
            lexical = _keyword_coverage(weights, text)
            prior = prior_of[(article_id, sentence)]
            score = self.dense_weight * cosine + self.lexical_weight * lexical + self.chunk_weight * prior
            candidates.append(_Candidate(article_id, sentence, span, cosine, lexical, prior, score))
        candidates.sort(key=lambda c: -c.score)
        return candidates

    def _keyword_weights(self, question: list[str], context: list[str]) -> dict[str, float]:
        """How much each query keyword matters; they sum to 1.

        Each keyword's weight mixes an even share with its idf share, trusting idf more
        the more chunks it was counted over: on a one-article corpus idf is noise (the
        article's subject, in every chunk, would get no weight). A word the corpus never
        uses keeps its even share, so a question about something absent finds little to
        match. Words that only come from the conversation's context count half.
        """
        unique = list(dict.fromkeys(question))
        unique += [t for t in dict.fromkeys(context) if t not in unique]
        if not unique:
            return {}
        idf = self.index.keywords.idf(unique)
        idf = idf / idf.sum() if idf.sum() > 0 else np.full(len(unique), 1.0 / len(unique))
        trust = len(self.index.chunks) / (len(self.index.chunks) + self.idf_shrinkage)
        raw = {
            t: ((1 - trust) / len(unique) + trust * w) * (1.0 if t in question else 0.5)
            for t, w in zip(unique, idf.tolist())
        }
        total = sum(raw.values())
        return {t: w / total for t, w in raw.items()}

    def _confidence(self, best: _Candidate) -> float:
        """Evidence that the best sentence answers: meaning and keywords together, squashed to [0, 1]."""
        evidence = 0.6 * best.dense + 0.4 * best.lexical
        return 1.0 / (1.0 + math.exp(-12.0 * (evidence - 0.3)))

    # -- 3. quotes ---------------------------------------------------------------------------

    def _quotes(self, candidates: list[_Candidate]) -> list[Quote]:
        quotes: list[Quote] = []
        taken: dict[str, list[Span]] = {}
        for candidate in candidates:
            span = self._quote_span(candidate)
            if any(_overlaps(span, other) for other in taken.get(candidate.article_id, [])):
                continue
            taken.setdefault(candidate.article_id, []).append(span)
            quotes.append(self._quote(candidate, span))
            if len(quotes) == self.max_quotes:
                break
        return quotes

    def _quote_span(self, candidate: _Candidate) -> Span:
        """The sentence, with the one before it when it opens by leaning on it (a pronoun)."""
        text = self.index.articles[candidate.article_id].text
        span = candidate.span
        if candidate.sentence > 0 and _LEANING_START.match(span.slice(text)):
            previous = self.index.sentences_of(candidate.article_id)[candidate.sentence - 1]
            same_paragraph = "\n" not in text[previous.end : span.start]
            if same_paragraph and span.end - previous.start <= MAX_QUOTE_CHARS:
                return Span(start=previous.start, end=span.end)
        return span

    def _quote(self, candidate: _Candidate, span: Span) -> Quote:
        article = self.index.articles[candidate.article_id]
        return Quote(
            text=span.slice(article.text),
            article_id=article.id,
            title=article.title,
            start=span.start,
            end=span.end,
            score=round(candidate.score, 4),
            paragraph=paragraph_number(article.text, span.start),
        )


def _keyword_coverage(weights: dict[str, float], sentence: str) -> float:
    """Share of the query's keyword weight that the sentence contains."""
    present = set(tokenize(sentence))
    return sum(weight for token, weight in weights.items() if token in present)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def paragraph_number(text: str, offset: int) -> int:
    """1-based paragraph (a run of text between line breaks) that ``offset`` falls in.

    Line breaks before the first paragraph don't count; those right before ``offset``
    do: a quote that opens a paragraph is in that paragraph, not the one before.
    """
    return len(_BLANK_LINES.findall(text[:offset].lstrip())) + 1
