"""The on-disk layout of an index and its atomic replacement.

``index_dir`` holds generation folders (``gen-...``) and a ``CURRENT`` file naming the
live one. A build writes a new generation beside the old, then replaces ``CURRENT`` with
``os.replace``, which is atomic: a reader, a crash or a ``kill -9`` sees either the old
index or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from quotebot.index.errors import IndexMissingError

__all__ = ["IndexMissingError", "current_generation", "current_name", "new_generation", "publish"]

CURRENT_FILE = "CURRENT"
GENERATION_PREFIX = "gen-"
MANIFEST_FILE = "manifest.json"
ARTICLES_FILE = "articles.jsonl"  # one record per article: id, title, date, url, source, metadata
ARTICLE_ROWS_FILE = "articles.npy"  # per article: text byte range, chunk and sentence counts
ARTICLE_TEXTS_FILE = "article_texts.bin"  # every article's text, UTF-8, verbatim, back to back
CHUNKS_FILE = "chunks.npy"  # per chunk: id, article, offsets, sentences
SENTENCES_FILE = "sentences.npy"  # per sentence: start and end offsets
CHUNK_VECTORS_FILE = "chunk_vectors.faiss"
SENTENCE_VECTORS_FILE = "sentence_vectors.npy"
KEYWORD_DIR = "bm25"
CHUNK_TOKENS_FILE = "chunk_tokens.txt"  # each chunk's BM25 tokens, a line each, for updates


def current_generation(index_dir: Path) -> Path:
    """The folder of the live generation, or ``IndexMissingError``."""
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissingError(f"no index at {index_dir}: run `quotebot index build`") from None
    generation = index_dir / name
    if not name.startswith(GENERATION_PREFIX) or not generation.is_dir():
        raise IndexMissingError(f"{index_dir / CURRENT_FILE}: names a missing generation '{name}': run `quotebot index build`")
    return generation


def current_name(index_dir: Path) -> str | None:
    """The name ``CURRENT`` holds, or None: cheap enough to read before every question."""
    try:
        return (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def new_generation(index_dir: Path) -> Path:
    """A fresh, empty generation folder to write a build into."""
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    generation = index_dir / f"{GENERATION_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    generation.mkdir()
    return generation


def publish(generation: Path) -> None:
    """Make ``generation`` the live index, atomically, then drop the generations it replaced."""
    _fsync_tree(generation)
    index_dir = generation.parent
    pending = index_dir / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}"
    with open(pending, "w", encoding="utf-8") as handle:
        handle.write(generation.name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pending, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    remove_stale_generations(index_dir)


def remove_stale_generations(index_dir: Path) -> None:
    """Delete every generation but the live one (old ones, and builds that never finished)."""
    try:
        live = current_generation(index_dir).name
    except IndexMissingError:
        live = None
    for path in index_dir.glob(f"{GENERATION_PREFIX}*"):
        if path.name != live:
            shutil.rmtree(path, ignore_errors=True)


def discard(generation: Path) -> None:
    shutil.rmtree(generation, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
