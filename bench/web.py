"""Figures for the web features (issue 14): extraction time per page, `feeds update` wall time
for 100 new entries, and warm answer time with a filter that keeps 1 % of BBC.

    .venv/bin/python bench/web.py extract ../shared/data/news/bbc.jsonl [--pages 300]
    .venv/bin/python bench/web.py feeds ../shared/data/news/bbc.jsonl [--entries 100]
    .venv/bin/python bench/web.py filter ../shared/data/news/bbc.jsonl --index-dir DIR [--questions 200]

``extract`` wraps BBC articles in a realistic news page (cookie banner, menu, sidebar,
paywall box, comments, footer, scripts) and times quotebot's page reader on each; it also
reports how many pages came out as exactly the article (title and paragraphs) and how many
leaked any boilerplate.

``feeds`` serves a feed of ``--entries`` new entries and their pages from 127.0.0.1 and
times `quotebot feeds update` (a fresh process, as a user runs it) against a copy of an
index of 20 other BBC articles: fetch, extract, embed and publish one generation.

``filter`` asks BBC article titles as questions of an index holding BBC (``--index-dir``:
built with `quotebot index build ../shared/data/news/bbc.jsonl`, or any index holding
those records), warm, once without a filter and once with a source filter that keeps 1 %
of the BBC articles, and checks every filtered quote comes from inside the filter.

Data paths are arguments: the data is never copied into the project.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BOILERPLATE = (
    "We use cookies", "Accept all", "Weather forecast", "Subscribe now", "one pound a week", "Most read",
    "Celebrity chef", "Reader1234", "Copyright", "newsletter", "Advertisement", "TRACKING", "Share on",
)


def load_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def news_page(record: dict, site: str = "Daily Example News") -> str:
    """A BBC article in the kind of page a news site serves."""
    paragraphs = [p.strip() for p in record["text"].split("\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[:2])
    body += '<div class="paywall-teaser"><p>Subscribe now to keep reading: one pound a week.</p></div>'
    body += "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[2:])
    title = html.escape(record["title"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} - {site}</title>
<meta property="og:site_name" content="{site}"><link rel="canonical" href="https://news.example.com/{record['id']}">
<script>var dataLayer=[{{"tracking":"TRACKING-ID"}}];</script><style>body{{margin:0}}</style></head><body>
<div class="cookie-banner"><p>We use cookies to improve your experience. Accept all to continue.</p></div>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/weather">Weather forecast</a></nav></header>
<main><article><h1>{title}</h1><p class="byline">By Staff <time datetime="2005-03-0{1 + len(title) % 9}">March 2005</time></p>
{body}</article>
<section class="comments"><h2>Comments</h2><p>Reader1234 wrote: what a story, the minister should resign.</p></section></main>
<aside class="sidebar"><h3>Most read</h3><ul><li>Celebrity chef opens floating restaurant</li></ul>
<div class="share-bar">Share on Facebook</div></aside>
<footer><p>Copyright 2005 Daily Example News. Sign up to our newsletter.</p></footer>
<script>document.write("Advertisement");</script></body></html>"""


def expected_text(record: dict) -> str:
    """The article as a reader of the page sees it (the BBC files hold a few raw entities, "&#163;")."""
    return "\n\n".join(" ".join(html.unescape(p).split()) for p in record["text"].split("\n") if p.strip())


def expected_title(record: dict) -> str:
    return " ".join(html.unescape(record["title"]).split())


# -- extract ----------------------------------------------------------------------------------


def bench_extract(args: argparse.Namespace) -> dict:
    from quotebot.index.loaders import read_html_page

    records = load_records(args.data)
    random.Random(14).shuffle(records)
    records = records[: args.pages]
    pages = [news_page(record) for record in records]
    read_html_page(pages[0], article_id="warm", default_title="warm")  # imports and config, once
    seconds, exact, leaked, fallbacks = [], 0, 0, 0
    for record, page in zip(records, pages):
        started = time.perf_counter()
        article, fallback = read_html_page(page, article_id=record["id"], default_title=record["id"])
        seconds.append(time.perf_counter() - started)
        fallbacks += fallback
        exact += article is not None and article.title == expected_title(record) and article.text == expected_text(record)
        leaked += article is not None and any(marker in article.text for marker in BOILERPLATE)
    return {
        "pages": len(pages),
        "mean_page_bytes": round(statistics.mean(len(page.encode()) for page in pages)),
        "extract_ms_mean": round(1000 * statistics.mean(seconds), 2),
        "extract_ms_p50": round(1000 * statistics.median(seconds), 2),
        "extract_ms_p95": round(1000 * sorted(seconds)[int(0.95 * len(seconds))], 2),
        "pages_exactly_the_article": exact,
        "pages_with_boilerplate": leaked,
        "fallbacks": fallbacks,
    }


# -- feeds ------------------------------------------------------------------------------------


