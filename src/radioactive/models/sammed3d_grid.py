"""The geometry of SAM-Med3D's input pipeline (:mod:`radioactive.models.sammed3d`): pure functions.

For the authors' contract: the grid of torchio's ``Resample`` (:data:`GRIDS`), voxel coordinates
on it, resampling onto it with SimpleITK, the crop window torchio's ``CropOrPad`` places for the
points' mask, the z-score over the crop's voxels > 0, and the way back from the grid to the
volume by nearest neighbour. For the legacy contract (version 1 of the adapter): the
corner-aligned grid of ``scipy.ndimage.zoom``, a crop centred on the points and kept inside the
volume, and the z-score over the whole crop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: the resampling grids of torchio's ``Resample(spacing)`` (see :func:`isotropic_grid`)
GRIDS: dict[str, str] = {
    "corner": "torchio <= 0.20.10 (SAM-Med3D-turbo's training data and the authors' inference at "
    "release): ceil(n*s/t) voxels, the first voxel's corner on the volume's first corner",
    "centre": "torchio >= 0.20.11 (June 2025): floor(n*s/t) voxels centred on the volume",
}


# the authors' contract (torchio's grid, crop placement and normalisation, re-expressed)


def isotropic_grid(
    shape: tuple[int, ...],
    spacing_mm: tuple[float, ...],
    target_mm: float,
    grid: str = "corner",
) -> tuple[tuple[int, int, int], npt.NDArray[np.float64]]:
    """The grid of torchio's ``Resample(target_mm)`` for a volume of ``shape`` and ``spacing_mm``
    (voxel ``i`` of the volume at ``i·s`` mm), spaced ``t``; returns the shape and the position
    (mm) of grid voxel 0. ``grid`` (:data:`GRIDS`):

    * ``"corner"`` (torchio ≤ 0.20.10): ``ceil(n·s / t)`` voxels per axis, the first voxel's
      corner on the volume's first corner (grid voxel 0 at volume index ``(t/s − 1) / 2``);
    * ``"centre"`` (torchio ≥ 0.20.11): ``floor(n·s / t)`` voxels, same centre as the volume.

    An axis of one voxel keeps one voxel."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    n = np.asarray(shape, dtype=float)
    s = np.asarray(spacing_mm, dtype=float)
    if grid == "corner":
        m = np.ceil(n * s / target_mm)
        m[n == 1] = 1
        origin = s * (0.5 * (target_mm / s - 1))
    else:
        m = np.floor(n * s / target_mm)
        m[n == 1] = 1
        m = np.maximum(m, 1)
        origin = (n - 1) * s / 2 - (m - 1) / 2 * target_mm
    z, y, x = (int(v) for v in m)
    return (z, y, x), origin


def grid_coords(
    coords: npt.ArrayLike,
    shape: tuple[int, ...],
    spacing_mm: tuple[float, ...],
    target_mm: float,
    grid: str = "corner",
) -> npt.NDArray[np.float64]:
    """(N, 3) voxel coordinates of the volume → continuous coordinates on
    :func:`isotropic_grid`."""
    _, origin = isotropic_grid(shape, spacing_mm, target_mm, grid)
    c = np.asarray(coords, dtype=float).reshape(-1, 3)
    return (c * np.asarray(spacing_mm, dtype=float) - origin) * (1.0 / target_mm)


def grid_voxels(
    coords: npt.ArrayLike,
    shape: tuple[int, ...],
    spacing_mm: tuple[float, ...],
    target_mm: float,
    grid: str = "corner",
) -> npt.NDArray[np.int64]:
    """(N, 3) voxel coordinates of the volume → the nearest voxels of :func:`isotropic_grid`
    (half-integers rounded up, as ITK's nearest neighbour does), kept inside the grid."""
    gshape, _ = isotropic_grid(shape, spacing_mm, target_mm, grid)
    g = np.floor(grid_coords(coords, shape, spacing_mm, target_mm, grid) + 0.5)
    return np.clip(g.astype(np.int64), 0, np.asarray(gshape) - 1)


