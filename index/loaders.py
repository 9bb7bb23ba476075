"""Loading news articles from files and folders.

Supported inputs: plain text (``.txt``), Markdown (``.md``), HTML (``.html``/``.htm``),
JSON (``.json``) and JSON Lines (``.jsonl``). Article text is kept verbatim because
answers quote it by character offset; HTML and Markdown are stored as what a reader sees
(the article trafilatura extracts from a page; Markdown rendered to plain text), since
markup is not prose. Files of other kinds are counted and named in the report.

A bad input (binary, empty or undecodable file, malformed record) is skipped and
reported rather than stopping a 20k-article load; in strict mode the first problem
raises :class:`InputError` instead.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quotebot.index.articles import Article
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.lazyre import lazy


class SkippedInput(BaseModel):
    """One input (a file, or a record in a file) that was not loaded, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int | None = None
    reason: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"


class LoadReport(BaseModel):
    """What a load produced: the articles, the skipped inputs and the dropped duplicates.

    ``unsupported``: files of a kind quotebot does not read (.pdf, .csv, ...), by path.
    ``fallbacks``: HTML files where extraction found no article and the whole visible
    text was read instead (it may hold menus and footers).
    ``unreadable`` are the absolute paths of folders and files that could not be read (an
    OS error, not bad content): a build keeps the articles it indexed from them before,
    since a read error must never remove indexed articles.
    """

    articles: list[Article] = Field(default_factory=list)
    skipped: list[SkippedInput] = Field(default_factory=list)
    duplicates: int = 0
    unsupported: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    unreadable: list[str] = Field(default_factory=list)


class InputError(QuotebotError):
    """A problem that stops the load: a missing path, or any skip in strict mode."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, skipped: SkippedInput | None = None) -> None:
        super().__init__(message)
        self.skipped = skipped


# Articles longer than this are skipped with a warning (index.max_article_chars): one 30 MB
# "article" is a mistake (a log, a dump), and would hold up a build for minutes.
DEFAULT_MAX_ARTICLE_CHARS = 2_000_000
# JSON nested deeper than this is refused: Python's parser and encoder recurse, and a
# record's metadata is stored and dumped again.
MAX_JSON_DEPTH = 64


def load_articles(
    paths: Sequence[Path],
    *,
    strict: bool = False,
    on_skip: Callable[[SkippedInput], None] | None = None,
    max_article_chars: int = DEFAULT_MAX_ARTICLE_CHARS,
) -> LoadReport:
    """Load every article under ``paths`` (files or folders), in a deterministic order.

    Exact duplicates (same text) are dropped and counted; every other problem is a skip,
    reported through ``on_skip`` as it happens, or raised as :class:`InputError` if
    ``strict``. A path that does not exist always raises: it is a usage error, not bad data.
    Folders that cannot be read are skips too, and are listed in ``unreadable``.
    """
    roots = [Path(path) for path in paths]
    for root in roots:  # check all paths first so a typo fails before any work is done
        if not os.path.lexists(root):
            raise InputError(f"no such file or folder: {root}")
    collector = _Collector(strict, on_skip, max_article_chars)
    for root in roots:
        for file in _files(root, collector):
            _load_file(file, collector)
    return LoadReport(
        articles=collector.articles,
        skipped=collector.skipped,
        duplicates=collector.duplicates,
        unsupported=collector.unsupported,
        fallbacks=collector.fallbacks,
        unreadable=collector.unreadable,
    )


# --- files -------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: Path
    display: str  # how messages and ``source`` name it: the root as given, plus the part below
    id: str  # article id for one-article formats: the path relative to the corpus root


class _Entry(NamedTuple):
    """What a reader found: an article, or the reason a record was skipped."""

    item: Article | str
    line: int | None = None
    record: int | None = None  # 1-based index of the record in a .json file
    fallback: bool = False  # an HTML page read by the plain reader: extraction found nothing


class _Unreadable(QuotebotError):
    """The file as a whole cannot be loaded; ``os_error``: it could not be read at all."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, reason: str, line: int | None = None, *, os_error: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.os_error = os_error


