"""The chat core: conversations, follow-ups and the bot's one entry point for every front end.

It is transport-free: the terminal chat, ``quotebot ask``, the Telegram bot and the
regression runner all call ``QuoteBot.ask`` and only render the ``Answer`` they get.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from bot.followup import context_for, leans_on_previous, subject_of
from bot.settings import Settings
from index.embedding import Embedder, TextEncoder
from index.onnx_encoder import OnnxQueryEncoder, encoder_dir
from index.index import QuoteIndex
from index.manifest import ChunkingSettings
from retrieval.models import Answer
from retrieval.retriever import Retriever

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
    _conversations: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)

    @classmethod
    def from_settings(
        cls, settings: Settings, index_dir: Path | None = None, embedder: TextEncoder | None = None
    ) -> QuoteBot:
        """Open the configured index (checked against the configured model and chunking).

        ``embedder`` lets several bots share one loaded model (tests, evaluation);
        otherwise questions are embedded by the index's ONNX export, or torch without one.
        """
        index_settings = settings.index
        index = QuoteIndex.load(
            index_dir or index_settings.index_dir,
            model=index_settings.model,
            chunking=ChunkingSettings(
                chunk_tokens=index_settings.chunk_tokens, chunk_overlap=index_settings.chunk_overlap
            ),
        )
        encoder = embedder or _query_encoder(settings, index_dir)
        return cls(Retriever(index, encoder, **settings.retrieval.model_dump()))

    def warm_up(self) -> None:
        self.retriever.warm_up()

    def ask(self, question: str, conversation: str = "default") -> Answer:
        """Answer ``question`` in ``conversation``, resolving it against earlier turns."""
        state = self._conversation(conversation)
        question = " ".join(question.split())
        follows_up = state.turns > 0 and leans_on_previous(question)
        context = context_for(question, state.subject) if follows_up else ""
        preferred = _articles_of(state.last_answer) if follows_up else ()
        answer = self.retriever.answer(question, context=context, prefer_articles=preferred)
        if not follows_up:
            state.subject = subject_of(question)
        state.last_answer = answer if answer.answered else state.last_answer
        state.turns += 1
        return answer

    def forget(self, conversation: str) -> None:
        self._conversations.pop(conversation, None)

    def sources(self) -> list[ArticleSummary]:
        """The indexed articles, in index order."""
        counts: dict[str, int] = {}
        for chunk in self.retriever.index.chunks:
            counts[chunk.article_id] = counts.get(chunk.article_id, 0) + 1
        return [
            ArticleSummary(article.id, article.title, article.date, counts.get(article.id, 0))
            for article in self.retriever.index.articles.values()
        ]

    def _conversation(self, key: str) -> Conversation:
        state = self._conversations.pop(key, None) or Conversation()
        self._conversations[key] = state
        while len(self._conversations) > MAX_CONVERSATIONS:
            self._conversations.popitem(last=False)
        return state


def _query_encoder(settings: Settings, index_dir: Path | None) -> TextEncoder:
    """The ONNX encoder exported with the index (fast to load), else the torch model."""
    model = settings.index.model
    exported = encoder_dir(index_dir or settings.index.index_dir, model)
    if OnnxQueryEncoder.available(exported):
        return OnnxQueryEncoder(exported, model)
    return Embedder(model=model, batch_size=settings.index.batch_size)


def _articles_of(answer: Answer | None) -> tuple[str, ...]:
    if answer is None or not answer.quotes:
        return ()
    return (answer.quotes[0].article_id,)
