"""Propagation diagnostics by hand: over-propagation past the target's ends, Dice per distance
from the prompted slices, and the edge cases."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from radioactive.metrics.propagation import (
    DISTANCE_BINS,
    PROPAGATION_VERSION,
    distance_to_slices,
    propagation_diagnostics,
    slice_dice,
)

SHAPE = (20, 12, 12)


def _gt() -> np.ndarray:
    """A 10 × 10 square on slices 5..14 (100 pixels a slice)."""
    gt = np.zeros(SHAPE, dtype=bool)
    gt[5:15, :10, :10] = True
    return gt


def _decaying(key: int = 10) -> np.ndarray:
    """Inside the target, 10 fewer pixels per slice of distance from ``key``: the first
    ``10 − d`` rows of the square, so |P ∧ G| = |P| = 100 − 10 d and Dice = 2 (100 − 10 d) /
    (200 − 10 d)."""
    pred = np.zeros(SHAPE, dtype=bool)
    for z in range(5, 15):
        pred[z, : 10 - abs(z - key), :10] = True
    return pred


def _dice_at(d: int) -> Fraction:
    return Fraction(2 * (100 - 10 * d), 200 - 10 * d)


def test_over_propagation_below_and_above() -> None:
    gt = _gt()
    pred = np.zeros(SHAPE, dtype=bool)
    pred[3:18, :10, :10] = True  # slices 3..17: 2 below the target (3, 4), 3 above (15, 16, 17)
    d = propagation_diagnostics(pred, gt, [10], spacing_mm=(2.5, 0.5, 0.5))
    assert d.extent == (5, 14)
    assert (d.below, d.above, d.slices) == (2, 3, 5)
    assert d.voxels == 500
    assert d.mm == 12.5  # 5 slices of 2.5 mm
    assert d.volume_mm3 == pytest.approx(500 * 2.5 * 0.25)
    assert (d.reach_below_mm, d.reach_above_mm) == (5.0, 7.5)
    # the over-propagated slices count as Dice 0 at their distance (5, 6, 7 from slice 10)
    by_distance = dict(zip(d.distances, d.dice_at_distance, strict=True))
    assert by_distance[0] == 1.0 and by_distance[6] == 0.0 and by_distance[7] == 0.0
    assert by_distance[5] == 0.5  # slice 5 (target, Dice 1) and slice 15 (over-propagated, 0)


def test_reach_counts_the_farthest_slice_and_gaps_are_not_counted() -> None:
    gt = _gt()
    pred = gt.copy()
    pred[0, 0, 0] = True  # one voxel 5 slices below the target; slices 1..4 stay empty
    pred[8] = False  # a missed slice inside the extent is no over-propagation
    d = propagation_diagnostics(pred, gt, [10], spacing_mm=(2.0, 1.0, 1.0))
    assert (d.below, d.above, d.voxels) == (1, 0, 1)
    assert d.mm == 2.0 and d.reach_below_mm == 10.0 and d.reach_above_mm == 0.0


def test_dice_per_distance_decays_by_the_known_amount() -> None:
    d = propagation_diagnostics(_decaying(), _gt(), [10])
    assert d.distances == (0, 1, 2, 3, 4, 5)
    assert d.slices_at_distance == (1, 2, 2, 2, 2, 1)  # slices 5..14 around slice 10
    for distance, value in zip(d.distances, d.dice_at_distance, strict=True):
        assert value == pytest.approx(float(_dice_at(distance)), abs=1e-15)
    assert d.bins["0"] == 1.0 and d.bin_slices["0"] == 1
    one_to_five = (2 * sum(_dice_at(k) for k in range(1, 5)) + _dice_at(5)) / 9
    assert d.bins["1-5"] == pytest.approx(float(one_to_five), abs=1e-15)
    assert d.bin_slices == {"0": 1, "1-5": 9, "6-10": 0, ">10": 0}
    assert math.isnan(d.bins["6-10"]) and math.isnan(d.bins[">10"])
    assert d.slope < 0


def test_slope_of_two_distances_is_their_difference() -> None:
    gt = np.zeros(SHAPE, dtype=bool)
    gt[10:12, :4, :4] = True
    pred = np.zeros(SHAPE, dtype=bool)
    pred[10, :4, :4] = True  # the prompted slice is right (Dice 1), the next one missed (0)
    d = propagation_diagnostics(pred, gt, [10])
    assert d.dice_at_distance == (1.0, 0.0)
    assert d.slope == -1.0
    assert math.isnan(propagation_diagnostics(gt, gt, [10, 11]).slope)  # one distance only


def test_several_prompted_slices_take_the_nearest() -> None:
    d = propagation_diagnostics(_gt(), _gt(), [5, 14])
    assert d.key_slices == (5, 14)
    assert d.distances == (0, 1, 2, 3, 4) and d.slices_at_distance == (2, 2, 2, 2, 2)
    assert d.bins["0"] == 1.0 and d.bins["1-5"] == 1.0 and d.slope == 0.0
    assert distance_to_slices([0, 5, 9, 10, 12, 19], [10, 3, 3]).tolist() == [3, 2, 1, 0, 2, 9]


def test_empty_prediction_scores_every_target_slice_zero() -> None:
    d = propagation_diagnostics(np.zeros(SHAPE, dtype=bool), _gt(), [10])
    assert (d.below, d.above, d.voxels, d.mm) == (0, 0, 0, 0.0)
    assert sum(d.slices_at_distance) == 10 and set(d.dice_at_distance) == {0.0}
    assert d.slope == 0.0


def test_empty_target_is_rejected() -> None:
    with pytest.raises(ValueError, match="gt is empty"):
        propagation_diagnostics(_gt(), np.zeros(SHAPE, dtype=bool), [10])


def test_a_prompted_slice_outside_the_target_measures_from_there() -> None:
    d = propagation_diagnostics(_gt(), _gt(), [2])  # slice 2 holds neither mask
    assert d.distances == tuple(range(3, 13))  # target slices 5..14
    assert d.bin_slices == {"0": 0, "1-5": 3, "6-10": 5, ">10": 2}
    assert math.isnan(d.bins["0"]) and d.bins[">10"] == 1.0


def test_prompted_slices_must_lie_in_the_volume() -> None:
    with pytest.raises(ValueError, match=r"prompted slice\(s\) \[20\] outside"):
        propagation_diagnostics(_gt(), _gt(), [10, 20])
    with pytest.raises(ValueError, match="integer slice indices"):
        propagation_diagnostics(_gt(), _gt(), [2.5])


def test_without_prompted_slices_only_over_propagation_is_measured() -> None:
    pred = _gt()
    pred[17] = True
    d = propagation_diagnostics(pred, _gt(), [])
    assert d.above == 1 and d.key_slices == ()
    assert d.distances == () and math.isnan(d.slope)
    assert all(math.isnan(d.bins[label]) for label, _, _ in DISTANCE_BINS)


def test_slices_where_both_masks_are_empty_are_left_out() -> None:
    pred = np.zeros(SHAPE, dtype=bool)
    pred[1, 0, 0] = True
    gt = np.zeros(SHAPE, dtype=bool)
    gt[3, :2, :2] = True
    gt[4, :2, :2] = True
    pred[4, :2, :1] = True
    z, dice = slice_dice(pred, gt)
    assert z.tolist() == [1, 3, 4]
    assert dice.tolist() == [0.0, 0.0, pytest.approx(2 * 2 / 6)]
    assert slice_dice(np.zeros(SHAPE, bool), np.zeros(SHAPE, bool))[0].size == 0


def test_invalid_masks_are_rejected() -> None:
    with pytest.raises(ValueError, match="same shape"):
        propagation_diagnostics(_gt(), _gt()[:-1], [10])
    with pytest.raises(ValueError, match="bool or integer"):
        propagation_diagnostics(_gt().astype(float), _gt(), [10])


def test_to_dict_is_standard_json_with_the_version() -> None:
    d = propagation_diagnostics(_decaying(), _gt(), [10], spacing_mm=(3.0, 1.0, 1.0))
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert data["version"] == PROPAGATION_VERSION
    assert data["bins"]["6-10"] is None and data["key_slices"] == [10]
    assert data["dice_by_distance"][0] == [0, 1.0, 1]
    assert (data["below"], data["above"], data["slices"]) == (0, 0, 0)
