"""The on-disk layout of an index and its atomic replacement.

``index_dir`` holds generation folders (``gen-...``) and a ``CURRENT`` file naming the
live one. A build writes a new generation beside the old, then replaces ``CURRENT`` with
``os.replace``, which is atomic: a reader, a crash or a ``kill -9`` sees either the old
index or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid
from collections.abc import Collection
from pathlib import Path

from quotebot.index.errors import IndexMissingError
from quotebot.index.lazyre import lazy

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


# CURRENT holds one generation name and a newline; it is never read past this many bytes
# (pointed at /dev/zero or a huge file, an unbounded read would exhaust memory).
MAX_CURRENT_BYTES = 256
# What a generation name looks like: what ``new_generation`` makes, and nothing else (no
# path separators, no "..": CURRENT can only name a folder directly inside the index).
GENERATION_NAME = lazy(rf"^{GENERATION_PREFIX}[A-Za-z0-9_.-]{{1,100}}$")


class BadCurrentError(IndexMissingError):
    """``CURRENT`` is not a small file naming a generation inside the index folder.

    Its content is never shown: it may be anything, a symlink to a secret included.
    """


def _read_current(index_dir: Path) -> str | None:
    """The generation name CURRENT holds (validated), or None when there is no CURRENT."""
    path = index_dir / CURRENT_FILE
    rebuild = "run `quotebot index build`"
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise BadCurrentError(f"{path}: not a regular file: {rebuild}")
            raw = handle.read(MAX_CURRENT_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BadCurrentError(f"{path}: is a folder, not the index's pointer file: {rebuild}") from None
    except OSError as error:
        raise BadCurrentError(f"{path}: cannot read ({error.strerror or error}): {rebuild}") from None
    if len(raw) > MAX_CURRENT_BYTES:
        raise BadCurrentError(f"{path}: longer than {MAX_CURRENT_BYTES} bytes, not a generation name: {rebuild}")
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadCurrentError(f"{path}: not a generation name (not plain text): {rebuild}") from None
    if not GENERATION_NAME.match(name):
        raise BadCurrentError(f"{path}: does not hold a generation name ({GENERATION_PREFIX}...): {rebuild}")
    return name


def current_generation(index_dir: Path) -> Path:
    """The folder of the live generation, or ``IndexMissingError``."""
    name = _read_current(index_dir)
    if name is None:
        raise IndexMissingError(f"no index at {index_dir}: run `quotebot index build`")
    generation = index_dir / name
    inside = generation.resolve().parent == index_dir.resolve()
    if not generation.is_dir() or not inside:
        raise IndexMissingError(f"{index_dir / CURRENT_FILE}: names a missing generation '{name}': run `quotebot index build`")
    return generation


def current_name(index_dir: Path) -> str | None:
    """The name ``CURRENT`` holds, or None: cheap enough to read before every question."""
    try:
        return _read_current(index_dir)
    except BadCurrentError:
        return None


def new_generation(index_dir: Path) -> Path:
    """A fresh, empty generation folder to write a build into."""
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    generation = index_dir / f"{GENERATION_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    generation.mkdir()
    return generation


def publish(generation: Path, synced: Collection[str] = ()) -> None:
    """Make ``generation`` the live index, atomically, then drop the generations it replaced.
    ``synced``: files of it (relative names) already synced to disk since they were last
    written, which need no second sync (each costs a few ms even with nothing to write)."""
    _fsync_tree(generation, skip=synced)
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


def _fsync_tree(folder: Path, skip: Collection[str] = ()) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and str(path.relative_to(folder)) not in skip:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
