"""Scores for instance (lesion) datasets.

Each instance (lesion) of a case is prompted on its own, so the prediction made for instance ``i``
is scored against ``gt == i`` — the prompt→instance correspondence is known and no matching is
needed for the primary score (PROTOCOL §1, §6):

* :func:`lesion_dice` — Dice of each instance's prediction against that instance;
* :func:`lesion_wise_mean` — mean over a case's lesions (then, in :mod:`.aggregate`, over cases);
* :func:`case_dice` — Dice of the union of the instance predictions against the union of the
  instances (the case-wise, semantic view).

Optionally, :func:`detection_scores` reports lesion detection precision / recall / F1: connected
components of a binary prediction are matched one-to-one to the gt instances by the Hungarian
algorithm on their IoU (or Dice), a pair counting as a hit when its score reaches a threshold.

Label maps are integer arrays in (z, y, x) order, 0 = background, each non-zero value one instance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._validation import as_mask, as_mask_pair, bounding_box
from .overlap import dice_from_counts

INSTANCES_VERSION = "1.0"
"""Version of the instance scores (lesion-wise/case-wise Dice, detection matching)."""


def _as_labels(name: str, labels: object) -> np.ndarray:
    array = as_mask(name, labels)
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise ValueError(f"{name} must hold non-negative instance ids (0 = background)")
    return array


def _label_boxes(labels: np.ndarray) -> dict[int, tuple[slice, ...]]:
    """Bounding box of every instance id present in ``labels`` (one pass for ids up to 2**20)."""
    from scipy import ndimage

    top = int(labels.max()) if labels.size else 0
    if top == 0:
        return {}
    if top <= 1 << 20:
        boxes = ndimage.find_objects(labels)
        return {i + 1: box for i, box in enumerate(boxes) if box is not None}
    result: dict[int, tuple[slice, ...]] = {}
    for instance in np.unique(labels[labels != 0]):
        mask = labels == instance
        box = bounding_box(mask, mask)
        assert box is not None
        result[int(instance)] = box
    return result


def lesion_dice(
    predictions: Mapping[int, np.ndarray], gt_instances: np.ndarray
) -> dict[int, float]:
    """Dice of each instance's own prediction against that instance.

    Args:
        predictions: instance id → binary prediction (3D, same shape as ``gt_instances``) made for
            the prompts of that instance only.
        gt_instances: instance label map (0 = background).

    Returns:
        instance id → Dice in [0, 1], for every instance of ``gt_instances`` (ascending ids).

    Raises:
        ValueError: an instance has no prediction, a prediction names an id absent from
            ``gt_instances``, or a mask is malformed.
    """
    gt = _as_labels("gt_instances", gt_instances)
    boxes = _label_boxes(gt)
    missing = sorted(set(boxes) - set(predictions))
    extra = sorted(set(predictions) - set(boxes))
    if missing or extra:
        raise ValueError(
            "predictions must hold exactly one mask per gt instance; "
            f"missing ids {missing}, ids not in gt_instances {extra}"
        )
    result: dict[int, float] = {}
    for instance, gt_box in sorted(boxes.items()):
        pred, _ = as_mask_pair(predictions[instance], gt)
        pred_box = bounding_box(pred, pred)
        box = gt_box if pred_box is None else _union_box(gt_box, pred_box)
        p = pred[box] != 0
        g = gt[box] == instance
        result[instance] = dice_from_counts(
            int(np.count_nonzero(p)), int(np.count_nonzero(g)), int(np.count_nonzero(p & g))
        )
    return result


def _union_box(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def lesion_wise_mean(per_lesion: Mapping[int, float] | Iterable[float]) -> float:
    """Mean of per-lesion scores of one case, NaN excluded; NaN when no finite-or-inf value."""
    values = np.asarray(
        list(per_lesion.values() if isinstance(per_lesion, Mapping) else per_lesion),
        dtype=np.float64,
    )
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def case_dice(
    predictions: Mapping[int, np.ndarray] | Iterable[np.ndarray], gt_instances: np.ndarray
) -> float:
    """Case-wise Dice: union of the instance predictions against the union of all instances.

    NaN when both unions are empty (see :func:`radioactive.metrics.dice`).
    """
    gt = _as_labels("gt_instances", gt_instances)
    masks = predictions.values() if isinstance(predictions, Mapping) else predictions
    union = np.zeros(gt.shape, dtype=np.bool_)
    for mask in masks:
        pred, _ = as_mask_pair(mask, gt)
        np.logical_or(union, pred, out=union)
    box = bounding_box(union, gt)
    if box is None:
        return math.nan
    p, g = union[box], gt[box] != 0
    return dice_from_counts(
        int(np.count_nonzero(p)), int(np.count_nonzero(g)), int(np.count_nonzero(p & g))
    )


@dataclass(frozen=True)
class DetectionResult:
    """Outcome of matching predicted components to gt instances."""

    tp: int
    fp: int
    fn: int
    matches: tuple[tuple[int, int, float], ...]
    """(pred component id, gt instance id, IoU or Dice) of every matched pair."""
    criterion: str
    threshold: float

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN without predicted components."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        """TP / (TP + FN); NaN without gt instances."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def f1(self) -> float:
        """2·TP / (2·TP + FP + FN); NaN when there is neither a component nor an instance."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else math.nan


def match_instances(
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    *,
    criterion: Literal["iou", "dice"] = "iou",
    threshold: float = 0.1,
) -> DetectionResult:
    """One-to-one matching of predicted instances to gt instances (Hungarian algorithm).

    Scores every (pred, gt) pair that overlaps by IoU or Dice, sets scores below ``threshold`` to
    zero, and solves the assignment maximising the total score
    (``scipy.optimize.linear_sum_assignment``); assigned pairs with a positive score
    ``>= threshold`` are true positives, unmatched predictions false positives, unmatched gt
    instances false negatives.
    """
    if criterion not in ("iou", "dice"):
        raise ValueError(f"criterion must be 'iou' or 'dice', got {criterion!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    pred = _as_labels("pred_labels", pred_labels)
    gt = _as_labels("gt_labels", gt_labels)
    pred, gt = as_mask_pair(pred, gt)
    box = bounding_box(pred, gt)
    if box is None:
        return DetectionResult(0, 0, 0, (), criterion, float(threshold))
    pred, gt = pred[box], gt[box]
    pred_ids, pred_sizes = np.unique(pred[pred != 0], return_counts=True)
    gt_ids, gt_sizes = np.unique(gt[gt != 0], return_counts=True)
    if pred_ids.size == 0 or gt_ids.size == 0:
        return DetectionResult(0, int(pred_ids.size), int(gt_ids.size), (), criterion, threshold)
    both = (pred != 0) & (gt != 0)
    p_index = np.searchsorted(pred_ids, pred[both])
    g_index = np.searchsorted(gt_ids, gt[both])
    intersection = np.zeros((pred_ids.size, gt_ids.size), dtype=np.float64)
    np.add.at(intersection, (p_index, g_index), 1.0)
    sums = pred_sizes[:, None].astype(np.float64) + gt_sizes[None, :]
    if criterion == "iou":
        score = intersection / (sums - intersection)
    else:
        score = 2.0 * intersection / sums
    eligible = np.where((score >= threshold) & (intersection > 0), score, 0.0)

    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(eligible, maximize=True)
    matches = tuple(
        (int(pred_ids[r]), int(gt_ids[c]), float(score[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if eligible[r, c] > 0
    )
    tp = len(matches)
    return DetectionResult(
        tp, int(pred_ids.size) - tp, int(gt_ids.size) - tp, matches, criterion, float(threshold)
    )


def detection_scores(
    pred: np.ndarray,
    gt_labels: np.ndarray,
    *,
    criterion: Literal["iou", "dice"] = "iou",
    threshold: float = 0.1,
    connectivity: Literal[6, 18, 26] = 26,
) -> DetectionResult:
    """Lesion detection: connected components of a binary ``pred`` matched to gt instances.

    ``pred`` is binarised (non-zero = foreground) and split into connected components with the
    given ``connectivity`` (cc3d); they are matched with :func:`match_instances`. Use
    ``.precision``, ``.recall`` and ``.f1`` of the result.
    """
    import cc3d

    mask = as_mask("pred", pred)
    components = cc3d.connected_components(mask != 0, connectivity=connectivity)
    return match_instances(components, gt_labels, criterion=criterion, threshold=threshold)
