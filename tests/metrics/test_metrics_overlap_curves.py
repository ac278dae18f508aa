"""Dice and the curve summaries over interaction steps, on hand-computable inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radioactive.metrics import (
    auc_cvpr25,
    auc_effort,
    auc_steps,
    dice,
    effort_to_target,
    noc,
    noc_summary,
    overlap_counts,
)
from radioactive.metrics.curves import first_step_reaching

# --- Dice ---------------------------------------------------------------------------------------


def test_dice_by_hand():
    gt = np.zeros((4, 4, 4), bool)
    pred = np.zeros_like(gt)
    gt[0, 0, :3] = True  # 3 voxels
    pred[0, 0, 1:] = True  # 3 voxels, 2 shared
    assert overlap_counts(pred, gt) == (3, 3, 2)
    assert dice(pred, gt) == pytest.approx(4 / 6)
    assert dice(gt, gt) == 1.0


def test_dice_edges():
    empty = np.zeros((3, 3, 3), bool)
    full = np.ones((3, 3, 3), np.uint8)
    assert math.isnan(dice(empty, empty))
    assert dice(full, empty) == 0.0
    assert dice(empty, full) == 0.0


def test_dice_integer_masks_and_large_volume_chunks():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (70, 130, 140), dtype=np.int32)  # several slabs
    pred = rng.random((70, 130, 140)) < 0.3
    g, p = gt != 0, pred
    expected = 2 * np.count_nonzero(g & p) / (np.count_nonzero(g) + np.count_nonzero(p))
    assert dice(pred, gt) == pytest.approx(expected, rel=1e-15)


def test_dice_validates_inputs():
    with pytest.raises(ValueError, match="same shape"):
        dice(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 3), bool))
    with pytest.raises(ValueError, match="3D"):
        dice(np.zeros((2, 2), bool), np.zeros((2, 2), bool))


# --- AUC ----------------------------------------------------------------------------------------


def test_auc_over_steps():
    assert auc_steps([0.5, 0.7, 0.9]) == pytest.approx(0.6 + 0.8)
    assert auc_steps([0.5, 0.7, 0.9], normalized=True) == pytest.approx(0.7)
    assert auc_steps([1.0] * 6) == 5.0
    assert auc_steps([0.3]) == 0.0
    assert auc_steps([0.3], normalized=True) == 0.3
    assert math.isnan(auc_steps([0.3, math.nan]))


def test_auc_over_effort():
    # seconds 2 → 5 → 6: 3 s at mean 0.6, 1 s at mean 0.8
    assert auc_effort([0.5, 0.7, 0.9], [2.0, 5.0, 6.0]) == pytest.approx(2.6)
    assert auc_effort([0.5, 0.7, 0.9], [2.0, 5.0, 6.0], normalized=True) == pytest.approx(0.65)
    assert math.isnan(auc_effort([0.5, 0.5], [3.0, 3.0], normalized=True))
    with pytest.raises(ValueError, match="non-decreasing"):
        auc_effort([0.5, 0.7], [3.0, 2.0])
    with pytest.raises(ValueError, match="steps"):
        auc_effort([0.5, 0.7], [1.0, 2.0, 3.0])


def test_auc_cvpr25_integrates_the_five_clicks_only():
    # step 0 (box) is left out; 5 click values with unit spacing, maximum 4
    assert auc_cvpr25([0.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 4.0
    values = [0.9, 0.5, 0.6, 0.7, 0.8, 0.9]
    expected = (0.5 + 0.6) / 2 + (0.6 + 0.7) / 2 + (0.7 + 0.8) / 2 + (0.8 + 0.9) / 2
    assert auc_cvpr25(values) == pytest.approx(expected)
    assert auc_cvpr25(values) == pytest.approx(np.trapezoid(values[1:]))
    assert math.isnan(auc_cvpr25([0.9, 0.5, math.nan, 0.7, 0.8, 0.9]))
    with pytest.raises(ValueError, match="6 values"):
        auc_cvpr25([0.5] * 5)


# --- NoC / NoF ----------------------------------------------------------------------------------


def test_noc_counts_the_initial_prompt_as_interaction_one():
    assert noc([0.92, 0.95], 0.9) == 1
    assert noc([0.6, 0.8, 0.92, 0.95], 0.9) == 3
    assert noc([0.6, 0.8, 0.85], 0.9) == 3  # never reached: the cap (number of steps)
    assert noc([0.6, 0.8, 0.85], 0.9, max_interactions=20) == 20
    assert noc([0.6, 0.8, 0.95], 0.9, max_interactions=2) == 2  # beyond the cap is ignored
    assert noc([0.6, math.nan, 0.95], 0.9) == 3
    assert first_step_reaching([0.1, 0.9], 0.9) == 1
    assert first_step_reaching([0.1, 0.2], 0.9) is None


def test_noc_summary_and_the_ritm_failure_rule():
    trajectories = [
        [0.95, 0.96, 0.97],  # NoC 1
        [0.5, 0.91, 0.92],  # NoC 2
        [0.5, 0.6, 0.93],  # NoC 3 = cap, reached at the last step
        [0.5, 0.6, 0.7],  # never: NoC = cap 3
    ]
    ours = noc_summary(trajectories, 0.9)
    assert ours.mean_noc == pytest.approx((1 + 2 + 3 + 3) / 4)
    assert ours.nof == 1 and ours.n == 4 and ours.max_interactions == 3
    ritm = noc_summary(trajectories, 0.9, failure="at_cap")
    assert ritm.nof == 2  # RITM also counts the one reaching τ at the last click
    assert ritm.mean_noc == ours.mean_noc
    assert math.isnan(noc_summary([], 0.9).mean_noc)
    with pytest.raises(ValueError, match="failure"):
        noc_summary(trajectories, 0.9, failure="bogus")  # type: ignore[arg-type]


# --- effort to target ---------------------------------------------------------------------------


def test_effort_to_target():
    assert effort_to_target([0.5, 0.85, 0.93], [4.0, 6.5, 9.0], 0.9) == 9.0
    assert effort_to_target([0.95, 0.85, 0.93], [4.0, 6.5, 9.0], 0.9) == 4.0
    assert effort_to_target([0.5, 0.6], [4.0, 6.5], 0.9) == math.inf


def test_curve_input_checks():
    with pytest.raises(ValueError, match="empty"):
        auc_steps([])
    with pytest.raises(ValueError, match="1D"):
        auc_steps([[0.1, 0.2]])
    with pytest.raises(ValueError, match="finite"):
        effort_to_target([0.1, 0.2], [1.0, math.inf], 0.5)
