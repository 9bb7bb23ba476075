"""RSS and Atom feeds: the list beside the index, and updating the index from them.

``feeds.json`` in the index folder holds the feeds (URL, name, the ETag and Last-Modified of
the last fetch) and the entries whose page failed, to retry. It is written atomically
(a temporary file, fsync, rename), so a crash leaves the old list or the new one.

``update_feeds`` fetches every feed with a conditional GET, fetches and extracts the pages
of new entries, and adds them in one ``IndexBuilder.add`` (one new generation, under the
writer lock). Articles are de-duplicated by URL and by content hash. A feed that fails
(unreachable, vanished, slow, malformed) is one warning and changes nothing; the other
feeds go on, and nothing is written until the index has the new articles.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import uuid
import xml.sax
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quotebot.index import storage
from quotebot.index.dates import normalize_date
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.lazyre import lazy
from quotebot.index.lock import IndexLock
from quotebot.index.web import FEED_TYPES, FetchError, Fetcher, article_id_for_url, fetch_article, host_of, is_url

FEEDS_FILE = "feeds.json"
FEEDS_LOCK_FILE = "FEEDS.LOCK"
# An entry whose page failed this many updates in a row is given up (with a warning).
MAX_ATTEMPTS = 5
# URLs of entries dropped as duplicates (same text as an indexed article), remembered so
# they are not fetched at every update; the oldest are forgotten past this many.
MAX_REMEMBERED = 10_000

Warn = Callable[[str], None]


class FeedListError(QuotebotError):
    """A bad feed command or a damaged feed list; ``str()`` is one line."""

    exit_code = ExitCode.USAGE


class Feed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    name: str | None = None  # --name, else the feed's own title once fetched
    etag: str | None = None
    last_modified: str | None = None
    added_at: str | None = None
    checked_at: str | None = None
    last_error: str | None = None

    @property
    def label(self) -> str:
        return self.name or host_of(self.url)


class PendingEntry(BaseModel):
    """A feed entry whose page could not be fetched yet: retried at the next update."""

    model_config = ConfigDict(extra="ignore")

    url: str
    feed: str  # the feed's URL
    title: str | None = None
    date: str | None = None
    author: str | None = None
    topic: str | None = None
    attempts: int = 0
    last_error: str | None = None


class FeedList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feeds: list[Feed] = Field(default_factory=list)
    pending: list[PendingEntry] = Field(default_factory=list)
    duplicates: list[str] = Field(default_factory=list)  # entry URLs whose text was already indexed

    def find(self, url_or_name: str) -> Feed | None:
        for feed in self.feeds:
            if feed.url == url_or_name or (feed.name is not None and feed.name.casefold() == url_or_name.casefold()):
                return feed
        return None


# --- the list ---------------------------------------------------------------------------------


def feeds_path(index_dir: Path) -> Path:
    return index_dir / FEEDS_FILE


def read_feeds(index_dir: Path) -> FeedList:
    path = feeds_path(index_dir)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return FeedList()
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FeedListError(f"{path}: damaged feed list ({type(error).__name__}); fix or delete it") from None
    try:
        return FeedList.model_validate(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise FeedListError(f"{path}: damaged feed list ({where}: {problem['msg']}); fix or delete it") from None


def write_feeds(index_dir: Path, feeds: FeedList) -> None:
    """Replace the list atomically: readers and crashes see the old file or the new one."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = feeds_path(index_dir)
    pending = index_dir / f".{FEEDS_FILE}.{uuid.uuid4().hex[:8]}"
    try:
        with open(pending, "w", encoding="utf-8") as handle:
            handle.write(feeds.model_dump_json(indent=2, exclude_none=True))
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pending, path)
    finally:
        pending.unlink(missing_ok=True)


def feeds_lock(index_dir: Path, purpose: str) -> IndexLock:
    """One feed-list writer at a time (`feeds add/remove/update`, a watcher); the index has its own lock."""
    lock = IndexLock(index_dir, purpose)
    lock.path = index_dir / FEEDS_LOCK_FILE
    return lock


def add_feed(index_dir: Path, url: str, name: str | None = None) -> Feed:
    if not is_url(url):
        raise FeedListError(f"{url}: not an http(s) URL")
    with feeds_lock(index_dir, "feeds add"):
        feeds = read_feeds(index_dir)
        if feeds.find(url) is not None:
            raise FeedListError(f"{url}: already in the feed list (see `quotebot feeds list`)")
        if name and feeds.find(name) is not None:
            raise FeedListError(f"a feed is already called {name!r}; choose another --name")
        feed = Feed(url=url, name=name or None, added_at=_now())
        feeds.feeds.append(feed)
        write_feeds(index_dir, feeds)
    return feed


