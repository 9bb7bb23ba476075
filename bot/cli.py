"""``quotebot``: the command line. Every command is a thin shell over the index or the chat core.

Errors reach the user as one line on stderr and an exit code, never a traceback: every error
a user can fix is a ``QuotebotError`` carrying its ``ExitCode`` (quotebot.index.errors);
``QUOTEBOT_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from quotebot.bot.settings import Settings, load_settings
from quotebot.index.errors import ExitCode, UserError, exit_code_of, is_user_error

__all__ = ["ExitCode", "UserError", "build_parser", "main"]


# Commands that live beside their front end. Each module has ``register(commands, common)``,
# which adds its subparser with a ``handler(args, settings) -> ExitCode``; it imports nothing
# heavy at module level, so `quotebot --help` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "quotebot.bot.eval_command",
    "quotebot.bot.telegram.command",
    "quotebot.bot.regress.command",
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
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
        if code is ExitCode.INTERNAL and os.environ.get("QUOTEBOT_DEBUG"):
            raise
        print(f"quotebot: error: {message}", file=sys.stderr)
        return code


def _common_options(default: object) -> argparse.ArgumentParser:
    """--config and --index-dir, accepted before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", default=default, help="config file (default: ./config.yaml)")
    common.add_argument("--index-dir", type=Path, metavar="DIR", default=default, help="index folder (default: index.index_dir)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quotebot",
        description="Answers questions by quoting news articles word for word.",
        parents=[_common_options(None)],
    )
    # After the command name the options must not reset what was given before it.
    common = _common_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    index = commands.add_parser("index", help="build and inspect the index", parents=[common])
    index_commands = index.add_subparsers(title="index commands", metavar="COMMAND")
    build = index_commands.add_parser("build", help="index articles (default: the configured corpus)", parents=[common])
    build.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders of articles")
    build.add_argument("--strict", action="store_true", help="stop at the first unreadable file or record")
    build.set_defaults(handler=_index_build)
    add = index_commands.add_parser(
        "add", help="add or update articles (an article with a known id replaces it)", parents=[common]
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders of articles")
    add.add_argument("--strict", action="store_true", help="stop at the first unreadable file or record")
    add.set_defaults(handler=_index_add)
    remove = index_commands.add_parser("remove", help="remove articles by id (see `index list`)", parents=[common])
    remove.add_argument("ids", nargs="+", metavar="ID", help="article ids")
    remove.set_defaults(handler=_index_remove)
    listing = index_commands.add_parser("list", help="the indexed articles: id, chunks, date, title", parents=[common])
    listing.add_argument("--json", action="store_true", help="one JSON object per article")
    listing.set_defaults(handler=_index_list)
    verify = index_commands.add_parser(
        "verify", help="check counts, ids and hashes of every index file", parents=[common]
    )
    verify.set_defaults(handler=_index_verify)
    stats = index_commands.add_parser("stats", help="what the index holds", parents=[common])
    stats.add_argument("--json", action="store_true", help="print the manifest as JSON")
    stats.set_defaults(handler=_index_stats)

    ask = commands.add_parser("ask", help="answer one question (or a file of them)", parents=[common])
    ask.add_argument("question", nargs="?", help="the question")
    ask.add_argument("--batch", type=Path, metavar="FILE", help="one question a line ('-' for stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")
    ask.set_defaults(handler=_ask)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal", parents=[common])
    chat.set_defaults(handler=_chat)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands, common)
    return parser


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

    paths = args.paths or settings.index.corpus
    reporter = BuildReporter(sys.stderr)
    articles = _load_or_fail(paths, args.strict, reporter)
    change = _builder(settings).build(articles.articles, settings.index.index_dir, on_progress=reporter.progress)
    reporter.finished(change, settings.index.index_dir, skipped=len(articles.skipped), duplicates=articles.duplicates)
    return ExitCode.OK


