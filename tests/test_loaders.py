"""Tests for index.loaders: every supported format, every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotebot.index.articles import Article
from quotebot.index.loaders import InputError, LoadReport, SkippedInput, load_articles

LAVROV = (
    "Russian Foreign Minister Sergei Lavrov said the militaries of Jerusalem and Moscow "
    "have resumed cooperation in Syria."
)
HERZOG = "Chairman Herzog, who formerly led Israel’s opposition, welcomed the move."
# Double spaces, curly quotes and an em dash: offsets into this must survive loading.
VERBATIM = (
    "Lavrov said,  “After the tragic accident  the measures have been taken.”\n"
    "It was the ministry’s first comment — and not its last.\n\n"
    "  An indented second paragraph\twith a tab."
)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))  # no newline translation
    return path


def load_one(path: Path) -> Article:
    report = load_articles([path], strict=True)
    assert len(report.articles) == 1
    return report.articles[0]


def only_skip(report: LoadReport) -> SkippedInput:
    assert len(report.skipped) == 1, report.skipped
    return report.skipped[0]


# --- plain text and Markdown ----------------------------------------------------------


def test_txt_with_title(tmp_path: Path) -> None:
    content = f"Russia and Israel resume cooperation\n\n{LAVROV}\n\n{HERZOG}\n"
    path = write(tmp_path / "lavrov.txt", content)
    article = load_one(path)
    assert article.id == "lavrov.txt"
    assert article.title == "Russia and Israel resume cooperation"
    assert article.text == f"{LAVROV}\n\n{HERZOG}"
    assert article.source == path.as_posix()


def test_txt_without_title_uses_stem_and_whole_text(tmp_path: Path) -> None:
    content = f"{LAVROV}\n{HERZOG}\n"
    article = load_one(write(tmp_path / "syria-talks.txt", content))
    assert article.title == "syria-talks"
    assert article.text == content.rstrip()


def test_long_first_line_is_a_paragraph_not_a_title(tmp_path: Path) -> None:
    opening = LAVROV * 4
    article = load_one(write(tmp_path / "long.txt", f"{opening}\n\n{HERZOG}\n"))
    assert article.title == "long"
    assert article.text.startswith(opening)


def test_title_only_file_keeps_its_line_as_text(tmp_path: Path) -> None:
    article = load_one(write(tmp_path / "brief.txt", "Lavrov meets Herzog in Moscow\n\n\n"))
    assert article.title == "brief"
    assert article.text == "Lavrov meets Herzog in Moscow"


def test_crlf_title_split(tmp_path: Path) -> None:
    article = load_one(write(tmp_path / "win.txt", f"Headline\r\n\r\n{LAVROV}\r\n{HERZOG}\r\n"))
    assert article.title == "Headline"
    assert article.text == f"{LAVROV}\r\n{HERZOG}"


def test_md_heading_title(tmp_path: Path) -> None:
    content = f"## Moscow and Jerusalem talk again\n\n{LAVROV}\n"
    article = load_one(write(tmp_path / "news.md", content))
    assert article.title == "Moscow and Jerusalem talk again"
    assert article.text == LAVROV


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + f"Headline\n\n{HERZOG}\n".encode())
    article = load_one(path)
    assert article.title == "Headline"
    assert article.text == HERZOG


def test_text_is_verbatim(tmp_path: Path) -> None:
    article = load_one(write(tmp_path / "quote.txt", f"Lavrov on Syria\n\n{VERBATIM}\n\n  \n"))
    assert article.text == VERBATIM
    start = article.text.index("“")
    end = article.text.index("”") + 1
    quote = "“After the tragic accident  the measures have been taken.”"
    assert article.text[start:end] == quote


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1).filter(lambda text: text.strip() and "\0" not in text))
def test_jsonl_text_round_trips_exactly(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    write(folder / "a.jsonl", json.dumps({"id": "a", "text": text}) + "\n")
    assert load_one(folder / "a.jsonl").text == text


# --- HTML -------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head>
  <title>Russia &amp; Israel   resume cooperation</title>
  <style>p { color: red }</style>
  <script>var tracking = "not news";</script>
</head>
<body>
  <nav>Home</nav>
  <article>
    <h1>Russia and Israel resume military cooperation</h1>
    <p>Sergei   Lavrov said the militaries
       have resumed <b>cooperation</b>&nbsp;in Syria.</p>
    <p>Israel&#8217;s security &lt;interests&gt; matter.<br>A new line.</p>
    <noscript>Enable JavaScript</noscript>
    <script>alert("hidden")</script>
  </article>
</body></html>
"""


