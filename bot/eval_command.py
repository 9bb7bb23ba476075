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
NEWS_PER_FILE_LIMIT = 2_500


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

    news = kinds.add_parser(
        "news",
        help="the hand-written news question set, each article alone and the whole corpus",
        description="Ask the questions of a news question set (bench/news_questions.yaml) of quotebot, BM25 alone "
        "and dense alone: each against its article indexed alone, and against the whole corpus of the files given; "
        "report first-quote accuracy and wrong answers on the unanswerable ones, per half.",
        parents=[common],
    )
    news.add_argument("path", type=Path, metavar="QUESTIONS", help="a news question set (YAML)")
    news.add_argument(
        "--corpus", type=Path, action="append", required=True, metavar="FILE",
        help="an articles file the questions' articles come from (repeat: bbc.jsonl, reuters21578.jsonl)",
    )
    news.add_argument(
        "--per-file-limit", type=int, default=NEWS_PER_FILE_LIMIT, metavar="N",
        help="a corpus file with more articles gives the questions' ones plus an even sample up to N "
        f"(default {NEWS_PER_FILE_LIMIT:,})",
    )
    news.add_argument("--half", choices=["tune", "report"], help="ask only this half (default: both, reported apart)")
    news.add_argument(
        "--mode", choices=["both", "alone", "corpus"], default="both",
        help="the article alone, the whole corpus, or both (default)",
    )
    news.add_argument("--json", action="store_true", help="print the report as one JSON object")
    news.add_argument("--cache-dir", type=Path, metavar="DIR", help="where eval indexes are cached (default: .quotebot/eval-cache)")
    news.add_argument("--records", type=Path, metavar="FILE", help="write every question's outcome as JSON Lines")
    news.set_defaults(handler=_news)


def _squad(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot import wiring
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
    builder = wiring.new_builder(settings.index, embedder, export_onnx=False)
    cached = squad_index(squad, cache_dir, builder, on_build=progress.building(args.path), on_progress=progress.indexing)
    dataset = _corpus_info(args.path, squad.sha256, cached)
    out_of_corpus = None
    if args.abstention is not None:
        other = article_file_index(
            args.abstention, cache_dir, builder,
            on_build=progress.building(args.abstention), on_progress=progress.indexing,
        )
        out_of_corpus = (other.index, _corpus_info(args.abstention, file_sha256(args.abstention), other))
    encoder = wiring.query_encoder(settings.index, cached.index_dir, torch_model=lambda: embedder)
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
                builder,
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


def _news(args: argparse.Namespace, settings: Settings) -> ExitCode:
    import hashlib
    import os

    from quotebot.bot import wiring
    from quotebot.index.loaders import load_articles
    from quotebot.retrieval.evaluation.cache import NEWS_CORPUS, cache_key, cached_index, derived_index, file_sha256, subset_index
    from quotebot.retrieval.evaluation.harness import evaluate_news, load_average
    from quotebot.retrieval.evaluation.news import corpus_articles, load_news_set
    from quotebot.retrieval.evaluation.report import CorpusInfo, MachineLoad, NewsReport, render_news_table

    if args.per_file_limit < 1:
        raise UserError("--per-file-limit must be at least 1", ExitCode.USAGE)
    for path in args.corpus:
        if not path.is_file():
            raise UserError(f"{path}: no such articles file (--corpus)", ExitCode.BAD_INPUT)
    news = load_news_set(args.path)
    questions = news.select(args.half)
    started = time.perf_counter()
    load_before = load_average()
    progress = _Progress(sys.stderr)
    cache_dir = (args.cache_dir or _project_dir(args) / EVAL_CACHE).resolve()
    embedder = _embedder(settings)
    builder = wiring.new_builder(settings.index, embedder, export_onnx=False)
    files = [(path, load_articles([path]).articles) for path in args.corpus]
    articles = corpus_articles(files, news.article_ids, args.per_file_limit)
    news.check_against({a.id: a for a in articles})
    # The questions' own articles are indexed once (a small build); each article-alone index
    # is narrowed from it and the whole corpus grown from it: no article is embedded twice.
    by_id = {a.id: a for a in articles}
    own = [by_id[article_id] for article_id in news.article_ids]
    files_digest = hashlib.sha256("\n".join([*(file_sha256(p) for p in args.corpus), *news.article_ids]).encode()).hexdigest()
    own_key = cache_key(
        corpus_sha256=files_digest, corpus_kind=NEWS_CORPUS, model=embedder.model, chunking=builder.chunking
    )
    base = cached_index(
        cache_dir, own_key, lambda: own, builder, on_build=progress.building(args.path), on_progress=progress.indexing
    )
    encoder = wiring.query_encoder(settings.index, base.index_dir, torch_model=lambda: embedder)
    modes, records = [], []
    if args.mode in ("both", "alone"):
        alone: dict[str, object] = {}

        def article_alone(article_id: str):
            if article_id not in alone:
                alone.clear()
                folder = cache_dir / f"{own_key}.alone" / article_id
                alone[article_id] = subset_index(base, [article_id], folder, builder).index
            return alone[article_id]

        reports, extra = evaluate_news("article alone", questions, article_alone, encoder, settings.retrieval, on_progress=progress.asking)
        modes += reports
        records += extra
    whole = None
    if args.mode in ("both", "corpus"):
        progress.building_count(len(articles) - len(own), "corpus articles")
        whole = derived_index(
            base, articles, cache_dir / f"{own_key}.corpus-{args.per_file_limit}", builder,
            embed_new=True, on_progress=progress.indexing,
        )
        reports, extra = evaluate_news("whole corpus", questions, lambda _: whole.index, encoder, settings.retrieval, on_progress=progress.asking)
        modes += reports
        records += extra
    progress.clear()
    used = {a.id for a in articles} if whole is not None else set(news.article_ids)
    report = NewsReport(
        questions_file=args.path.name,
        sha256=news.sha256,
        questions=len(questions),
        articles=len({q.article_id for q in questions}),
        corpus=None if whole is None else CorpusInfo(
            file=", ".join(p.name for p in args.corpus), sha256=files_digest, articles=whole.index.manifest.counts.articles,
            chunks=whole.index.manifest.counts.chunks, sentences=whole.index.manifest.counts.sentences,
            index_built_now=whole.built,
        ),
        corpus_files=[f"{p.name}: {sum(a.id in used for a in arts):,} of {len(arts):,} articles" for p, arts in files],
        retrieval=settings.retrieval.model_dump(),
        modes=modes,
        query_encoder=f"{type(encoder).__name__} ({encoder.model})",
        seconds=round(time.perf_counter() - started, 1),
        machine=MachineLoad(cpus=os.cpu_count() or 0, load_before=load_before, load_after=load_average()),
    )
    if args.records:
        _write_records(args.records, records)
    print(report.model_dump_json(indent=2) if args.json else render_news_table(report))
    return ExitCode.OK


def _embedder(settings: Settings):
    from quotebot.bot import wiring

    return wiring.torch_embedder(settings.index)


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

    def building_count(self, articles: int, what: str) -> None:
        if articles:
            self.clear()
            print(f"quotebot: indexing {articles:,} {what} for eval (cached for reruns)", file=self.stream)

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
