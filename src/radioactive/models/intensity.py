"""Intensity rules: how a canonical volume becomes a model's input intensities.

Two families of presets:

* **The authors' rules** (the defaults of the adapters, see
  :mod:`radioactive.models.contracts`), each equal to one published preprocessing:

  - ``sam_reference``: the volume clipped to its 0.5–99.5 percentiles over **all** voxels and
    scaled with the volume's clipped minimum and maximum to [0, 255], rounded to uint8 levels
    (the RadioActive reference's SAM / SAM2 preprocessing, ``src/radioa/model/SAM.py``);
  - ``medsam_ct``: window level 40 / width 400 HU ([-160, 240]), min-max of the windowed volume
    to [0, 255], truncated to uint8 (MedSAM's ``pre_CT_MR.py``);
  - ``medsam_mr``: clipped to the 0.5–99.5 percentiles of the positive voxels, min-max of the
    clipped volume to [0, 255], voxels that were 0 stay 0, truncated to uint8 (the same file).

* **Named variants** kept for comparison and for earlier results: ``percentile`` (0.5–99.5
  percentiles over all voxels, then each axial slice min-max scaled on its own; the earlier
  default of the 2D adapters) and the CT windows ``ct_soft_tissue``, ``ct_abdomen``, ``ct_lung``,
  ``ct_bone`` (window, then per-slice min-max). Windows are (level, width) in Hounsfield units.

Percentiles over positive voxels only (the reference's MedSAM adapter) are wrong for CT, where
most tissue is below 0 HU; ``medsam_mr`` uses positive voxels only because MedSAM's MR
preprocessing does, and only for MR. The two MedSAM rules are computed by :func:`pre_ct_mr`,
with the script's own numpy operations on the volume's own dtype, so that every level equals the
script's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class IntensityRule:
    """One intensity rule.

    Attributes:
        kind: ``"percentile"`` (over all voxels), ``"percentile_positive"`` (over voxels ≠ 0) or
            ``"window"``.
        a, b: low and high percentile, or window level and width.
        scale: ``"slice"`` (each axial slice min-max scaled on its own) or ``"volume"``.
        levels: ``None`` (float), ``"round"`` or ``"trunc"``: quantise to the 256 uint8 levels.
        keep_zero: voxels that were 0 stay 0 after scaling.
    """

    kind: str
    a: float
    b: float
    scale: str = "slice"
    levels: str | None = None
    keep_zero: bool = False


#: name -> rule
RULES: dict[str, IntensityRule] = {
    "percentile": IntensityRule("percentile", 0.5, 99.5),
    "ct_soft_tissue": IntensityRule("window", 40.0, 400.0),
    "ct_abdomen": IntensityRule("window", 50.0, 350.0),
    "ct_lung": IntensityRule("window", -600.0, 1500.0),
    "ct_bone": IntensityRule("window", 400.0, 1800.0),
    "sam_reference": IntensityRule("percentile", 0.5, 99.5, scale="volume", levels="round"),
    "medsam_ct": IntensityRule("window", 40.0, 400.0, scale="volume", levels="trunc"),
    "medsam_mr": IntensityRule(
        "percentile_positive", 0.5, 99.5, scale="volume", levels="trunc", keep_zero=True
    ),
}


def rule(preset: str) -> IntensityRule:
    try:
        return RULES[preset]
    except KeyError:
        raise ValueError(
            f"unknown intensity preset {preset!r}; choose one of: {', '.join(RULES)}"
        ) from None


def clip_range(image: npt.NDArray, preset: str = "percentile") -> tuple[float, float]:
    """The (low, high) intensity range of a preset for this volume."""
    r = rule(preset)
    if r.kind == "window":
        return r.a - r.b / 2.0, r.a + r.b / 2.0
    arr = np.asarray(image)
    if r.levels is not None:  # the authors' numpy code takes its percentiles in float64
        arr = arr.astype(np.float64)
    elif not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if r.kind == "percentile_positive":
        arr = arr[arr > 0]
        if arr.size == 0:
            return 0.0, 0.0
    lo, hi = np.percentile(arr, [r.a, r.b])
    return float(lo), float(hi)


def normalize(
    image: npt.NDArray,
    preset: str = "percentile",
    *,
    out_max: float = 1.0,
    per_slice: bool | None = None,
) -> npt.NDArray[np.float32]:
    """Clip to the preset's range, then min-max scale to [0, out_max] per axial slice or per
    volume (the preset's ``scale``, unless ``per_slice`` says otherwise), then quantise to the
    256 uint8 levels if the preset does (``levels``; the result is then ``level / 255 · out_max``).

    A constant slice (or volume) becomes 0.
    """
    r = rule(preset)
    lo, hi = clip_range(image, preset)
    slicewise = (r.scale == "slice") if per_slice is None else per_slice
    if preset in PRE_CT_MR and not slicewise:
        return (pre_ct_mr(image, preset) * np.float32(out_max / 255.0)).astype(np.float32)
    if r.levels is not None:
        return _levels(np.asarray(image), r, lo, hi, slicewise, out_max)
    x = np.clip(np.asarray(image, dtype=np.float32), lo, hi)
    if slicewise:
        mn = x.min(axis=(1, 2), keepdims=True)
        mx = x.max(axis=(1, 2), keepdims=True)
    else:
        mn, mx = np.float32(x.min()), np.float32(x.max())
    span = np.where(mx - mn > 0, mx - mn, 1.0).astype(np.float32)
    out: npt.NDArray[np.float32] = ((x - mn) / span * np.float32(out_max)).astype(np.float32)
    if r.keep_zero:
        out[np.asarray(image) == 0] = 0.0
    return out


def _levels(
    image: npt.NDArray, r: IntensityRule, lo: float, hi: float, slicewise: bool, out_max: float
) -> npt.NDArray[np.float32]:
    """The uint8-level rules, computed in float64 as the authors' numpy code does (in float32 a
    value next to a .5 boundary can move to the neighbouring level), a few slices at a time so
    that a large CT never exists in float64 at once."""
    out = np.empty(image.shape, dtype=np.float32)
    vmin = float(np.clip(np.min(image), lo, hi))
    vmax = float(np.clip(np.max(image), lo, hi))
    step = max(1, int(2**24 // max(1, image[0].size)))
    for z0 in range(0, image.shape[0], step):
        raw = np.asarray(image[z0 : z0 + step], dtype=np.float64)
        x = np.clip(raw, lo, hi)
        if slicewise:
            mn = x.min(axis=(1, 2), keepdims=True)
            mx = x.max(axis=(1, 2), keepdims=True)
        else:
            mn, mx = np.float64(vmin), np.float64(vmax)
        span = np.where(mx - mn > 0, mx - mn, 1.0)
        scaled = (x - mn) / span * 255.0
        if r.keep_zero:
            scaled[raw == 0] = 0.0
        q = np.rint(scaled) if r.levels == "round" else np.trunc(scaled)
        out[z0 : z0 + step] = np.clip(q, 0, 255) / 255.0 * out_max
    return out


#: the presets :func:`pre_ct_mr` implements (MedSAM's ``pre_CT_MR.py``)
PRE_CT_MR = ("medsam_ct", "medsam_mr")


def pre_ct_mr(image: npt.NDArray, preset: str) -> npt.NDArray[np.float32]:
    """The uint8 levels MedSAM's ``pre_CT_MR.py`` writes for a volume (as float32), bit for bit.

    ``medsam_ct``: clipped to the window [level - width / 2, level + width / 2]; ``medsam_mr``:
    clipped to the 0.5 and 99.5 percentiles of the *positive* voxels (the script's
    ``image_data > 0``). Then the clipped volume min-max scaled to [0, 255], the voxels that were
    0 set back to 0 (MR), and truncated to uint8. The numpy operations are those of the script,
    on the volume's own dtype (float32 arithmetic for a float32 volume, float64 for an integer
    one), so no level differs by rounding. A volume that is constant after clipping (or an MR
    volume without a positive voxel) becomes 0, where the script divides by zero.
    """
    if preset not in PRE_CT_MR:
        raise ValueError(f"pre_CT_MR.py has no rule {preset!r}; it has {', '.join(PRE_CT_MR)}")
    r = rule(preset)
    arr = np.asarray(image)
    if r.kind == "window":
        lo, hi = r.a - r.b / 2, r.a + r.b / 2
    else:
        positive = arr[arr > 0]
        if positive.size == 0:
            return np.zeros(arr.shape, dtype=np.float32)
        lo, hi = np.percentile(positive, r.a), np.percentile(positive, r.b)
    x = np.clip(arr, lo, hi)
    mn, mx = np.min(x), np.max(x)
    if not mx - mn > 0:
        return np.zeros(arr.shape, dtype=np.float32)
    x = (x - mn) / (mx - mn) * 255.0
    if r.keep_zero:
        x[arr == 0] = 0
    return x.astype(np.uint8).astype(np.float32)


def check_intensity(intensity: str) -> str:
    """``intensity`` if it is ``"auto"`` (the authors' contract) or a preset name, else a
    ``ValueError`` listing the choices."""
    if intensity != "auto" and intensity not in RULES:
        raise ValueError(
            f"unknown intensity preset {intensity!r}; choose 'auto' (the model's authors' "
            f"contract) or one of: {', '.join(RULES)}"
        )
    return intensity
