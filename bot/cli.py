"""``quotebot``: the command line. Every command is a thin shell over the index or the chat core.

Errors reach the user as one line on stderr and an exit code, never a traceback: every error
a user can fix is a ``QuotebotError`` carrying its ``ExitCode`` (quotebot.index.errors);
``QUOTEBOT_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

# pydantic looks for plugins (observability hooks other packages register) by scanning every
# installed package's entry points when the first model is defined: 30 ms of a one-shot
# `quotebot ask`, and quotebot uses none. Set PYDANTIC_DISABLE_PLUGINS yourself (even to "")
# to have them loaded. Before quotebot's models are defined, so before its imports.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# One BLAS thread: quotebot's numpy work is small (one question's vectors, an article's
# rows), and starting OpenBLAS's thread pool is ~10 ms of every command's numpy import. The
# models run on onnxruntime's threads and FAISS on its own, so no step gets slower; a
# matrix product's values do not depend on the thread count. Set it yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from quotebot.bot.safe_text import json_line, printable  # noqa: E402
from quotebot.bot.settings import Settings, load_settings  # noqa: E402
from quotebot.index.errors import ExitCode, IndexMissingError, UserError, exit_code_of, is_user_error  # noqa: E402

__all__ = ["ExitCode", "UserError", "build_parser", "main"]


# Commands that live beside their front end, by name. Each module has ``register(commands,
# common)``, which adds its subparser with a ``handler(args, settings) -> ExitCode``; it
# imports nothing heavy at module level, so `quotebot --help` stays fast.
COMMAND_MODULES: dict[str, str] = {
    "eval": "quotebot.bot.eval_command",
    "telegram": "quotebot.bot.telegram.command",
    "regress": "quotebot.bot.regress.command",
    "feeds": "quotebot.bot.feeds_command",
}
BUILT_IN_COMMANDS = ("index", "ask", "chat")
# The options of every command that take a value (``_command_in`` steps over it).
_VALUE_OPTIONS = ("--config", "--index-dir")


# Commands that only read and print. Run as the process's own command line, they end it as
# soon as their output is flushed, without tearing down onnxruntime, faiss and every module:
# that teardown cost a one-shot `quotebot ask` 0.1-0.3 s (bench/results/index-scale.md).
QUICK_EXIT_COMMANDS = frozenset({"ask"})


def main(argv: list[str] | None = None) -> int:
    # Only the command given is set up (all of them when it is not plain to see): argparse
    # builds every subparser it is given, ~20 ms of a one-shot `quotebot ask`.
    command = _command_in(sys.argv[1:] if argv is None else argv)
    code = _main(command, argv)
    if argv is None and command in QUICK_EXIT_COMMANDS:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def _main(command: str | None, argv: list[str] | None) -> int:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        build_parser().print_help()
        return ExitCode.USAGE
    try:
        settings = _settings(args)
        return int(args.handler(args, settings) or ExitCode.OK)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `quotebot ask ... | head` closed the pipe: not an error worth a word.
        sys.stderr.close()
        return ExitCode.OK
    except Exception as error:  # every error becomes one line
        code, message = _classify(error)
        message = _as_given(error, message, args)
        if code is ExitCode.INTERNAL and os.environ.get("QUOTEBOT_DEBUG"):
            raise
        print(f"quotebot: error: {printable(message)}", file=sys.stderr)  # paths and ids may hold escapes
        return code


def _as_given(error: Exception, message: str, args: argparse.Namespace) -> str:
    """A missing index is named as the user gave ``--index-dir``, and so is the fix."""
    given = getattr(args, "index_dir", None)
    if not isinstance(error, IndexMissingError) or not given:
        return message
    return message.replace(str(given.resolve()), str(given)).replace(
        "run `quotebot index build`", f"run `quotebot index build --index-dir {given}`"
    )


def _common_options(default: object) -> argparse.ArgumentParser:
    """--config and --index-dir, accepted before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", default=default, help="config file (default: ./config.yaml)")
    common.add_argument("--index-dir", type=Path, metavar="DIR", default=default, help="index folder (default: index.index_dir)")
    return common


