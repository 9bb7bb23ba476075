"""Settings of retrieval: the ``retrieval:`` section of config.yaml (``Retriever`` parameters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dense_candidates: int = Field(50, ge=1, le=10_000, description="Chunks taken from the vector index.")
    keyword_candidates: int = Field(50, ge=1, le=10_000, description="Chunks taken from BM25.")
    rrf_k: int = Field(5, ge=1, description="Reciprocal rank fusion constant: score = sum weight/(rrf_k + rank).")
    keyword_weight: float = Field(
        2.0, ge=0.0, le=10.0, description="Weight of the BM25 ranking in the fusion (the dense ranking weighs 1)."
    )
    sentence_weight: float = Field(
        1.0, ge=0.0, le=10.0,
        description="Weight, in the fusion, of the chunks both searches found ranked by their best sentence's cosine.",
    )
    candidate_chunks: int = Field(8, ge=1, le=200, description="Best fused chunks whose sentences are scored.")
    max_quotes: int = Field(3, ge=1, le=20, description="Most quotes in one answer, each from a different place.")
    abstain_threshold: float = Field(
        0.075, ge=0.0, le=1.0, description="Below this confidence the bot says the articles don't say."
    )
