"""``quotebot feeds``: follow RSS/Atom feeds and index their new articles.

``add``/``list``/``remove`` manage the feed list beside the index; ``update`` indexes what
is new, once; ``watch`` updates on a schedule until stopped (Ctrl-C). Every feed or page
that fails is one warning line; the others go on.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from quotebot.bot.cli import ExitCode, UserError
from quotebot.bot.settings import Settings


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    feeds = commands.add_parser("feeds", help="follow RSS/Atom feeds and index their articles", parents=[common])
    feed_commands = feeds.add_subparsers(title="feeds commands", metavar="COMMAND")
    add = feed_commands.add_parser("add", help="follow a feed", parents=[common])
    add.add_argument("url", metavar="URL", help="the feed's URL (RSS or Atom)")
    add.add_argument("--name", metavar="NAME", help="what answers and /source call it (default: the feed's title)")
    add.set_defaults(handler=_add)
    listing = feed_commands.add_parser("list", help="the followed feeds", parents=[common])
    listing.set_defaults(handler=_list)
    remove = feed_commands.add_parser("remove", help="stop following a feed (its articles stay)", parents=[common])
    remove.add_argument("feed", metavar="URL|NAME")
    remove.set_defaults(handler=_remove)
    update = feed_commands.add_parser("update", help="index the new articles of every feed, once", parents=[common])
    update.set_defaults(handler=_update)
    watch = feed_commands.add_parser("watch", help="update on a schedule until stopped", parents=[common])
    watch.add_argument("--every", metavar="DURATION", help="30s, 15m, 1h, 1d (default: web.feeds_every)")
    watch.set_defaults(handler=_watch)
    feeds.set_defaults(handler=lambda args, settings: _list(args, settings))


def _add(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.feeds import add_feed

    feed = add_feed(_index_dir(settings), args.url, args.name)
    print(f"following {feed.url}" + (f" as {feed.name!r}" if feed.name else "") + "; `quotebot feeds update` indexes it")
    return ExitCode.OK


def _list(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.feeds import read_feeds

    feeds = read_feeds(_index_dir(settings))
    if not feeds.feeds:
        print("no feeds: `quotebot feeds add URL` follows one")
        return ExitCode.OK
    pending: dict[str, int] = {}
    for entry in feeds.pending:
        pending[entry.feed] = pending.get(entry.feed, 0) + 1
    for feed in feeds.feeds:
        state = f"checked {feed.checked_at}" if feed.checked_at else "not checked yet"
        if feed.last_error:
            state += f", last error: {feed.last_error}"
        if pending.get(feed.url):
            state += f", {pending[feed.url]} entries to retry"
        print(f"{feed.label}\t{feed.url}\t{state}")
    return ExitCode.OK


def _remove(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.feeds import remove_feed

    feed = remove_feed(_index_dir(settings), args.feed)
    print(f"no longer following {feed.url} (its articles stay in the index; `quotebot index remove` drops them)")
    return ExitCode.OK


def _update(args: argparse.Namespace, settings: Settings) -> ExitCode:
    report = run_update(settings, sys.stderr)
    # The other feeds went in; a failed one still makes the exit status say so (for cron).
    return ExitCode.FAILED if report.failed_feeds else ExitCode.OK


def run_update(settings: Settings, stream):
    """One update of every feed with the configured limits; warnings and a summary to ``stream``."""
    from quotebot.bot.cli import _fetcher
    from quotebot.bot.progress import BuildReporter
    from quotebot.index.feeds import update_feeds

    reporter = BuildReporter(stream)
    index_dir = _index_dir(settings)

    def warn(message: str) -> None:
        print(f"quotebot: warning: {message}", file=stream, flush=True)

    with _fetcher(settings) as fetcher:
        report = update_feeds(
            index_dir,
            _LazyBuilder(settings),
            fetcher,
            workers=settings.web.fetch_workers,
            warn=warn,
            on_progress=reporter.progress,
        )
    print(
        f"feeds: {report.feeds} checked ({report.not_modified} unchanged, {len(report.failed_feeds)} failed); "
        f"{report.new_entries} new entries: {len(report.added)} added, {report.duplicates} duplicates, "
        f"{len(report.failed_entries)} to retry, {len(report.given_up)} given up; {report.seconds:.1f} s",
        file=stream,
        flush=True,
    )
    if report.change is not None:
        reporter.finished(report.change, index_dir, skipped=0, duplicates=report.duplicates, fallbacks=report.fallbacks)
    return report


class _LazyBuilder:
    """The index writer, made on first use: an update with nothing new loads no model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._builder = None

    def _get(self):
        if self._builder is None:
            from quotebot.bot.cli import _builder

            self._builder = _builder(self.settings)
        return self._builder

    def add(self, *args, **kwargs):
        return self._get().add(*args, **kwargs)

    def build(self, *args, **kwargs):
        return self._get().build(*args, **kwargs)


def _watch(args: argparse.Namespace, settings: Settings) -> ExitCode:
    from quotebot.index.feeds import parse_every, watch

    try:
        every = parse_every(args.every or settings.web.feeds_every)
    except ValueError as error:
        raise UserError(f"--every: {error}", ExitCode.USAGE) from None
    stop = threading.Event()

    def interrupted(signum, frame) -> None:
        # The event first: a library with a bare ``except:`` on the way up (feed parsing,
        # HTML extraction) may swallow the KeyboardInterrupt, and the loop must end anyway.
        stop.set()
        raise KeyboardInterrupt

    print(f"watching the feeds of {_index_dir(settings)} every {_duration(every)}; Ctrl-C stops", file=sys.stderr)
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        watch(lambda: run_update(settings, sys.stderr), every, stop, lambda m: print(f"quotebot: warning: {m}", file=sys.stderr))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    print("stopped", file=sys.stderr)
    return ExitCode.OK


def start_watcher(settings: Settings, stream) -> threading.Event:
    """Run the feed watcher in a background thread (the Telegram bot's ``watch_feeds``);
    set the returned event to stop it."""
    from quotebot.index.feeds import parse_every, watch

    every = parse_every(settings.web.feeds_every)
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(lambda: run_update(settings, stream), every, stop, lambda m: print(f"quotebot: warning: {m}", file=stream)),
        name="quotebot-feeds",
        daemon=True,
    )
    thread.start()
    return stop


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _index_dir(settings: Settings) -> Path:
    return settings.index.index_dir
