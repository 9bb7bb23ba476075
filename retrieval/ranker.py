"""The two small fitted models of retrieval: the sentence ranker and the confidence.

Both are logistic regressions over the features of ``retrieval.features``; their
coefficients live in ``retrieval/weights.json``, a reviewable file written by
``bench/fit_ranker.py`` from the tuning halves only (SQuAD articles 1-24 and the tuning
halves of the other question sets). Nothing here is fitted at run time.

- ranker: log-odds that a candidate sentence holds the answer; candidates are ordered by it.
- confidence: probability that a candidate, quoted, answers the question; fitted on
  questions whose answer is in the corpus and on questions whose answer is not (other
  corpora, one-article corpora, the question's own paragraph left out), all at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_FILE = Path(__file__).with_name("weights.json")


@dataclass(frozen=True)
class LogisticModel:
    """A linear model over named terms: a feature ("cosine") or the product of two ("cosine*window")."""

    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        terms = tuple((tuple(name.split("*")), w) for name, w in zip(self.features, self.coefficients) if w != 0.0)
        object.__setattr__(self, "_terms", terms)
        object.__setattr__(self, "_log_odds", _straight_line(self.bias, terms))

    def log_odds(self, values: dict[str, float]) -> float:
        """``bias + sum(weight * term)``, added up term by term in the model's order (the
        ranker scores ~30 sentences a question with ~100 terms: the sum is one straight line
        of Python, ``_straight_line``, three times faster than a loop and equal to the bit)."""
        return self._log_odds(values)  # type: ignore[attr-defined]

    def probability(self, values: dict[str, float]) -> float:
        return _sigmoid(self.log_odds(values))

    @classmethod
    def from_json(cls, data: dict) -> LogisticModel:
        weights = data["coefficients"]
        return cls(tuple(weights), tuple(float(w) for w in weights.values()), float(data["bias"]))

    def to_json(self) -> dict:
        return {"bias": round(self.bias, 4), "coefficients": {n: round(w, 4) for n, w in zip(self.features, self.coefficients)}}


@dataclass(frozen=True)
class Models:
    ranker: LogisticModel
    confidence: LogisticModel


def load_models(path: Path = WEIGHTS_FILE) -> Models:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Models(LogisticModel.from_json(data["ranker"]), LogisticModel.from_json(data["confidence"]))


def _straight_line(bias: float, terms: tuple[tuple[tuple[str, ...], float], ...]):
    """A function computing, for a dict of feature values, exactly what this loop does:

        total = bias
        for names, weight in terms:
            term = values[names[0]]
            for name in names[1:]:
                term *= values[name]
            total += weight * term

    the same operations on the same operands in the same order (so the same float, and the
    same KeyError for a missing feature), written out as one expression per term. Each
    feature is read from the dict once, into a local, in the order the terms first use it."""
    constants = {"_bias": bias}
    lines = ["def log_odds(values):"]
    local: dict[str, str] = {}
    for names, _ in terms:
        for name in names:
            if name not in local:
                local[name] = f"_f{len(local)}"
                lines.append(f"    {local[name]} = values[{name!r}]")
    lines.append("    total = _bias")
    for number, (names, weight) in enumerate(terms):
        # A finite weight as its literal (repr gives back the very float), else a named constant.
        constants[f"_w{number}"] = weight
        literal = f"({weight!r})" if math.isfinite(weight) else f"_w{number}"
        product = " * ".join(local[name] for name in names)
        lines.append(f"    total += {literal} * ({product})")
    lines.append("    return total")
    exec(compile("\n".join(lines), "<retrieval.ranker log_odds>", "exec"), constants)  # noqa: S102 - our own names, repr-quoted
    return constants["log_odds"]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
