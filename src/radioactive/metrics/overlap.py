"""Volume overlap: Dice (Sørensen–Dice coefficient) of two binary masks.

Masks are 3D numpy arrays in (z, y, x) order, bool or integer (non-zero = foreground). Dice does not
depend on the voxel spacing. See ``docs/metrics.md`` for the definitions and edge cases.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import as_mask_pair, bounding_box

DICE_VERSION = "1.0"
"""Version of the Dice definition; bump it whenever a Dice value could change."""

_CHUNK_VOXELS = 1 << 22  # voxels per slab when counting (keeps temporaries small)


def overlap_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """Return ``(|pred|, |gt|, |pred ∧ gt|)`` in voxels.

    Counts inside the bounding box of the two foregrounds, slab by slab, so no full-volume
    temporary is allocated.
    """
    pred, gt = as_mask_pair(pred, gt)
    box = bounding_box(pred, gt)
    if box is None:
        return 0, 0, 0
    pred, gt = pred[box], gt[box]
    plane = pred.shape[1] * pred.shape[2]
    step = max(1, _CHUNK_VOXELS // max(plane, 1))
    n_pred = n_gt = n_both = 0
    for start in range(0, pred.shape[0], step):
        p = pred[start : start + step]
        g = gt[start : start + step]
        if p.dtype != np.bool_:
            p = p != 0
        if g.dtype != np.bool_:
            g = g != 0
        n_pred += int(np.count_nonzero(p))
        n_gt += int(np.count_nonzero(g))
        n_both += int(np.count_nonzero(np.logical_and(p, g)))
    return n_pred, n_gt, n_both


def dice_from_counts(n_pred: int, n_gt: int, n_both: int) -> float:
    """Dice ``2·|P∧G| / (|P| + |G|)`` from voxel counts; NaN when both masks are empty."""
    total = n_pred + n_gt
    if total == 0:
        return math.nan
    return 2.0 * n_both / total


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient ``2·|pred ∧ gt| / (|pred| + |gt|)`` of two 3D masks, in [0, 1].

    Args:
        pred: predicted mask, (z, y, x), bool or integer (non-zero = foreground).
        gt: reference mask of the same shape.

    Returns:
        A float in [0, 1] (unitless). Edge cases:

        * ``gt`` empty and ``pred`` not (or the reverse): ``0.0``;
        * both empty: ``nan`` — the pair carries no information; aggregations exclude it from
          means and count it.

    Raises:
        ValueError: if a mask is not 3D, not bool/integer, or the shapes differ.

    >>> import numpy as np
    >>> a = np.zeros((1, 1, 4), bool); a[0, 0, :2] = True
    >>> b = np.zeros((1, 1, 4), bool); b[0, 0, 1:] = True
    >>> round(dice(a, b), 4)  # 2·1 / (2 + 3)
    0.4
    """
    return dice_from_counts(*overlap_counts(pred, gt))
