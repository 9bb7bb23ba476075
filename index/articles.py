"""The data model of the index side: articles, sentences and chunks.

Every offset is a character offset into ``Article.text``, which is stored verbatim,
so any slice the rest of the pipeline quotes can be checked against the article.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Article(BaseModel):
    """One news article, its text kept exactly as read (after decoding)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    title: str
    text: str = Field(min_length=1)
    date: str | None = None
    url: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """Identity of the content: two articles with the same text are duplicates."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class Span(BaseModel):
    """A half-open character range ``[start, end)`` into an article's text."""

    model_config = ConfigDict(frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)

    def slice(self, text: str) -> str:
        return text[self.start : self.end]


class Chunk(BaseModel):
    """A run of whole sentences of one article, the unit that is embedded and searched.

    ``sentences`` are the offsets of the chunk's sentences, in order; the chunk covers
    ``text[start:end]`` from its first sentence's start to its last sentence's end.
    ``first_sentence`` is the index of its first sentence in the article's sentence list.
    """

    model_config = ConfigDict(frozen=True)

    article_id: str
    ordinal: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    first_sentence: int = Field(ge=0)
    sentences: tuple[Span, ...]

    @property
    def id(self) -> str:
        return f"{self.article_id}#{self.ordinal}"
