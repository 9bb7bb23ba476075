"""`quotebot index verify`: every check of the live generation, each problem said exactly.

Loading stops at the first problem; verify goes on, so one run lists everything that is
wrong: file sizes, counts, ids across the stores, spans, vectors and content hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quotebot.index import generation_files as files
from quotebot.index import storage
from quotebot.index.errors import CorruptIndexError, IndexMismatchError
from quotebot.index.manifest import Manifest, article_fingerprint
from quotebot.index.backends import UnknownBackendError, open_keyword_index, open_vector_store
from quotebot.index.tables import ArticleTable, ChunkTable

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
        manifest = files.read_manifest(generation)
    except (storage.IndexMissingError, CorruptIndexError, IndexMismatchError) as error:
        report.problems.append(str(error))
        return report
    report.problems.extend(files.size_problems(generation, manifest))
    if manifest.file_checksums:
        report.problems.extend(files.checksum_problems(generation, manifest))
    else:
        report.problems.append(
            f"{generation / storage.MANIFEST_FILE}: no file checksums (built by an older quotebot): "
            "run `quotebot index build` so damage can be detected"
        )
    tables = _attempt(report, lambda: files.read_tables(generation, mmap_mode=True))
    if tables is not None:
        articles, chunks = tables
        _check_articles(generation, manifest, articles, report)
        _check_chunks(generation, manifest, articles, chunks, report)
        _check_stores(generation, manifest, chunks, report)
        _check_sentence_vectors(generation, manifest, chunks, report)
    if not report.problems:
        counts = manifest.counts
        report.summary = (
            f"{counts.articles:,} articles, {counts.chunks:,} chunks, {counts.sentences:,} sentences "
            f"in {generation} ({_describe(manifest)}); ids and hashes agree"
        )
    return report


def _attempt(report: VerifyReport, read):
    try:
        return read()
    except (CorruptIndexError, UnknownBackendError, ValueError, IndexError, KeyError) as error:
        report.problems.append(str(error).splitlines()[0])
        return None


def _check_articles(generation: Path, manifest: Manifest, articles: ArticleTable, report: VerifyReport) -> None:
    where = generation / storage.ARTICLE_TEXTS_FILE
    if len(articles) != manifest.counts.articles:
        report.problems.append(f"{generation / storage.ARTICLES_FILE}: {len(articles)} articles, "
                               f"the manifest says {manifest.counts.articles}")
    for position, article_id in enumerate(articles):
        expected = manifest.article_hashes.get(article_id)
        try:
            article = articles.at(position)
        except (UnicodeDecodeError, ValueError):
            report.problems.append(f"{where}: the text of article '{article_id}' is not valid UTF-8")
            continue
        if expected is None:
            report.problems.append(f"{generation / storage.ARTICLES_FILE}: article '{article_id}' is not in the manifest")
        elif expected != article_fingerprint(article):
            report.problems.append(f"{where}: article '{article_id}' does not match its hash (text or title changed)")
    missing = set(manifest.article_hashes) - set(articles)
    if missing:
        report.problems.append(f"{generation / storage.ARTICLES_FILE}: the manifest lists articles that are missing: {_some(missing)}")


def _check_chunks(
    generation: Path, manifest: Manifest, articles: ArticleTable, chunks: ChunkTable, report: VerifyReport
) -> None:
    where = generation / storage.CHUNKS_FILE
    rows = chunks.rows
    if len(rows) != manifest.counts.chunks or len(rows) != articles.chunk_base[-1]:
        report.problems.append(f"{where}: {len(rows)} chunks, the manifest says {manifest.counts.chunks}, "
                               f"the articles {articles.chunk_base[-1]}")
        return
    if len(np.unique(rows["id"])) != len(rows):
        report.problems.append(f"{where}: some chunk ids appear twice")
    if len(rows) and int(rows["id"].max()) >= manifest.next_chunk_id:
        report.problems.append(f"{where}: chunk ids reach {rows['id'].max()}, at or past next_chunk_id {manifest.next_chunk_id}")
    owners = np.repeat(np.arange(len(articles)), articles.rows["chunks"])
    if not np.array_equal(rows["article"], owners):
        report.problems.append(f"{where}: chunks are not grouped by their articles")
        return
    lengths = articles.rows["text_end"] - articles.rows["text_start"]  # bytes >= characters
    bad = np.flatnonzero((rows["start"] < 0) | (rows["end"] <= rows["start"]) | (rows["end"] > lengths[rows["article"]]))
    if len(bad):
        report.problems.append(f"{where}: {len(bad)} chunk(s) reach outside their article's text: ids {_some(rows['id'][bad].tolist())}")


def _describe(manifest: Manifest) -> str:
    ref = manifest.vector_store
    return f"{ref.backend} {ref.params['kind']} vectors" if "kind" in ref.params else f"{ref.backend} vectors"


def _check_stores(generation: Path, manifest: Manifest, chunks: ChunkTable, report: VerifyReport) -> None:
    expected = chunks.ids
    path = generation / manifest.vector_store.path
    vectors = _attempt(report, lambda: open_vector_store(generation, manifest.vector_store, mmap=True))
    if vectors is not None:
        _compare_ids(path, "vector store", vectors.ids(), expected, report)
    path = generation / manifest.keyword_index.path
    keywords = _attempt(report, lambda: open_keyword_index(generation, manifest.keyword_index, mmap=False))
    if keywords is not None:
        keyword_ids = keywords.ids()
        _compare_ids(path, "keyword index", keyword_ids, expected, report)
        if len(keyword_ids) == len(expected) and not np.array_equal(keyword_ids, expected):
            report.problems.append(f"{path}: keyword index rows are not in chunk order")
    path = generation / storage.CHUNK_TOKENS_FILE
    try:
        lines = path.read_bytes().count(b"\n")
    except OSError:
        lines = None
    if lines != len(expected):
        report.problems.append(f"{path}: {lines} token lines for {len(expected)} chunks")


def _compare_ids(path: Path, store: str, found: np.ndarray, expected: np.ndarray, report: VerifyReport) -> None:
    found_set, expected_set = set(found.tolist()), set(expected.tolist())
    if len(found_set) != len(found):
        report.problems.append(f"{path}: the {store} holds some ids twice")
    missing, extra = expected_set - found_set, found_set - expected_set
    if missing:
        report.problems.append(f"{path}: the {store} lacks {len(missing)} chunk id(s): {_some(missing)}")
    if extra:
        report.problems.append(f"{path}: the {store} holds {len(extra)} id(s) of no chunk: {_some(extra)}")


def _check_sentence_vectors(generation: Path, manifest: Manifest, chunks: ChunkTable, report: VerifyReport) -> None:
    path = generation / storage.SENTENCE_VECTORS_FILE
    vectors = _attempt(report, lambda: files.load_array(path, True))
    if vectors is None:
        return
    if len(vectors) != len(chunks.sentences) or len(vectors) != manifest.counts.sentences:
        report.problems.append(f"{path}: {len(vectors)} sentence vectors for {len(chunks.sentences)} sentences "
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
