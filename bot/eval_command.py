"""``quotebot eval``: measure answer quality on a question set (docs/eval.md).

``quotebot eval squad PATH`` asks the questions of a SQuAD-format file over an open corpus
of all its paragraphs, of quotebot and of the BM25-only and dense-only baselines, and
prints their scores side by side; ``--abstention`` adds the threshold curves against a corpus without the answers,
``--per-article`` one-article corpora (and other articles' questions against them),
``--left-out`` the open corpus with each question's own paragraph left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from quotebot.bot.settings import Settings
from quotebot.index.errors import ExitCode, UserError

EVAL_CACHE = Path(".quotebot") / "eval-cache"
FOREIGN_PER_ARTICLE = 100


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    evaluation = commands.add_parser("eval", help="measure answer quality on a question set", parents=[common])
    kinds = evaluation.add_subparsers(title="eval commands", metavar="COMMAND")
    squad = kinds.add_parser(
        "squad",
        help="SQuAD-format questions over an open corpus of all the file's paragraphs",
        description="Ask the questions of a SQuAD-format file of quotebot, BM25 alone and dense alone, "
        "over one index of every paragraph of the file, and report quote@k, passage@k, MRR and latency.",
        parents=[common],
    )
    squad.add_argument("path", type=Path, metavar="PATH", help="a SQuAD v1.1-format JSON file")
    squad.add_argument("--articles", metavar="A:B", help="ask only the questions of articles A to B (1-based, inclusive)")
    squad.add_argument("--limit", type=int, metavar="N", help="ask at most N questions, evenly spread")
    squad.add_argument("--json", action="store_true", help="print the report as one JSON object")
    squad.add_argument(
        "--abstention", type=Path, metavar="JSONL", help="also ask the questions against these articles (e.g. bbc.jsonl)"
    )
    squad.add_argument(
        "--per-article", action="store_true",
        help="also index each chosen SQuAD article alone and ask it its own questions and other articles' ones",
    )
    squad.add_argument(
        "--foreign", type=int, default=FOREIGN_PER_ARTICLE, metavar="N",
        help=f"--per-article: other articles' questions asked of each article (default {FOREIGN_PER_ARTICLE})",
    )
    squad.add_argument(
        "--left-out", action="store_true",
        help="also ask each question without its own paragraph (counted where no gold answer is left in the corpus)",
    )
    squad.add_argument("--cache-dir", type=Path, metavar="DIR", help="where eval indexes are cached (default: .quotebot/eval-cache)")
    squad.add_argument("--records", type=Path, metavar="FILE", help="write every question's outcome as JSON Lines")
    squad.set_defaults(handler=_squad)


def _squad(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.manifest import ChunkingSettings
    from quotebot.index.onnx_encoder import query_encoder_for
    from quotebot.retrieval.evaluation.cache import article_file_index, file_sha256, squad_index, subset_index
    from quotebot.retrieval.evaluation.harness import evaluate, evaluate_left_out, evaluate_per_article
    from quotebot.retrieval.evaluation.report import render_table
    from quotebot.retrieval.evaluation.squad import SquadFormatError, load_squad, parse_article_range

    try:
        articles = parse_article_range(args.articles) if args.articles else None
    except ValueError as error:
        raise UserError(str(error), ExitCode.USAGE) from None
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1", ExitCode.USAGE)
    if args.foreign < 0:
        raise UserError("--foreign must be 0 or more", ExitCode.USAGE)
    if args.abstention is not None and not args.abstention.is_file():
        raise UserError(f"{args.abstention}: no such articles file (--abstention)", ExitCode.BAD_INPUT)
    try:
        squad = load_squad(args.path)
    except SquadFormatError as error:
        raise UserError(str(error), ExitCode.BAD_INPUT) from None
    try:
        questions = squad.select(articles, args.limit)
    except ValueError as error:
        raise UserError(str(error), ExitCode.USAGE) from None
    if not questions:
        raise UserError(f"{args.path}: no answerable questions in the chosen articles", ExitCode.BAD_INPUT)

    progress = _Progress(sys.stderr)
    cache_dir = (args.cache_dir or _project_dir(args) / EVAL_CACHE).resolve()
    embedder = _embedder(settings)  # torch: loaded only if an index must be built
    chunking = ChunkingSettings(chunk_tokens=settings.index.chunk_tokens, chunk_overlap=settings.index.chunk_overlap)
    cached = squad_index(
        squad, cache_dir, embedder, chunking, on_build=progress.building(args.path), on_progress=progress.indexing
    )
    dataset = _corpus_info(args.path, squad.sha256, cached)
    out_of_corpus = None
    if args.abstention is not None:
        other = article_file_index(
            args.abstention, cache_dir, embedder, chunking,
            on_build=progress.building(args.abstention), on_progress=progress.indexing,
        )
        out_of_corpus = (other.index, _corpus_info(args.abstention, file_sha256(args.abstention), other))
    encoder = query_encoder_for(cached.index_dir, settings.index.model, torch_model=lambda: embedder)
    run = evaluate(
        questions,
        cached.index,
        encoder,
        settings.retrieval,
        dataset=dataset,
        articles=f"{articles[0]}:{articles[1]}" if articles else "all",
        limit=args.limit,
        out_of_corpus=out_of_corpus,
        on_progress=progress.asking,
    )
    report, records = run.report, list(run.records)
    if args.per_article:
        def article_index(number: int):
            sub = subset_index(
                cached, squad.article_ids(number), cache_dir / f"{cached.index_dir.name}.articles" / f"{number:03d}",
                embedder, chunking,
            )
            return sub.index, sub.built

        per_article, extra = evaluate_per_article(
            questions, squad.titles, article_index, encoder, settings.retrieval,
            foreign_per_article=args.foreign, on_progress=progress.asking,
        )
        report, records = report.model_copy(update={"per_article": per_article}), records + extra
    if args.left_out:
        counted = squad.answer_only_in_own_paragraph(questions)
        left_out, extra = evaluate_left_out(
            run.records, counted, cached.index, encoder, settings.retrieval, on_progress=progress.asking
        )
        report, records = report.model_copy(update={"left_out": left_out}), records + extra
    progress.clear()
    if args.records:
        _write_records(args.records, records)
    print(report.model_dump_json(indent=2) if args.json else render_table(report))
    return ExitCode.OK


def _embedder(settings: Settings):
    from quotebot.index.embedding import Embedder

    return Embedder(model=settings.index.model, batch_size=settings.index.batch_size)


def _project_dir(args: argparse.Namespace) -> Path:
    """The config file's folder (where .quotebot/ lives), else the working directory."""
    config = getattr(args, "config", None)
    return config.resolve().parent if config else Path.cwd()


