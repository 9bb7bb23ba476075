"""The chat core: conversations, follow-ups and the bot's one entry point for every front end.

It is transport-free: the terminal chat, ``quotebot ask``, the Telegram bot and the
regression runner all call ``QuoteBot.ask`` and only render the ``Answer`` they get. They
know it as a ``ChatCore``; quotebot.bot.wiring.new_bot builds it from settings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from quotebot.bot.followup import context_for, leans_on_previous, subject_of
from quotebot.index.live import LiveIndex
from quotebot.index.reader import QuoteIndex
from quotebot.retrieval.answer import Answer
from quotebot.retrieval.retriever import Retriever

# Conversations kept in memory at once (one per Telegram chat); the oldest are forgotten.
MAX_CONVERSATIONS = 10_000


@dataclass
class Conversation:
    """What one conversation is about: carried into questions that lean on it."""

    subject: list[str] = field(default_factory=list)
    last_answer: Answer | None = None
    turns: int = 0


@dataclass(frozen=True)
class ArticleSummary:
    id: str
    title: str
    date: str | None
    chunks: int


class ChatCore(Protocol):
    """What every front end needs of the chat core (``QuoteBot``); a test may stand in for it."""

    def ask(self, question: str, conversation: str = "default") -> Answer: ...

    def forget(self, conversation: str) -> None: ...

    def sources(self) -> list[ArticleSummary]: ...

    def example_question(self) -> str: ...


@dataclass
class QuoteBot:
    """Answers questions over one index, keeping a ``Conversation`` per conversation key."""

    retriever: Retriever
    live_index: LiveIndex | None = None  # when set, a newly published index is picked up
    _conversations: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)
    # The article list of one generation: /sources on a 20k-article index is built once per
    # generation, and again after a reload (an `index add` while the bot runs).
    _sources: tuple[str, list[ArticleSummary]] | None = None

    def warm_up(self) -> None:
        self.retriever.warm_up()

    def ask(self, question: str, conversation: str = "default") -> Answer:
        """Answer ``question`` in ``conversation``, resolving it against earlier turns."""
        state = self._conversation(conversation)
        question = " ".join(question.split())
        follows_up = state.turns > 0 and leans_on_previous(question)
        context = context_for(question, state.subject) if follows_up else ""
        preferred = _articles_of(state.last_answer) if follows_up else ()
        retriever = self._current_retriever()
        try:
            answer = retriever.answer(question, context=context, prefer_articles=preferred)
        except (IndexError, KeyError, UnicodeDecodeError) as error:
            # Loading checks the cheap bounds; what it cannot see (a damaged value deep in a
            # file) surfaces here. It is the index that is wrong, not the question: say so.
            from quotebot.index.errors import CorruptIndexError

            raise CorruptIndexError(
                f"{retriever.index.path}: damaged index ({type(error).__name__} while answering): "
                "run `quotebot index verify`, then `quotebot index build`"
            ) from None
        if not follows_up:
            state.subject = subject_of(question)
        state.last_answer = answer if answer.answered else state.last_answer
        state.turns += 1
        return answer

    def forget(self, conversation: str) -> None:
        self._conversations.pop(conversation, None)

    def sources(self) -> list[ArticleSummary]:
        """The indexed articles of the newest generation, in index order."""
        index = self._current_retriever().index
        cached = self._sources
        if cached is None or cached[0] != index.generation:
            cached = self._sources = (index.generation, _summaries(index))
        return list(cached[1])

    def example_question(self) -> str:
        """A question to suggest, about an article of this index: the newest one."""
        return example_question(self.sources())

    def _current_retriever(self) -> Retriever:
        """The retriever over the newest index. An answer in progress keeps the one it took."""
        if self.live_index is not None:
            index = self.live_index.refresh()
            if index is not self.retriever.index:
                self.retriever = self.retriever.over(index)
        return self.retriever

    def _conversation(self, key: str) -> Conversation:
        state = self._conversations.pop(key, None) or Conversation()
        self._conversations[key] = state
        while len(self._conversations) > MAX_CONVERSATIONS:
            self._conversations.popitem(last=False)
        return state


def _summaries(index: QuoteIndex) -> list[ArticleSummary]:
    articles = index.articles
    return [
        ArticleSummary(record["id"], record["title"], record.get("date"), int(chunks))
        for record, chunks in zip(articles.records, articles.rows["chunks"])
    ]


def example_question(sources: list[ArticleSummary]) -> str:
    """A question any corpus can answer: about its most recent article (by date, else the last
    indexed), named by its title. Nothing here knows the seed article."""
    if not sources:
        return "What do the articles say?"
    dated = [s for s in sources if s.date]
    newest = max(dated, key=lambda s: s.date or "") if dated else sources[-1]
    subject = " ".join((newest.title or newest.id).split())
    return f'What is "{subject}" about?'


def _articles_of(answer: Answer | None) -> tuple[str, ...]:
    if answer is None or not answer.quotes:
        return ()
    return (answer.quotes[0].article_id,)
