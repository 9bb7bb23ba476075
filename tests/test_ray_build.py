"""`index build --ray` / `index add --ray` on a real local Ray with 2 CPUs: the articles are
chunked by Ray tasks and embedded by ONNX encoder actors, and the index equals the local
build's (same chunks, same ids, vectors at cosine >= 0.9999)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray extra (pip install 'quotebot[ray]') is part of the dev install")

from quotebot.index.builder import IndexBuilder  # noqa: E402
from quotebot.index.loaders import load_articles  # noqa: E402
from quotebot.index.onnx_encoder import document_encoder_for, encoder_dir  # noqa: E402
from quotebot.index.ray_build import ENCODER_FOLDER_PREFIX, RayVectorizer  # noqa: E402
from quotebot.index.reader import QuoteIndex  # noqa: E402
from tests.test_index import ARTICLES  # noqa: E402
from tests.test_index_updates import VOLCANO  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-export")
    document_encoder_for(folder, MODEL, 64)  # exports the ONNX encoders there
    return encoder_dir(folder, MODEL)


@pytest.fixture(scope="module")
def vectorizer(export_dir: Path):
    ray_vectorizer = RayVectorizer(export_dir, MODEL, batch_size=64, num_cpus=2)
    ray_vectorizer.start()
    yield ray_vectorizer
    ray_vectorizer.stop()


def _builder(export_dir: Path, vectorizer: RayVectorizer | None = None) -> IndexBuilder:
    encoder = document_encoder_for(export_dir.parent.parent, MODEL, 64, export=False)
    return IndexBuilder(encoder, chunk_tokens=20, chunk_overlap=1, export_onnx=False, vectorizer=vectorizer)


def _vectors(index_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = QuoteIndex.load(index_dir, mmap=False)
    ids = np.sort(index.vectors.ids())
    return ids, index.vectors.vectors(ids), np.asarray(index.sentence_vectors, dtype=np.float32)


def _assert_same_index(ray_dir: Path, local_dir: Path) -> None:
    ray_index, local_index = QuoteIndex.load(ray_dir, mmap=False), QuoteIndex.load(local_dir, mmap=False)
    assert list(ray_index.articles) == list(local_index.articles)
    assert ray_index.manifest.counts == local_index.manifest.counts
    assert ray_index.manifest.article_hashes == local_index.manifest.article_hashes
    assert [(c.article_id, c.start, c.end) for c in map(ray_index.chunks.__getitem__, ray_index.chunks.ids.tolist())] == [
        (c.article_id, c.start, c.end) for c in map(local_index.chunks.__getitem__, local_index.chunks.ids.tolist())
    ]
    ray_ids, ray_chunks, ray_sentences = _vectors(ray_dir)
    local_ids, local_chunks, local_sentences = _vectors(local_dir)
    assert ray_ids.tolist() == local_ids.tolist()
    assert (ray_chunks * local_chunks).sum(axis=1).min() >= 0.9999
    # Sentence vectors are stored in float16: compare at that precision.
    cosine = (ray_sentences * local_sentences).sum(axis=1) / (
        np.linalg.norm(ray_sentences, axis=1) * np.linalg.norm(local_sentences, axis=1)
    )
    assert cosine.min() >= 0.9999


def test_a_ray_build_equals_the_local_build(tmp_path: Path, export_dir: Path, vectorizer: RayVectorizer) -> None:
    articles = [*ARTICLES, *load_articles([ROOT / "seeds"]).articles]
    assert ray.cluster_resources().get("CPU") == 2
    started = time.time() - 1
    _builder(export_dir, vectorizer).build(articles, tmp_path / "ray")
    _builder(export_dir).build(articles, tmp_path / "local")
    _assert_same_index(tmp_path / "ray", tmp_path / "local")
    # Each actor loads the encoder from a folder it writes; none is left behind in /tmp.
    left = [p for p in Path(tempfile.gettempdir()).glob(f"{ENCODER_FOLDER_PREFIX}*") if p.stat().st_mtime >= started]
    assert not left, left


def test_index_add_on_ray_equals_the_local_add(tmp_path: Path, export_dir: Path, vectorizer: RayVectorizer) -> None:
    for name in ("ray", "local"):
        _builder(export_dir).build(ARTICLES, tmp_path / name)
    change = _builder(export_dir, vectorizer).add([VOLCANO], tmp_path / "ray")
    _builder(export_dir).add([VOLCANO], tmp_path / "local")
    assert change.added == [VOLCANO.id] and change.unchanged == len(ARTICLES)
    _assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_the_cli_adds_on_a_local_ray(tmp_path: Path) -> None:
    """`quotebot index add --ray` with no address starts a local Ray and stops it after."""
    import json
    import subprocess
    import sys

    index_dir = tmp_path / "index"
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": VOLCANO.id, "title": VOLCANO.title, "text": VOLCANO.text}) + "\n", encoding="utf-8")
    cli = [sys.executable, "-m", "quotebot.bot.cli"]
    subprocess.run([*cli, "index", "build", str(ROOT / "seeds"), "--index-dir", str(index_dir)], check=True, cwd=ROOT, capture_output=True)
    done = subprocess.run(
        [*cli, "index", "add", str(new), "--ray", "--index-dir", str(index_dir)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    index = QuoteIndex.load(index_dir)
    assert VOLCANO.id in index.articles and len(index.articles) == 2
