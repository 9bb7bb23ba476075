"""MiniLM exported to ONNX and run without importing torch: questions and documents.

Importing torch and sentence-transformers costs 4-8 s; onnxruntime and tokenizers load in
about 0.2 s, so `quotebot ask` answers in well under a second and `quotebot index add`
embeds a new article in about as long. The export is made from the packaged model,
offline, the first time an index folder is built, and kept beside the index:

- ``model.int8.onnx`` embeds questions: dynamic int8 with ``per_channel=True`` (with the
  default settings the vectors drift, cosine as low as 0.92 against torch; per channel
  they agree to 0.99, bench/results/onnx-agreement.md).
- ``model.onnx`` (float32) embeds articles. Dynamic int8 quantises each batch's
  activations with that batch's own range, so an article's vectors would depend on what
  it was batched with (cosine down to 0.96 measured): an ``index add`` would not give the
  vectors a full build gives. Float32 gives torch's vectors (cosine > 0.9999) whatever
  the batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from quotebot.index.embedding import DocumentEncoder, Embedder, TextEncoder, length_order, resolve_model_path

ONNX_FILE = "model.int8.onnx"
# The question encoder with onnxruntime's graph optimisations already applied (saved at the
# portable "extended" level): a one-shot `quotebot ask` loads it without optimising it again.
OPTIMIZED_ONNX_FILE = "model.int8.opt.onnx"
DOCUMENT_ONNX_FILE = "model.onnx"
# The document encoder likewise: `quotebot index add` of one article starts it in 0.1 s less
# (the same vectors to the bit: tests/test_onnx_encoder.py).
DOCUMENT_OPTIMIZED_FILE = "model.opt.onnx"
# Each model file and its optimised copy.
OPTIMIZED_FILES = {ONNX_FILE: OPTIMIZED_ONNX_FILE, DOCUMENT_ONNX_FILE: DOCUMENT_OPTIMIZED_FILE}
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "encoder.json"
SHARED_EXPORTS = "query-encoders"  # under a cache root: one export per model, linked into each index
# MiniLM was trained on inputs up to 256 word pieces; questions are far shorter.
MAX_TOKENS = 256
# Texts per document batch: with length-sorted texts, batches of 8-16 ran 1.2-2x faster
# than 64 on this machine, and their activations keep onnxruntime's arena small.
DOCUMENT_BATCH = 16


def encoder_dir(index_dir: Path, model: str) -> Path:
    """Where the exported query encoder of ``model`` lives for an index folder."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return index_dir / "query_encoder" / safe