def test_html_title_text_and_entities(tmp_path: Path) -> None:
    article = load_one(write(tmp_path / "page.html", PAGE))
    assert article.title == "Russia & Israel resume cooperation"
    assert article.text == (
        "Home\n\n"
        "Russia and Israel resume military cooperation\n\n"
        "Sergei Lavrov said the militaries have resumed cooperation\xa0in Syria.\n\n"
        "Israel’s security <interests> matter.\n\n"
        "A new line."
    )
    for hidden in ("tracking", "color", "alert", "JavaScript"):
        assert hidden not in article.text


def test_html_title_from_h1_then_stem(tmp_path: Path) -> None:
    with_h1 = "<body><h1>Lavrov  speaks</h1><p>He spoke.</p></body>"
    assert load_one(write(tmp_path / "a.htm", with_h1)).title == "Lavrov speaks"
    assert load_one(write(tmp_path / "b.html", "<p>He spoke.</p>")).title == "b"


def test_html_unclosed_head_does_not_hide_body(tmp_path: Path) -> None:
    page = "<html><head><title>T</title><body><p>Visible news.</p></body></html>"
    assert load_one(write(tmp_path / "a.html", page)).text == "Visible news."


def test_html_without_visible_text_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "blank.html", "<html><head><title>x</title></head><body> </body></html>")
    assert str(only_skip(load_articles([tmp_path]))).endswith("blank.html: no visible text")


# --- JSON and JSON Lines -------------------------------------------------------------------


def test_json_list_of_records(tmp_path: Path) -> None:
    records = [{"id": 7, "title": "Lavrov", "text": LAVROV}, {"id": "h-1", "text": HERZOG}]
    report = load_articles([write(tmp_path / "a.json", json.dumps(records))])
    assert [(a.id, a.title, a.text) for a in report.articles] == [
        ("7", "Lavrov", LAVROV),
        ("h-1", "h-1", HERZOG),  # a missing title defaults to the id
    ]


def test_json_articles_object(tmp_path: Path) -> None:
    data = {"articles": [{"id": "a", "text": LAVROV}, {"id": "b", "text": HERZOG}]}
    report = load_articles([write(tmp_path / "feed.json", json.dumps(data, indent=2))])
    assert [a.id for a in report.articles] == ["a", "b"]


def test_json_single_record(tmp_path: Path) -> None:
    record = {"id": "solo", "title": "Solo", "text": LAVROV, "url": "https://example.com/solo"}
    article = load_one(write(tmp_path / "solo.json", json.dumps(record)))
    assert (article.id, article.url, article.metadata) == ("solo", "https://example.com/solo", {})


def test_jsonl_fields_and_metadata(tmp_path: Path) -> None:
    record = {
        "id": "rt-2018-12-20",
        "title": "Lavrov on Syria",
        "text": LAVROV,
        "date": "2018-12-20",
        "url": "https://example.com/lavrov",
        "source": "Example Times",
        "author": "J. Doe",
        "tags": ["syria", "russia"],
        "word_count": 18,
    }
    path = write(tmp_path / "feed.jsonl", json.dumps(record, ensure_ascii=False) + "\n\n")
    article = load_one(path)
    assert (article.id, article.title, article.text) == ("rt-2018-12-20", "Lavrov on Syria", LAVROV)
    assert (article.date, article.url, article.source) == (
        "2018-12-20",
        "https://example.com/lavrov",
        "Example Times",
    )
    assert article.metadata == {"author": "J. Doe", "tags": ["syria", "russia"], "word_count": 18}


