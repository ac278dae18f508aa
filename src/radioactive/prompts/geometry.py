"""Pure geometric helpers for prompt simulation (no randomness except through an injected rng).

Conventions: masks are boolean arrays, 3D in canonical (z, y, x) or 2D (y, x) for one axial
slice. "Largest CC" of a slice uses 8-connectivity in the plane. Continuous positions are rounded
with ``np.rint`` (half to even) before they become voxel indices; the key slices and key points
of the interpolation prompters follow the reference implementation (:func:`key_slices`,
:func:`rounded_bbox_point`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import ndimage

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# 8-connectivity inside each axial slice, no connection across slices
_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = True


def bbox(mask: BoolArray) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Half-open bounding box ``(lo, hi)`` of the foreground, or ``None`` if empty.

    For 3D masks the z range comes first (one reduction over whole slices), then the (y, x)
    range from the projection of that slab only.
    """
    if mask.ndim == 3:
        zs = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
        if zs.size == 0:
            return None
        z0, z1 = int(zs[0]), int(zs[-1]) + 1
        inner = bbox(np.asarray(mask[z0:z1].any(axis=0)))
        assert inner is not None
        return (z0, *inner[0]), (z1, *inner[1])
    lo, hi = [], []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return None
        lo.append(int(idx[0]))
        hi.append(int(idx[-1]) + 1)
    return tuple(lo), tuple(hi)


def fg_slices(mask: BoolArray) -> IntArray:
    """Sorted indices of the axial slices that contain foreground."""
    return np.flatnonzero(mask.any(axis=(1, 2))).astype(np.int64)