def resample_isotropic(
    volume: npt.NDArray, spacing_mm: tuple[float, ...], target_mm: float, grid: str = "corner"
) -> npt.NDArray[np.float32]:
    """``volume`` (z, y, x) linearly resampled onto :func:`isotropic_grid` with SimpleITK's
    ``ResampleImageFilter`` (the filter and reference grid torchio's ``Resample`` uses; 0 beyond
    half a voxel outside the volume)."""
    import SimpleITK as sitk

    gshape, origin = isotropic_grid(volume.shape, spacing_mm, target_mm, grid)
    src = sitk.GetImageFromArray(np.ascontiguousarray(volume, dtype=np.float32))
    src.SetSpacing([float(v) for v in spacing_mm[::-1]])  # SimpleITK: (x, y, z)
    f = sitk.ResampleImageFilter()
    f.SetInterpolator(sitk.sitkLinear)
    f.SetOutputSpacing([float(target_mm)] * 3)
    f.SetOutputOrigin([float(v) for v in origin[::-1]])
    f.SetOutputDirection(src.GetDirection())
    f.SetSize([int(v) for v in gshape[::-1]])
    f.SetDefaultPixelValue(0.0)
    return np.asarray(sitk.GetArrayFromImage(f.Execute(src)), dtype=np.float32)


def bbox_crop_start(voxels: npt.ArrayLike, size: int) -> tuple[int, int, int]:
    """Start (may be negative) of the ``size³`` window torchio's ``CropOrPad(size,
    mask_name=...)`` takes for a mask holding ``voxels`` ((N, 3) integer indices): centred on
    the centre of their bounding box (``(min + max + 1) / 2``), moved half a voxel down where
    that centre and ``size`` cannot be matched exactly, never shifted to stay inside the
    volume."""
    v = np.asarray(voxels, dtype=np.int64).reshape(-1, 3)
    centre = (v.min(axis=0) + v.max(axis=0) + 1) / 2
    out = []
    for c in centre.tolist():
        if (size % 2 == 0) != (c % 1 == 0):
            c -= 0.5
        out.append(round(c - size / 2))
    return out[0], out[1], out[2]