def _command_in(argv: list[str]) -> str | None:
    """The command ``argv`` runs, when it is plain: its first word, after the common options
    and their values. None (every command is set up) for anything else: ``--help``,
    ``--version``, an abbreviated option, an unknown word."""
    words = iter(argv)
    for word in words:
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif word.startswith(tuple(f"{option}=" for option in _VALUE_OPTIONS)):
            continue
        elif word.startswith("-"):
            return None
        else:
            return word if word in BUILT_IN_COMMANDS or word in COMMAND_MODULES else None
    return None


class _VersionAction(argparse.Action):
    """``--version``, looking the version up only when asked (importlib.metadata reads every
    installed package's metadata: ~10 ms of every command otherwise)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        print(f"{parser.prog} {_version()}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``command``, only that command's subparser (what running it needs)."""
    parser = argparse.ArgumentParser(
        prog="quotebot",
        description="Answers questions by quoting news articles word for word.",
        parents=[_common_options(None)],
    )
    parser.add_argument("--version", action=_VersionAction)
    # After the command name the options must not reset what was given before it.
    common = _common_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    if command is None or command == "index":
        _add_index_commands(commands, common)
    if command is None or command == "ask":
        _add_ask_command(commands, common)
    if command is None or command == "chat":
        chat = commands.add_parser("chat", help="talk to the bot in the terminal", parents=[common])
        chat.set_defaults(handler=_chat)
    for name, module in COMMAND_MODULES.items():
        if command is None or command == name:
            importlib.import_module(module).register(commands, common)
    return parser


