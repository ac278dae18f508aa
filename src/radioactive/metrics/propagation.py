"""Diagnostics of propagated segmentations: over-propagation and quality against slice distance.

Propagation-based 3D segmentation (a video model tracking an object through the axial slices,
or a prompter that feeds the model's prediction of one slice forward as the prompt of the next)
is known to fail in two ways: it runs past the end of the object (*over-propagation*), and it
gets worse the farther a slice is from a slice the user prompted (*memory decay*). Both are
measured here from the prediction, the reference mask and the prompted slices alone
(:func:`propagation_diagnostics`); everything is in the canonical (z, y, x) order, ``z`` being
the axial slice index.

Definitions (``G`` the reference, ``P`` the prediction, ``G_z`` / ``P_z`` their slice ``z``):

* **Extent of the target**: ``[z_first, z_last]``, the first and last slice on which ``G`` is
  non-empty (gap slices inside count as inside). An empty ``G`` has no extent: ``ValueError``.
* **Over-propagation**: ``below`` = the number of slices ``z < z_first`` with ``P_z`` non-empty,
  ``above`` = the same for ``z > z_last``; ``slices = below + above``; ``voxels`` = the predicted
  voxels on those slices; ``mm = slices × spacing_z`` (their thickness) and ``volume_mm3`` the
  voxels' volume. ``reach_below_mm`` / ``reach_above_mm`` = how far the farthest predicted slice
  lies beyond the extent, ``(z_first − lowest predicted z) × spacing_z`` (0 when none).
* **Slice Dice**: ``2 |P_z ∧ G_z| / (|P_z| + |G_z|)`` on every slice where ``P_z`` or ``G_z`` is
  non-empty: a slice predicted where the reference is empty (an over-propagated slice) and a
  reference slice with nothing predicted both score 0; a slice where both are empty is left
  out (it holds nothing to get right or wrong).
* **Distance** of a slice: ``min |z − k|`` over the prompted slices ``k`` (in slices, ≥ 0). A
  prompted slice may lie outside the target; it must lie in the volume.
* **Dice at distance d**: the mean slice Dice over the counted slices at distance ``d``, with
  their number; **distance bins** ``0``, ``1-5``, ``6-10`` and ``>10``: the mean slice Dice
  over the counted slices whose distance is in the bin (NaN for a bin without slices);
  **slope**: the least-squares slope of slice Dice against distance over all counted slices
  (Dice per slice; negative when quality decays; NaN with fewer than two distinct distances).
  Without prompted slices every distance summary is empty or NaN.

:data:`PROPAGATION_VERSION` versions these definitions; it is stored beside the numbers and is
not part of any unit's identity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_mask_pair, as_spacing, bounding_box

__all__ = [
    "DISTANCE_BINS",
    "PROPAGATION_VERSION",
    "PropagationDiagnostics",
    "distance_to_slices",
    "propagation_diagnostics",
    "slice_dice",
]

PROPAGATION_VERSION = "1"
"""Version of the propagation diagnostics' definitions."""

#: (label, lowest distance, highest distance) of the distance bins, inclusive
DISTANCE_BINS: tuple[tuple[str, int, float], ...] = (
    ("0", 0, 0),
    ("1-5", 1, 5),
    ("6-10", 6, 10),
    (">10", 11, math.inf),
)


@dataclass(frozen=True)
class PropagationDiagnostics:
    """Over-propagation and Dice against distance of one prediction (see the module docstring).

    ``distances``, ``dice_at_distance`` and ``slices_at_distance`` are aligned: each distance
    that has a counted slice, in increasing order, with the mean slice Dice and the number of
    slices there. ``bins`` maps each label of :data:`DISTANCE_BINS` to its mean slice Dice and
    ``bin_slices`` to its number of slices.
    """

    key_slices: tuple[int, ...]
    extent: tuple[int, int]
    below: int
    above: int
    voxels: int
    mm: float
    volume_mm3: float
    reach_below_mm: float
    reach_above_mm: float
    distances: tuple[int, ...]
    dice_at_distance: tuple[float, ...]
    slices_at_distance: tuple[int, ...]
    bins: dict[str, float]
    bin_slices: dict[str, int]
    slope: float

    @property
    def slices(self) -> int:
        """Over-propagated slices on both sides."""
        return self.below + self.above

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values with the definitions' version; NaN (a bin without slices, an
        undefined slope) becomes ``None``, so the JSON is standard (``null``)."""
        return {
            "version": PROPAGATION_VERSION,
            "key_slices": list(self.key_slices),
            "extent": list(self.extent),
            "below": self.below,
            "above": self.above,
            "slices": self.slices,
            "voxels": self.voxels,
            "mm": self.mm,
            "volume_mm3": self.volume_mm3,
            "reach_below_mm": self.reach_below_mm,
            "reach_above_mm": self.reach_above_mm,
            "dice_by_distance": [
                [d, _finite(v), n]
                for d, v, n in zip(
                    self.distances, self.dice_at_distance, self.slices_at_distance, strict=True
                )
            ],
            "bins": {label: _finite(v) for label, v in self.bins.items()},
            "bin_slices": dict(self.bin_slices),
            "slope": _finite(self.slope),
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def slice_dice(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slices where ``pred`` or ``gt`` is non-empty (sorted z indices) and their 2D Dice.

    Both arrays are (z, y, x) masks of one shape; a slice where both are empty is left out, one
    where only one of them is non-empty has Dice 0.
    """
    pred, gt = as_mask_pair(pred, gt)
    box = bounding_box(pred, gt)
    if box is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    p, g = pred[box].astype(bool, copy=False), gt[box].astype(bool, copy=False)
    n_pred = np.count_nonzero(p, axis=(1, 2))
    n_gt = np.count_nonzero(g, axis=(1, 2))
    n_both = np.count_nonzero(p & g, axis=(1, 2))
    counted = (n_pred + n_gt) > 0
    total = (n_pred + n_gt)[counted].astype(np.float64)
    dice = 2.0 * n_both[counted] / total
    z = np.flatnonzero(counted) + box[0].start
    return z.astype(np.int64), dice.astype(np.float64)


