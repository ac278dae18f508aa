"""Lesion-wise and case-wise Dice, and detection matching, on hand-made instance maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radioactive.metrics import (
    case_dice,
    detection_scores,
    lesion_dice,
    lesion_wise_mean,
    match_instances,
)


@pytest.fixture
def two_lesions():
    gt = np.zeros((6, 10, 10), np.uint8)
    gt[1:3, 1:3, 1:3] = 1  # 8 voxels
    gt[3:5, 6:9, 6:9] = 2  # 18 voxels
    return gt


def test_lesion_dice_uses_the_known_correspondence(two_lesions):
    gt = two_lesions
    perfect = gt == 1
    half = np.zeros_like(perfect)
    half[3:5, 6:9, 6:9] = True
    half[3, 6:9, 6:9] = False  # 9 of 18 voxels
    # a prediction for lesion 2 that also covers lesion 1 is penalised only on lesion 2
    half_plus_other = half | (gt == 1)
    scores = lesion_dice({1: perfect, 2: half_plus_other}, gt)
    assert scores[1] == 1.0
    assert scores[2] == pytest.approx(2 * 9 / (17 + 18))
    assert lesion_wise_mean(scores) == pytest.approx((1.0 + 2 * 9 / 35) / 2)


def test_lesion_dice_requires_one_prediction_per_instance(two_lesions):
    with pytest.raises(ValueError, match=r"missing ids \[2\]"):
        lesion_dice({1: two_lesions == 1}, two_lesions)
    with pytest.raises(ValueError, match=r"not in gt_instances \[7\]"):
        lesion_dice({1: two_lesions == 1, 2: two_lesions == 2, 7: two_lesions == 2}, two_lesions)
    with pytest.raises(ValueError, match="same shape"):
        lesion_dice({1: np.zeros((2, 2, 2), bool), 2: two_lesions == 2}, two_lesions)


def test_lesion_dice_with_empty_prediction_and_sparse_ids():
    gt = np.zeros((4, 4, 4), np.int32)
    gt[0, 0, 0] = 100000  # sparse, large ids
    gt[3, 3, 3] = 7
    scores = lesion_dice({7: gt == 7, 100000: np.zeros_like(gt, bool)}, gt)
    assert scores == {7: 1.0, 100000: 0.0}


def test_lesion_wise_mean_excludes_nan():
    assert lesion_wise_mean([1.0, math.nan, 0.5]) == 0.75
    assert math.isnan(lesion_wise_mean([]))


def test_case_dice_is_dice_of_the_unions(two_lesions):
    gt = two_lesions
    predictions = {1: gt == 1, 2: np.zeros_like(gt, bool)}
    assert case_dice(predictions, gt) == pytest.approx(2 * 8 / (8 + 26))
    assert case_dice([gt == 1, gt == 2], gt) == 1.0
    assert math.isnan(case_dice([], np.zeros((2, 2, 2), np.uint8)))


def test_detection_matching(two_lesions):
    gt = two_lesions
    pred = np.zeros_like(gt, bool)
    pred[1:3, 1:3, 1:3] = True  # lesion 1 exactly
    pred[4, 6:9, 6:9] = True  # half of lesion 2 (IoU 0.5)
    pred[0, 8:10, 0:2] = True  # a false positive
    result = detection_scores(pred, gt)
    assert (result.tp, result.fp, result.fn) == (2, 1, 0)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0
    assert result.f1 == pytest.approx(4 / 5)
    scores = {gt_id: score for _, gt_id, score in result.matches}
    assert scores == {1: 1.0, 2: pytest.approx(0.5)}
    strict = detection_scores(pred, gt, threshold=0.6)
    assert (strict.tp, strict.fp, strict.fn) == (1, 2, 1)
    by_dice = detection_scores(pred, gt, criterion="dice", threshold=0.6)
    assert by_dice.tp == 2  # Dice of the half lesion is 2/3


def test_hungarian_matching_is_one_to_one():
    # one predicted component covering two gt instances matches only the better one
    gt = np.zeros((1, 1, 10), np.uint8)
    gt[0, 0, 0:4] = 1
    gt[0, 0, 5:7] = 2
    pred = np.zeros_like(gt)
    pred[0, 0, 0:7] = 1
    result = match_instances(pred, gt, threshold=0.1)
    assert (result.tp, result.fp, result.fn) == (1, 0, 1)
    assert result.matches[0][:2] == (1, 1)


def test_detection_edges():
    empty = np.zeros((3, 3, 3), np.uint8)
    one = empty.copy()
    one[1, 1, 1] = 1
    nothing = detection_scores(empty, empty)
    assert (nothing.tp, nothing.fp, nothing.fn) == (0, 0, 0)
    assert math.isnan(nothing.precision) and math.isnan(nothing.recall) and math.isnan(nothing.f1)
    missed = detection_scores(empty, one)
    assert math.isnan(missed.precision) and missed.recall == 0.0 and missed.f1 == 0.0
    spurious = detection_scores(one, empty)
    assert spurious.precision == 0.0 and math.isnan(spurious.recall) and spurious.f1 == 0.0
    with pytest.raises(ValueError, match="criterion"):
        match_instances(one, one, criterion="hausdorff")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        match_instances(one, -one.astype(np.int8))