_SNIFF_BYTES = 8192


def _files(root: Path, collector: _Collector) -> Iterator[_File]:
    """The files to load under ``root``, sorted by relative path, hidden ones left out.

    Folders that cannot be listed and file names that are not UTF-8 are skips, never a
    silent gap or a crash.
    """
    if not root.is_dir():
        if _undecodable(root.as_posix()):
            collector.skip(_shown(root), "file name is not valid UTF-8")
        else:
            yield _File(root, root.as_posix(), root.name)
        return
    found: list[Path] = []
    for dirpath, filenames in _walk(root, collector):
        for name in filenames:
            if name.startswith("."):  # unsupported kinds too: they are counted, not ignored
                continue
            path = Path(dirpath, name)
            if _undecodable(path.relative_to(root).as_posix()):
                collector.skip(_shown(path), "file name is not valid UTF-8")
                continue
            found.append(path)
    for path in sorted(found, key=lambda path: path.relative_to(root).parts):
        yield _File(path, path.as_posix(), path.relative_to(root).as_posix())


def _walk(root: Path, collector: _Collector) -> Iterator[tuple[str, list[str]]]:
    """``(folder, file names)`` of every folder under ``root``, hidden folders left out.

    Symlinked folders are followed (a corpus is often a folder of links); each real folder,
    known by ``(st_dev, st_ino)``, is read once, so a link loop ends. A folder that cannot
    be listed is reported (``os.walk`` alone passes over it in silence).
    """
    seen: dict[tuple[int, int], str] = {}

    def unreadable(error: OSError) -> None:
        folder = error.filename if error.filename is not None else root
        collector.unreadable_path(_shown(Path(folder)), f"cannot read folder ({error.strerror or error})", folder)

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        try:
            status = os.stat(dirpath)
        except OSError as error:
            unreadable(error)
            dirnames[:] = []
            continue
        key = (status.st_dev, status.st_ino)
        if key in seen:
            collector.skip(_shown(Path(dirpath)), f"folder already read as {_shown(Path(seen[key]))} (symlink loop)")
            dirnames[:] = []
            continue
        seen[key] = dirpath
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        yield dirpath, filenames


def _undecodable(name: str) -> bool:
    """True for a name with bytes that are not UTF-8 (``os`` hands them over as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(path: Path) -> str:
    """A path as messages show it: undecodable bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _load_file(file: _File, collector: _Collector) -> None:
    suffix = file.path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        collector.unsupported_file(file.display, suffix)
        return
    try:
        content = _read_text(file.path, collector.max_article_chars)
    except _Unreadable as problem:
        if problem.os_error:
            collector.unreadable_path(file.display, problem.reason, file.path)
        else:
            collector.skip(file.display, problem.reason, problem.line)
        return
    try:
        for entry in reader(file, content):
            collector.add(file, entry)
    except RecursionError:  # a reader that recursed anyway: the file is skipped, the build goes on
        collector.skip(file.display, f"nested deeper than {MAX_JSON_DEPTH} levels")


# Byte order marks of the Unicode encodings read besides UTF-8; UTF-32 first, since its
# little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# UTF-8 takes at most 4 bytes a character (UTF-32: 4): a file larger than this many bytes
# per allowed character cannot hold an article within the limit, and is not read at all.
_MAX_BYTES_PER_CHAR = 4


