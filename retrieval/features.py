"""The evidence each candidate sentence offers, as numbers with one meaning at any corpus size.

Every feature is a cosine (MiniLM's scale is fixed), a share of the question's keywords,
a 0/1 cue, a rank position, or a difference to the best candidate of the same question:
none is a raw BM25 or fusion score, whose scale moves with the size of the corpus. That is
what lets one ranker and one confidence model serve a one-article corpus and an archive of
100,000 chunks alike (``retrieval.ranker``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from quotebot.index.text import TOKEN_PATTERN, tokenize, word_tokens
from quotebot.retrieval.answer_types import REQUEST_WORDS, AnswerType, QuestionType, answer_spans, names_numbers, number_agreement

# A first quote must stay readable in a chat bubble: at most two sentences and this long.
MAX_QUOTE_CHARS = 400

# Sentence ranker inputs, in the order of the weights file.
RANKER_FEATURES: tuple[str, ...] = (
    "cosine",  # the sentence's cosine to the question
    "cosine_gap",  # minus the best cosine among this question's candidates (<= 0)
    "coverage",  # share of the question's keyword weight in the sentence
    "coverage_gap",  # minus the best coverage among the candidates (<= 0)
    "bigram",  # share of the question's adjacent keyword pairs found adjacent in the sentence
    "cosine_rank",  # 1 / (1 + its place among the candidates by cosine)
    "coverage_rank",  # 1 / (1 + its place by coverage)
    "length",  # its length, up to a chat bubble's (chars / 400, at most 1)
    "with_previous",  # share of keywords in the sentence and the one it leans on ("He ...")
    "window",  # share of keyword weight in the sentence and its two neighbours
    "rare",  # share of the question's rarest keywords in the sentence and its neighbours
    "type_found",  # the question asks for a kind of thing, and the sentence holds a new one
    "type_missing",  # it asks for a kind, and the sentence holds none the question lacks
    "type_near",  # how close that new thing stands to the question's keywords (1: next to one)
    "topic_said",  # "What did X say about <topic>?": share of the topic's keywords in the sentence itself
    "number_agrees",  # the sentence holds a number or year the question names
    "number_conflicts",  # it names other years / numbers instead
    "lead",  # the first sentence of an article of several paragraphs (news tells the essentials first)
    "lead_untyped",  # the lead, for a question with no type cue ("what ...", "which ...")
    "chunk_rank",  # 1 / (1 + fused rank of its best chunk)
    "too_long",  # longer than a chat bubble holds
)

# The ranker also weighs products of these pairs (a number found *and* the keywords around
# it, ...): the one non-linearity a logistic model needs here (+1 point of first sentences
# right on held-out SQuAD questions of the tuning half).
INTERACTING: tuple[str, ...] = (
    "cosine_gap", "coverage_gap", "with_previous", "window", "rare", "bigram", "type_found",
    "type_missing", "chunk_rank", "cosine_rank", "coverage_rank", "length", "type_near",
)


def ranker_terms() -> tuple[str, ...]:
    """Every term of the ranker: the features, then each product of two INTERACTING ones (and squares)."""
    return (*RANKER_FEATURES, *_products(INTERACTING))


def confidence_terms() -> tuple[str, ...]:
    """Every term of the confidence model: its features, then each product of two (and squares).
    The products let one cue count only beside another (a found figure weighs more when the
    best chunk is close at all): two-fold cross-validated on the tuning halves, at the same
    share of one-article questions answered, they answer 2.7 % of other articles' questions
    instead of 5.4 %, 13.6 % of SQuAD's against BBC instead of 17.2 %
    (bench/results/quality-levers.md)."""
    return (*CONFIDENCE_FEATURES, *_products(CONFIDENCE_FEATURES))


def _products(features: tuple[str, ...]) -> list[str]:
    return [f"{a}*{b}" for i, a in enumerate(features) for b in features[i:]]


MAX_MARGIN = 5.0

# Request verbs a question asks with one word and an article tells with another ("What did
# Herzog ask Lavrov?" / "Herzog also urged ..."), as keyword stems, to the stem they stand
# for when sentences are scored (not in BM25, which searches with the question's own words).
VERB_FAMILY = {stem: "ask" for word in REQUEST_WORDS for stem in tokenize(word)}


def pair_token(token: str) -> str:
    """A keyword token as sentence scoring compares it: request verbs as one."""
    return VERB_FAMILY.get(token, token)


def pair_tokens(tokens: list[str]) -> list[str]:
    return [pair_token(token) for token in tokens]

# Confidence model inputs (about one candidate, plus the nearest chunk of the question).
CONFIDENCE_FEATURES: tuple[str, ...] = (
    "ranker",  # the ranker's log-odds for this sentence
    "ranker_gap",  # minus the best log-odds among the candidates (<= 0)
    "margin",  # how far the best candidate leads the second (capped at MAX_MARGIN)
    "cosine",
    "chunk_cosine",  # the best chunk cosine of the question: how close the corpus comes at all
    "coverage",
    "window",
    "rare",
    "type_missing",
    "numbers_absent",  # the question names numbers or years and none is near the sentence
    "full_match",  # the sentence (and what it leans on) holds every keyword of the question
    "count_missing",  # "how many cars", and no number of cars in the sentence (no number next to "cars")
    "type_near",  # how close the asked-for thing stands to the question's words
)


@dataclass
class SentenceEvidence:
    """One candidate sentence and its features (filled in by ``sentence_features``)."""

    article_id: str
    sentence: int  # index in its article's sentence list
    start: int
    end: int
    chunk_rank: int  # 0-based rank of its best chunk in the fused ranking
    values: dict[str, float]
    ranker: float = 0.0  # log-odds from the ranker
    confidence: float = 0.0


class SentenceText:
    """Sentences, their keyword sets and paragraph counts of one index, memoised across
    questions (an index generation never changes; a retriever over a new one makes a new one).

    Everything kept here depends on the sentence alone, never on a question: its text, its
    keywords (and those of its window), its words' keywords in order (``keyword_words``).
    """

    # Entries kept before the memo starts afresh: bounds memory on a large archive.
    MAX_ENTRIES = 200_000

    def __init__(self, index) -> None:
        self.index = index
        self._spans: dict[str, list] = {}
        self._texts: dict[tuple[str, int], str] = {}
        self._tokens: dict[tuple[str, int], set[str]] = {}
        self._bigrams: dict[tuple[str, int], set[tuple[str, str]]] = {}
        self._windows: dict[tuple[str, int], frozenset[str]] = {}
        self._words: dict[tuple[str, int], tuple[tuple[int, int, str | None], ...]] = {}
        self._flat: dict[tuple[str, int], str] = {}
        self._paragraphs: dict[str, int] = {}

    def trim(self) -> None:
        """Start afresh when the memo has grown past MAX_ENTRIES."""
        if len(self._texts) + len(self._tokens) + len(self._spans) > self.MAX_ENTRIES:
            for memo in (
                self._spans, self._texts, self._tokens, self._bigrams, self._windows, self._words, self._flat, self._paragraphs
            ):
                memo.clear()

    def spans(self, article_id: str) -> list[tuple[int, int]]:
        """The article's sentences as (start, end) offsets (``index.sentence_offsets``)."""
        spans = self._spans.get(article_id)
        if spans is None:
            spans = self._spans[article_id] = self.index.sentence_offsets(article_id)
        return spans

    def paragraphs(self, article_id: str) -> int:
        """How many paragraphs (runs of text between line breaks) the article has."""
        count = self._paragraphs.get(article_id)
        if count is None:
            text = self.index.articles[article_id].text
            count = self._paragraphs[article_id] = sum(1 for p in text.split("\n") if p.strip())
        return count

    def text(self, article_id: str, sentence: int) -> str:
        key = (article_id, sentence)
        text = self._texts.get(key)
        if text is None:
            start, end = self.spans(article_id)[sentence]
            text = self._texts[key] = self.index.articles[article_id].text[start:end]
        return text

    def tokens(self, article_id: str, sentence: int) -> set[str]:
        tokens = self._tokens.get((article_id, sentence))
        return self._keywords(article_id, sentence)[0] if tokens is None else tokens

    def bigrams(self, article_id: str, sentence: int) -> set[tuple[str, str]]:
        """Adjacent keyword pairs of the sentence."""
        bigrams = self._bigrams.get((article_id, sentence))
        return self._keywords(article_id, sentence)[1] if bigrams is None else bigrams

    def _keywords(self, article_id: str, sentence: int) -> tuple[set[str], set[tuple[str, str]]]:
        """The sentence's keywords and their adjacent pairs, memoised together."""
        ordered = pair_tokens(tokenize(self.text(article_id, sentence)))
        tokens, bigrams = set(ordered), set(zip(ordered, ordered[1:]))
        self._tokens[(article_id, sentence)] = tokens
        self._bigrams[(article_id, sentence)] = bigrams
        return tokens, bigrams

    def flat(self, article_id: str, sentence: int) -> str:
        """The sentence's text with each run of white space as one space."""
        key = (article_id, sentence)
        flat = self._flat.get(key)
        if flat is None:
            flat = self._flat[key] = " ".join(self.text(article_id, sentence).split())
        return flat

    def window(self, article_id: str, sentence: int) -> frozenset[str]:
        """Keywords of the sentence and its neighbours (the question's "he" or subject is often
        named one sentence away)."""
        key = (article_id, sentence)
        window = self._windows.get(key)
        if window is None:
            words = set(self.tokens(article_id, sentence))
            if sentence > 0:
                words |= self.tokens(article_id, sentence - 1)
            if sentence + 1 < len(self.spans(article_id)):
                words |= self.tokens(article_id, sentence + 1)
            window = self._windows[key] = frozenset(words)
        return window

    def keyword_words(self, article_id: str, sentence: int) -> tuple[tuple[int, int, str | None], ...]:
        """The sentence's words as (start, end, keyword token or None), in order (``keyword_words``)."""
        key = (article_id, sentence)
        words = self._words.get(key)
        if words is None:
            words = self._words[key] = keyword_words(self.text(article_id, sentence))
        return words


