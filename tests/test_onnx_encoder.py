"""The torch-free query path agrees with the torch model, and is chosen only when exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quotebot.bot import wiring
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder
from quotebot.index.onnx_encoder import OnnxDocumentEncoder, OnnxQueryEncoder, encoder_dir


def test_onnx_vectors_agree_with_torch(seed_index_dir: Path, embedder: Embedder, seed_texts: dict[str, str]) -> None:
    from quotebot.index.chunking import split_sentences

    text = next(iter(seed_texts.values()))
    sentences = [span.slice(text) for span in split_sentences(text)]
    sentences += ["What did Herzog ask Lavrov?", "What is the capital of Australia?", "and what about Hezbollah?"]
    encoder = OnnxQueryEncoder(encoder_dir(seed_index_dir, "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2")
    fast, reference = encoder.embed(sentences), embedder.embed(sentences)
    cosine = (fast * reference).sum(axis=1)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.97, cosine


def test_bot_uses_the_export_and_falls_back_to_torch(seed_index_dir: Path, tmp_path: Path) -> None:
    settings = Settings()
    assert isinstance(wiring.new_bot(settings, seed_index_dir).retriever.embedder, OnnxQueryEncoder)

    import shutil

    bare = tmp_path / "index"
    shutil.copytree(seed_index_dir, bare, ignore=shutil.ignore_patterns("query_encoder"))
    assert isinstance(wiring.new_bot(settings, bare).retriever.embedder, Embedder)


def test_onnx_bot_answers_like_the_torch_bot(seed_index_dir: Path) -> None:
    bot = wiring.new_bot(Settings(), seed_index_dir)
    answer = bot.ask("What did Herzog ask Lavrov?")
    assert "blind eye" in answer.quotes[0].text
    assert not bot.ask("What is the capital of Australia?").answered


# -- documents ---------------------------------------------------------------------------------


def _seed_items():
    from quotebot.index.chunking import chunk_article
    from quotebot.index.loaders import load_articles
    from quotebot.index.vectorize import ChunkedArticle

    items = []
    for article in load_articles([Path(__file__).resolve().parent.parent / "seeds"]).articles:
        sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
        items.append(ChunkedArticle(article, sentences, chunks))
    return items


@pytest.mark.slow
def test_onnx_document_vectors_agree_with_torch(seed_index_dir: Path, embedder: Embedder) -> None:
    from quotebot.index.onnx_encoder import OnnxDocumentEncoder
    from quotebot.index.vectorize import embed_articles, embedding_text

    items = _seed_items()
    encoder = OnnxDocumentEncoder(encoder_dir(seed_index_dir, "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2", batch_size=4)
    fast, reference = embed_articles(encoder, items)[0], embed_articles(embedder, items)[0]
    for ours, theirs in ((fast.chunks, reference.chunks), (fast.sentences, reference.sentences)):
        cosine = (ours * theirs).sum(axis=1)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
        assert cosine.min() >= 0.9999, cosine  # float32: torch's vectors, not an approximation
    # What a text is batched with does not change its vector (int8 would: per-batch ranges).
    texts = [embedding_text(items[0].article, span) for span in items[0].sentences]
    alone = np.concatenate([encoder.embed([text]) for text in texts])
    assert np.allclose(alone, encoder.embed(texts), atol=1e-5)


def test_the_saved_optimised_encoders_give_the_same_vectors(seed_index_dir: Path, tmp_path: Path) -> None:
    """`index add` and a one-shot `ask` start their encoders from graphs onnxruntime optimised
    once and saved: the vectors must be those of the unoptimised files, to the bit."""
    import shutil

    from quotebot.index.onnx_encoder import DOCUMENT_OPTIMIZED_FILE, OPTIMIZED_FILES, optimize_encoders
    from quotebot.index.vectorize import embedding_text

    export = tmp_path / "export"
    shutil.copytree(encoder_dir(seed_index_dir, "all-MiniLM-L6-v2"), export, ignore=shutil.ignore_patterns(*OPTIMIZED_FILES.values()))
    texts = [embedding_text(item.article, span) for item in _seed_items() for span in item.sentences]
    questions = ["What did Herzog ask Lavrov?", "What is the capital of Australia?", *texts[:5]]
    documents, asked = OnnxDocumentEncoder(export, "all-MiniLM-L6-v2").embed(texts), OnnxQueryEncoder(export, "all-MiniLM-L6-v2").embed(questions)
    optimize_encoders(export)
    assert all((export / name).is_file() for name in OPTIMIZED_FILES.values())
    optimised = OnnxDocumentEncoder(export, "all-MiniLM-L6-v2")
    optimised.warm_up()
    assert Path(optimised._session._model_path).name == DOCUMENT_OPTIMIZED_FILE
    assert np.array_equal(optimised.embed(texts), documents)
    assert np.array_equal(OnnxQueryEncoder(export, "all-MiniLM-L6-v2").embed(questions), asked)


def test_document_encoder_for_uses_the_export_or_makes_it(seed_index_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    import quotebot.index.onnx_encoder as onnx_encoder
    from quotebot.index.onnx_encoder import OnnxDocumentEncoder, document_encoder_for

    model = "all-MiniLM-L6-v2"
    chosen = document_encoder_for(seed_index_dir, model, 16)
    assert isinstance(chosen, OnnxDocumentEncoder) and chosen.batch_size == 16 and chosen.model == model
    bare = tmp_path / "index"
    assert isinstance(document_encoder_for(bare, model, 16, export=False), Embedder)  # no export: torch

    made: list[Path] = []

    def export(name: str, target: Path) -> Path:  # the real export takes seconds: copy the seed index's
        if not OnnxDocumentEncoder.available(target):
            made.append(target)
            shutil.copytree(encoder_dir(seed_index_dir, name), target)
        return target

    monkeypatch.setattr(onnx_encoder, "export_in_subprocess", export)  # the child process runs export_onnx_encoders
    assert isinstance(document_encoder_for(bare, model, 16), OnnxDocumentEncoder)
    assert made == [encoder_dir(bare, model)]
    document_encoder_for(bare, model, 16)
    assert len(made) == 1  # made once per index


@pytest.mark.e2e
def test_index_add_with_the_export_never_imports_torch(seed_index_dir: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "index"
    shutil.copytree(seed_index_dir, copy)
    script = """
