"""Figures over rounds: min/median/max of raw values and of per-round ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    min: float
    median: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        return cls(min(values), statistics.median(values), max(values), tuple(values))

    def to_dict(self, digits: int = 3) -> dict[str, object]:
        r = lambda x: round(x, digits)  # noqa: E731
        return {"min": r(self.min), "median": r(self.median), "max": r(self.max),
                "values": [r(v) for v in self.values]}


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Round by round: each ratio pairs the two sides measured back to back."""
    return Spread.of([n / d if d else float("inf") for n, d in zip(numerators, denominators, strict=True)])


@dataclass(frozen=True)
class Figure:
    """One benchmark's headline ``value`` (a ratio, or bytes for B5) with the raw figures behind it."""

    key: str  # "B1" … "B5"
    title: str
    value: Spread
    unit: str
    sides: dict[str, Spread]  # the raw figures, e.g. {"bare rps": …, "ingress rps": …}
    details: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "unit": self.unit, "value": self.value.to_dict(),
                "sides": {k: v.to_dict() for k, v in self.sides.items()}, **self.details}
