"""Summaries of a metric over the interaction steps of one trajectory.

A trajectory's ``values`` hold one score per step (step 0 = the initial prompt, then one step per
correction), e.g. Dice after each prediction; ``cumulative_effort`` holds the effort spent up to and
including each step (seconds of estimated user time, or degrees of freedom), non-decreasing.

* :func:`auc_steps` — trapezoid area under the values over steps 0, 1, …, n-1 (unit spacing);
* :func:`auc_effort` — trapezoid area under the values over cumulative effort;
* :func:`auc_cvpr25` — the CVPR 2025 interactive challenge variant: trapezoid over the 5
  corrective-click steps only (steps 1–5, unit spacing), so the maximum is 4;
* :func:`noc` / :func:`noc_summary` — number of interactions to reach Dice ≥ τ (RITM's NoC@τ),
  capped, and the number of failures (NoF);
* :func:`effort_to_target` — cumulative effort when the value first reaches τ (``inf`` if never).

Any NaN in ``values`` makes an AUC NaN (a NaN step means the pair was undefined, e.g. both masks
empty); NoC and effort-to-target treat a NaN step as not reaching the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

CURVES_VERSION = "1.0"
"""Version of the curve summaries (AUC variants, NoC/NoF, effort-to-target)."""

CVPR25_CLICKS = 5
"""Number of corrective clicks the CVPR 2025 AUC integrates (maximum area ``CVPR25_CLICKS - 1``)."""


def _as_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per step (1D), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: a trajectory has at least one step")
    return array


def _as_effort(cumulative_effort: Sequence[float] | np.ndarray, n_steps: int) -> np.ndarray:
    effort = _as_values(cumulative_effort, "cumulative_effort")
    if effort.size != n_steps:
        raise ValueError(
            f"cumulative_effort has {effort.size} steps but values has {n_steps}; give the effort "
            "spent up to each step"
        )
    if not np.all(np.isfinite(effort)):
        raise ValueError(f"cumulative_effort must be finite, got {effort.tolist()}")
    if np.any(np.diff(effort) < 0):
        raise ValueError(
            f"cumulative_effort must be non-decreasing (cumulative), got {effort.tolist()}"
        )
    return effort


def _trapezoid(values: np.ndarray, x: np.ndarray | None = None) -> float:
    if values.size < 2:
        return 0.0
    dx = np.ones(values.size - 1) if x is None else np.diff(x)
    return float(np.sum(dx * (values[1:] + values[:-1]) / 2.0))


def auc_steps(values: Sequence[float] | np.ndarray, *, normalized: bool = False) -> float:
    """Trapezoid area under ``values`` over steps 0, 1, …, n-1 (unit spacing).

    With ``normalized=True`` the area is divided by ``n - 1`` (the area of a constant 1), so a
    Dice curve's AUC lies in [0, 1]; a single step then returns that step's value. NaN if any value
    is NaN.

    >>> round(auc_steps([0.5, 0.7, 0.9]), 6)  # 0.6 + 0.8
    1.4
    """
    array = _as_values(values)
    if np.isnan(array).any():
        return math.nan
    if array.size == 1:
        return float(array[0]) if normalized else 0.0
    area = _trapezoid(array)
    return area / (array.size - 1) if normalized else area


def auc_effort(
    values: Sequence[float] | np.ndarray,
    cumulative_effort: Sequence[float] | np.ndarray,
    *,
    normalized: bool = False,
) -> float:
    """Trapezoid area under ``values`` over ``cumulative_effort`` (e.g. seconds).

    The area has the unit of the effort (value·seconds). With ``normalized=True`` it is divided by
    the effort span ``effort[-1] - effort[0]`` (NaN when that span is 0). NaN if any value is NaN.
    Raises ``ValueError`` if the lengths differ or the effort decreases.

    >>> round(auc_effort([0.5, 0.7, 0.9], [2.0, 5.0, 6.0]), 6)  # 3·0.6 + 1·0.8
    2.6
    """
    array = _as_values(values)
    effort = _as_effort(cumulative_effort, array.size)
    if np.isnan(array).any():
        return math.nan
    area = _trapezoid(array, effort)
    if not normalized:
        return area
    span = float(effort[-1] - effort[0])
    return area / span if span > 0 else math.nan


def auc_cvpr25(values: Sequence[float] | np.ndarray) -> float:
    """AUC of the CVPR 2025 interactive challenge: the 5 click steps only, maximum 4.

    ``values`` is the whole trajectory, step 0 (the initial box/prompt) then exactly 5 corrective
    clicks. Step 0 is left out and the 5 click values are integrated with the trapezoid rule at
    unit spacing (``sum((v[i] + v[i+1]) / 2)`` over i = 1..4), so a perfect Dice curve scores 4.
    NaN if a click value is NaN. Raises ``ValueError`` unless there are exactly 6 values.

    >>> auc_cvpr25([0.2, 1.0, 1.0, 1.0, 1.0, 1.0])
    4.0
    """
    array = _as_values(values)
    if array.size != CVPR25_CLICKS + 1:
        raise ValueError(
            f"auc_cvpr25 needs {CVPR25_CLICKS + 1} values (step 0, then {CVPR25_CLICKS} clicks), "
            f"got {array.size}"
        )
    clicks = array[1:]
    if np.isnan(clicks).any():
        return math.nan
    return _trapezoid(clicks)


def first_step_reaching(values: Sequence[float] | np.ndarray, threshold: float) -> int | None:
    """Index of the first step whose value is ``>= threshold``, or ``None`` if none is."""
    array = _as_values(values)
    reached = np.flatnonzero(array >= threshold)  # NaN compares False
    return int(reached[0]) if reached.size else None


def noc(
    values: Sequence[float] | np.ndarray,
    threshold: float,
    *,
    max_interactions: int | None = None,
) -> int:
    """Number of interactions to reach ``threshold`` (NoC@τ as in RITM), capped.

    The initial prompt counts as interaction 1, so NoC = (first step with value ≥ τ) + 1. When τ
    is never reached within ``max_interactions`` (default: the number of steps), NoC is
    ``max_interactions``. Steps beyond ``max_interactions`` are ignored.

    >>> noc([0.6, 0.8, 0.92, 0.95], 0.9)
    3
    >>> noc([0.6, 0.8], 0.9, max_interactions=20)
    20
    """
    array = _as_values(values)
    cap = array.size if max_interactions is None else int(max_interactions)
    if cap < 1:
        raise ValueError(f"max_interactions must be >= 1, got {max_interactions!r}")
    step = first_step_reaching(array[:cap], threshold)
    return cap if step is None else step + 1


@dataclass(frozen=True)
class NoCSummary:
    """NoC@τ over a set of trajectories."""

    threshold: float
    mean_noc: float
    """Mean number of interactions (failures count as the cap); NaN for no trajectory."""
    nof: int
    """Number of failures (see ``failure`` in :func:`noc_summary`)."""
    n: int
    """Number of trajectories."""
    max_interactions: int


def noc_summary(
    trajectories: Sequence[Sequence[float]] | np.ndarray,
    threshold: float,
    *,
    max_interactions: int | None = None,
    failure: Literal["not_reached", "at_cap"] = "not_reached",
) -> NoCSummary:
    """Mean NoC@τ and NoF (number of failures) over trajectories.

    Args:
        trajectories: one sequence of per-step values per trajectory (equal lengths not required).
        threshold: τ, e.g. 0.9 for NoC@90.
        max_interactions: the cap; default the longest trajectory's number of steps.
        failure: ``"not_reached"`` (default) counts trajectories that never reach τ within the cap;
            ``"at_cap"`` counts those whose NoC equals the cap, as RITM's ``compute_noc_metric``
            does (it also counts a trajectory that reaches τ exactly at the last interaction).
    """
    rows = [_as_values(t, "trajectory") for t in trajectories]
    cap = max((r.size for r in rows), default=0) if max_interactions is None else max_interactions
    if failure not in ("not_reached", "at_cap"):
        raise ValueError(f"failure must be 'not_reached' or 'at_cap', got {failure!r}")
    if not rows:
        return NoCSummary(float(threshold), math.nan, 0, 0, int(cap))
    nocs = []
    failures = 0
    for row in rows:
        step = first_step_reaching(row[:cap], threshold)
        value = cap if step is None else step + 1
        nocs.append(value)
        failures += (step is None) if failure == "not_reached" else (value == cap)
    return NoCSummary(float(threshold), float(np.mean(nocs)), int(failures), len(rows), int(cap))


def effort_to_target(
    values: Sequence[float] | np.ndarray,
    cumulative_effort: Sequence[float] | np.ndarray,
    threshold: float,
) -> float:
    """Cumulative effort (e.g. seconds) spent when the value first reaches ``threshold``.

    Returns ``inf`` when the target is never reached (so a mean over trajectories is ``inf``;
    report medians or the fraction reached alongside).

    >>> effort_to_target([0.5, 0.85, 0.93], [4.0, 6.5, 9.0], 0.9)
    9.0
    """
    array = _as_values(values)
    effort = _as_effort(cumulative_effort, array.size)
    step = first_step_reaching(array, threshold)
    return math.inf if step is None else float(effort[step])
