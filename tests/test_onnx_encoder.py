"""The torch-free query path agrees with the torch model, and is chosen only when exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.chat import QuoteBot
from bot.settings import Settings
from index.embedding import Embedder
from index.onnx_encoder import OnnxQueryEncoder, encoder_dir


def test_onnx_vectors_agree_with_torch(seed_index_dir: Path, embedder: Embedder, seed_texts: dict[str, str]) -> None:
    from index.chunking import split_sentences

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
    assert isinstance(QuoteBot.from_settings(settings, index_dir=seed_index_dir).retriever.embedder, OnnxQueryEncoder)

    import shutil

    bare = tmp_path / "index"
    shutil.copytree(seed_index_dir, bare, ignore=shutil.ignore_patterns("query_encoder"))
    assert isinstance(QuoteBot.from_settings(settings, index_dir=bare).retriever.embedder, Embedder)


def test_onnx_bot_answers_like_the_torch_bot(seed_index_dir: Path) -> None:
    bot = QuoteBot.from_settings(Settings(), index_dir=seed_index_dir)
    answer = bot.ask("What did Herzog ask Lavrov?")
    assert "blind eye" in answer.quotes[0].text
    assert not bot.ask("What is the capital of Australia?").answered
