"""Running fixture cases through ``QuoteBot``, the chat core every front end uses.

A ``RegressionSession`` owns what is expensive and shared by all cases of a run: the
loaded embedding model, one bot per index (a fixture's cached corpus index, or the
configured index), and the snapshots. Each case is asked in a conversation of its own,
turn after turn, so a conversation case exercises follow-ups exactly as a chat would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quotebot.bot.regress.expectations import check
from quotebot.bot.regress.fixtures import Expect, FixtureCase, FixtureFile
from quotebot.bot.regress.snapshot import Change, Snapshot, TurnRecord, turn_record
from quotebot.bot.settings import Settings
from quotebot.retrieval.answer import Answer

if TYPE_CHECKING:
    from quotebot.bot.chat import QuoteBot
    from quotebot.index.embedding import Embedder
    from quotebot.index.loaders import SkippedInput

PASSED, FAILED, SKIPPED, CHANGED = "passed", "failed", "skipped", "changed"

# One loaded model per process and model: pytest items, a CLI run and in-process tests share it.
_EMBEDDERS: dict[tuple[str, int], Embedder] = {}


def shared_embedder(model: str, batch_size: int) -> Embedder:
    from quotebot.index.embedding import Embedder

    key = (model, batch_size)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model=model, batch_size=batch_size)
    return _EMBEDDERS[key]


@dataclass(frozen=True)
class TurnResult:
    question: str
    expect: Expect | None
    answer: Answer
    failures: tuple[str, ...]


@dataclass
class CaseResult:
    """The outcome of one case: its turns' answers and failures, and its snapshot change."""

    fixture: FixtureFile
    case: FixtureCase
    turns: tuple[TurnResult, ...] = ()
    skip_reason: str | None = None
    seconds: float = 0.0
    change: Change | None = None
    change_fails: bool = False  # --fail-on-change: a change is a failure

    @property
    def failures(self) -> list[str]:
        """Every failure message; a conversation's are prefixed with their turn."""
        several = len(self.turns) > 1
        messages = [
            f"turn {number}: {failure}" if several else failure
            for number, turn in enumerate(self.turns, 1)
            for failure in turn.failures
        ]
        if self.change is not None and self.change_fails:
            messages.append(f"{self.change.summary} (--fail-on-change)")
        return messages

    @property
    def status(self) -> str:
        if self.skip_reason is not None:
            return SKIPPED
        if self.failures:
            return FAILED
        if self.change is not None and self.change.kind == CHANGED:
            return CHANGED
        return PASSED

    @property
    def records(self) -> list[TurnRecord]:
        return [turn_record(turn.question, turn.answer) for turn in self.turns]


@dataclass
class RegressionSession:
    """Runs cases of any number of fixture files, sharing the model, bots and snapshots.

    ``embedder`` (the torch model, for building corpus indexes and for indexes without an
    ONNX export) and ``bot`` may be injected (tests); ``bot`` then answers every fixture
    that has no ``corpus`` of its own, in place of the configured index.
    """

    settings: Settings
    embedder: Embedder | None = None
    bot: QuoteBot | None = None
    cache_root: Path | None = None
    fail_on_change: bool = False
    update: bool = False
    on_skip: Callable[[SkippedInput], None] | None = None
    on_build: Callable[[int, Path], None] | None = None
    _bots: dict[Path, QuoteBot] = field(default_factory=dict)
    _indexes: dict[tuple[Path, ...], Path] = field(default_factory=dict)  # corpus -> its cached index
    _snapshots: dict[Path, Snapshot] = field(default_factory=dict)
    _answered: dict[Path, dict[str, list[TurnRecord]]] = field(default_factory=dict)
    _fixtures: dict[Path, FixtureFile] = field(default_factory=dict)

    def model(self) -> Embedder:
        if self.embedder is None:
            index = self.settings.index
            self.embedder = shared_embedder(index.model, index.batch_size)
        return self.embedder

    def bot_for(self, fixture: FixtureFile) -> QuoteBot:
        """The bot over the fixture's corpus (indexed once, cached) or over the configured index."""
        if fixture.corpus is None:
            if self.bot is None:
                self.bot = self._open_bot(self.settings.index.index_dir)
            return self.bot
        from quotebot.bot.regress.corpus import cached_index, default_cache_root

        if fixture.corpus not in self._indexes:  # the articles are read and hashed once per run
            self._indexes[fixture.corpus] = cached_index(
                fixture.corpus,
                self.settings.index,
                self.model(),
                self.cache_root or default_cache_root(self.settings.index),
                on_skip=self.on_skip,
                on_build=self.on_build,
            )
        index_dir = self._indexes[fixture.corpus]
        if index_dir not in self._bots:
            self._bots[index_dir] = self._open_bot(index_dir)
        return self._bots[index_dir]

    def _open_bot(self, index_dir: Path) -> QuoteBot:
        """A bot that embeds questions as ``quotebot ask`` would: with the index's ONNX export
        when it has one (no torch at all), else with the session's shared torch model."""
        from quotebot.bot import wiring

        return wiring.new_bot(self.settings, index_dir, torch_model=self.model)

    def snapshot(self, fixture: FixtureFile) -> Snapshot:
        path = fixture.snapshot_path
        if path not in self._snapshots:
            self._snapshots[path] = Snapshot.load(path)
        return self._snapshots[path]

    def run_case(self, fixture: FixtureFile, case: FixtureCase) -> CaseResult:
        """Ask the case's turns in one new conversation; check them and compare with the snapshot."""
        self._fixtures[fixture.snapshot_path] = fixture
        if case.case.skip is not None:
            return CaseResult(fixture, case, skip_reason=case.case.skip)
        snapshot = self.snapshot(fixture)  # a damaged snapshot fails before any work
        bot = self.bot_for(fixture)
        conversation = f"regress:{fixture.path}:{case.number}"
        bot.forget(conversation)
        started = time.perf_counter()
        turns = []
        try:
            for turn in case.case.turns:
                answer = bot.ask(turn.question, conversation=conversation)
                turns.append(TurnResult(turn.question, turn.expect, answer, tuple(check(answer, turn.expect))))
        finally:
            bot.forget(conversation)
        result = CaseResult(fixture, case, tuple(turns), seconds=time.perf_counter() - started)
        if snapshot.exists or self.fail_on_change:
            result.change = snapshot.compare(case.key, result.records)
            result.change_fails = self.fail_on_change and not self.update
        self._answered.setdefault(fixture.snapshot_path, {})[case.key] = result.records
        return result

    def write_snapshots(self) -> list[Path]:
        """With ``update``: record the answers of every fixture that ran; the files written."""
        written = []
        for path, answered in self._answered.items():
            fixture = self._fixtures[path]
            keys = [case.key for case in fixture.cases]
            self.snapshot(fixture).write(keys, answered, self.snapshot_settings(), fixture.path.name)
            written.append(path)
        return written

    def snapshot_settings(self) -> dict[str, Any]:
        """What the answers were made with, recorded in the snapshot for people (not compared)."""
        index = self.settings.index
        return {
            "model": index.model,
            "chunk_tokens": index.chunk_tokens,
            "chunk_overlap": index.chunk_overlap,
            **self.settings.retrieval.model_dump(),
        }
