"""From a question to an ``Answer``: hybrid chunk search, then the sentences that answer.

1. Dense (FAISS) and keyword (BM25) search over chunks, fused by reciprocal rank.
2. Every sentence of the best chunks is scored against the question: its own cosine,
   the share of the question's keyword weight it contains (alone, and with the sentence
   before it), whether it holds the kind of word the question asks for, and its chunk's
   fused rank.
3. The best sentences become quotes (a pronoun-led sentence takes its predecessor with
   it). A logistic model of the evidence gives the confidence; too little and we abstain.

The weights were fitted on SQuAD dev articles 1-24 (``quotebot eval``), never on the
articles the README reports (25-48); see bench/results/ for what each term gained.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quotebot.index.articles import Span
from quotebot.index.embedding import TextEncoder
from quotebot.index.filters import ArticleFilter, Selection, select
from quotebot.index.reader import QuoteIndex
from quotebot.index.text import tokenize
from quotebot.retrieval.answer import Answer, Quote
from quotebot.retrieval.answer_types import answer_type_match
from quotebot.retrieval.settings import RetrievalSettings

# The parameters' defaults are the ``retrieval:`` settings' (one place says them).
_DEFAULTS = RetrievalSettings()

# The first quote must stay readable in a chat bubble: at most two sentences and this long.
MAX_QUOTE_CHARS = 400

# Stems of verbs a question uses to ask for what someone said; see _keyword_weights.
REPORTING_VERBS = frozenset({"say", "tell", "ask", "think", "mean"})

# A sentence opening with one of these leans on the sentence before it: for scoring,
# "the" too ("The ministry said ..."); for quoting, only pronouns and connectives, since a
# quote that opens with "The ..." reads fine alone.
_LEANING_START = re.compile(
    r"^[\"'“‘(]?(he|she|it|they|this|that|these|those|his|her|its|their|but|however|so|such|there|the)\b",
    re.IGNORECASE,
)
_PRONOUN_START = re.compile(
    r"^[\"'“‘(]?(he|she|it|they|this|that|these|those|his|her|its|their|but|however|so|such|there)\b",
    re.IGNORECASE,
)
# Where a long sentence may be cut: after a comma, semicolon, colon or dash and a space.
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)|\s[—–]\s")
_BLANK_LINES = re.compile(r"\n\s*")
# Filters' selections kept per retriever: a conversation asks many questions with one filter.
SELECTION_CACHE_SIZE = 32


@dataclass(frozen=True)
class _Candidate:
    article_id: str
    sentence: int
    span: Span
    dense: float
    lexical: float
    with_previous: float
    score: float


@dataclass(frozen=True)
class _Evidence:
    """What the confidence model reads: the best sentence and the nearest chunk."""

    best: _Candidate
    best_chunk_cosine: float


class Retriever:
    """Answers questions from a loaded ``QuoteIndex``; parameters are the ``retrieval:`` keys."""

    # Weights of the sentence score (fitted on SQuAD dev articles 1-24).
    dense_weight = 0.65
    lexical_weight = 0.30
    with_previous_weight = 0.30
    answer_type_weight = 0.10
    chunk_weight = 0.05
    # A first quote must fit a chat bubble: a sentence longer than MAX_QUOTE_CHARS loses this much.
    too_long_penalty = 0.30
    # Logistic confidence over the evidence (fitted on SQuAD questions asked against their own
    # paragraphs versus against BBC news, where they have no answer).
    confidence_weights = {"dense": 9.29, "with_previous": 5.262, "score": 4.166, "chunk_cosine": 7.583}
    confidence_bias = -13.613
    # A sentence holding every keyword of the question answers it this often (SQuAD
    # questions in their own corpus against BBC, articles 1-24: 552 of 579 such cases).
    full_match_confidence = 0.95
    # Chunks at which idf gets half the say in keyword weights (see _keyword_weights).
    idf_shrinkage = 200

    def __init__(
        self,
        index: QuoteIndex,
        embedder: TextEncoder,
        *,
        dense_candidates: int = _DEFAULTS.dense_candidates,
        keyword_candidates: int = _DEFAULTS.keyword_candidates,
        rrf_k: int = _DEFAULTS.rrf_k,
        keyword_weight: float = _DEFAULTS.keyword_weight,
        candidate_chunks: int = _DEFAULTS.candidate_chunks,
        max_quotes: int = _DEFAULTS.max_quotes,
        abstain_threshold: float = _DEFAULTS.abstain_threshold,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.dense_candidates = dense_candidates
        self.keyword_candidates = keyword_candidates
        self.rrf_k = rrf_k
        self.keyword_weight = keyword_weight
        self.candidate_chunks = candidate_chunks
        self.max_quotes = max_quotes
        self.abstain_threshold = abstain_threshold

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def over(self, index: QuoteIndex) -> Retriever:
        """The same retriever over another index (a newly published generation)."""
        other = copy.copy(self)
        other.index = index
        return other

    def answer(
        self,
        question: str,
        *,
        context: str = "",
        prefer_articles: Sequence[str] = (),
        article_filter: ArticleFilter | None = None,
    ) -> Answer:
        """Answer ``question``; ``context`` (earlier turns' subject) and ``prefer_articles`` steer
        follow-ups; ``article_filter`` limits the search to the articles it lets through."""
        selection = self.selection(article_filter)
        scope = {"filter": article_filter, "filtered_articles": selection.article_count} if selection else {}
        if selection is not None and selection.article_count == 0:
            return Answer(question=question, answered=False, confidence=0.0, **scope)
        allowed = selection.chunk_ids if selection is not None else None
        query_vector = self.embedder.embed([f"{question} {context}".strip()])[0]
        weights = self._keyword_weights(tokenize(question), tokenize(context))
        chunks, best_chunk_cosine = self._fused_chunks(query_vector, list(weights), prefer_articles, allowed=allowed)
        candidates = self._score_sentences(question, chunks, query_vector, weights)
        if not candidates:
            return Answer(question=question, answered=False, confidence=0.0, **scope)
        confidence = self._confidence(_Evidence(candidates[0], best_chunk_cosine))
        if confidence < self.abstain_threshold:
            return Answer(question=question, answered=False, confidence=round(confidence, 4), **scope)
        quotes = self._quotes(candidates, weights)
        return Answer(question=question, answered=True, confidence=round(confidence, 4), quotes=tuple(quotes), **scope)

    def selection(self, article_filter: ArticleFilter | None) -> Selection | None:
        """What ``article_filter`` lets through in this index (None: no filter); cached."""
        if article_filter is None or article_filter.is_empty:
            return None
        cache = self.__dict__.setdefault("_selections", {})
        key = (self.index.generation, article_filter)
        found = cache.get(key)
        if found is None:
            found = select(self.index.articles.records, self.index.chunks.rows, article_filter)
            if len(cache) >= SELECTION_CACHE_SIZE:
                cache.clear()  # filters are few per bot; dropping all beats tracking age across threads
            cache[key] = found
        return found

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``question`` asked afresh, as (chunk id, fused score), best first.

        The very ranking ``answer`` scores sentences in (its first ``candidate_chunks``), only
        longer; ``quotebot eval`` reads passage@k from it.
        """
        query_vector = self.embedder.embed([question])[0]
        weights = self._keyword_weights(tokenize(question), [])
        return self._fused_chunks(query_vector, list(weights), (), limit=k)[0]

    # -- 1. chunks ---------------------------------------------------------------------------

    def _fused_chunks(
        self,
        query_vector: np.ndarray,
        query_tokens: list[str],
        prefer_articles: Sequence[str],
        limit: int | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[list[tuple[int, float]], float]:
        """The best chunk ids with their reciprocal-rank-fusion scores, best first, and the
        best chunk's cosine (how close the nearest text is at all). ``allowed``: the chunk
        ids a filter lets through (both searches look only among them)."""
        dense_ids, dense_scores = self.index.vectors.search(query_vector, self.dense_candidates, allowed=allowed)
        keyword_ids, keyword_scores = self.index.keywords.search(query_tokens, self.keyword_candidates, allowed=allowed)
        dense_ids = self._newer_first(dense_ids, dense_scores)
        keyword_ids = self._newer_first(keyword_ids, keyword_scores)
        fused: dict[int, float] = {}
        # BM25 ranks the right paragraph first more often than MiniLM does on news-like
        # text (SQuAD 1-24: passage@1 0.75 against 0.63), so its ranking weighs more; a
        # small rrf_k lets first places count (passage@5 0.93 -> 0.95 with both changes).
        for ranking, weight in ((dense_ids, 1.0), (keyword_ids, self.keyword_weight)):
            for rank, chunk_id in enumerate(ranking.tolist()):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.rrf_k + rank + 1)
        if prefer_articles:
            # A follow-up most likely continues in the article of the previous answer.
            bonus = 1.0 / (self.rrf_k + 1)
            for chunk_id in fused:
                if self.index.chunks[chunk_id].article_id in prefer_articles:
                    fused[chunk_id] += bonus
        best = sorted(fused.items(), key=lambda item: -item[1])
        best_cosine = float(dense_scores[0]) if len(dense_scores) else 0.0
        return best[: limit or self.candidate_chunks], best_cosine

    # -- 2. sentences ------------------------------------------------------------------------

    def _score_sentences(
        self, question: str, chunks: list[tuple[int, float]], query_vector: np.ndarray, weights: dict[str, float]
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
        question_tokens = list(weights)  # the keywords that count: reporting verbs are out
        candidates = []
        for (article_id, sentence), cosine in zip(keys, dense.tolist()):
            span = spans[(article_id, sentence)]
            article_text = self.index.articles[article_id].text
            text = span.slice(article_text)
            present = set(tokenize(text))
            lexical = _keyword_coverage(weights, present)
            with_previous = _plain_coverage(question_tokens, self._with_leaned_on(article_id, sentence, text, present))
            score = (
                self.dense_weight * cosine
                + self.lexical_weight * lexical
                + self.with_previous_weight * with_previous
                + self.answer_type_weight * answer_type_match(question, text)
                + self.chunk_weight * prior_of[(article_id, sentence)]
                - self.too_long_penalty * (len(text) > MAX_QUOTE_CHARS)
            )
            candidates.append(_Candidate(article_id, sentence, span, cosine, lexical, with_previous, score))
        candidates.sort(key=lambda c: -round(c.score, 6))
        scores = [round(c.score, 6) for c in candidates]
        if any(a == b for a, b in zip(scores, scores[1:])):  # equal scores: the newer article first
            dates, articles = self.index.articles.date_keys(), self.index.articles
            candidates.sort(key=lambda c: (-round(c.score, 6), -dates[articles.position(c.article_id)]))
        return candidates

    def _newer_first(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``ids`` (best first) with equally scored chunks reordered newer article first, so a
        tie in either ranking goes to the newer article."""
        if len(ids) < 2:
            return ids
        rounded = np.round(np.asarray(scores, dtype=np.float64), 6)
        if len(np.unique(rounded)) == len(rounded):
            return ids  # no ties: the usual case, nothing to look up
        dates = self.index.articles.date_keys()
        rows = self.index.chunks.rows
        positions = [int(rows[self.index.chunks.row_of(int(chunk_id))]["article"]) for chunk_id in ids]
        order = np.lexsort((-dates[positions], -rounded))
        return ids[order]

    def _with_leaned_on(self, article_id: str, sentence: int, text: str, present: set[str]) -> set[str]:
        """The sentence's keywords ``present``, with those of the sentence before it when it
        leans on it ("He ...", "The ...").

        The sentence before names what this one's "he" or "the ministry" is; a sentence
        that stands on its own is judged alone, so its neighbour's words don't lend it a
        match it doesn't have.
        """
        if sentence == 0 or not _LEANING_START.match(text):
            return present
        article_text = self.index.articles[article_id].text
        return present | set(tokenize(self.index.sentences_of(article_id)[sentence - 1].slice(article_text)))

    def _keyword_weights(self, question: list[str], context: list[str]) -> dict[str, float]:
        """How much each query keyword matters; they sum to 1.

        Each keyword's weight mixes an even share with its idf share, trusting idf more
        the more chunks it was counted over: on a one-article corpus idf is noise (the
        article's subject, in every chunk, would get no weight). A word the corpus never
        uses keeps its even share, so a question about something absent finds little to
        match. Words that only come from the conversation's context count half.
        """
        unique = [t for t in dict.fromkeys(question) if t not in REPORTING_VERBS] or list(dict.fromkeys(question))
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

    def _confidence(self, evidence: _Evidence) -> float:
        """Probability that the articles answer at all, from how well the best sentence and
        the nearest chunk match the question, or from the best sentence holding all its keywords.

        How clearly the best sentence beats the second was tried and dropped: it adds
        nothing on SQuAD, and in a one-article corpus every sentence is about the same
        people, so it would make the bot shy exactly there.
        """
        features = {
            "dense": evidence.best.dense,
            "with_previous": evidence.best.with_previous,
            "score": evidence.best.score,
            "chunk_cosine": evidence.best_chunk_cosine,
        }
        logit = self.confidence_bias + sum(self.confidence_weights[name] * value for name, value in features.items())
        semantic = 1.0 / (1.0 + math.exp(-logit))
        if evidence.best.with_previous >= 1.0:
            # MiniLM knows nothing of "Tomas Berg" or "the Il-20": a sentence naming every
            # keyword of the question is evidence the cosine cannot see.
            return max(semantic, self.full_match_confidence)
        return semantic

    # -- 3. quotes ---------------------------------------------------------------------------

    def _quotes(self, candidates: list[_Candidate], weights: dict[str, float]) -> list[Quote]:
        quotes: list[Quote] = []
        taken: dict[str, list[Span]] = {}
        for candidate in candidates:
            span = self._quote_span(candidate, weights)
            if any(_overlaps(span, other) for other in taken.get(candidate.article_id, [])):
                continue
            taken.setdefault(candidate.article_id, []).append(span)
            quotes.append(self._quote(candidate, span))
            if len(quotes) == self.max_quotes:
                break
        return quotes

    def _quote_span(self, candidate: _Candidate, weights: dict[str, float]) -> Span:
        """The sentence, with the one before it when it opens by leaning on it (a pronoun);
        a sentence too long for a chat bubble is cut to its clauses that answer."""
        text = self.index.articles[candidate.article_id].text
        span = candidate.span
        if span.end - span.start > MAX_QUOTE_CHARS:
            return _best_clauses(text, span, weights)
        if candidate.sentence > 0 and _PRONOUN_START.match(span.slice(text)):
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
            date=article.date,
            url=article.url,
            source=article.source,
        )


def _keyword_coverage(weights: dict[str, float], present: set[str]) -> float:
    """Share of the query's keyword weight among the keywords ``present`` in a text."""
    return sum(weight for token, weight in weights.items() if token in present)


def _best_clauses(text: str, sentence: Span, weights: dict[str, float]) -> Span:
    """The run of whole clauses of an over-long sentence, at most MAX_QUOTE_CHARS, that holds
    the most of the question's keywords (the longest such run); still a verbatim slice.

    A sentence whose every clause is too long stays whole: a cut inside a clause would
    quote half a thought.
    """
    body = sentence.slice(text)
    cuts = sorted({0, len(body), *(match.end() for match in _CLAUSE_END.finditer(body))})
    best: tuple[tuple[float, int], int, int] | None = None
    for first in range(len(cuts) - 1):
        for last in range(first + 1, len(cuts)):
            start, end = cuts[first], cuts[last]
            if end - start > MAX_QUOTE_CHARS:
                break
            key = (_keyword_coverage(weights, set(tokenize(body[start:end]))), end - start)
            if best is None or key > best[0]:
                best = (key, start, end)
    if best is None:
        return sentence
    _, start, end = best
    piece = body[start:end]
    start += len(piece) - len(piece.lstrip())
    end -= len(piece) - len(piece.rstrip(" ,;:—–"))
    return Span(start=sentence.start + start, end=sentence.start + end)


def _plain_coverage(question_tokens: list[str], present: set[str]) -> float:
    """Share of the question's distinct keywords among those ``present``, each counting the same."""
    if not question_tokens:
        return 0.0
    return sum(token in present for token in question_tokens) / len(question_tokens)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def paragraph_number(text: str, offset: int) -> int:
    """1-based paragraph (a run of text between line breaks) that ``offset`` falls in.

    Line breaks before the first paragraph don't count; those right before ``offset``
    do: a quote that opens a paragraph is in that paragraph, not the one before.
    """
    return len(_BLANK_LINES.findall(text[:offset].lstrip())) + 1
