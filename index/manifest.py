"""The manifest: what an index on disk was built with and holds."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from quotebot.index.articles import Article

# 2: irregular verbs in BM25 tokens; 3: titles in BM25; 4: stable chunk ids, BM25 id map;
# 5: articles, chunks and sentences as arrays (index/tables.py), BM25 tokens kept for updates
FORMAT_VERSION = 5


class ChunkingSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_tokens: int
    chunk_overlap: int


class Counts(BaseModel):
    model_config = ConfigDict(frozen=True)

    articles: int
    chunks: int
    sentences: int


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    model: str
    dimension: int
    chunking: ChunkingSettings
    counts: Counts
    next_chunk_id: int = Field(ge=0, description="the id the next new chunk gets: ids are never reused")
    vector_index: str = Field(description="the kind of FAISS index: flat or hnsw")
    article_hashes: dict[str, str] = Field(description="article id -> sha256 of its title and text")
    file_sizes: dict[str, int] = Field(description="file name -> bytes, to catch truncated files")
    built_at: str
    build_seconds: float


def article_fingerprint(article: Article) -> str:
    """What decides whether an article must be embedded again (``Manifest.article_hashes``): its title and its text."""
    return hashlib.sha256(f"{article.title}\x00{article.text}".encode("utf-8")).hexdigest()
