"""Input checks shared by the metrics: 3D bool/integer masks of one shape, (z, y, x) order."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Spacing = tuple[float, float, float]


def as_mask(name: str, mask: object) -> np.ndarray:
    """Return ``mask`` as a 3D numpy array of bool or integer dtype (non-zero = foreground).

    Raises ``ValueError`` naming ``name`` when the array is not 3D or not bool/integer (a float
    array is most often a probability map that still needs thresholding).
    """
    array = np.asarray(mask)
    if array.ndim != 3:
        raise ValueError(
            f"{name} must be a 3D mask in (z, y, x) order, got {array.ndim}D array of shape "
            f"{array.shape}"
        )
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be a bool or integer mask (non-zero = foreground), got dtype "
            f"{array.dtype}; threshold probability maps first, e.g. `{name} > 0.5`"
        )
    return array


def as_mask_pair(pred: object, gt: object) -> tuple[np.ndarray, np.ndarray]:
    """Check ``pred`` and ``gt`` with :func:`as_mask` and that their shapes are equal."""
    pred_array = as_mask("pred", pred)
    gt_array = as_mask("gt", gt)
    if pred_array.shape != gt_array.shape:
        raise ValueError(
            f"pred and gt must have the same shape, got pred {pred_array.shape} and gt "
            f"{gt_array.shape}"
        )
    return pred_array, gt_array


def as_spacing(spacing_mm: Sequence[float]) -> Spacing:
    """Return ``spacing_mm`` as a (z, y, x) tuple of three finite positive floats (mm)."""
    try:
        values = tuple(float(s) for s in spacing_mm)
    except TypeError as error:
        raise ValueError(
            f"spacing_mm must be a sequence of 3 floats (z, y, x) in mm, got {spacing_mm!r}"
        ) from error
    if len(values) != 3:
        raise ValueError(
            f"spacing_mm must have 3 values (z, y, x) in mm, got {len(values)}: {spacing_mm!r}"
        )
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing_mm values must be finite and positive (mm), got {values}")
    return values[0], values[1], values[2]


def as_tolerance(tolerance_mm: float) -> float:
    """Return ``tolerance_mm`` as a finite float ≥ 0."""
    value = float(tolerance_mm)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"tolerance_mm must be a finite number >= 0 (mm), got {tolerance_mm!r}")
    return value


def bounding_box(pred: np.ndarray, gt: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Smallest box (half-open slices) holding the foreground of ``pred`` and ``gt``.

    ``None`` when both are empty. Uses axis projections only (no full-volume temporaries).
    """
    z = _nonzero_range(pred.any(axis=(1, 2)) | gt.any(axis=(1, 2)))
    if z is None:
        return None
    pz, gz = pred[z], gt[z]
    y = _nonzero_range(pz.any(axis=(0, 2)) | gz.any(axis=(0, 2)))
    x = _nonzero_range(pz.any(axis=(0, 1)) | gz.any(axis=(0, 1)))
    assert y is not None and x is not None
    return z, y, x


def _nonzero_range(projection: np.ndarray | np.bool_) -> slice | None:
    hits = np.flatnonzero(projection)
    if hits.size == 0:
        return None
    return slice(int(hits[0]), int(hits[-1]) + 1)
