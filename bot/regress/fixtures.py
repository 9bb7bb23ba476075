"""Regression fixture files: the YAML format, its pydantic models and its loading.

Every mistake in a fixture file is a ``FixtureError`` whose ``str()`` is one line naming
the file, the line and the field, e.g.
``tests/qa_x.yaml:12: cases[3].expect.abstain: Input should be a valid boolean``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from quotebot.index.yamlerrors import YamlLocatedError, describe_validation_error, nearest_line, parse_yaml
from quotebot.index.errors import ExitCode, QuotebotError

FIXTURE_SUFFIXES = (".yaml", ".yml")


class FixtureError(QuotebotError):
    """A bad fixture file; ``str()`` is the one-line message with file and line."""

    exit_code = ExitCode.USAGE


def _one_or_many(value: Any) -> Any:
    """``quote_contains: blind eye`` means ``quote_contains: [blind eye]``."""
    return [value] if isinstance(value, str) else value


def _not_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    # An AfterValidator, not min_length: pydantic counts only the valid items for min_length,
    # so one bad item would also report a confusing "too short".
    if not value:
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Texts = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many), AfterValidator(_not_empty)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Frozen):
    """What one answer must look like. Quote keys look at the first quote (or the first N)."""

    abstain: StrictBool | None = Field(
        None, description="true: the bot must abstain (answered is false); false: it must answer."
    )
    quote_contains: Texts | None = Field(None, description="The quote contains at least one of these.")
    quote_contains_all: Texts | None = Field(None, description="The quote contains every one of these.")
    not_contains: Texts | None = Field(None, description="No quote looked at contains any of these.")
    article: Text | None = Field(None, description="The quote comes from this article (id or exact title).")
    min_confidence: float | None = Field(None, ge=0.0, le=1.0, description="The answer's confidence is at least this.")
    within_top: StrictInt | None = Field(
        None, ge=1, description="Look at the first N quotes instead of only the first."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        quote_keys = [key for key in QUOTE_KEYS if getattr(self, key) is not None]
        if self.abstain and quote_keys:
            raise ValueError(f"abstain: true cannot go with {quote_keys[0]} (an abstention has no quotes)")
        if self.within_top is not None and not quote_keys:
            raise ValueError(f"within_top needs one of {', '.join(QUOTE_KEYS)}")
        return self

    @property
    def wants_answer(self) -> bool:
        """True when the expectations can only hold for an answer (not an abstention)."""
        return self.abstain is False or any(getattr(self, key) is not None for key in QUOTE_KEYS)


# The keys that look at quotes; ``within_top`` widens all of them.
QUOTE_KEYS = ("quote_contains", "quote_contains_all", "article", "not_contains")


def _date_text(value: Any) -> Any:
    """YAML reads ``since: 2024-05-01`` as a date: take it as the ISO text it was."""
    return value.isoformat() if isinstance(value, dt.date) else value


DateText = Annotated[Text, BeforeValidator(_date_text)]


class FilterSpec(_Frozen):
    """``filter:`` of a case: the articles its questions are answered from (see README "Filters")."""

    since: DateText | None = Field(None, description="Only articles from this date on (YYYY-MM-DD).")
    until: DateText | None = Field(None, description="Only articles up to this date (inclusive).")
    source: Texts | None = Field(None, description="Only articles from this site or feed (one or a list).")
    topic: Texts | None = Field(None, description="Only articles on this topic (one or a list).")

    @model_validator(mode="after")
    def _valid_dates(self) -> FilterSpec:
        self.article_filter  # a date that is no date fails here, with the fixture's line
        return self

    @property
    def article_filter(self):
        from quotebot.index.filters import ArticleFilter

        return ArticleFilter(since=self.since, until=self.until, sources=self.source or (), topics=self.topic or ())


class Turn(_Frozen):
    """One question of a conversation, with what its answer must look like."""

    question: Text
    expect: Expect | None = None


class Case(_Frozen):
    """A question with its expectations, or a conversation of turns asked in order."""

    question: Text | None = None
    expect: Expect | None = None
    conversation: Annotated[tuple[Turn, ...], AfterValidator(_not_empty)] | None = None
    tags: Annotated[tuple[Text, ...], BeforeValidator(_one_or_many)] = ()
    skip: Text | None = Field(None, description="Why the case is not run; it counts as skipped.")
    filter: FilterSpec | None = Field(None, description="Answer only from these articles (since, until, source, topic).")

    @model_validator(mode="after")
    def _one_kind(self) -> Case:
        if self.question is None and self.conversation is None:
            raise ValueError("missing question (a case has `question`, or `conversation` with a list of turns)")
        if self.question is not None and self.conversation is not None:
            raise ValueError("a case has `question` or `conversation`, not both")
        if self.conversation is not None and self.expect is not None:
            raise ValueError("in a conversation, `expect` goes under each turn")
        return self

    @property
    def turns(self) -> tuple[Turn, ...]:
        if self.conversation is not None:
            return self.conversation
        assert self.question is not None
        return (Turn(question=self.question, expect=self.expect),)

    @property
    def label(self) -> str:
        """How reports name the case: its question, or a conversation's questions in order."""
        return " → ".join(turn.question for turn in self.turns)