def remove_feed(index_dir: Path, url_or_name: str) -> Feed:
    """Stop following a feed (its articles stay in the index; `index remove` drops them)."""
    with feeds_lock(index_dir, "feeds remove"):
        feeds = read_feeds(index_dir)
        feed = feeds.find(url_or_name)
        if feed is None:
            raise FeedListError(f"{url_or_name}: no such feed (see `quotebot feeds list`)")
        feeds.feeds.remove(feed)
        feeds.pending = [entry for entry in feeds.pending if entry.feed != feed.url]
        write_feeds(index_dir, feeds)
    return feed


# --- updating -----------------------------------------------------------------------------------


@dataclass
class FeedUpdate:
    """What one ``update_feeds`` did."""

    feeds: int = 0
    not_modified: int = 0
    failed_feeds: list[str] = field(default_factory=list)
    new_entries: int = 0
    added: list[str] = field(default_factory=list)  # article ids (their URLs)
    duplicates: int = 0
    failed_entries: list[str] = field(default_factory=list)  # retried next time
    given_up: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    change: object = None  # the IndexChange of the add, None when nothing was added
    seconds: float = 0.0


@dataclass(frozen=True)
class _Entry:
    url: str
    feed: Feed
    title: str | None
    date: str | None
    author: str | None
    topic: str | None
    attempts: int = 0


def update_feeds(
    index_dir: Path,
    builder,
    fetcher: Fetcher,
    *,
    workers: int = 4,
    warn: Warn | None = None,
    on_progress=None,
) -> FeedUpdate:
    """Fetch every feed, index the pages of new entries in one generation; see the module doc."""
    started = time.perf_counter()
    warn = warn or (lambda message: None)
    report = FeedUpdate()
    with feeds_lock(index_dir, "feeds update"):
        feeds = read_feeds(index_dir)
        report.feeds = len(feeds.feeds)
        known_urls, known_hashes = _indexed(index_dir)
        remembered = set(feeds.duplicates)
        entries = _retry_entries(feeds, known_urls)
        queued = {entry.url for entry in entries}
        for feed in feeds.feeds:
            for entry in _new_entries(feed, fetcher, report, warn):
                if entry.url in known_urls or entry.url in queued or entry.url in remembered:
                    continue
                queued.add(entry.url)
                entries.append(entry)
        report.new_entries = len(entries)
        articles = _fetch_entries(entries, fetcher, workers, known_hashes, feeds, report, warn)
        if articles:
            if storage.current_name(index_dir) is None:
                report.change = builder.build(articles, index_dir, on_progress=on_progress)
            else:
                report.change = builder.add(articles, index_dir, on_progress=on_progress)
            report.added = [article.id for article in articles]
        # Written only now: had the add failed, the next update would fetch the same entries again.
        write_feeds(index_dir, feeds)
    report.seconds = time.perf_counter() - started
    return report


def _indexed(index_dir: Path) -> tuple[set[str], set[str]]:
    """URLs (ids, urls, canonical urls) and content hashes of the indexed articles."""
    if storage.current_name(index_dir) is None:
        return set(), set()
    from quotebot.index.reader import QuoteIndex
    from quotebot.index.web import content_digest

    index = QuoteIndex.load(index_dir)
    urls: set[str] = set()
    hashes: set[str] = set()
    for position, record in enumerate(index.articles.records):
        urls.add(record["id"])
        for url in (record.get("url"), (record.get("metadata") or {}).get("canonical_url")):
            if isinstance(url, str) and url:
                urls.add(article_id_for_url(url))
        hashes.add(content_digest(index.articles.text_bytes(position).decode("utf-8")))
    return urls, hashes


def _retry_entries(feeds: FeedList, known_urls: set[str]) -> list[_Entry]:
    by_url = {feed.url: feed for feed in feeds.feeds}
    entries = []
    for pending in feeds.pending:
        feed = by_url.get(pending.feed)
        if feed is None or pending.url in known_urls:
            continue
        entries.append(
            _Entry(pending.url, feed, pending.title, pending.date, pending.author, pending.topic, pending.attempts)
        )
    return entries