def test_non_string_known_fields_go_to_metadata(tmp_path: Path) -> None:
    line = json.dumps({"id": 1, "text": LAVROV, "date": 20181220, "url": None})
    article = load_one(write(tmp_path / "a.jsonl", line))
    assert article.date is None and article.url is None
    assert article.metadata == {"date": 20181220}


def test_malformed_jsonl_line_skips_only_that_record(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": LAVROV}),
        "",
        '{"id": "b" "text": "missing comma"}',
        json.dumps({"id": "c", "text": HERZOG}),
    ]
    path = write(tmp_path / "articles" / "bad.jsonl", "\n".join(lines))
    report = load_articles([path])
    assert [a.id for a in report.articles] == ["a", "c"]
    message = str(only_skip(report))
    assert message == f"{path.as_posix()}:3: malformed JSON (Expecting ',' delimiter)"
    assert "bad.jsonl:3:" in message


def test_malformed_json_file_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '[\n  {"id": "a", "text": "ok"},\n  {"id": "b",, }\n]')
    skip = only_skip(load_articles([path]))
    assert skip.line == 3
    assert "bad.json:3: malformed JSON" in str(skip)


def test_record_without_text(tmp_path: Path) -> None:
    records = [{"id": 1, "text": LAVROV}, {"id": 2, "text": "  "}, {"id": 3}]
    jsonl = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in records))
    report = load_articles([jsonl])
    assert [str(s) for s in report.skipped] == [
        f"{jsonl.as_posix()}:2: record without text",
        f"{jsonl.as_posix()}:3: record without text",
    ]
    records = [{"id": 4, "text": HERZOG}, {"id": 5, "text": 5}]
    as_json = write(tmp_path / "b.json", json.dumps(records))
    expected = f"{as_json.as_posix()}: record 2: record without text"
    assert str(only_skip(load_articles([as_json]))) == expected


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"text": LAVROV}, "record without id"),
        ({"id": "", "text": LAVROV}, "record without id"),
        ({"id": [1], "text": LAVROV}, "record id is not a string or integer"),
        ("just a string", "record is not a JSON object"),
    ],
)
def test_bad_records(tmp_path: Path, record: object, reason: str) -> None:
    path = write(tmp_path / "a.jsonl", json.dumps(record))
    assert only_skip(load_articles([path])).reason == reason


def test_empty_json_list(tmp_path: Path) -> None:
    assert only_skip(load_articles([write(tmp_path / "a.json", "[]")])).reason == "no records"


# --- bad files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("x.txt", b"GIF89a\x00\x01\x00binary", "x.txt: binary file, not text"),
        ("x.jsonl", b"", "x.jsonl: empty file"),
        ("x.md", b" \n\t\n", "x.md: empty file"),
        (
            "x.txt",
            "Headline\n\ncaf\xe9 in Paris\n".encode("latin-1"),
            "x.txt:3: not valid UTF-8 (byte 0xe9)",
        ),
    ],
)
def test_bad_files_are_skipped(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    write(tmp_path / name, content)
    write(tmp_path / "good.txt", LAVROV)
    report = load_articles([tmp_path])
    assert [a.id for a in report.articles] == ["good.txt"]
    assert str(only_skip(report)) == f"{(tmp_path / expected).as_posix()}"


def test_on_skip_is_called_for_each_skip(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"")
    write(tmp_path / "b.jsonl", "{oops\n" + json.dumps({"id": 1, "text": LAVROV}) + "\n[1,\n")
    seen: list[SkippedInput] = []
    report = load_articles([tmp_path], on_skip=seen.append)
    assert seen == report.skipped
    where = [(Path(s.path).name, s.line) for s in seen]
    assert where == [("a.txt", None), ("b.jsonl", 1), ("b.jsonl", 3)]


def test_strict_mode_raises_on_first_problem(tmp_path: Path) -> None:
    good_line = json.dumps({"id": 1, "text": LAVROV})
    bad = write(tmp_path / "articles" / "bad.jsonl", good_line + "\n{nope\n")
    write(tmp_path / "articles" / "z.txt", b"\x00\x00")
    with pytest.raises(InputError) as caught:
        load_articles([tmp_path / "articles"], strict=True)
    message = str(caught.value)
    assert message.startswith(f"{bad.as_posix()}:2: malformed JSON (")
    assert "bad.jsonl:2:" in message
    reason = message.split(": ", 1)[1]
    assert caught.value.skipped == SkippedInput(path=bad.as_posix(), line=2, reason=reason)


def test_strict_mode_raises_on_undecodable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.txt", "Déjà vu in Moscow".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.txt:1: not valid UTF-8 \(byte 0xe9\)"):
        load_articles([path], strict=True)


