"""Eval indexes cached by content hash: a rerun over the same file only re-asks.

The key covers everything the index depends on: the corpus file's bytes, the way it is
turned into articles, the embedding model, the chunking and the index format. A change to
any of them gives a new key (a new folder); a folder whose build was interrupted has no
live generation and is simply built again (``IndexBuilder`` publishes atomically).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from quotebot.index.articles import Article
from quotebot.index.builder import BuildProgress, IndexBuilder
from quotebot.index.errors import CorruptIndexError, IndexMismatchError, IndexMissingError
from quotebot.index.loaders import load_articles
from quotebot.index.manifest import FORMAT_VERSION, ChunkingSettings
from quotebot.index.onnx_encoder import link_query_encoder
from quotebot.index import storage
from quotebot.index.reader import QuoteIndex
from quotebot.index.vectorize import EMBEDDING_RECIPE
from quotebot.retrieval.evaluation.squad import CORPUS_VERSION, SquadSet

# How a corpus file becomes articles, part of the cache key.
SQUAD_CORPUS = f"squad-paragraphs-v{CORPUS_VERSION}"
ARTICLE_FILE_CORPUS = "load_articles-v1"
NEWS_CORPUS = "news-question-articles-v1"  # the articles of a news question set, from its corpus files


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


def subset_index(
    source: CachedIndex,
    article_ids: Sequence[str],
    index_dir: Path,
    builder: IndexBuilder,
) -> CachedIndex:
    return derived_index(source, [source.index.articles[a] for a in article_ids], index_dir, builder)


def derived_index(
    source: CachedIndex,
    articles: Sequence[Article],
    index_dir: Path,
    builder: IndexBuilder,
    *,
    embed_new: bool = False,
    on_progress: Callable[[BuildProgress], None] | None = None,
) -> CachedIndex:
    """An index of exactly ``articles``, made from ``source`` without embedding its articles again.

    It is made as a user's index is updated: ``index_dir`` is seeded with the source's live
    generation (hard links, so no bytes are copied), then ``IndexBuilder.build`` makes it
    hold exactly these articles: their chunks, vectors and tokens are kept (same title and
    text), every other article is removed, and BM25 is built over the kept chunks alone, so
    its statistics are those of the new corpus. Articles the source does not hold are
    embedded only with ``embed_new`` (a whole corpus grown from a cached one); without it,
    having to embed anything is an error. The result equals a fresh build of the
    articles (the update tests check that round trip), at the cost of a copy, not an embedding.
    A folder already holding exactly these articles is reused; anything else (an interrupted
    build, a seed never narrowed) is made again. It gets no query encoder of its own: questions
    are embedded by the source's.
    """
    wanted = [article.id for article in articles]
    try:
        index = _load(index_dir, builder)
        if list(index.articles) == wanted:
            return CachedIndex(index, index_dir, False)
    except (IndexMissingError, CorruptIndexError, IndexMismatchError):
        pass
    _seed(source.index_dir, index_dir)
    change = builder.build(articles, index_dir, on_progress=on_progress)
    if change.embedded_chunks and not embed_new:
        raise AssertionError(f"{index_dir}: a subset index embedded {change.embedded_chunks} chunks again")
    return CachedIndex(_load(index_dir, builder), index_dir, True)


def _load(index_dir: Path, builder: IndexBuilder) -> QuoteIndex:
    return QuoteIndex.load(
        index_dir,
        model=builder.embedder.model,
        chunking=builder.chunking,
        vector_store=builder.vector_store,
        keyword_index=builder.keyword_index,
    )


def _seed(source_dir: Path, index_dir: Path) -> None:
    """Make ``source_dir``'s live generation the live generation of ``index_dir`` (hard links).

    Generations are never written in place (only replaced, then deleted), so sharing their
    files between two index folders is safe: deleting one folder's link leaves the other's.
    """
    generation = storage.current_generation(source_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    seeded = index_dir / generation.name
    if not seeded.is_dir():
        staging = index_dir / f".seed-{generation.name}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(generation, staging, copy_function=_link_or_copy)
        staging.rename(seeded)
    pending = index_dir / f".{storage.CURRENT_FILE}.seed"
    pending.write_text(generation.name + "\n", encoding="utf-8")
    os.replace(pending, index_dir / storage.CURRENT_FILE)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copy2(source, target)
