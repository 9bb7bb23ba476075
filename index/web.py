"""Articles from the web: fetching pages safely and extracting the article from the HTML.

Fetching (``Fetcher``) uses httpx with a timeout, a size cap, a bounded number of
redirects, HTML content types only and a User-Agent naming quotebot; every failure is a
``FetchError`` whose ``str()`` is one line naming the URL.

Extraction (``extract_page``) uses trafilatura: the main text without menus, cookie
banners, sidebars, footers, comments or paywall boxes, plus title, date, author, site name
and canonical URL. htmldate finds the date when trafilatura has none. The text keeps one
paragraph per blank-line-separated block, like a ``.txt`` article, so paragraph numbers
agree; the headline is the title, never paragraph 1.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urlsplit

from quotebot.index.dates import normalize_date
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.lazyre import lazy

USER_AGENT = "quotebot/0.1 (news question answering; +https://pypi.org/project/quotebot/)"
MAX_PAGE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT_SECONDS = 15.0
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
    "text/html",  # some servers send feeds as text/html; feedparser decides
    "text/plain",
)
_CHUNK_BYTES = 64 * 1024
_URL = lazy(r"^https?://", re.IGNORECASE)
_META_CHARSET = lazy(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def article_id_for_url(url: str) -> str:
    """The id of the article a URL holds: the URL itself without its #fragment, so the same
    URL always gives the same id (and `index remove URL` reads naturally)."""
    return urldefrag(url.strip())[0]


class FetchError(QuotebotError):
    """A page or feed that could not be fetched; ``str()`` names the URL and the reason."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    body: bytes
    content_type: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        """The body decoded: the charset the server names, else the page's <meta charset>, else UTF-8."""
        charset = _header_charset(self.content_type)
        if charset is None:
            match = _META_CHARSET.search(self.body[:4096])
            charset = match.group(1).decode("ascii") if match else "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@dataclass
