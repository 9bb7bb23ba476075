"""Index lifecycle and serving at scale: real news corpora and a synthetic 1M-chunk index.

    .venv/bin/python bench/index_scale.py corpus ../shared/data/news/bbc.jsonl [--json OUT]
    .venv/bin/python bench/index_scale.py synthetic ../shared/data/news/bbc.jsonl --chunks 1000000 [--json OUT]
    .venv/bin/python bench/index_scale.py raw ../shared/data/news/bbc.jsonl --index-dir DIR [--json OUT]
    .venv/bin/python bench/index_scale.py serving ../shared/data/news/bbc.jsonl --index-dir DIR \
        --news-questions bench/news_questions.yaml [--cold-question Q] [--json OUT]

``corpus`` runs the real commands a user runs, each in a fresh process, and reports:
indexing chunks/s of `quotebot index build` beside the raw encoder's chunks/s measured in
this run on the same kind of text, cold `quotebot ask` wall time, warm p50/p95 per
question, peak RSS of the serving process, index size on disk, and the wall time of
`quotebot index add` of one article.

``synthetic`` builds a quotebot index of ``--chunks`` chunks through the real writer: the
corpus's articles are copied under new ids until the chunk count is reached, and each
copy's vectors are the original article's real vectors plus gaussian noise, renormalised,
so nearest neighbours are as crowded as in real data (embedding a million chunks would
take this machine a day; the writer, the stores and the serving path are all real). It
reports the same serving figures plus ANN recall@10 against exact search.

``serving`` takes an index already built from the corpus (never changed: each `index add`
runs on a fresh copy) and reports the serving figures alone: cold `quotebot ask` of one
question (each run's wall), warm p50/p95 over the news question set's answerable questions
about the corpus (or headline questions without it), and `quotebot index add` of one article.

Data paths are arguments: the data is never copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUOTEBOT = [sys.executable, "-m", "quotebot.bot.cli"]
COLD_RUNS = 3
ADD_RUNS = 3
RECALL_QUERIES = 200


# -- measuring a command ------------------------------------------------------------------


def measured(command: list[str]) -> dict:
    """Run ``command`` under the `measure` sub-command, a fresh process of its own: the peak
    RSS of reaped children is a maximum over all of them, so only a parent that runs this
    one command alone reports this command's own (see ``_measure``)."""
    helper = [sys.executable, __file__, "measure", "--", *command]
    done = subprocess.run(helper, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(command: list[str]) -> None:
    import resource

    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(done.returncode)
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:]}))