def export_onnx_encoders(model: str, target: Path) -> Path:
    """Export ``model`` to ONNX in ``target``: the int8 question encoder and the float32
    document encoder (atomically); a no-op when both are there."""
    if OnnxQueryEncoder.available(target) and OnnxDocumentEncoder.available(target):
        optimize_encoders(target)  # exports made before they were saved get them now (no torch)
        return target
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from quotebot.index.embedding import _forbid_hub_access

    _forbid_hub_access()
    from transformers import AutoModel

    source = resolve_model_path(model)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        float_model = staging / DOCUMENT_ONNX_FILE
        with _quiet():
            _export_float(AutoModel.from_pretrained(str(source)).eval(), float_model, torch)
            quantize_dynamic(str(float_model), str(staging / ONNX_FILE), weight_type=QuantType.QInt8, per_channel=True)
        optimize_encoders(staging)
        shutil.copy(source / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        info = {"model": model, "source": str(source), "questions": f"{ONNX_FILE}: dynamic int8, per channel",
                "documents": f"{DOCUMENT_ONNX_FILE}: float32"}
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def optimize_encoders(folder: Path) -> None:
    """Save the question and document encoders as onnxruntime optimises them on load, beside
    them, atomically: loading a saved graph skips ~40 % of a session's start. A no-op for
    each that is there; a failure leaves that encoder on its unoptimised file, which gives
    the same vectors."""
    for source, optimized in OPTIMIZED_FILES.items():
        _save_optimized(folder / source, folder / optimized)


def _save_optimized(source: Path, target: Path) -> None:
    if target.is_file() or not source.is_file():
        return
    import onnxruntime

    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(staging)
    options.log_severity_level = 3
    try:
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        os.replace(staging, target)
    except Exception:  # an optimisation onnxruntime cannot save is only a slower start
        staging.unlink(missing_ok=True)


def _replace_dir(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; whatever export is there (older or incomplete) is
    moved aside first and deleted after, so readers see one whole export or the other."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.parent / f".{target.name}.old.{uuid.uuid4().hex[:8]}"
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def query_encoder_for(index_dir: Path, model: str, torch_model: Callable[[], TextEncoder]) -> TextEncoder:
    """What questions over ``index_dir`` are embedded with: its ONNX export (0.2 s to load),
    else ``torch_model()``, called only then, so no torch is imported when there is an export."""
    exported = encoder_dir(index_dir, model)
    if OnnxQueryEncoder.available(exported):
        return OnnxQueryEncoder(exported, model)
    return torch_model()


def document_encoder_for(index_dir: Path, model: str, batch_size: int, *, export: bool = True) -> DocumentEncoder:
    """What ``quotebot index build`` and ``index add`` embed articles with: the index's
    float32 ONNX export, run by onnxruntime without importing torch.

    With ``export`` the export is made now if the index folder has none yet (the only time
    torch is loaded). Without it, a folder without the export gets the torch ``Embedder``;
    both give the same vectors (cosine > 0.9999), so they can share an index.
    """
    exported = encoder_dir(index_dir, model)
    if export:
        export_in_subprocess(model, exported)
    if OnnxDocumentEncoder.available(exported):
        return OnnxDocumentEncoder(exported, model, batch_size=batch_size)
    return Embedder(model=model, batch_size=batch_size)


def loading_document_encoder(index_dir: Path, model: str, batch_size: int) -> OnnxDocumentEncoder | None:
    """The document encoder of ``index_dir``'s export, already loading in a thread
    (``start_warm_up``), so `index add` reads its articles and the index meanwhile; None when
    the folder has no export yet (``document_encoder_for`` makes it)."""
    exported = encoder_dir(index_dir, model)
    if not OnnxDocumentEncoder.available(exported):
        return None
    encoder = OnnxDocumentEncoder(exported, model, batch_size=batch_size)
    encoder.start_warm_up()
    return encoder


def export_in_subprocess(model: str, target: Path) -> Path:
    """``export_onnx_encoders`` in a child process: torch (~0.5 GB resident, and what its
    import leaves behind) never enters the process that then embeds and writes the index, so a
    build's peak memory is the encoder's and the index's alone. A no-op when the export is there."""
    if OnnxQueryEncoder.available(target) and OnnxDocumentEncoder.available(target):
        optimize_encoders(target)
        return target
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from quotebot.index.onnx_encoder import export_onnx_encoders; " \
        "export_onnx_encoders(sys.argv[1], Path(sys.argv[2]))"
    done = subprocess.run([sys.executable, "-c", code, model, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        # The same error in this process: it names what is missing (the model package, a folder).
        return export_onnx_encoders(model, target)
    return target


def link_query_encoder(index_dir: Path, model: str, shared_root: Path) -> None:
    """Give ``index_dir`` the query encoder ``quotebot index build`` would export into it.

    Caches of many indexes (``quotebot eval``, ``quotebot regress``) export once under
    ``shared_root`` and hard-link the files in: the int8 model is 20+ MB and takes seconds
    to export, a link costs nothing. The link appears atomically.
    """
    target = encoder_dir(index_dir, model)
    if OnnxQueryEncoder.available(target):
        return
    shared = export_onnx_encoders(model, encoder_dir(shared_root / SHARED_EXPORTS, model))  # no-op once made
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(shared, staging, copy_function=_link_or_copy)
        _replace_dir(staging, target)  # an incomplete export there is not ours to trust
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's warnings and onnxruntime's pre-processing advice mean nothing to a user.

    The export also configures the root logger (a stderr handler appears during it); the
    handlers are put back as they were, or every library's log lines would reach the user
    of the build that follows (bm25s's "Building index from tokens").
    """
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _export_float(model: Any, path: Path, torch: Any) -> None:
    class LastHiddenState(torch.nn.Module):
        """Keyword arguments only: transformers 5 changed BertModel's positional order."""

        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones(1, 8, dtype=torch.long) for _ in names)
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model),
            example,
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,  # the dynamo exporter needs onnxscript and is not needed for BERT
        )


class OnnxQueryEncoder:
    """Embeds questions like ``Embedder`` (mean pooling, L2-normalised), with onnxruntime.

    ``threads`` is onnxruntime's intra-op thread count; 0 lets it use every core.
    """

    def __init__(self, path: Path, model: str, batch_size: int = 32, threads: int = 1, onnx_file: str = ONNX_FILE) -> None:
        self.path = path
        self.model = model
        self.batch_size = batch_size
        self.threads = threads
        self.onnx_file = onnx_file
        self._session: Any = None
        self._tokenizer: Any = None
        self._loading: Any = None  # the thread of start_warm_up, until warm_up takes its session
        self._loaded: list[Any] = []  # what that thread made: [session] or [exception]
        self._warming = threading.Lock()  # one warm_up at a time (threads of a server may race to it)

    @classmethod
    def available(cls, path: Path, onnx_file: str = ONNX_FILE) -> bool:
        return (path / INFO_FILE).is_file() and (path / onnx_file).is_file()

    @property
    def dimension(self) -> int:
        self.warm_up()
        return int(self._session.get_outputs()[0].shape[-1] or 384)

    def start_warm_up(self) -> None:
        """Start loading the model in a thread and return at once; ``warm_up`` (called by
        the first ``embed``) then takes it over. onnxruntime builds a session without holding
        the GIL, so a cold start's other work (imports, the index, the tokenizer) runs beside
        it on a second core: most of its 0.1-0.2 s leaves the wall time of a one-shot
        `quotebot ask` or `index add`. The thread is not a daemon: a process that exits
        first waits for it rather than stop onnxruntime midway."""

        def load() -> None:
            try:
                self._loaded.append(self._new_session())
            except BaseException as error:  # re-raised by warm_up, in the caller's thread
                self._loaded.append(error)

        with self._warming:
            if self._session is None and self._loading is None:
                self._loading = threading.Thread(target=load, name="quotebot-model-load")
                self._loading.start()

    def warm_up(self) -> None:
        if self._session is not None:
            return
        with self._warming:
            if self._session is not None:
                return
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.path / TOKENIZER_FILE))  # holds the GIL: not in the thread
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding()
            if self._loading is not None:
                self._loading.join()
                self._loading, (loaded,), self._loaded = None, self._loaded, []
                if isinstance(loaded, BaseException):
                    raise loaded
                session = loaded
            else:
                session = self._new_session()
            self._tokenizer = tokenizer
            self._session = session  # last: a session set means ready

    def _new_session(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread for questions: a single short question gains nothing from two, and the
        # bot may run several answers at once.
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = self.path / self.onnx_file
        optimized = OPTIMIZED_FILES.get(self.onnx_file)
        if optimized is not None and (self.path / optimized).is_file():
            model = self.path / optimized  # already optimised when it was saved
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        parts = [self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        hidden, mask = self._run(texts)
        summed = (hidden * mask[..., None]).sum(axis=1)
        vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)

    def _run(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The last hidden state of a batch and its attention mask (0 on padding)."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        return hidden, mask


class OnnxDocumentEncoder(OnnxQueryEncoder):
    """Embeds articles for an index build (``index.vectorize``) with the float32 export.

    Texts are sorted by length and cut into small batches (little padding), and ``workers``
    threads (one per core by default) each run a batch at a time through one shared session
    whose operators run on one thread (onnxruntime releases the GIL). On this 2-core machine
    that is 1.1-2x faster than one two-thread session on batches of 64, and the memory arena
    stays small, because it only ever holds a small batch's activations
    (bench/results/index-scale.md). A text's vector does not depend on its batch-mates.
    """

    def __init__(
        self, path: Path, model: str, batch_size: int = DOCUMENT_BATCH, onnx_file: str = DOCUMENT_ONNX_FILE,
        workers: int | None = None,
    ) -> None:
        super().__init__(path, model, batch_size=batch_size, threads=1, onnx_file=onnx_file)
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))

    @classmethod
    def available(cls, path: Path, onnx_file: str = DOCUMENT_ONNX_FILE) -> bool:
        return super().available(path, onnx_file)

    def embed(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = length_order(texts)
        # A few texts (`index add` of one article) are still shared among the workers.
        size = max(1, min(self.batch_size, -(-len(texts) // self.workers)))
        batches = [order[begin : begin + size] for begin in range(0, len(order), size)]

        def run(positions: list[int]) -> np.ndarray:
            return self._embed_batch([texts[i] for i in positions])

        if self.workers == 1 or len(batches) == 1:
            for positions in batches:
                vectors[positions] = run(positions)
            return vectors
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers, thread_name_prefix="quotebot-encoder") as pool:
            for positions, batch_vectors in zip(batches, pool.map(run, batches)):
                vectors[positions] = batch_vectors
        return vectors
