"""The fused chunk ranking: the best-sentence ranking of the found chunks, on the seed index."""

from __future__ import annotations

import numpy as np

QUESTIONS = (
    "What did Herzog ask Lavrov?",
    "When did the tragic accident take place?",
    "Who is Russia's foreign minister?",
    "What is Israel worried about?",
)


def _plain_best_sentence_order(retriever, vector, chunk_ids):
    """Each chunk's best sentence cosine, read one chunk and one sentence at a time."""
    index = retriever.index
    best = {}
    for chunk_id in chunk_ids:
        chunk = index.chunks[chunk_id]
        rows = [index.sentence_row(chunk.article_id, chunk.first_sentence + n) for n in range(len(chunk.sentences))]
        best[chunk_id] = max(float(np.asarray(index.sentence_vectors[row], dtype=np.float32) @ vector) for row in rows)
    return sorted(best, key=lambda chunk_id: -best[chunk_id]), best


def test_found_chunks_rank_by_their_best_sentence(seed_bot) -> None:
    retriever = seed_bot.retriever
    all_ids = np.asarray(list(retriever.index.chunks), dtype=np.int64)
    assert len(all_ids) >= 3
    for question in QUESTIONS:
        vector = retriever.embedder.embed([question])[0]
        # Found twice (by both searches) counts once; the order found in does not matter.
        ranked = retriever._by_best_sentence(vector, all_ids[::-1], all_ids[:2])
        expected, best = _plain_best_sentence_order(retriever, vector, all_ids.tolist())
        assert sorted(ranked.tolist()) == sorted(all_ids.tolist())
        scores = [best[chunk_id] for chunk_id in ranked.tolist()]
        assert scores == sorted(scores, reverse=True)
        assert ranked[0] == expected[0]


def test_nothing_found_ranks_nothing(seed_bot) -> None:
    retriever = seed_bot.retriever
    vector = retriever.embedder.embed([QUESTIONS[0]])[0]
    empty = np.zeros(0, dtype=np.int64)
    assert len(retriever._by_best_sentence(vector, empty, empty)) == 0


def test_the_best_sentence_ranking_moves_the_fused_order(seed_bot) -> None:
    """With the third ranking weighed, the fused order is no longer the two searches' alone:
    the weight is read, not ignored."""
    retriever = seed_bot.retriever
    question = "What did Herzog ask Lavrov?"
    with_sentences = retriever.search_chunks(question, 10)
    retriever.sentence_weight, kept = 0.0, retriever.sentence_weight
    try:
        without = retriever.search_chunks(question, 10)
    finally:
        retriever.sentence_weight = kept
    assert [score for _, score in with_sentences] != [score for _, score in without]
