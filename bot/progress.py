"""What `quotebot index build` tells the user while it works and when it is done."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from quotebot.bot.safe_text import printable
from quotebot.index.builder import BuildProgress, IndexChange
from quotebot.index.loaders import SkippedInput

# On a terminal the progress line is redrawn at most this often; elsewhere a line is printed
# at most this often, so logs stay short.
TERMINAL_REFRESH_SECONDS = 0.1
LOG_LINE_SECONDS = 5.0
BAR_WIDTH = 24


def progress_line(status: BuildProgress, *, bar: bool) -> str:
    """``indexing [#####.....]  52% 1,160/2,225 articles, 6,480 chunks, 212 chunks/s, 0:31 left``."""
    rate = status.chunks_done / status.seconds if status.seconds > 0 else 0.0
    if status.texts_total:  # chunks and sentences: moves within one long article too
        share = status.texts_done / status.texts_total
        counts = (
            f"{status.articles_done:,}/{status.articles_total:,} articles, "
            f"{status.texts_done:,}/{status.texts_total:,} passages, {rate:,.0f} chunks/s"
        )
    else:
        share = status.articles_done / status.articles_total if status.articles_total else 1.0
        counts = f"{status.articles_done:,}/{status.articles_total:,} articles, {status.chunks_done:,} chunks, {rate:,.0f} chunks/s"
    if not bar:
        return f"indexing: {counts}"
    filled = round(share * BAR_WIDTH)
    left = ""
    if 0 < share < 1 and status.seconds > 0:
        remaining = int(status.seconds * (1 - share) / share)
        left = f", {remaining // 60}:{remaining % 60:02d} left"
    return f"indexing [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {counts}{left}"


class BuildReporter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.on_terminal = stream.isatty()
        self._last = 0.0

    def skipped(self, problem: SkippedInput) -> None:
        self._clear_line()
        print(f"quotebot: warning: {printable(str(problem))} (skipped)", file=self.stream)

    def progress(self, status: BuildProgress) -> None:
        now = time.monotonic()
        interval = TERMINAL_REFRESH_SECONDS if self.on_terminal else LOG_LINE_SECONDS
        if now - self._last < interval:
            return
        self._last = now
        line = progress_line(status, bar=self.on_terminal)
        if self.on_terminal:
            self.stream.write(f"\r\033[K{line}")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def step(self, message: str) -> None:
        """A slow step that shows no progress of its own (the one-off model export)."""
        self._clear_line()
        print(f"quotebot: {message}", file=self.stream, flush=True)

    def finished(
        self, change: IndexChange, index_dir: Path, *, skipped: int, duplicates: int, seconds: float | None = None
    ) -> None:
        """The summary; ``seconds``: the whole command's time (loading and the model export too)."""
        self._clear_line()
        counts = change.manifest.counts
        total = change.seconds if seconds is None else seconds
        rate = f", {change.embedded_chunks / change.seconds:,.0f} chunks/s" if change.embedded_chunks and change.seconds else ""
        kept = (
            f"; {len(change.kept_unread):,} kept because their file or folder could not be read"
            if change.kept_unread else ""
        )
        print(
            f"index {index_dir}: {counts.articles:,} articles ({counts.chunks:,} chunks, {counts.sentences:,} sentences) "
            f"in {total:.1f} s{rate}; {len(change.added):,} new, {len(change.updated):,} changed, "
            f"{len(change.removed):,} removed, {change.unchanged:,} unchanged (not re-embedded); "
            f"{skipped} skipped, {duplicates} duplicates dropped{kept}",
            file=self.stream,
        )
        for article_id in change.kept_unread:
            print(f"quotebot: warning: kept {printable(article_id)}: its file could not be read", file=self.stream)
        for renaming in change.renamed:
            print(f"quotebot: warning: id {printable(renaming)}", file=self.stream)

    def _clear_line(self) -> None:
        if self.on_terminal:
            self.stream.write("\r\033[K")