def _index_add(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.progress import BuildReporter

    reporter = BuildReporter(sys.stderr)
    articles = _load_or_fail(args.paths, args.strict, reporter)
    change = _builder(settings).add(articles.articles, settings.index.index_dir, on_progress=reporter.progress)
    reporter.finished(change, settings.index.index_dir, skipped=len(articles.skipped), duplicates=articles.duplicates)
    return ExitCode.OK


def _index_remove(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.progress import BuildReporter

    change = _builder(settings, embeds=False).remove(args.ids, settings.index.index_dir)
    BuildReporter(sys.stderr).finished(change, settings.index.index_dir, skipped=0, duplicates=0)
    return ExitCode.OK


def _index_list(args: argparse.Namespace, settings: Settings) -> ExitCode:
    import json

    from quotebot.index.reader import QuoteIndex

    articles = QuoteIndex.load(settings.index.index_dir).articles
    for record, chunks in zip(articles.records, articles.rows["chunks"].tolist()):
        if args.json:
            print(json.dumps({**record, "chunks": chunks}, ensure_ascii=False))
        else:
            print(f"{record['id']}\t{chunks} chunks\t{record.get('date') or '-'}\t{record['title']}")
    return ExitCode.OK


def _index_verify(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.verify import verify_index

    report = verify_index(settings.index.index_dir)
    for problem in report.problems:
        print(f"quotebot: verify: {problem}", file=sys.stderr)
    if report.problems:
        print(f"index at {settings.index.index_dir} is damaged: {len(report.problems)} problem(s); "
              f"run `quotebot index build` to rebuild it", file=sys.stderr)
        return ExitCode.FAILED
    print(f"index OK: {report.summary}")
    return ExitCode.OK


def _builder(settings: Settings, *, embeds: bool = True):
    """The index writer; one that ``embeds`` gets the ONNX document encoder (made now if the
    index folder has none), so `index add` never imports torch. `index remove` embeds
    nothing: its torch ``Embedder`` is never loaded."""
    from quotebot.index.embedding import Embedder
    from quotebot.index.builder import IndexBuilder
    from quotebot.index.onnx_encoder import document_encoder_for

    index = settings.index
    if embeds:
        embedder = document_encoder_for(index.index_dir, index.model, index.batch_size)
    else:
        embedder = Embedder(model=index.model, batch_size=index.batch_size)
    return IndexBuilder(
        embedder, index.chunk_tokens, index.chunk_overlap, vector_index=index.vector_index, hnsw_m=index.hnsw_m
    )


def _load_or_fail(paths: list[Path], strict: bool, reporter):
    from quotebot.index.loaders import load_articles

    report = load_articles(paths, strict=strict, on_skip=reporter.skipped)
    if not report.articles:
        raise UserError(f"no articles found in {', '.join(map(str, paths))}", ExitCode.BAD_INPUT)
    return report


def _index_stats(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.reader import read_manifest

    manifest = read_manifest(settings.index.index_dir)
    if args.json:
        print(manifest.model_dump_json(indent=2))
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
        ("size", f"{size / 1e6:.1f} MB"),
        ("built", f"{manifest.built_at} in {manifest.build_seconds:.1f} s"),
    ]
    for name, value in rows:
        print(f"{name:<10} {value}")
    return ExitCode.OK


# -- ask -----------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.bot.chat import QuoteBot
    from quotebot.bot.render import answer_to_json, answer_to_text

    if (args.question is None) == (args.batch is None):
        raise UserError("ask takes a QUESTION or --batch FILE (one of the two)", ExitCode.USAGE)
    questions = _batch_questions(args.batch) if args.batch else iter([args.question])
    bot = QuoteBot.from_settings(settings)
    color = _use_color(settings, sys.stdout)
    for number, question in enumerate(questions):
        # Batch questions are independent: each gets a conversation of its own.
        answer = bot.ask(question, conversation=f"ask-{number}")
        if args.json:
            print(answer_to_json(answer), flush=bool(args.batch))
        else:
            header = f"Q: {question}\n" if args.batch else ""
            print(f"{header}{answer_to_text(answer, color=color)}\n", flush=bool(args.batch))
    return ExitCode.OK


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
    from quotebot.bot.chat import QuoteBot
    from quotebot.bot.terminal import TerminalChat

    started = time.perf_counter()
    bot = QuoteBot.from_settings(settings)
    bot.warm_up()
    chat = TerminalChat(bot, color=_use_color(settings, sys.stdout), history_file=settings.chat.history_file)
    chat.run(ready_seconds=time.perf_counter() - started)
    return ExitCode.OK


Handler = Callable[[argparse.Namespace, Settings], ExitCode]

if __name__ == "__main__":
    sys.exit(main())