def bench_feeds(args: argparse.Namespace) -> dict:
    from tests.web_server import Route, WebServer, rss

    records = load_records(args.data)
    random.Random(14).shuffle(records)
    base, new = records[:20], records[20 : 20 + args.entries]
    server = WebServer().start()
    try:
        items = []
        for number, record in enumerate(new):
            path = f"/story/{number}"
            server.routes[path] = Route(news_page(record))
            items.append({"title": html.escape(record["title"]), "link": server.url(path),
                          "pubDate": f"Mon, 0{1 + number % 9} May 2024 08:00:00 GMT"})
        server.routes["/rss"] = Route(rss(items, title="Bench Wire"), content_type="application/rss+xml")
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            corpus = folder / "base.jsonl"
            corpus.write_text("\n".join(json.dumps(r) for r in base), encoding="utf-8")
            index = folder / "index"
            cli = [sys.executable, "-m", "quotebot.bot.cli"]
            subprocess.run([*cli, "index", "build", str(corpus), "--index-dir", str(index)], cwd=ROOT, check=True,
                           capture_output=True)
            subprocess.run([*cli, "feeds", "add", server.url("/rss"), "--index-dir", str(index)], cwd=ROOT, check=True,
                           capture_output=True)
            started = time.perf_counter()
            done = subprocess.run([*cli, "feeds", "update", "--index-dir", str(index)], cwd=ROOT, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"feeds update failed: {done.stderr[-800:]}")
            started = time.perf_counter()
            again = subprocess.run([*cli, "feeds", "update", "--index-dir", str(index)], cwd=ROOT, capture_output=True,
                                   text=True)
            unchanged_wall = time.perf_counter() - started
            summary = [line for line in done.stderr.splitlines() if line.startswith(("feeds:", "index "))]
    finally:
        server.stop()
    return {
        "entries": len(new),
        "feeds_update_wall_s": round(wall, 2),
        "per_entry_ms": round(1000 * wall / len(new), 1),
        "second_update_wall_s": round(unchanged_wall, 2),
        "second_update": [line for line in again.stderr.splitlines() if line.startswith("feeds:")],
        "summary": summary,
    }


# -- filter -----------------------------------------------------------------------------------


def bench_filter(args: argparse.Namespace) -> dict:
    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings
    from quotebot.index.filters import ArticleFilter

    settings = load_settings(ROOT / "config.yaml")
    bot = wiring.new_bot(settings, args.index_dir.resolve())
    bot.warm_up()
    records = bot.retriever.index.articles.records
    bbc = [r for r in records if "bbc/" in str(r.get("source") or "")]
    if not bbc:
        raise SystemExit(f"{args.index_dir}: no BBC articles (records whose source names bbc/...)")
    # Sources of whole ten-article runs (".../business/01" = business 010-019) until 1 % of BBC.
    prefixes, kept = [], 0
    for topic in ("business", "sport", "tech", "politics", "entertainment"):
        for tens in range(1, 40):
            if kept >= len(bbc) / 100:
                break
            prefix = f"bbc/{topic}/{tens:02d}"
            count = sum(prefix in str(r["source"]) for r in bbc)
            if count and kept + count <= len(bbc) / 100 + 1:
                prefixes.append(prefix)
                kept += count
    article_filter = ArticleFilter(sources=prefixes)
    inside = {r["id"] for r in records if article_filter.matches(r)}
    rng = random.Random(14)
    questions = [r["title"] for r in rng.sample(bbc, min(args.questions, len(bbc)))]
    for question in questions[:20]:  # warm: page cache, the selection, the caches of the stores
        bot.ask(question, conversation="warm")
        bot.ask(question, conversation="warm", article_filter=article_filter)
    plain, filtered, outside, answered = [], [], 0, 0
    for number, question in enumerate(questions):
        started = time.perf_counter()
        bot.ask(question, conversation=f"p{number}")
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        answer = bot.ask(question, conversation=f"f{number}", article_filter=article_filter)
        filtered.append(time.perf_counter() - started)
        answered += answer.answered
        outside += sum(quote.article_id not in inside for quote in answer.quotes)
    started = time.perf_counter()
    bot.retriever.selection.__func__(bot.retriever.over(bot.retriever.index), article_filter)  # uncached selection
    selection_ms = 1000 * (time.perf_counter() - started)
    p50, p50_filtered = statistics.median(plain), statistics.median(filtered)
    return {
        "index_articles": len(records),
        "bbc_articles": len(bbc),
        "filter": article_filter.describe(),
        "articles_in_filter": len(inside),
        "share_of_bbc": round(len(inside) / len(bbc), 4),
        "questions": len(questions),
        "warm_p50_ms": round(1000 * p50, 2),
        "warm_p50_filtered_ms": round(1000 * p50_filtered, 2),
        "warm_p95_ms": round(1000 * sorted(plain)[int(0.95 * len(plain))], 2),
        "warm_p95_filtered_ms": round(1000 * sorted(filtered)[int(0.95 * len(filtered))], 2),
        "filtered_over_unfiltered_p50": round(p50_filtered / p50, 2),
        "filtered_answers": answered,
        "quotes_outside_filter": outside,
        "selection_build_ms": round(selection_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    extract = commands.add_parser("extract")
    extract.add_argument("data", type=Path)
    extract.add_argument("--pages", type=int, default=300)
    feeds = commands.add_parser("feeds")
    feeds.add_argument("data", type=Path)
    feeds.add_argument("--entries", type=int, default=100)
    filtering = commands.add_parser("filter")
    filtering.add_argument("data", type=Path, help="bbc.jsonl (only to say where the records came from)")
    filtering.add_argument("--index-dir", type=Path, required=True)
    filtering.add_argument("--questions", type=int, default=200)
    for sub in (extract, feeds, filtering):
        sub.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    args = parser.parse_args()
    result = {"extract": bench_extract, "feeds": bench_feeds, "filter": bench_filter}[args.command](args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
