"""The article and chunk tables of an index, as flat arrays on disk and read-only mappings
in memory.

A million chunks as Python objects would cost gigabytes and a minute of parsing; as
numpy rows they cost 28 bytes each and load in milliseconds (memory-mapped). ``Article``
and ``Chunk`` objects are made on access, for the few dozen a question touches.

Articles, chunks and sentences are stored article by article in index order, so one
article's chunks and sentences are contiguous rows: an update copies them as slices.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from quotebot.index.articles import Article, Chunk, Span
from quotebot.index.errors import CorruptIndexError

ARTICLE_ROW = np.dtype(
    [("text_start", "<i8"), ("text_end", "<i8"), ("chunks", "<i4"), ("sentences", "<i4")]
)
CHUNK_ROW = np.dtype(
    [
        ("id", "<i8"),
        ("article", "<i4"),  # the article's position in the index
        ("ordinal", "<i4"),
        ("start", "<i4"),
        ("end", "<i4"),
        ("first_sentence", "<i4"),
        ("sentence_count", "<i4"),
    ]
)
# Articles recently handed out as objects: a question reads the same few again and again.
ARTICLE_CACHE_SIZE = 256
# Chunks likewise (frozen objects: safe to hand out again); a question reads a few dozen.
CHUNK_CACHE_SIZE = 4096


class ArticleTable(Mapping[str, Article]):
    """Article id -> ``Article``, in index order; texts stay in one UTF-8 blob until read."""

    def __init__(self, records: list[dict], rows: np.ndarray, texts: bytes | mmap.mmap | np.ndarray) -> None:
        self.records = records  # id, title, date, url, source, metadata: everything but the text
        self.rows = rows
        self._texts = texts
        self._position = {record["id"]: number for number, record in enumerate(records)}
        self._article = lru_cache(maxsize=ARTICLE_CACHE_SIZE)(self._make_article)
        starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(rows["chunks"], out=starts[1:])
        self.chunk_base = starts
        sentence_starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(rows["sentences"], out=sentence_starts[1:])
        self.sentence_base = sentence_starts

    def __getitem__(self, article_id: str) -> Article:
        return self._article(self._position[article_id])

    def __iter__(self) -> Iterator[str]:
        return (record["id"] for record in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._position

    def position(self, article_id: str) -> int:
        return self._position[article_id]

    def at(self, position: int) -> Article:
        return self._article(position)

    def date_keys(self) -> np.ndarray:
        """Each article's date as seconds since the epoch, -inf when it has none (made once)."""
        keys = getattr(self, "_date_keys", None)
        if keys is None:
            from quotebot.index.dates import date_key

            found = (date_key(record.get("date")) for record in self.records)
            keys = np.fromiter((-np.inf if key is None else key for key in found), dtype=np.float64, count=len(self))
            self._date_keys = keys
        return keys

    def text_bytes(self, position: int) -> bytes:
        row = self.rows[position]
        return bytes(self._texts[int(row["text_start"]) : int(row["text_end"])])

    def texts_of(self, positions: range) -> bytes:
        """The texts of a run of consecutive articles, end to end: one slice of the blob when
        they lie end to end in it (as the index writer stores them), else one by one."""
        rows = self.rows[positions.start : positions.stop]
        if len(rows) and (rows["text_start"][1:] == rows["text_end"][:-1]).all():
            return bytes(self._texts[int(rows["text_start"][0]) : int(rows["text_end"][-1])])
        return b"".join(self.text_bytes(position) for position in positions)

    def _make_article(self, position: int) -> Article:
        try:
            text = self.text_bytes(position).decode("utf-8")
            return Article(**self.records[position], text=text)
        except (UnicodeDecodeError, TypeError, ValueError):  # ValidationError is a ValueError
            article_id = self.records[position].get("id")
            raise CorruptIndexError(
                f"damaged index: the stored text or record of article {article_id!r} cannot be read: "
                "run `quotebot index build`"
            ) from None


class ChunkTable(Mapping[int, Chunk]):
    """Chunk id -> ``Chunk``, iterated in index order (article by article)."""

    def __init__(self, rows: np.ndarray, sentences: np.ndarray, articles: ArticleTable) -> None:
        self.rows = rows
        self.sentences = sentences  # (n, 2) int32 sentence spans, article by article
        self._articles = articles
        self._order = np.argsort(rows["id"], kind="stable")
        self._sorted_ids = rows["id"][self._order]
        self._chunk = lru_cache(maxsize=CHUNK_CACHE_SIZE)(self._make_chunk)

    @property
    def ids(self) -> np.ndarray:
        return self.rows["id"]

    def row_of(self, chunk_id: int) -> int:
        at = int(np.searchsorted(self._sorted_ids, chunk_id))
        if at >= len(self._sorted_ids) or self._sorted_ids[at] != chunk_id:
            raise KeyError(chunk_id)
        return int(self._order[at])

    def rows_of(self, chunk_ids: np.ndarray) -> np.ndarray:
        """``row_of`` of each id at once (int64 rows); KeyError if one is not in the table."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        at = np.searchsorted(self._sorted_ids, ids)
        inside = at < len(self._sorted_ids)
        if not inside.all() or (self._sorted_ids[at] != ids).any():
            missing = ids[~inside] if not inside.all() else ids[self._sorted_ids[at] != ids]
            raise KeyError(int(missing[0]))
        return self._order[at].astype(np.int64)

    def __getitem__(self, chunk_id: int) -> Chunk:
        return self._chunk(int(chunk_id))

    def _make_chunk(self, chunk_id: int) -> Chunk:
        row = self.rows[self.row_of(chunk_id)]
        position = int(row["article"])
        first = int(self._articles.sentence_base[position]) + int(row["first_sentence"])
        spans = self.sentences[first : first + int(row["sentence_count"])]
        return Chunk(
            article_id=self._articles.records[position]["id"],
            ordinal=int(row["ordinal"]),
            start=int(row["start"]),
            end=int(row["end"]),
            first_sentence=int(row["first_sentence"]),
            sentences=tuple(Span(start=int(start), end=int(end)) for start, end in spans),
        )

    def __iter__(self) -> Iterator[int]:
        return (int(chunk_id) for chunk_id in self.rows["id"])

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, chunk_id: object) -> bool:
        try:
            self.row_of(int(chunk_id))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return False
        return True


def chunk_rows(chunks: list[Chunk], ids: list[int], article_position: int) -> np.ndarray:
    rows = np.zeros(len(chunks), dtype=CHUNK_ROW)
    for row, chunk, chunk_id in zip(rows, chunks, ids):
        row["id"] = chunk_id
        row["article"] = article_position
        row["ordinal"] = chunk.ordinal
        row["start"], row["end"] = chunk.start, chunk.end
        row["first_sentence"], row["sentence_count"] = chunk.first_sentence, len(chunk.sentences)
    return rows


def sentence_rows(spans: list[Span]) -> np.ndarray:
    return np.asarray([(span.start, span.end) for span in spans], dtype=np.int32).reshape(-1, 2)


def article_record(article: Article) -> dict:
    return article.model_dump(exclude={"text", "content_hash"})


def write_records(path: Path, records: list[dict]) -> None:
    write_record_lines(path, [record_line(record) for record in records])


def record_line(record: dict) -> bytes:
    """A record as its line of the records file (without the newline)."""
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def write_record_lines(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
