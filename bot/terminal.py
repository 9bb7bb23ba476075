"""``quotebot chat``: the terminal front end, a renderer over the chat core.

On a terminal it edits lines and keeps history (prompt_toolkit); piped, it reads plain
lines, so it can be scripted. Ctrl-C and Ctrl-D both leave.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from quotebot.bot.chat import ChatCore
from quotebot.bot.render import answer_to_text
from quotebot.bot.safe_text import printable

PROMPT = "you> "
CONVERSATION = "terminal"
# /sources shows the articles a page at a time: a 20,000-article index is not one screen.
SOURCES_PAGE = 20

HELP = """\
Ask a question about the articles; I answer with sentences quoted word for word.
Follow-ups work: "and what did he say about ...?"
  /sources   list the indexed articles, 20 at a time (/sources 2 for the next page)
  /new       start a new conversation (forget what we talked about)
  /help      this help
  /quit      leave (Ctrl-D and Ctrl-C work too)"""


class TerminalChat:
    def __init__(
        self,
        bot: ChatCore,
        *,
        color: bool,
        history_file: Path,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
    ) -> None:
        self.bot = bot
        self.color = color
        self.history_file = history_file
        self.stdin = stdin
        self.stdout = stdout

    def run(self, ready_seconds: float | None = None) -> None:
        articles = len(self.bot.sources())
        ready = f" Ready in {ready_seconds:.1f} s." if ready_seconds is not None else ""
        self._say(f"quotebot: {articles} article{'s' * (articles != 1)} indexed.{ready} /help for help.")
        for line in self._lines():
            if not self._handle(line.strip()):
                break
        self._say("bye")

    def _handle(self, line: str) -> bool:
        """Answer one line; False when the user asked to leave."""
        if not line:
            return True
        if line in ("/quit", "/exit", "/q"):
            return False
        if line == "/help":
            self._say(HELP)
        elif line == "/sources" or line.startswith("/sources "):
            self._say(self._sources(line.removeprefix("/sources").strip()))
        elif line == "/new":
            self.bot.forget(CONVERSATION)
            self._say("New conversation.")
        elif line.startswith("/"):
            self._say(f"Unknown command {printable(line.split()[0])}: /help lists the commands.")
        else:
            answer = self.bot.ask(line, conversation=CONVERSATION)
            self._say(answer_to_text(answer, color=self.color) + "\n")
        return True

    def _sources(self, page_text: str = "") -> str:
        sources = self.bot.sources()
        if not sources:
            return "No articles are indexed."
        pages = -(-len(sources) // SOURCES_PAGE)
        if page_text and not (page_text.isdigit() and 1 <= int(page_text) <= pages):
            return f"/sources takes a page number from 1 to {pages}."
        page = int(page_text) if page_text else 1
        shown = sources[(page - 1) * SOURCES_PAGE : page * SOURCES_PAGE]
        rows = [printable(f"  {s.title or s.id}  [{s.id}]" + (f"  {s.date}" if s.date else "")) for s in shown]
        if pages > 1:
            first = (page - 1) * SOURCES_PAGE + 1
            footer = f"  ({first}-{first + len(shown) - 1} of {len(sources)} articles"
            rows.append(footer + (f"; /sources {page + 1} for more)" if page < pages else ")"))
        return "\n".join(rows)

    def _lines(self) -> Iterator[str]:
        if self.stdin.isatty() and self.stdout.isatty():
            yield from self._terminal_lines()
        else:
            yield from self._piped_lines()

    def _terminal_lines(self) -> Iterator[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        try:
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(self.history_file))
        except OSError:
            history = InMemoryHistory()  # a read-only home must not stop the chat
        session: PromptSession[str] = PromptSession(history=history)
        example = self.bot.example_question()
        while True:
            try:
                yield session.prompt(PROMPT, placeholder=f"e.g. {example}")
            except (EOFError, KeyboardInterrupt):
                return

    def _piped_lines(self) -> Iterator[str]:
        try:
            for line in self.stdin:
                yield line
        except KeyboardInterrupt:
            return

    def _say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)