def test_missing_path_always_raises(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", LAVROV)
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match="no such file or folder: .*nope"):
        load_articles([tmp_path, missing])


def test_unsupported_file_named_directly_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "report.pdf", b"%PDF-1.4")
    assert only_skip(load_articles([path])).reason == "unsupported file type (.pdf)"


# --- duplicates -----------------------------------------------------------------------------


def test_exact_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", f"Headline\n\n{LAVROV}\n")
    write(tmp_path / "b.txt", f"Another headline\n\n{LAVROV}")  # same text, other title
    write(tmp_path / "c.jsonl", json.dumps({"id": "c", "text": LAVROV}))
    report = load_articles([tmp_path])
    assert [a.id for a in report.articles] == ["a.txt"]
    assert report.duplicates == 2
    assert report.skipped == []


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    first = write(tmp_path / "a.jsonl", json.dumps({"id": "x", "text": LAVROV}))
    later = write(tmp_path / "b.jsonl", "\n" + json.dumps({"id": "x", "text": HERZOG}))
    report = load_articles([tmp_path])
    assert [a.text for a in report.articles] == [LAVROV]
    skip = only_skip(report)
    assert str(skip) == f"{later.as_posix()}:2: duplicate id 'x' (first in {first.as_posix()}:1)"
    with pytest.raises(InputError, match="duplicate id 'x'"):
        load_articles([tmp_path], strict=True)


# --- folders and ids ------------------------------------------------------------------------


def test_ids_are_relative_to_the_corpus_root_and_order_is_sorted(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "world" / "europe" / "moscow.txt", LAVROV)
    write(corpus / "b.md", HERZOG)
    write(corpus / "a" / "z.html", "<p>Jerusalem welcomed the talks.</p>")
    write(corpus / ".git" / "notes.txt", "hidden folder")
    write(corpus / ".draft.txt", "hidden file")
    write(corpus / "photo.jpg", b"\xff\xd8\xff")
    write(corpus / "README", "no extension")
    report = load_articles([corpus])
    assert [a.id for a in report.articles] == ["a/z.html", "b.md", "world/europe/moscow.txt"]
    assert report.skipped == []  # hidden and unsupported files are ignored silently
    assert report.articles[2].source == (corpus / "world" / "europe" / "moscow.txt").as_posix()


def test_ids_do_not_depend_on_where_the_corpus_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for place in ("one", "two/deeper"):
        write(tmp_path / place / "news" / "sy" / "a.txt", LAVROV)
    places = ("one", "two/deeper")
    ids = {tuple(a.id for a in load_articles([tmp_path / p / "news"]).articles) for p in places}
    assert ids == {("sy/a.txt",)}
    monkeypatch.chdir(tmp_path / "one")
    article = load_articles([Path("news")]).articles[0]
    assert (article.id, article.source) == ("sy/a.txt", "news/sy/a.txt")


def test_single_file_id_is_its_name(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "deep" / "dir" / "story.txt", LAVROV)).id == "story.txt"


def test_many_jsonl_records(tmp_path: Path) -> None:
    records = ({"id": n, "title": f"Story {n}", "text": f"{LAVROV} ({n})"} for n in range(2000))
    lines = (json.dumps(record) for record in records)
    report = load_articles([write(tmp_path / "big.jsonl", "\n".join(lines))])
    assert len(report.articles) == 2000
    assert report.articles[-1].id == "1999"
