"""Chunking and embedding an index build on a Ray cluster, with Ray Data.

``quotebot index build PATH... --ray [ADDRESS]`` and ``index add ... --ray``: the driver
reads the articles and plans the generation as a local build does; the new articles are
chunked by parallel Ray tasks, and their sentences embedded by a pool of actors, each holding
the float32 ONNX document encoder (``model.onnx``, shipped once through the object store, so
a node needs no copy of the export); the vectors stream back to the driver, which writes the
generation with the same lock, atomic publish and manifest as a local build. Without an
address a local Ray is started on this machine's cores.

The ONNX encoder gives a text the same vector in any batch (float32, no per-batch
quantisation), so a Ray build's vectors equal a local build's (cosine >= 0.9999; a test checks
it on a local Ray with 2 CPUs). Ray is an optional extra: ``pip install 'quotebot[ray]'``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quotebot.index.chunking import chunk_article
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.articles import Article, Chunk, Span
from quotebot.index.vectorize import ArticleVectors, BatchCallback, ChunkedArticle, chunk_vectors, embedding_text

INSTALL_HINT = "pip install 'quotebot[ray]'"
# Articles per Ray Data block: small enough to spread over the actors and stream progress,
# large enough that each actor call sorts a few hundred sentences by length.
ARTICLES_PER_BATCH = 32
ENCODER_FILES = ("model.onnx", "tokenizer.json", "encoder.json")


class RayUnavailableError(QuotebotError):
    """Ray is not installed, or the cluster cannot be reached; ``str()`` says what to do."""

    exit_code = ExitCode.BAD_INPUT


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(f"--ray needs Ray: {INSTALL_HINT}") from None
    return ray


class RayVectorizer:
    """Chunks and embeds articles on Ray; ``IndexBuilder(..., vectorizer=RayVectorizer(...))``.

    ``address``: a running cluster (``ray://host:10001`` or ``host:6379``), or None for a
    local Ray on ``num_cpus`` cores (all of them when None). ``actors``: how many encoder
    actors, each on ``cpus_per_actor`` cores (onnxruntime's thread count); by default one per
    ``cpus_per_actor`` cores of the cluster.
    """

    def __init__(
        self,
        export_dir: Path,
        model: str,
        batch_size: int = 16,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int | None = None,
        cpus_per_actor: int = 1,
    ) -> None:
        self.export_dir = export_dir
        self.model = model
        self.batch_size = batch_size
        self.address = address
        self.num_cpus = num_cpus
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self._started_here = False

    # -- the cluster ----------------------------------------------------------------------

    def start(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.address or "a local Ray"
            raise RayUnavailableError(f"cannot start or reach Ray at {where}: {error}") from None
        self._started_here = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def stop(self) -> None:
        if self._started_here:
            _ray().shutdown()
            self._started_here = False

    def _actor_count(self) -> int:
        if self.actors:
            return self.actors
        cpus = int(_ray().cluster_resources().get("CPU", 1))
        return max(1, cpus // self.cpus_per_actor)

    # -- the two stages ---------------------------------------------------------------------

    def chunk(self, articles: Sequence[Article], chunk_tokens: int, chunk_overlap: int) -> list[tuple[list[Span], list[Chunk]]]:
        """Each article's sentences and chunks, chunked by parallel Ray tasks, in order."""
        if not articles:
            return []
        self.start()
        ray = _ray()
        rows = [{"position": i, "id": a.id, "text": a.text} for i, a in enumerate(articles)]
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), self._actor_count() * 4))
        chunked = dataset.map(_chunk_row, fn_kwargs={"chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap})
        result: list[Any] = [None] * len(articles)
        for row in chunked.iter_rows():
            result[int(row["position"])] = _decode_chunked(articles[int(row["position"])].id, row)
        return result

    def embed_articles(
        self, _embedder: Any, articles: Sequence[ChunkedArticle], on_batch: BatchCallback | None = None
    ) -> list[ArticleVectors]:
        """``vectorize.embed_articles`` on Ray: every sentence embedded once by the actors,
        chunk vectors the normalised mean of their sentences', on the driver."""
        if not articles:
            return []
        self.start()
        ray = _ray()
        encoder_files = [ray.put({name: (self.export_dir / name).read_bytes() for name in ENCODER_FILES})]
        rows = [
            {"position": i, "texts": [embedding_text(item.article, span) for span in item.sentences]}
            for i, item in enumerate(articles)
        ]
        actors = self._actor_count()
        # At least a block per actor, else a small `index add` would leave actors idle.
        blocks = min(len(rows), max(actors, min(len(rows) // ARTICLES_PER_BATCH, actors * 16)))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        embedded = dataset.map_batches(
            _SentenceEncoderActor,
            fn_constructor_kwargs={"encoder_files": encoder_files[0], "model": self.model,
                                   "batch_size": self.batch_size, "threads": self.cpus_per_actor},
            batch_size=ARTICLES_PER_BATCH,
            batch_format="pandas",
            concurrency=actors,
            num_cpus=self.cpus_per_actor,
        )
        sentence_vectors: list[Any] = [None] * len(articles)
        done_articles = done_chunks = 0
        for batch in embedded.iter_batches(batch_format="pandas", batch_size=None):
            for position, flat, count in zip(batch["position"], batch["vectors"], batch["count"]):
                dimension = len(flat) // count if count else 0
                item = articles[int(position)]
                sentence_vectors[int(position)] = np.asarray(flat, dtype=np.float32).reshape(int(count), dimension) if count else None
                done_articles += 1
                done_chunks += len(item.chunks)
            if on_batch:
                on_batch(done_articles, done_chunks)
        result = []
        for item, vectors in zip(articles, sentence_vectors):
            if vectors is None:
                vectors = np.zeros((0, 384), dtype=np.float32)
            result.append(ArticleVectors(chunks=chunk_vectors(item.chunks, vectors), sentences=vectors))
        return result


def _chunk_row(row: dict, chunk_tokens: int, chunk_overlap: int) -> dict:
    sentences, chunks = chunk_article(row["id"], row["text"], chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    return {
        "position": row["position"],
        "sentences": [[s.start, s.end] for s in sentences],
        "chunks": [[c.start, c.end, c.first_sentence, len(c.sentences)] for c in chunks],
    }


def _decode_chunked(article_id: str, row: dict) -> tuple[list[Span], list[Chunk]]:
    sentences = [Span(start=int(s), end=int(e)) for s, e in row["sentences"]]
    chunks = [
        Chunk(article_id=article_id, ordinal=ordinal, start=int(start), end=int(end), first_sentence=int(first),
              sentences=tuple(sentences[int(first) : int(first) + int(count)]))
        for ordinal, (start, end, first, count) in enumerate(row["chunks"])
    ]
    return sentences, chunks


# Where each actor writes the encoder it is sent, just long enough to load it.
ENCODER_FOLDER_PREFIX = "quotebot-encoder-"


class _SentenceEncoderActor:
    """A Ray actor holding the float32 ONNX document encoder, written from the object store
    to a local folder once."""

    def __init__(self, encoder_files: Any, model: str, batch_size: int, threads: int) -> None:
        import ray

        from quotebot.index.onnx_encoder import OnnxDocumentEncoder

        encoder_files = ray.get(encoder_files)  # a reference into the object store: fetched once per actor
        folder = Path(tempfile.mkdtemp(prefix=ENCODER_FOLDER_PREFIX))
        try:
            for name, data in encoder_files.items():
                (folder / name).write_bytes(data)
            self.encoder = OnnxDocumentEncoder(folder, model, batch_size=batch_size, workers=threads)
            self.encoder.warm_up()
        finally:
            # The session and tokenizer are in memory now: the 87 MB copy would only pile up
            # in /tmp, one per actor of every build (15 GB after a day of test runs).
            shutil.rmtree(folder, ignore_errors=True)

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        texts: list[str] = []
        counts = []
        for article_texts in batch["texts"]:
            texts.extend(list(article_texts))
            counts.append(len(article_texts))
        vectors = self.encoder.embed(texts) if texts else np.zeros((0, 384), dtype=np.float32)
        flat, start = [], 0
        for count in counts:
            flat.append(vectors[start : start + count].ravel())
            start += count
        return pd.DataFrame({"position": batch["position"], "count": counts, "vectors": flat})
