"""`quotebot index verify`: every check of the live generation, each problem said exactly.

Loading stops at the first problem; verify goes on, so one run lists everything that is
wrong: file sizes, counts, ids across the three stores, and content hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index import storage
from index.index import (
    IndexMismatchError,
    _chunks_from_records,
    _load_array,
    _read_jsonl,
    _read_manifest,
    _sentences_by_article,
    article_fingerprint,
)
from index.manifest import Manifest
from index.models import Article, Chunk
from index.stores import CorruptIndexError, FaissVectorStore, KeywordIndex

# A stored unit vector may drift this far from length 1 (float16 rounding) and be sound.
NORM_TOLERANCE = 0.01
# At most this many ids are named in one problem line.
SHOWN_IDS = 5


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    summary: str = ""


def verify_index(index_dir: Path) -> VerifyReport:
    report = VerifyReport()
    try:
        generation = storage.current_generation(index_dir)
        manifest = _read_manifest(generation)
    except (storage.IndexMissingError, CorruptIndexError, IndexMismatchError) as error:
        report.problems.append(str(error))
        return report
    _check_sizes(generation, manifest, report)
    articles = _attempt(report, lambda: [Article.model_validate(r) for r in _read_jsonl(generation / storage.ARTICLES_FILE)])
    chunks = _attempt(report, lambda: _chunks_from_records(_read_jsonl(generation / storage.CHUNKS_FILE), generation))
    if articles is not None:
        _check_articles(generation, manifest, articles, report)
    if chunks is not None:
        _check_chunk_ids(generation, manifest, chunks, report)
        if articles is not None:
            _check_chunk_spans(generation, articles, chunks, report)
            _check_sentences(generation, manifest, articles, chunks, report)
    if not report.problems:
        counts = manifest.counts
        report.summary = (
            f"{counts.articles:,} articles, {counts.chunks:,} chunks, {counts.sentences:,} sentences "
            f"in {generation} ({manifest.vector_index} vectors); ids and hashes agree"
        )
    return report


def _attempt(report: VerifyReport, read):
    try:
        return read()
    except (CorruptIndexError, ValueError) as error:
        report.problems.append(str(error).splitlines()[0])
        return None


def _check_sizes(generation: Path, manifest: Manifest, report: VerifyReport) -> None:
    for name, size in manifest.file_sizes.items():
        path = generation / name
        actual = path.stat().st_size if path.is_file() else None
        if actual is None:
            report.problems.append(f"{path}: missing")
        elif actual != size:
            report.problems.append(f"{path}: {actual} bytes, the manifest says {size} (truncated or overwritten)")


def _check_articles(generation: Path, manifest: Manifest, articles: list[Article], report: VerifyReport) -> None:
    where = generation / storage.ARTICLES_FILE
    if len(articles) != manifest.counts.articles:
        report.problems.append(f"{where}: {len(articles)} articles, the manifest says {manifest.counts.articles}")
    for article in articles:
        expected = manifest.article_hashes.get(article.id)
        if expected is None:
            report.problems.append(f"{where}: article '{article.id}' is not in the manifest")
        elif expected != article_fingerprint(article):
            report.problems.append(f"{where}: article '{article.id}' does not match its hash (text or title changed)")
    missing = set(manifest.article_hashes) - {article.id for article in articles}
    if missing:
        report.problems.append(f"{where}: the manifest lists articles that are missing: {_some(missing)}")


def _check_chunk_ids(generation: Path, manifest: Manifest, chunks: dict[int, Chunk], report: VerifyReport) -> None:
    expected = np.fromiter(chunks.keys(), dtype=np.int64, count=len(chunks))
    if len(chunks) != manifest.counts.chunks:
        report.problems.append(f"{generation / storage.CHUNKS_FILE}: {len(chunks)} chunks, the manifest says {manifest.counts.chunks}")
    if len(expected) and expected.max() >= manifest.next_chunk_id:
        report.problems.append(f"{generation / storage.CHUNKS_FILE}: chunk ids reach {expected.max()}, "
                               f"at or past the manifest's next_chunk_id {manifest.next_chunk_id}")
    path = generation / storage.CHUNK_VECTORS_FILE
    vectors = _attempt(report, lambda: FaissVectorStore.load(path, mmap=True))
    if vectors is not None:
        _compare_ids(path, "vector store", vectors.ids(), expected, report)
    path = generation / storage.KEYWORD_DIR
    keywords = _attempt(report, lambda: KeywordIndex.load(path))
    if keywords is not None:
        _compare_ids(path, "BM25 index", keywords.ids, expected, report)
        if len(keywords.ids) == len(expected) and not np.array_equal(keywords.ids, expected):
            report.problems.append(f"{path}: BM25 rows are not in chunk order")


def _compare_ids(path: Path, store: str, found: np.ndarray, expected: np.ndarray, report: VerifyReport) -> None:
    found_set, expected_set = set(found.tolist()), set(expected.tolist())
    if len(found_set) != len(found):
        report.problems.append(f"{path}: the {store} holds some ids twice")
    missing, extra = expected_set - found_set, found_set - expected_set
    if missing:
        report.problems.append(f"{path}: the {store} lacks {len(missing)} chunk id(s): {_some(missing)}")
    if extra:
        report.problems.append(f"{path}: the {store} holds {len(extra)} id(s) of no chunk: {_some(extra)}")


def _check_chunk_spans(generation: Path, articles: list[Article], chunks: dict[int, Chunk], report: VerifyReport) -> None:
    lengths = {article.id: len(article.text) for article in articles}
    where = generation / storage.CHUNKS_FILE
    for chunk_id, chunk in chunks.items():
        length = lengths.get(chunk.article_id)
        if length is None:
            report.problems.append(f"{where}: chunk {chunk_id} belongs to unknown article '{chunk.article_id}'")
        elif not (0 <= chunk.start < chunk.end <= length) or any(s.end > length for s in chunk.sentences):
            report.problems.append(f"{where}: chunk {chunk_id} of '{chunk.article_id}' reaches past the article's text")


def _check_sentences(
    generation: Path, manifest: Manifest, articles: list[Article], chunks: dict[int, Chunk], report: VerifyReport
) -> None:
    path = generation / storage.SENTENCE_VECTORS_FILE
    vectors = _attempt(report, lambda: _load_array(path, True))
    if vectors is None:
        return
    sentences = _sentences_by_article(chunks.values())
    expected = sum(len(sentences.get(article.id, ())) for article in articles)
    if len(vectors) != expected or len(vectors) != manifest.counts.sentences:
        report.problems.append(f"{path}: {len(vectors)} sentence vectors for {expected} sentences "
                               f"(manifest: {manifest.counts.sentences})")
    if vectors.ndim != 2 or vectors.shape[1] != manifest.dimension:
        report.problems.append(f"{path}: vectors of shape {vectors.shape}, the model gives {manifest.dimension}")
        return
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float32), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1) > NORM_TOLERANCE))
    if len(bad):
        report.problems.append(f"{path}: {len(bad)} sentence vector(s) are not unit length (rows {_some(bad.tolist())})")


def _some(items) -> str:
    ordered = sorted(items, key=str)
    shown = ", ".join(str(item) for item in ordered[:SHOWN_IDS])
    return shown + (f" and {len(ordered) - SHOWN_IDS} more" if len(ordered) > SHOWN_IDS else "")
