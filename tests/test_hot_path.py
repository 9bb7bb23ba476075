"""The memoised and shortcut paths of answering equal the plain computation, on real text.

Warm answering keeps per-sentence data (text, keywords, window, words' keywords) across
questions and skips work whose result is known; each such path is checked here against
computing the same thing from scratch, over every sentence of the seed articles.
"""

from __future__ import annotations

import pytest

from quotebot.index.reader import QuoteIndex
from quotebot.index.text import TOKEN_PATTERN, tokenize
from quotebot.retrieval.answer_types import answer_spans, question_type
from quotebot.retrieval.features import SentenceText, _keyword, keyword_words, pair_tokens, type_nearness

QUESTIONS = (
    "How many people were killed?",
    "When did the talks start?",
    "Who did the minister meet?",
    "Which company made the offer?",
    "Where was the meeting held?",
    "How much did the deal cost?",
    "What percentage of voters backed it?",
    "Why did the talks fail?",
    "What did the president say about the war?",
    "What did the union ask the government?",
)


@pytest.fixture(scope="module")
def seed_index(seed_index_dir):
    return QuoteIndex.load(seed_index_dir)


def _sentences(index):
    for article_id in index.articles:
        for number, span in enumerate(index.sentences_of(article_id)):
            yield article_id, number, span.slice(index.articles[article_id].text)


def test_memoised_sentence_data_equals_the_plain_computation(seed_index) -> None:
    texts = SentenceText(seed_index)
    checked = 0
    for _ in range(2):  # the second round reads the memo
        for article_id, number, text in _sentences(seed_index):
            spans = seed_index.sentences_of(article_id)
            assert texts.text(article_id, number) == text
            tokens = pair_tokens(tokenize(text))
            assert texts.tokens(article_id, number) == set(tokens)
            assert texts.bigrams(article_id, number) == set(zip(tokens, tokens[1:]))
            window = set(tokens)
            for neighbour in (number - 1, number + 1):
                if 0 <= neighbour < len(spans):
                    window |= set(pair_tokens(tokenize(spans[neighbour].slice(seed_index.articles[article_id].text))))
            assert texts.window(article_id, number) == window
            plain_words = tuple((*w.span(), _keyword(w.group())) for w in TOKEN_PATTERN.finditer(text))
            assert texts.keyword_words(article_id, number) == plain_words == keyword_words(text)
            checked += 1
    assert checked >= 20  # the seed article's sentences, twice


def test_type_nearness_from_memoised_words_equals_it_from_the_text(seed_index) -> None:
    texts = SentenceText(seed_index)
    compared = nonzero = 0
    for question in QUESTIONS:
        asked = question_type(question)
        tokens = pair_tokens(tokenize(question))
        weights = {token: 1.0 / len(tokens) for token in tokens}
        for article_id, number, text in _sentences(seed_index):
            spans = answer_spans(asked, text)
            plain = type_nearness(text, spans, weights)
            assert type_nearness(text, spans, weights, texts.keyword_words(article_id, number)) == plain
            compared += 1
            nonzero += plain > 0
    assert compared >= 100 and nonzero > 0


def _plain_answer_spans(asked, sentence):
    """answer_spans as it was written before its question-independent part was memoised."""
    import re
    from dataclasses import replace

    from quotebot.retrieval import answer_types as t

    def named_by(text):
        words = [re.sub(r"['’]s$", "", w.lower()) for w in re.findall(r"[\w'’]+", text)]
        return bool(words) and all(w in asked.known_words or f"{w}'s" in asked.known_words for w in words)

    kind = asked.kind
    if kind is None:
        return []
    if kind is t.AnswerType.REASON:
        return [m.span() for m in t._REASON_SPAN.finditer(sentence)]
    if kind is t.AnswerType.SAYING:
        quoted = [t._said(m) for m in t._QUOTED_SPAN.finditer(sentence)]
        return quoted or [m.span("said") for m in t._SAID_SPAN.finditer(sentence)]
    if kind is t.AnswerType.REQUEST:
        return [m.span("what") for m in t._REQUEST_SPAN.finditer(sentence) if not named_by(m.group("what"))]
    patterns = {t.AnswerType.PERCENT: t._PERCENT_SPAN, t.AnswerType.AMOUNT: t._AMOUNT_SPAN,
                t.AnswerType.NUMBER: t._NUMBER_SPAN, t.AnswerType.DATE: t._DATE_SPAN}
    if kind not in patterns:
        names = [s for s in t._names(sentence) if not named_by(sentence[s[0]:s[1]]) and not t._CALENDAR_NAME.fullmatch(sentence[s[0]:s[1]])]
        return [s for s in names if t._looks_like_person(sentence[s[0]:s[1]])] if kind is t.AnswerType.PERSON else names
    spans = []
    for match in patterns[kind].finditer(sentence):
        text = match.group().strip()
        if kind is t.AnswerType.NUMBER and t._YEAR.fullmatch(text):
            continue
        if text and not named_by(text):
            start = match.start() + len(match.group()) - len(match.group().lstrip())
            spans.append((start, start + len(text)))
    if kind is t.AnswerType.AMOUNT and not spans:
        numbers = _plain_answer_spans(replace(asked, kind=t.AnswerType.NUMBER), sentence)
        return [(a, b) for a, b in numbers if re.search(r"\d", sentence[a:b])]
    return spans