def _read_text(path: Path, max_chars: int | None = None) -> str:
    try:
        if not path.is_file():  # a FIFO or device would block or never end
            raise _Unreadable("not a regular file")
        size = path.stat().st_size
        if max_chars is not None and path.suffix.lower() not in (".json", ".jsonl") and size > max_chars * _MAX_BYTES_PER_CHAR:
            raise _Unreadable(f"{size:,} bytes, larger than index.max_article_chars ({max_chars:,} characters)")
        data = path.read_bytes()
    except OSError as error:
        raise _Unreadable(f"cannot read ({error.strerror or error})", os_error=True) from error
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                content = data.decode(encoding)  # the codec drops the byte order mark
            except UnicodeDecodeError as error:
                raise _Unreadable(f"not valid {encoding.upper()} (it starts with a {encoding.upper()} byte order mark)") from error
            if not content.strip():
                raise _Unreadable("empty file")
            return content
    if b"\0" in data[:_SNIFF_BYTES]:
        raise _Unreadable("binary file, not text")
    try:
        content = data.decode("utf-8-sig")  # -sig: a leading BOM is dropped, not kept as text
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1
        byte = error.object[error.start]
        raise _Unreadable(f"not valid UTF-8 (byte 0x{byte:02x})", line) from error
    if not content.strip():
        raise _Unreadable("empty file")
    return content


class _Collector:
    """Accumulates articles, drops duplicates and reports skips as they happen."""

    def __init__(
        self,
        strict: bool,
        on_skip: Callable[[SkippedInput], None] | None,
        max_article_chars: int | None = DEFAULT_MAX_ARTICLE_CHARS,
    ) -> None:
        self.articles: list[Article] = []
        self.skipped: list[SkippedInput] = []
        self.duplicates = 0
        self.unsupported: list[str] = []
        self.fallbacks: list[str] = []
        self.unreadable: list[str] = []
        self.max_article_chars = max_article_chars
        self._strict = strict
        self._on_skip = on_skip
        self._hashes: set[str] = set()
        self._first_seen: dict[str, str] = {}  # article id -> where it was loaded from

    def skip(self, path: str, reason: str, line: int | None = None) -> None:
        problem = SkippedInput(path=path, line=line, reason=reason)
        if self._strict:
            raise InputError(str(problem), problem)
        self.skipped.append(problem)
        if self._on_skip is not None:
            self._on_skip(problem)

    def unsupported_file(self, path: str, suffix: str) -> None:
        # Counted and named in the summary, not a skip: a .pdf beside the articles is no
        # damaged article, so even --strict goes on.
        self.unsupported.append(path)

    def unreadable_path(self, shown: str, reason: str, path: str | Path) -> None:
        """A folder or file that could not be read: a skip, remembered so a build keeps
        what it indexed from there before."""
        self.unreadable.append(os.path.abspath(os.fsdecode(path)))
        self.skip(shown, reason)

    def add(self, file: _File, entry: _Entry) -> None:
        if entry.fallback:
            self.fallbacks.append(file.display)
        prefix = f"record {entry.record}: " if entry.record is not None else ""
        if isinstance(entry.item, str):
            self.skip(file.display, prefix + entry.item, entry.line)
            return
        article = entry.item
        limit = self.max_article_chars
        if limit is not None and len(article.text) > limit:
            reason = f"{prefix}article of {len(article.text):,} characters, larger than index.max_article_chars ({limit:,})"
            self.skip(file.display, reason, entry.line)
            return
        digest = article.content_hash
        if digest in self._hashes:
            self.duplicates += 1
            return
        first = self._first_seen.get(article.id)
        if first is not None:
            reason = f"{prefix}duplicate id {article.id!r} (first in {first})"
            self.skip(file.display, reason, entry.line)
            return
        self._hashes.add(digest)
        self._first_seen[article.id] = (
            file.display if entry.line is None else f"{file.display}:{entry.line}"
        )
        self.articles.append(article)


# --- plain text and Markdown ---------------------------------------------------------

# A first line followed by a blank line is a headline. A longer "first line" is more
# likely a one-line opening paragraph, which must stay in the (quotable) text.
_TITLE_MAX_CHARS = 300
_TITLE_LINE = lazy(r"[ \t]*(\S[^\r\n]*?)[ \t]*\r?\n(?:[ \t]*\r?\n)+")