def keyword_coverage(weights: dict[str, float], present: set[str]) -> float:
    """Share of the query's keyword weight among the keywords ``present`` in a text."""
    return sum(weight for token, weight in weights.items() if token in present)


def plain_coverage(tokens: list, present: set) -> float:
    """Share of the distinct ``tokens`` among those ``present``, each counting the same."""
    if not tokens:
        return 0.0
    return sum(token in present for token in tokens) / len(tokens)


class SentenceScorer:
    """One question's features of a sentence that depend on the question and the sentence
    alone (all but its cosine, its chunk's rank and the gap and rank features), memoised per
    sentence: the retriever computes them for the keyword side's sentences while the question
    encoder runs, and for the others once the fused ranking names them."""

    def __init__(
        self,
        asked: QuestionType,
        texts: SentenceText,
        weights: dict[str, float],
        rare: list[str],
        leaned_on: callable,
        question_bigrams: list[tuple[str, str]],
    ) -> None:
        self.asked = asked
        self.texts = texts
        self.weights = weights
        self.rare = rare
        self.leaned_on = leaned_on
        self.question_bigrams = question_bigrams
        self._keywords = list(weights)
        self._topic = sorted(asked.topic)
        self._numbers_named = names_numbers(asked)
        self._values: dict[tuple[str, int], dict[str, float]] = {}

    def values(self, article_id: str, sentence: int) -> dict[str, float]:
        """The sentence's features (shared: copy before adding to them)."""
        values = self._values.get((article_id, sentence))
        if values is None:
            values = self._values[(article_id, sentence)] = self._compute(article_id, sentence)
        return values

    def _compute(self, article_id: str, sentence: int) -> dict[str, float]:
        asked, texts, weights = self.asked, self.texts, self.weights
        text = texts.text(article_id, sentence)
        present = texts.tokens(article_id, sentence)
        window = texts.window(article_id, sentence)
        typed = asked.kind is not None
        spans = answer_spans(asked, text) if typed else []
        found = typed and (bool(spans) or _inside_quotation(asked, texts, article_id, sentence))
        agrees, conflicts = number_agreement(asked, text)
        lead = float(sentence == 0 and texts.paragraphs(article_id) > 1)
        with_previous = plain_coverage(self._keywords, self.leaned_on(article_id, sentence, text, present))
        # (A question naming no number agrees with no window: its text is not even sliced.)
        window_agrees = self._numbers_named and number_agreement(asked, _window_text(texts, article_id, sentence))[0]
        return {
            "type_near": (  # (the sentence's words are walked only when it holds a span)
                type_nearness(text, spans, weights, texts.keyword_words(article_id, sentence))
                if spans and asked.kind in SHORT_ANSWERS else 0.0
            ),
            "topic_said": plain_coverage(self._topic, present),
            "coverage": keyword_coverage(weights, present),
            "with_previous": with_previous,
            "window": keyword_coverage(weights, window),
            "rare": plain_coverage(self.rare, window),
            "type_found": float(found),
            "type_missing": float(typed and not found),
            "number_agrees": agrees,
            "number_conflicts": conflicts,
            "lead": lead,
            "lead_untyped": lead * (not typed),
            "too_long": float(len(text) > MAX_QUOTE_CHARS),
            "length": min(len(text), MAX_QUOTE_CHARS) / MAX_QUOTE_CHARS,
            "bigram": plain_coverage(self.question_bigrams, texts.bigrams(article_id, sentence)),
            "numbers_absent": float(self._numbers_named and not window_agrees),
            "full_match": float(with_previous >= 1.0),
            "count_missing": float(bool(asked.counted) and not counts_what_is_asked(asked, text, spans)),
        }