def byte_code() -> str:
    """Compile quotebot's modules as an install leaves them, and say how many were not.

    pip compiles a normal install's modules and `make install` compiles this editable one
    (Makefile, ``bytecode``); a user's Python also writes them on the first run. Without
    that, on a machine where PYTHONDONTWRITEBYTECODE is set (this one), every process
    compiles all of quotebot's modules again: ~0.1 s of each cold command that no user pays."""
    import compileall
    import importlib.util

    sources = [path for folder in ("index", "retrieval", "bot") for path in (ROOT / folder).rglob("*.py")]
    stale = 0
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        stale += not cached.is_file() or cached.stat().st_mtime < source.stat().st_mtime
    for folder in ("index", "retrieval", "bot"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return f"compiled, {stale} of {len(sources)} modules compiled now (PYTHONDONTWRITEBYTECODE={flag or 'unset'})"


# -- serving -----------------------------------------------------------------------------


def _serve(index_dir: Path, questions_file: Path) -> None:
    """In a fresh process: load the bot as `quotebot chat` does and time each question."""
    import numpy as np

    from quotebot.bot import wiring
    from quotebot.bot.settings import load_settings

    settings = load_settings(ROOT / "config.yaml")
    settings = settings.model_copy(update={"index": settings.index.model_copy(update={"index_dir": index_dir})})
    started = time.perf_counter()
    bot = wiring.new_bot(settings)
    bot.warm_up()
    load_s = time.perf_counter() - started
    questions = [line for line in questions_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    bot.ask(questions[0], conversation="warm-up")
    times, answered = [], 0
    for number, question in enumerate(questions):
        started = time.perf_counter()
        answer = bot.ask(question, conversation=str(number))
        times.append((time.perf_counter() - started) * 1000)
        answered += answer.answered
    print(json.dumps({
        "load_s": load_s,
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "questions": len(times),
        "answered": answered,
    }))


def serving_figures(index_dir: Path, questions: list[str], scratch: Path, cold_question: str | None = None) -> dict:
    questions_file = scratch / "questions.txt"
    questions_file.write_text("\n".join(questions) + "\n", encoding="utf-8")
    serve = measured([sys.executable, __file__, "serve", str(index_dir), str(questions_file)])
    warm = json.loads(serve["stdout"].strip().splitlines()[-1])
    asked = [cold_question] * COLD_RUNS if cold_question else questions[:COLD_RUNS]
    cold = [measured([*QUOTEBOT, "ask", question, "--index-dir", str(index_dir)]) for question in asked]
    _COLD_WALLS[:] = [run["wall_s"] for run in cold]
    return {
        "cold_ask_s": statistics.median(run["wall_s"] for run in cold),
        "cold_ask_rss_mb": max(run["peak_rss_mb"] for run in cold),
        "warm_p50_ms": warm["p50_ms"],
        "warm_p95_ms": warm["p95_ms"],
        "warm_questions": warm["questions"],
        "answered": warm["answered"],
        "serve_load_s": warm["load_s"],
        "serve_peak_rss_mb": serve["peak_rss_mb"],
        "index_mb": index_size_mb(index_dir),
    }


def index_size_mb(index_dir: Path) -> dict:
    from quotebot.index import storage

    generation = storage.current_generation(index_dir)
    live = sum(path.stat().st_size for path in generation.rglob("*") if path.is_file())
    everything = sum(path.stat().st_size for path in index_dir.rglob("*") if path.is_file())
    return {"generation": round(live / 1e6, 1), "with_encoders": round(everything / 1e6, 1)}


def questions_from(articles: list[dict], count: int) -> list[str]:
    """Headline questions, one per article, spread over the corpus (deterministic)."""
    step = max(1, len(articles) // count)
    return [f"What happened: {a['title'].strip()}?" for a in articles[::step][:count] if a.get("title")]


# -- real corpus -------------------------------------------------------------------------


def raw_encoder_rate(path: Path, sample_chunks: int, index_dir: Path) -> dict:
    """The document encoder alone on the corpus's first chunks and on their sentences,
    each as "title. text": chunks/s, sentences/s, and the rate a build that embeds both
    could reach if nothing but the model took time (the model-bound rate)."""
    from quotebot.bot.settings import load_settings
    from quotebot.index.chunking import chunk_article
    from quotebot.index.loaders import load_articles
    from quotebot.index.articles import Span
    from quotebot.index.vectorize import embedding_text

    settings = load_settings(ROOT / "config.yaml").index
    encoder = _document_encoder(settings, index_dir)
    chunk_texts: list[str] = []
    sentence_texts: list[str] = []
    for article in load_articles([path]).articles:
        spans, chunks = chunk_article(article.id, article.text, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
        chunk_texts.extend(embedding_text(article, Span(start=c.start, end=c.end)) for c in chunks)
        sentence_texts.extend(embedding_text(article, span) for span in spans)
        if len(chunk_texts) >= sample_chunks:
            break
    chunk_texts = chunk_texts[:sample_chunks]
    encoder.warm_up()
    encoder.embed(chunk_texts[:64])
    rates = {}
    for kind, texts in (("chunks", chunk_texts), ("sentences", sentence_texts)):
        started = time.perf_counter()
        encoder.embed(texts)
        rates[kind] = len(texts) / (time.perf_counter() - started)
    sentences_per_chunk = len(sentence_texts) / len(chunk_texts)
    return {
        "raw_chunks_per_s": rates["chunks"],
        "raw_sentences_per_s": rates["sentences"],
        "raw_sample_chunks": len(chunk_texts),
        # Chunks/s of a build whose only cost is embedding each chunk's sentences (index format 6).
        "model_bound_chunks_per_s": rates["sentences"] / sentences_per_chunk,
        "encoder": type(encoder).__name__,
    }


def _document_encoder(settings, index_dir: Path):
    """The encoder `quotebot index build/add` uses on this index folder."""
    try:
        from quotebot.index.onnx_encoder import document_encoder_for
    except ImportError:
        document_encoder_for = None
    if document_encoder_for is not None:
        return document_encoder_for(index_dir, settings.model, settings.batch_size)
    from quotebot.index.embedding import Embedder

    return Embedder(model=settings.model, batch_size=settings.batch_size)


def corpus(args: argparse.Namespace) -> dict:
    from quotebot.index.reader import read_manifest

    articles = [json.loads(line) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    scratch = Path(tempfile.mkdtemp(prefix="quotebot-scale-", dir=args.work))
    try:
        path = args.path
        if args.limit:
            articles = articles[: args.limit]
            path = scratch / f"first-{args.limit}.jsonl"
            path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
        index_dir = args.keep_index or scratch / "index"
        if args.keep_index and index_dir.exists():
            raise SystemExit(f"{index_dir}: exists; --keep-index wants a new folder")
        build = measured([*QUOTEBOT, "index", "build", str(path), "--index-dir", str(index_dir)])
        manifest = read_manifest(index_dir)
        figures = {
            "corpus": args.path.name,
            "articles": manifest.counts.articles,
            "chunks": manifest.counts.chunks,
            "sentences": manifest.counts.sentences,
            "vector_index": manifest.vector_store.params.get("kind", manifest.vector_store.backend),
            "build_wall_s": build["wall_s"],
            "build_peak_rss_mb": build["peak_rss_mb"],
            "build_chunks_per_s": manifest.counts.chunks / build["wall_s"],
            # The writer's own time: without the process start and the one-off ONNX export.
            "writer_seconds": manifest.build_seconds,
            "writer_chunks_per_s": manifest.counts.chunks / manifest.build_seconds,
            # Each sentence is embedded once (a chunk's vector is their mean): texts the model reads per chunk.
            "texts_per_chunk": manifest.counts.sentences / manifest.counts.chunks,
            "build_summary": build["stderr"].strip().splitlines()[-1],
        }
        figures.update(raw_encoder_rate(path, args.raw_sample, index_dir))
        figures["build_vs_raw"] = figures["build_chunks_per_s"] / figures["raw_chunks_per_s"]
        figures["writer_vs_raw"] = figures["writer_chunks_per_s"] / figures["raw_chunks_per_s"]
        figures["writer_vs_model_bound"] = figures["writer_chunks_per_s"] / figures["model_bound_chunks_per_s"]
        figures["byte_code"] = byte_code()
        figures.update(serving_figures(index_dir, questions_from(articles, args.questions), scratch))
        figures.update(add_one_article(index_dir, articles, scratch))
        return figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def serving(args: argparse.Namespace) -> dict:
    """The serving figures of an index already built from ``args.path`` (see the docstring)."""
    global COLD_RUNS, ADD_RUNS
    COLD_RUNS, ADD_RUNS = args.cold_runs, args.add_runs
    articles = [json.loads(line) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    scratch = Path(tempfile.mkdtemp(prefix="quotebot-serving-", dir=args.work))
    try:
        if args.news_questions:
            import yaml

            ids = {a["id"] for a in articles}
            data = yaml.safe_load(args.news_questions.read_text(encoding="utf-8"))
            questions = [q["q"] for entry in data["articles"] if entry["article"] in ids
                         for q in entry["questions"] if q.get("expect") is not None]
        else:
            questions = questions_from(articles, args.questions)
        figures = {"corpus": args.path.name, "load_average_at_start": os.getloadavg()[0], "byte_code": byte_code()}
        cold_question = args.cold_question or questions[0]
        figures.update(serving_figures(args.index_dir, questions, scratch, cold_question))
        figures["cold_question"] = cold_question
        figures["cold_ask_runs_s"] = [round(t, 3) for t in _COLD_WALLS]
        figures.update(add_one_article(args.index_dir, articles, scratch))
        figures["add_runs_s"] = [round(t, 3) for t in _ADD_WALLS]
        figures["load_average_at_end"] = os.getloadavg()[0]
        figures["load_average"] = f"{figures['load_average_at_start']:.2f} / {figures['load_average_at_end']:.2f}"
        return figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_COLD_WALLS: list[float] = []
_ADD_WALLS: list[float] = []


def add_one_article(index_dir: Path, articles: list[dict], scratch: Path) -> dict:
    """Wall time of `quotebot index add` of one new article, on a fresh copy each run."""
    source = dict(articles[len(articles) // 2])
    source["id"] = f"bench-new-{source.get('id')}"
    source["text"] = source["text"] + "\n\nThis paragraph was added for the benchmark."
    new = scratch / "new.jsonl"
    new.write_text(json.dumps(source) + "\n", encoding="utf-8")
    runs = []
    for number in range(ADD_RUNS):
        copy = scratch / f"add-{number}"
        shutil.copytree(index_dir, copy)
        runs.append(measured([*QUOTEBOT, "index", "add", str(new), "--index-dir", str(copy)]))
        shutil.rmtree(copy)
    _ADD_WALLS[:] = [run["wall_s"] for run in runs]
    if not runs:  # --add-runs 0: warm and cold figures only
        return {}
    return {
        "add_one_article_s": statistics.median(run["wall_s"] for run in runs),
        "add_peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
    }


# -- synthetic ---------------------------------------------------------------------------


def synthetic(args: argparse.Namespace) -> dict:
    import numpy as np

    from quotebot.bot.settings import load_settings
    from quotebot.index.chunking import chunk_article
    from quotebot.index.builder import IndexBuilder
    from quotebot.index.reader import QuoteIndex
    from quotebot.index.loaders import load_articles
    from quotebot.index.vectorize import ArticleVectors

    settings = load_settings(ROOT / "config.yaml").index
    base = load_articles([args.path]).articles[: args.limit or None]
    scratch = Path(tempfile.mkdtemp(prefix="quotebot-synthetic-", dir=args.work))
    try:
        # 1. Real vectors of the base corpus, through a real build (kept in --base-index, a
        # build that finds its articles there unchanged writes nothing).
        base_dir = args.base_index or scratch / "base"
        encoder = _document_encoder(settings, base_dir)
        started = time.perf_counter()
        IndexBuilder(encoder, settings.chunk_tokens, settings.chunk_overlap).build(base, base_dir)
        base_build_s = time.perf_counter() - started
        real = QuoteIndex.load(base_dir, mmap=False)
        real_vectors = {}
        for article_id in real.articles:
            ids = real.chunk_ids_of(article_id)
            rows = real._sentence_slice(real.articles.position(article_id))
            real_vectors[article_id] = ArticleVectors(
                chunks=real.vectors.vectors(np.asarray(ids)), sentences=np.asarray(real.sentence_vectors[rows], dtype=np.float32)
            )
        copies = -(-args.chunks // real.manifest.counts.chunks)
        rng = np.random.default_rng(0)

        def noisy(vectors: np.ndarray) -> np.ndarray:
            moved = vectors + rng.normal(scale=args.noise, size=vectors.shape).astype(np.float32)
            return moved / np.linalg.norm(moved, axis=1, keepdims=True)

        class Replay:
            """The builder's vectorizer hook (as Ray's): chunks here, and gives each copy the
            base article's real vectors with noise instead of embedding it."""

            def chunk(self, articles, chunk_tokens, chunk_overlap):
                return [chunk_article(a.id, a.text, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap) for a in articles]

            def embed_articles(self, _encoder, items, on_batch=None):
                out = []
                for item in items:
                    original = real_vectors[item.article.id.split("~", 1)[0]]
                    out.append(ArticleVectors(chunks=noisy(original.chunks), sentences=noisy(original.sentences)))
                if on_batch:
                    on_batch(len(items), sum(len(item.chunks) for item in items))
                return out

        # 2. The big index through the real writer, with replayed noisy vectors.
        articles = [
            article.model_copy(update={"id": f"{article.id}~{copy}", "title": f"{article.title} ({copy})"})
            for copy in range(copies)
            for article in base
        ]
        big_dir = scratch / "big"
        started = time.perf_counter()
        change = IndexBuilder(encoder, settings.chunk_tokens, settings.chunk_overlap, vectorizer=Replay()).build(articles, big_dir)
        write_s = time.perf_counter() - started
        shutil.copytree(base_dir / "query_encoder", big_dir / "query_encoder", dirs_exist_ok=True) if (base_dir / "query_encoder").exists() else None
        figures = {
            "corpus": f"synthetic from {args.path.name} ({copies} noisy copies, noise {args.noise})",
            "articles": change.manifest.counts.articles,
            "chunks": change.manifest.counts.chunks,
            "sentences": change.manifest.counts.sentences,
            "vector_index": change.manifest.vector_store.params.get("kind", change.manifest.vector_store.backend),
            "base_build_s": base_build_s,
            "write_s": write_s,
        }
        figures.update(serving_figures(big_dir, questions_from([{"title": a.title} for a in base], args.questions), scratch))
        figures.update(ann_recall(big_dir, real, rng, args.noise))
        return figures
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}", file=sys.stderr)


def ann_recall(index_dir: Path, real, rng, noise: float) -> dict:
    """recall@10 of the index's vector store against exact inner product over the same vectors."""
    import numpy as np

    from quotebot.index.reader import QuoteIndex

    index = QuoteIndex.load(index_dir)
    ids = index.chunks.ids
    picks = rng.choice(len(real.chunks), size=min(RECALL_QUERIES, len(real.chunks)), replace=False)
    base_ids = real.chunks.ids[picks]
    queries = real.vectors.vectors(np.asarray(base_ids))
    queries = queries + rng.normal(scale=noise, size=queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    exact_ids = np.zeros((len(queries), 10), dtype=np.int64)
    for begin in range(0, len(ids), 100_000):
        block_ids = ids[begin : begin + 100_000]
        block = index.vectors.vectors(block_ids)
        scores = queries @ block.T
        merged_scores = np.concatenate([exact_scores, scores], axis=1)
        merged_ids = np.concatenate([exact_ids, np.broadcast_to(block_ids, scores.shape)], axis=1)
        top = np.argsort(-merged_scores, axis=1)[:, :10]
        exact_scores = np.take_along_axis(merged_scores, top, axis=1)
        exact_ids = np.take_along_axis(merged_ids, top, axis=1)
    hits = 0
    for query, truth in zip(queries, exact_ids):
        found, _ = index.vectors.search(query, 10)
        hits += len(set(found.tolist()) & set(truth.tolist()))
    return {"ann_recall_at_10": hits / (10 * len(queries))}


# -- output ------------------------------------------------------------------------------

ROWS = [
    ("articles", "articles", "{:,}"),
    ("chunks", "chunks", "{:,}"),
    ("vector index", "vector_index", "{}"),
    ("index build, wall", "build_wall_s", "{:.1f} s"),
    ("indexing rate (whole build)", "build_chunks_per_s", "{:.1f} chunks/s"),
    ("raw encoder rate, same text", "raw_chunks_per_s", "{:.1f} chunks/s"),
    ("build / raw encoder", "build_vs_raw", "{:.0%}"),
    ("writer alone (no start-up, no export)", "writer_chunks_per_s", "{:.1f} chunks/s"),
    ("writer / raw encoder", "writer_vs_raw", "{:.0%}"),
    ("texts embedded per chunk", "texts_per_chunk", "{:.2f}"),
    ("raw encoder rate, sentences", "raw_sentences_per_s", "{:.1f} sentences/s"),
    ("model-bound rate (chunks + sentences)", "model_bound_chunks_per_s", "{:.1f} chunks/s"),
    ("writer / model-bound rate", "writer_vs_model_bound", "{:.0%}"),
    ("synthetic write (no embedding)", "write_s", "{:.1f} s"),
    ("cold `quotebot ask`, wall", "cold_ask_s", "{:.2f} s"),
    ("warm p50 per question", "warm_p50_ms", "{:.1f} ms"),
    ("warm p95 per question", "warm_p95_ms", "{:.1f} ms"),
    ("peak RSS serving", "serve_peak_rss_mb", "{:,.0f} MB"),
    ("peak RSS index build", "build_peak_rss_mb", "{:,.0f} MB"),
    ("index on disk (live generation)", "index_mb", "{}"),
    ("`quotebot index add` one article", "add_one_article_s", "{:.2f} s"),
    ("cold `quotebot ask`, each run", "cold_ask_runs_s", "{}"),
    ("`index add`, each run", "add_runs_s", "{}"),
    ("load average at start / end", "load_average", "{}"),
    ("quotebot's byte code", "byte_code", "{}"),
    ("ANN recall@10 vs exact", "ann_recall_at_10", "{:.3f}"),
]


def print_table(figures: dict) -> None:
    print(f"\n{figures['corpus']}")
    for label, key, form in ROWS:
        if key in figures:
            value = figures[key]
            value = value["generation"] if isinstance(value, dict) else value
            print(f"  {label:<36} {form.format(value) if not isinstance(value, dict) else value}" + (" MB" if key == "index_mb" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    real = commands.add_parser("corpus", help="a real corpus, end to end")
    real.add_argument("path", type=Path)
    real.add_argument("--raw-sample", type=int, default=2000, help="chunks the raw encoder rate is measured on (and their sentences)")
    real.add_argument("--questions", type=int, default=200)
    real.add_argument("--limit", type=int, default=0, help="only the first N articles (a quick run)")
    real.add_argument("--keep-index", type=Path, default=None, help="build the index here and keep it (a new folder)")
    synth = commands.add_parser("synthetic", help="a synthetic index of --chunks chunks from a real corpus")
    synth.add_argument("path", type=Path)
    synth.add_argument("--chunks", type=int, default=1_000_000)
    synth.add_argument("--base-index", type=Path, default=None, help="keep (or reuse) the base corpus's real index here")
    synth.add_argument("--noise", type=float, default=0.03, help="gaussian noise per dimension before renormalising")
    synth.add_argument("--questions", type=int, default=200)
    synth.add_argument("--keep", action="store_true", help="keep the built indexes")
    synth.add_argument("--limit", type=int, default=0, help="only the first N articles as the base (a quick run)")
    raw = commands.add_parser("raw", help="the raw encoder rates alone (chunks and sentences) on a corpus")
    raw.add_argument("path", type=Path)
    raw.add_argument("--raw-sample", type=int, default=2000)
    raw.add_argument("--index-dir", type=Path, required=True, help="an index folder whose ONNX export to use (made if missing)")
    served = commands.add_parser("serving", help="serving figures (cold ask, warm p50/p95, index add) of a built index")
    served.add_argument("path", type=Path, help="the corpus the index was built from")
    served.add_argument("--index-dir", type=Path, required=True, help="the built index (not changed)")
    served.add_argument("--news-questions", type=Path, default=None, help="bench/news_questions.yaml: its answerable questions")
    served.add_argument("--questions", type=int, default=200, help="headline questions, without --news-questions")
    served.add_argument("--cold-question", default=None, help="the question cold runs ask (default: the first)")
    served.add_argument("--cold-runs", type=int, default=8)
    served.add_argument("--add-runs", type=int, default=3)
    for sub in (real, synth, raw, served):
        sub.add_argument("--json", type=Path, help="also write the figures here")
        sub.add_argument("--work", type=Path, default=None, help="scratch folder (default: the system's)")
    serve = commands.add_parser("serve")
    serve.add_argument("index_dir", type=Path)
    serve.add_argument("questions", type=Path)
    measure = commands.add_parser("measure")
    measure.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    if args.command == "serve":
        return _serve(args.index_dir, args.questions)
    if args.command == "measure":
        return _measure([part for part in args.rest if part != "--"])
    if not args.path.is_file():
        raise SystemExit(f"{args.path}: no such file (the data lives in ../shared/data; see its README)")
    if args.command == "raw":
        figures = {"corpus": args.path.name, **raw_encoder_rate(args.path, args.raw_sample, args.index_dir)}
    elif args.command == "serving":
        figures = serving(args)
    else:
        figures = corpus(args) if args.command == "corpus" else synthetic(args)
    print_table(figures)
    print(json.dumps(figures, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
