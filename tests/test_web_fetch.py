"""Fetching pages from a web server on 127.0.0.1 that the tests start: limits, failures as
one line naming the URL, and `quotebot index add URL...` as a user runs it."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotebot.index.web import USER_AGENT, FetchError, Fetcher, article_id_for_url, fetch_articles
from tests.test_cli import quotebot
from tests.web_server import Route, WebServer, article_page

PAGES = Path(__file__).parent / "web_pages"
STRIKE = article_page(
    "Dockers strike over pay",
    [
        "Dockers at the port of Rotterdam walked out on Tuesday in a dispute over pay.",
        "The union said the strike would last 48 hours and halt container traffic.",
    ],
    date="2024-05-07",
    site="Harbour Times",
)


@pytest.fixture
def server() -> Iterator[WebServer]:
    web = WebServer().start()
    web.routes.update(
        {
            "/strike": Route(STRIKE),
            "/guantanamo": Route((PAGES / "guantanamo.html").read_bytes()),
            "/moved": Route(redirect="/strike"),
            "/loop": Route(redirect="/loop"),
            "/slow": Route(STRIKE, delay=3.0),
            "/huge": Route(size=11 * 1024 * 1024),
            "/huge-undeclared": Route(size=3 * 1024 * 1024, declare_length=False),
            "/report.pdf": Route(b"%PDF-1.4", content_type="application/pdf"),
            "/latin1": Route(
                article_page("Caf\xe9 closes", ["The caf\xe9 on the square closed after 80 years."]).encode("latin-1"),
                content_type="text/html; charset=iso-8859-1",
            ),
        }
    )
    yield web
    web.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_page_is_fetched_with_a_user_agent_naming_quotebot(server: WebServer) -> None:
    with Fetcher() as fetcher:
        fetched = fetcher.page(server.url("/strike"))
    assert fetched.status == 200 and b"Rotterdam" in fetched.body
    assert server.requests[-1].headers["user-agent"] == USER_AGENT and "quotebot" in USER_AGENT


def test_redirects_are_followed_a_limited_number_of_times(server: WebServer) -> None:
    with Fetcher(max_redirects=3) as fetcher:
        assert fetcher.page(server.url("/moved")).final_url == server.url("/strike")
        with pytest.raises(FetchError, match="more than 3 redirects"):
            fetcher.page(server.url("/loop"))
    assert server.hits("/loop") == 4  # the first request and three redirects, no more


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing", "HTTP 404 Not Found"),
        ("/slow", "timed out after 0.5 s"),
        ("/huge", "too big (11,534,336 bytes, the limit is 10,485,760)"),
        ("/report.pdf", "not an HTML page (Content-Type: application/pdf)"),
    ],
)
def test_each_failure_is_one_line_naming_the_url(server: WebServer, path: str, reason: str) -> None:
    url = server.url(path)
    timeout = 0.5 if path == "/slow" else 10.0  # short only where the timeout is the point: the machine may be busy
    with Fetcher(timeout_seconds=timeout) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.page(url)
    assert str(caught.value) == f"{url}: {reason}"
    assert "\n" not in str(caught.value)


def test_a_body_without_a_length_is_cut_off_at_the_cap(server: WebServer) -> None:
    url = server.url("/huge-undeclared")
    with Fetcher(max_bytes=1024 * 1024) as fetcher, pytest.raises(FetchError, match="too big .more than 1,048,576 bytes"):
        fetcher.page(url)


def test_a_refused_connection_is_a_failure_too() -> None:
    url = f"http://127.0.0.1:{closed_port()}/news"
    with Fetcher(timeout_seconds=2) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.page(url)
    assert str(caught.value).startswith(f"{url}: cannot connect")


def test_the_charset_the_server_names_is_used(server: WebServer) -> None:
    with Fetcher() as fetcher:
        report = fetch_articles([server.url("/latin1")], fetcher)
    assert report.articles[0].text == "The café on the square closed after 80 years."


def test_a_batch_goes_in_around_its_failures_and_the_url_is_the_id(server: WebServer) -> None:
    failures: list[str] = []
    urls = [server.url("/strike"), server.url("/missing"), server.url("/guantanamo#comments")]
    with Fetcher() as fetcher:
        report = fetch_articles(urls, fetcher, on_failure=lambda error: failures.append(str(error)))
    assert failures == [f"{server.url('/missing')}: HTTP 404 Not Found"]
    strike, guantanamo = report.articles
    assert (strike.id, strike.url) == (server.url("/strike"), server.url("/strike"))
    assert strike.title == "Dockers strike over pay" and strike.date == "2024-05-07" and strike.source == "Harbour Times"
    assert guantanamo.id == server.url("/guantanamo") == article_id_for_url(urls[2])  # stable: no fragment
    assert guantanamo.metadata["canonical_url"] == "https://news.example.com/world/guantanamo-man-suing-government"


@pytest.fixture
def index_copy(seed_index_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


def test_index_add_urls_as_a_user_runs_it(server: WebServer, index_copy: Path) -> None:
    refused = f"http://127.0.0.1:{closed_port()}/gone"
    result = quotebot(
        "index", "add", server.url("/strike"), server.url("/missing"), refused, server.url("/report.pdf"),
        "--index-dir", str(index_copy),
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("quotebot: warning:")]
    assert warnings == [
        f"quotebot: warning: {server.url('/missing')}: HTTP 404 Not Found (skipped)",
        f"quotebot: warning: {refused}: cannot connect (" + warnings[1].split("cannot connect (", 1)[1],
        f"quotebot: warning: {server.url('/report.pdf')}: not an HTML page (Content-Type: application/pdf) (skipped)",
    ]
    assert "1 new" in result.stderr and "3 URLs failed" in result.stderr
    listing = quotebot("index", "list", "--json", "--index-dir", str(index_copy))
    records = {record["id"]: record for record in map(json.loads, listing.stdout.splitlines())}
    strike = records[server.url("/strike")]
    assert (strike["url"], strike["date"], strike["source"]) == (server.url("/strike"), "2024-05-07", "Harbour Times")
    # The same URL again is the same article: nothing new to embed.
    again = quotebot("index", "add", server.url("/strike"), "--index-dir", str(index_copy))
    assert again.returncode == 0 and "0 new, 0 changed" in again.stderr
    answer = quotebot("ask", "How long will the dockers strike last?", "--json", "--index-dir", str(index_copy))
    first = json.loads(answer.stdout)["quotes"][0]
    assert "48 hours" in first["text"]
    assert (first["url"], first["date"], first["source"]) == (server.url("/strike"), "2024-05-07", "Harbour Times")


def test_a_feed_url_given_to_index_add_is_no_longer_mangled(server: WebServer, index_copy: Path) -> None:
    server.routes["/feed.rss"] = Route("<rss/>", content_type="application/rss+xml")
    result = quotebot("index", "add", server.url("/feed.rss"), "--index-dir", str(index_copy))
    assert result.returncode == 4
    assert f"{server.url('/feed.rss')}: not an HTML page (Content-Type: application/rss+xml)" in result.stderr
    assert "http:/" not in result.stderr.replace("http://", "")