class FixtureModel(_Frozen):
    corpus: Texts | None = Field(
        None, description="Files or folders of articles, relative to the fixture file; default: the configured index."
    )
    cases: Annotated[tuple[Case, ...], AfterValidator(_not_empty)]


_MODEL_OF_PARENT: dict[str, type[BaseModel]] = {
    "cases": Case, "conversation": Turn, "expect": Expect, "filter": FilterSpec
}


@dataclass(frozen=True)
class FixtureCase:
    """A case as found in a file: its position, for reports, -k and snapshots."""

    case: Case
    number: int  # 0-based position in the file's cases
    line: int
    key: str  # unique within the file: the label, numbered if it repeats

    @property
    def label(self) -> str:
        return self.case.label

    @property
    def tags(self) -> tuple[str, ...]:
        return self.case.tags


@dataclass(frozen=True)
class FixtureFile:
    path: Path
    corpus: tuple[Path, ...] | None  # absolute; None means the configured index
    cases: tuple[FixtureCase, ...]
    display: str  # how messages name the file: as the user gave it, or relative to the pytest rootdir

    @property
    def snapshot_path(self) -> Path:
        """``qa_seed.yaml`` -> ``qa_seed.snapshot.json`` beside it."""
        return self.path.with_name(f"{self.path.stem}.snapshot.json")


def load_fixture(
    path: Path, display: str | None = None, *, project_root: Path | None = None, allow_outside: bool = False
) -> FixtureFile:
    """Read and validate one fixture file, or raise ``FixtureError``; messages call it ``display``.

    A fixture's ``corpus`` must lie inside the fixture's folder or ``project_root`` (the
    project the fixture belongs to; default: the working folder): a fixture from elsewhere must not make quotebot read,
    index and quote ``/etc`` or ``../secret``. ``allow_outside`` lifts that.
    """
    where = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixtureError(f"{where}: fixture file not found") from None
    except IsADirectoryError:
        raise FixtureError(f"{where}: is a folder, not a fixture file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FixtureError(f"{where}: cannot read fixture file ({error})") from None
    try:
        data, lines = parse_yaml(text, where, forbid_duplicate_keys=True)
    except YamlLocatedError as error:
        raise FixtureError(str(error)) from None
    if data is None:
        raise FixtureError(f"{where}:1: the fixture file is empty: it needs `cases`")
    if not isinstance(data, dict):
        raise FixtureError(f"{where}:1: a fixture file is a mapping with `cases` (and optionally `corpus`)")
    try:
        model = FixtureModel.model_validate(data)
    except ValidationError as error:
        message = describe_validation_error(error, where, lines, default_line=1, unknown_key_hint=_did_you_mean)
        raise FixtureError(message) from None
    project = project_root if project_root is not None else Path.cwd()
    roots = () if allow_outside else (path.resolve().parent, project.resolve())
    corpus = _corpus_paths(model, path, where, lines, roots) if model.corpus is not None else None
    return FixtureFile(path=path, corpus=corpus, cases=_located_cases(model, lines), display=where)


def _corpus_paths(
    model: FixtureModel, path: Path, where: str, lines: dict[tuple[str, ...], int], roots: tuple[Path, ...]
) -> tuple[Path, ...]:
    """The corpus entries as absolute paths; ``roots``: where they must lie (empty: anywhere)."""
    assert model.corpus is not None
    base = path.resolve().parent
    resolved = []
    for number, entry in enumerate(model.corpus):
        line = nearest_line(("corpus", number), lines) or 1
        target = (base / Path(entry).expanduser()).resolve()  # symlinks resolved: a link cannot lead out
        if roots and not any(target == root or target.is_relative_to(root) for root in roots):
            raise FixtureError(
                f"{where}:{line}: corpus: {entry} is outside the fixture's folder and the project "
                f"(--allow-outside reads it anyway)"
            )
        if not target.exists():
            raise FixtureError(f"{where}:{line}: corpus: no such file or folder: {entry} (looked for {target})")
        resolved.append(target)
    return tuple(resolved)


def _located_cases(model: FixtureModel, lines: dict[tuple[str, ...], int]) -> tuple[FixtureCase, ...]:
    seen: dict[str, int] = {}
    cases = []
    for number, case in enumerate(model.cases):
        seen[case.label] = seen.get(case.label, 0) + 1
        key = case.label if seen[case.label] == 1 else f"{case.label} ({seen[case.label]})"
        cases.append(FixtureCase(case, number, nearest_line(("cases", number), lines) or 1, key))
    return tuple(cases)


def _did_you_mean(loc: tuple[str | int, ...]) -> str:
    """For an unknown key: the closest valid key of the same mapping, else the valid keys."""
    parents = [part for part in loc[:-1] if isinstance(part, str)]
    model = _MODEL_OF_PARENT.get(parents[-1], FixtureModel) if parents else FixtureModel
    valid = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (valid keys: {', '.join(valid)})"


def find_fixture_files(paths: list[Path], pattern: str = "qa_*") -> list[Path]:
    """Files as given; folders are searched for ``qa_*.yaml``/``qa_*.yml`` files below them."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            below = [p for suffix in FIXTURE_SUFFIXES for p in path.rglob(f"{pattern}{suffix}")]
            visible = [p for p in below if not any(part.startswith(".") for part in p.relative_to(path).parts)]
            found.extend(sorted(visible))
        else:
            found.append(path)
    return list(dict.fromkeys(found))
