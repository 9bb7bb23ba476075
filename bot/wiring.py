"""Wiring: the one place that builds quotebot's parts from settings.

Every front end (``quotebot ask``/``chat``, Telegram, the regression runner) and the eval
get their index, builder, retriever and bot from here, so a setting (say
``index.vector_store``) reaches every one of them, and the parts themselves take plain
parameters: the chat core never reads a front end's settings, the retriever never reads
config.yaml. Heavy modules (torch, faiss, onnxruntime) are imported when a function needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from quotebot.index.manifest import ChunkingSettings
from quotebot.index.settings import IndexSettings
from quotebot.retrieval.settings import RetrievalSettings

if TYPE_CHECKING:
    from quotebot.bot.chat import QuoteBot
    from quotebot.bot.settings import Settings
    from quotebot.index.builder import IndexBuilder
    from quotebot.index.embedding import DocumentEncoder, TextEncoder
    from quotebot.index.live import LiveIndex
    from quotebot.index.reader import QuoteIndex
    from quotebot.retrieval.retriever import Retriever


def chunking(index: IndexSettings) -> ChunkingSettings:
    return ChunkingSettings(chunk_tokens=index.chunk_tokens, chunk_overlap=index.chunk_overlap)


def load_index(
    index: IndexSettings, index_dir: Path | None = None, *, mmap: bool = True, checked: bool = True
) -> QuoteIndex:
    """The live generation of ``index_dir`` (default ``index.index_dir``), ``checked`` against
    the configured model and chunking (a listing needs no check); ``mmap=False`` for a copy
    that may be changed."""
    from quotebot.index.reader import QuoteIndex

    return QuoteIndex.load(
        index_dir or index.index_dir,
        model=index.model if checked else None,
        chunking=chunking(index) if checked else None,
        mmap=mmap,
        vector_store=index.vector_store,
        keyword_index=index.keyword_index,
    )


def live_index(index: IndexSettings, index_dir: Path | None = None) -> LiveIndex:
    """The index a long-running reader answers from: it picks up newly published generations."""
    from quotebot.index.live import LiveIndex

    return LiveIndex(index_dir or index.index_dir, load=partial(load_index, index, index_dir or index.index_dir))


def new_builder(
    index: IndexSettings,
    encoder: DocumentEncoder | None = None,
    *,
    embeds: bool = True,
    export_onnx: bool = True,
    index_dir: Path | None = None,
) -> IndexBuilder:
    """The index writer with the configured chunking and stores.

    Without an ``encoder``, one that ``embeds`` gets the ONNX document encoder of the index
    folder (made now if it has none), so `index add` never imports torch; `index remove`
    embeds nothing (``embeds=False``): its torch ``Embedder`` is never loaded.
    """
    from quotebot.index.builder import IndexBuilder

    if encoder is None:
        if embeds:
            from quotebot.index.onnx_encoder import document_encoder_for

            encoder = document_encoder_for(index_dir or index.index_dir, index.model, index.batch_size)
        else:
            encoder = torch_embedder(index)
    return IndexBuilder(
        encoder,
        index.chunk_tokens,
        index.chunk_overlap,
        export_onnx=export_onnx,
        vector_store=index.vector_store,
        keyword_index=index.keyword_index,
    )


def torch_embedder(index: IndexSettings):
    """The sentence-transformers model (loaded on its first use, not here)."""
    from quotebot.index.embedding import Embedder

    return Embedder(model=index.model, batch_size=index.batch_size)


def query_encoder(
    index: IndexSettings,
    index_dir: Path | None = None,
    *,
    embedder: TextEncoder | None = None,
    torch_model: Callable[[], TextEncoder] | None = None,
) -> TextEncoder:
    """How questions are embedded: ``embedder`` when given, else the index's ONNX export,
    else ``torch_model()`` (a new torch model by default)."""
    if embedder is not None:
        return embedder
    from quotebot.index.onnx_encoder import query_encoder_for

    return query_encoder_for(index_dir or index.index_dir, index.model, torch_model or partial(torch_embedder, index))


def new_retriever(index: QuoteIndex, encoder: TextEncoder, retrieval: RetrievalSettings) -> Retriever:
    from quotebot.retrieval.retriever import Retriever

    return Retriever(index, encoder, **retrieval.model_dump())


def new_bot(
    settings: Settings,
    index_dir: Path | None = None,
    *,
    embedder: TextEncoder | None = None,
    torch_model: Callable[[], TextEncoder] | None = None,
) -> QuoteBot:
    """The chat core over the configured index (or ``index_dir``), following its new
    generations; several bots can share one loaded model (``embedder``, ``torch_model``)."""
    index_dir = index_dir or settings.index.index_dir
    encoder = query_encoder(settings.index, index_dir, embedder=embedder, torch_model=torch_model)
    start = getattr(encoder, "start_warm_up", None)
    if start is not None:
        start()  # the model loads on another core while the chat core is imported and the index read
    from quotebot.bot.chat import QuoteBot

    live = live_index(settings.index, index_dir)
    return QuoteBot(new_retriever(live.index, encoder, settings.retrieval), live)
