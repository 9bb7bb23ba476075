"""From a question to an ``Answer``: hybrid chunk search, then the sentences that answer.

1. Dense (FAISS) and keyword (BM25) search over chunks, fused by reciprocal rank with a
   third ranking of the chunks found: by their best sentence's cosine.
2. Every sentence of the best chunks gets the features of ``retrieval.features``: its
   cosine, the share of the question's keywords in it and around it, whether it holds
   the kind of thing the question asks for (a number, a date, a name, a reason) that the
   question does not already name, numbers that agree or conflict, the news lead.
3. A fitted ranker orders them; a fitted confidence model says how likely each, quoted,
   answers. Below the threshold for the best one we abstain; further quotes appear only
   when they too clear it (or come close to the first).
4. Each quote marks its answering words (``answer_start``/``answer_end``, ``retrieval.span``).

Both models are logistic regressions in retrieval/weights.json, fitted by
``bench/fit_ranker.py`` on tuning halves only (SQuAD dev articles 1-24 and the tuning
halves of the other sets), never on what the README reports.
"""

from __future__ import annotations

import copy
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quotebot.index.articles import Span
from quotebot.index.embedding import TextEncoder
from quotebot.index.filters import ArticleFilter, Selection, select
from quotebot.index.lazyre import lazy
from quotebot.index.reader import QuoteIndex
from quotebot.index.text import tokenize
from quotebot.index.threads import InThread
from quotebot.retrieval.answer import Answer, Quote
from quotebot.retrieval.answer_types import QuestionType, question_type
from quotebot.retrieval.features import (
    MAX_MARGIN,
    MAX_QUOTE_CHARS,
    SentenceEvidence,
    SentenceScorer,
    SentenceText,
    keyword_coverage,
    pair_token,
    pair_tokens,
    sentence_features,
)
from quotebot.retrieval.ranker import Models, _sigmoid, load_models
from quotebot.retrieval.span import answer_span
from quotebot.retrieval.settings import RetrievalSettings

# The parameters' defaults are the ``retrieval:`` settings' (one place says them).
_DEFAULTS = RetrievalSettings()

__all__ = ["MAX_QUOTE_CHARS", "Retriever", "paragraph_number"]

# Stems of verbs a question uses to ask for what someone said; see _keyword_weights.
# Filters' selections kept per retriever: a conversation asks many questions with one filter.
SELECTION_CACHE_SIZE = 32
# ("ask" is not one: "What did Herzog ask Lavrov?" is answered where he urged or asked.)
REPORTING_VERBS = frozenset({"say", "tell", "think", "mean"})

# A sentence opening with one of these leans on the sentence before it: for scoring,
# "the" too ("The ministry said ..."); for quoting, only pronouns and connectives, since a
# quote that opens with "The ..." reads fine alone.
_LEANING_START = lazy(
    r"^[\"'“‘(]?(he|she|it|they|this|that|these|those|his|her|its|their|but|however|so|such|there|the)\b",
    re.IGNORECASE,
)
_PRONOUN_START = lazy(
    r"^[\"'“‘(]?(he|she|it|they|this|that|these|those|his|her|its|their|but|however|so|such|there)\b",
    re.IGNORECASE,
)
# Where a long sentence may be cut: after a comma, semicolon, colon or dash and a space.
_CLAUSE_END = lazy(r"[,;:—–](?=\s)|\s[—–]\s")
_BLANK_LINES = lazy(r"\n\s*")


@dataclass(frozen=True)
class _Found:
    candidates: list[SentenceEvidence]  # best first
    weights: dict[str, float]  # the question's keywords and their weights
    asked: QuestionType
    question: str = ""  # as asked: the answer marked inside a quote reads its wording


