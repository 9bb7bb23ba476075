"""Does the int8 ONNX query encoder embed like the torch model? Cosine agreement on real text.

    .venv/bin/python bench/onnx_agreement.py --articles ../shared/data/news/bbc.jsonl \
        [--questions ../shared/data/squad/dev-v1.1.json] [--count 1000] [--encoder-dir DIR] \
        [--json PATH] [--latency-texts 200] [--cold-runs 3] [--throughput 0]

Picks ``--count`` real sentences deterministically (``index.chunking.split_sentences`` over
the articles in file order, sentences of at least ``--min-words`` words, duplicates dropped,
then evenly spaced over the whole pool) and, with ``--questions`` (SQuAD layout), as many
real questions (evenly spaced, reported separately). Exports the query encoder into a
temporary folder (or reuses ``--encoder-dir``), embeds every text with torch
(``index.embedding.Embedder``, the vectors an index holds) and with ONNX
(``OnnxQueryEncoder``), one text per call as questions are embedded, and also in its
default batches of 32, and reports:

- cosine between the two: mean, min, p1, p5, p50, how many fall below 0.99;
- ONNX batched against ONNX single (int8 activations are quantised with one scale per
  batch, so a text's vector moves with its batch-mates and its padding);
- warm per-text latency of each path, one text per call;
- import + session load + first question vector of the ONNX path in a fresh interpreter,
  which asserts that ``torch`` was never imported (and the same with torch, to compare).

``--throughput N`` also times bulk embedding of N chunk texts and N sentence texts of the
articles (default chunking, 120 tokens, overlap 1; article title prefixed as a build does,
``index.vectorize.embedding_text``) on one thread for each path, in texts per CPU-second
(one busy core, whatever the machine's load) and per wall-second, and counts chunks and
sentences per article over the whole file (the figures docs/scaling.md uses).

Exits 1 when the mean cosine of the single-text path is below 0.99 on any text set, 2 on a
bad argument or a missing file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from quotebot.index.articles import Article, Span  # noqa: E402
from quotebot.index.chunking import chunk_article, split_sentences  # noqa: E402
from quotebot.index.embedding import PACKAGED_MODEL, Embedder  # noqa: E402
from quotebot.index.onnx_encoder import OnnxQueryEncoder, encoder_dir, export_onnx_encoders  # noqa: E402
from quotebot.index.vectorize import embedding_text  # noqa: E402

THRESHOLD = 0.99
ROUNDS = 4  # throughput slices, see throughput()
_WORD = re.compile(r"\w+")

# Run in a fresh interpreter: what a cold `quotebot ask` pays before it can search.
COLD_ONNX = r"""
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from quotebot.index.onnx_encoder import OnnxQueryEncoder
imported = time.perf_counter()
encoder = OnnxQueryEncoder(__import__("pathlib").Path(sys.argv[2]), "all-MiniLM-L6-v2")
encoder.warm_up()
loaded = time.perf_counter()
vector = encoder.embed([sys.argv[3]])[0]
done = time.perf_counter()
assert "torch" not in sys.modules, "the ONNX path imported torch"
assert "sentence_transformers" not in sys.modules, "the ONNX path imported sentence_transformers"
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "first_vector_s": done - loaded,
                  "total_s": done - started, "torch_imported": "torch" in sys.modules, "dimension": len(vector)}))
"""

COLD_TORCH = r"""
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from quotebot.index.embedding import Embedder
embedder = Embedder("all-MiniLM-L6-v2")
embedder.warm_up()
loaded = time.perf_counter()
vector = embedder.embed([sys.argv[3]])[0]
done = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "first_vector_s": done - loaded, "total_s": done - started,
                  "torch_imported": "torch" in sys.modules, "dimension": len(vector)}))