def _corpus_info(path: Path, sha256: str, cached):
    from quotebot.retrieval.evaluation.report import CorpusInfo

    counts = cached.index.manifest.counts
    return CorpusInfo(
        file=path.name, sha256=sha256, articles=counts.articles, chunks=counts.chunks,
        sentences=counts.sentences, index_built_now=cached.built,
    )


def _write_records(path: Path, records) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    except OSError as error:
        raise UserError(f"{path}: cannot write records ({error.strerror})", ExitCode.BAD_INPUT) from None


class _Progress:
    """One progress line on stderr: redrawn on a terminal, a line every few seconds elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.on_terminal = stream.isatty()
        self._last = 0.0
        self._shown = False

    def building(self, path: Path):
        def announce(articles: int) -> None:
            self.clear()
            print(f"quotebot: indexing {articles:,} articles of {path.name} for eval (cached for reruns)", file=self.stream)

        return announce

    def indexing(self, status) -> None:
        self._show(f"indexing: {status.articles_done:,}/{status.articles_total:,} articles, {status.chunks_done:,} chunks")

    def asking(self, what: str, done: int, total: int) -> None:
        self._show(f"{what}: {done:,}/{total:,} questions", final=done == total)

    def _show(self, line: str, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.2 if self.on_terminal else 10.0):
            return
        self._last = now
        if self.on_terminal:
            self.stream.write(f"\r\033[K{line}")
            self.stream.flush()
            self._shown = True
        else:
            print(line, file=self.stream, flush=True)

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
