"""The pure functions behind the simulated correcting users of :mod:`radioactive.prompts.users`.

Validation of a (target, prediction) pair and the bounding box of their union, 26-connected
components, the geometry of the ``scribble`` rule (centre points of the largest false-negative
component, the contour scribble on a coronal plane, random fallback voxels), and the crop and
click placement of the other rules (the centre of a prompt, a crop around it, the deepest voxel
of a component). All arrays are boolean canonical (z, y, x) masks; randomness comes only from the
``rng`` argument.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cc3d
import edt
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radioactive.prompts.base import BoolArray, check_target
from radioactive.prompts.geometry import (
    center_of_mass,
    disk,
    largest_cc_2d,
    largest_cc_per_slice,
    sample_indices,
    snap,
)
from radioactive.prompts.types import Prompt

IntArray = npt.NDArray[np.int64]
Box = tuple[slice, slice, slice]

#: dilation radius of the target before its contour is traced (negative scribble)
CONTOUR_DILATION_PX = 2
#: share of the contour length covered by a negative scribble
SCRIBBLE_FRACTION = 0.6
#: number of random false-positive voxels of the negative-scribble fallback
FALLBACK_VOXELS = 3


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def check_pair(target: BoolArray, prediction: BoolArray) -> tuple[BoolArray, BoolArray]:
    """Validate a (target, prediction) pair: 3D, same shape, non-empty target; both as bool."""
    t = check_target(target)
    p = np.asarray(prediction)
    if p.shape != t.shape:
        raise ValueError(
            f"prediction shape {p.shape} differs from target shape {t.shape}; both must be the "
            "same canonical (z, y, x) grid"
        )
    return t, p.astype(bool, copy=False)


def fast_bbox(mask: BoolArray) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """Half-open bounding box of a 3D mask, or ``None`` if empty.

    One cheap pass over the whole array for the z range, then the y/x ranges on that slab only.
    """
    nz = mask.shape[0]
    zs = np.flatnonzero(mask.reshape(nz, -1).any(axis=1))
    if zs.size == 0:
        return None
    z0, z1 = int(zs[0]), int(zs[-1]) + 1
    plane = np.any(mask[z0:z1], axis=0)
    ys = np.flatnonzero(plane.any(axis=1))
    xs = np.flatnonzero(plane.any(axis=0))
    return (z0, int(ys[0]), int(xs[0])), (z1, int(ys[-1]) + 1, int(xs[-1]) + 1)


def union_box(target: BoolArray, prediction: BoolArray) -> Box:
    """Slices of the bounding box of ``target ∪ prediction`` (target non-empty): every error voxel
    lies inside it."""
    tb = fast_bbox(target)
    if tb is None:
        raise ValueError("the target is empty")
    lo, hi = tb
    pb = fast_bbox(prediction)
    if pb is not None:
        lo = tuple(min(a, b) for a, b in zip(lo, pb[0], strict=True))  # type: ignore[assignment]
        hi = tuple(max(a, b) for a, b in zip(hi, pb[1], strict=True))  # type: ignore[assignment]
    return slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])


def _offset(box: Box) -> IntArray:
    return np.array([s.start for s in box], dtype=np.int64)


def _label_at(target: BoolArray, zyx: Sequence[int]) -> bool:
    return bool(target[int(zyx[0]), int(zyx[1]), int(zyx[2])])


def _random_index(n: int, rng: np.random.Generator) -> int:
    """A uniform index into ``range(n)``; draws from ``rng`` only when there is a choice."""
    return 0 if n == 1 else int(rng.integers(n))


def label_26(mask: BoolArray) -> tuple[npt.NDArray[np.integer], int]:
    """26-connected component labels (1..n, numbered in raster order of their first voxel) and n.

    Uses ``cc3d``; arrays with two singleton axes go to ``scipy.ndimage.label`` instead, because
    cc3d 4.1 raises "maximum length exception" on some 1D-shaped inputs such as ``[1, 0, 1]``
    (both number components the same way).
    """
    if sum(n == 1 for n in mask.shape) < 2:
        try:
            labels, n = cc3d.connected_components(mask, connectivity=26, return_N=True)
            return labels, int(n)
        except RuntimeError:  # pragma: no cover - defensive, see above
            pass
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    return labels, int(n)


def largest_component_3d(mask: BoolArray) -> tuple[BoolArray, Box] | None:
    """The largest 26-connected component of ``mask`` cropped to its bounding box, with that box
    (ties: the lowest label, i.e. the first component in raster order). ``None`` if empty."""
    labels, n = label_26(mask)
    if n == 0:
        return None
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    best = int(np.argmax(counts))
    box: Box = ndimage.find_objects(labels, max_label=best)[best - 1]
    return labels[box] == best, box


# --------------------------------------------------------------------------------------------
# scribble: pure generators
# --------------------------------------------------------------------------------------------


def positive_scribble_voxels(fn: BoolArray, origin: npt.ArrayLike = (0, 0, 0)) -> IntArray | None:
    """Centre points of the largest false-negative component, one per axial slice it touches.

    Largest 26-connected 3D component of ``fn``; on each of its axial slices, the centre of mass
    of the slice's largest 8-connected 2D component, snapped to the nearest pixel of that 2D
    component. ``origin`` is the position of ``fn`` in the full volume (centres are rounded in
    full-volume coordinates). Returns (N, 3) full-volume zyx sorted by z, or ``None`` when ``fn``
    is empty.
    """
    found = largest_component_3d(fn)
    if found is None:
        return None
    comp, box = found
    per_slice = largest_cc_per_slice(comp)
    off = _offset(box) + np.asarray(origin, dtype=np.int64)
    out = []
    for dz in np.flatnonzero(per_slice.any(axis=(1, 2))):
        cc = per_slice[dz]
        y, x = _snap_shifted(center_of_mass(cc), cc, (int(off[1]), int(off[2])))
        out.append((int(dz) + off[0], y + off[1], x + off[2]))
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def _snap_shifted(
    yx: tuple[float, float], mask2d: BoolArray, offset: tuple[int, int]
) -> tuple[int, int]:
    """:func:`~radioactive.prompts.geometry.snap` for a mask cropped at ``offset``, rounding in
    the coordinates of the full image (``np.rint`` rounds halves to even, which is not invariant
    under a shift by an odd offset). Returns crop coordinates."""
    gy, gx = (int(v) for v in np.rint(np.asarray(yx, dtype=float) + offset))
    y, x = gy - offset[0], gx - offset[1]
    if 0 <= y < mask2d.shape[0] and 0 <= x < mask2d.shape[1] and mask2d[y, x]:
        return y, x
    return snap(yx, mask2d)  # nearest pixel: invariant under the shift


def _ordered_unique(pixels: IntArray) -> IntArray:
    """Rows of ``pixels`` without repeats, in order of first occurrence."""
    if len(pixels) == 0:
        return pixels
    _, first = np.unique(pixels, axis=0, return_index=True)
    return pixels[np.sort(first)]


def contour_scribble_pixels(
    target2d: BoolArray,
    pred2d: BoolArray,
    rng: np.random.Generator,
    offset: tuple[int, int] = (0, 0),
) -> IntArray | None:
    """A negative scribble along the target's dilated contour, through the prediction (2D).

    Dilate ``target2d`` by a disk of radius 2 and trace its longest contour (on the mask padded by
    1). Pick a uniformly random contour vertex whose rounded pixel is predicted foreground; take
    the contiguous piece of the closed contour (wrapping) of 60 % of its arc length centred
    there; rasterise it with lines between consecutive rounded vertices; keep its largest
    8-connected component, then only pixels predicted foreground and outside the target.
    Returns the pixels (N, 2) in drawing order, or ``None`` when nothing is left. ``offset`` is
    the position of the arrays in the full plane: vertices are rounded in full-plane coordinates
    so that the result does not depend on the crop.
    """
    from skimage.draw import line
    from skimage.measure import find_contours

    dil = ndimage.binary_dilation(target2d, structure=disk(CONTOUR_DILATION_PX))
    contours = find_contours(np.pad(dil, 1).astype(np.float32), 0.5)
    if not contours:
        return None
    c = max(contours, key=len) - 1.0
    if len(c) > 1 and np.allclose(c[0], c[-1]):
        c = c[:-1]
    h, w = target2d.shape
    off = np.asarray(offset, dtype=np.int64)
    r = np.rint(c + off).astype(np.int64) - off
    r[:, 0] = np.clip(r[:, 0], 0, h - 1)
    r[:, 1] = np.clip(r[:, 1], 0, w - 1)
    candidates = np.flatnonzero(pred2d[r[:, 0], r[:, 1]])
    if candidates.size == 0:
        return None
    centre = int(candidates[_random_index(candidates.size, rng)])
    # arc position of every vertex along the closed contour
    edges = np.hypot(*(np.roll(c, -1, axis=0) - c).T)
    length = float(edges.sum())
    if length > 0:
        pos = np.concatenate([[0.0], np.cumsum(edges[:-1])])
        rel = (pos - pos[centre] + length / 2) % length - length / 2
        keep = np.flatnonzero(np.abs(rel) <= SCRIBBLE_FRACTION * length / 2)
        vertices = r[keep[np.argsort(rel[keep], kind="stable")]]
    else:
        vertices = r[centre : centre + 1]
    parts = [vertices[:1]]
    for a, b in itertools.pairwise(vertices):
        rr, cc = line(int(a[0]), int(a[1]), int(b[0]), int(b[1]))
        parts.append(np.stack([rr, cc], axis=1)[1:])
    pixels = _ordered_unique(np.concatenate(parts).astype(np.int64))
    drawn = np.zeros_like(target2d, dtype=bool)
    drawn[pixels[:, 0], pixels[:, 1]] = True
    good = largest_cc_2d(drawn) & pred2d & ~target2d
    pixels = pixels[good[pixels[:, 0], pixels[:, 1]]]
    return pixels if len(pixels) else None


def negative_scribble_voxels(
    target: BoolArray, prediction: BoolArray, box: Box, fp: BoolArray, rng: np.random.Generator
) -> IntArray | None:
    """A negative scribble on the coronal plane (axis 1) with the most false positives.

    ``fp`` is the false-positive mask on the crop ``box`` of the full arrays. On that plane: the
    contour scribble of :func:`contour_scribble_pixels`, or, where the plane holds no target, the
    predicted pixels of the axial-direction line through the x column with the most false
    positives. Returns (N, 3) full-volume zyx, or ``None`` if generation failed.
    """
    y = box[1].start + int(np.argmax(fp.sum(axis=(0, 2))))
    # the plane restricted to the box plus a margin wider than the dilation (identical to the
    # whole plane: outside the box both masks are empty; at the volume border it is clipped)
    m = CONTOUR_DILATION_PX + 1
    z0, z1 = max(box[0].start - m, 0), min(box[0].stop + m, target.shape[0])
    x0, x1 = max(box[2].start - m, 0), min(box[2].stop + m, target.shape[2])
    t2 = np.ascontiguousarray(target[z0:z1, y, x0:x1])
    p2 = np.ascontiguousarray(prediction[z0:z1, y, x0:x1])
    if not t2.any():
        column = int(np.argmax(p2.sum(axis=0)))
        zs = np.flatnonzero(p2[:, column])
        pixels = np.stack([zs, np.full_like(zs, column)], axis=1)
    else:
        found = contour_scribble_pixels(t2, p2, rng, (z0, x0))
        if found is None:
            return None
        pixels = found
    zyx = np.empty((len(pixels), 3), dtype=np.int64)
    zyx[:, 0] = pixels[:, 0] + z0
    zyx[:, 1] = y
    zyx[:, 2] = pixels[:, 1] + x0
    return zyx


def random_voxels(mask: BoolArray, n: int, rng: np.random.Generator) -> IntArray:
    """``n`` uniformly random foreground voxels of ``mask`` (all of them when fewer; no repeats),
    as (N, 3) indices into ``mask``."""
    flat = np.flatnonzero(mask)
    picked = flat[np.unique(sample_indices(flat.size, n, rng))]
    return np.stack(np.unravel_index(picked, mask.shape), axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# other rules: pure functions
# --------------------------------------------------------------------------------------------


def prompt_centre(prompt: Prompt) -> npt.NDArray[np.float64] | None:
    """The (z, y, x) centre of a located prompt (``prompt.centre()``), else ``None``."""
    return np.asarray(prompt.centre(), dtype=float) if prompt.kind.located else None


def crop_around(
    centre: Sequence[float], size: Sequence[int], shape: Sequence[int]
) -> tuple[slice, ...]:
    """A box of ``size`` (shrunk to ``shape`` where larger) centred on ``centre`` (the centre voxel
    sits at index ``size // 2``), shifted to lie inside the volume."""
    out = []
    for c, s, n in zip(centre, size, shape, strict=True):
        s = min(int(s), int(n))
        start = min(max(int(np.rint(c)) - s // 2, 0), n - s)
        out.append(slice(start, start + s))
    return tuple(out)


def deepest_voxel(
    component: BoolArray, rng: np.random.Generator, spacing: Sequence[float] | None = None
) -> tuple[int, int, int]:
    """The voxel of ``component`` farthest from its outside (Euclidean distance transform with the
    array border counted as outside; ``spacing`` in mm per axis, else voxel units). Ties are broken
    uniformly at random."""
    aniso = tuple(float(s) for s in spacing) if spacing is not None else (1.0, 1.0, 1.0)
    padded = np.pad(np.ascontiguousarray(component, dtype=bool), 1)
    dist = edt.edt(padded.view(np.uint8), anisotropy=aniso)[1:-1, 1:-1, 1:-1]
    ties = np.flatnonzero(dist == dist.max())
    pick = int(ties[_random_index(ties.size, rng)])
    z, y, x = np.unravel_index(pick, component.shape)
    return int(z), int(y), int(x)


__all__ = [
    "CONTOUR_DILATION_PX",
    "FALLBACK_VOXELS",
    "SCRIBBLE_FRACTION",
    "check_pair",
    "contour_scribble_pixels",
    "crop_around",
    "deepest_voxel",
    "fast_bbox",
    "label_26",
    "largest_component_3d",
    "negative_scribble_voxels",
    "positive_scribble_voxels",
    "prompt_centre",
    "random_voxels",
    "union_box",
]
