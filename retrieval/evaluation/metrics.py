"""The metrics of ``quotebot eval``, as pure functions over plain values.

Definitions (every rate is over all questions asked; an abstention counts as a miss):

- ``normalize``: lower-case, then collapse every run of white space to one space and
  strip the ends. Nothing else (no punctuation or article stripping): the quote must
  contain the gold answer as written.
- quote rank: the 1-based position of the first quote, in the answer's order, whose
  normalised text contains the normalised text of any gold answer; ``None`` if no quote
  does (or the bot abstained).
- quote@k: share of questions whose quote rank is at most ``k``.
- MRR: mean over questions of ``1 / quote rank`` (0 when the rank is ``None``). With
  ``max_quotes`` quotes an answer can reach rank ``max_quotes`` at most.
- passage rank: the 1-based position of the first retrieved chunk whose article is the
  gold paragraph, among the first 20 chunks of the ranking; passage@k is the share with
  passage rank at most ``k`` (k counts chunks, so two chunks of one paragraph use two places).
- percentile: linear interpolation between the two nearest ranks (numpy's default).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence


def normalize(text: str) -> str:
    """Lower-cased, white space collapsed to single spaces, ends stripped."""
    return " ".join(text.lower().split())


def contains_answer(quote: str, answers: Iterable[str]) -> bool:
    """Whether the quote contains any of the gold answers, after ``normalize``."""
    haystack = normalize(quote)
    return any(normalize(answer) and normalize(answer) in haystack for answer in answers)


def quote_rank(quotes: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based position of the first quote containing a gold answer, or ``None``."""
    for position, quote in enumerate(quotes, 1):
        if contains_answer(quote, answers):
            return position
    return None


def passage_rank(article_ids: Sequence[str], gold: str) -> int | None:
    """1-based position of the first retrieved chunk from the gold paragraph, or ``None``."""
    for position, article_id in enumerate(article_ids, 1):
        if article_id == gold:
            return position
    return None


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    """Share of ranks that are at most ``k`` (``None`` is a miss); 0 for no questions."""
    if not ranks:
        return 0.0
    return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of ``1 / rank``, a ``None`` rank counting 0; 0 for no questions."""
    if not ranks:
        return 0.0
    return sum(1.0 / rank for rank in ranks if rank is not None) / len(ranks)


def rate(flags: Sequence[bool]) -> float:
    """Share of true flags; 0 for none."""
    return sum(1 for flag in flags if flag) / len(flags) if flags else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks; 0 for none."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def marked_answer_scores(quote: str, marked: tuple[int, int] | None, answers: Sequence[str]) -> tuple[bool, float]:
    """How the answer marked inside a quote (offsets into ``quote``) meets the gold answers:
    whether it overlaps an occurrence of one in the quote, and its best token F1 (SQuAD's:
    lower-cased, punctuation and articles dropped). (False, 0.0) when nothing is marked."""
    if marked is None:
        return False, 0.0
    start, end = marked
    lowered = quote.lower()
    overlaps = False
    for answer in answers:
        needle = answer.lower().strip()
        if not needle:
            continue
        for match in re.finditer(re.escape(needle), lowered):
            if match.start() < end and start < match.end():
                overlaps = True
    return overlaps, max((token_f1(quote[start:end], answer) for answer in answers), default=0.0)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 between two texts."""
    predicted, expected = _answer_tokens(prediction), _answer_tokens(gold)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def _answer_tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return re.sub(r"\b(a|an|the)\b", " ", text).split()
