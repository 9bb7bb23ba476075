"""A small web server on 127.0.0.1 for tests: pages, feeds, redirects, errors, slow and huge
responses. Tests put routes in ``server.routes`` and read ``server.requests``.

A route is a ``Route``: a body, a content type, a status, optional ETag/Last-Modified
(conditional GETs get 304), a delay before the body, or a redirect target.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before the body is sent
    redirect: str | None = None  # a path or URL: answered with 302 Location
    size: int | None = None  # send this many bytes of filler instead of ``body`` (oversized responses)
    declare_length: bool = True


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class WebServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def start(self) -> WebServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                if route.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", route.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", None)
                    return
                if route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified:
                    self._send(304, b"", None)
                    return
                if route.size is not None:
                    self._send_filler(route)
                    return
                if route.delay:
                    time.sleep(route.delay)
                body = route.body.encode("utf-8") if isinstance(route.body, str) else route.body
                headers = {}
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                self._send(route.status, body, route.content_type, headers)

            def _send(self, status: int, body: bytes, content_type: str | None, headers: dict | None = None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test)

            def _send_filler(self, route: Route) -> None:
                self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                if route.declare_length:
                    self.send_header("Content-Length", str(route.size))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"<p>" + b"x" * 65_000 + b"</p>"
                sent = 0
                try:
                    while sent < (route.size or 0):
                        piece = chunk[: (route.size or 0) - sent]
                        self.wfile.write(piece)
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(request.path == path for request in self.requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def rss(items: list[dict], title: str = "Example Wire") -> str:
    """An RSS 2.0 document of ``items`` (link, title, pubDate, author, category)."""
    entries = "".join(
        "<item>"
        + "".join(f"<{key}>{value}</{key}>" for key, value in item.items())
        + "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<rss version="2.0"><channel><title>{title}</title><link>http://example.invalid/</link>'
        f"<description>test feed</description>{entries}</channel></rss>"
    )


def atom(items: list[dict], title: str = "Example Atom") -> str:
    entries = "".join(
        f'<entry><title>{item["title"]}</title><link href="{item["link"]}"/><id>{item["link"]}</id>'
        f'<updated>{item["updated"]}</updated></entry>'
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:test</id><updated>2024-05-01T00:00:00Z</updated>{entries}</feed>"
    )


def article_page(title: str, paragraphs: list[str], *, date: str | None = None, site: str = "Example News") -> str:
    """A plain news page: nav, the article, a footer."""
    time_tag = f'<time datetime="{date}">{date}</time>' if date else ""
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title} - {site}</title>"
        f'<meta property="og:site_name" content="{site}"></head><body>'
        f'<nav><a href="/">Home</a> <a href="/world">World news menu link</a></nav>'
        f"<article><h1>{title}</h1>{time_tag}{body}</article>"
        f"<footer>Copyright {site}. All rights reserved.</footer></body></html>"
    )
