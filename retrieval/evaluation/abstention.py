"""Choosing the abstention threshold from two curves.

The SQuAD questions are asked twice: against their own corpus, where every one has an
answer, and against a corpus that does not hold the answers (BBC news). For a threshold
``t`` a question is answered when its confidence is at least ``t`` (``Retriever.answer``
abstains below it), so from the confidences of one run per corpus:

- wrong answers: share of out-of-corpus questions answered (confidence >= t);
- wrong abstentions: share of in-corpus questions abstained on (confidence < t);
- quote@1: share of in-corpus questions answered with a first quote holding a gold answer.

The report shows the curve at ``THRESHOLDS`` (steps of 0.05). ``suggest_threshold`` picks
on the finer ``SUGGESTION_THRESHOLDS`` (steps of 0.01): among the points meeting both
targets, the one with the best quote@1 (the lowest such threshold on a tie); if none meets
both, the point where the worse of the two error rates is smallest (then the best quote@1).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))  # 0.00, 0.05, ..., 1.00
SUGGESTION_THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.01, 2) for i in range(101))  # 0.00, 0.01, ..., 1.00
WRONG_ANSWER_TARGET = 0.10
WRONG_ABSTAIN_TARGET = 0.10


class ThresholdPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    threshold: float
    wrong_answer_rate: float  # out of corpus: answered although the answer is not there
    wrong_abstain_rate: float  # in corpus: abstained although the answer is there
    quote_at_1: float  # in corpus: answered, and the first quote holds a gold answer


def threshold_point(
    threshold: float,
    in_corpus: Sequence[float],
    right_first_quote: Sequence[bool],
    out_of_corpus: Sequence[float],
) -> ThresholdPoint:
    """The three rates at one threshold; ``right_first_quote[i]`` is about ``in_corpus[i]``."""
    if len(in_corpus) != len(right_first_quote):
        raise ValueError("in_corpus and right_first_quote must have one entry per question")
    answered_in = [c >= threshold for c in in_corpus]
    return ThresholdPoint(
        threshold=threshold,
        wrong_answer_rate=_share(sum(1 for c in out_of_corpus if c >= threshold), len(out_of_corpus)),
        wrong_abstain_rate=_share(answered_in.count(False), len(in_corpus)),
        quote_at_1=_share(sum(1 for a, r in zip(answered_in, right_first_quote) if a and r), len(in_corpus)),
    )


def threshold_curve(
    in_corpus: Sequence[float],
    right_first_quote: Sequence[bool],
    out_of_corpus: Sequence[float],
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[ThresholdPoint]:
    return [threshold_point(t, in_corpus, right_first_quote, out_of_corpus) for t in thresholds]


def suggest_threshold(
    curve: Sequence[ThresholdPoint],
    wrong_answer_target: float = WRONG_ANSWER_TARGET,
    wrong_abstain_target: float = WRONG_ABSTAIN_TARGET,
) -> ThresholdPoint | None:
    """The point to configure, by the rule in the module docstring; ``None`` for an empty curve."""
    if not curve:
        return None
    meeting = [
        p for p in curve if p.wrong_answer_rate <= wrong_answer_target and p.wrong_abstain_rate <= wrong_abstain_target
    ]
    if meeting:
        return min(meeting, key=lambda p: (-p.quote_at_1, p.threshold))
    return min(curve, key=lambda p: (max(p.wrong_answer_rate, p.wrong_abstain_rate), -p.quote_at_1, p.threshold))


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