def sentence_features(candidates: list[SentenceEvidence], cosines: list[float], scorer: SentenceScorer) -> None:
    """Fill ``values`` of every candidate (the gap and rank features need them all at once)."""
    for candidate, cosine in zip(candidates, cosines):
        candidate.values = {
            "cosine": cosine,
            **scorer.values(candidate.article_id, candidate.sentence),
            "chunk_rank": 1.0 / (1 + candidate.chunk_rank),
        }
    for name in ("cosine", "coverage"):
        best = max(c.values[name] for c in candidates)
        for candidate in candidates:
            candidate.values[f"{name}_gap"] = candidate.values[name] - best
        distinct = sorted({c.values[name] for c in candidates}, reverse=True)
        place = {value: rank for rank, value in enumerate(distinct)}
        for candidate in candidates:
            candidate.values[f"{name}_rank"] = 1.0 / (1 + place[candidate.values[name]])


# Kinds answered by a few words (a figure, a date, a name), whose place next to the question's
# words tells; the others (a reason, a request, a saying) are clauses that hold those words.
SHORT_ANSWERS = frozenset(
    {AnswerType.PERCENT, AnswerType.AMOUNT, AnswerType.NUMBER, AnswerType.DATE, AnswerType.PERSON,
     AnswerType.ORGANISATION, AnswerType.PLACE, AnswerType.NAME}
)
# Words between an answer and the question's nearest keyword at which nearness halves.
NEAR_WORDS = 3.0