def _new_entries(feed: Feed, fetcher: Fetcher, report: FeedUpdate, warn: Warn) -> list[_Entry]:
    """The entries of one feed (all of them: the caller drops those already indexed); [] when
    the feed is unchanged (304) or failed (a warning; its ETag stays, so nothing is missed)."""
    import feedparser

    feed.checked_at = _now()
    try:
        fetched = fetcher.get(
            feed.url, accept=FEED_TYPES, what="not a feed", etag=feed.etag, last_modified=feed.last_modified
        )
    except FetchError as error:
        return _feed_failed(feed, error.reason, report, warn)
    if fetched.not_modified:
        report.not_modified += 1
        feed.last_error = None
        return []
    parsed = feedparser.parse(fetched.body, response_headers={"content-type": fetched.content_type})
    problem = parsed.get("bozo_exception")
    broken_xml = isinstance(problem, xml.sax.SAXException)
    if not parsed.get("version") and not parsed.entries:
        reason = f"malformed feed ({_first_line(problem)})" if broken_xml else "not an RSS or Atom feed"
        return _feed_failed(feed, reason, report, warn)
    if broken_xml:
        # feedparser's lenient parser read what it could: keep those entries, say so once, and
        # keep no ETag, so the whole feed is read again next time.
        usable = [item for item in parsed.entries if is_url(str(item.get("link") or ""))]
        if not usable:
            return _feed_failed(feed, f"malformed feed ({_first_line(problem)})", report, warn)
        warn(f"feed {feed.url}: malformed feed ({_first_line(problem)}); read {len(usable)} entries anyway")
        feed.last_error = f"malformed feed ({_first_line(problem)})"
    else:
        feed.etag, feed.last_modified, feed.last_error = fetched.etag, fetched.last_modified, None
    if feed.name is None and parsed.feed.get("title"):
        feed.name = " ".join(parsed.feed["title"].split())
    entries = []
    for item in parsed.entries:
        link = item.get("link")
        if not isinstance(link, str) or not is_url(link):
            continue
        tags = item.get("tags") or []
        entries.append(
            _Entry(
                url=article_id_for_url(link),
                feed=feed,
                title=_text(item.get("title")),
                date=normalize_date(item.get("published") or item.get("updated")),
                author=_text(item.get("author")),
                topic=_text(tags[0].get("term")) if tags else None,
            )
        )
    return entries


def _feed_failed(feed: Feed, reason: str, report: FeedUpdate, warn: Warn) -> list[_Entry]:
    feed.last_error = reason
    report.failed_feeds.append(feed.url)
    warn(f"feed {feed.url}: {reason}")
    return []


def _fetch_entries(
    entries: list[_Entry],
    fetcher: Fetcher,
    workers: int,
    known_hashes: set[str],
    feeds: FeedList,
    report: FeedUpdate,
    warn: Warn,
) -> list:
    """The new entries' articles; failures go to ``feeds.pending`` to be retried."""

    def fetch(entry: _Entry):
        try:
            return entry, fetch_article(
                fetcher,
                entry.url,
                title=entry.title,
                date=entry.date,
                author=entry.author,
                topic=entry.topic,
                source=entry.feed.label,
            ), None
        except FetchError as error:
            return entry, None, error

    articles = []
    hashes = set(known_hashes)
    pending: list[PendingEntry] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for entry, result, error in pool.map(fetch, entries):  # in feed order: the index order is stable
            if error is not None:
                attempts = entry.attempts + 1
                if attempts >= MAX_ATTEMPTS:
                    report.given_up.append(entry.url)
                    warn(f"{error} (failed {attempts} updates in a row: given up)")
                else:
                    report.failed_entries.append(entry.url)
                    warn(f"{error} (retried at the next update)")
                    pending.append(
                        PendingEntry(
                            url=entry.url, feed=entry.feed.url, title=entry.title, date=entry.date,
                            author=entry.author, topic=entry.topic, attempts=attempts, last_error=error.reason,
                        )
                    )
                continue
            article, fallback = result
            # The feed's name is the source: the page's own site name may differ per page.
            article = article.model_copy(update={"source": entry.feed.label})
            if article.content_hash in hashes:
                report.duplicates += 1
                feeds.duplicates.append(entry.url)
                continue
            hashes.add(article.content_hash)
            if fallback:
                report.fallbacks.append(entry.url)
            articles.append(article)
    feeds.pending = pending
    feeds.duplicates = feeds.duplicates[-MAX_REMEMBERED:]
    return articles


# --- watching ---------------------------------------------------------------------------------------

_EVERY = lazy(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def parse_every(text: str) -> float:
    """"15m" -> 900.0 seconds; a bare number is minutes."""
    match = _EVERY.match(text or "")
    if not match:
        raise ValueError(f"not a duration: {text!r} (use 30s, 15m, 1h or 1d)")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}[match.group(2).lower()]
    seconds = float(match.group(1)) * unit
    if seconds < 1:
        raise ValueError(f"{text!r} is too short: at least 1 s")
    return seconds


def watch(update: Callable[[], FeedUpdate], every_seconds: float, stop: threading.Event, warn: Warn) -> None:
    """Call ``update`` now and then every ``every_seconds`` until ``stop`` is set. An update
    that fails (the index locked by another writer, a damaged feed list) is a warning; the
    next one is tried on schedule."""
    while not stop.is_set():
        try:
            update()
        except Exception as error:  # noqa: BLE001 - a watcher must outlive one bad update
            warn(f"feeds update failed: {type(error).__name__}: {_first_line(error)}")
        stop.wait(every_seconds)


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
