"""The manifest: what an index on disk was built with and holds."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quotebot.index.articles import Article

# 2: irregular verbs in BM25 tokens; 3: titles in BM25; 4: stable chunk ids, BM25 id map;
# 5: articles, chunks and sentences as arrays (index/tables.py), BM25 tokens kept for updates;
# 6: a chunk's vector is the normalised mean of its sentences' (index/vectorize.py). Store
# references (``vector_store``, ``keyword_index``) need no new version: the files are the same,
# and a manifest that has the older ``vector_index`` field is read as the references it meant.
FORMAT_VERSION = 6


class ChunkingSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_tokens: int
    chunk_overlap: int


class Counts(BaseModel):
    model_config = ConfigDict(frozen=True)

    articles: int
    chunks: int
    sentences: int


class StoreRef(BaseModel):
    """Which backend wrote a store of the generation, where, and with what (resolved on load
    by quotebot.index.backends)."""

    model_config = ConfigDict(frozen=True)

    backend: str = Field(description="the backend's name in quotebot.index.backends (faiss, bm25s, ...)")
    path: str = Field(description="its file or folder, relative to the generation folder")
    params: dict[str, Any] = Field(default_factory=dict, description="what the backend built it with, e.g. kind: hnsw")


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    model: str
    dimension: int
    chunking: ChunkingSettings
    counts: Counts
    next_chunk_id: int = Field(ge=0, description="the id the next new chunk gets: ids are never reused")
    vector_store: StoreRef = Field(description="the chunk vectors' store")
    keyword_index: StoreRef = Field(description="the chunks' keyword (BM25) index")
    article_hashes: dict[str, str] = Field(description="article id -> sha256 of its title and text")
    file_sizes: dict[str, int] = Field(description="file name -> bytes, to catch truncated files")
    file_checksums: dict[str, str] = Field(
        default_factory=dict,
        description="file name -> 'sha256:<hex>' of its bytes, for `index verify` to catch damage that keeps "
        "the size (empty in indexes built before checksums were recorded)",
    )
    built_at: str
    build_seconds: float

    @model_validator(mode="before")
    @classmethod
    def _store_references_of_older_manifests(cls, data: Any) -> Any:
        """A manifest written before store references named only the kind of its FAISS index."""
        if isinstance(data, dict) and "vector_index" in data and "vector_store" not in data:
            data = dict(data)
            kind = data.pop("vector_index")
            data["vector_store"] = {"backend": "faiss", "path": "chunk_vectors.faiss", "params": {"kind": kind}}
            data.setdefault("keyword_index", {"backend": "bm25s", "path": "bm25"})
        return data


def article_fingerprint(article: Article) -> str:
    """What decides whether an article must be embedded again (``Manifest.article_hashes``): its title and its text."""
    return hashlib.sha256(f"{article.title}\x00{article.text}".encode("utf-8")).hexdigest()
