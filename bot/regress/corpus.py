"""Indexes of fixture corpora, built once and cached by content and index settings.

The cache key is a hash of every loaded article (id, title, text, metadata; not where the
file lives) and of what the index depends on (format, model, chunking). A rerun with the
same articles and settings finds ``<cache>/<key>`` and only re-asks; any change to an
article, the model or the chunking is a new key and a new build. A build is written to a
hidden folder and renamed into place, so a crash or a concurrent run never leaves a half
index under a key.

Like ``quotebot index build``, every cached index carries the ONNX query encoder, so the
bot answers fixture questions exactly as it answers users, without torch. The export
depends only on the model: it is made once per cache and linked into each index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from quotebot.bot import wiring
from quotebot.index import storage
from quotebot.index.articles import Article
from quotebot.index.embedding import Embedder
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.loaders import SkippedInput, load_articles
from quotebot.index.manifest import FORMAT_VERSION
from quotebot.index.onnx_encoder import link_query_encoder
from quotebot.index.settings import IndexSettings
from quotebot.index.vectorize import EMBEDDING_RECIPE

CACHE_FOLDER = "regress-cache"
KEY_FILE = "corpus.json"  # what the key was made of, for people looking into the cache


class CorpusError(QuotebotError):
    """A fixture corpus that holds no article."""

    exit_code = ExitCode.USAGE


def default_cache_root(index_settings: IndexSettings) -> Path:
    """``regress-cache`` beside the configured index (``.quotebot/regress-cache``)."""
    return index_settings.index_dir.parent / CACHE_FOLDER


def corpus_key(articles: Sequence[Article], index_settings: IndexSettings) -> str:
    digest = hashlib.sha256()
    built_with = {
        "format": FORMAT_VERSION,
        "embedding": EMBEDDING_RECIPE,
        "model": index_settings.model,
        "chunk_tokens": index_settings.chunk_tokens,
        "chunk_overlap": index_settings.chunk_overlap,
    }
    digest.update(json.dumps(built_with, sort_keys=True).encode())
    for article in articles:
        record = article.model_dump(mode="json", exclude={"source"})
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def cached_index(
    paths: Sequence[Path],
    index_settings: IndexSettings,
    embedder: Embedder,
    cache_root: Path,
    *,
    on_skip: Callable[[SkippedInput], None] | None = None,
    on_build: Callable[[int, Path], None] | None = None,
) -> Path:
    """The folder of an index of the articles under ``paths``: cached, or built now.

    ``on_build(articles, folder)`` is called before a build (not on a cache hit).
    """
    report = load_articles(paths, on_skip=on_skip, max_article_chars=index_settings.max_article_chars)
    if not report.articles:
        raise CorpusError(f"no articles found in {', '.join(map(str, paths))}")
    key = corpus_key(report.articles, index_settings)
    target = cache_root / key
    if _complete(target):
        return target
    if on_build is not None:
        on_build(len(report.articles), target)
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = cache_root / f".building-{key[:8]}-{uuid.uuid4().hex[:8]}"
    try:
        builder = wiring.new_builder(index_settings, embedder, export_onnx=False)
        builder.build(report.articles, staging)
        link_query_encoder(staging, index_settings.model, cache_root)
        description = {
            "paths": [str(path) for path in paths],
            "articles": [article.id for article in report.articles],
            "model": index_settings.model,
            "chunk_tokens": index_settings.chunk_tokens,
            "chunk_overlap": index_settings.chunk_overlap,
        }
        (staging / KEY_FILE).write_text(json.dumps(description, indent=2, ensure_ascii=False), encoding="utf-8")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(folder: Path) -> bool:
    return (folder / storage.CURRENT_FILE).is_file()


def _move_into_place(staging: Path, target: Path) -> None:
    if target.exists() and not _complete(target):
        shutil.rmtree(target, ignore_errors=True)  # left by hand or by an older quotebot: not ours to trust
    try:
        os.rename(staging, target)  # atomic; fails if another run put the same index there first
    except OSError:
        if not _complete(target):
            raise
