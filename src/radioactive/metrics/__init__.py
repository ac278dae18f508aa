"""Segmentation metrics: overlap, surface distances and curves over interactions.

Masks are numpy arrays in (z, y, x) order, bool or integer (non-zero = foreground), with
``spacing_mm`` the (z, y, x) voxel size in mm. Surface metrics share one computation per pair::

    sd = surface_distances(pred, gt, spacing_mm)
    sd.nsd(tolerance_mm=2.0), sd.hd95(), sd.assd()

or use :func:`score_pair` for Dice, NSD, HD95 and ASSD at once. Definitions and edge cases are in
``docs/metrics.md``. Curves over steps live in :mod:`.curves`, instance scores in :mod:`.instances`
and the aggregations of PROTOCOL §6 (pandas) in :mod:`.aggregate` (not imported here).

Every definition carries a version; :func:`versions` lists them for result manifests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._validation import as_mask_pair, as_spacing, as_tolerance, bounding_box
from .curves import (
    CURVES_VERSION,
    NoCSummary,
    auc_cvpr25,
    auc_effort,
    auc_steps,
    effort_to_target,
    noc,
    noc_summary,
)
from .instances import (
    INSTANCES_VERSION,
    DetectionResult,
    case_dice,
    detection_scores,
    lesion_dice,
    lesion_wise_mean,
    match_instances,
)
from .overlap import DICE_VERSION, dice, dice_from_counts, overlap_counts
from .surface import (
    DEFAULT_TOLERANCE_MM,
    SURFACE_VERSION,
    SurfaceDistances,
    assd,
    hd95,
    nsd,
    surface_distances,
    surface_distances_in_box,
)

METRICS_VERSION = "1.0"
"""Version of the metrics package as a whole; bump it with any of the per-definition versions."""


def __getattr__(name: str) -> str:
    """``AGGREGATE_VERSION`` is defined in :mod:`.aggregate` (pandas), imported on first use."""
    if name == "AGGREGATE_VERSION":
        from .aggregate import AGGREGATE_VERSION

        return AGGREGATE_VERSION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def versions() -> dict[str, str]:
    """Version of every metric definition, to record next to results."""
    from .aggregate import AGGREGATE_VERSION

    return {
        "metrics": METRICS_VERSION,
        "dice": DICE_VERSION,
        "surface": SURFACE_VERSION,
        "curves": CURVES_VERSION,
        "instances": INSTANCES_VERSION,
        "aggregate": AGGREGATE_VERSION,
    }


def score_pair(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_mm: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
) -> dict[str, float]:
    """Dice, NSD, HD95 and ASSD of one pair, sharing validation, cropping and surface distances.

    Returns ``{"dice", "nsd", "hd95_mm", "assd_mm"}`` with the edge cases of each metric
    (both empty → all NaN; one empty → Dice 0, NSD 0, HD95 and ASSD ``inf``).
    """
    pred, gt = as_mask_pair(pred, gt)
    spacing = as_spacing(spacing_mm)
    tolerance = as_tolerance(tolerance_mm)
    box = bounding_box(pred, gt)
    if box is None:
        return {"dice": math.nan, "nsd": math.nan, "hd95_mm": math.nan, "assd_mm": math.nan}
    pred, gt = pred[box], gt[box]
    surfaces = surface_distances_in_box(pred, gt, spacing)
    return {
        "dice": dice_from_counts(*overlap_counts(pred, gt)),
        "nsd": surfaces.nsd(tolerance),
        "hd95_mm": surfaces.hd95(),
        "assd_mm": surfaces.assd(),
    }


__all__ = [
    "AGGREGATE_VERSION",
    "CURVES_VERSION",
    "DEFAULT_TOLERANCE_MM",
    "DICE_VERSION",
    "INSTANCES_VERSION",
    "METRICS_VERSION",
    "SURFACE_VERSION",
    "DetectionResult",
    "NoCSummary",
    "SurfaceDistances",
    "assd",
    "auc_cvpr25",
    "auc_effort",
    "auc_steps",
    "case_dice",
    "detection_scores",
    "dice",
    "dice_from_counts",
    "effort_to_target",
    "hd95",
    "lesion_dice",
    "lesion_wise_mean",
    "match_instances",
    "noc",
    "noc_summary",
    "nsd",
    "overlap_counts",
    "score_pair",
    "surface_distances",
    "surface_distances_in_box",
    "versions",
]
