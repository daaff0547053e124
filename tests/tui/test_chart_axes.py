"""The loss chart's own axes: round values at every tick, whole steps, nothing skipped."""

from __future__ import annotations

import itertools
import math

import pytest

from tui.widgets.loss_chart import nice_step, tick_label, ticks


@pytest.mark.parametrize(
    ("lo", "hi", "count"),
    [(3.5, 10.5, 4), (0.61, 0.66, 4), (1.0, 1.0001, 3), (0.0, 2.0, 5), (12.0, 7_480.0, 5)],
)
def test_ticks_are_evenly_spaced_round_values_inside_the_range(lo: float, hi: float, count: int) -> None:
    values = ticks(lo, hi, count)
    assert 1 <= len(values) <= count + 1
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in values)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    assert len(gaps) <= 1  # no skipped value
    step = nice_step(hi - lo, count)
    assert round(step / 10 ** math.floor(math.log10(step)), 6) in (1, 2, 5)


def test_step_ticks_are_whole_numbers_with_plain_labels() -> None:
    values = ticks(0, 3, 5, whole=True)
    assert values == [0, 1, 2, 3]  # never 0.5, 0.75
    assert [tick_label(v, 1.0) for v in values] == ["0", "1", "2", "3"]
    assert tick_label(12_000, 2_000) == "12k" and tick_label(1_500, 500) == "1,500"
    assert [tick_label(v, 0.02) for v in ticks(0.61, 0.66, 4)] == ["0.62", "0.64", "0.66"]


@pytest.mark.parametrize(("lo", "hi", "count"), [(0.37, 5.0, 1), (0.37, 5.0, 2), (0.0021, 0.0029, 1)])
def test_a_short_chart_still_gets_two_labels_around_the_data(lo: float, hi: float, count: int) -> None:
    values = ticks(lo, hi, count)
    assert len(values) == 2 and values[0] <= lo and values[1] >= hi  # the y limits widen to them
    assert tick_label(0.0015, 0.0005) == "0.0015"  # a learning rate keeps its second digit
