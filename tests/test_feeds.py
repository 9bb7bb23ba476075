"""Feeds against a web server on 127.0.0.1: the list, conditional GETs, one generation per
update, de-duplication, retries, bad feeds that stop nothing, the watcher and a live bot."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotebot.bot import wiring
from quotebot.bot.chat import QuoteBot
from quotebot.bot.settings import Settings
from quotebot.index import storage
from quotebot.index.embedding import Embedder
from quotebot.index.feeds import (
    FeedListError,
    add_feed,
    feeds_path,
    parse_every,
    read_feeds,
    remove_feed,
    update_feeds,
    watch,
)
from quotebot.index.builder import IndexBuilder
from quotebot.index.reader import QuoteIndex
from quotebot.index.verify import verify_index
from quotebot.index.web import Fetcher
from tests.test_cli import quotebot
from tests.web_server import Route, WebServer, article_page, atom, rss

STORIES = {
    "/news/bridge": ("Old bridge reopens after repairs", "The old river bridge reopened to traffic on Monday after two years of repairs costing 12 million euros.", "Mon, 06 May 2024 08:00:00 GMT"),
    "/news/zoo": ("Zoo welcomes twin pandas", "The city zoo announced the birth of twin giant pandas, the first born there in forty years.", "Tue, 07 May 2024 09:30:00 GMT"),
    "/news/tram": ("Tram line extended to airport", "The new tram extension to the airport carried 20,000 passengers in its first week.", "Wed, 08 May 2024 10:15:00 GMT"),
}


def page(path: str) -> str:
    title, text, _ = STORIES[path]
    return article_page(title, [text, "Officials said more details would follow later this week."], site="City Herald")


def items(server: WebServer, paths: list[str]) -> list[dict]:
    return [
        {"title": STORIES[p][0], "link": server.url(p), "pubDate": STORIES[p][2], "category": "local"} for p in paths
    ]


class CountingBuilder:
    """The real index writer, counting the generations it publishes."""

    def __init__(self, embedder: Embedder) -> None:
        self.builder = IndexBuilder(embedder, 120, 1, export_onnx=False)
        self.calls: list[tuple[str, int]] = []

    def add(self, articles, index_dir, on_progress=None):
        self.calls.append(("add", len(articles)))
        return self.builder.add(articles, index_dir, on_progress=on_progress)

    def build(self, articles, index_dir, on_progress=None):
        self.calls.append(("build", len(articles)))
        return self.builder.build(articles, index_dir, on_progress=on_progress)


@pytest.fixture
def server() -> Iterator[WebServer]:
    web = WebServer().start()
    for path in STORIES:
        web.routes[path] = Route(page(path))
    yield web
    web.stop()


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


def run(index_dir: Path, builder: CountingBuilder, warnings: list[str] | None = None, timeout: float = 5.0):
    with Fetcher(timeout_seconds=timeout) as fetcher:
        return update_feeds(index_dir, builder, fetcher, warn=(warnings if warnings is not None else []).append)


def test_the_feed_list_is_kept_beside_the_index(index_dir: Path) -> None:
    add_feed(index_dir, "http://127.0.0.1:9/rss", "Wire")
    add_feed(index_dir, "http://127.0.0.1:9/atom")
    with pytest.raises(FeedListError, match="already in the feed list"):
        add_feed(index_dir, "http://127.0.0.1:9/rss")
    with pytest.raises(FeedListError, match="not an http"):
        add_feed(index_dir, "feed.xml")
    assert [(feed.url, feed.name) for feed in read_feeds(index_dir).feeds] == [
        ("http://127.0.0.1:9/rss", "Wire"),
        ("http://127.0.0.1:9/atom", None),
    ]
    remove_feed(index_dir, "wire")  # by name, any case
    assert [feed.url for feed in read_feeds(index_dir).feeds] == ["http://127.0.0.1:9/atom"]
    assert not list(index_dir.glob(".feeds.json.*"))  # the atomic write left no temporary file
    feeds_path(index_dir).write_text("{not json", encoding="utf-8")
    with pytest.raises(FeedListError, match="damaged feed list"):
        read_feeds(index_dir)


def test_an_update_indexes_new_entries_in_one_generation_then_asks_with_a_conditional_get(
    server: WebServer, index_dir: Path, embedder: Embedder
) -> None:
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge", "/news/zoo"]), title="City Herald"),
                                  content_type="application/rss+xml", etag='"v1"')
    server.routes["/atom"] = Route(
        atom([{"title": STORIES["/news/tram"][0], "link": server.url("/news/tram"), "updated": "2024-05-08T10:15:00Z"}]),
        content_type="application/atom+xml", last_modified="Wed, 08 May 2024 10:20:00 GMT",
    )
    add_feed(index_dir, server.url("/rss"))
    add_feed(index_dir, server.url("/atom"), "Transit News")
    builder = CountingBuilder(embedder)
    report = run(index_dir, builder)
    assert builder.calls == [("build", 3)]  # one generation, through the normal writer
    assert sorted(report.added) == sorted(server.url(p) for p in STORIES)
    index = QuoteIndex.load(index_dir)
    records = {record["id"]: record for record in index.articles.records}
    bridge = records[server.url("/news/bridge")]
    assert (bridge["source"], bridge["date"], bridge["url"], bridge["topic"]) == (
        "City Herald", "2024-05-06T08:00:00+00:00", server.url("/news/bridge"), "local"
    )
    assert records[server.url("/news/tram")]["source"] == "Transit News"
    assert read_feeds(index_dir).feeds[0].name == "City Herald"  # the feed's own title, no --name given

    generation = storage.current_name(index_dir)
    second = run(index_dir, builder)
    assert second.not_modified == 2 and second.added == [] and builder.calls == [("build", 3)]
    assert storage.current_name(index_dir) == generation  # nothing new: no new generation
    conditional = [r.headers for r in server.requests if r.path in ("/rss", "/atom")][-2:]
    assert conditional[0].get("if-none-match") == '"v1"'
    assert conditional[1].get("if-modified-since") == "Wed, 08 May 2024 10:20:00 GMT"


def test_entries_are_deduplicated_by_url_and_by_content(server: WebServer, index_dir: Path, embedder: Embedder) -> None:
    server.routes["/copy-of-bridge"] = Route(page("/news/bridge"))
    entries = items(server, ["/news/bridge", "/news/bridge"]) + [
        {"title": "Bridge (syndicated)", "link": server.url("/copy-of-bridge"), "pubDate": STORIES["/news/bridge"][2]}
    ]
    server.routes["/rss"] = Route(rss(entries), content_type="application/rss+xml")
    add_feed(index_dir, server.url("/rss"))
    builder = CountingBuilder(embedder)
    report = run(index_dir, builder)
    assert report.added == [server.url("/news/bridge")] and report.duplicates == 1
    again = run(index_dir, builder)  # no ETag: fetched again, and still nothing new
    assert again.added == [] and len(builder.calls) == 1
    assert server.hits("/copy-of-bridge") == 1  # a known duplicate is not fetched again


def test_a_failed_entry_is_retried_at_the_next_update(server: WebServer, index_dir: Path, embedder: Embedder) -> None:
    del server.routes["/news/zoo"]
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge", "/news/zoo"])), content_type="application/rss+xml",
                                  etag='"same"')
    add_feed(index_dir, server.url("/rss"))
    builder = CountingBuilder(embedder)
    warnings: list[str] = []
    report = run(index_dir, builder, warnings)
    assert report.added == [server.url("/news/bridge")]
    assert warnings == [f"{server.url('/news/zoo')}: HTTP 404 Not Found (retried at the next update)"]
    assert [entry.url for entry in read_feeds(index_dir).pending] == [server.url("/news/zoo")]
    server.routes["/news/zoo"] = Route(page("/news/zoo"))
    retried = run(index_dir, builder)
    assert retried.not_modified == 1  # the feed did not change, the pending entry was still retried
    assert retried.added == [server.url("/news/zoo")] and read_feeds(index_dir).pending == []


def test_bad_feeds_are_one_warning_each_and_stop_nothing(server: WebServer, index_dir: Path, embedder: Embedder) -> None:
    server.routes["/good"] = Route(rss(items(server, ["/news/bridge"])), content_type="application/rss+xml")
    server.routes["/broken"] = Route("<rss><channel><item><title>Half", content_type="application/rss+xml")
    server.routes["/slow"] = Route(rss(items(server, ["/news/zoo"])), content_type="application/rss+xml", delay=5.0)
    server.routes["/html"] = Route("<html><body><p>Not a feed at all.</p></body></html>")
    feeds = ["/broken", "/vanished", "/slow", "/html", "/good"]
    for path in feeds:
        add_feed(index_dir, server.url(path))
    builder = CountingBuilder(embedder)
    warnings: list[str] = []
    report = run(index_dir, builder, warnings, timeout=2.0)
    assert report.added == [server.url("/news/bridge")]
    assert len(warnings) == 4 and all("\n" not in warning for warning in warnings)
    assert warnings[0].startswith(f"feed {server.url('/broken')}: malformed feed")
    assert warnings[1] == f"feed {server.url('/vanished')}: HTTP 404 Not Found"
    assert warnings[2] == f"feed {server.url('/slow')}: timed out after 2 s"
    assert warnings[3].startswith(f"feed {server.url('/html')}: ")
    assert verify_index(index_dir).problems == []
    assert sorted(read_feeds(index_dir).feeds[i].last_error is not None for i in range(5)) == [False, True, True, True, True]


def test_a_failed_add_writes_nothing_and_the_next_update_catches_up(
    server: WebServer, index_dir: Path, embedder: Embedder
) -> None:
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge"])), content_type="application/rss+xml", etag='"1"')
    add_feed(index_dir, server.url("/rss"))

    class FailingBuilder(CountingBuilder):
        def build(self, articles, index_dir, on_progress=None):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run(index_dir, FailingBuilder(embedder))
    assert read_feeds(index_dir).feeds[0].etag is None  # not advanced: the entry is not lost
    report = run(index_dir, CountingBuilder(embedder))
    assert report.added == [server.url("/news/bridge")]


def test_the_watcher_updates_until_stopped_and_a_live_bot_picks_it_up(
    server: WebServer, index_dir: Path, embedder: Embedder
) -> None:
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge"])), content_type="application/rss+xml")
    add_feed(index_dir, server.url("/rss"), "City Herald")
    builder = CountingBuilder(embedder)
    run(index_dir, builder)
    bot = wiring.new_bot(Settings(), index_dir, embedder=embedder)
    assert server.url("/news/tram") not in {summary.id for summary in bot.sources()}
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge", "/news/tram"])), content_type="application/rss+xml")
    updates: list[object] = []
    stop = threading.Event()

    def update():
        report = run(index_dir, builder)
        updates.append(report)
        return report

    thread = threading.Thread(target=watch, args=(update, 0.2, stop, lambda message: None))
    thread.start()
    deadline = time.monotonic() + 60
    while len(updates) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and len(updates) >= 2
    answer = bot.ask("How many passengers did the airport tram carry?", conversation="after")
    assert answer.answered and "20,000 passengers" in answer.quotes[0].text
    assert answer.quotes[0].source == "City Herald"


def test_durations() -> None:
    assert [parse_every(text) for text in ("30s", "15m", "1h", "1d", "2")] == [30, 900, 3600, 86400, 120]
    with pytest.raises(ValueError, match="not a duration"):
        parse_every("soon")


def test_feeds_commands_as_a_user_runs_them(server: WebServer, seed_index_dir: Path, tmp_path: Path) -> None:
    import shutil

    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    server.routes["/rss"] = Route(rss(items(server, ["/news/zoo"])), content_type="application/rss+xml")
    assert quotebot("feeds", "add", server.url("/rss"), "--name", "Herald", "--index-dir", str(index)).returncode == 0
    assert quotebot("feeds", "add", server.url("/vanished"), "--index-dir", str(index)).returncode == 0
    listing = quotebot("feeds", "list", "--index-dir", str(index))
    assert listing.stdout.splitlines()[0].startswith(f"Herald\t{server.url('/rss')}\tnot checked yet")
    update = quotebot("feeds", "update", "--index-dir", str(index))
    assert update.returncode == 1  # one feed failed: the exit status says so, the other went in
    assert f"quotebot: warning: feed {server.url('/vanished')}: HTTP 404 Not Found" in update.stderr
    assert "1 added" in update.stderr
    answer = quotebot("ask", "What did the zoo announce?", "--source", "herald", "--json", "--index-dir", str(index))
    quote = json.loads(answer.stdout)["quotes"][0]
    assert "twin giant pandas" in quote["text"] and quote["source"] == "Herald"
    assert quote["date"] == "2024-05-07T09:30:00+00:00" and quote["url"] == server.url("/news/zoo")
    removed = quotebot("feeds", "remove", server.url("/vanished"), "--index-dir", str(index))
    assert removed.returncode == 0
    assert len(quotebot("feeds", "list", "--index-dir", str(index)).stdout.splitlines()) == 1


def test_the_telegram_bot_runs_the_same_watcher_in_process(server: WebServer, seed_index_dir: Path, tmp_path: Path) -> None:
    """`telegram.watch_feeds` starts ``start_watcher``: the watcher thread the bot process runs."""
    import io
    import shutil

    from quotebot.bot.feeds_command import start_watcher

    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    server.routes["/rss"] = Route(rss(items(server, ["/news/tram"])), content_type="application/rss+xml")
    add_feed(index, server.url("/rss"), "Transit")
    settings = Settings.model_validate({"index": {"index_dir": str(index)}, "web": {"feeds_every": "1s"},
                                        "telegram": {"watch_feeds": True}})
    stream = io.StringIO()
    stop = start_watcher(settings, stream)
    try:
        deadline = time.monotonic() + 120
        while server.url("/news/tram") not in {r["id"] for r in QuoteIndex.load(index).articles.records}:
            assert time.monotonic() < deadline, stream.getvalue()
            time.sleep(0.2)
        checks = server.hits("/rss")
        while server.hits("/rss") < checks + 1:  # it keeps going on schedule
            assert time.monotonic() < deadline, stream.getvalue()
            time.sleep(0.2)
    finally:
        stop.set()
    assert "1 added" in stream.getvalue()


def test_feeds_watch_runs_until_interrupted(server: WebServer, seed_index_dir: Path, tmp_path: Path) -> None:
    import os
    import shutil
    import signal
    import subprocess
    import sys

    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    server.routes["/rss"] = Route(rss(items(server, ["/news/bridge"])), content_type="application/rss+xml")
    add_feed(index, server.url("/rss"))
    process = subprocess.Popen(
        [sys.executable, "-m", "quotebot.bot.cli", "feeds", "watch", "--every", "1s", "--index-dir", str(index)],
        # PYTHONFAULTHANDLER: a watcher that does not stop is sent SIGABRT below and prints
        # every thread's stack, so a hang says where it hangs.
        stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_PROXY": "127.0.0.1", "PYTHONFAULTHANDLER": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while server.hits("/rss") < 2:  # two updates, a second apart
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"still running 60 s after Ctrl-C; its threads:\n{stderr[-6000:]}") from None
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "every 1s" in stderr and "1 added" in stderr and stderr.rstrip().endswith("stopped")