import sys
from pathlib import Path

from quotebot.index.articles import Article
from quotebot.index.builder import IndexBuilder
from quotebot.index.onnx_encoder import OnnxDocumentEncoder, document_encoder_for
from quotebot.index.reader import QuoteIndex
encoder = document_encoder_for(Path(sys.argv[1]), "all-MiniLM-L6-v2", 64)
assert isinstance(encoder, OnnxDocumentEncoder), encoder
text = "The Kelso harbour bridge reopened on Monday. Mayor Ines Duarte cut the ribbon."
IndexBuilder(encoder, 120, 1).add([Article(id="bridge.txt", title="Bridge reopens", text=text)], Path(sys.argv[1]))
assert "bridge.txt" in QuoteIndex.load(Path(sys.argv[1])).articles
assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules, "torch was imported"
"""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script, str(copy)], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_export_runs_in_a_child_process_without_torch_here(tmp_path: Path, seed_index_dir: Path) -> None:
    """A build's process never imports torch for the export: a child makes it."""
    import subprocess
    import sys

    target = tmp_path / "export"
    code = (
        "import sys; from pathlib import Path; from quotebot.index.onnx_encoder import export_in_subprocess; "
        "export_in_subprocess('all-MiniLM-L6-v2', Path(sys.argv[1])); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert OnnxDocumentEncoder.available(target)


def _old_build_vectors(export: Path, items) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The vectors as builds made them before streaming: every text of every article in one
    call, one two-thread onnxruntime session, batches of 64, chunk = normalised mean."""
    from quotebot.index.onnx_encoder import DOCUMENT_ONNX_FILE, OnnxQueryEncoder
    from quotebot.index.vectorize import chunk_vectors, embedding_text

    whole = OnnxQueryEncoder(export, "all-MiniLM-L6-v2", batch_size=64, threads=0, onnx_file=DOCUMENT_ONNX_FILE)
    texts = [embedding_text(item.article, span) for item in items for span in item.sentences]
    vectors, start, sentences, chunks = whole.embed(texts), 0, [], []
    for item in items:
        sentences.append(vectors[start : start + len(item.sentences)])
        chunks.append(chunk_vectors(item.chunks, sentences[-1]))
        start += len(item.sentences)
    return sentences, chunks


def _seed_and_parts():
    """The seed article, and articles made of its sentences two by two (real text, several windows)."""
    from quotebot.index.articles import Article
    from quotebot.index.chunking import chunk_article
    from quotebot.index.vectorize import ChunkedArticle

    seed = _seed_items()[0]
    sentences, chunks = chunk_article(seed.article.id, seed.article.text, chunk_tokens=40, chunk_overlap=1)
    items = [ChunkedArticle(seed.article, sentences, chunks)]
    spans = seed.sentences
    for number, first in enumerate(range(0, len(spans), 2)):
        text = seed.article.text[spans[first].start : spans[min(first + 1, len(spans) - 1)].end]
        article = Article(id=f"part-{number}.txt", title=f"Part {number}" if number % 2 else "", text=text)
        sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=40, chunk_overlap=1)
        items.append(ChunkedArticle(article, sentences, chunks))
    return items


@pytest.mark.slow
def test_streamed_vectors_equal_the_old_builds(seed_index_dir: Path) -> None:
    """Small windows of articles, small length-sorted batches on two threads: the same
    vectors as every text embedded at once by the old two-thread session."""
    from quotebot.index.vectorize import stream_article_vectors

    items = _seed_and_parts()
    export = encoder_dir(seed_index_dir, "all-MiniLM-L6-v2")
    old_sentences, old_chunks = _old_build_vectors(export, items)
    encoder = OnnxDocumentEncoder(export, "all-MiniLM-L6-v2", batch_size=16, workers=2)
    windows: list[int] = []
    streamed = list(stream_article_vectors(encoder, items, lambda a, c, done, total: windows.append(done), window=3))
    assert len(windows) >= 3 and windows[-1] == sum(len(item.sentences) for item in items)
    assert len(streamed) == len(items)
    for vectors, sentences, chunks in zip(streamed, old_sentences, old_chunks):
        assert vectors.sentences.shape == sentences.shape and vectors.chunks.shape == chunks.shape
        for ours, theirs in ((vectors.sentences, sentences), (vectors.chunks, chunks)):
            if len(ours):
                assert (ours * theirs).sum(axis=1).min() >= 0.9999


@pytest.mark.slow
def test_a_streamed_build_stores_the_old_builds_vectors(seed_index_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """End to end through IndexBuilder, in windows of a few articles: the stored sentence and
    chunk vectors are the old build's."""
    from quotebot.index import vectorize
    from quotebot.index.builder import IndexBuilder
    from quotebot.index.reader import QuoteIndex

    items = _seed_and_parts()
    export = encoder_dir(seed_index_dir, "all-MiniLM-L6-v2")
    monkeypatch.setattr(vectorize, "WINDOW_TEXTS", 3)
    encoder = OnnxDocumentEncoder(export, "all-MiniLM-L6-v2", batch_size=16, workers=2)
    builder = IndexBuilder(encoder, chunk_tokens=40, chunk_overlap=1, export_onnx=False)
    change = builder.build([item.article for item in items], tmp_path / "index")
    index = QuoteIndex.load(tmp_path / "index", model="all-MiniLM-L6-v2", chunking=builder.chunking)
    old_sentences, old_chunks = _old_build_vectors(export, items)
    assert change.embedded_chunks == sum(len(chunks) for chunks in old_chunks) == len(index.chunks)
    stored = np.asarray(index.sentence_vectors, dtype=np.float32)
    assert (stored * np.concatenate(old_sentences)).sum(axis=1).min() >= 0.9999
    chunk_vectors = index.vectors.vectors(np.asarray(index.chunks.rows["id"], dtype=np.int64))
    assert (chunk_vectors * np.concatenate(old_chunks)).sum(axis=1).min() >= 0.9999
