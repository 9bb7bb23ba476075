"""``quotebot chat``: the terminal front end, a renderer over the chat core.

On a terminal it edits lines and keeps history (prompt_toolkit); piped, it reads plain
lines, so it can be scripted. Ctrl-C and Ctrl-D both leave.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from quotebot.bot.chat import QuoteBot
from quotebot.bot.filters import FILTER_COMMANDS, FILTER_HELP, filter_command
from quotebot.bot.render import answer_to_text

PROMPT = "you> "
CONVERSATION = "terminal"
EXAMPLE_QUESTION = "What did Herzog ask Lavrov?"

HELP = """\
Ask a question about the articles; I answer with sentences quoted word for word.
Follow-ups work: "and what did he say about ...?"
  /sources   list the indexed articles
  /new       start a new conversation (forget what we talked about)
  /help      this help
  /quit      leave (Ctrl-D and Ctrl-C work too)
Filters (they hold until /clear):
""" + FILTER_HELP


class TerminalChat:
    def __init__(
        self,
        bot: QuoteBot,
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
        elif line == "/sources":
            self._say(self._sources())
        elif line == "/new":
            self.bot.forget(CONVERSATION)
            self._say("New conversation.")
        elif line.startswith("/") and (line[1:].split() or [""])[0].lower() in FILTER_COMMANDS:
            command, _, argument = line[1:].partition(" ")
            self._say(filter_command(self.bot, CONVERSATION, command, argument))
        elif line.startswith("/"):
            self._say(f"Unknown command {line.split()[0]}: /help lists the commands.")
        else:
            answer = self.bot.ask(line, conversation=CONVERSATION)
            self._say(answer_to_text(answer, color=self.color) + "\n")
        return True

    def _sources(self) -> str:
        rows = [
            f"  {s.title or s.id}  [{s.id}]" + (f"  {s.date[:10]}" if s.date else "") + (f"  {s.source}" if s.source else "")
            for s in self.bot.sources()
        ]
        return "\n".join(rows) or "No articles are indexed."

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
        while True:
            try:
                yield session.prompt(PROMPT, placeholder=f"e.g. {EXAMPLE_QUESTION}")
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
