"""The news question set (bench/news_questions.yaml): questions written by hand over news
articles, each with the article it is about and a short verbatim piece of it that a right
first quote must contain, or none when the article is about the question's subject but
does not hold its answer (the bot should abstain).

The file holds ids and questions only, never article text: the articles are read from the
data files the eval is given (``../shared/data/news/``). Each article's questions belong
to one half, decided by its id alone (``half_of``): tune on ``tune``, report ``report``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from quotebot.index.articles import Article
from quotebot.index.errors import ExitCode, QuotebotError
from quotebot.index.yamlerrors import YamlLocatedError, parse_yaml
from quotebot.retrieval.evaluation.files import read_data_file
from quotebot.retrieval.evaluation.metrics import normalize
from quotebot.retrieval.evaluation.squad import SquadQuestion

KINDS = ("who", "what", "when", "where", "how-many", "how-much", "why", "quote", "unanswerable")
HALVES = ("tune", "report")


class NewsSetError(QuotebotError):
    """The question file is unreadable or wrong; ``str()`` is one line naming file and place."""

    exit_code = ExitCode.BAD_INPUT


def half_of(article_id: str) -> str:
    """``tune`` when the first byte of sha256(article id) is even, else ``report``."""
    return HALVES[hashlib.sha256(article_id.encode("utf-8")).digest()[0] % 2]


@dataclass(frozen=True)
class NewsQuestion:
    id: str  # "<article id>#<n>", n the 1-based position among the article's questions
    article_id: str
    question: str
    expected: tuple[str, ...]  # any of them in the first quote is right; empty: unanswerable
    kind: str
    half: str

    @property
    def answerable(self) -> bool:
        return bool(self.expected)

    def as_gold(self, number: int) -> SquadQuestion:
        """The harness's question type: gold answers, and the article as the gold passage."""
        return SquadQuestion(self.id, self.question, self.expected, self.article_id, number)


@dataclass(frozen=True)
class NewsSet:
    path: Path
    sha256: str
    questions: tuple[NewsQuestion, ...]

    @property
    def article_ids(self) -> list[str]:
        return list(dict.fromkeys(q.article_id for q in self.questions))

    def select(self, half: str | None) -> list[NewsQuestion]:
        return [q for q in self.questions if half is None or q.half == half]

    def check_against(self, articles: Mapping[str, Article]) -> None:
        """Every article is in the corpus and every expected text is in its article, verbatim
        (after ``normalize``): a typo in the data would otherwise count as the bot's miss."""
        for q in self.questions:
            article = articles.get(q.article_id)
            if article is None:
                raise NewsSetError(f"{self.path}: {q.id}: article {q.article_id} is not in the corpus files given")
            text = normalize(article.text)
            for expected in q.expected:
                if normalize(expected) not in text:
                    raise NewsSetError(f"{self.path}: {q.id}: expected text {expected!r} is not in article {q.article_id}")


def load_news_set(path: Path) -> NewsSet:
    raw = read_data_file(path, NewsSetError, "a news question set (YAML)")
    try:
        # The bounded parser config and fixtures use: an alias bomb is refused, not expanded.
        data, _ = parse_yaml(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise NewsSetError(f"{path}: not UTF-8 text") from None
    except YamlLocatedError as error:
        line = f":{error.line}" if error.line else ""
        raise NewsSetError(f"{path}{line}: not valid YAML ({error.problem})") from None
    entries = data.get("articles") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise NewsSetError(f"{path}: expected a mapping with a non-empty 'articles' list")
    questions: list[NewsQuestion] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, 1):
        where = f"{path}: articles[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("article"), str) or not entry["article"]:
            raise NewsSetError(f"{where}: needs 'article' (an article id) and 'questions'")
        article_id = entry["article"]
        if article_id in seen:
            raise NewsSetError(f"{where}: article {article_id} is listed twice")
        seen.add(article_id)
        items = entry.get("questions")
        if not isinstance(items, list) or not items:
            raise NewsSetError(f"{where} ({article_id}): 'questions' must be a non-empty list")
        for number, item in enumerate(items, 1):
            questions.append(_question(f"{where} ({article_id}) question {number}", article_id, number, item))
    return NewsSet(path, hashlib.sha256(raw).hexdigest(), tuple(questions))


def _question(where: str, article_id: str, number: int, item: object) -> NewsQuestion:
    if not isinstance(item, dict):
        raise NewsSetError(f"{where}: expected a mapping with q, expect and kind")
    unknown = set(item) - {"q", "expect", "kind"}
    if unknown:
        raise NewsSetError(f"{where}: unknown field {sorted(unknown)[0]!r} (fields: q, expect, kind)")
    question = item.get("q")
    if not isinstance(question, str) or not question.strip():
        raise NewsSetError(f"{where}: 'q' must be the question's text")
    kind = item.get("kind")
    if kind not in KINDS:
        raise NewsSetError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    expect = item.get("expect")
    if expect is None:
        expected: tuple[str, ...] = ()
    elif isinstance(expect, str) and expect.strip():
        expected = (expect,)
    elif isinstance(expect, list) and expect and all(isinstance(e, str) and e.strip() for e in expect):
        expected = tuple(expect)
    else:
        raise NewsSetError(f"{where}: 'expect' must be a text, a list of texts, or null (unanswerable)")
    if (kind == "unanswerable") != (not expected):
        raise NewsSetError(f"{where}: 'expect: null' goes with 'kind: unanswerable', and only with it")
    return NewsQuestion(f"{article_id}#{number}", article_id, question, expected, kind, half_of(article_id))


def corpus_articles(
    files: Sequence[tuple[Path, Sequence[Article]]], needed: Sequence[str], per_file_limit: int
) -> list[Article]:
    """The whole-corpus articles: every article of each file, except that a file with more
    than ``per_file_limit`` articles gives the ``needed`` ones it holds plus an evenly spread
    sample up to the limit (Reuters-21578's 19,043 would take an hour to embed here)."""
    wanted = set(needed)
    chosen: list[Article] = []
    for _, articles in files:
        if len(articles) <= per_file_limit:
            chosen.extend(articles)
            continue
        keep = {a.id for a in articles if a.id in wanted}
        step = len(articles) / max(per_file_limit - len(keep), 1)
        sample = {articles[int(i * step)].id for i in range(per_file_limit - len(keep))}
        chosen.extend(a for a in articles if a.id in keep or a.id in sample)
    return chosen
