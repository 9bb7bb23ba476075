"""Vector store at scale: flat vs HNSW on a synthetic corpus of up to a million chunks.

    .venv/bin/python bench/vector_scale.py --articles ../shared/data/news/bbc.jsonl \\
        [--sizes 10k,100k,300k,1M] [--kinds flat,hnsw] [--json PATH]

The vectors are realistic, not uniform noise: real BBC chunks (chunked as the index does,
120 tokens, overlap 1) embedded by the packaged all-MiniLM-L6-v2 are the "bases"; each
synthetic chunk is a random base plus gaussian noise shaped like the real chunks' spread
(their covariance), renormalised. Queries are chunks of held-out articles (never bases)
with the same noise, so they come from the corpus' distribution but are not in it.

The noise norm sigma is calibrated once, at --calibrate-at chunks (default 1M), so that a
query's 10th nearest synthetic chunk is as similar (median cosine) as a real query's 10th
nearest real chunk among the bases. A real corpus that large would have closer neighbours
than a few thousand real chunks do, so the figures err on the hard side for ANN recall.
--noise fixes sigma instead (e.g. to see how recall depends on it).

For each size and kind: build seconds (every core, as the store builds), file size,
then, in a fresh process per case (so memory figures are honest): load seconds with
mmap=True and mmap=False, warm single-query latency (k=50, as the bot asks; p50/p95 over
--queries queries after one untimed pass), recall@10 against exact search, and peak RSS
(VmHWM; ru_maxrss would carry over this parent's peak through execve) minus that of the
same process that loads nothing. The index file was just
written, so loads read from a warm page cache. The embeddings are cached (--cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEARCH_K = 50  # retrieval.dense_candidates: what the bot asks the vector store for
RECALL_AT = 10
FLAT_BUDGET_MS = 5.0  # the criterion for flat -> HNSW: flat search alone above 5 ms
SIZES = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    if text[-1:] in SIZES:
        return int(float(text[:-1]) * SIZES[text[-1]])
    return int(text)


def show_size(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    return f"{n / 1000:g}k" if n >= 1000 and n % 100 == 0 else str(n)


# --- real vectors ----------------------------------------------------------------------


def real_vectors(articles: Path, base_chunks: int, query_chunks: int, cache: Path | None, seed: int) -> dict[str, np.ndarray]:
    """Embedded chunks of real articles: bases (with their article numbers) and held-out queries."""
    key = hashlib.sha256(f"{articles.resolve()}:{articles.stat().st_size}:{base_chunks}:{query_chunks}:{seed}".encode()).hexdigest()[:12]
    cache = cache or Path(tempfile.gettempdir()) / f"quotebot-vector-scale-{key}.npz"
    if cache.exists():
        data = np.load(cache)
        print(f"real chunk vectors: {cache} (cached)", file=sys.stderr)
        return {name: data[name] for name in data.files}

    from quotebot.index.chunking import chunk_article
    from quotebot.index.embedding import Embedder
    from quotebot.index.loaders import load_articles

    loaded = load_articles([articles]).articles
    order = np.random.default_rng(seed).permutation(len(loaded))
    base_texts: list[str] = []
    base_article: list[int] = []
    query_texts: list[str] = []
    for number in order:  # whole articles: a query never comes from an article that has bases
        article = loaded[number]
        _, chunks = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
        texts = [article.text[c.start : c.end] for c in chunks]
        if len(base_texts) < base_chunks:
            base_texts += texts
            base_article += [int(number)] * len(texts)
        elif len(query_texts) < query_chunks:
            query_texts += texts
        else:
            break
    base_texts, base_article, query_texts = base_texts[:base_chunks], base_article[:base_chunks], query_texts[:query_chunks]
    print(f"embedding {len(base_texts)} base and {len(query_texts)} query chunks of {articles} ...", file=sys.stderr)
    embedder = Embedder()
    embedder.warm_up()
    started = time.perf_counter()
    data = {
        "bases": embedder.embed(base_texts).astype(np.float32),
        "base_article": np.asarray(base_article, dtype=np.int64),
        "queries": embedder.embed(query_texts).astype(np.float32),
    }
    print(f"embedded in {time.perf_counter() - started:.0f} s; cached in {cache}", file=sys.stderr)
    np.savez(cache, **data)
    return data


class Noise:
    """Gaussian noise shaped like the real chunks' spread (their covariance), of expected norm sigma.

    Shaped, not isotropic: real embeddings vary along few directions (half the variance of
    MiniLM chunk vectors lies in ~36 of 384 principal directions), and isotropic noise
    would fill all 384, an artificially hard, high-dimensional neighbourhood.
    """

    def __init__(self, real: np.ndarray) -> None:
        centred = real - real.mean(axis=0)
        _, spread, self.axes = np.linalg.svd(centred, full_matrices=False)
        self.scale = (spread / np.sqrt((spread**2).sum())).astype(np.float32)  # unit expected norm
        self.axes = self.axes.astype(np.float32)

    def add(self, rows: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
        """``rows`` plus noise of expected norm ``sigma``, renormalised."""
        z = rng.standard_normal((len(rows), len(self.scale)), dtype=np.float32) * (self.scale * np.float32(sigma))
        out = rows + z @ self.axes
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def synthetic_blocks(n: int, bases: np.ndarray, noise: Noise, sigma: float, seed: int, block: int = 100_000):
    rng = np.random.default_rng(seed)
    for start in range(0, n, block):
        yield noise.add(bases[rng.integers(0, len(bases), min(block, n - start))], sigma, rng)


def synthetic(n: int, bases: np.ndarray, noise: Noise, sigma: float, seed: int) -> np.ndarray:
    out = np.empty((n, bases.shape[1]), dtype=np.float32)
    start = 0
    for rows in synthetic_blocks(n, bases, noise, sigma, seed):
        out[start : start + len(rows)] = rows
        start += len(rows)
    return out


def kth_cosine(queries: np.ndarray, blocks, k: int = RECALL_AT) -> float:
    """Median over queries of the cosine of their k-th nearest row, streaming over row blocks."""
    best = np.full((len(queries), k), -2.0, dtype=np.float32)
    for rows in blocks:
        sims = np.concatenate([best, queries @ rows.T], axis=1)
        best = -np.partition(-sims, k - 1, axis=1)[:, :k]
    return float(np.median(best.min(axis=1)))


def calibrate(bases: np.ndarray, queries: np.ndarray, noise: Noise, size: int, seed: int) -> tuple[float, float, float]:
    """The sigma at which a query's 10th nearest chunk, in a synthetic set of ``size``, is as
    similar (median cosine) as a real query's 10th nearest real chunk among the bases.

    Returns ``(sigma, target, reached)``. A real corpus of ``size`` chunks would have closer
    neighbours than the few thousand real ones, so this errs on the hard side for ANN.
    """
    target = kth_cosine(queries, [bases])

    def gap(sigma: float) -> float:
        rng = np.random.default_rng(seed)
        value = kth_cosine(noise.add(queries, sigma, rng), synthetic_blocks(size, bases, noise, sigma, seed + 1))
        print(f"  calibrating: sigma {sigma:.3f} -> 10th-neighbour cosine {value:.4f} (real {target:.4f})", file=sys.stderr)
        return value - target

    (x0, f0), (x1, f1) = (0.7, gap(0.7)), (1.1, gap(1.1))
    for _ in range(4):  # secant steps; the cosine falls smoothly as sigma grows
        if abs(f1) < 0.002 or f1 == f0:
            break
        x0, f0, x1 = x1, f1, float(np.clip(x1 - f1 * (x1 - x0) / (f1 - f0), 0.05, 3.0))
        f1 = gap(x1)
    return x1, target, target + f1


def calibrated(args, bases: np.ndarray, queries: np.ndarray, noise: Noise, size: int) -> tuple[float, float, float]:
    """``calibrate``, remembered beside the embedding cache (it costs a few passes over ``size`` chunks)."""
    key = hashlib.sha256(bases.tobytes() + queries.tobytes() + f"{size}:{args.seed}".encode()).hexdigest()[:16]
    memo = Path(tempfile.gettempdir()) / f"quotebot-vector-scale-sigma-{key}.json"
    if memo.exists():
        return tuple(json.loads(memo.read_text()))  # type: ignore[return-value]
    result = calibrate(bases, queries, noise, size, args.seed)
    memo.write_text(json.dumps(result))
    return result


# --- measuring -------------------------------------------------------------------------


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, ids = flat.search(queries, k)
    return ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:RECALL_AT]) & set(t[:RECALL_AT])) / RECALL_AT for f, t in zip(found, truth)]))


def serve_in_child(path: Path | None, queries: Path, mmap: bool, ef_search: list[int]) -> dict:
    spec = json.dumps({"path": str(path) if path else None, "queries": str(queries), "mmap": mmap, "ef_search": ef_search})
    result = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"child failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(spec_text: str) -> None:
    """A fresh process that loads one store and answers queries: its figures are its own."""
    spec = json.loads(spec_text)
    from quotebot.index.faiss_store import FaissVectorStore

    queries = np.load(spec["queries"])
    out: dict = {}
    if spec["path"]:
        started = time.perf_counter()
        store = FaissVectorStore.load(Path(spec["path"]), mmap=spec["mmap"])
        out["load_s"] = time.perf_counter() - started
        out["runs"] = []
        for ef in spec["ef_search"] if store.kind == "hnsw" else [None]:
            if ef is not None:
                store.set_ef_search(ef)
            for query in queries:  # one untimed pass: warm caches and mapped pages
                store.search(query, SEARCH_K)
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                ids, _ = store.search(query, SEARCH_K)
                times.append(time.perf_counter() - started)
                found.append(ids[:RECALL_AT])
            ids_path = Path(spec["queries"]).with_name(f"found-{os.getpid()}-{ef}.npy")
            np.save(ids_path, np.array(found, dtype=np.int64))
            out["runs"].append({"ef_search": ef, "p50_ms": float(np.percentile(times, 50) * 1000),
                                "p95_ms": float(np.percentile(times, 95) * 1000), "found": str(ids_path)})
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    # VmHWM is this process' own peak RSS. ru_maxrss is not: Linux carries the maximum over
    # execve, so a child of this (GB-sized) benchmark would report the parent's peak.
    out["peak_rss_mb"] = int(status["VmHWM"].split()[0]) / 1024
    out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rss_anon_mb"] = int(status["RssAnon"].split()[0]) / 1024
    out["rss_file_mb"] = int(status["RssFile"].split()[0]) / 1024
    print(json.dumps(out))


def measure(kind: str, n: int, vectors: np.ndarray, queries_path: Path, truth: np.ndarray, args, work: Path, baseline: dict) -> dict:
    from quotebot.index.faiss_store import FaissVectorStore

    params = {"hnsw_m": args.hnsw_m, "hnsw_ef_construction": args.hnsw_ef_construction} if kind == "hnsw" else {}
    store = FaissVectorStore(vectors.shape[1], kind=kind, **params)
    started = time.perf_counter()
    store.add(np.arange(n, dtype=np.int64), vectors)  # on every core: FaissVectorStore.add
    build_s = time.perf_counter() - started
    path = work / f"{kind}-{n}.faiss"
    store.save(path)
    del store
    row = {"kind": kind, "n": n, "build_s": build_s, "file_mb": path.stat().st_size / 2**20, **params}
    for mmap in (True, False):
        served = serve_in_child(path, queries_path, mmap, args.ef_search)
        tag = "mmap" if mmap else "read"
        row[f"load_{tag}_s"] = served["load_s"]
        row[f"rss_{tag}_mb"] = served["peak_rss_mb"] - baseline["peak_rss_mb"]
        row[f"rss_{tag}_anon_mb"] = served["rss_anon_mb"] - baseline["rss_anon_mb"]
        row[f"rss_{tag}_file_mb"] = served["rss_file_mb"] - baseline["rss_file_mb"]
        runs = []
        for run in served["runs"]:
            found_path = Path(run.pop("found"))
            found = np.load(found_path)
            found_path.unlink()
            runs.append({**run, "recall_at_10": recall(found, truth)})
        row[f"runs_{tag}"] = runs
    path.unlink()
    return row


def serving_run(row: dict, ef: int | None) -> dict:
    """The mmap run at the default efSearch (the serving setup)."""
    runs = row["runs_mmap"]
    return next((r for r in runs if r["ef_search"] == ef), runs[0])


# --- report ----------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    """One line per size, kind and efSearch; RSS = peak RSS over the loads-nothing process,
    "of it file" = how much of the final RSS is file-backed (mapped pages: page cache,
    shared by every process that maps the file, reclaimable)."""
    head = (f"{'kind':<5} {'chunks':>7} {'build s':>8} {'file MB':>8} {'load mmap s':>11} {'load read s':>11} "
            f"{'efSearch':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9} {'RSS mmap MB':>11} {'of it file':>10} {'RSS read MB':>11}")
    lines = [head, "-" * len(head)]
    for row in rows:
        for i, run in enumerate(row["runs_mmap"]):
            first = i == 0
            lines.append(
                (f"{row['kind']:<5} {show_size(row['n']):>7} {row['build_s']:>8.1f} {row['file_mb']:>8.0f} "
                 f"{row['load_mmap_s']:>11.3f} {row['load_read_s']:>11.3f} " if first else " " * 58)
                + f"{run['ef_search'] if run['ef_search'] else '-':>8} {run['p50_ms']:>7.2f} {run['p95_ms']:>7.2f} "
                f"{run['recall_at_10']:>9.3f}"
                + (f" {row['rss_mmap_mb']:>11.0f} {row['rss_mmap_file_mb']:>10.0f} {row['rss_read_mb']:>11.0f}" if first else "")
            )
    return "\n".join(lines)


def flat_crossing(rows: list[dict]) -> dict | None:
    """Where flat search passes FLAT_BUDGET_MS: its cost per chunk (median of p50/n over the
    flat rows from 30k chunks on, robust to one run slowed by a busy machine) into the budget."""
    flat = [(r["n"], serving_run(r, None)["p50_ms"]) for r in rows if r["kind"] == "flat" and r["n"] >= 30_000]
    if not flat:
        return None
    per_chunk = float(np.median([ms / n for n, ms in flat]))
    return {"ms_per_1000_chunks": per_chunk * 1000, "crosses_budget_at_chunks": int(FLAT_BUDGET_MS / per_chunk),
            "from": {show_size(n): ms for n, ms in flat}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=Path, help="a news corpus (.jsonl), e.g. ../shared/data/news/bbc.jsonl")
    parser.add_argument("--sizes", default="10k,100k,300k,1M", help="comma-separated chunk counts (10k, 1M, 25000)")
    parser.add_argument("--kinds", default="flat,hnsw")
    parser.add_argument("--base-chunks", type=int, default=4000, help="real chunks the synthetic ones grow from")
    parser.add_argument("--queries", type=int, default=200, help="query chunks (from held-out articles)")
    parser.add_argument("--noise", type=float, default=None, help="noise norm sigma (default: calibrated, see above)")
    parser.add_argument("--calibrate-at", default="1M", help="synthetic set size at which sigma is calibrated")
    parser.add_argument("--hnsw-m", type=int, default=None)
    parser.add_argument("--hnsw-ef-construction", type=int, default=None)
    parser.add_argument("--ef-search", default=None, help="comma-separated efSearch values to measure (default: 100,200,<default>,600); "
                        "a search is at least k=50 wide whatever efSearch")
    parser.add_argument("--cache", type=Path, default=None, help="where the embedded real chunks are cached (.npz)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for index files (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from quotebot.index.faiss_store import DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M, HNSW_MIN_CHUNKS

    if args.articles is None or not args.articles.is_file():
        print(f"skipped: no articles file ({args.articles}); pass --articles ../shared/data/news/bbc.jsonl", file=sys.stderr)
        return
    args.hnsw_m = args.hnsw_m or DEFAULT_HNSW_M
    args.hnsw_ef_construction = args.hnsw_ef_construction or DEFAULT_HNSW_EF_CONSTRUCTION
    args.ef_search = sorted({int(v) for v in args.ef_search.split(",")} if args.ef_search else {100, 200, DEFAULT_HNSW_EF_SEARCH, 600})
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",")]

    real = real_vectors(args.articles, args.base_chunks, args.queries, args.cache, args.seed)
    bases, queries_real = real["bases"], real["queries"]
    noise = Noise(bases)
    calibrate_at = parse_size(args.calibrate_at)
    if args.noise is not None:
        sigma, target, reached = args.noise, kth_cosine(queries_real, [bases]), None
    else:
        sigma, target, reached = calibrated(args, bases, queries_real, noise, calibrate_at)
    queries = noise.add(queries_real, sigma, np.random.default_rng(args.seed))
    print(f"noise sigma {sigma:.3f}: a synthetic chunk has cosine ~{1 / np.sqrt(1 + sigma**2):.2f} to its base; "
          f"real queries' 10th-neighbour cosine {target:.3f}", file=sys.stderr)

    rows: list[dict] = []
    query_stats: dict[int, float] = {}
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = Path(scratch)
        queries_path = work / "queries.npy"
        np.save(queries_path, queries)
        baseline = serve_in_child(None, queries_path, True, [])
        for n in sizes:
            vectors = synthetic(n, bases, noise, sigma, args.seed + 1)
            started = time.perf_counter()
            truth = exact_top(vectors, queries, RECALL_AT)
            query_stats[n] = float(np.median(np.einsum("qd,qd->q", queries, vectors[truth[:, -1]])))
            print(f"{show_size(n)}: exact top-{RECALL_AT} of {len(queries)} queries in {time.perf_counter() - started:.1f} s; "
                  f"median 10th-neighbour cosine {query_stats[n]:.3f}", file=sys.stderr)
            for kind in kinds:
                row = measure(kind, n, vectors, queries_path, truth, args, work, baseline)
                rows.append(row)
                print("\n".join(table([row]).splitlines()[2:]), file=sys.stderr)
            del vectors

    crossing = flat_crossing(rows)
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "data": {"articles": str(args.articles), "base_chunks": len(bases), "query_chunks": len(queries),
                 "noise_sigma": sigma, "calibrated_at": None if args.noise is not None else calibrate_at,
                 "real_query_10th_cosine_median": target, "synthetic_query_10th_cosine_median_at_calibration": reached,
                 "synthetic_query_10th_cosine_median": {show_size(n): v for n, v in query_stats.items()}},
        "settings": {"search_k": SEARCH_K, "hnsw_m": args.hnsw_m, "hnsw_ef_construction": args.hnsw_ef_construction,
                     "default_ef_search": DEFAULT_HNSW_EF_SEARCH, "build_threads": os.cpu_count(),
                     "baseline_peak_rss_mb": baseline["peak_rss_mb"], "hnsw_min_chunks": HNSW_MIN_CHUNKS},
        "flat_crossing": crossing,
        "rows": rows,
    }
    print(table(rows))
    if crossing:
        print(f"\nflat search: {crossing['ms_per_1000_chunks']:.3f} ms per 1,000 chunks; "
              f"passes {FLAT_BUDGET_MS:g} ms at ~{crossing['crosses_budget_at_chunks']:,} chunks "
              f"(HNSW_MIN_CHUNKS = {HNSW_MIN_CHUNKS:,})")
    print(json.dumps(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
