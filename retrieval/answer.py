"""The answer model: what retrieval hands to every front end."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Quote(BaseModel):
    """A verbatim slice of an article: ``article.text[start:end] == text``."""

    model_config = ConfigDict(frozen=True)

    text: str
    article_id: str
    title: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    score: float
    paragraph: int = Field(ge=1, description="1-based paragraph of the article where the quote starts")


class Answer(BaseModel):
    """The reply to one question: quotes best first, or an abstention (no quotes)."""

    model_config = ConfigDict(frozen=True)

    question: str
    answered: bool
    confidence: float = Field(ge=0.0, le=1.0)
    quotes: tuple[Quote, ...] = ()
