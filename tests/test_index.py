"""The index on disk: stores, manifest checks, damage detection and interrupted builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quotebot.index import storage
from quotebot.index.articles import Article
from quotebot.index.builder import IndexBuilder
from quotebot.index.embedding import Embedder
from quotebot.index.backends import VectorSearcher
from quotebot.index.bm25_store import Bm25KeywordIndex
from quotebot.index.errors import CorruptIndexError, IndexMismatchError
from quotebot.index.faiss_store import FaissVectorStore
from quotebot.index.manifest import ChunkingSettings, StoreRef, article_fingerprint
from quotebot.index.reader import QuoteIndex, read_manifest
from quotebot.index.testing import KeywordIndexContract, VectorStoreContract, unit_vectors
from quotebot.index.text import tokenize

ARTICLES = [
    Article(
        id="rates.txt",
        title="Central bank holds rates",
        text=(
            "The central bank held its main interest rate at 3.5% on Thursday. "
            "Governor Ana Lopez said inflation had eased to 2.1% in October.\n\n"
            "Markets had expected a cut. Bond yields rose after the decision."
        ),
    ),
    Article(
        id="storm.txt",
        title="Storm closes ports",
        text=(
            "A winter storm closed three ports on the northern coast on Monday. "
            "The coast guard rescued 14 sailors from a grounded cargo ship.\n\n"
            "Officials expect the ports to reopen by Wednesday."
        ),
    ),
]


class TestFlatFaissStore(VectorStoreContract):
    backend = "faiss"
    options = {"kind": "flat"}


class TestBm25KeywordIndex(KeywordIndexContract):
    backend = "bm25s"


def test_the_faiss_store_reads_back_what_it_saved(tmp_path: Path) -> None:
    store = FaissVectorStore(8)
    vectors = unit_vectors(10, 8)
    store.add(np.arange(10), vectors)
    store.save(tmp_path / "v.faiss")
    loaded = FaissVectorStore.load(tmp_path / "v.faiss")
    assert isinstance(loaded, VectorSearcher)
    assert loaded.search(vectors[4], 1)[0][0] == 4


def test_a_truncated_vector_file_is_a_clear_error(tmp_path: Path) -> None:
    store = FaissVectorStore(8)
    store.add(np.arange(10), unit_vectors(10, 8))
    path = tmp_path / "v.faiss"
    store.save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptIndexError, match="v.faiss"):
        FaissVectorStore.load(path)


def test_the_bm25_index_ranks_tokenized_text() -> None:
    texts = ["the storm closed ports", "rates held by the bank", "a storm and a storm again"]
    keywords = Bm25KeywordIndex.build(np.array([10, 11, 12]), [tokenize(t) for t in texts])
    ids, _ = keywords.search(tokenize("storm"), 10)
    assert set(ids.tolist()) == {10, 12} and ids[0] == 12  # chunk ids, not bm25s rows


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    index_dir = tmp_path_factory.mktemp("index")
    IndexBuilder(embedder, chunk_tokens=20, chunk_overlap=1, export_onnx=False).build(ARTICLES, index_dir)
    return index_dir


def test_build_and_load_keep_text_and_offsets(built: Path) -> None:
    index = QuoteIndex.load(built)
    assert index.manifest.counts.articles == 2
    assert index.articles["storm.txt"].text == ARTICLES[1].text
    for chunk in index.chunks.values():
        text = index.articles[chunk.article_id].text
        assert text[chunk.start : chunk.end].startswith(chunk.sentences[0].slice(text))
    sentences = index.sentences_of("rates.txt")
    assert sentences[1].slice(ARTICLES[0].text) == "Governor Ana Lopez said inflation had eased to 2.1% in October."
    assert len(index.sentence_vectors) == index.manifest.counts.sentences


def test_manifest_records_what_the_index_was_built_with(built: Path) -> None:
    manifest = read_manifest(built)
    assert manifest.model == "all-MiniLM-L6-v2" and manifest.dimension == 384
    assert manifest.chunking == ChunkingSettings(chunk_tokens=20, chunk_overlap=1)
    assert manifest.article_hashes == {a.id: article_fingerprint(a) for a in ARTICLES}
    assert manifest.next_chunk_id == manifest.counts.chunks
    assert manifest.vector_store == StoreRef(
        backend="faiss", path="chunk_vectors.faiss", params={"kind": "flat"}
    )  # auto, and small; the reference is what loading resolves
    assert manifest.keyword_index == StoreRef(backend="bm25s", path="bm25")


def test_a_manifest_of_before_store_references_is_read_as_the_stores_it_meant(built: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(built, copy)
    path = storage.current_generation(copy) / storage.MANIFEST_FILE
    raw = json.loads(path.read_text())
    raw.pop("keyword_index")
    raw["vector_index"] = raw.pop("vector_store")["params"]["kind"]
    path.write_text(json.dumps(raw))
    index = QuoteIndex.load(copy)
    assert index.manifest.vector_store.backend == "faiss" and len(index.vectors) == index.manifest.counts.chunks


def test_mismatched_settings_are_refused_with_what_to_run(built: Path) -> None:
    with pytest.raises(IndexMismatchError, match=r"chunk_tokens=20.*chunk_tokens=120.*quotebot index build"):
        QuoteIndex.load(built, chunking=ChunkingSettings(chunk_tokens=120, chunk_overlap=1))
    with pytest.raises(IndexMismatchError, match="model 'all-MiniLM-L6-v2', config says 'other-model'"):
        QuoteIndex.load(built, model="other-model")


def test_other_format_version_is_refused(built: Path, tmp_path: Path) -> None:
    copy = _copy_index(built, tmp_path)
    manifest_path = storage.current_generation(copy) / storage.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="index format 99"):
        QuoteIndex.load(copy)


@pytest.mark.parametrize("victim", [storage.CHUNK_VECTORS_FILE, storage.CHUNKS_FILE, storage.SENTENCE_VECTORS_FILE])
def test_truncated_index_file_is_a_clear_error(built: Path, tmp_path: Path, victim: str) -> None:
    copy = _copy_index(built, tmp_path)
    path = storage.current_generation(copy) / victim
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptIndexError, match=victim):
        QuoteIndex.load(copy)


def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(storage.IndexMissingError, match="quotebot index build"):
        QuoteIndex.load(tmp_path / "none")


class _FailingEmbedder(Embedder):
    """The real model, interrupted part-way as a Ctrl-C would."""

    def __init__(self, model: Embedder, fail_after: int) -> None:
        super().__init__()
        self._encoder = model._encoder
        self.calls = 0
        self.fail_after = fail_after

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls > self.fail_after:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_interrupted_build_leaves_the_previous_index(built: Path, tmp_path: Path, embedder: Embedder) -> None:
    copy = _copy_index(built, tmp_path)
    before = read_manifest(copy)
    new_article = Article(id="new.txt", title="New", text="A brand new article. It has two sentences.")
    with pytest.raises(KeyboardInterrupt):
        IndexBuilder(_FailingEmbedder(embedder, fail_after=0), 20, 1).build([*ARTICLES, new_article], copy)
    index = QuoteIndex.load(copy)
    assert index.manifest == before
    assert "new.txt" not in index.articles
    assert [p.name for p in copy.glob("gen-*")] == [storage.current_generation(copy).name]


def _copy_index(source: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(source, target)
    return target


@pytest.mark.slow
def test_stored_vectors_belong_to_their_chunks_and_sentences(built: Path, embedder: Embedder) -> None:
    from quotebot.index.vectorize import embedding_text
    from quotebot.index.articles import Span

    index = QuoteIndex.load(built)
    for chunk_id, chunk in index.chunks.items():
        article = index.articles[chunk.article_id]
        vector = embedder.embed([embedding_text(article, Span(start=chunk.start, end=chunk.end))])[0]
        assert index.vectors.search(vector, 1)[0][0] == chunk_id
    # Each stored sentence vector is nearest to its own sentence embedded alone, among the
    # article's sentences: rows and sentences are aligned.
    article = index.articles["storm.txt"]
    spans = index.sentences_of("storm.txt")
    alone = embedder.embed([embedding_text(article, span) for span in spans])
    for number in range(len(spans)):
        stored = index.sentence_vectors[index.sentence_row("storm.txt", number)].astype(np.float32)
        assert int(np.argmax(alone @ stored)) == number


def _fixture_chunk_tokens() -> list[list[str]]:
    """The BM25 tokens of every chunk of the project's real fixture text (seed article,
    regression corpus, web pages), as the builder makes them, of each sentence alone (more
    lengths), and a chunk without tokens."""
    from quotebot.index.articles import Span
    from quotebot.index.chunking import chunk_article
    from quotebot.index.loaders import load_articles
    from quotebot.index.vectorize import embedding_text

    root = Path(__file__).resolve().parent.parent
    folders = [root / "seeds", root / "tests" / "fixtures" / "regress_corpus", root / "tests" / "web_pages"]
    token_lists: list[list[str]] = []
    for article in [*load_articles(folders).articles, *ARTICLES]:
        sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=40, chunk_overlap=1)
        token_lists += [tokenize(embedding_text(article, Span(start=c.start, end=c.end))) for c in chunks]
        token_lists += [tokenize(sentence.slice(article.text)) for sentence in sentences]
    return [*token_lists, []]


def test_the_numpy_bm25_build_scores_as_bm25s_does() -> None:
    """The index is built with numpy (no bm25s loops): every token's score in every chunk
    must be bm25s's own, to the bit, on real text, so retrieval (and the fitted ranker on
    its scores) sees the very numbers it saw before."""
    import bm25s

    from quotebot.index.bm25_store import PLACEHOLDER_TOKEN, SavedBm25

    token_lists = _fixture_chunk_tokens()
    assert len(token_lists) > 60 and len({t for tokens in token_lists for t in tokens}) > 300
    theirs = bm25s.BM25()
    theirs.index([tokens or [PLACEHOLDER_TOKEN] for tokens in token_lists], show_progress=False)
    ours = SavedBm25.build(token_lists)
    assert set(ours.vocab_dict) == set(theirs.vocab_dict)
    assert ours.scores["num_docs"] == theirs.scores["num_docs"] == len(token_lists)
    for name in ("data", "indices", "indptr"):
        assert ours.scores[name].dtype == theirs.scores[name].dtype
    for token in theirs.vocab_dict:  # one column per token: its chunks and their scores
        if token == "":
            continue
        mine, their = ours.vocab_dict[token], theirs.vocab_dict[token]
        rows = slice(ours.scores["indptr"][mine], ours.scores["indptr"][mine + 1])
        their_rows = slice(theirs.scores["indptr"][their], theirs.scores["indptr"][their + 1])
        assert np.array_equal(ours.scores["indices"][rows], theirs.scores["indices"][their_rows]), token
        assert np.array_equal(ours.scores["data"][rows], theirs.scores["data"][their_rows]), token
    for question in ["What did Herzog ask Lavrov?", "the library opening hours", "harbour the the storm"]:
        tokens = [t for t in tokenize(question) if t in theirs.vocab_dict]
        assert tokens and np.array_equal(ours.get_scores(tokens), theirs.get_scores(tokens))


def test_a_numpy_built_bm25_index_is_saved_in_bm25s_format(tmp_path: Path) -> None:
    """What the builder writes, bm25s itself loads and scores the same (and so do we)."""
    import bm25s

    token_lists = _fixture_chunk_tokens()
    built = Bm25KeywordIndex.build(np.arange(100, 100 + len(token_lists)), token_lists)
    built.save(tmp_path / "bm25")
    theirs = bm25s.BM25.load(str(tmp_path / "bm25"), show_progress=False, verbosity=0)
    loaded = Bm25KeywordIndex.load(tmp_path / "bm25")
    assert np.array_equal(loaded.ids(), built.ids())
    tokens = [t for t in tokenize("What did Herzog ask Lavrov about the harbour?") if t in theirs.vocab_dict]
    assert np.array_equal(theirs.get_scores(tokens), loaded._bm25.get_scores(tokens))
    assert np.array_equal(built.search(tokens, 5)[0], loaded.search(tokens, 5)[0])
    assert np.array_equal(built.idf(tokens), loaded.idf(tokens))


def test_a_loaded_bm25_index_scores_as_bm25s_does_without_importing_it(seed_index_dir: Path) -> None:
    """Serving reads bm25s's files with numpy (no scipy import in a one-shot ask): the scores
    must be bm25s's own, to the bit, on the seed index's real chunks."""
    import bm25s

    from quotebot.index import storage
    from quotebot.index.bm25_store import SavedBm25

    folder = storage.current_generation(seed_index_dir) / "bm25"
    ours = Bm25KeywordIndex.load(folder)
    assert isinstance(ours._bm25, SavedBm25)
    theirs = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
    questions = ["What did Herzog ask Lavrov?", "prisoners exchange talks Moscow", "the the of", "zzzz unknown words"]
    for question in questions:
        tokens = [t for t in tokenize(question) if t in theirs.vocab_dict]
        if tokens:
            assert np.array_equal(ours._bm25.get_scores(tokens), theirs.get_scores(tokens))
            assert ours._bm25.get_scores(tokens).dtype == theirs.get_scores(tokens).dtype
    code = (
        "import sys; from pathlib import Path; from quotebot.index.bm25_store import Bm25KeywordIndex;"
        f"index = Bm25KeywordIndex.load(Path({str(folder)!r}), mmap=True); index.search(['lavrov'], 5);"
        "print('bm25s' in sys.modules, 'scipy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_large_sentence_vectors_are_read_not_mapped_and_read_the_same(seed_index_dir: Path, monkeypatch) -> None:
    """Above READ_NOT_MAPPED_BYTES the rows a question asks for are read from the file (the
    map would come to count whole in the process's RSS); they are the stored values."""
    import numpy as np

    from quotebot.index import reader

    mapped = reader.QuoteIndex.load(seed_index_dir)
    assert getattr(mapped, "_sentence_file", None) is None  # the seed's few KB stay mapped
    monkeypatch.setattr(reader, "READ_NOT_MAPPED_BYTES", 0)
    read = reader.QuoteIndex.load(seed_index_dir)
    assert read._sentence_file is not None
    count = len(read.sentence_vectors)
    rng = np.random.default_rng(3)
    for rows in ([], [0], [count - 1, 0], rng.integers(0, count, 40).tolist() + [1, 2, 3, 2]):
        rows = np.asarray(rows, dtype=np.int64)
        got = read.sentence_vectors_at(rows)
        assert got.dtype == np.float32 and got.shape == (len(rows), read.sentence_vectors.shape[1])
        assert np.array_equal(got, np.asarray(mapped.sentence_vectors[rows], dtype=np.float32))
