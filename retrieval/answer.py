"""The answer model: what retrieval hands to every front end."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from quotebot.index.filters import ArticleFilter


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
    date: str | None = Field(None, description="The article's date, ISO 8601")
    url: str | None = None
    source: str | None = Field(None, description="The site or feed the article comes from")


class Answer(BaseModel):
    """The reply to one question: quotes best first, or an abstention (no quotes)."""

    model_config = ConfigDict(frozen=True)

    question: str
    answered: bool
    confidence: float = Field(ge=0.0, le=1.0)
    quotes: tuple[Quote, ...] = ()
    filter: ArticleFilter | None = Field(None, description="The filter the answer was searched within, if any")
    filtered_articles: int | None = Field(None, description="How many articles passed the filter")
