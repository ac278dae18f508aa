"""Accuracy against the user's time to a result: human seconds plus the model's waiting time.

A trajectory's step ``i`` is shown to the user at ``times[i]``: the estimated human seconds of
every prompt so far (``cum_seconds``) plus the model's time of every step so far (encoder +
decoder, the "wait"). :func:`time_to_result` makes that running total. Before the first result
the user has nothing: the value counts as 0. Between two results the user sees the earlier one,
so the value over time is a step function.

* :func:`value_at_time` — the value shown at a time budget (0 before the first result);
* :func:`auc_time` — the area under the value over ``[0, budget]`` divided by the budget (the
  mean value the user sees during the budget, in [0, 1] for Dice), as the DAVIS interactive
  challenge scores its quality over time;
* :func:`time_to_target` — the time at which the value first reaches a target (``inf`` if never).

A NaN value (both masks empty) makes :func:`value_at_time` NaN when it is the value shown, and
:func:`auc_time` NaN when it is shown during the budget.

>>> times = time_to_result([4.0, 6.0, 8.0], [1.0, 0.5, 0.5])
>>> times.tolist()
[5.0, 7.5, 10.0]
>>> value_at_time([0.5, 0.7, 0.9], times, 8.0), auc_time([0.5, 0.7, 0.9], times, 10.0)
(0.7, 0.3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["TIME_BUDGETS_S", "TIMING_VERSION", "auc_time", "time_to_result", "time_to_target",
           "value_at_time"]  # fmt: skip

TIMING_VERSION = "1"
"""Version of the time-to-result rules (what counts as time, the value before a result)."""

#: the time budgets the report scores at, in seconds
TIME_BUDGETS_S = (30.0, 60.0, 120.0)

_Values = Sequence[float] | npt.NDArray[np.float64]


def _pair(
    values: _Values, times: _Values
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if v.ndim != 1 or v.shape != t.shape or v.size == 0:
        raise ValueError(f"values and times must be equal non-empty 1D sequences, got "
                         f"{v.shape} and {t.shape}")  # fmt: skip
    if np.isnan(t).any() or (np.diff(t) < 0).any():
        raise ValueError("times must be known and non-decreasing")
    return v, t


def time_to_result(cum_human_s: _Values, model_s: _Values) -> npt.NDArray[np.float64]:
    """Per step, the human seconds so far plus the model's seconds of this and every earlier step
    (an unknown model time counts as 0)."""
    human = np.asarray(cum_human_s, dtype=np.float64)
    wait = np.nan_to_num(np.asarray(model_s, dtype=np.float64), nan=0.0)
    return np.nan_to_num(human, nan=0.0) + np.cumsum(wait)


def value_at_time(values: _Values, times: _Values, budget_s: float) -> float:
    """The value shown at ``budget_s``: that of the last step with ``times <= budget_s``; 0
    before the first result."""
    v, t = _pair(values, times)
    shown = np.flatnonzero(t <= budget_s)
    return float(v[shown[-1]]) if shown.size else 0.0


def auc_time(values: _Values, times: _Values, budget_s: float) -> float:
    """The mean value shown over ``[0, budget_s]`` (the area under the step function of the
    values over time, divided by the budget)."""
    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0, got {budget_s}")
    v, t = _pair(values, times)
    edges = np.concatenate([np.minimum(t, budget_s), [budget_s]])
    widths = np.diff(edges)
    shown = widths > 0
    if np.isnan(v[shown]).any():
        return math.nan
    return float(np.sum(v[shown] * widths[shown]) / budget_s)


def time_to_target(values: _Values, times: _Values, threshold: float) -> float:
    """The time of the first step whose value is ``>= threshold`` (``inf`` if none; NaN never
    reaches)."""
    v, t = _pair(values, times)
    reached = np.flatnonzero(v >= threshold)
    return float(t[reached[0]]) if reached.size else math.inf