def test_memoised_answer_spans_equal_the_plain_scan(seed_index) -> None:
    from dataclasses import replace

    from quotebot.retrieval.answer_types import AnswerType

    sentences = [text for _, _, text in _sentences(seed_index)]
    found = 0
    for question in (*QUESTIONS, "Who is Herzog?", "What did Herzog ask Lavrov?"):
        asked = question_type(question)
        for kind in (asked.kind, *AnswerType):  # the question's own kind and every other, as answer marking asks
            typed = replace(asked, kind=kind)
            for sentence in sentences * 2:  # the second time from the memo
                expected = _plain_answer_spans(typed, sentence)
                assert answer_spans(typed, sentence) == expected
                found += bool(expected)
    assert found > 50


def test_tokenize_with_its_word_memo_equals_the_plain_pipeline(seed_index) -> None:
    import Stemmer

    from quotebot.index import text as t

    stemmer = Stemmer.Stemmer("english")

    def plain(text):  # tokenize as written before its per-word memo
        tokens = []
        for match in t.TOKEN_PATTERN.finditer(text.lower()):
            word = match.group().replace("’", "'")
            if word.endswith("'s"):
                word = word[:-2]
            if word in t.STOP_WORDS or (len(word) < 2 and not word.isdigit()):
                continue
            tokens.append(stemmer.stemWord(t._IRREGULAR.get(word, word)))
        return tokens

    samples = [text for _, _, text in _sentences(seed_index)]
    samples += ["Ministers’ talks: he lost 3,500.5 votes in 1987 — the UK’s 2nd loss; it's Apple's", "I a 7 x"]
    for _ in range(2):  # the second time from the memo
        for text in samples:
            assert t.tokenize(text) == plain(text)
    t._WORD_TOKEN.clear()
    assert [t.tokenize(text) for text in samples] == [plain(text) for text in samples]
    assert plain(samples[-2]) == ["minist", "talk", "lose", "3,500.5", "vote", "1987", "uk", "2", "nd", "loss", "appl"]


def test_sentence_features_computed_ahead_equal_those_computed_when_scored(seed_bot) -> None:
    """The features the retriever computes while the question encoder runs (the BM25 side's
    sentences, in its order, on a memo other questions filled) are those a fresh scorer
    computes when the fused ranking names the sentence."""
    retriever = seed_bot.retriever
    sentences = [(article_id, number) for article_id, number, _ in _sentences(retriever.index)]
    near = 0
    for question in QUESTIONS:
        asked = question_type(question)
        weights, _ = retriever._query_keywords(question, "")
        ahead = retriever._scorer(question, asked, weights)
        computed = {key: ahead.values(*key) for key in reversed(sentences)}  # later sentences' windows first
        fresh = retriever.over(retriever.index)  # a memo of its own
        plain = fresh._scorer(question, asked, weights)
        assert {key: plain.values(*key) for key in sentences} == computed
        near += sum(values["type_near"] > 0 for values in computed.values())
    assert near, "a question asking for a figure or a name walks the words of a sentence holding one"


