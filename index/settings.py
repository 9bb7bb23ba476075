"""Settings of the index subsystem: the ``index:`` section of config.yaml.

The keys are the parameter names of ``IndexBuilder`` and ``Embedder`` (txtai style), so a
section of YAML can be handed to the constructors as it is. ``vector_store`` and
``keyword_index`` are txtai-like backend sections: ``backend`` picks an entry of the factory
table (quotebot.index.backends), the other keys are that backend's options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quotebot.index import backends


class _BackendSettings(BaseModel):
    """``backend`` and that backend's options, checked by its ``Options`` model on load."""

    model_config = ConfigDict(extra="allow", frozen=True)
    table: ClassVar[str] = "vector"

    backend: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def configured(self) -> tuple[str, dict[str, Any]]:
        """(backend, options): what ``backends.open_vector_store`` applies to an index of this backend."""
        return self.backend, self.options

    @model_validator(mode="after")
    def _check_options(self) -> _BackendSettings:
        table = backends.VECTOR_BACKENDS if self.table == "vector" else backends.KEYWORD_BACKENDS
        if self.backend not in table:
            raise ValueError(f"unknown backend {self.backend!r}: expected one of {', '.join(sorted(table))}")
        if self.model_extra:  # the backend's module (and its engine) is imported only to check options
            backends.options_model(self.table, self.backend).model_validate(self.model_extra)
        return self


class VectorStoreSettings(_BackendSettings):
    backend: str = Field(backends.DEFAULT_VECTOR_BACKEND, description="The vector store backend (faiss).")


class KeywordIndexSettings(_BackendSettings):
    table: ClassVar[str] = "keyword"

    backend: str = Field(backends.DEFAULT_KEYWORD_BACKEND, description="The keyword index backend (bm25s).")


# The flat keys this section had before ``vector_store``: still read, as its options.
_OLDER_VECTOR_KEYS = {"vector_index": "kind", "hnsw_m": "hnsw_m", "hnsw_ef_search": "hnsw_ef_search"}


class IndexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: list[Path] = Field(
        default_factory=lambda: [Path("seeds")],
        description="Files or folders indexed by `quotebot index build` when no path is given.",
    )
    index_dir: Path = Field(Path(".quotebot/index"), description="Where the index is stored.")
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model: all-MiniLM-L6-v2 (the packaged model) or a local model folder.",
    )
    chunk_tokens: int = Field(120, ge=8, le=256, description="Target chunk length in tokens.")
    chunk_overlap: int = Field(1, ge=0, le=8, description="Sentences shared by consecutive chunks.")
    batch_size: int = Field(
        16, ge=1, le=4096,
        description="Texts per embedding batch (length-sorted; 8-16 ran fastest on 2 cores, and small batches keep memory low).",
    )
    vector_store: VectorStoreSettings = Field(
        default_factory=VectorStoreSettings,
        description="Where chunk vectors are searched: {backend: faiss, kind, hnsw_m, hnsw_ef_search} (README).",
    )
    max_article_chars: int = Field(
        2_000_000,
        ge=1_000,
        le=100_000_000,
        description="Articles longer than this many characters are skipped with a warning.",
    )
    keyword_index: KeywordIndexSettings = Field(
        default_factory=KeywordIndexSettings, description="Where chunk keywords are searched: {backend: bm25s}."
    )

    @model_validator(mode="before")
    @classmethod
    def _older_vector_keys(cls, data: Any) -> Any:
        """``vector_index: hnsw`` and ``hnsw_m`` beside the other keys, as config files had them."""
        if isinstance(data, dict) and any(key in data for key in _OLDER_VECTOR_KEYS):
            data = dict(data)
            store = dict(data.get("vector_store") or {})
            for old, new in _OLDER_VECTOR_KEYS.items():
                if old in data:
                    store.setdefault(new, data.pop(old))
            data["vector_store"] = store
        return data

class WebSettings(BaseModel):
    """The ``web:`` section: fetching article pages and feeds (`index add URL`, `feeds`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(15.0, gt=0, le=600, description="Longest wait for one page or feed, in seconds.")
    max_page_mb: int = Field(10, ge=1, le=1024, description="Pages and feeds larger than this many MB are refused.")
    max_redirects: int = Field(5, ge=0, le=30, description="Redirects followed before a URL counts as failed.")
    feeds_every: str = Field(
        "15m", pattern=r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$", description="How often `feeds watch` (and the Telegram "
        "bot with telegram.watch_feeds) updates the feeds: 30s, 15m, 1h, 1d."
    )
    fetch_workers: int = Field(4, ge=1, le=64, description="Pages of feed entries fetched at once.")
