"""Rules of the authors' pipelines, re-expressed in the test suite (never imported by the package),
and the comparison helpers the conformance tests share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def max_diff(a: Any, b: Any) -> float:
    """max |a - b| in float64 (tensors detached and on the CPU); 0 when both are missing,
    infinite when one is, when the shapes differ or when a NaN appears."""
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    x = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64)
    y = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
    if x.shape != y.shape:
        return math.inf
    if x.size == 0:
        return 0.0
    d = np.abs(x - y)
    return math.inf if np.isnan(d).any() else float(d.max())


def pre_ct_mr(image: np.ndarray, modality: str) -> np.ndarray:
    """MedSAM's ``pre_CT_MR.py`` intensity rule: the uint8 volume it saves (CT: window level 40 /
    width 400; MR: the 0.5 / 99.5 percentiles of the positive voxels, zeros kept)."""
    if modality == "CT":
        level, width = 40, 400
        clipped = np.clip(image, level - width / 2, level + width / 2)
    else:
        positive = image[image > 0]
        clipped = np.clip(image, np.percentile(positive, 0.5), np.percentile(positive, 99.5))
    scaled = (clipped - np.min(clipped)) / (np.max(clipped) - np.min(clipped)) * 255.0
    if modality != "CT":
        scaled[image == 0] = 0
    return np.uint8(scaled)


def sammed2d_reference_levels(image: np.ndarray) -> np.ndarray:
    """SAM-Med2D's per-slice intensity rule (the RadioActive reference's adapter, with the
    percentiles over all of a slice's voxels): each axial slice (float64) clipped to its own
    0.5 and 99.5 percentiles, scaled by that range to [0, 255] and rounded to uint8; a constant
    slice becomes 0."""
    out = np.zeros(np.shape(image), dtype=np.uint8)
    for z, s in enumerate(np.asarray(image, dtype=np.float64)):
        lo, hi = np.percentile(s, [0.5, 99.5])
        if hi > lo:
            out[z] = np.rint((np.clip(s, lo, hi) - lo) / (hi - lo) * 255.0).astype(np.uint8)
    return out