"""


# -- text selection ------------------------------------------------------------------------


def read_articles(path: Path) -> list[Article]:
    """Records with ``text`` (and ``title``) from a .jsonl or .json file, in file order."""
    content = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in content.splitlines() if line.strip()]
    else:
        data = json.loads(content)
        records = data.get("articles", [data]) if isinstance(data, dict) else data
    articles, seen = [], set()
    for number, record in enumerate(records):
        text = record.get("text") or ""
        if not text.strip() or text in seen:  # BBC repeats 133 bodies: count each text once
            continue
        seen.add(text)
        articles.append(Article(id=str(record.get("id", number)), title=record.get("title") or "", text=text))
    return articles


def evenly_spaced(pool: list[str], count: int) -> list[str]:
    """``count`` items spread over the whole pool (every topic of a file sorted by topic)."""
    if count >= len(pool):
        return list(pool)
    return [pool[i * len(pool) // count] for i in range(count)]


def pick_sentences(articles: list[Article], count: int, min_words: int) -> tuple[list[str], int]:
    pool, seen = [], set()
    for article in articles:
        for span in split_sentences(article.text):
            sentence = span.slice(article.text)
            if len(_WORD.findall(sentence)) >= min_words and sentence not in seen:
                seen.add(sentence)
                pool.append(sentence)
    return evenly_spaced(pool, count), len(pool)


def pick_questions(path: Path, count: int) -> tuple[list[str], int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    pool, seen = [], set()
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                question = qa["question"].strip()
                if question and question not in seen:
                    seen.add(question)
                    pool.append(question)
    return evenly_spaced(pool, count), len(pool)


# -- measurements --------------------------------------------------------------------------


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def cosine_stats(a: np.ndarray, b: np.ndarray, texts: list[str]) -> dict:
    cosine = (normalised(a) * normalised(b)).sum(axis=1)
    worst = np.argsort(cosine)[:3]
    return {
        "n": len(cosine),
        "mean": float(cosine.mean()),
        "min": float(cosine.min()),
        "p1": float(np.percentile(cosine, 1)),
        "p5": float(np.percentile(cosine, 5)),
        "p50": float(np.percentile(cosine, 50)),
        "below_0_99": int((cosine < 0.99).sum()),
        "below_0_98": int((cosine < 0.98).sum()),
        "worst": [{"cosine": round(float(cosine[i]), 4), "text": texts[i][:100]} for i in worst],
    }


def per_text_ms(embed, texts: list[str]) -> dict:
    embed([texts[0]])  # warm: the first call allocates
    times = []
    for text in texts:
        started = time.perf_counter()
        embed([text])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "n": len(times),
        "p50_ms": statistics.median(times),
        "p95_ms": float(np.percentile(times, 95)),
        "mean_ms": statistics.fmean(times),
    }


def cold_start(code: str, encoder_path: Path, question: str, runs: int) -> dict:
    results, walls = [], []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, str(ROOT), str(encoder_path), question],
            capture_output=True, text=True, cwd=ROOT, env=env,
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"cold-start subprocess failed:\n{done.stderr.strip()}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = {key: statistics.median(r[key] for r in results) for key in results[0] if key.endswith("_s")}
    summary["wall_s"] = statistics.median(walls)  # interpreter start included
    summary["torch_imported"] = any(r["torch_imported"] for r in results)
    summary["runs"] = runs
    return summary


def throughput(embedder: Embedder, onnx: OnnxQueryEncoder, articles: list[Article], count: int) -> dict:
    """Bulk embedding rate of chunk and sentence texts as a build embeds them, one thread each."""
    import torch

    tokenizer = onnx._tokenizer  # warmed up: truncation at 256 word pieces like the model
    chunk_texts, sentence_texts = [], []
    chunks_total = sentences_total = truncated = unread = 0
    for article in articles:
        sentences, chunks = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
        chunks_total += len(chunks)
        sentences_total += len(sentences)
        texts = [embedding_text(article, Span(start=c.start, end=c.end)) for c in chunks]
        chunk_texts.extend(texts)
        sentence_texts.extend(embedding_text(article, s) for s in sentences)
        # Late chunking (index/vectorize.py) pools a sentence from the chunk that read it whole;
        # a sentence past the 256-piece window of every chunk holding it is embedded alone.
        read = set()
        prefix = len(article.title) + 2 if article.title else 0
        for chunk, encoding in zip(chunks, tokenizer.encode_batch(texts)):
            ends = [end for (start, end), special in zip(encoding.offsets, encoding.special_tokens_mask) if not special]
            read_until = ends[-1] if ends else 0
            truncated += len(encoding.overflowing) > 0
            for offset, span in enumerate(chunk.sentences):
                if span.end - chunk.start + prefix <= read_until:
                    read.add(chunk.first_sentence + offset)
        unread += len(sentences) - len(read)
    result: dict = {
        "corpus": {
            "articles": len(articles),
            "chunks": chunks_total,
            "sentences": sentences_total,
            "chunks_per_article": chunks_total / len(articles),
            "sentences_per_article": sentences_total / len(articles),
            "embedded_texts_per_chunk": (chunks_total + sentences_total) / chunks_total,
            "chunks_truncated_at_256": truncated,
            "sentences_embedded_alone_late_chunking": unread,
            "embedded_texts_per_chunk_late_chunking": (chunks_total + unread) / chunks_total,
        }
    }
    threads = torch.get_num_threads()
    for name, pool in (("chunks", chunk_texts), ("sentences", sentence_texts)):
        texts = evenly_spaced(pool, count)
        tokens = [sum(e.attention_mask) for e in tokenizer.encode_batch(texts)]  # padding not counted
        # ROUNDS slices, each a sample over the whole length range, timed torch then ONNX in
        # turn, so other processes on a shared machine slow both alike. Both run on one thread,
        # so texts per CPU-second of this process is the rate of one busy core, whatever the
        # load; texts per wall-second is what this run got. Each slice is sorted by length, as
        # sentence-transformers sorts inside encode(): padding stays small.
        torch.set_num_threads(1)
        timings: dict[str, list[tuple[float, float]]] = {"torch": [], "onnx": []}
        for part in range(ROUNDS):
            piece = sorted(texts[part::ROUNDS], key=len)
            for path, embed in (("torch", embedder.embed), ("onnx", onnx.embed)):
                wall, cpu = time.perf_counter(), time.process_time()
                embed(piece)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                timings[path].append((len(piece) / wall, len(piece) / cpu))
        torch.set_num_threads(threads)
        rates = {"rounds": ROUNDS}
        for path, label in (("torch", "torch_1_thread"), ("onnx", "onnx_int8_1_thread")):
            rates[f"{label}_texts_per_cpu_s"] = statistics.median(cpu for _, cpu in timings[path])
            rates[f"{label}_texts_per_wall_s"] = statistics.median(wall for wall, _ in timings[path])
        rates["onnx_over_torch_cpu"] = (
            rates["onnx_int8_1_thread_texts_per_cpu_s"] / rates["torch_1_thread_texts_per_cpu_s"]
        )
        result[name] = {"n": len(texts), "wordpieces_mean": statistics.fmean(tokens), **rates}
    result["torch_batch_size"] = embedder.batch_size
    result["onnx_batch_size"] = onnx.batch_size
    return result


# -- report --------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    print(f"int8 ONNX query encoder vs torch ({report['model']}), cosine per text")
    print(
        f"torch {report['versions']['torch']} ({report['threads']['torch']} threads), onnxruntime "
        f"{report['versions']['onnxruntime']} (1 thread); load average at start "
        f"{report['load_average_at_start'][0]:.2f}, at end {report['load_average_at_end'][0]:.2f} "
        f"on {os.cpu_count()} cores"
    )
    print(f"{'texts':<44}{'n':>6}{'mean':>9}{'min':>9}{'p1':>9}{'p5':>9}{'p50':>9}{'<0.99':>7}")
    for label, stats in report["agreement"].items():
        print(
            f"{label:<44}{stats['n']:>6}{stats['mean']:>9.4f}{stats['min']:>9.4f}{stats['p1']:>9.4f}"
            f"{stats['p5']:>9.4f}{stats['p50']:>9.4f}{stats['below_0_99']:>7}"
        )
    for label, stats in report["agreement"].items():
        if "onnx single" in label:
            print(f"  worst ({label}): " + "; ".join(f"{w['cosine']:.4f} {w['text'][:60]!r}" for w in stats["worst"]))
    print()
    print(f"{'warm, one text per call':<34}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for label, stats in report["latency"].items():
        print(f"{label:<34}{stats['p50_ms']:>9.2f}{stats['p95_ms']:>9.2f}{stats['mean_ms']:>9.2f}")
    print()
    onnx, torch_ = report["cold"]["onnx"], report["cold"].get("torch")
    print(f"fresh interpreter, median of {onnx['runs']}: import + load + first question vector")
    print(
        f"  ONNX : import {onnx['import_s']:.2f} s, load {onnx['load_s']:.2f} s, first vector "
        f"{onnx['first_vector_s'] * 1000:.1f} ms, total {onnx['total_s']:.2f} s, wall with interpreter "
        f"{onnx['wall_s']:.2f} s; torch imported: {onnx['torch_imported']}"
    )
    if torch_:
        print(
            f"  torch: load {torch_['load_s']:.2f} s, first vector {torch_['first_vector_s'] * 1000:.1f} ms, "
            f"total {torch_['total_s']:.2f} s, wall with interpreter {torch_['wall_s']:.2f} s"
        )
    if "throughput" in report:
        t = report["throughput"]
        c = t["corpus"]
        print()
        print(
            f"corpus: {c['articles']} articles, {c['chunks']} chunks ({c['chunks_per_article']:.2f}/article), "
            f"{c['sentences']} sentences ({c['sentences_per_article']:.2f}/article), "
            f"{c['embedded_texts_per_chunk']:.2f} embedded texts per chunk when sentences are embedded apart, "
            f"{c['embedded_texts_per_chunk_late_chunking']:.3f} with late chunking ({c['chunks_truncated_at_256']} "
            f"chunks truncated at 256 word pieces, "
            f"{c['sentences_embedded_alone_late_chunking']} sentences embedded alone)"
        )
        rounds = t["chunks"]["rounds"]
        print(f"bulk embedding on one thread, median of {rounds} interleaved slices: texts per CPU-second")
        print("of this process (one busy core), and per wall-second of this run in brackets")
        print(f"{'texts':<14}{'n':>6}{'wordpieces':>12}{'torch':>16}{'onnx int8':>16}{'onnx/torch':>12}")
        for name in ("chunks", "sentences"):
            s = t[name]
            torch_rate = f"{s['torch_1_thread_texts_per_cpu_s']:.1f} ({s['torch_1_thread_texts_per_wall_s']:.1f})"
            onnx_cpu, onnx_wall = s["onnx_int8_1_thread_texts_per_cpu_s"], s["onnx_int8_1_thread_texts_per_wall_s"]
            onnx_rate = f"{onnx_cpu:.1f} ({onnx_wall:.1f})"
            print(
                f"{name:<14}{s['n']:>6}{s['wordpieces_mean']:>12.1f}{torch_rate:>16}{onnx_rate:>16}"
                f"{s['onnx_over_torch_cpu']:>12.2f}"
            )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=Path, required=True, help="articles: .jsonl/.json records with title, text")
    parser.add_argument("--questions", type=Path, help="SQuAD-layout json: its questions are a second text set")
    parser.add_argument("--count", type=int, default=1000, help="texts per set (default 1000)")
    parser.add_argument("--min-words", type=int, default=3, help="shortest sentence taken, in words (default 3)")
    parser.add_argument("--encoder-dir", type=Path, help="reuse this exported encoder folder instead of exporting")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--latency-texts", type=int, default=200, help="texts timed one per call (default 200)")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh interpreters per path (default 3)")
    parser.add_argument("--no-torch-cold", action="store_true", help="skip the torch cold start (about 6 s a run)")
    parser.add_argument(
        "--throughput", type=int, default=0, metavar="N", help="also time bulk embedding of N chunks and N sentences"
    )
    args = parser.parse_args()
    if args.count < 1 or args.latency_texts < 1 or args.cold_runs < 1:
        parser.error("--count, --latency-texts and --cold-runs must be at least 1")
    for path in (args.articles, args.questions):
        if path is not None and not path.is_file():
            print(f"onnx_agreement: {path}: no such file (evaluation data lives in ../shared/data)", file=sys.stderr)
            return 2
    if args.encoder_dir is not None and not OnnxQueryEncoder.available(args.encoder_dir):
        print(f"onnx_agreement: {args.encoder_dir}: not an exported query encoder", file=sys.stderr)
        return 2

    articles = read_articles(args.articles)
    sets = {}
    sentences, pool = pick_sentences(articles, args.count, args.min_words)
    sets[f"{args.articles.stem} sentences"] = sentences
    sources = {"articles": str(args.articles), "articles_read": len(articles), "sentence_pool": pool}
    if args.questions is not None:
        questions, pool = pick_questions(args.questions, args.count)
        sets[f"{args.questions.stem} questions"] = questions
        sources.update(questions=str(args.questions), question_pool=pool)

    with tempfile.TemporaryDirectory(prefix="onnx-agreement-") as scratch:
        started = time.perf_counter()
        embedder = Embedder(PACKAGED_MODEL)
        embedder.warm_up()
        if args.encoder_dir is None:
            path = export_onnx_encoders(PACKAGED_MODEL, encoder_dir(Path(scratch), PACKAGED_MODEL))
            export_s = time.perf_counter() - started
        else:
            path, export_s = args.encoder_dir, None
        onnx = OnnxQueryEncoder(path, PACKAGED_MODEL)
        onnx.warm_up()
        import torch

        report: dict = {
            "model": PACKAGED_MODEL,
            "encoder": json.loads((path / "encoder.json").read_text(encoding="utf-8")),
            "sources": sources,
            "count": args.count,
            "min_words": args.min_words,
            "export_s": export_s,
            "threads": {"torch": torch.get_num_threads(), "onnx": 1},
            "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
            "load_average_at_start": os.getloadavg(),
            "agreement": {},
            "latency": {},
        }
        for label, texts in sets.items():
            reference = embedder.embed(texts)
            single = np.stack([onnx.embed([text])[0] for text in texts])
            batched = onnx.embed(texts)
            report["agreement"][f"{label}: onnx single vs torch"] = cosine_stats(single, reference, texts)
            report["agreement"][f"{label}: onnx batch 32 vs torch"] = cosine_stats(batched, reference, texts)
            report["agreement"][f"{label}: onnx batch 32 vs single"] = cosine_stats(batched, single, texts)

        latency_texts = evenly_spaced([text for texts in sets.values() for text in texts], args.latency_texts)
        threads = torch.get_num_threads()
        report["latency"][f"torch, {threads} threads (default)"] = per_text_ms(embedder.embed, latency_texts)
        # On a shared machine torch's OpenMP threads wait on each other when another process
        # holds a core: one thread is then many times faster for a short text.
        torch.set_num_threads(1)
        report["latency"]["torch, 1 thread"] = per_text_ms(embedder.embed, latency_texts)
        torch.set_num_threads(threads)
        report["latency"]["onnx int8, 1 thread"] = per_text_ms(onnx.embed, latency_texts)

        question = next(iter(sets.get(f"{args.questions.stem} questions", []) if args.questions else []), None)
        question = question or "What did Herzog ask Lavrov?"
        report["cold"] = {"question": question, "onnx": cold_start(COLD_ONNX, path, question, args.cold_runs)}
        if not args.no_torch_cold:
            report["cold"]["torch"] = cold_start(COLD_TORCH, path, question, args.cold_runs)

        if args.throughput:
            report["throughput"] = throughput(embedder, onnx, articles, args.throughput)

    failed = [
        label
        for label, stats in report["agreement"].items()
        if "single vs torch" in label and stats["mean"] < THRESHOLD
    ]
    report["load_average_at_end"] = os.getloadavg()
    report["passed"] = not failed
    report["date"] = time.strftime("%Y-%m-%d")
    print_report(report)
    print(f"{'PASS' if not failed else 'FAIL'}: mean cosine of the single-text (query) path >= {THRESHOLD} on every set"
          + (f"; below on: {', '.join(failed)}" if failed else ""))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
