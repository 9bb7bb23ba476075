"""The answer model: what retrieval hands to every front end."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    # The words that answer, as article offsets inside the quote (start <= answer_start <
    # answer_end <= end); None when no part of the quote stands out as the answer.
    answer_start: int | None = None
    answer_end: int | None = None

    @model_validator(mode="after")
    def _answer_inside(self) -> Quote:
        if (self.answer_start is None) != (self.answer_end is None):
            raise ValueError("answer_start and answer_end come together")
        if self.answer_start is not None and not self.start <= self.answer_start < self.answer_end <= self.end:
            raise ValueError("the answer span must lie inside the quote")
        return self

    @property
    def answer_text(self) -> str | None:
        """The marked words, sliced from the quote's own text."""
        if self.answer_start is None or self.answer_end is None:
            return None
        return self.text[self.answer_start - self.start : self.answer_end - self.start]


class Answer(BaseModel):
    """The reply to one question: quotes best first, or an abstention (no quotes)."""

    model_config = ConfigDict(frozen=True)

    question: str
    answered: bool
    confidence: float = Field(ge=0.0, le=1.0)
    quotes: tuple[Quote, ...] = ()
    filter: ArticleFilter | None = Field(None, description="The filter the answer was searched within, if any")
    filtered_articles: int | None = Field(None, description="How many articles passed the filter")