class Fetcher:
    """Fetches pages and feeds with the limits above; one pooled httpx client, closed by ``close``."""

    timeout_seconds: float = TIMEOUT_SECONDS
    max_bytes: int = MAX_PAGE_BYTES
    max_redirects: int = MAX_REDIRECTS
    user_agent: str = USER_AGENT
    _client: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import httpx

        self._client = httpx.Client(
            follow_redirects=True,
            max_redirects=self.max_redirects,
            timeout=httpx.Timeout(self.timeout_seconds),
            headers={"User-Agent": self.user_agent},
            trust_env=False,  # a proxy from the environment must not see or reroute the requests
        )

    def close(self) -> None:
        self._client.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def page(self, url: str) -> Fetched:
        return self.get(url, accept=HTML_TYPES, what="not an HTML page")

    def get(
        self,
        url: str,
        *,
        accept: tuple[str, ...] = HTML_TYPES,
        what: str = "not an HTML page",
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """GET ``url``; a conditional GET when ``etag``/``last_modified`` are given (304: empty body)."""
        import httpx

        if not is_url(url):
            raise FetchError(url, "not an http(s) URL")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.timeout_seconds
        try:
            with self._client.stream("GET", url, headers=headers) as response:  # type: ignore[attr-defined]
                if response.status_code == 304:
                    return Fetched(url, str(response.url), 304, b"", "", etag, last_modified)
                if response.status_code >= 400:
                    raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
                content_type = response.headers.get("content-type", "")
                kind = content_type.split(";")[0].strip().lower()
                if kind not in accept:
                    hint = ": a feed? `quotebot feeds add URL` follows it" if accept == HTML_TYPES and "xml" in kind else ""
                    raise FetchError(url, f"{what} (Content-Type: {kind or 'none'}){hint}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(url, f"too big ({int(declared):,} bytes, the limit is {self.max_bytes:,})")
                body = bytearray()
                # Decoded bytes are counted: a small gzip bomb is as "too big" as a huge page.
                for chunk in response.iter_bytes(_CHUNK_BYTES):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchError(url, f"too big (more than {self.max_bytes:,} bytes)")
                    if time.monotonic() > deadline:  # a server that drips bytes forever
                        raise FetchError(url, f"timed out after {self.timeout_seconds:g} s")
                return Fetched(
                    url,
                    str(response.url),
                    response.status_code,
                    bytes(body),
                    content_type,
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except FetchError:
            raise
        except httpx.TooManyRedirects:
            raise FetchError(url, f"more than {self.max_redirects} redirects") from None
        except httpx.TimeoutException:
            raise FetchError(url, f"timed out after {self.timeout_seconds:g} s") from None
        except httpx.ConnectError as error:
            raise FetchError(url, f"cannot connect ({_short(error)})") from None
        except httpx.HTTPError as error:
            raise FetchError(url, f"{type(error).__name__}: {_short(error)}") from None


def _header_charset(content_type: str) -> str | None:
    match = re.search(r"charset=[\"']?([A-Za-z0-9_.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


# --- extraction --------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What extraction found on a page; ``text`` is the article, paragraphs split by blank lines."""

    title: str | None
    text: str
    date: str | None = None
    author: str | None = None
    site_name: str | None = None
    url: str | None = None  # canonical (<link rel=canonical>, og:url)
    topic: str | None = None


# Whole elements that are never the article: removed before extraction. trafilatura drops
# most of these itself; removing them first also keeps them out of its fallback heuristics.
_NEVER_ARTICLE_TAGS = ("nav", "aside", "footer", "form", "noscript", "template", "svg", "button", "iframe", "dialog")
# class/id words of boxes around the article: cookie and consent banners, paywall and
# newsletter prompts, share bars, related-story lists, comment sections.
_BOILERPLATE_CLASS = lazy(
    r"(^|[\s_-])(cookie|consent|gdpr|paywall|subscribe|subscription|newsletter|signup|sign-up|promo|advert|"
    r"share|social|related|recommended|comments?|disqus|breadcrumbs?|sidebar|banner|modal|popup)([\s_-]|$)",
    re.IGNORECASE,
)
_SPACE = lazy(r"[ \t\r\f\v\u00a0]+")


def extract_page(html: str, url: str | None = None) -> Page | None:
    """The article on a page, or None when extraction finds no text (the caller may fall back)."""
    import trafilatura
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (ValueError, TypeError, lxml_html.etree.ParserError):  # type: ignore[attr-defined]
        return None
    metadata = _metadata(tree)
    _drop_boilerplate(tree)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        favor_precision=False,
        deduplicate=False,
        config=_trafilatura_config(),
    )
    if document is None:
        return None
    found = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    site_name = _clean(found.get("sitename")) or metadata.get("site_name")
    title = _strip_site_name(_clean(found.get("title")) or metadata.get("title"), site_name)
    text = _paragraphs(found.get("text") or "", title)
    if not text:
        return None
    date = normalize_date(metadata.get("time")) or normalize_date(found.get("date")) or _htmldate(html, url)
    return Page(
        title=title,
        text=text,
        date=date,
        author=_clean(found.get("author")),
        site_name=site_name,
        url=metadata.get("url") or _clean(found.get("url")),
        topic=_first(found.get("categories")),
    )


def _trafilatura_config():
    from trafilatura.settings import use_config

    global _CONFIG
    if _CONFIG is None:
        config = use_config()
        # News briefs are short: keep a two-sentence article rather than reporting nothing.
        config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
        config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
        config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # signals only work in the main thread
        _CONFIG = config
    return _CONFIG


_CONFIG = None


def _metadata(tree) -> dict[str, str]:
    """What the page says about itself in markup trafilatura may read differently:
    <link rel=canonical>/og:url, <time datetime>, og:site_name, <title>."""
    found: dict[str, str] = {}
    for xpath, key in (
        ("//link[@rel='canonical']/@href", "url"),
        ("//meta[@property='og:url']/@content", "url"),
        ("//article//time/@datetime", "time"),
        ("//time[@itemprop='datePublished']/@datetime", "time"),
        ("//meta[@property='article:published_time']/@content", "time"),
        ("//time/@datetime", "time"),
        ("//meta[@property='og:site_name']/@content", "site_name"),
        ("//meta[@property='og:title']/@content", "title"),
        ("//title/text()", "title"),
    ):
        if key in found:
            continue
        values = [_clean(str(value)) for value in tree.xpath(xpath)]
        values = [value for value in values if value]
        if values:
            found[key] = values[0]
    return found


def _drop_boilerplate(tree) -> None:
    for element in list(tree.iter(*_NEVER_ARTICLE_TAGS)):
        _remove(element)
    for element in list(tree.iter()):
        if not isinstance(element.tag, str) or element.tag in ("html", "body", "article", "main"):
            continue
        marks = f"{element.get('class', '')} {element.get('id', '')} {element.get('role', '')}"
        if element.get("aria-hidden") == "true" or element.get("hidden") is not None or _BOILERPLATE_CLASS.search(marks):
            _remove(element)


def _remove(element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    # Keep the tail: text after the element belongs to its parent.
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _paragraphs(text: str, title: str | None) -> str:
    """One paragraph per line of trafilatura's text, joined by blank lines; a first line that
    repeats the headline is dropped (the headline is the title, not paragraph 1)."""
    lines = [_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if lines and title and _same_words(lines[0], title):
        lines = lines[1:]
    return "\n\n".join(lines)


def _strip_site_name(title: str | None, site_name: str | None) -> str | None:
    """"Mayor opens library - Daily Example News" -> "Mayor opens library"."""
    if not title or not site_name:
        return title
    for separator in (" - ", " | ", " – ", " — ", " :: ", " · ", ": "):
        head, sep, tail = title.rpartition(separator)
        if sep and head and _same_words(tail, site_name):
            return head.strip()
        tail_first, sep, rest = title.partition(separator)
        if sep and rest and _same_words(tail_first, site_name):
            return rest.strip()
    return title


def _same_words(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().casefold() == re.sub(r"\W+", " ", b).strip().casefold()


def _htmldate(html: str, url: str | None) -> str | None:
    try:
        from htmldate import find_date

        found = find_date(html, url=url, original_date=True, extensive_search=False)
    except Exception:  # htmldate raises assorted errors on odd markup: no date, not a failure
        return None
    return normalize_date(found)


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = _SPACE.sub(" ", value).strip()
    return value or None


def _first(values: object) -> str | None:
    if isinstance(values, list | tuple) and values:
        return _clean(values[0])
    return _clean(values)


def content_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def host_of(url: str) -> str:
    return urlsplit(url).hostname or url


# --- pages as articles ---------------------------------------------------------------------


@dataclass
class WebReport:
    """What fetching a batch of URLs produced."""

    articles: list = field(default_factory=list)  # list[Article]
    failed: list[FetchError] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # URLs read as whole visible text
    duplicates: int = 0


def fetch_article(fetcher: Fetcher, url: str, **fields: object):
    """``(article, fallback)`` for the page at ``url``; ``FetchError`` when it cannot be had.

    ``fields`` (date, title, author, source, topic from a feed entry) fill what the page
    does not say itself.
    """
    from quotebot.index.loaders import read_html_page
    from quotebot.index.articles import Article

    fetched = fetcher.page(url)
    article, fallback = read_html_page(
        fetched.text(), article_id=article_id_for_url(url), default_title=url, url=article_id_for_url(url)
    )
    if article is None:
        raise FetchError(url, "no text on the page")
    if fields:
        known = article.model_dump(exclude={"content_hash"})
        for key, value in fields.items():
            if value and (not known.get(key) or (key == "title" and known["title"] == url)):
                known[key] = value
        article = Article(**known)
    return article, fallback


def fetch_articles(urls, fetcher: Fetcher, on_failure=None) -> WebReport:
    """Fetch and extract each URL; a failure is reported (``on_failure``) and the rest go on."""
    report = WebReport()
    seen: set[str] = set()
    for url in urls:
        try:
            article, fallback = fetch_article(fetcher, url)
        except FetchError as error:
            report.failed.append(error)
            if on_failure is not None:
                on_failure(error)
            continue
        if article.content_hash in seen:
            report.duplicates += 1
            continue
        seen.add(article.content_hash)
        if fallback:
            report.fallbacks.append(url)
        report.articles.append(article)
    return report
