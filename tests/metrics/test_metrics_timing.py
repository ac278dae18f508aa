"""Time to result, by hand: human seconds plus model waits, values over time as a step function."""

from __future__ import annotations

import math

import pytest

from radioactive.metrics.timing import auc_time, time_to_result, time_to_target, value_at_time


def test_time_to_result_adds_every_wait_so_far() -> None:
    assert time_to_result([2.0, 5.0, 5.0], [0.5, 1.0, float("nan")]).tolist() == [2.5, 6.5, 6.5]


def test_value_at_time_is_the_last_result_shown() -> None:
    values, times = [0.4, 0.6, 0.9], [10.0, 20.0, 40.0]
    assert value_at_time(values, times, 5.0) == 0.0  # nothing shown yet
    assert value_at_time(values, times, 10.0) == 0.4  # shown at exactly 10 s
    assert value_at_time(values, times, 39.9) == 0.6
    assert value_at_time(values, times, 120.0) == 0.9
    assert math.isnan(value_at_time([0.4, float("nan")], [1.0, 2.0], 3.0))


def test_auc_time_is_the_mean_value_over_the_budget() -> None:
    values, times = [0.4, 0.6, 0.9], [10.0, 20.0, 40.0]
    # 0 for 10 s, 0.4 for 10 s, 0.6 for 20 s, 0.9 for 20 s: (4 + 12 + 18) / 60
    assert auc_time(values, times, 60.0) == pytest.approx(34.0 / 60.0)
    assert auc_time(values, times, 15.0) == pytest.approx(0.4 * 5.0 / 15.0)  # later ones unseen
    assert auc_time([1.0], [0.0], 30.0) == 1.0  # a perfect result at once
    assert math.isnan(auc_time([0.4, float("nan")], [1.0, 2.0], 3.0))
    assert auc_time([0.4, float("nan")], [1.0, 5.0], 3.0) == pytest.approx(0.4 * 2.0 / 3.0)
    with pytest.raises(ValueError, match="budget_s"):
        auc_time(values, times, 0.0)


def test_time_to_target_and_bad_input() -> None:
    assert time_to_target([0.5, 0.85, 0.95], [3.0, 9.0, 12.0], 0.8) == 9.0
    assert time_to_target([0.5, 0.85, 0.95], [3.0, 9.0, 12.0], 0.99) == math.inf
    assert time_to_target([float("nan"), 0.9], [1.0, 2.0], 0.8) == 2.0
    with pytest.raises(ValueError, match="non-decreasing"):
        value_at_time([0.1, 0.2], [5.0, 4.0], 10.0)
    with pytest.raises(ValueError, match="equal non-empty"):
        value_at_time([0.1], [1.0, 2.0], 10.0)
