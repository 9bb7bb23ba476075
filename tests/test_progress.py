"""What `quotebot index build` shows while it works: a bar on a terminal, plain lines in logs."""

from __future__ import annotations

import io

from quotebot.bot.progress import BuildReporter, progress_line
from quotebot.index.builder import BuildProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_rate_and_time_left() -> None:
    line = progress_line(BuildProgress(articles_done=50, articles_total=200, chunks_done=600, seconds=10.0), bar=True)
    assert line.startswith("indexing [######..................]  25% 50/200 articles")
    assert "600 chunks, 60 chunks/s" in line and "0:30 left" in line


def test_logs_get_plain_lines_without_control_characters() -> None:
    stream = io.StringIO()
    BuildReporter(stream).progress(BuildProgress(articles_done=3, articles_total=4, chunks_done=12, seconds=2.0))
    assert stream.getvalue() == "indexing: 3/4 articles, 12 chunks, 6 chunks/s\n"


def test_terminal_line_is_redrawn_in_place() -> None:
    stream = Terminal()
    BuildReporter(stream).progress(BuildProgress(articles_done=1, articles_total=2, chunks_done=5, seconds=1.0))
    assert stream.getvalue().startswith("\r\033[Kindexing [") and "\n" not in stream.getvalue()
