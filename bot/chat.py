"""The chat core: conversations, follow-ups and the bot's one entry point for every front end.

It is transport-free: the terminal chat, ``quotebot ask``, the Telegram bot and the
regression runner all call ``QuoteBot.ask`` and only render the ``Answer`` they get.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path

from quotebot.bot.followup import context_for, leans_on_previous, subject_of
from quotebot.bot.settings import Settings
from quotebot.index.embedding import Embedder, TextEncoder
from quotebot.index.live import LiveIndex
from quotebot.index.manifest import ChunkingSettings
from quotebot.index.onnx_encoder import query_encoder_for
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


@dataclass
class QuoteBot:
    """Answers questions over one index, keeping a ``Conversation`` per conversation key."""

    retriever: Retriever
    live_index: LiveIndex | None = None  # when set, a newly published index is picked up
    _conversations: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        index_dir: Path | None = None,
        embedder: TextEncoder | None = None,
        torch_model: Callable[[], TextEncoder] | None = None,
    ) -> QuoteBot:
        """Open the configured index (checked against the configured model and chunking).

        Questions are embedded by ``embedder`` when given, else by the index's ONNX export,
        else by ``torch_model()`` (a new torch model by default): several bots can share one
        loaded model (tests, the regression runner).
        """
        index_settings = settings.index
        index_dir = index_dir or index_settings.index_dir
        live = LiveIndex(
            index_dir,
            model=index_settings.model,
            chunking=ChunkingSettings(
                chunk_tokens=index_settings.chunk_tokens, chunk_overlap=index_settings.chunk_overlap
            ),
            hnsw_ef_search=index_settings.hnsw_ef_search,
        )
        new_torch_model = partial(Embedder, model=index_settings.model, batch_size=index_settings.batch_size)
        encoder = embedder or query_encoder_for(index_dir, index_settings.model, torch_model or new_torch_model)
        return cls(Retriever(live.index, encoder, **settings.retrieval.model_dump()), live)

    def warm_up(self) -> None:
        self.retriever.warm_up()

    def ask(self, question: str, conversation: str = "default") -> Answer:
        """Answer ``question`` in ``conversation``, resolving it against earlier turns."""
        state = self._conversation(conversation)
        question = " ".join(question.split())
        follows_up = state.turns > 0 and leans_on_previous(question)
        context = context_for(question, state.subject) if follows_up else ""
        preferred = _articles_of(state.last_answer) if follows_up else ()
        answer = self._current_retriever().answer(question, context=context, prefer_articles=preferred)
        if not follows_up:
            state.subject = subject_of(question)
        state.last_answer = answer if answer.answered else state.last_answer
        state.turns += 1
        return answer

    def forget(self, conversation: str) -> None:
        self._conversations.pop(conversation, None)

    def sources(self) -> list[ArticleSummary]:
        """The indexed articles, in index order."""
        articles = self._current_retriever().index.articles
        return [
            ArticleSummary(record["id"], record["title"], record.get("date"), int(chunks))
            for record, chunks in zip(articles.records, articles.rows["chunks"])
        ]

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


def _articles_of(answer: Answer | None) -> tuple[str, ...]:
    if answer is None or not answer.quotes:
        return ()
    return (answer.quotes[0].article_id,)
