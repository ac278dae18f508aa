"""Intensity presets: how a canonical volume becomes a model's input intensities.

Percentiles are taken over **all** voxels of the volume (the reference takes them over positive
voxels only, which is wrong for CT where most tissue is below 0 HU). CT windows are given as
(level, width) in Hounsfield units.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: name -> (low, high) percentiles, or ("window", level, width)
PRESETS: dict[str, tuple[str, float, float]] = {
    "percentile": ("percentile", 0.5, 99.5),
    "ct_soft_tissue": ("window", 40.0, 400.0),
    "ct_abdomen": ("window", 50.0, 350.0),
    "ct_lung": ("window", -600.0, 1500.0),
    "ct_bone": ("window", 400.0, 1800.0),
}


def clip_range(image: npt.NDArray, preset: str = "percentile") -> tuple[float, float]:
    """The (low, high) intensity range of a preset for this volume."""
    try:
        kind, a, b = PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"unknown intensity preset {preset!r}; choose one of: {', '.join(PRESETS)}"
        ) from None
    if kind == "window":
        return a - b / 2.0, a + b / 2.0
    lo, hi = np.percentile(np.asarray(image, dtype=np.float32), [a, b])
    return float(lo), float(hi)


def normalize(
    image: npt.NDArray, preset: str = "percentile", *, out_max: float = 1.0, per_slice: bool = True
) -> npt.NDArray[np.float32]:
    """Clip to the preset's range, then scale to [0, out_max] per axial slice (or per volume).

    A constant slice becomes 0.
    """
    lo, hi = clip_range(image, preset)
    x = np.clip(np.asarray(image, dtype=np.float32), lo, hi)
    if per_slice:
        mn = x.min(axis=(1, 2), keepdims=True)
        mx = x.max(axis=(1, 2), keepdims=True)
    else:
        mn, mx = np.float32(x.min()), np.float32(x.max())
    span = np.where(mx - mn > 0, mx - mn, 1.0).astype(np.float32)
    out: npt.NDArray[np.float32] = ((x - mn) / span * np.float32(out_max)).astype(np.float32)
    return out