def test_a_trimmed_memo_gives_the_same_values(seed_index) -> None:
    texts = SentenceText(seed_index)
    expected = {(a, n): (texts.tokens(a, n), texts.bigrams(a, n), texts.window(a, n)) for a, n, _ in _sentences(seed_index)}
    texts.MAX_ENTRIES = 0
    texts.trim()
    assert not texts._tokens and not texts._bigrams
    for (article_id, number), (tokens, bigrams, window) in expected.items():
        assert texts.bigrams(article_id, number) == bigrams  # pairs first: no stale token set is needed
        assert texts.tokens(article_id, number) == tokens
        assert texts.window(article_id, number) == window


def test_the_onnx_encoder_gives_the_same_vector_in_the_background(seed_index_dir) -> None:
    """The question is embedded on a thread of its own while BM25 runs: its vector is the
    one the encoder gives when called directly; an encoder error reaches the asker."""
    from quotebot.index.onnx_encoder import OnnxQueryEncoder, encoder_dir
    from quotebot.index.threads import InThread

    encoder = OnnxQueryEncoder(encoder_dir(seed_index_dir, "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2")
    assert encoder.same_vectors_on_any_thread
    for question in QUESTIONS:
        direct = encoder.embed([question])
        assert InThread(encoder.embed, [question], name="test").result().tobytes() == direct.tobytes()

    def broken(texts):
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        InThread(broken, [QUESTIONS[0]], name="test").result()


def test_an_encoder_whose_vectors_depend_on_the_thread_embeds_in_the_asking_thread(seed_bot) -> None:
    """Torch's vectors differ by ~1e-8 on another thread: the retriever calls it directly."""
    retriever = seed_bot.retriever
    assert not getattr(retriever.embedder, "same_vectors_on_any_thread", False)
    assert not retriever._embeds_anywhere
    answer = retriever.answer("What did Herzog ask Lavrov?")
    assert answer.answered and answer.quotes


def test_the_written_out_log_odds_equal_the_loop_to_the_bit() -> None:
    import random

    from quotebot.retrieval.ranker import load_models

    models = load_models()
    rng = random.Random(7)
    for model in (models.ranker, models.confidence):
        names = sorted({name for feature in model.features for name in feature.split("*")})
        for _ in range(200):
            values = {name: rng.choice([0.0, 1.0, rng.uniform(-3, 3), rng.random() * 1e-3]) for name in names}
            total = model.bias
            for feature, weight in zip(model.features, model.coefficients):
                if weight == 0.0:
                    continue
                parts = feature.split("*")
                term = values[parts[0]]
                for name in parts[1:]:
                    term *= values[name]
                total += weight * term
            assert model.log_odds(values) == total
        missing = dict(values)
        first = next(name for feature, w in zip(model.features, model.coefficients) if w for name in feature.split("*"))
        del missing[first]
        with pytest.raises(KeyError, match=first):
            model.log_odds(missing)


def test_the_same_evidence_with_the_encoder_overlapped_or_not(seed_index_dir, settings) -> None:
    """With the ONNX encoder on its own thread (sentences memoised meanwhile) or called in
    turn, every candidate's features and scores are the same to the bit."""
    from quotebot.bot import wiring

    def evidence(overlap_encoder):
        retriever = wiring.new_bot(settings, seed_index_dir).retriever
        assert retriever._embeds_anywhere  # the index's ONNX export
        retriever.overlap_encoder = overlap_encoder
        return [[(c.article_id, c.sentence, c.ranker, c.confidence, c.values) for c in retriever.evidence(q)] for q in QUESTIONS]

    assert evidence(True) == evidence(False)


def test_the_best_sentence_ranking_reads_vectors_converted_ahead_as_its_own(seed_bot) -> None:
    """The BM25 side's sentence vectors, converted to float32 while the question is embedded,
    rank the found chunks exactly as converting them all at once does."""
    import numpy as np

    retriever = seed_bot.retriever
    ids = np.asarray(list(retriever.index.chunks), dtype=np.int64)
    for question in QUESTIONS:
        vector = retriever.embedder.embed([question])[0]
        ahead = retriever._float_vectors(ids[1::2], {})
        for chunk_id, rows in ahead.items():
            assert rows.tobytes() == retriever._float_vectors(np.asarray([chunk_id]), {})[chunk_id].tobytes()
        plain = retriever._by_best_sentence(vector, ids[::-1], ids[:3])
        assert retriever._by_best_sentence(vector, ids[::-1], ids[:3], converted=ahead).tolist() == plain.tolist()