def _read_plain(file: _File, content: str) -> Iterator[_Entry]:
    title, text = _split_title(content, markdown=file.path.suffix.lower() == ".md")
    # No source: that is the site or feed an article comes from; a file's place is its id.
    yield _Entry(Article(id=file.id, title=title or file.path.stem, text=text, metadata=_file_metadata(file)))


def _split_title(content: str, *, markdown: bool) -> tuple[str | None, str]:
    """``(title, text)``; the title is None when the file does not start with one."""
    match = _TITLE_LINE.match(content)
    if match:
        title = match.group(1).lstrip("#").strip() if markdown else match.group(1)
        text = content[match.end() :].rstrip()
        if title and text and len(title) <= _TITLE_MAX_CHARS:
            return title, text
    return None, content.rstrip()


# --- HTML ----------------------------------------------------------------------------

_HIDDEN_TAGS = frozenset({"script", "style", "head", "noscript", "template", "svg"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})  # inline, but cells must not run together
_HTML_SPACE = lazy(r"[ \t\n\r\f]+")  # HTML whitespace only: &nbsp; is kept


class _HtmlText(HTMLParser):
    """Collects the visible text of a page as paragraphs, plus its title and first h1."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive already unescaped
        self.paragraphs: list[str] = []
        self.title = ""
        self.first_h1 = ""
        self._buffer: list[str] = []
        self._title: list[str] | None = None  # collecting while inside <title>
        self._hidden: dict[str, int] = dict.fromkeys(_HIDDEN_TAGS, 0)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._title = []
        elif tag in _HIDDEN_TAGS:
            self._hidden[tag] += 1
        elif tag == "body":
            self._hidden["head"] = 0  # an unclosed <head> must not hide the whole page
        elif tag in _CELL_TAGS:
            self._buffer.append(" ")
        if tag in _BLOCK_TAGS:
            self._end_paragraph()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            self.title = self.title or _HTML_SPACE.sub(" ", "".join(self._title)).strip()
            self._title = None
        elif tag in _HIDDEN_TAGS:
            self._hidden[tag] = max(0, self._hidden[tag] - 1)
        if tag in _BLOCK_TAGS:
            paragraph = self._end_paragraph()
            if tag == "h1" and not self.first_h1:
                self.first_h1 = paragraph

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        elif not any(self._hidden.values()):
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._end_paragraph()

    def _end_paragraph(self) -> str:
        paragraph = _HTML_SPACE.sub(" ", "".join(self._buffer)).strip(" ")
        self._buffer.clear()
        if paragraph.strip():
            self.paragraphs.append(paragraph)
        return paragraph


def _read_html(file: _File, content: str) -> Iterator[_Entry]:
    article, fallback = read_html_page(content, article_id=file.id, default_title=file.path.stem)
    if article is not None:
        article = article.model_copy(update={"metadata": {**article.metadata, **_file_metadata(file)}})
    yield _Entry(article if article is not None else "no visible text", fallback=fallback)


def _file_metadata(file: _File) -> dict[str, str]:
    """Where a file's article was read from (``source`` is the site or feed name): an update
    keeps the articles of a file it could not read (builder._may_come_from)."""
    return {"file": file.display}


def read_html_page(
    content: str, *, article_id: str, default_title: str, url: str | None = None
) -> tuple[Article | None, bool]:
    """``(article, fallback)`` from a page: the article trafilatura extracts (boilerplate
    left out); the whole visible text only when extraction finds nothing (``fallback``);
    None when the page has no text at all. ``url``: where the page was fetched from."""
    from quotebot.index.web import extract_page

    page = extract_page(content, url)
    if page is not None:
        article = Article(
            id=article_id,
            title=page.title or default_title,
            text=page.text,
            date=page.date,
            url=url or page.url,
            source=page.site_name,
            author=page.author,
            topic=page.topic,
            metadata={"canonical_url": page.url} if url and page.url and page.url != url else {},
        )
        return article, False
    visible = _HtmlText()
    visible.feed(content)
    visible.close()
    if not visible.paragraphs:
        return None, False
    title = visible.title or visible.first_h1 or default_title
    paragraphs = visible.paragraphs
    if paragraphs[0] == title and len(paragraphs) > 1:
        paragraphs = paragraphs[1:]  # the headline is the title, not paragraph 1
    return Article(id=article_id, title=title, text="\n\n".join(paragraphs), url=url), True


# --- Markdown ----------------------------------------------------------------------------


def _read_markdown(file: _File, content: str) -> Iterator[_Entry]:
    """Markdown as a reader sees it: links become their words, emphasis marks go, each block
    (paragraph, heading, list item, quote, code block) is one paragraph."""
    from quotebot.index.markdown import render_markdown

    title, text = render_markdown(content)
    if not text:
        if title:  # a lone heading is an article of one line, not nothing
            text, title = title, None
        else:
            yield _Entry("no text (only Markdown markup)")
            return
    yield _Entry(Article(id=file.id, title=title or file.path.stem, text=text, metadata=_file_metadata(file)))


# --- JSON and JSON Lines ---------------------------------------------------------------

_STRING_FIELDS = ("title", "date", "url", "source", "author", "topic")


def _parse_json(text: str) -> tuple[Any, str | None, int | None]:
    """``(data, None, None)``, or ``(None, reason, line)`` for JSON that cannot be used.

    Python's parser recurses: JSON nested a few thousand levels deep would end the whole
    load with a RecursionError, so it is refused as a problem of this input.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"malformed JSON ({error.msg})", error.lineno
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        return None, f"malformed JSON ({str(error).splitlines()[0][:80]})", None
    return data, None, None


