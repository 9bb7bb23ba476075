"""The BM25 keyword index: the ``bm25s`` backend of quotebot.index.backends.

bm25s scores pre-tokenised chunks (tokens from quotebot.index.text: stemmed, titles
included); row ``i`` of its matrix is chunk ``ids()[i]``.

The index is built and read with numpy alone, in bm25s's file format and with its arithmetic
(``score_matrix``, ``SavedBm25``): the scores are bm25s's to the bit (tests/test_index.py
builds both ways on real text). bm25s builds with Python loops over every chunk's tokens
(0.75 s of a one-article `index add` on BBC), and importing it pulls in scipy.sparse, a
quarter of a second of a one-shot `quotebot ask`; it is imported only to load an index
saved with another of its scoring methods.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain, count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from quotebot.index.errors import CorruptIndexError
from quotebot.index.manifest import StoreRef


if TYPE_CHECKING:
    import bm25s

KEYWORD_DIR = "bm25"  # the index's folder in a generation folder
KEYWORD_IDS_FILE = "chunk_ids.npy"
# The chunks as token ids (``TokenStream``): the next update reuses kept chunks' tokens from
# them instead of splitting and looking up every token string again. Not read to serve.
# Its ids are the score matrix's columns (the vocabulary file's numbers).
TOKEN_IDS_FILE = "token_ids.npy"
TOKEN_COUNTS_FILE = "token_counts.npy"
# bm25s's saved files (bm25s.BM25.save) and the scoring methods whose saved scores are the
# whole of a document's score (BM25L and BM25+ add a non-occurrence term: bm25s loads those).
SAVED_FILES = {
    "params": "params.index.json",
    "vocab": "vocab.index.json",
    "data": "data.csc.index.npy",
    "indices": "indices.csc.index.npy",
    "indptr": "indptr.csc.index.npy",
}
PLAIN_METHODS = ("lucene", "robertson", "atire")
# What ``bm25s.BM25()`` builds with, as its params file records them: Lucene's BM25.
BM25_PARAMS = {
    "k1": 1.5,
    "b": 0.75,
    "delta": 0.5,
    "method": "lucene",
    "idf_method": "lucene",
    "dtype": "float32",
    "int_dtype": "int32",
}
# The bm25s release whose files and arithmetic score_matrix reproduces (its params file says it).
BM25S_VERSION = "0.3.16"
# bm25s cannot index a document without tokens: such a chunk gets this one, which no query has.
PLACEHOLDER_TOKEN = "\x00"


def score_matrix(
    token_lists: Sequence[list[str] | None], previous: TokenStream | None = None, ids: np.ndarray | None = None
) -> tuple[dict[str, Any], dict[str, int], dict[str, Any], TokenStream]:
    """``bm25s.BM25().index(token_lists)`` with numpy: (params, vocabulary, scores, tokens),
    the sparse matrix as bm25s keeps it (CSC: a column per token, ``indices`` the documents),
    and the documents as token ids (``TokenStream``, saved beside it for the next update).

    The same arithmetic in the same order and types, applied to all (document, token) pairs
    at once: Lucene's idf ``log(1 + (N - df + 0.5) / (df + 0.5))`` with ``math.log`` in float64,
    stored as float32; the term frequency part ``tf / (k1 * ((1 - b) + b * len / avg_len) + tf)``
    in float64; their product stored as float32. Token ids differ from bm25s's (it numbers
    them in set order, which changes from process to process); scores never do.

    With ``previous`` (the last generation's token stream) a ``None`` in ``token_lists``
    means "the tokens chunk ``ids[i]`` had there" (a kept chunk keeps its id and its text):
    they are taken as ids, without splitting or looking up a single string again.
    """
    stream = _token_stream(token_lists, previous, ids)
    return (*_scores(stream), stream)


class TokenStream:
    """Documents as token ids: ``ids`` every document's token ids one after the other,
    ``lengths`` each document's count, ``vocabulary`` the token of each id; ``chunk_ids``
    the chunk each document is."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, vocabulary: list[str], chunk_ids: np.ndarray) -> None:
        self.ids, self.lengths, self.vocabulary, self.chunk_ids = ids, lengths, vocabulary, chunk_ids

    def save(self, path: Path) -> None:
        """The ids and counts (int32); the vocabulary is the score matrix's, saved beside them."""
        np.save(path / TOKEN_IDS_FILE, self.ids.astype(np.int32))
        np.save(path / TOKEN_COUNTS_FILE, self.lengths.astype(np.int32))

    @classmethod
    def load(cls, path: Path, vocab: dict[str, int], columns: int, chunk_ids: np.ndarray) -> TokenStream | None:
        """The stream saved at ``path`` over the matrix's ``vocab`` (``columns`` tokens); None
        when there is none (an index written before it was saved, or by bm25s) or it does not
        fit its chunks: the caller tokenizes instead."""
        try:
            ids = np.load(path / TOKEN_IDS_FILE, allow_pickle=False)
            lengths = np.load(path / TOKEN_COUNTS_FILE, allow_pickle=False)
        except (OSError, ValueError):
            return None
        vocabulary: list[Any] = [None] * columns
        for token, number in vocab.items():
            if 0 <= number < columns:
                vocabulary[number] = token
        fits = (
            ids.ndim == 1 and lengths.ndim == 1 and len(lengths) == len(chunk_ids) and None not in vocabulary
            and int(lengths.sum()) == len(ids) and (len(ids) == 0 or 0 <= int(ids.min()) <= int(ids.max()) < columns)
        )
        return cls(ids.astype(np.int64), lengths.astype(np.int64), vocabulary, np.asarray(chunk_ids, dtype=np.int64)) if fits else None


def _token_stream(token_lists: Sequence[list[str] | None], previous: TokenStream | None, ids: np.ndarray | None) -> TokenStream:
    """The documents as token ids, numbered after ``previous``'s vocabulary (new tokens after it)."""
    chunk_ids = np.asarray(ids if ids is not None else np.arange(len(token_lists)), dtype=np.int64)
    if previous is None:  # all new (a first build): one pass over every token, in C
        documents = []
        for tokens in token_lists:
            if tokens is None:
                raise ValueError("a chunk's tokens left out without a previous stream to take them from")
            documents.append(tokens or [PLACEHOLDER_TOKEN])
        lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
        first_seen: defaultdict[str, int] = defaultdict(count().__next__)
        flat = np.fromiter(map(first_seen.__getitem__, chain.from_iterable(documents)), dtype=np.int64, count=int(lengths.sum()))
        return TokenStream(flat, lengths, list(first_seen), chunk_ids)
    # Where each chunk was in the previous stream (-1: not there).
    starts = np.zeros(len(previous.lengths) + 1, dtype=np.int64)
    np.cumsum(previous.lengths, out=starts[1:])
    order = np.argsort(previous.chunk_ids, kind="stable")
    sorted_ids = previous.chunk_ids[order]
    at = np.minimum(np.searchsorted(sorted_ids, chunk_ids), max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[at] == chunk_ids) if len(sorted_ids) else np.zeros(len(chunk_ids), dtype=bool)
    old_rows = np.where(found, order[at] if len(sorted_ids) else -1, -1)
    kept = np.fromiter((tokens is None for tokens in token_lists), dtype=bool, count=len(token_lists))
    missing = np.flatnonzero(kept & (old_rows < 0))
    if len(missing):
        raise ValueError(f"chunk {int(chunk_ids[missing[0]])} is not in the previous keyword index")
    vocabulary = list(previous.vocabulary)
    numbering: dict[str, int] = {token: number for number, token in enumerate(vocabulary)}
    lengths = np.zeros(len(token_lists), dtype=np.int64)
    lengths[kept] = previous.lengths[old_rows[kept]]
    new_pieces: dict[int, np.ndarray] = {}  # a new chunk's tokens numbered in row order, new ones after the vocabulary
    for row in np.flatnonzero(~kept).tolist():
        tokens = token_lists[row] or [PLACEHOLDER_TOKEN]
        new_pieces[row] = np.fromiter((numbering.setdefault(token, len(numbering)) for token in tokens), dtype=np.int64)
        lengths[row] = len(new_pieces[row])
    vocabulary += list(numbering)[len(vocabulary) :]
    ends = np.cumsum(lengths)
    stream_ids = np.zeros(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    # Kept chunks' ids copied as they were, all at once: each one's run of positions in the
    # old stream to its run in the new one.
    runs = lengths[kept]
    inside = np.arange(int(runs.sum()), dtype=np.int64) - np.repeat(np.cumsum(runs) - runs, runs)
    stream_ids[np.repeat((ends - lengths)[kept], runs) + inside] = previous.ids[np.repeat(starts[old_rows[kept]], runs) + inside]
    for row, piece in new_pieces.items():
        stream_ids[ends[row] - len(piece) : ends[row]] = piece
    return TokenStream(stream_ids, lengths, vocabulary, chunk_ids)


def _scores(stream: TokenStream) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """bm25s's params, vocabulary and score matrix of ``stream`` (see ``score_matrix``)."""
    k1, b = BM25_PARAMS["k1"], BM25_PARAMS["b"]
    lengths, n_docs = stream.lengths, len(stream.lengths)
    # Each (document, token) pair once, with its count: sorted by token, then document (CSC order).
    # int32 keys when they fit (a BBC-sized index): sorting them takes half the time.
    key_type = np.int32 if len(stream.vocabulary) * max(n_docs, 1) < 2**31 else np.int64
    doc_of = np.repeat(np.arange(n_docs, dtype=key_type), lengths)
    pairs, tf = np.unique(stream.ids.astype(key_type, copy=False) * key_type(max(n_docs, 1)) + doc_of, return_counts=True)
    token_of, doc_of = np.divmod(pairs, max(n_docs, 1))
    # Only tokens some document has (a token of removed chunks alone is gone, as in a fresh build).
    df = np.bincount(token_of, minlength=len(stream.vocabulary))
    present = np.flatnonzero(df)
    renumber = np.zeros(len(df), dtype=np.int64)
    renumber[present] = np.arange(len(present))
    token_of, df = renumber[token_of], df[present]
    if len(present) != len(stream.vocabulary):  # the stream numbered like the matrix's columns
        stream.ids, stream.vocabulary = renumber[stream.ids], [stream.vocabulary[old] for old in present.tolist()]
    vocabulary = {token: number for number, token in enumerate(stream.vocabulary)}
    n_vocab = len(vocabulary)
    # math.log, as bm25s (np.log may differ in the last bit), once per distinct frequency.
    frequencies, of_frequency = np.unique(df, return_inverse=True)
    logs = [math.log(1 + (n_docs - frequency + 0.5) / (frequency + 0.5)) for frequency in frequencies.tolist()]
    idf = np.asarray(logs, dtype=np.float32)[of_frequency.reshape(-1)]
    avg_len = lengths.mean()  # as bm25s: np.array(lengths).mean()
    length_part = k1 * ((1 - b) + b * lengths.astype(np.float64) / avg_len)
    tfc = tf.astype(np.float32).astype(np.float64)
    tfc = tfc / (length_part[doc_of] + tfc)
    data = (idf[token_of].astype(np.float64) * tfc).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    if "" not in vocabulary:
        vocabulary[""] = n_vocab  # bm25s's empty token, outside the matrix: it matches nothing
    params = {**BM25_PARAMS, "num_docs": n_docs, "version": BM25S_VERSION, "backend": "numpy"}
    scores = {"data": data, "indices": doc_of.astype(np.int32), "indptr": indptr, "num_docs": n_docs}
    return params, vocabulary, scores


class SavedBm25:
    """A saved bm25s index read with numpy alone: the parts of ``bm25s.BM25`` a search uses
    (``vocab_dict``, ``scores``, ``get_scores``), with bm25s's own arithmetic."""

    def __init__(
        self, path: Path | None, params: dict[str, Any], vocab: dict[str, int], scores: dict[str, Any],
        stream: TokenStream | None = None,
    ) -> None:
        self.path = path
        self.params = params
        self.vocab_dict = vocab
        self.scores = scores
        self.dtype = np.dtype(params.get("dtype", "float32"))
        self.stream = stream  # a new index's documents as token ids (saved with it)

    @classmethod
    def load(cls, path: Path, mmap: bool) -> SavedBm25 | None:
        """The index at ``path``, or None when bm25s itself must load it (another method)."""
        params = json.loads((path / SAVED_FILES["params"]).read_text(encoding="utf-8"))
        if params.get("method", "lucene") not in PLAIN_METHODS:
            return None
        vocab = json.loads((path / SAVED_FILES["vocab"]).read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        # Plain arrays over the maps: np.memmap's Python-level indexing costs per query token.
        scores = {name: np.asarray(np.load(path / SAVED_FILES[name], mmap_mode=mode)) for name in ("data", "indices", "indptr")}
        scores["num_docs"] = params.get("num_docs")
        return cls(path, params, vocab, scores)

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """Each document's score for ``tokens``: bm25s ``get_scores`` (numpy backend), the
        saved per-token scores summed in the query's order."""
        ids = [self.vocab_dict[token] for token in tokens if token in self.vocab_dict]
        data, indices, indptr = self.scores["data"], self.scores["indices"], self.scores["indptr"]
        scores = np.zeros(int(self.scores["num_docs"]), dtype=self.dtype)
        for token in ids:
            if token + 1 >= len(indptr):
                continue  # bm25s keeps an empty-string entry outside the matrix: it matches nothing
            start, end = indptr[token], indptr[token + 1]
            # A token's column names each document once, so a fancy-index add is np.add.at's
            # float32 sum (bm25s's), without its slow unbuffered path.
            scores[indices[start:end]] += data[start:end]
        return scores

    @classmethod
    def build(
        cls, token_lists: Sequence[list[str] | None], previous: TokenStream | None = None, ids: np.ndarray | None = None
    ) -> SavedBm25:
        """A new index of ``token_lists`` (see ``score_matrix``), held in memory until saved."""
        params, vocab, scores, stream = score_matrix(token_lists, previous, ids)
        return cls(None, params, vocab, scores, stream)

    def token_stream(self, chunk_ids: np.ndarray) -> TokenStream | None:
        """The documents as token ids (chunk ``chunk_ids[i]`` is row i), if known."""
        if self.stream is not None:
            return self.stream
        if self.path is None:
            return None
        return TokenStream.load(self.path, self.vocab_dict, len(self.scores["indptr"]) - 1, chunk_ids)

    def save(self, path: str, show_progress: bool = False) -> None:
        """bm25s's files (what ``bm25s.BM25.save`` writes); a loaded index's are copied unchanged."""
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        if self.path is None:
            for name in ("data", "indices", "indptr"):
                np.save(target / SAVED_FILES[name], self.scores[name], allow_pickle=False)
            (target / SAVED_FILES["vocab"]).write_text(json.dumps(self.vocab_dict, ensure_ascii=False), encoding="utf-8")
            (target / SAVED_FILES["params"]).write_text(json.dumps(self.params, indent=4), encoding="utf-8")
            if self.stream is not None:
                self.stream.save(target)
            return
        for name in [*SAVED_FILES.values(), TOKEN_IDS_FILE, TOKEN_COUNTS_FILE]:
            if (self.path / name).is_file() and (self.path / name).resolve() != (target / name).resolve():
                shutil.copyfile(self.path / name, target / name)


class Bm25Options(BaseModel):
    """``index.keyword_index`` keys of the bm25s backend: none yet."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Bm25Backend:
    """Builds and opens ``Bm25KeywordIndex``es (see quotebot.index.backends.KeywordBackend)."""

    name = "bm25s"
    Options = Bm25Options

    def open(self, generation: Path, ref: StoreRef, *, mmap: bool) -> Bm25KeywordIndex:
        return Bm25KeywordIndex.load(generation / ref.path, mmap=mmap)

    def build(
        self, ids: np.ndarray, token_lists: Sequence[list[str]], previous: Bm25KeywordIndex | None = None
    ) -> Bm25KeywordIndex:
        return Bm25KeywordIndex.build(ids, token_lists, previous=previous)


class Bm25KeywordIndex:
    """BM25 (bm25s's scores and files) over pre-tokenised chunks; row ``i`` is chunk ``ids[i]``.

    Every idf and document length changes with any added or removed chunk, so an index
    update builds it anew from the kept chunks' tokens: with numpy, 0.1-0.2 s on BBC.
    """

    def __init__(self, bm25: bm25s.BM25 | SavedBm25 | None = None, ids: np.ndarray | None = None) -> None:
        self._bm25 = bm25
        self._ids = ids if ids is not None else np.zeros(0, dtype=np.int64)
        self._last_mask: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        """The chunk id of each row, in row order."""
        return self._ids

    @classmethod
    def build(
        cls, ids: np.ndarray, token_lists: Sequence[list[str]], *, previous: Bm25KeywordIndex | None = None
    ) -> Bm25KeywordIndex:
        """A new index of one token list per chunk id. With ``previous`` (the last
        generation's index), chunks it holds take their tokens from it as ids: a chunk id
        is only ever the same text, and ``token_lists[i]`` of those is never read (a lazy
        sequence splits only the new chunks' token lines)."""
        if len(ids) != len(token_lists):
            raise ValueError(f"{len(ids)} ids for {len(token_lists)} token lists")
        if not len(token_lists):
            return cls(None, np.zeros(0, dtype=np.int64))
        ids = np.asarray(ids, dtype=np.int64)
        stream = previous.token_stream() if isinstance(previous, Bm25KeywordIndex) else None
        if stream is None:
            return cls(SavedBm25.build(token_lists, None, ids), ids)
        kept = np.isin(ids, stream.chunk_ids)
        lists = [None if keep else token_lists[row] for row, keep in enumerate(kept.tolist())]
        return cls(SavedBm25.build(lists, stream, ids), ids)

    def token_stream(self) -> TokenStream | None:
        """The chunks as token ids, when this index has them (see ``TokenStream``)."""
        if not isinstance(self._bm25, SavedBm25):
            return None
        return self._bm25.token_stream(np.asarray(self._ids, dtype=np.int64))

    def search(
        self, tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` chunk ids with a positive BM25 score, best first; only ``allowed`` ids
        (sorted int64) when given: the others are masked out before the top k are taken."""
        if self._bm25 is None or not tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self._bm25.get_scores(known)
        if allowed is not None:
            scores = np.where(self._mask(allowed), scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self._ids[top], scores[top].astype(np.float32)

    def _mask(self, allowed: np.ndarray) -> np.ndarray:
        """Rows whose chunk id is in ``allowed``; the last mask is kept, since a conversation
        asks question after question with the same filter (the same array)."""
        cached = self._last_mask
        if cached is not None and cached[0] is allowed:
            return cached[1]
        mask = np.isin(self._ids, allowed)
        self._last_mask = (allowed, mask)
        return mask

    def idf(self, tokens: list[str]) -> np.ndarray:
        """BM25's inverse document frequency of each token (0 for unknown tokens)."""
        if self._bm25 is None:
            return np.zeros(len(tokens), dtype=np.float32)
        vocab = self._bm25.vocab_dict
        indptr = self._bm25.scores["indptr"]
        total = self._bm25.scores["num_docs"]
        weights = []
        for token in tokens:
            row = vocab.get(token)
            if row is not None and row + 1 >= len(indptr):
                row = None  # bm25s keeps an empty-string entry outside the matrix
            frequency = 0 if row is None else int(indptr[row + 1] - indptr[row])
            weights.append(0.0 if row is None else float(np.log(1 + (total - frequency + 0.5) / (frequency + 0.5))))
        return np.asarray(weights, dtype=np.float32)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(path), show_progress=False)
        np.save(path / KEYWORD_IDS_FILE, self._ids)

    def commit(self, generation: Path) -> StoreRef:
        self.save(generation / KEYWORD_DIR)
        return StoreRef(backend=Bm25Backend.name, path=KEYWORD_DIR)

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> Bm25KeywordIndex:
        """``mmap`` maps the score matrix (a server's choice: pages are read as queries need them)."""
        try:
            ids = np.load(path / KEYWORD_IDS_FILE, mmap_mode="r" if mmap else None)
            bm25 = _load_saved(path, mmap) if len(ids) else None
        except Exception as error:  # bm25s raises whatever numpy/json raise on a damaged file
            raise CorruptIndexError(f"{path}: unreadable BM25 index ({_first_line(error)})") from None
        if bm25 is not None and int(bm25.scores["num_docs"]) != len(ids):
            raise CorruptIndexError(f"{path}: BM25 index holds {bm25.scores['num_docs']} chunks, its id map {len(ids)}")
        if ids.ndim != 1 or ids.dtype != np.int64:
            raise CorruptIndexError(f"{path}: damaged BM25 index (the id map is not a list of chunk ids): run `quotebot index build`")
        if bm25 is not None:
            _check_bounds(path, bm25, len(ids))
        return cls(bm25, ids)


def _load_saved(path: Path, mmap: bool) -> SavedBm25 | bm25s.BM25:
    saved = SavedBm25.load(path, mmap)
    if saved is not None:
        return saved
    import bm25s

    return bm25s.BM25.load(str(path), show_progress=False, verbosity=0, mmap=mmap)


def _check_bounds(path: Path, bm25: bm25s.BM25 | SavedBm25, documents: int) -> None:
    """The sparse score matrix must index only inside itself: a damaged value would be an
    IndexError (or a wrong chunk) in the middle of a question. One vectorised pass."""
    scores = bm25.scores
    indptr, indices, data = scores["indptr"], scores["indices"], scores["data"]
    problem = None
    if indptr.ndim != 1 or len(indptr) == 0 or int(indptr[0]) != 0 or int(indptr[-1]) != len(indices) or len(data) != len(indices):
        problem = "row pointers do not match the entries"
    elif len(indptr) > 1 and (np.diff(indptr) < 0).any():
        problem = "row pointers go backwards"
    elif len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= documents):
        problem = "an entry names a chunk past the end"
    elif bm25.vocab_dict and (min(bm25.vocab_dict.values()) < 0 or max(bm25.vocab_dict.values()) >= len(indptr)):
        problem = "the vocabulary points past the matrix"
    if problem is not None:
        raise CorruptIndexError(f"{path}: damaged BM25 index ({problem}): run `quotebot index build`")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