def type_nearness(
    text: str, spans: list[tuple[int, int]], weights: dict[str, float],
    words: tuple[tuple[int, int, str | None], ...] | None = None,
) -> float:
    """1 / (1 + d / NEAR_WORDS) for the fewest words ``d`` between a found answer span and a
    keyword of the question in the sentence (SQuAD's and news' answers sit next to the words
    the question repeats); 0 without a span or a keyword. ``words``: ``keyword_words(text)``,
    when the caller has it memoised."""
    if not spans:
        return 0.0
    if words is None:
        words = keyword_words(text)
    keyword_at, answer_at = [], []
    for n, (start, end, keyword) in enumerate(words):  # one pass: this runs for every candidate
        if keyword in weights:
            keyword_at.append(n)
        for span_start, span_end in spans:
            if start < span_end and end > span_start:
                answer_at.append(n)
                break
    if not keyword_at or not answer_at:
        return 0.0
    gap = min(abs(a - k) for a in answer_at for k in keyword_at)
    return 1.0 / (1.0 + max(gap - 1, 0) / NEAR_WORDS)


def keyword_words(text: str) -> tuple[tuple[int, int, str | None], ...]:
    """Each word of ``text`` (``TOKEN_PATTERN``) as (start, end, its keyword token as sentence
    scoring compares it, or None for a stop word): what ``type_nearness`` walks."""
    keyword = _keyword
    return tuple([(word.start(), word.end(), keyword(word.group())) for word in TOKEN_PATTERN.finditer(text)])


# Keywords after a number that still name what it counts ("244 robots", "11 first downs").
COUNTED_WITHIN = 3


def counts_what_is_asked(asked: QuestionType, text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether a number found for "how many <things>" is a number of those things: one of
    the counted words is in the number's own span or among the few keywords after it."""
    if not asked.counted:
        return False
    for start, end in spans:
        after = tokenize(text[end : end + 60])[:COUNTED_WITHIN]
        if asked.counted & {*tokenize(text[start:end]), *after}:
            return True
    return False


@lru_cache(maxsize=65536)
def _keyword(word: str) -> str | None:
    tokens = word_tokens(word)
    return pair_token(tokens[0]) if tokens else None


def _inside_quotation(asked: QuestionType, texts: SentenceText, article_id: str, sentence: int) -> bool:
    """For "What did X say?": the sentence sits inside a quotation opened by an earlier
    sentence of its paragraph (a long quote: its middle sentences have no marks of their own)."""
    if asked.kind is not AnswerType.SAYING:
        return False
    text = texts.index.articles[article_id].text
    start = texts.spans(article_id)[sentence][0]
    before = text[text.rfind("\n", 0, start) + 1 : start]
    return before.count("“") > before.count("”") or before.count('"') % 2 == 1


def _window_text(texts: SentenceText, article_id: str, sentence: int) -> str:
    spans = texts.spans(article_id)
    first = max(sentence - 1, 0)
    last = min(sentence + 1, len(spans) - 1)
    return texts.index.articles[article_id].text[spans[first][0] : spans[last][1]]
