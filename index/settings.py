"""Settings of the index subsystem: the ``index:`` section of config.yaml.

The keys are the parameter names of ``IndexBuilder`` and ``Embedder`` (txtai style), so a
section of YAML can be handed to the constructors as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per embedding batch.")
    # The vector store (index.stores.new_vector_store); defaults = index.stores.DEFAULT_HNSW_*
    # (not imported: that would load faiss just to read the settings).
    vector_index: Literal["auto", "flat", "hnsw"] = Field(
        "auto",
        description="Vector index: exact flat search, approximate HNSW, or auto (flat below 100,000 chunks).",
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW links per chunk; takes effect when the graph is built.")
    hnsw_ef_search: int = Field(
        600, ge=1, le=4096, description="HNSW search breadth (recall vs time); takes effect on load, no rebuild."
    )


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
