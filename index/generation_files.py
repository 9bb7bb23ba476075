"""Reading one generation's files, with every failure turned into a one-line error naming
the file: a damaged index is reported, never a crash or a silently empty index."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from quotebot.index import storage
from quotebot.index.errors import CorruptIndexError, IndexMismatchError
from quotebot.index.manifest import FORMAT_VERSION, ChunkingSettings, Manifest
from quotebot.index.tables import ARTICLE_ROW, CHUNK_ROW, ArticleTable, ChunkTable

REBUILD = "run `quotebot index build`"


def read_manifest(generation: Path) -> Manifest:
    path = generation / storage.MANIFEST_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing manifest: {REBUILD}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptIndexError(f"{path}: damaged manifest: {REBUILD}") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {version} at {generation.parent}, this quotebot reads format {FORMAT_VERSION}: "
            f"{REBUILD} to rebuild it"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError:
        raise CorruptIndexError(f"{path}: damaged manifest: {REBUILD}") from None


def check_compatible(manifest: Manifest, index_dir: Path, model: str | None, chunking: ChunkingSettings | None) -> None:
    rebuild = f"{REBUILD} to rebuild {index_dir}"
    if model is not None and manifest.model != model:
        raise IndexMismatchError(f"index was built with model '{manifest.model}', config says '{model}': {rebuild}")
    if chunking is not None and manifest.chunking != chunking:
        built = manifest.chunking
        raise IndexMismatchError(
            f"index was built with chunk_tokens={built.chunk_tokens}, chunk_overlap={built.chunk_overlap}; "
            f"config says chunk_tokens={chunking.chunk_tokens}, chunk_overlap={chunking.chunk_overlap}: {rebuild}"
        )


def file_sizes(generation: Path) -> dict[str, int]:
    return {
        str(path.relative_to(generation)): path.stat().st_size
        for path in sorted(generation.rglob("*"))
        if path.is_file() and path.name != storage.MANIFEST_FILE
    }


def size_problems(generation: Path, manifest: Manifest) -> list[str]:
    problems = []
    for name, size in manifest.file_sizes.items():
        path = generation / name
        actual = path.stat().st_size if path.is_file() else None
        if actual is None:
            problems.append(f"{path}: missing")
        elif actual != size:
            problems.append(f"{path}: {actual} bytes, the manifest says {size} (truncated or overwritten)")
    return problems


def check_file_sizes(generation: Path, manifest: Manifest) -> None:
    problems = size_problems(generation, manifest)
    if problems:
        raise CorruptIndexError(f"damaged index file: {problems[0]}: {REBUILD}")


def read_records(path: Path) -> list[dict]:
    records = []
    number = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                records.append(json.loads(line))
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: {REBUILD}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptIndexError(f"{path}:{number}: damaged index file: {REBUILD}") from None
    return records


def load_array(path: Path, mmap_mode: bool, dtype: np.dtype | None = None) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap_mode else None, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: {REBUILD}") from None
    except (OSError, ValueError) as error:
        raise CorruptIndexError(f"{path}: unreadable array ({error}): {REBUILD}") from None
    if dtype is not None and array.dtype != dtype:
        raise CorruptIndexError(f"{path}: rows of type {array.dtype}, expected {dtype}: {REBUILD}")
    return array


def map_bytes(path: Path) -> mmap.mmap | bytes:
    try:
        with open(path, "rb") as handle:
            if path.stat().st_size == 0:
                return b""
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: {REBUILD}") from None


def read_tables(generation: Path, mmap_mode: bool) -> tuple[ArticleTable, ChunkTable]:
    records = read_records(generation / storage.ARTICLES_FILE)
    rows = load_array(generation / storage.ARTICLE_ROWS_FILE, mmap_mode, ARTICLE_ROW)
    texts = map_bytes(generation / storage.ARTICLE_TEXTS_FILE)
    if len(records) != len(rows):
        raise CorruptIndexError(f"{generation / storage.ARTICLES_FILE}: {len(records)} articles, "
                                f"{storage.ARTICLE_ROWS_FILE} has {len(rows)}: {REBUILD}")
    if not all(isinstance(record, dict) and isinstance(record.get("id"), str) for record in records):
        raise CorruptIndexError(f"{generation / storage.ARTICLES_FILE}: an article record without an id: {REBUILD}")
    if len(rows) and int(rows["text_end"].max()) > len(texts):
        raise CorruptIndexError(f"{generation / storage.ARTICLE_TEXTS_FILE}: shorter than the texts it should hold: {REBUILD}")
    articles = ArticleTable(records, rows, texts)
    chunk_rows = load_array(generation / storage.CHUNKS_FILE, mmap_mode, CHUNK_ROW)
    sentences = load_array(generation / storage.SENTENCES_FILE, mmap_mode)
    if sentences.ndim != 2 or sentences.shape[1:] != (2,):
        raise CorruptIndexError(f"{generation / storage.SENTENCES_FILE}: not a table of spans: {REBUILD}")
    return articles, ChunkTable(chunk_rows, sentences, articles)
