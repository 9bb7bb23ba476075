"""Index lifecycle: add, update, remove and rebuild without re-embedding, stable ids, the
writer lock, verify on damaged indexes, a live bot picking up a new generation, and
``kill -9`` at any moment of an update."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quotebot.bot import wiring
from quotebot.bot.settings import Settings
from quotebot.index import storage
from quotebot.index.articles import Article
from quotebot.index.builder import IndexBuilder, UnknownArticleError
from quotebot.index.embedding import Embedder
from quotebot.index.lock import IndexLock, IndexLockedError
from quotebot.index.faiss_store import FaissVectorStore
from quotebot.index.reader import QuoteIndex
from quotebot.index.settings import VectorStoreSettings
from quotebot.index.text import tokenize
from quotebot.index.verify import verify_index
from tests.test_index import ARTICLES

ROOT = Path(__file__).resolve().parent.parent

VOLCANO = Article(
    id="volcano.txt",
    title="Volcano erupts in Iceland",
    text=(
        "A volcano on the Reykjanes peninsula erupted late on Sunday, sending lava towards the town of Grindavik. "
        "The town's 3,700 residents had been evacuated in November.\n\n"
        "Scientists said the eruption was weakening by Monday morning."
    ),
)
STORM_UPDATED = ARTICLES[1].model_copy(
    update={"text": "A winter storm closed four ports on the northern coast on Monday. Ferries were cancelled."}
)


class CountingEmbedder(Embedder):
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, model: Embedder) -> None:
        super().__init__()
        self._encoder = model._encoder
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts)


def builder(embedder: Embedder) -> IndexBuilder:
    return IndexBuilder(embedder, chunk_tokens=20, chunk_overlap=1, export_onnx=False)


@pytest.fixture
def base(tmp_path: Path, embedder: Embedder) -> Path:
    index_dir = tmp_path / "index"
    builder(embedder).build(ARTICLES, index_dir)
    return index_dir


def ids_by_article(index: QuoteIndex) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for chunk_id, chunk in index.chunks.items():
        ids.setdefault(chunk.article_id, []).append(chunk_id)
    return ids


def assert_stores_agree(index: QuoteIndex) -> None:
    """Vector ids, BM25 ids and the chunk table name the very same chunks."""
    chunk_ids = sorted(index.chunks)
    assert sorted(index.vectors.ids().tolist()) == chunk_ids
    assert sorted(index.keywords.ids().tolist()) == chunk_ids
    assert len(index.sentence_vectors) == sum(len(index.sentences_of(a)) for a in index.articles)


def assert_same_as_fresh_build(index_dir: Path, fresh_dir: Path, embedder: Embedder) -> None:
    """An updated index holds exactly the vectors a from-scratch build of its articles would."""
    updated = QuoteIndex.load(index_dir, mmap=False)
    builder(embedder).build(list(updated.articles.values()), fresh_dir)
    fresh = QuoteIndex.load(fresh_dir, mmap=False)
    assert list(updated.articles) == list(fresh.articles)
    np.testing.assert_allclose(updated.sentence_vectors.astype(np.float32), fresh.sentence_vectors.astype(np.float32), atol=2e-3)
    for article_id in updated.articles:
        old_ids, new_ids = ids_by_article(updated)[article_id], ids_by_article(fresh)[article_id]
        assert [updated.chunks[i] for i in old_ids] == [fresh.chunks[i] for i in new_ids]
        np.testing.assert_allclose(updated.vectors.vectors(np.array(old_ids)), fresh.vectors.vectors(np.array(new_ids)), atol=1e-4)


def test_add_embeds_only_the_new_article_and_keeps_every_id(base: Path, embedder: Embedder, tmp_path: Path) -> None:
    before = QuoteIndex.load(base)
    counting = CountingEmbedder(embedder)
    change = builder(counting).add([VOLCANO], base)
    after = QuoteIndex.load(base)
    assert change.added == ["volcano.txt"] and change.unchanged == 2
    assert all(text.startswith("Volcano erupts in Iceland. ") for text in counting.texts)
    assert list(after.articles) == ["rates.txt", "storm.txt", "volcano.txt"]
    for article_id, ids in ids_by_article(before).items():
        assert ids_by_article(after)[article_id] == ids  # old chunks keep their ids
    assert min(ids_by_article(after)["volcano.txt"]) >= before.manifest.next_chunk_id
    assert_stores_agree(after)
    assert after.keywords.search(tokenize("Grindavik lava"), 5)[0].tolist()[0] in ids_by_article(after)["volcano.txt"]
    assert verify_index(base).problems == []
    assert_same_as_fresh_build(base, tmp_path / "fresh", embedder)


def test_updated_article_replaces_its_chunks_under_new_ids(base: Path, embedder: Embedder) -> None:
    before = QuoteIndex.load(base)
    counting = CountingEmbedder(embedder)
    change = builder(counting).add([STORM_UPDATED], base)
    after = QuoteIndex.load(base)
    assert change.updated == ["storm.txt"] and change.added == []
    assert all("storm" in text.lower() for text in counting.texts)
    assert after.articles["storm.txt"].text == STORM_UPDATED.text
    old_ids, new_ids = set(ids_by_article(before)["storm.txt"]), set(ids_by_article(after)["storm.txt"])
    assert not old_ids & new_ids and not old_ids & set(after.vectors.ids().tolist())
    # Words only the old text had are gone from BM25; the new ones are found.
    assert after.keywords.search(tokenize("sailors cargo ship"), 5)[0].size == 0
    assert set(after.keywords.search(tokenize("ferries cancelled"), 5)[0].tolist()) <= new_ids
    assert_stores_agree(after)


def test_remove_drops_the_article_from_every_store(base: Path, embedder: Embedder) -> None:
    before = QuoteIndex.load(base)
    change = builder(embedder).remove(["rates.txt"], base)
    after = QuoteIndex.load(base)
    assert change.removed == ["rates.txt"]
    assert list(after.articles) == ["storm.txt"]
    assert ids_by_article(after)["storm.txt"] == ids_by_article(before)["storm.txt"]
    assert after.keywords.search(tokenize("inflation bank"), 5)[0].size == 0
    assert_stores_agree(after)
    assert after.manifest.next_chunk_id == before.manifest.next_chunk_id  # ids are never handed out twice
    assert verify_index(base).problems == []


def test_removing_an_unknown_id_changes_nothing(base: Path, embedder: Embedder) -> None:
    generation = storage.current_generation(base).name
    with pytest.raises(UnknownArticleError, match="nope.txt"):
        builder(embedder).remove(["storm.txt", "nope.txt"], base)
    assert storage.current_generation(base).name == generation
    assert "storm.txt" in QuoteIndex.load(base).articles


def test_rebuild_embeds_only_what_changed(base: Path, embedder: Embedder, tmp_path: Path) -> None:
    builder(embedder).add([VOLCANO], base)
    counting = CountingEmbedder(embedder)
    change = builder(counting).build([ARTICLES[0], STORM_UPDATED], base)
    assert (change.added, change.updated, change.removed, change.unchanged) == ([], ["storm.txt"], ["volcano.txt"], 1)
    assert counting.texts and not any("central bank" in text.lower() for text in counting.texts)
    assert_stores_agree(QuoteIndex.load(base))
    assert_same_as_fresh_build(base, tmp_path / "fresh", embedder)


def test_rebuild_with_nothing_changed_embeds_nothing(base: Path, embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    change = builder(counting).build(ARTICLES, base)
    assert counting.texts == [] and change.unchanged == 2 and change.embedded_chunks == 0


def test_a_second_writer_is_refused_and_told_who_holds_the_lock(base: Path, embedder: Embedder) -> None:
    generation = storage.current_generation(base).name
    with IndexLock(base, "index build"):
        with pytest.raises(IndexLockedError, match=rf"quotebot index build.*pid {os.getpid()}"):
            builder(embedder).add([VOLCANO], base)
        # Another process sees the same lock, through the CLI, as one line and exit code 6.
        result = subprocess.run(
            [sys.executable, "-m", "quotebot.bot.cli", "index", "remove", "storm.txt", "--index-dir", str(base)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 6
        assert f"pid {os.getpid()}" in result.stderr and "Traceback" not in result.stderr
    assert storage.current_generation(base).name == generation
    builder(embedder).add([VOLCANO], base)  # released: the next writer gets in


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from index.lock import IndexLock\n"
         "with IndexLock(Path(sys.argv[1]), 'index add'):\n    print('locked', flush=True); time.sleep(60)", str(index_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"pid {holder.pid}"):
            IndexLock(index_dir, "index build").__enter__()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
    with IndexLock(index_dir, "index build"):
        pass


def test_verify_names_each_problem_of_a_damaged_index(base: Path) -> None:
    generation = storage.current_generation(base)
    manifest_path = generation / storage.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    # 1. a vector lost from FAISS (the file rewritten consistently, so only ids disagree)
    store = FaissVectorStore.load(generation / storage.CHUNK_VECTORS_FILE)
    lost = int(store.ids()[0])
    store.remove(np.array([lost]))
    store.save(generation / storage.CHUNK_VECTORS_FILE)
    manifest["file_sizes"][storage.CHUNK_VECTORS_FILE] = (generation / storage.CHUNK_VECTORS_FILE).stat().st_size
    # 2. an article's text edited in place (same length, so only its hash tells)
    texts = generation / storage.ARTICLE_TEXTS_FILE
    texts.write_bytes(texts.read_bytes().replace(b"14 sailors", b"41 sailors"))
    manifest_path.write_text(json.dumps(manifest))
    # 3. truncated sentence vectors
    sentences = generation / storage.SENTENCE_VECTORS_FILE
    sentences.write_bytes(sentences.read_bytes()[:-64])

    problems = verify_index(base).problems
    assert any(f"lacks 1 chunk id(s): {lost}" in p for p in problems), problems
    assert any("'storm.txt' does not match its hash" in p for p in problems), problems
    assert any(storage.SENTENCE_VECTORS_FILE in p and "bytes, the manifest says" in p for p in problems), problems

    result = subprocess.run(
        [sys.executable, "-m", "quotebot.bot.cli", "index", "verify", "--index-dir", str(base)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "storm.txt" in result.stderr and str(lost) in result.stderr


def test_verify_passes_a_sound_index_through_the_cli(base: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "quotebot.bot.cli", "index", "verify", "--index-dir", str(base)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("index OK: 2 articles")


def test_a_running_bot_picks_up_a_published_update(base: Path, embedder: Embedder) -> None:
    settings = Settings().model_copy(
        update={"index": Settings().index.model_copy(update={"chunk_tokens": 20, "chunk_overlap": 1})}
    )
    bot = wiring.new_bot(settings, base, embedder=embedder)
    question = "Which town did the lava flow towards?"
    assert not any(q.article_id == "volcano.txt" for q in bot.ask(question).quotes)
    old_generation = storage.current_generation(base)
    builder(embedder).add([VOLCANO], base)
    assert not old_generation.exists()  # the old files are gone: the bot answered from memory
    answer = bot.ask(question, conversation="after")
    assert answer.answered and answer.quotes[0].article_id == "volcano.txt"
    assert "Grindavik" in answer.quotes[0].text
    assert {s.id for s in bot.sources()} == {"rates.txt", "storm.txt", "volcano.txt"}


def test_a_bot_keeps_serving_when_the_new_generation_is_damaged(base: Path, embedder: Embedder) -> None:
    settings = Settings().model_copy(
        update={"index": Settings().index.model_copy(update={"chunk_tokens": 20, "chunk_overlap": 1})}
    )
    bot = wiring.new_bot(settings, base, embedder=embedder)
    builder(embedder).add([VOLCANO], base)
    generation = storage.current_generation(base)
    chunks = generation / storage.CHUNKS_FILE
    chunks.write_bytes(chunks.read_bytes()[:-20])
    answer = bot.ask("How many sailors did the coast guard rescue?")
    assert answer.answered and "14 sailors" in answer.quotes[0].text
    assert {s.id for s in bot.sources()} == {"rates.txt", "storm.txt"}  # still the old generation


def _add_process(index_dir: Path, corpus: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quotebot.bot.cli", "index", "add", str(corpus), "--index-dir", str(index_dir)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_kill_9_at_any_moment_of_an_add_leaves_old_or_new_content(tmp_path: Path, embedder: Embedder) -> None:
    """An add is killed at moments spread over its whole run; each time the index loads,
    verifies, holds either the old articles or the new ones, and takes the next writer."""
    base = tmp_path / "base"
    IndexBuilder(embedder, 120, 1).build(ARTICLES, base)  # the configured chunking, as the CLI uses
    corpus = tmp_path / "new.jsonl"
    body = (ROOT / "seeds" / "000_8df2fe3ddce01457.txt").read_text(encoding="utf-8")
    with open(corpus, "w", encoding="utf-8") as handle:
        for number in range(20):
            handle.write(json.dumps({"id": f"n{number}", "title": f"Copy {number}", "text": f"Copy {number}. {body}"}) + "\n")
    old = set(QuoteIndex.load(base).articles)

    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    started = time.monotonic()
    assert _add_process(reference, corpus).wait(timeout=300) == 0
    duration = time.monotonic() - started
    new = set(QuoteIndex.load(reference).articles)
    assert new == old | {f"n{i}" for i in range(20)}

    outcomes = set()
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.95, 0.98):
        target = tmp_path / f"kill-{fraction}"
        shutil.copytree(base, target)
        process = _add_process(target, corpus)
        time.sleep(duration * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait()
        held = set(QuoteIndex.load(target).articles)
        assert held in (old, new)
        assert verify_index(target).problems == []
        outcomes.add("new" if held == new else "old")
        with IndexLock(target, "test"):  # the lock died with the writer
            pass
    assert "old" in outcomes  # at least one kill landed before the publish


def test_the_vector_index_kind_is_chosen_recorded_and_kept_through_updates(base: Path, embedder: Embedder) -> None:
    assert QuoteIndex.load(base).manifest.vector_store.params["kind"] == "flat"  # auto, and small
    hnsw = IndexBuilder(
        embedder, 20, 1, export_onnx=False, vector_store=VectorStoreSettings(backend="faiss", kind="hnsw", hnsw_m=8)
    )
    hnsw.add([VOLCANO], base)  # the configured kind changed: the kept vectors move into a new graph
    index = QuoteIndex.load(base)
    assert index.manifest.vector_store.params["kind"] == "hnsw" and index.vectors.kind == "hnsw"
    assert index.manifest.vector_store.params["hnsw_m"] == 8
    assert_stores_agree(index)
    hnsw.remove(["storm.txt"], base)  # HNSW cannot remove in place: the store rebuilds its graph
    index = QuoteIndex.load(base)
    assert list(index.articles) == ["rates.txt", "volcano.txt"] and verify_index(base).problems == []
    vector = index.vectors.vectors(np.array(index.chunk_ids_of("volcano.txt")[:1]))[0]
    assert index.vectors.search(vector, 1)[0][0] == index.chunk_ids_of("volcano.txt")[0]


def _bm25_columns(keywords) -> dict[str, tuple[list[int], list[float]]]:
    """Each token's (chunk ids, scores) in a BM25 index's matrix."""
    bm25 = keywords._bm25
    indptr, indices, data = bm25.scores["indptr"], bm25.scores["indices"], bm25.scores["data"]
    chunk_ids = keywords.ids()
    columns = {}
    for token, number in bm25.vocab_dict.items():
        if number + 1 < len(indptr):
            rows = slice(indptr[number], indptr[number + 1])
            order = np.argsort(chunk_ids[indices[rows]])
            columns[token] = (chunk_ids[indices[rows]][order].tolist(), data[rows][order].tolist())
    return columns


def test_updates_reuse_kept_chunks_tokens_and_score_as_a_fresh_build(tmp_path: Path, embedder: Embedder) -> None:
    """add, update and remove build BM25 from the last generation's token ids for the chunks
    they keep: every token's scores must be a fresh build's of the same chunks, to the bit
    (a token only removed chunks had is gone, as from a fresh build)."""
    from quotebot.index.bm25_store import Bm25KeywordIndex
    from quotebot.index.builder import NO_TOKENS

    index_dir = tmp_path / "index"
    writer = builder(embedder)
    writer.build(ARTICLES, index_dir)
    steps = [
        lambda: writer.add([VOLCANO], index_dir),
        lambda: writer.add([STORM_UPDATED], index_dir),  # replaced in place: new chunk ids
        lambda: writer.remove(["rates.txt"], index_dir),
    ]
    for step in steps:
        step()
        index = QuoteIndex.load(index_dir, mmap=False)
        assert index.keywords.token_stream() is not None
        lines = (index.path / storage.CHUNK_TOKENS_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        fresh = Bm25KeywordIndex.build(index.keywords.ids(), [[] if line == NO_TOKENS else line.split(" ") for line in lines])
        fresh.save(tmp_path / "fresh")
        fresh_index = Bm25KeywordIndex.load(tmp_path / "fresh")
        assert set(index.keywords._bm25.vocab_dict) == set(fresh_index._bm25.vocab_dict)
        assert _bm25_columns(index.keywords) == _bm25_columns(fresh_index)
        probe = ["volcano", "storm", "rate", "bank", "port", "ferri", "erupt"]
        assert np.array_equal(index.keywords.idf(probe), fresh_index.idf(probe))
        for token in probe:
            assert [a.tolist() for a in index.keywords.search([token], 50)] == [a.tolist() for a in fresh_index.search([token], 50)]
    assert tokenize("Lopez") == ["lopez"] and "lopez" not in index.keywords._bm25.vocab_dict  # rates.txt alone had it