def distance_to_slices(z: Sequence[int] | np.ndarray, key_slices: Iterable[int]) -> np.ndarray:
    """For each slice index in ``z``, the distance in slices to the nearest of ``key_slices``
    (``ValueError`` when there are none)."""
    keys = np.unique(np.asarray(list(key_slices), dtype=np.int64))
    if keys.size == 0:
        raise ValueError("no prompted slices: the distance to them is undefined")
    zs = np.asarray(z, dtype=np.int64).reshape(-1)
    pos = np.searchsorted(keys, zs)
    lower = keys[np.clip(pos - 1, 0, keys.size - 1)]
    upper = keys[np.clip(pos, 0, keys.size - 1)]
    return np.minimum(np.abs(zs - lower), np.abs(zs - upper))


def _check_keys(key_slices: Iterable[int], depth: int) -> tuple[int, ...]:
    keys: list[int] = []
    for k in key_slices:
        try:
            value = int(k)
        except (TypeError, ValueError):
            value = None
        if value is None or isinstance(k, bool) or value != k:
            raise ValueError(f"prompted slices must be integer slice indices, got {k!r}")
        keys.append(value)
    outside = sorted({k for k in keys if not 0 <= k < depth})
    if outside:
        raise ValueError(
            f"prompted slice(s) {outside} outside the volume's {depth} slices (0..{depth - 1})"
        )
    return tuple(sorted(set(keys)))


def _overpropagation(
    pred: np.ndarray, first: int, last: int
) -> tuple[int, int, int, int | None, int | None]:
    """(below, above, voxels, lowest predicted z below, highest predicted z above)."""
    per_slice = np.count_nonzero(pred, axis=(1, 2))
    below_z = np.flatnonzero(per_slice[:first])
    above_z = np.flatnonzero(per_slice[last + 1 :]) + last + 1
    voxels = int(per_slice[:first].sum() + per_slice[last + 1 :].sum())
    lowest = int(below_z[0]) if below_z.size else None
    highest = int(above_z[-1]) if above_z.size else None
    return int(below_z.size), int(above_z.size), voxels, lowest, highest


def _slope(distance: np.ndarray, dice: np.ndarray) -> float:
    if np.unique(distance).size < 2:
        return math.nan
    x = distance.astype(np.float64)
    dx = x - x.mean()
    return float(np.sum(dx * (dice - dice.mean())) / np.sum(dx * dx))


def propagation_diagnostics(
    pred: np.ndarray,
    gt: np.ndarray,
    key_slices: Iterable[int],
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
) -> PropagationDiagnostics:
    """Over-propagation and Dice against distance from the prompted slices (module docstring).

    Args:
        pred: predicted (z, y, x) mask, bool or integer (non-zero = foreground).
        gt: reference mask of the same shape; must not be empty.
        key_slices: the axial slices the user prompted (duplicates and any order are fine);
            each must be a slice of the volume. Empty: the distance summaries are empty / NaN.
        spacing_mm: voxel size (z, y, x) in mm, for the millimetre and volume figures.

    Raises:
        ValueError: masks that are not 3D bool/integer arrays of one shape, an empty ``gt``, a
            prompted slice outside the volume, or an invalid spacing.
    """
    pred, gt = as_mask_pair(pred, gt)
    spacing = as_spacing(spacing_mm)
    keys = _check_keys(key_slices, pred.shape[0])
    gt_slices = np.flatnonzero(gt.any(axis=(1, 2)))
    if gt_slices.size == 0:
        raise ValueError(
            "gt is empty: the target has no z extent, so over-propagation and slice distances "
            "are undefined (empty targets are skipped, never scored)"
        )
    first, last = int(gt_slices[0]), int(gt_slices[-1])
    below, above, voxels, lowest, highest = _overpropagation(pred, first, last)
    sz = spacing[0]
    z, dice = slice_dice(pred, gt)
    distances: tuple[int, ...] = ()
    means: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    bins = {label: math.nan for label, _, _ in DISTANCE_BINS}
    bin_slices = {label: 0 for label, _, _ in DISTANCE_BINS}
    slope = math.nan
    if keys and z.size:
        dist = distance_to_slices(z, keys)
        unique, inverse, n = np.unique(dist, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=dice, minlength=unique.size)
        distances = tuple(int(d) for d in unique)
        means = tuple(float(s / c) for s, c in zip(sums, n, strict=True))
        counts = tuple(int(c) for c in n)
        for label, low, high in DISTANCE_BINS:
            inside = (dist >= low) & (dist <= high)
            bin_slices[label] = int(inside.sum())
            if inside.any():
                bins[label] = float(dice[inside].mean())
        slope = _slope(dist, dice)
    return PropagationDiagnostics(
        key_slices=keys,
        extent=(first, last),
        below=below,
        above=above,
        voxels=voxels,
        mm=float((below + above) * sz),
        volume_mm3=float(voxels * spacing[0] * spacing[1] * spacing[2]),
        reach_below_mm=float((first - lowest) * sz) if lowest is not None else 0.0,
        reach_above_mm=float((highest - last) * sz) if highest is not None else 0.0,
        distances=distances,
        dice_at_distance=means,
        slices_at_distance=counts,
        bins=bins,
        bin_slices=bin_slices,
        slope=slope,
    )
