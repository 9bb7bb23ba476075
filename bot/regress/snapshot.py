"""Golden snapshots: the full answers of a fixture file, recorded beside it and compared later.

``qa_seed.yaml`` gets ``qa_seed.snapshot.json``: for every case, in fixture order, each
turn's question, whether it was answered, the confidence (rounded) and every quote (article
id, title, paragraph, offsets, text). A later run compares its answers with the recorded
ones and reports each case whose answer changed, with a unified diff, even when its
expectations still pass.
"""

from __future__ import annotations

import difflib
import json
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.retrieval.answer import Answer

SNAPSHOT_FORMAT = 1
CONFIDENCE_DIGITS = 2
# Confidences differing by at most one rounding step are the same answer: the last digit
# of a float computed on another CPU must not flag a change.
CONFIDENCE_TOLERANCE = 10**-CONFIDENCE_DIGITS + 1e-9
_WRAP = 88

TurnRecord = dict[str, Any]


class SnapshotError(QuotebotError):
    """An unreadable snapshot file; ``str()`` names it."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Change:
    """How a case's answers differ from its snapshot; ``kind`` is ``changed`` or ``new``."""

    kind: str
    diff: str  # unified diff, snapshot -> now; empty for a new case

    @property
    def summary(self) -> str:
        if self.kind == "new":
            return "not in the snapshot yet (--update records it)"
        return "answer changed against the snapshot"


def turn_record(question: str, answer: Answer) -> TurnRecord:
    """One turn as the snapshot keeps it; keys in a fixed order, floats rounded."""
    return {
        "question": question,
        "answered": answer.answered,
        "confidence": round(answer.confidence, CONFIDENCE_DIGITS),
        "quotes": [
            {
                "article_id": quote.article_id,
                "title": quote.title,
                "paragraph": quote.paragraph,
                "start": quote.start,
                "end": quote.end,
                "text": quote.text,
                "date": quote.date,
                "url": quote.url,
                "source": quote.source,
                **(
                    {"answer_start": quote.answer_start, "answer_end": quote.answer_end, "answer": quote.answer_text}
                    if quote.answer_start is not None
                    else {}
                ),
            }
            for quote in answer.quotes
        ],
    }


class Snapshot:
    """The recorded answers of one fixture file, by case key."""

    def __init__(self, path: Path, cases: Mapping[str, list[TurnRecord]] | None = None, exists: bool = False) -> None:
        self.path = path
        self.cases: dict[str, list[TurnRecord]] = dict(cases or {})
        self.exists = exists

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """The snapshot at ``path``; an empty one (``exists`` false) when there is none yet."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"{path}: unreadable snapshot ({error}): fix it, delete it or rerun with --update"
            raise SnapshotError(problem) from None
        if not _well_formed(raw):
            raise SnapshotError(f"{path}: not a quotebot snapshot (format {SNAPSHOT_FORMAT}): rerun with --update")
        return cls(path, {entry["case"]: entry["turns"] for entry in raw["cases"]}, exists=True)

    def compare(self, key: str, turns: Sequence[TurnRecord]) -> Change | None:
        """How ``turns`` differ from the recorded answers of case ``key``; None if they don't."""
        old = self.cases.get(key)
        if old is None:
            return Change("new", "")
        if len(old) == len(turns) and all(_same(a, b) for a, b in zip(old, turns)):
            return None
        shown = [_keep_close_confidence(a, b) for a, b in zip(old, turns)] + list(turns[len(old) :])
        return Change("changed", unified_diff(old, shown))

    def write(
        self,
        keys: Iterable[str],
        answered: Mapping[str, list[TurnRecord]],
        settings: Mapping[str, Any],
        fixture_name: str,
    ) -> None:
        """Record ``answered`` for the cases ``keys`` (fixture order); cases not run keep their old record.

        Cases that are no longer in the fixture are dropped. Written atomically.
        """
        entries = []
        for key in keys:
            turns = answered.get(key, self.cases.get(key))
            if turns is not None:
                entries.append({"case": key, "turns": list(turns)})
        document = {"format": SNAPSHOT_FORMAT, "fixture": fixture_name, "settings": dict(settings), "cases": entries}
        pending = self.path.with_name(f"{self.path.stem}.tmp")  # qa_x.snapshot.tmp, ignored by git
        pending.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(pending, self.path)
        self.cases = {entry["case"]: entry["turns"] for entry in entries}
        self.exists = True


def _well_formed(raw: Any) -> bool:
    if not isinstance(raw, dict) or raw.get("format") != SNAPSHOT_FORMAT or not isinstance(raw.get("cases"), list):
        return False
    return all(
        isinstance(entry, dict)
        and isinstance(entry.get("case"), str)
        and isinstance(entry.get("turns"), list)
        and all(isinstance(turn, dict) and isinstance(turn.get("quotes", []), list) for turn in entry["turns"])
        for entry in raw["cases"]
    )


def _same(old: TurnRecord, new: TurnRecord) -> bool:
    try:
        if abs(float(old["confidence"]) - float(new["confidence"])) > CONFIDENCE_TOLERANCE:
            return False
    except (KeyError, TypeError, ValueError):
        return False
    strip = lambda record: {k: v for k, v in record.items() if k != "confidence"}  # noqa: E731
    return strip(old) == strip(new)


def _keep_close_confidence(old: TurnRecord, new: TurnRecord) -> TurnRecord:
    """``new`` showing the old confidence when they are the same within the tolerance (no noise in diffs)."""
    try:
        close = abs(float(old["confidence"]) - float(new["confidence"])) <= CONFIDENCE_TOLERANCE
    except (KeyError, TypeError, ValueError):
        return new
    return {**new, "confidence": old["confidence"]} if close else new


def unified_diff(old: Sequence[TurnRecord], new: Sequence[TurnRecord]) -> str:
    """A readable diff of two recorded answers: verdict and confidence, then each quote."""
    lines = difflib.unified_diff(_lines(old), _lines(new), "snapshot", "now", n=2, lineterm="")
    return "\n".join(lines)


def _lines(turns: Sequence[TurnRecord]) -> list[str]:
    lines: list[str] = []
    for turn in turns:
        if len(turns) > 1:
            lines.append(f"Q: {turn.get('question', '')}")
        verdict = "answered" if turn.get("answered") else "abstained"
        lines.append(f"{verdict}, confidence {turn.get('confidence')}")
        for number, quote in enumerate(turn.get("quotes", []), 1):
            where = f"{quote.get('article_id')} [{quote.get('start')}:{quote.get('end')}]"
            lines.append(f"[{number}] {where}, paragraph {quote.get('paragraph')}: {quote.get('title')}")
            text = " ".join(str(quote.get("text", "")).split())
            lines.extend(textwrap.wrap(text, _WRAP, initial_indent="    ", subsequent_indent="    "))
            if quote.get("answer"):
                lines.append(f"    answer [{quote.get('answer_start')}:{quote.get('answer_end')}]: {quote.get('answer')}")
    return lines