def _read_json(file: _File, content: str) -> Iterator[_Entry]:
    data, problem, line = _parse_json(content)
    if problem is not None:
        yield _Entry(problem, line=line)
        return
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        records = data["articles"]
    else:
        records = data if isinstance(data, list) else [data]
    if not records:
        yield _Entry("no records")
    # json.loads keeps no positions, so records are named by index rather than line.
    for number, record in enumerate(records, 1):
        yield _Entry(_record_article(record), record=number)


def _read_jsonl(file: _File, content: str) -> Iterator[_Entry]:
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028 or U+0085.
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        record, problem, _ = _parse_json(line)
        if problem is not None:
            yield _Entry(problem, line=number)
            continue
        yield _Entry(_record_article(record), line=number)


def _record_article(record: Any) -> Article | str:
    """The article a JSON record describes, or the reason it cannot be loaded."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    raw_id = record.get("id")
    if raw_id is None or raw_id == "":
        return "record without id"
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        return "record id is not a string or integer"
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return "record without text"
    problem = _json_problem(record)
    if problem is not None:
        return problem
    article_id = str(raw_id)
    fields: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("id", "text") or (key in _STRING_FIELDS and value is None):
            continue
        if key in _STRING_FIELDS and isinstance(value, str):
            fields[key] = value
        else:  # unknown fields, and known ones of an unexpected type, are kept, not lost
            metadata[key] = value
    title = fields.pop("title", "").strip() or article_id
    try:
        return Article(id=article_id, title=title, text=text, metadata=metadata, **fields)
    except ValidationError as error:  # named by field only: messages never echo the content
        return f"record field {'.'.join(map(str, error.errors()[0]['loc'])) or '?'} is not valid"


def _json_problem(value: Any) -> str | None:
    """Why a parsed record cannot be stored, or None: nested deeper than ``MAX_JSON_DEPTH``,
    or a string with a lone surrogate (``"\\ud800"`` is valid JSON, but not text that can
    be written as UTF-8). Iterative, so depth itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _undecodable(item):
                return "a string in the record is not valid Unicode (a lone surrogate escape)"
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            return f"record nested deeper than {MAX_JSON_DEPTH} levels"
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return None


_Reader = Callable[[_File, str], Iterator[_Entry]]
_READERS: dict[str, _Reader] = {
    ".txt": _read_plain,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".html": _read_html,
    ".htm": _read_html,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}
