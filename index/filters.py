"""Which articles a question may be answered from: dates, sources and topics.

An ``ArticleFilter`` is what the user asked for ("--since 2024-05-01 --source Reuters");
``select`` turns it into a ``Selection`` of one index: the articles that pass and the ids
of their chunks. The stores search inside the selection (a FAISS ID selector, a BM25
mask), so a filtered answer never quotes an article outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from quotebot.index.dates import date_key, user_date


class ArticleFilter(BaseModel):
    """Articles dated ``since``..``until`` (inclusive, ISO 8601), from any of ``sources``, on
    any of ``topics``. Unset parts let everything through; an article without a date never
    passes a date bound.

    A source matches an article whose ``source`` or URL host contains it, ignoring case
    ("reuters" matches "Reuters" and "www.reuters.com"); a topic matches the article's topic
    exactly, ignoring case.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: str | None = None
    until: str | None = None
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    @field_validator("since", "until", mode="before")
    @classmethod
    def _date(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        return user_date(str(value))

    @field_validator("sources", "topics", mode="before")
    @classmethod
    def _names(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        return tuple(dict.fromkeys(" ".join(str(item).split()) for item in value if str(item).strip()))

    @property
    def is_empty(self) -> bool:
        return not (self.since or self.until or self.sources or self.topics)

    def describe(self) -> str:
        """"from Reuters on markets since 2024-05-01": the filter in words (empty: "")."""
        parts = []
        if self.sources:
            parts.append("from " + " or ".join(self.sources))
        if self.topics:
            parts.append("on " + " or ".join(self.topics))
        if self.since and self.until:
            parts.append(f"between {self.since} and {self.until}")
        elif self.since:
            parts.append(f"since {self.since}")
        elif self.until:
            parts.append(f"until {self.until}")
        return " ".join(parts)

    def matches(self, record: dict) -> bool:
        """Whether an article (its index record: id, title, date, source, url, topic, ...) passes."""
        return self._matcher()(record)

    def _matcher(self):
        since = date_key(self.since)
        until = date_key(self.until, end_of_day=True)
        sources = [source.casefold() for source in self.sources]
        topics = {topic.casefold() for topic in self.topics}

        def matches(record: dict) -> bool:
            if since is not None or until is not None:
                key = date_key(record.get("date"))
                if key is None or (since is not None and key < since) or (until is not None and key > until):
                    return False
            if sources:
                where = f"{record.get('source') or ''}\n{_host(record.get('url'))}".casefold()
                if not any(source in where for source in sources):
                    return False
            if topics:
                topic = record.get("topic") or (record.get("metadata") or {}).get("topic")
                if not isinstance(topic, str) or topic.casefold() not in topics:
                    return False
            return True

        return matches


def _host(url: object) -> str:
    if not isinstance(url, str) or not url:
        return ""
    return urlsplit(url).hostname or ""


@dataclass(frozen=True)
class Selection:
    """The part of one index a filter lets through.

    ``articles``: one bool per article position; ``chunk_ids``: the ids of their chunks,
    sorted (what the vector store's ID selector and the BM25 mask take).
    """

    filter: ArticleFilter
    articles: np.ndarray
    chunk_ids: np.ndarray

    @property
    def article_count(self) -> int:
        return int(self.articles.sum())


def select(records: list[dict], chunk_rows: np.ndarray, article_filter: ArticleFilter) -> Selection:
    """The selection of an index's ``records`` (article order) and ``chunk_rows`` (CHUNK_ROW)."""
    matches = article_filter._matcher()
    articles = np.fromiter((matches(record) for record in records), dtype=bool, count=len(records))
    keep = articles[chunk_rows["article"]] if len(chunk_rows) else np.zeros(0, dtype=bool)
    chunk_ids = np.sort(np.asarray(chunk_rows["id"][keep], dtype=np.int64))
    return Selection(article_filter, articles, chunk_ids)