def overlap(
    start: tuple[int, ...], size: int, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """The part of the ``size³`` window at ``start`` inside a volume of ``shape``: (slices of
    the volume, slices of the window)."""
    src, dst = [], []
    for s, n in zip(start, shape, strict=True):
        lo, hi = max(s, 0), min(s + size, n)
        if hi <= lo:
            src.append(slice(0, 0))
            dst.append(slice(0, 0))
        else:
            src.append(slice(lo, hi))
            dst.append(slice(lo - s, hi - s))
    return tuple(src), tuple(dst)


def window(
    volume: npt.NDArray, start: tuple[int, ...], size: int, fill: float = 0.0
) -> npt.NDArray[np.float32]:
    """The ``size³`` window at ``start`` (may start before or end after the volume), ``fill``
    where it leaves the volume."""
    out = np.full((size, size, size), fill, dtype=np.float32)
    src, dst = overlap(start, size, volume.shape)
    out[dst] = volume[src]
    return out


def znorm_positive(crop: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """``crop`` minus the mean, divided by the unbiased standard deviation, of its voxels > 0
    (torchio's ``ZNormalization(masking_method=lambda x: x > 0)``, computed with the same torch
    float32 operations; bit-identical when ``crop`` is laid out as torchio's tensor, (x, y, z)).
    ``None`` where that is undefined: fewer than two voxels > 0 (torchio gives NaN) or a
    standard deviation of 0 (torchio raises)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))
    values = t[t > 0]
    if values.numel() < 2:
        return None
    mean, std = values.mean(), values.std()
    if not bool(torch.isfinite(std)) or float(std) == 0.0:
        return None
    return ((t - mean) / std).numpy()


def grid_to_volume(
    grid_mask: npt.NDArray,
    shape: tuple[int, ...],
    spacing_mm: tuple[float, ...],
    target_mm: float,
    rim: int = 0,
    grid: str = "corner",
) -> npt.NDArray[np.bool_]:
    """A boolean mask on :func:`isotropic_grid` extended by ``rim`` voxels on each side → the
    volume of ``shape`` by nearest neighbour (torchio ``Resample(original, 'nearest')``): each
    voxel takes the (extended) grid voxel nearest to its centre (half-integers rounded up), and
    is ``False`` where that point lies half a voxel or more outside the extended grid."""
    gshape, origin = isotropic_grid(shape, spacing_mm, target_mm, grid)
    expect = tuple(m + 2 * rim for m in gshape)
    if tuple(grid_mask.shape) != expect:
        raise ValueError(f"expected a mask of shape {expect}, got {grid_mask.shape}")
    idx, valid = [], []
    for n, s, o, m in zip(shape, spacing_mm, origin, expect, strict=True):
        j = (np.arange(n, dtype=float) * float(s) - o) * (1.0 / target_mm) + rim
        valid.append((j >= -0.5) & (j < m - 0.5))
        idx.append(np.clip(np.floor(j + 0.5).astype(np.int64), 0, m - 1))
    out = np.asarray(grid_mask, dtype=bool)[np.ix_(*idx)]
    return out & valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :]


# the legacy contract (version 1 of the adapter)


def resampled_shape(
    shape: tuple[int, ...], spacing_mm: tuple[float, ...], target_mm: float
) -> tuple[int, int, int]:
    """Shape of the volume resampled to ``target_mm`` isotropic by the legacy contract
    (``round(n·s / t)``, at least one voxel per axis)."""
    z, y, x = (max(1, round(n * s / target_mm)) for n, s in zip(shape, spacing_mm, strict=True))
    return z, y, x


def map_index(
    coords: npt.ArrayLike, src: tuple[int, ...], dst: tuple[int, ...]
) -> npt.NDArray[np.float64]:
    """(N, 3) voxel coordinates on grid ``src`` → grid ``dst`` with the corner-aligned mapping
    of ``scipy.ndimage.zoom`` (``i·(dst−1)/(src−1)``; an axis of one voxel maps to 0)."""
    c = np.asarray(coords, dtype=float).reshape(-1, 3)
    s = np.asarray(src, dtype=float)
    d = np.asarray(dst, dtype=float)
    scale = np.where(s > 1, (d - 1) / np.maximum(s - 1, 1), 0.0)
    return c * scale


def crop_start(center: npt.ArrayLike, shape: tuple[int, ...], size: int) -> tuple[int, int, int]:
    """Start of the ``size³`` window centred on ``center`` (voxel index ``start + size // 2``),
    clipped to the volume; 0 on an axis shorter than ``size`` (the crop is then padded)."""
    c = np.rint(np.asarray(center, dtype=float)).astype(int)
    z, y, x = (
        int(np.clip(ci - size // 2, 0, max(n - size, 0))) for ci, n in zip(c, shape, strict=True)
    )
    return z, y, x


def extract_crop(
    volume: npt.NDArray, start: tuple[int, ...], size: int, fill: float | None = None
) -> npt.NDArray[np.float32]:
    """The ``size³`` window at ``start``; padded after the volume's end with ``fill`` (default:
    the minimum of the part inside the volume)."""
    if fill is None:
        src, _ = overlap(start, size, volume.shape)
        fill = float(np.min(volume[src]))
    return window(volume, start, size, fill)


def zscore(crop: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Zero mean, unit standard deviation over the crop (std floored at 1e-8)."""
    return ((crop - crop.mean()) / max(float(crop.std()), 1e-8)).astype(np.float32)


def nearest_to_grid(volume: npt.NDArray, shape: tuple[int, ...]) -> npt.NDArray:
    """Nearest-neighbour resampling of ``volume`` onto ``shape`` (exact shape, corner-aligned
    as :func:`map_index`)."""
    idx = []
    for n_dst, n_src in zip(shape, volume.shape, strict=True):
        i = np.arange(n_dst, dtype=float)
        scale = (n_src - 1) / (n_dst - 1) if n_dst > 1 else 0.0
        idx.append(np.clip(np.rint(i * scale).astype(int), 0, n_src - 1))
    return volume[np.ix_(*idx)]


__all__ = [
    "GRIDS",
    "bbox_crop_start",
    "crop_start",
    "extract_crop",
    "grid_coords",
    "grid_to_volume",
    "grid_voxels",
    "isotropic_grid",
    "map_index",
    "nearest_to_grid",
    "overlap",
    "resample_isotropic",
    "resampled_shape",
    "window",
    "znorm_positive",
    "zscore",
]