def _add_index_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    index = commands.add_parser("index", help="build and inspect the index", parents=[common])
    index_commands = index.add_subparsers(title="index commands", metavar="COMMAND")
    build = index_commands.add_parser("build", help="index articles (default: the configured corpus)", parents=[common])
    build.add_argument("paths", nargs="*", metavar="PATH", help="files or folders of articles, or URLs of pages")
    build.add_argument("--strict", action="store_true", help="stop at the first unreadable file or record")
    _ray_option(build)
    build.set_defaults(handler=_index_build)
    add = index_commands.add_parser(
        "add", help="add or update articles (an article with a known id replaces it)", parents=[common]
    )
    add.add_argument(
        "paths", nargs="+", metavar="PATH|URL", help="files or folders of articles, or http(s) URLs of article pages"
    )
    add.add_argument("--strict", action="store_true", help="stop at the first unreadable file or record")
    _ray_option(add)
    add.set_defaults(handler=_index_add)
    remove = index_commands.add_parser("remove", help="remove articles by id (see `index list`)", parents=[common])
    remove.add_argument("ids", nargs="+", metavar="ID", help="article ids")
    remove.set_defaults(handler=_index_remove)
    listing = index_commands.add_parser(
        "list", help="the indexed articles: id, chunks, date, source, topic, author, title, url", parents=[common]
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per article")
    listing.set_defaults(handler=_index_list)
    verify = index_commands.add_parser(
        "verify", help="check counts, ids and hashes of every index file", parents=[common]
    )
    verify.set_defaults(handler=_index_verify)
    stats = index_commands.add_parser("stats", help="what the index holds", parents=[common])
    stats.add_argument("--json", action="store_true", help="print the manifest as JSON (without article hashes)")
    stats.add_argument("--verbose", action="store_true", help="with --json: include every article's hash")
    stats.set_defaults(handler=_index_stats)


def _add_ask_command(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ask = commands.add_parser("ask", help="answer one question (or a file of them)", parents=[common])
    ask.add_argument("question", nargs="?", help="the question")
    ask.add_argument("--batch", type=Path, metavar="FILE", help="one question a line ('-' for stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")
    ask.add_argument("--since", metavar="DATE", help="only articles from DATE on (2024-05-01, or 7d for a week ago)")
    ask.add_argument("--until", metavar="DATE", help="only articles up to DATE (inclusive)")
    ask.add_argument("--source", action="append", metavar="NAME", help="only articles from this site or feed (repeatable)")
    ask.add_argument("--topic", action="append", metavar="NAME", help="only articles on this topic (repeatable)")
    ask.set_defaults(handler=_ask)


def _ray_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
        help="chunk and embed on a Ray cluster (ray://host:10001 or host:6379); no address: a local Ray "
        "(needs `pip install 'quotebot[ray]'`)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.index_dir:
        index = settings.index.model_copy(update={"index_dir": args.index_dir.resolve()})
        settings = settings.model_copy(update={"index": index})
    return settings


def _classify(error: Exception) -> tuple[ExitCode, str]:
    if is_user_error(error):
        return exit_code_of(error), str(error)
    if isinstance(error, OSError):
        return ExitCode.BAD_INPUT, f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
    summary = str(error).splitlines()[0] if str(error) else ""
    return ExitCode.INTERNAL, f"unexpected {type(error).__name__}: {summary} (QUOTEBOT_DEBUG=1 shows details)"


# -- index ---------------------------------------------------------------------------------


def _index_build(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.progress import BuildReporter

    started = time.perf_counter()
    paths = args.paths or [str(path) for path in settings.index.corpus]
    reporter = BuildReporter(sys.stderr)
    encoder = _loading_encoder(settings)
    articles, failed_urls = _load_or_fail(paths, args.strict, reporter, settings)
    with _builder_for(args, settings, reporter, encoder) as builder:
        change = builder.build(
            articles.articles, settings.index.index_dir, on_progress=reporter.progress, unreadable=articles.unreadable
        )
    reporter.finished(
        change, settings.index.index_dir, seconds=time.perf_counter() - started, **_summary(articles, failed_urls)
    )
    return ExitCode.OK


def _index_add(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.progress import BuildReporter
    from quotebot.index.reader import read_manifest

    started = time.perf_counter()
    # Before anything slow (the model export): `index add` needs an index to add to.
    read_manifest(settings.index.index_dir)
    reporter = BuildReporter(sys.stderr)
    encoder = _loading_encoder(settings)
    articles, failed_urls = _load_or_fail(args.paths, args.strict, reporter, settings)
    with _builder_for(args, settings, reporter, encoder) as builder:
        change = builder.add(articles.articles, settings.index.index_dir, on_progress=reporter.progress)
    reporter.finished(
        change, settings.index.index_dir, seconds=time.perf_counter() - started, **_summary(articles, failed_urls)
    )
    return ExitCode.OK


def _summary(report, failed_urls: int) -> dict:
    return {
        "skipped": len(report.skipped),
        "duplicates": report.duplicates,
        "unsupported": report.unsupported,
        "fallbacks": report.fallbacks,
        "failed_urls": failed_urls,
    }


def _index_remove(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.progress import BuildReporter

    change = _builder(settings, embeds=False).remove(args.ids, settings.index.index_dir)
    BuildReporter(sys.stderr).finished(change, settings.index.index_dir, skipped=0, duplicates=0)
    return ExitCode.OK


def _index_list(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot import wiring

    articles = wiring.load_index(settings.index, checked=False).articles
    rows = list(zip(articles.records, articles.rows["chunks"].tolist()))
    if args.json:
        for record, chunks in rows:
            print(json_line({**record, "chunks": chunks}))  # exact data, no raw control character
        return ExitCode.OK
    for line in article_table(rows):
        print(line)
    return ExitCode.OK


def article_table(rows: list[tuple[dict, int]]) -> list[str]:
    """``index list``: id, chunks, date, source, topic and author in aligned columns, then the
    title (last, it runs on) and the URL."""
    # Tabs, newlines and escapes in an id or title must not forge columns or rows.
    table = []
    for record, chunks in rows:
        topic = record.get("topic") or (record.get("metadata") or {}).get("topic")
        fields = (record.get("date"), record.get("source"), topic, record.get("author"))
        title = record["title"] + (f"  {record['url']}" if record.get("url") else "")
        cells = (record["id"], f"{chunks} chunk{'s' * (chunks != 1)}", *(field or "-" for field in fields), title)
        table.append(tuple(printable(str(cell)) for cell in cells))
    widths = [max((len(row[column]) for row in table), default=0) for column in range(6)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row[:6], widths)) + "  " + row[6] for row in table]


def _index_verify(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.verify import verify_index

    report = verify_index(settings.index.index_dir)
    code = ExitCode.FAILED if report.problems else ExitCode.OK
    try:
        for problem in report.problems:
            print(f"quotebot: verify: {printable(problem)}", file=sys.stderr)
        if report.problems:
            print(f"index at {settings.index.index_dir} is damaged: {len(report.problems)} problem(s); "
                  f"run `quotebot index build` to rebuild it", file=sys.stderr)
        else:
            print(f"index OK: {report.summary}")
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        # `index verify | head`: the reader left, but the check's result must not be lost.
        _silence_closed_output()
    return code


def _loading_encoder(settings: Settings):
    """The index folder's document encoder, loading in a thread while the articles are read
    (None before the folder's first build: the builder exports the model then)."""
    from quotebot.index.onnx_encoder import loading_document_encoder

    index = settings.index
    return loading_document_encoder(index.index_dir, index.model, index.batch_size)


@contextlib.contextmanager
def _builder_for(args: argparse.Namespace, settings: Settings, reporter=None, encoder=None) -> Iterator[object]:
    """The index writer of `index build` / `index add`: embedding here (with ``encoder``, if
    given), or on Ray with --ray (the local Ray it starts is stopped after)."""
    builder = _builder(settings, reporter=reporter, encoder=encoder)
    if getattr(args, "ray", None) is None:
        yield builder
        return
    from quotebot.index.onnx_encoder import encoder_dir
    from quotebot.index.ray_build import RayVectorizer

    index = settings.index
    vectorizer = RayVectorizer(
        encoder_dir(index.index_dir, index.model), index.model, index.batch_size,
        address=None if args.ray == "local" else args.ray,
    )
    vectorizer.start()  # RayUnavailableError: a one-line error naming the address
    builder.vectorizer = vectorizer
    try:
        yield builder
    finally:
        vectorizer.stop()


def _silence_closed_output() -> None:
    """Point stdout and stderr at /dev/null, so the flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


def _builder(settings: Settings, *, embeds: bool = True, reporter=None, encoder=None):
    from quotebot.bot import wiring
    from quotebot.index.onnx_encoder import OnnxDocumentEncoder, OnnxQueryEncoder, encoder_dir

    index = settings.index
    exported = encoder_dir(index.index_dir, index.model)
    if embeds and reporter is not None and not (OnnxDocumentEncoder.available(exported) and OnnxQueryEncoder.available(exported)):
        # The one-off export takes half a minute with no progress of its own: say so.
        reporter.step(f"preparing the model for {index.index_dir} (once per index folder; about half a minute)")
    return wiring.new_builder(settings.index, encoder if embeds else None, embeds=embeds)


def _load_or_fail(items: list[str], strict: bool, reporter, settings: Settings):
    """Articles from files and folders, and from the pages of the URLs among ``items``; a
    URL that fails is one warning line and the rest still go in."""
    from quotebot.index.loaders import LoadReport, load_articles
    from quotebot.index.web import fetch_articles, is_url

    urls = [item for item in items if is_url(str(item))]
    paths = [Path(item) for item in items if not is_url(str(item))]
    report = (
        load_articles(paths, strict=strict, on_skip=reporter.skipped, max_article_chars=settings.index.max_article_chars)
        if paths
        else LoadReport()
    )
    failed_urls = 0
    if urls:
        with _fetcher(settings) as fetcher:
            web = fetch_articles(urls, fetcher, on_failure=reporter.fetch_failed)
        if strict and web.failed:
            raise UserError(str(web.failed[0]), ExitCode.BAD_INPUT)
        hashes = {article.content_hash for article in report.articles}
        ids = {article.id for article in report.articles}
        for article in web.articles:
            if article.content_hash in hashes or article.id in ids:
                report.duplicates += 1
                continue
            report.articles.append(article)
        report.duplicates += web.duplicates
        report.fallbacks.extend(web.fallbacks)
        failed_urls = len(web.failed)
    if not report.articles:
        raise UserError(f"no articles found in {', '.join(map(str, items))}", ExitCode.BAD_INPUT)
    return report, failed_urls


def _fetcher(settings: Settings):
    from quotebot.index.web import Fetcher

    web = settings.web
    return Fetcher(timeout_seconds=web.timeout_seconds, max_bytes=web.max_page_mb * 1024 * 1024, max_redirects=web.max_redirects)


def _index_stats(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.reader import read_manifest

    manifest = read_manifest(settings.index.index_dir)
    if args.json:
        # Every article's hash is for machines comparing indexes (--verbose); without it the
        # manifest of a 20,000-article index fits a screen.
        print(manifest.model_dump_json(indent=2, exclude=None if args.verbose else {"article_hashes"}))
        return ExitCode.OK
    counts = manifest.counts
    size = sum(manifest.file_sizes.values())
    rows = [
        ("index", str(settings.index.index_dir)),
        ("articles", f"{counts.articles:,}"),
        ("chunks", f"{counts.chunks:,}"),
        ("sentences", f"{counts.sentences:,}"),
        ("model", f"{manifest.model} ({manifest.dimension} dimensions)"),
        ("chunking", f"{manifest.chunking.chunk_tokens} tokens, {manifest.chunking.chunk_overlap} sentence overlap"),
        ("stores", f"{_store(manifest.vector_store)} vectors, {_store(manifest.keyword_index)} keywords"),
        ("size", f"{size / 1e6:.1f} MB"),
        ("built", f"{manifest.built_at} in {manifest.build_seconds:.1f} s"),
    ]
    for name, value in rows:
        print(f"{name:<10} {value}")
    return ExitCode.OK


def _store(ref) -> str:
    return ref.backend + "".join(f" {value}" for key, value in ref.params.items() if key == "kind")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("quotebot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


# -- ask -----------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot import wiring
    from quotebot.bot.render import answer_to_json, answer_to_text

    if (args.question is None) == (args.batch is None):
        raise UserError("ask takes a QUESTION or --batch FILE (one of the two)", ExitCode.USAGE)
    if args.question is not None and not args.question.strip():
        raise UserError("the question is empty: ask takes a QUESTION, e.g. quotebot ask 'What did Herzog ask Lavrov?'", ExitCode.USAGE)
    article_filter = _filter_from(args)
    questions = _batch_questions(args.batch) if args.batch else iter([args.question])
    bot = wiring.new_bot(settings)
    color = _use_color(settings, sys.stdout)
    for number, question in enumerate(questions):
        # Batch questions are independent: each gets a conversation of its own.
        answer = bot.ask(question, conversation=f"ask-{number}", article_filter=article_filter)
        if args.json:
            print(answer_to_json(answer), flush=bool(args.batch))
        else:
            header = f"Q: {printable(question)}\n" if args.batch else ""
            print(f"{header}{answer_to_text(answer, color=color)}\n", flush=bool(args.batch))
    return ExitCode.OK


def _filter_from(args: argparse.Namespace):
    from pydantic import ValidationError

    from quotebot.index.filters import ArticleFilter

    try:
        return ArticleFilter(since=args.since, until=args.until, sources=args.source or (), topics=args.topic or ())
    except ValidationError as error:
        problem = error.errors()[0]
        option = {"sources": "source", "topics": "topic"}.get(str(problem["loc"][0]), str(problem["loc"][0]))
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise UserError(f"--{option}: {message}", ExitCode.USAGE) from None


def _batch_questions(path: Path) -> Iterator[str]:
    """Non-blank lines of the file (or stdin for '-'), stripped."""
    if str(path) == "-":
        handle: TextIO = sys.stdin
    else:
        try:
            handle = open(path, encoding="utf-8")
        except OSError as error:
            raise UserError(f"{path}: cannot read questions ({error.strerror})", ExitCode.BAD_INPUT) from None
    with handle:
        try:
            for line in handle:
                if line.strip():
                    yield line.strip()
        except UnicodeDecodeError:
            raise UserError(f"{path}: questions are not valid UTF-8", ExitCode.BAD_INPUT) from None


def _use_color(settings: Settings, stream: TextIO) -> bool:
    if settings.chat.color != "auto":
        return settings.chat.color == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


# -- chat ----------------------------------------------------------------------------------


def _chat(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot import wiring
    from quotebot.bot.terminal import TerminalChat

    started = time.perf_counter()
    bot = wiring.new_bot(settings)
    bot.warm_up()
    chat = TerminalChat(bot, color=_use_color(settings, sys.stdout), history_file=settings.chat.history_file)
    chat.run(ready_seconds=time.perf_counter() - started)
    return ExitCode.OK


Handler = Callable[[argparse.Namespace, Settings], ExitCode]

if __name__ == "__main__":
    sys.exit(main())