class Retriever:
    """Answers questions from a loaded ``QuoteIndex``; parameters are the ``retrieval:`` keys."""

    # A further quote is shown when its own confidence clears the threshold, or comes
    # this close to the first quote's.
    close_to_first = 0.10
    # Chunks at which idf gets half the say in keyword weights (see _keyword_weights).
    idf_shrinkage = 200
    # Embed the question on another thread while BM25 runs: True, False, or None: while the
    # machine has a core to spare (_spare_core). The answer is the same either way.
    overlap_encoder: bool | None = None

    def __init__(
        self,
        index: QuoteIndex,
        embedder: TextEncoder,
        *,
        dense_candidates: int = _DEFAULTS.dense_candidates,
        keyword_candidates: int = _DEFAULTS.keyword_candidates,
        rrf_k: int = _DEFAULTS.rrf_k,
        keyword_weight: float = _DEFAULTS.keyword_weight,
        sentence_weight: float = _DEFAULTS.sentence_weight,
        candidate_chunks: int = _DEFAULTS.candidate_chunks,
        max_quotes: int = _DEFAULTS.max_quotes,
        abstain_threshold: float = _DEFAULTS.abstain_threshold,
        models: Models | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.dense_candidates = dense_candidates
        self.keyword_candidates = keyword_candidates
        self.rrf_k = rrf_k
        self.keyword_weight = keyword_weight
        self.sentence_weight = sentence_weight
        self.candidate_chunks = candidate_chunks
        self.max_quotes = max_quotes
        self.abstain_threshold = abstain_threshold
        self.models = models or load_models()
        self._texts = SentenceText(index)
        # Only an encoder whose vectors do not depend on the thread embeds in the background.
        self._embeds_anywhere = bool(getattr(embedder, "same_vectors_on_any_thread", False))
        self._encoder_seconds = 0.0  # how long the encoder takes a question (moving average; 0: not yet known)

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def over(self, index: QuoteIndex) -> Retriever:
        """The same retriever over another index (a newly published generation)."""
        other = copy.copy(self)
        other.index = index
        other._texts = SentenceText(index)
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
        found = self._evidence(question, context, prefer_articles, allowed)
        if not found.candidates:
            return Answer(question=question, answered=False, confidence=0.0, **scope)
        confidence = found.candidates[0].confidence
        if confidence < self.abstain_threshold:
            return Answer(question=question, answered=False, confidence=round(confidence, 4), **scope)
        quotes = self._quotes(found)
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

    def evidence(
        self, question: str, *, context: str = "", prefer_articles: Sequence[str] = ()
    ) -> list[SentenceEvidence]:
        """Every candidate sentence with its features, ranker log-odds and confidence, best first
        (what ``answer`` decides from; bench/fit_ranker.py fits the models on it)."""
        return self._evidence(question, context, prefer_articles).candidates

    def _evidence(
        self, question: str, context: str, prefer_articles: Sequence[str], allowed: np.ndarray | None = None
    ) -> _Found:
        # The question encoder (onnxruntime, which lets go of the GIL) runs on another thread
        # while this one does the keyword side: BM25, the float32 sentence vectors of its chunks
        # and the features of the sentences of its best chunks, most of which the fused ranking
        # keeps (bench/results/index-scale.md).
        started = time.perf_counter()
        background = self._embeds_anywhere and (self.overlap_encoder if self.overlap_encoder is not None else _spare_core())
        encoding = InThread(
            self.embedder.embed, [f"{question} {context}".strip()], name="quotebot-question", daemon=True, here=not background
        )  # (daemon: a hung encoder does not keep the process alive)
        weights, search_tokens = self._query_keywords(question, context)
        asked = question_type(question)
        keyword_hits = self.index.keywords.search(search_tokens, self.keyword_candidates, allowed=allowed)
        self._texts.trim()
        scorer = self._scorer(question, asked, weights)
        converted: dict[int, np.ndarray] = {}  # chunk id -> its sentence vectors as float32, read once
        if encoding.in_thread:
            self._score_ahead(keyword_hits[0], scorer, started + self._encoder_seconds, converted)
        query_vector = encoding.result()[0]
        if encoding.in_thread:
            self._encoder_seconds = 0.8 * self._encoder_seconds + 0.2 * encoding.seconds if self._encoder_seconds else encoding.seconds
        dense_hits = self.index.vectors.search(query_vector, self.dense_candidates, allowed=allowed)
        chunks, best_chunk_cosine = self._fused_chunks(
            query_vector, dense_hits, keyword_hits, prefer_articles, converted=converted
        )
        candidates = self._candidates(chunks, query_vector, scorer, converted)
        for candidate in candidates:
            candidate.values["chunk_cosine"] = best_chunk_cosine
            candidate.ranker = self.models.ranker.log_odds(candidate.values)
        candidates.sort(key=lambda c: -round(c.ranker, 6))
        ranks = [round(c.ranker, 6) for c in candidates]
        if any(a == b for a, b in zip(ranks, ranks[1:])):  # equal rank: the newer article first
            dates, articles = self.index.articles.date_keys(), self.index.articles
            candidates.sort(key=lambda c: (-round(c.ranker, 6), -dates[articles.position(c.article_id)]))
        if candidates:
            best = candidates[0].ranker
            margin = min(best - candidates[1].ranker if len(candidates) > 1 else MAX_MARGIN, MAX_MARGIN)
            for candidate in candidates:
                candidate.values["ranker"] = candidate.ranker
                candidate.values["ranker_gap"] = candidate.ranker - best
                candidate.values["margin"] = margin
                candidate.confidence = self.models.confidence.probability(candidate.values)
        return _Found(candidates, weights, asked, question)

    def search_chunks(self, question: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``question`` asked afresh, as (chunk id, fused score), best first.

        The very ranking ``answer`` scores sentences in (its first ``candidate_chunks``), only
        longer; ``quotebot eval`` reads passage@k from it.
        """
        query_vector = self.embedder.embed([question])[0]
        _, search_tokens = self._query_keywords(question, "")
        dense_hits = self.index.vectors.search(query_vector, self.dense_candidates)
        keyword_hits = self.index.keywords.search(search_tokens, self.keyword_candidates)
        return self._fused_chunks(query_vector, dense_hits, keyword_hits, (), limit=k)[0]

    # -- 1. chunks ---------------------------------------------------------------------------

    def _fused_chunks(
        self,
        query_vector: np.ndarray,
        dense_hits: tuple[np.ndarray, np.ndarray],
        keyword_hits: tuple[np.ndarray, np.ndarray],
        prefer_articles: Sequence[str],
        limit: int | None = None,
        converted: dict[int, np.ndarray] | None = None,
    ) -> tuple[list[tuple[int, float]], float]:
        """The best chunk ids with their reciprocal-rank-fusion scores, best first, and the
        best chunk's cosine (how close the nearest text is at all), from the question's vector
        and the dense and the BM25 search's (ids, scores); ``converted``: see ``_by_best_sentence``."""
        dense_ids, dense_scores = dense_hits
        keyword_ids, keyword_scores = keyword_hits
        dense_ids = self._newer_first(dense_ids, dense_scores)
        keyword_ids = self._newer_first(keyword_ids, keyword_scores)
        sentence_ids = self._by_best_sentence(query_vector, dense_ids, keyword_ids, converted=converted)
        return self._fuse(dense_ids, dense_scores, keyword_ids, sentence_ids, prefer_articles, limit)

    def _by_best_sentence(
        self, query_vector: np.ndarray, *found: np.ndarray, converted: dict[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """The chunks the searches ``found``, ranked by their best sentence's cosine to the
        question (newer article first on a tie). ``converted``: chunks' sentence vectors as
        ``_float_vectors`` gave them already; it gains those of the other found chunks.

        A chunk's vector is the mean of its sentences' (each sentence is embedded once), so a
        chunk holding one sentence on the question among three others ranks low in the dense
        search; its best sentence does not. Only the found chunks are ranked, so this costs
        the same at any corpus size. As a third ranking of the fusion it took the right
        paragraph among the first five from 0.940 to 0.950 on SQuAD 1-24, first from 0.748 to
        0.772 (bench/results/quality-levers.md, fourth round).
        """
        pool = np.fromiter(dict.fromkeys(np.concatenate(found).tolist()), dtype=np.int64)
        if len(pool) == 0:
            return pool
        vectors = self._float_vectors(pool, converted if converted is not None else {})
        blocks = [vectors[chunk_id] for chunk_id in pool.tolist()]
        counts = np.fromiter((len(block) for block in blocks), dtype=np.int64, count=len(blocks))  # (each >= 1)
        cosines = np.concatenate(blocks) @ query_vector
        best = np.maximum.reduceat(cosines, np.cumsum(counts) - counts)
        order = np.argsort(-best, kind="stable")
        return self._newer_first(pool[order], best[order])

    def _float_vectors(self, chunk_ids: np.ndarray, converted: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Each chunk's sentence vectors as float32 rows: ``converted``, to which the chunks it
        lacks are added, read at once (``sentence_vectors_at``). Reading and converting the ~350 float16
        sentences of a question's found chunks took 0.4 ms on BBC, so the BM25 side's are read
        while the question is embedded (``_score_ahead``); the same values either way."""
        missing = np.asarray([chunk_id for chunk_id in chunk_ids.tolist() if chunk_id not in converted], dtype=np.int64)
        if len(missing) == 0:
            return converted
        rows = self.index.chunks.rows[self.index.chunks.rows_of(missing)]
        first = self.index.articles.sentence_base[rows["article"]].astype(np.int64) + rows["first_sentence"]
        counts = rows["sentence_count"].astype(np.int64)
        starts = np.cumsum(counts) - counts
        sentence_rows = np.repeat(first - starts, counts) + np.arange(int(counts.sum()))
        vectors = self.index.sentence_vectors_at(sentence_rows)
        converted.update(zip(missing.tolist(), np.split(vectors, starts[1:])))
        return converted

    def _newer_first(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``ids`` (best first) with equally scored chunks reordered newer article first, so a
        tie in either ranking goes to the newer article."""
        if len(ids) < 2:
            return ids
        rounded = np.round(np.asarray(scores, dtype=np.float64), 6)
        ordered = np.sort(rounded)  # (not np.unique: it imports numpy.ma, 16 ms of a one-shot ask)
        if (ordered[1:] != ordered[:-1]).all():
            return ids  # no ties: the usual case, nothing to look up
        dates = self.index.articles.date_keys()
        positions = self.index.chunks.rows["article"][self.index.chunks.rows_of(ids)]
        order = np.lexsort((-dates[positions], -rounded))
        return ids[order]

    def _fuse(
        self,
        dense_ids: np.ndarray,
        dense_scores: np.ndarray,
        keyword_ids: np.ndarray,
        sentence_ids: np.ndarray,
        prefer_articles: Sequence[str],
        limit: int | None,
    ) -> tuple[list[tuple[int, float]], float]:
        fused: dict[int, float] = {}
        # BM25 ranks the right paragraph first more often than MiniLM does on news-like
        # text (SQuAD 1-24: passage@1 0.75 against 0.63), so its ranking weighs more; a
        # small rrf_k lets first places count. The weights and rrf_k were tuned on SQuAD
        # 1-24 with the best-sentence ranking as a third (quality-levers.md, fourth round).
        rankings = ((dense_ids, 1.0), (keyword_ids, self.keyword_weight), (sentence_ids, self.sentence_weight))
        for ranking, weight in rankings:
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

    def _score_ahead(
        self, keyword_ids: np.ndarray, scorer: SentenceScorer, until: float, converted: dict[int, np.ndarray]
    ) -> None:
        """While the question encoder runs: the BM25 chunks' sentence vectors as float32, into
        ``converted`` (the fusion's best-sentence ranking reads every one of them), then the features (and
        flattened texts) of the sentences of the best BM25 chunks, best first, chunk by chunk,
        until the ``perf_counter`` time ``until`` (all of them while it is not yet known how
        long the encoder takes). The fused ranking keeps most of them (on BBC, 22 of its 31
        sentences a question come from BM25's first 8 chunks).

        No further than ``candidate_chunks``, and not past the encoder's usual time: this
        thread, busy in Python, would keep the encoder's thread waiting for the GIL when it
        comes back from onnxruntime (up to the 5 ms switch interval), and a chunk the fused
        ranking then drops was scored for nothing."""
        self._float_vectors(keyword_ids, converted)
        for chunk_id in keyword_ids[: self.candidate_chunks].tolist():
            if self._encoder_seconds and time.perf_counter() >= until:
                break
            chunk = self.index.chunks[chunk_id]
            for offset in range(len(chunk.sentences)):
                self._texts.flat(chunk.article_id, chunk.first_sentence + offset)
                scorer.values(chunk.article_id, chunk.first_sentence + offset)

    # -- 2. sentences ------------------------------------------------------------------------

    def _scorer(self, question: str, asked: QuestionType, weights: dict[str, float]) -> SentenceScorer:
        """What scores this question's sentences: the question's keywords in order, with its
        request verb ("ask", not a keyword) kept for the pairs: "Herzog ask" meets "Herzog
        (also) urged"."""
        question_tokens = [t for t in pair_tokens(tokenize(question)) if t in weights]
        bigrams = list(dict.fromkeys(zip(question_tokens, question_tokens[1:])))
        return SentenceScorer(asked, self._texts, weights, self._rare(weights), self._with_leaned_on, bigrams)

    def _candidates(
        self, chunks: list[tuple[int, float]], query_vector: np.ndarray, scorer: SentenceScorer,
        converted: dict[int, np.ndarray],
    ) -> list[SentenceEvidence]:
        """Every sentence of the ``chunks``, once, with its features; ``converted``: the chunks'
        sentence vectors, as the fusion read them (every fused chunk was found by a search)."""
        if not chunks:
            return []
        candidates: dict[tuple[str, int], SentenceEvidence] = {}
        vectors = []
        for rank, (chunk_id, _) in enumerate(chunks):
            chunk = self.index.chunks[chunk_id]
            for offset, span in enumerate(chunk.sentences):
                key = (chunk.article_id, chunk.first_sentence + offset)
                if key not in candidates:
                    candidates[key] = SentenceEvidence(key[0], key[1], span.start, span.end, rank, {})
                    vectors.append(converted[chunk_id][offset])
        found = list(candidates.values())
        self._same_text_same_rank(found)
        cosines = (np.stack(vectors) @ query_vector).tolist()
        sentence_features(found, cosines, scorer)
        return found

    def _same_text_same_rank(self, found: list[SentenceEvidence]) -> None:
        """Give sentences of identical text (a wire story run twice) the best chunk rank among
        them: their chunks' ranks differ only by a tie-break, so they must score alike and
        the newer article win the tie, not whichever the tie-break happened to put first."""
        texts = [self._texts.flat(c.article_id, c.sentence) for c in found]
        best: dict[str, int] = {}
        for text, candidate in zip(texts, found):
            best[text] = min(best.get(text, candidate.chunk_rank), candidate.chunk_rank)
        for text, candidate in zip(texts, found):
            candidate.chunk_rank = best[text]

    def _rare(self, weights: dict[str, float]) -> list[str]:
        """The question's rarest keywords: those with at least the median idf (one at least)."""
        tokens = list(weights)
        if not tokens:
            return []
        idf = self.index.keywords.idf(tokens)
        cut = float(_median(idf))
        return [t for t, w in zip(tokens, idf.tolist()) if w >= cut]

    def _with_leaned_on(self, article_id: str, sentence: int, text: str, present: set[str]) -> set[str]:
        """The sentence's keywords ``present``, with those of the sentence before it when it
        leans on it ("He ...", "The ...").

        The sentence before names what this one's "he" or "the ministry" is; a sentence
        that stands on its own is judged alone, so its neighbour's words don't lend it a
        match it doesn't have.
        """
        if sentence == 0 or not _LEANING_START.match(text):
            return present
        return present | self._texts.tokens(article_id, sentence - 1)

    def _query_keywords(self, question: str, context: str) -> tuple[dict[str, float], list[str]]:
        """The question's keyword weights, request verbs as one ("urge" weighs as "ask", so a
        sentence telling what he urged matches "What did he ask?"), and the tokens BM25
        searches with: the weighted ones as the question wrote them."""
        asked, around = tokenize(question), tokenize(context)
        weights = self._keyword_weights(pair_tokens(asked), pair_tokens(around))
        search = [t for t in dict.fromkeys([*asked, *around]) if pair_token(t) in weights]
        return weights, search

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

    # -- 3. quotes ---------------------------------------------------------------------------

    def _quotes(self, found: _Found) -> list[Quote]:
        """The first candidate, then those that answer too, each from a different place."""
        candidates, weights, asked = found.candidates, found.weights, found.asked
        quotes: list[Quote] = []
        taken: dict[str, list[Span]] = {}
        first = candidates[0].confidence
        for candidate in candidates:
            if quotes and candidate.confidence < min(self.abstain_threshold, first - self.close_to_first):
                continue
            span = self._quote_span(candidate, weights)
            if any(_overlaps(span, other) for other in taken.get(candidate.article_id, [])):
                continue
            taken.setdefault(candidate.article_id, []).append(span)
            quotes.append(self._quote(candidate, span, weights, asked, found.question))
            if len(quotes) == self.max_quotes:
                break
        return quotes

    def _quote_span(self, candidate: SentenceEvidence, weights: dict[str, float]) -> Span:
        """The sentence, with the one before it when it opens by leaning on it (a pronoun);
        a sentence too long for a chat bubble is cut to its clauses that answer."""
        text = self.index.articles[candidate.article_id].text
        span = Span(start=candidate.start, end=candidate.end)
        if span.end - span.start > MAX_QUOTE_CHARS:
            return _best_clauses(text, span, weights)
        if candidate.sentence > 0 and _PRONOUN_START.match(span.slice(text)):
            previous_start, previous_end = self._texts.spans(candidate.article_id)[candidate.sentence - 1]
            same_paragraph = "\n" not in text[previous_end : span.start]
            if same_paragraph and span.end - previous_start <= MAX_QUOTE_CHARS:
                return Span(start=previous_start, end=span.end)
        return span

    def _quote(
        self, candidate: SentenceEvidence, span: Span, weights: dict[str, float], asked: QuestionType, question: str
    ) -> Quote:
        article = self.index.articles[candidate.article_id]
        text = span.slice(article.text)
        marked = answer_span(asked, set(weights), text, question=question)
        return Quote(
            text=text,
            article_id=article.id,
            title=article.title,
            start=span.start,
            end=span.end,
            score=round(_sigmoid(candidate.ranker), 4),
            paragraph=paragraph_number(article.text, span.start),
            date=article.date,
            url=article.url,
            source=article.source,
            answer_start=span.start + marked[0] if marked else None,
            answer_end=span.start + marked[1] if marked else None,
        )


# How often the load average is read, and how far below the core count it must stay for a
# spare core: the asking thread and the encoder's thread each keep one core busy, so on a busy
# machine (another process at full tilt) they would queue for one core and answer slower than
# one thread does (bench/results/index-scale.md, 2026-12-03 warm serving).
SPARE_CORE_CHECK_SECONDS = 1.0
SPARE_CORE_MARGIN = 0.25
_spare_core_seen = (-SPARE_CORE_CHECK_SECONDS, False)


def _spare_core() -> bool:
    """Whether the machine has a core to spare: its 1-minute load average is below the core
    count by SPARE_CORE_MARGIN (read at most once a SPARE_CORE_CHECK_SECONDS)."""
    global _spare_core_seen
    checked, spare = _spare_core_seen
    now = time.monotonic()
    if now - checked >= SPARE_CORE_CHECK_SECONDS:
        try:
            spare = os.getloadavg()[0] < (os.cpu_count() or 1) - SPARE_CORE_MARGIN
        except OSError:  # no load average (not Unix): one thread, as before
            spare = False
        _spare_core_seen = (now, spare)
    return spare


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
            key = (keyword_coverage(weights, set(tokenize(body[start:end]))), end - start)
            if best is None or key > best[0]:
                best = (key, start, end)
    if best is None:
        return sentence
    _, start, end = best
    piece = body[start:end]
    start += len(piece) - len(piece.lstrip())
    end -= len(piece) - len(piece.rstrip(" ,;:—–"))
    return Span(start=sentence.start + start, end=sentence.start + end)


def _median(values: np.ndarray) -> np.floating:
    """``np.median`` of a 1-d array without NaN, to the bit (the mean of the middle one or two,
    as numpy takes it), without the numpy.ma import np.median's NaN check costs a one-shot ask."""
    ordered = np.sort(values)
    half = len(ordered) // 2
    return np.mean(ordered[half - 1 : half + 1] if len(ordered) % 2 == 0 else ordered[half : half + 1])


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def paragraph_number(text: str, offset: int) -> int:
    """1-based paragraph (a run of text between line breaks) that ``offset`` falls in.

    Line breaks before the first paragraph don't count; those right before ``offset``
    do: a quote that opens a paragraph is in that paragraph, not the one before.
    """
    return len(_BLANK_LINES.findall(text[:offset].lstrip())) + 1
