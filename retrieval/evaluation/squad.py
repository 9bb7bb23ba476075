"""SQuAD-format files as an open corpus of articles plus questions with gold answers.

Every paragraph of the file becomes one ``Article`` (id ``<title>/<n>``, ``n`` the 1-based
paragraph number within its SQuAD article; title the SQuAD title with spaces), and all of
them are pooled into one corpus. ``--articles A:B`` and ``--limit`` only narrow the
questions asked: the corpus is always every paragraph of the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from quotebot.index.articles import Article
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.retrieval.evaluation.metrics import normalize
from quotebot.retrieval.evaluation.files import read_data_file

T = TypeVar("T")

# Bumped whenever the mapping from a SQuAD file to articles changes, so cached indexes
# built from the old mapping are not reused.
CORPUS_VERSION = 1


class SquadFormatError(QuotebotError):
    """The file is not a readable SQuAD-format file; ``str()`` is one line naming it."""

    exit_code = ExitCode.BAD_INPUT


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # gold answer texts, duplicates removed, file order kept
    paragraph_id: str  # the article id of the paragraph the answers come from
    article_number: int  # 1-based number of the SQuAD article in file order


@dataclass(frozen=True)
class SquadSet:
    path: Path
    sha256: str  # of the file's bytes
    titles: tuple[str, ...]  # SQuAD article titles in file order
    articles: tuple[Article, ...]  # every paragraph of the file, in file order
    questions: tuple[SquadQuestion, ...]  # every question of the file, in file order

    def select(self, articles: tuple[int, int] | None = None, limit: int | None = None) -> list[SquadQuestion]:
        """The questions of SQuAD articles ``A..B`` (1-based, inclusive), at most ``limit`` of them.

        ``limit`` takes evenly spaced questions (always the first one), so a small run still
        spreads over all the selected articles instead of asking only the first one.
        """
        chosen = list(self.questions)
        if articles is not None:
            first, last = articles
            if not 1 <= first <= last <= len(self.titles):
                raise ValueError(
                    f"--articles {first}:{last}: the file has articles 1 to {len(self.titles)} (A:B with A <= B)"
                )
            chosen = [q for q in chosen if first <= q.article_number <= last]
        if limit is not None and limit < 1:
            raise ValueError("--limit must be at least 1")
        return evenly_spread(chosen, limit)

    def article_ids(self, number: int) -> list[str]:
        """The ids of the paragraphs of SQuAD article ``number`` (1-based), in file order."""
        return [a.id for a in self.articles if a.metadata["squad_article"] == number]

    def answer_only_in_own_paragraph(self, questions: Sequence[SquadQuestion]) -> list[SquadQuestion]:
        """The questions none of whose gold answers occurs (after ``metrics.normalize``) in any
        paragraph but their own: left without that paragraph, the corpus cannot answer them."""
        texts = {a.id: normalize(a.text) for a in self.articles}
        everything = "\x00".join(texts.values())
        total: dict[str, int] = {}

        def elsewhere(answer: str, own: str) -> bool:
            if answer not in total:
                total[answer] = everything.count(answer)
            return total[answer] > own.count(answer)

        return [
            q
            for q in questions
            if not any(elsewhere(a, texts[q.paragraph_id]) for a in {normalize(a) for a in q.answers} if a)
        ]


def evenly_spread(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` of ``items``, evenly spaced and always the first (all for ``None``)."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def paragraph_id(title: str, number: int) -> str:
    return f"{title}/{number}"


def load_squad(path: Path) -> SquadSet:
    """Read a SQuAD v1.1-format file (``{"data": [{"title", "paragraphs": [...]}]}``)."""
    raw = read_data_file(path, SquadFormatError, "a SQuAD JSON file")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SquadFormatError(f"{path}: not valid JSON ({error})") from None
    try:
        return _parse(path, hashlib.sha256(raw).hexdigest(), data)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise SquadFormatError(f"{path}: not a SQuAD-format file ({type(error).__name__}: {error})") from None


def _parse(path: Path, digest: str, data: dict) -> SquadSet:
    titles: list[str] = []
    articles: list[Article] = []
    questions: list[SquadQuestion] = []
    entries = data["data"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("'data' must be a non-empty list of articles")
    for number, entry in enumerate(entries, 1):
        title = str(entry["title"])
        titles.append(title)
        for paragraph_number, paragraph in enumerate(entry["paragraphs"], 1):
            article_id = paragraph_id(title, paragraph_number)
            context = paragraph["context"]
            if not isinstance(context, str) or not context.strip():
                raise ValueError(f"paragraph {article_id} has no context")
            articles.append(
                Article(
                    id=article_id,
                    title=title.replace("_", " "),
                    text=context,
                    source=path.name,
                    metadata={"squad_article": number, "paragraph": paragraph_number},
                )
            )
            for qa in paragraph.get("qas", []):
                answers = tuple(dict.fromkeys(str(a["text"]) for a in qa.get("answers", []) if str(a["text"]).strip()))
                if not answers:
                    continue  # unanswerable (SQuAD 2.0 style): nothing to score a quote against
                questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=str(qa["question"]),
                        answers=answers,
                        paragraph_id=article_id,
                        article_number=number,
                    )
                )
    return SquadSet(path, digest, tuple(titles), tuple(articles), tuple(questions))


def parse_article_range(text: str) -> tuple[int, int]:
    """``"25:48"`` -> ``(25, 48)``; ``"7"`` -> ``(7, 7)``."""
    first, sep, last = text.partition(":")
    try:
        start = int(first)
        end = int(last) if sep else start
    except ValueError:
        raise ValueError(f"--articles {text}: expected A:B, two article numbers such as 25:48") from None
    if start < 1 or end < start:
        raise ValueError(f"--articles {text}: expected 1 <= A <= B")
    return start, end
