"""Reading one generation's files, with every failure turned into a one-line error naming
the file: a damaged index is reported, never a crash or a silently empty index."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from quotebot.index import storage
from quotebot.index.errors import CorruptIndexError, IndexMismatchError
from quotebot.index.manifest import FORMAT_VERSION, ChunkingSettings, Manifest
from quotebot.index.tables import ARTICLE_ROW, CHUNK_ROW, ArticleTable, ChunkTable

if TYPE_CHECKING:
    from concurrent.futures import Future

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


CHECKSUM_ALGORITHM = "sha256"  # ~600 MB/s here (bench/checksum_speed.py): seconds even for a 1M-chunk index


def file_checksum(path: Path) -> str:
    with open(path, "rb") as handle:
        return f"{CHECKSUM_ALGORITHM}:{hashlib.file_digest(handle, CHECKSUM_ALGORITHM).hexdigest()}"


def file_checksums(generation: Path) -> dict[str, str]:
    """A checksum of every file of a generation but the manifest, which records them."""
    return {name: file_checksum(generation / name) for name in file_sizes(generation)}


class Finisher:
    """Checksums each file of a generation being written, and syncs it to disk, in a thread,
    as soon as the writer says it is ``written`` (never changed after): reading it back and
    waiting for the disk overlap the writing of the next files instead of following them all
    (hashlib and fsync release the GIL). ``checksums()`` is ``file_checksums`` of the
    generation. Publishing still syncs every file (``storage.publish``); the early sync only
    leaves it less to wait for."""

    def __init__(self, generation: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.generation = generation
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="quotebot-finish")
        self._checksums: dict[str, Future[str]] = {}

    def written(self, *names: str) -> None:
        for name in names:
            self._checksums[name] = self._pool.submit(_checksum_and_sync, self.generation / name)

    def sync(self, name: str) -> None:
        """Sync what a file still being written holds so far (in turn with the others): when it
        is ``written``, only what came after is left for the disk."""
        self._pool.submit(_sync, self.generation / name)

    def checksums(self) -> dict[str, str]:
        return {
            name: self._checksums[name].result() if name in self._checksums else file_checksum(self.generation / name)
            for name in file_sizes(self.generation)
        }

    def synced(self) -> set[str]:
        """The files it has synced (after ``checksums()``: every file the writer said it wrote)."""
        return {name for name, done in self._checksums.items() if done.done() and done.exception() is None}

    def __enter__(self) -> Finisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fdatasync(handle.fileno())


def _checksum_and_sync(path: Path) -> str:
    with open(path, "rb") as handle:
        checksum = f"{CHECKSUM_ALGORITHM}:{hashlib.file_digest(handle, CHECKSUM_ALGORITHM).hexdigest()}"
        os.fsync(handle.fileno())
    return checksum


def checksum_problems(generation: Path, manifest: Manifest) -> list[str]:
    """Files whose bytes changed since the build (same size or not); reads every file once."""
    problems = []
    for name, expected in manifest.file_checksums.items():
        path = generation / name
        if not path.is_file():
            continue  # size_problems reports it missing
        try:
            actual = file_checksum(path)
        except OSError as error:
            problems.append(f"{path}: cannot read ({error.strerror or error})")
            continue
        if actual != expected:
            problems.append(f"{path}: its content does not match the checksum in the manifest (damaged)")
    return problems


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
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: {REBUILD}") from None
    except OSError as error:
        raise CorruptIndexError(f"{path}: cannot read ({error.strerror or error}): {REBUILD}") from None
    lines = record_lines(data)
    # All lines as one JSON array: one parse instead of one per article (half the time). A
    # damaged file is read again line by line, to name the line.
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
    except (ValueError, RecursionError):
        records = None
    if isinstance(records, list) and len(records) == len(lines):
        return records
    records = []
    for number, line in enumerate(lines, 1):
        try:
            # Decoded line by line: a decode error is then reported at its own line.
            records.append(json.loads(line.decode("utf-8")))
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise CorruptIndexError(f"{path}:{number}: damaged index file: {REBUILD}") from None
    return records


def record_lines(data: bytes) -> list[bytes]:
    """The lines of a records file (each line one record; the last ends with a newline)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def load_array(path: Path, mmap_mode: bool, dtype: np.dtype | None = None) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap_mode else None, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing index file: {REBUILD}") from None
    except (OSError, ValueError):
        # numpy's message may quote the file's bytes and suggest allow_pickle: neither helps.
        raise CorruptIndexError(f"{path}: not a valid .npy array (damaged): {REBUILD}") from None
    if dtype is not None and array.dtype != dtype:
        raise CorruptIndexError(f"{path}: rows of type {array.dtype}, expected {dtype}: {REBUILD}")
    # A plain array over the same map: indexing an np.memmap goes through Python-level
    # __getitem__/__array_finalize__, a quarter of a millisecond per question for the rows
    # a question reads one by one. The map lives as long as the view (its base).
    return np.asarray(array) if mmap_mode else array


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
    _check_bounds(generation, articles, chunk_rows, sentences)
    return articles, ChunkTable(chunk_rows, sentences, articles)


def _check_bounds(generation: Path, articles: ArticleTable, chunks: np.ndarray, sentences: np.ndarray) -> None:
    """What a query indexes with must point inside what it indexes: an out-of-range value
    would be an IndexError (or a wrong article) at question time. Vectorised, one pass."""
    rows = articles.rows
    problem: tuple[str, str] | None = None  # (file, what is wrong)
    if len(rows) and (
        (rows["text_start"] < 0).any() or (rows["text_end"] < rows["text_start"]).any()
        or (rows["chunks"] < 0).any() or (rows["sentences"] < 0).any()
    ):
        problem = (storage.ARTICLE_ROWS_FILE, "an article row is out of range")
    elif int(articles.chunk_base[-1]) != len(chunks) or int(articles.sentence_base[-1]) != len(sentences):
        problem = (storage.ARTICLE_ROWS_FILE, f"chunk or sentence counts disagree with {storage.CHUNKS_FILE}")
    elif len(chunks):
        owner = chunks["article"]
        if (owner < 0).any() or (owner >= len(rows)).any():
            problem = (storage.CHUNKS_FILE, "a chunk belongs to no article")
        else:
            last = chunks["first_sentence"].astype(np.int64) + chunks["sentence_count"]
            if (chunks["first_sentence"] < 0).any() or (chunks["sentence_count"] < 0).any() or (last > rows["sentences"][owner]).any():
                problem = (storage.CHUNKS_FILE, "a chunk's sentences lie outside its article")
            elif (chunks["start"] < 0).any() or (chunks["end"] < chunks["start"]).any():
                problem = (storage.CHUNKS_FILE, "a chunk's offsets are out of range")
    if problem is None and len(sentences) and ((sentences[:, 0] < 0).any() or (sentences[:, 1] < sentences[:, 0]).any()):
        problem = (storage.SENTENCES_FILE, "a sentence span is out of range")
    if problem is not None:
        name, what = problem
        raise CorruptIndexError(f"{generation / name}: damaged index file ({what}): {REBUILD}")
