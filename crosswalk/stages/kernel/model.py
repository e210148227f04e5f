"""The fitted model's parameters: per comparison, each level's m and u (see :class:`Model`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Probabilities are kept inside [EPS, 1 - EPS] so that weights stay finite.
EPS = 1e-6


def probability_bits(probability: float) -> float:
    """The match weight (bits) of a match probability, kept inside 1e-15 of 0 and 1."""
    p = min(max(probability, 1e-15), 1 - 1e-15)
    return math.log2(p / (1 - p))


@dataclass
class FieldParams:
    name: str
    levels: list[str]
    m: list[float]
    u: list[float]
    tf_levels: list[int] = field(default_factory=list)
    tf_column: str | None = None
    #: Counts only where the named field is missing (see ``Comparison.stands_in_for``).
    stands_in_for: str | None = None
    #: The column of each of ``tf_levels``, where they differ (else ``tf_column`` for all).
    tf_level_columns: list[str] = field(default_factory=list)

    def tf_column_of(self, level: int) -> str | None:
        """The column whose value's frequency adjusts agreement at ``level``."""
        if self.tf_level_columns and level in self.tf_levels:
            return self.tf_level_columns[self.tf_levels.index(level)]
        return self.tf_column

    def bits(self) -> np.ndarray:
        m = np.clip(np.asarray(self.m, dtype="float64"), EPS, 1.0)
        u = np.clip(np.asarray(self.u, dtype="float64"), EPS, 1.0)
        return np.log2(m / u)


@dataclass
class Model:
    fields: list[FieldParams]
    prior: float  # probability that a random cross-source pair matches
    lambda_candidates: float = 0.0
    em_iterations: int = 0
    trained_on: str = "em"
    #: The labelled pairs the fit weighed in, by kind (``training_pairs``, ``must_link``,
    #: ``cannot_link``); empty for a model fitted by the EM alone.
    learned_from: dict[str, int] = field(default_factory=dict)

    @property
    def prior_bits(self) -> float:
        return probability_bits(self.prior)

    def field(self, name: str) -> FieldParams:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        learned = {"learned_from": dict(self.learned_from)} if self.learned_from else {}
        return {
            "prior": self.prior,
            "prior_bits": self.prior_bits,
            "lambda_candidates": self.lambda_candidates,
            "em_iterations": self.em_iterations,
            "trained_on": self.trained_on,
            **learned,
            "fields": [
                {
                    "name": f.name,
                    "levels": f.levels,
                    "m": f.m,
                    "u": f.u,
                    "bits": [round(float(b), 4) for b in f.bits()],
                    "tf_levels": f.tf_levels,
                    "tf_column": f.tf_column,
                    "stands_in_for": f.stands_in_for,
                    "tf_level_columns": f.tf_level_columns,
                }
                for f in self.fields
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        fields = [
            FieldParams(
                f["name"],
                list(f["levels"]),
                list(f["m"]),
                list(f["u"]),
                list(f.get("tf_levels", [])),
                f.get("tf_column"),
                f.get("stands_in_for"),
                list(f.get("tf_level_columns", [])),
            )
            for f in data["fields"]
        ]
        return cls(
            fields,
            float(data["prior"]),
            float(data.get("lambda_candidates", 0.0)),
            int(data.get("em_iterations", 0)),
            str(data.get("trained_on", "em")),
            {str(k): int(v) for k, v in (data.get("learned_from") or {}).items()},
        )
