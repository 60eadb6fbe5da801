"""The bench's arithmetic: percentiles, per-round ratios, alternating order, load split, goals."""

from __future__ import annotations

import pytest

from bench.ingress import alternating
from bench.load import percentile
from bench.pyload import _split
from bench.report import met
from bench.stats import Figure, Spread, ratios


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([], 99) == 0


def test_ratios_pair_the_rounds():
    spread = ratios([2.0, 3.0, 8.0], [4.0, 3.0, 4.0])
    assert spread.values == (0.5, 1.0, 2.0)
    assert (spread.min, spread.median, spread.max) == (0.5, 1.0, 2.0)
    with pytest.raises(ValueError):
        ratios([1.0], [1.0, 2.0])


def test_sides_alternate_between_rounds():
    assert [alternating(("a", "b"), n) for n in range(3)] == [("a", "b"), ("b", "a"), ("a", "b")]
    assert [alternating(("a", "b", "c"), n) for n in range(3)] == [("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")]


def test_connections_spread_over_processes():
    assert sum(_split(8)) == 8 and len(_split(8)) <= 8
    assert _split(1) == [1]


@pytest.mark.parametrize("key, median, expected", [("B1", 0.8, True), ("B1", 0.79, False), ("B2", 1.5, True),
                                                   ("B2", 1.6, False), ("B5", 4000.0, None)])
def test_goals(key, median, expected):
    figure = Figure(key, "", Spread.of([median]), "ratio", {}, {})
    assert met(figure) is expected