def median_slice(mask: BoolArray) -> int:
    """The median foreground slice (the lower middle one for an even count)."""
    zs = fg_slices(mask)
    if zs.size == 0:
        raise ValueError("empty target: no foreground slice")
    return int(zs[(zs.size - 1) // 2])


def largest_cc_2d(mask2d: BoolArray) -> BoolArray:
    """The largest 8-connected component of a 2D mask (ties: lowest label, i.e. raster order)."""
    out = np.zeros(mask2d.shape, dtype=bool)
    found = largest_cc_crop(mask2d)
    if found is not None:
        comp, (y0, x0) = found
        out[y0 : y0 + comp.shape[0], x0 : x0 + comp.shape[1]] = comp
    return out


#: how :func:`largest_cc_crop` breaks ties between components of the largest size
CC_TIES = ("lowest", "argsort")


def largest_cc_crop(
    mask2d: BoolArray, ties: str = "lowest"
) -> tuple[BoolArray, tuple[int, int]] | None:
    """The largest 8-connected component cropped to the mask's bounding box, with the crop's
    (y, x) offset; ``None`` for an empty mask. Works on the crop only (fast on large slices).

    Components are labelled in raster order of their first pixel. Among components of the largest
    size, ``ties="lowest"`` takes the lowest label; ``ties="argsort"`` takes the one that numpy's
    default ``argsort`` of the component sizes puts last (the reference implementation's rule;
    for up to 16 components that is the highest label)."""
    import cc3d

    if ties not in CC_TIES:
        raise ValueError(f"ties must be one of {', '.join(CC_TIES)}, got {ties!r}")

    box = bbox(mask2d)
    if box is None:
        return None
    (y0, x0), (y1, x1) = box
    crop = mask2d[y0:y1, x0:x1]
    # uint8, not bool: cc3d 4.1 mislabels some C-contiguous 2D boolean arrays
    labels, n = cc3d.connected_components(
        np.ascontiguousarray(crop, dtype=np.uint8), connectivity=8, return_N=True
    )
    if n <= 1:
        return np.ascontiguousarray(crop), (y0, x0)
    sizes = np.bincount(labels.ravel())
    if ties == "argsort":
        best = int(np.argsort(sizes[1:])[-1]) + 1
    else:
        sizes[0] = 0
        best = int(np.argmax(sizes))
    return np.asarray(labels == best), (y0, x0)


def largest_cc_point(mask2d: BoolArray, how: str = "com") -> tuple[int, int]:
    """A pixel of the largest component: its centre of mass (``how="com"``) or bounding-box centre
    (``how="bbox"``), snapped to the nearest pixel of the component."""
    found = largest_cc_crop(mask2d)
    if found is None:
        raise ValueError("empty mask has no component")
    comp, (y0, x0) = found
    centre = center_of_mass(comp) if how == "com" else bbox_center(comp)
    y, x = snap(centre, comp)
    return y + y0, x + x0


def rounded_bbox_point(mask2d: BoolArray, origin: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """The key point of a slice as the reference implementation places it, in coordinates shifted
    by ``origin`` (pass the position of ``mask2d`` in the full image to get image coordinates).

    The largest component (size ties: ``ties="argsort"`` of :func:`largest_cc_crop`); the centre
    of its inclusive bounding box, rounded half to even to a pixel; if that pixel is not in the
    component, the component pixel nearest to it (Euclidean distance to the *rounded* centre; ties
    resolved by a ``scipy.spatial.cKDTree`` over the component's pixels in raster order and
    image coordinates, as the reference does)."""
    found = largest_cc_crop(mask2d, ties="argsort")
    if found is None:
        raise ValueError("empty mask has no component")
    comp, (y0, x0) = found
    shift = np.asarray([y0 + origin[0], x0 + origin[1]], dtype=np.int64)
    # round in image coordinates: half to even depends on the parity of the absolute index
    centre = np.rint(np.asarray(bbox_center(comp)) + shift)
    iy, ix = (int(v) for v in centre - shift)
    if 0 <= iy < comp.shape[0] and 0 <= ix < comp.shape[1] and comp[iy, ix]:
        return int(centre[0]), int(centre[1])
    from scipy.spatial import cKDTree

    pix = np.argwhere(comp) + shift
    _, index = cKDTree(pix).query(centre[None, :], k=1)
    py, px = pix[int(index[0])]
    return int(py), int(px)


def largest_cc_per_slice(mask: BoolArray) -> BoolArray:
    """For every axial slice, keep only its largest in-plane 8-connected component (one pass)."""
    labels, n = ndimage.label(mask, structure=_IN_PLANE)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    objects = ndimage.find_objects(labels)
    best = np.zeros(mask.shape[0], dtype=np.int64)  # label id per slice
    best_size = np.zeros(mask.shape[0], dtype=np.int64)
    for lab, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        z = sl[0].start
        if sizes[lab] > best_size[z]:
            best[z], best_size[z] = lab, sizes[lab]
    keep = np.zeros(n + 1, dtype=bool)
    keep[best[best > 0]] = True
    return keep[labels]


def snap(yx: tuple[float, float] | npt.NDArray, mask2d: BoolArray) -> tuple[int, int]:
    """The foreground pixel of ``mask2d`` nearest to ``yx`` (Euclidean; ties: raster order)."""
    y, x = (int(v) for v in np.rint(np.asarray(yx, dtype=float)))
    if 0 <= y < mask2d.shape[0] and 0 <= x < mask2d.shape[1] and mask2d[y, x]:
        return y, x
    pix = np.argwhere(mask2d)
    if pix.size == 0:
        raise ValueError("cannot snap to an empty mask")
    d2 = (pix[:, 0] - float(yx[0])) ** 2 + (pix[:, 1] - float(yx[1])) ** 2
    py, px = pix[int(np.argmin(d2))]
    return int(py), int(px)


def center_of_mass(mask2d: BoolArray) -> tuple[float, float]:
    """Mean (y, x) of the foreground pixels."""
    rows = np.count_nonzero(mask2d, axis=1)
    cols = np.count_nonzero(mask2d, axis=0)
    total = rows.sum()
    if total == 0:
        raise ValueError("empty mask has no centre of mass")
    return float(rows @ np.arange(rows.size) / total), float(cols @ np.arange(cols.size) / total)


def bbox_center(mask2d: BoolArray) -> tuple[float, float]:
    """Centre of the (inclusive) bounding box of a 2D mask, in pixel coordinates."""
    box = bbox(mask2d)
    if box is None:
        raise ValueError("empty mask has no bounding box")
    (y0, x0), (y1, x1) = box
    return (y0 + y1 - 1) / 2.0, (x0 + x1 - 1) / 2.0


@lru_cache(maxsize=16)
def disk(radius: int) -> BoolArray:
    """A digital disk of the given radius (the skimage.morphology.disk footprint)."""
    from skimage.morphology import disk as sk_disk

    d: BoolArray = sk_disk(radius).astype(bool)
    return d


def ring(mask2d: BoolArray, inner: int = 2, outer: int = 3) -> BoolArray:
    """The band just outside an object: dilate by a disk of ``inner`` → A, dilate A by a disk of
    ``outer`` → B, return B ∖ A."""
    a = ndimage.binary_dilation(mask2d, structure=disk(inner))
    b = ndimage.binary_dilation(a, structure=disk(outer))
    return b & ~a


@lru_cache(maxsize=16)
def _offsets(radius: int) -> IntArray:
    d = disk(radius)
    return np.argwhere(d).astype(np.int64) - radius


@lru_cache(maxsize=16)
def _sum_offsets(r1: int, r2: int) -> IntArray:
    """Offsets of the Minkowski sum of two digital disks."""
    a, b = _offsets(r1), _offsets(r2)
    return np.unique((a[:, None, :] + b[None, :, :]).reshape(-1, 2), axis=0)


def slice_boxes(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """Per-slice half-open (y, x) bounding boxes of a 3D mask as (Z, 2) ``lo`` and ``hi`` arrays
    (empty slices get ``lo == hi == 0``), from two projections of the whole stack."""
    rows = np.asarray(mask.any(axis=2))  # (Z, Y)
    cols = np.asarray(mask.any(axis=1))  # (Z, X)
    lo = np.zeros((mask.shape[0], 2), dtype=np.int64)
    hi = np.zeros((mask.shape[0], 2), dtype=np.int64)
    for j, proj in enumerate((rows, cols)):
        has = proj.any(axis=1)
        first = np.argmax(proj, axis=1)
        last = proj.shape[1] - np.argmax(proj[:, ::-1], axis=1)
        lo[has, j], hi[has, j] = first[has], last[has]
    return lo, hi


def sample_foreground(
    mask: BoolArray,
    n: int,
    rng: np.random.Generator,
    lo: npt.ArrayLike | None = None,
    hi: npt.ArrayLike | None = None,
    rounds: int = 4,
) -> IntArray:
    """``n`` foreground indices of ``mask`` (any dimension), uniform without replacement; if fewer
    exist, all of them plus uniform draws with replacement. Returns an (n, ndim) array.

    Uniform proposals inside the bounding box ``[lo, hi)`` (computed if not given) are accepted
    when they hit unseen foreground, which is an exact uniform draw without replacement and
    avoids listing every foreground voxel; when proposals keep missing (a sparse mask), the
    foreground is listed instead.
    """
    if n <= 0:
        return np.zeros((0, mask.ndim), dtype=np.int64)
    if lo is None or hi is None:
        box = bbox(mask)
        if box is None:
            return np.zeros((0, mask.ndim), dtype=np.int64)
        lo, hi = box
    lo_a, hi_a = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    chosen: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    batch = max(16, 4 * n)
    for _ in range(rounds):
        cand = rng.integers(lo_a, hi_a, size=(batch, mask.ndim))
        for row in map(tuple, cand[mask[tuple(cand.T)]].tolist()):
            if row not in seen:
                seen.add(row)
                chosen.append(row)
                if len(chosen) == n:
                    return np.asarray(chosen, dtype=np.int64)
    flat = np.flatnonzero(mask)
    picked = flat[sample_indices(flat.size, n, rng)]
    return np.column_stack(np.unravel_index(picked, mask.shape)).astype(np.int64)


def sample_ring(
    mask2d: BoolArray,
    n: int,
    rng: np.random.Generator,
    inner: int = 2,
    outer: int = 3,
    rounds: int = 8,
) -> IntArray:
    """``n`` pixels of :func:`ring` drawn uniformly without replacement (if the ring has fewer:
    all of them plus draws with replacement), as an (n, 2) array of (y, x).

    The ring is not materialised: uniform proposals over the object's bounding box grown by
    ``inner + outer`` are tested exactly for ring membership with a few lookups each (accepting
    only unseen pixels keeps the draw uniform without replacement). If proposals keep failing (a
    tiny or empty ring), the ring is computed exactly instead.
    """
    if n <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    box = bbox(mask2d)
    if box is None:
        return np.zeros((0, 2), dtype=np.int64)
    grow = inner + outer
    h, w = mask2d.shape
    y0, x0 = max(0, box[0][0] - grow), max(0, box[0][1] - grow)
    y1, x1 = min(h, box[1][0] + grow), min(w, box[1][1] + grow)
    # only the grown box is needed: pad it (outside the image counts as background)
    local = np.zeros((y1 - y0 + 2 * grow, x1 - x0 + 2 * grow), dtype=bool)
    local[grow:-grow, grow:-grow] = mask2d[y0:y1, x0:x1]
    in_a, in_b = _offsets(inner) + grow, _sum_offsets(inner, outer) + grow
    chosen: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    batch = max(64, 16 * n)
    for _ in range(rounds):
        ys = rng.integers(0, y1 - y0, size=batch)
        xs = rng.integers(0, x1 - x0, size=batch)
        a = local[ys[:, None] + in_a[None, :, 0], xs[:, None] + in_a[None, :, 1]].any(axis=1)
        b = local[ys[:, None] + in_b[None, :, 0], xs[:, None] + in_b[None, :, 1]].any(axis=1)
        ok = b & ~a
        for y, x in zip((ys[ok] + y0).tolist(), (xs[ok] + x0).tolist(), strict=True):
            if (y, x) not in seen:
                seen.add((y, x))
                chosen.append((y, x))
                if len(chosen) == n:
                    return np.asarray(chosen, dtype=np.int64)
    pix = np.argwhere(ring(mask2d, inner, outer))
    return pix[sample_indices(len(pix), n, rng)].astype(np.int64)


#: how :func:`key_slices` turns the evenly spread z positions into slice indices
KEY_ROUNDINGS = ("floor", "nearest")


def check_key_rounding(rounding: str) -> str:
    """``rounding`` if it is one of :data:`KEY_ROUNDINGS`, else ``ValueError``."""
    if rounding not in KEY_ROUNDINGS:
        allowed = ", ".join(repr(r) for r in KEY_ROUNDINGS)
        raise ValueError(f"key_rounding must be one of {allowed}, got {rounding!r}")
    return rounding


def key_slices(fg_z: IntArray, k: int, rounding: str = "floor") -> IntArray:
    """``min(k, len(fg_z))`` slices at ``linspace(z_min, z_max)``, each snapped to the nearest
    foreground slice (ties: the lower one; duplicates after snapping are merged).

    ``rounding="floor"`` rounds the linspace values down (the reference implementation's
    ``np.linspace(..., dtype=int)``: 9.5 → 9); pass absolute z indices, since the floor of a
    shifted float linspace is not always the shifted floor. ``"nearest"`` rounds them half to
    even (``np.rint``: 9.5 → 10), the earlier rule."""
    check_key_rounding(rounding)
    if fg_z.size == 0:
        raise ValueError("empty target: no foreground slice")
    k = max(1, min(int(k), int(fg_z.size)))
    spread = np.linspace(fg_z[0], fg_z[-1], k)
    wanted = np.floor(spread) if rounding == "floor" else np.rint(spread)
    nearest = fg_z[np.argmin(np.abs(fg_z[None, :] - wanted[:, None]), axis=1)]
    return np.unique(nearest)


def interpolate_along_z(key_z: IntArray, values: npt.NDArray) -> tuple[IntArray, npt.NDArray]:
    """Linearly interpolate per-key rows of ``values`` (shape (k, m)) over every integer z between
    the lowest and highest key slice. Returns (z values, interpolated (len(z), m) floats)."""
    zs = np.arange(int(key_z.min()), int(key_z.max()) + 1)
    cols = [np.interp(zs, key_z, values[:, j]) for j in range(values.shape[1])]
    return zs, np.stack(cols, axis=1)


def tight_box_2d(mask2d: BoolArray) -> tuple[tuple[int, int], tuple[int, int]]:
    box = bbox(mask2d)
    if box is None:
        raise ValueError("empty mask has no bounding box")
    (y0, x0), (y1, x1) = box
    return (y0, x0), (y1, x1)


def sample_indices(available: int, n: int, rng: np.random.Generator) -> IntArray:
    """``n`` indices into ``range(available)``: uniform without replacement; if fewer are available,
    all of them plus uniform draws with replacement. Empty when nothing is available."""
    if available <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    if available >= n:
        return rng.choice(available, size=n, replace=False).astype(np.int64)
    extra = rng.integers(0, available, size=n - available)
    return np.concatenate([np.arange(available), extra]).astype(np.int64)


def clip_box(
    lo: npt.ArrayLike, hi: npt.ArrayLike, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Clip a half-open box to the image and repair it so that ``lo < hi`` on every axis.

    Returns ``(lo, hi, changed)`` where ``changed`` says whether clipping or repair happened.
    """
    lo_a = np.asarray(lo, dtype=np.int64).copy()
    hi_a = np.asarray(hi, dtype=np.int64).copy()
    size = np.asarray(shape, dtype=np.int64)
    orig = (lo_a.copy(), hi_a.copy())
    swap = lo_a > hi_a
    lo_a[swap], hi_a[swap] = hi_a[swap], lo_a[swap].copy()
    lo_a = np.clip(lo_a, 0, size - 1)
    hi_a = np.clip(hi_a, 1, size)
    same = lo_a >= hi_a
    hi_a[same] = np.minimum(lo_a[same] + 1, size[same])
    lo_a[same] = hi_a[same] - 1
    changed = not (np.array_equal(lo_a, orig[0]) and np.array_equal(hi_a, orig[1]))
    return tuple(int(v) for v in lo_a), tuple(int(v) for v in hi_a), changed


def jitter_box(
    lo: npt.ArrayLike,
    hi: npt.ArrayLike,
    jitter: int,
    rng: np.random.Generator,
    shape: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Add uniform integer noise in ``[-jitter, jitter]`` to every coordinate, then clip and repair
    (see :func:`clip_box`). ``jitter=0`` draws nothing from ``rng``."""
    lo_a = np.asarray(lo, dtype=np.int64)
    hi_a = np.asarray(hi, dtype=np.int64)
    if jitter > 0:
        lo_a = lo_a + rng.integers(-jitter, jitter + 1, size=lo_a.shape)
        hi_a = hi_a + rng.integers(-jitter, jitter + 1, size=hi_a.shape)
    out_lo, out_hi, _ = clip_box(lo_a, hi_a, shape)
    clipped = bool(np.any(lo_a < 0) or np.any(hi_a > np.asarray(shape)) or np.any(lo_a >= hi_a))
    return out_lo, out_hi, clipped
