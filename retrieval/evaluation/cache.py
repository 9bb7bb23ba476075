"""Eval indexes cached by content hash: a rerun over the same file only re-asks.

The key covers everything the index depends on: the corpus file's bytes, the way it is
turned into articles, the embedding model, the chunking and the index format. A change to
any of them gives a new key (a new folder); a folder whose build was interrupted has no
live generation and is simply built again (``IndexBuilder`` publishes atomically).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from quotebot.index.articles import Article
from quotebot.index.builder import BuildProgress, IndexBuilder
from quotebot.index.errors import CorruptIndexError, IndexMismatchError, IndexMissingError
from quotebot.index.loaders import load_articles
from quotebot.index.manifest import FORMAT_VERSION, ChunkingSettings
from quotebot.index.onnx_encoder import link_query_encoder
from quotebot.index.reader import QuoteIndex
from quotebot.index.vectorize import EMBEDDING_RECIPE
from quotebot.retrieval.evaluation.squad import CORPUS_VERSION, SquadSet

# How a corpus file becomes articles, part of the cache key.
SQUAD_CORPUS = f"squad-paragraphs-v{CORPUS_VERSION}"
ARTICLE_FILE_CORPUS = "load_articles-v1"


def cache_key(
    *, corpus_sha256: str, corpus_kind: str, model: str, chunking: ChunkingSettings
) -> str:
    """sha256 of the corpus file hash, how it becomes articles, the model, chunking, index format and embedding recipe."""
    parts = {
        "corpus_sha256": corpus_sha256,
        "corpus_kind": corpus_kind,
        "model": model,
        "chunk_tokens": chunking.chunk_tokens,
        "chunk_overlap": chunking.chunk_overlap,
        "index_format": FORMAT_VERSION,
        "embedding": EMBEDDING_RECIPE,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CachedIndex:
    index: QuoteIndex
    index_dir: Path  # cache_dir/key, as `quotebot index build` lays an index folder out
    built: bool  # built by this call (not found in the cache)


def cached_index(
    cache_dir: Path,
    key: str,
    articles: Callable[[], Sequence[Article]],
    builder: IndexBuilder,
    *,
    on_build: Callable[[int], None] | None = None,
    on_progress: Callable[[BuildProgress], None] | None = None,
) -> CachedIndex:
    """The index under ``cache_dir/key``, built from ``articles()`` first if there is none.

    Like an index of `quotebot index build`, it carries the ONNX query encoder, so the bot's
    own choice of encoder (``bot.chat``) picks the same one it answers users with. The export
    depends only on the model: it is made once per cache and linked into each index.
    ``on_build`` is told the article count before a build starts. ``builder`` (from
    quotebot.bot.wiring.new_builder, so with the configured stores) builds it; its model and
    chunking are what the index is checked against.
    """
    index_dir = cache_dir / key
    built = False
    embedder, chunking = builder.embedder, builder.chunking

    def load() -> QuoteIndex:
        return QuoteIndex.load(
            index_dir,
            model=embedder.model,
            chunking=chunking,
            vector_store=builder.vector_store,
            keyword_index=builder.keyword_index,
        )

    try:
        index = load()
    except (IndexMissingError, CorruptIndexError, IndexMismatchError):
        # Never built, interrupted or damaged: (re)build it.
        corpus = articles()
        if on_build:
            on_build(len(corpus))
        builder.build(corpus, index_dir, on_progress=on_progress)
        index = load()
        built = True
    link_query_encoder(index_dir, embedder.model, cache_dir)
    return CachedIndex(index, index_dir, built)


def squad_index(squad: SquadSet, cache_dir: Path, builder: IndexBuilder, **callbacks) -> CachedIndex:
    """The open-corpus index of every paragraph of a SQuAD file."""
    key = cache_key(
        corpus_sha256=squad.sha256, corpus_kind=SQUAD_CORPUS, model=builder.embedder.model, chunking=builder.chunking
    )
    return cached_index(cache_dir, key, lambda: squad.articles, builder, **callbacks)


def article_file_index(path: Path, cache_dir: Path, builder: IndexBuilder, **callbacks) -> CachedIndex:
    """The index of an articles file as `quotebot index build` reads it (e.g. bbc.jsonl)."""
    key = cache_key(
        corpus_sha256=file_sha256(path),
        corpus_kind=ARTICLE_FILE_CORPUS,
        model=builder.embedder.model,
        chunking=builder.chunking,
    )
    return cached_index(cache_dir, key, lambda: load_articles([path]).articles, builder, **callbacks)
