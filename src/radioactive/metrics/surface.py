"""Surface distances of two 3D masks, computed once per pair; NSD, HD95 and ASSD derive from them.

Definitions follow DeepMind's ``surface-distance`` package (Nikolov et al. 2018, "surface Dice"):

* the surface of a mask is the set of *surfels* — points of the corner lattice (offset by half a
  voxel from the voxel centres) whose 2×2×2 neighbourhood is mixed — each carrying the area, in mm²,
  of its marching-cubes patch under the anisotropic spacing (see :mod:`._surfels`);
* the distance of a surfel to the other surface is the Euclidean distance, in mm, to the nearest
  surfel of the other mask on the same lattice;
* NSD, HD95 and ASSD are surfel-area-weighted statistics of those distances.

Only the bounding box of ``pred ∪ gt`` (plus one lattice plane on each side and a small search
margin) is ever allocated. Distances are exact: each surfel first looks for the nearest surfel of
the other mask among the few hundred nearest lattice offsets (in mm, increasing order); the rare
surfels farther than that are resolved with a k-d tree. Every distance is evaluated as
``sqrt((Δz·sz)² + (Δy·sy)² + (Δx·sx)²)`` in float64, the arithmetic of ``scipy.ndimage``'s exact EDT
used by the reference, so values agree to rounding and ties at the tolerance resolve identically.

Edge cases (also in ``docs/metrics.md``): both masks empty → NaN for every metric; exactly one empty
→ NSD 0, HD95 and ASSD ``inf``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._surfels import surfel_area_table
from ._validation import Spacing, as_mask_pair, as_spacing, as_tolerance, bounding_box

SURFACE_VERSION = "1.0"
"""Version of the surface definitions (surfels, areas, NSD, HD95, ASSD); bump on value changes."""

DEFAULT_TOLERANCE_MM = 2.0
"""Default NSD tolerance in mm (CVPR 2025 interactive challenge)."""

_CHUNK_VOXELS = 1 << 22  # voxels per slab when building neighbourhood codes
_SEARCH_OFFSETS = 400  # lattice offsets searched locally before falling back to a k-d tree


@dataclass(frozen=True, eq=False)
class SurfaceDistances:
    """Distances between the surfels of ``gt`` and ``pred``, sorted, with surfel areas.

    Each direction is sorted by distance, then by area (the order of the reference package).
    Distances are in mm (``inf`` towards an empty mask), areas in mm². Build it with
    :func:`surface_distances`; every surface metric is a method, so one object serves them all.
    """

    distances_gt_to_pred_mm: np.ndarray
    """Distance of each gt surfel to the pred surface (mm), ascending."""
    surfel_areas_gt_mm2: np.ndarray
    """Area of each gt surfel (mm²), in the order of ``distances_gt_to_pred_mm``."""
    distances_pred_to_gt_mm: np.ndarray
    """Distance of each pred surfel to the gt surface (mm), ascending."""
    surfel_areas_pred_mm2: np.ndarray
    """Area of each pred surfel (mm²), in the order of ``distances_pred_to_gt_mm``."""
    spacing_mm: Spacing
    """Voxel spacing (z, y, x) in mm the distances were computed with."""

    def __post_init__(self) -> None:
        for array in (
            self.distances_gt_to_pred_mm,
            self.surfel_areas_gt_mm2,
            self.distances_pred_to_gt_mm,
            self.surfel_areas_pred_mm2,
        ):
            array.setflags(write=False)

    @property
    def gt_empty(self) -> bool:
        """True when ``gt`` has no foreground voxel (hence no surfel)."""
        return self.surfel_areas_gt_mm2.size == 0

    @property
    def pred_empty(self) -> bool:
        """True when ``pred`` has no foreground voxel (hence no surfel)."""
        return self.surfel_areas_pred_mm2.size == 0

    @property
    def gt_area_mm2(self) -> float:
        """Surface area of ``gt`` in mm² (0 when empty)."""
        return float(np.sum(self.surfel_areas_gt_mm2))

    @property
    def pred_area_mm2(self) -> float:
        """Surface area of ``pred`` in mm² (0 when empty)."""
        return float(np.sum(self.surfel_areas_pred_mm2))

    def surface_overlap(self, tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> tuple[float, float]:
        """Fractions (gt, pred) of each surface's area within ``tolerance_mm`` of the other.

        A fraction is NaN when its own surface is empty, 0 when only the other one is.
        """
        tol = as_tolerance(tolerance_mm)
        return (
            _within_fraction(self.distances_gt_to_pred_mm, self.surfel_areas_gt_mm2, tol),
            _within_fraction(self.distances_pred_to_gt_mm, self.surfel_areas_pred_mm2, tol),
        )

    def nsd(self, tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> float:
        """Normalised surface Dice at ``tolerance_mm`` (mm), in [0, 1].

        ``(A_gt(d ≤ τ) + A_pred(d ≤ τ)) / (A_gt + A_pred)`` with ``A`` the surfel area (mm²) and
        ``d`` the distance to the other surface. Both empty → NaN; one empty → 0.
        """
        tol = as_tolerance(tolerance_mm)
        if self.gt_empty and self.pred_empty:
            return math.nan
        d_gt, a_gt = self.distances_gt_to_pred_mm, self.surfel_areas_gt_mm2
        d_pred, a_pred = self.distances_pred_to_gt_mm, self.surfel_areas_pred_mm2
        overlap = np.sum(a_gt[d_gt <= tol]) + np.sum(a_pred[d_pred <= tol])
        return float(overlap / (np.sum(a_gt) + np.sum(a_pred)))

    def hausdorff(self, percent: float = 100.0) -> float:
        """Robust Hausdorff distance (mm): the larger of the two directed ``percent`` percentiles.

        A directed percentile is the distance of the first surfel, in sorted order, at which the
        cumulative area reaches ``percent`` % of the surface (no interpolation). ``percent=100``
        is the Hausdorff distance. Both empty → NaN; one empty → ``inf``.
        """
        fraction = float(percent) / 100.0
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"percent must be within [0, 100], got {percent!r}")
        if self.gt_empty and self.pred_empty:
            return math.nan
        return float(
            max(
                _directed_percentile(
                    self.distances_gt_to_pred_mm, self.surfel_areas_gt_mm2, fraction
                ),
                _directed_percentile(
                    self.distances_pred_to_gt_mm, self.surfel_areas_pred_mm2, fraction
                ),
            )
        )

    def hd95(self) -> float:
        """95th-percentile Hausdorff distance in mm (see :meth:`hausdorff`)."""
        return self.hausdorff(95.0)

    def average_distances(self) -> tuple[float, float]:
        """Area-weighted mean distances (gt → pred, pred → gt) in mm.

        A direction is NaN when its source surface is empty and ``inf`` when only the target is.
        """
        return (
            _weighted_mean(self.distances_gt_to_pred_mm, self.surfel_areas_gt_mm2),
            _weighted_mean(self.distances_pred_to_gt_mm, self.surfel_areas_pred_mm2),
        )

    def assd(self) -> float:
        """Average symmetric surface distance (mm): area-weighted mean over the surfels of both.

        ``(Σ d·a over gt surfels + Σ d·a over pred surfels) / (A_gt + A_pred)``. Both empty →
        NaN; one empty → ``inf``.
        """
        if self.gt_empty and self.pred_empty:
            return math.nan
        if self.gt_empty or self.pred_empty:
            return math.inf
        weighted = np.sum(self.distances_gt_to_pred_mm * self.surfel_areas_gt_mm2) + np.sum(
            self.distances_pred_to_gt_mm * self.surfel_areas_pred_mm2
        )
        return float(
            weighted / (np.sum(self.surfel_areas_gt_mm2) + np.sum(self.surfel_areas_pred_mm2))
        )


def _within_fraction(distances: np.ndarray, areas: np.ndarray, tol: float) -> float:
    if areas.size == 0:
        return math.nan
    return float(np.sum(areas[distances <= tol]) / np.sum(areas))


def _directed_percentile(distances: np.ndarray, areas: np.ndarray, fraction: float) -> float:
    if distances.size == 0:
        return math.inf
    cumulative = np.cumsum(areas) / np.sum(areas)
    index = int(np.searchsorted(cumulative, fraction))
    return float(distances[min(index, distances.size - 1)])


def _weighted_mean(distances: np.ndarray, areas: np.ndarray) -> float:
    if areas.size == 0:
        return math.nan
    return float(np.sum(distances * areas) / np.sum(areas))


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float]
) -> SurfaceDistances:
    """Compute the surfel distances of a (pred, gt) pair once; derive NSD, HD95, ASSD from them.

    Args:
        pred: predicted mask, 3D (z, y, x), bool or integer (non-zero = foreground).
        gt: reference mask, same shape.
        spacing_mm: voxel size (z, y, x) in mm, finite and positive.

    Returns:
        A :class:`SurfaceDistances`. Empty masks give empty arrays; distances towards an empty
        mask are ``inf``.

    Raises:
        ValueError: masks not 3D, not bool/integer, of different shapes, or a bad spacing.
    """
    pred, gt = as_mask_pair(pred, gt)
    spacing = as_spacing(spacing_mm)
    box = bounding_box(pred, gt)
    if box is None:
        d_gt, a_gt, d_pred, a_pred = (np.empty(0, dtype=np.float64) for _ in range(4))
        return SurfaceDistances(d_gt, a_gt, d_pred, a_pred, spacing)
    return surface_distances_in_box(pred[box], gt[box], spacing)


def surface_distances_in_box(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: Spacing
) -> SurfaceDistances:
    """:func:`surface_distances` on masks already cropped to (a box holding) their foregrounds.

    The masks are not validated here (the crop must hold all foreground of both); the spacing is.
    """
    spacing_mm = as_spacing(spacing_mm)
    offsets, offset_distances = _search_offsets(spacing_mm)
    margin = tuple(int(m) for m in np.abs(offsets).max(axis=0))
    lattice = tuple(n + 1 for n in gt.shape)
    padded = tuple(n + 2 * m for n, m in zip(lattice, margin, strict=True))
    table = surfel_area_table(spacing_mm)

    border_gt, index_gt, codes_gt = _surfels(gt, margin, padded)
    border_pred, index_pred, codes_pred = _surfels(pred, margin, padded)
    areas_gt = table[codes_gt]
    areas_pred = table[codes_pred]
    del codes_gt, codes_pred

    strides = np.array([padded[1] * padded[2], padded[2], 1], dtype=np.int64)
    flat_offsets = offsets @ strides
    d_gt = _directed_distances(
        index_gt, border_pred, index_pred, flat_offsets, offset_distances, padded, spacing_mm
    )
    del border_pred
    d_pred = _directed_distances(
        index_pred, border_gt, index_gt, flat_offsets, offset_distances, padded, spacing_mm
    )
    del border_gt

    order = np.lexsort((areas_gt, d_gt))
    order_pred = np.lexsort((areas_pred, d_pred))
    return SurfaceDistances(
        distances_gt_to_pred_mm=d_gt[order],
        surfel_areas_gt_mm2=areas_gt[order],
        distances_pred_to_gt_mm=d_pred[order_pred],
        surfel_areas_pred_mm2=areas_pred[order_pred],
        spacing_mm=spacing_mm,
    )


def _surfels(
    mask: np.ndarray, margin: tuple[int, ...], padded: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surfels of ``mask`` on its corner lattice, embedded in a zero margin.

    The lattice point ``g`` (``0 <= g <= shape``) is the corner shared by voxels ``g - 1`` and
    ``g`` along each axis; its code has bit ``7 - (4·o0 + 2·o1 + o2)`` set when voxel
    ``g - 1 + o`` is foreground. Returns ``(border, index, codes)``: a bool array of shape
    ``padded`` marking surfels (lattice point ``g`` at ``g + margin``), the flat indices of the
    surfels in it (ascending) and their codes. Works slab by slab along axis 0, so the only
    full-size allocation is ``border`` (one byte per lattice point).
    """
    n0, n1, n2 = mask.shape
    m0, m1, m2 = margin
    l1, l2 = n1 + 1, n2 + 1
    border = np.zeros(padded, dtype=np.bool_)
    stride0, stride1 = padded[1] * padded[2], padded[2]
    step = max(1, _CHUNK_VOXELS // ((n1 + 2) * (n2 + 2)))
    indices, codes = [], []
    for g0 in range(0, n0 + 1, step):
        g1 = min(n0 + 1, g0 + step)
        # voxel planes g0 - 1 .. g1 - 1 (zero outside the mask) into a padded uint8 slab
        slab = np.zeros((g1 - g0 + 1, n1 + 2, n2 + 2), dtype=np.uint8)
        lo, hi = max(g0 - 1, 0), min(g1, n0)
        if hi > lo:
            target = slab.view(np.bool_)[lo - g0 + 1 : hi - g0 + 1, 1:-1, 1:-1]
            source = mask[lo:hi]
            if source.dtype == np.bool_:
                target[...] = source
            else:
                np.not_equal(source, 0, out=target)
        pairs = np.left_shift(slab[:, :, :-1], 1)
        pairs |= slab[:, :, 1:]
        del slab
        quads = np.left_shift(pairs[:, :-1], 2)
        quads |= pairs[:, 1:]
        del pairs
        code = np.left_shift(quads[:-1], 4)
        code |= quads[1:]
        del quads
        code -= 1  # 0 and 255 become 255 and 254: surfels are the codes now below 254
        is_surfel = code < 254
        border[m0 + g0 : m0 + g1, m1 : m1 + l1, m2 : m2 + l2] = is_surfel
        i0, i1, i2 = np.nonzero(is_surfel)
        codes.append(code[i0, i1, i2] + 1)
        indices.append((i0 + (m0 + g0)) * stride0 + (i1 + m1) * stride1 + (i2 + m2))
    return border, np.concatenate(indices), np.concatenate(codes)


def _distance_mm(delta: np.ndarray, spacing_mm: Spacing) -> np.ndarray:
    """``sqrt((Δ0·s0)² + (Δ1·s1)² + (Δ2·s2)²)`` for integer offsets ``delta`` of shape (n, 3)."""
    scaled = delta.astype(np.float64) * np.asarray(spacing_mm, dtype=np.float64)
    scaled *= scaled
    return np.sqrt((scaled[:, 0] + scaled[:, 1]) + scaled[:, 2])


@functools.lru_cache(maxsize=64)
def _search_offsets(spacing_mm: Spacing) -> tuple[np.ndarray, np.ndarray]:
    """Integer lattice offsets within a radius holding about ``_SEARCH_OFFSETS`` of them.

    Returns ``(offsets, distances_mm)`` sorted by distance (ties in a fixed order); the set holds
    *every* offset up to its largest distance, so a first hit in this order is the nearest.
    """
    volume = spacing_mm[0] * spacing_mm[1] * spacing_mm[2]
    radius = (_SEARCH_OFFSETS * volume * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    reach = [int(radius // s) for s in spacing_mm]
    grids = np.meshgrid(*(np.arange(-r, r + 1) for r in reach), indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
    distances = _distance_mm(offsets, spacing_mm)
    order = np.lexsort((offsets[:, 2], offsets[:, 1], offsets[:, 0], distances))
    offsets, distances = offsets[order], distances[order]
    # keep about _SEARCH_OFFSETS of them (strong anisotropy makes the ball flat and crowded),
    # always including every offset as near as the farthest one kept
    limit = min(radius, float(distances[min(_SEARCH_OFFSETS, distances.size) - 1]))
    keep = distances <= limit
    offsets, distances = offsets[keep], distances[keep]
    offsets.setflags(write=False)
    distances.setflags(write=False)
    return offsets, distances


def _directed_distances(
    query: np.ndarray,
    target_border: np.ndarray,
    target_index: np.ndarray,
    flat_offsets: np.ndarray,
    offset_distances: np.ndarray,
    padded: tuple[int, ...],
    spacing_mm: Spacing,
) -> np.ndarray:
    """Distance (mm) from each query surfel (flat index) to the nearest target surfel."""
    result = np.full(query.size, np.inf)
    if query.size == 0 or target_index.size == 0:
        return result
    lookup = target_border.reshape(-1)
    pending = np.arange(query.size)
    current = query
    starts = np.flatnonzero(np.r_[True, offset_distances[1:] != offset_distances[:-1]])
    ends = np.r_[starts[1:], offset_distances.size]
    for start, end in zip(starts, ends, strict=True):
        hit = lookup[current + flat_offsets[start]]
        for k in range(start + 1, end):
            hit |= lookup[current + flat_offsets[k]]
        if hit.any():
            result[pending[hit]] = offset_distances[start]
            missed = ~hit
            pending, current = pending[missed], current[missed]
            if pending.size == 0:
                return result
    result[pending] = _nearest_by_tree(current, target_index, padded, spacing_mm)
    return result


def _nearest_by_tree(
    query: np.ndarray, target_index: np.ndarray, padded: tuple[int, ...], spacing_mm: Spacing
) -> np.ndarray:
    """Exact nearest distances (mm) for the surfels beyond the local search radius."""
    from scipy.spatial import cKDTree

    query_zyx = np.stack(np.unravel_index(query, padded), axis=1)
    target_zyx = np.stack(np.unravel_index(target_index, padded), axis=1)
    scale = np.asarray(spacing_mm, dtype=np.float64)
    # unbalanced trees query much faster for queries far from a dense surface
    tree = cKDTree(target_zyx * scale, balanced_tree=False, compact_nodes=False)
    _, nearest = tree.query(query_zyx * scale, workers=-1)
    return _distance_mm(target_zyx[nearest] - query_zyx, spacing_mm)


def nsd(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_mm: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
) -> float:
    """Normalised surface Dice (surface Dice at tolerance) of DeepMind's ``surface-distance``.

    Args:
        pred: predicted mask, 3D (z, y, x), bool or integer (non-zero = foreground).
        gt: reference mask, same shape.
        spacing_mm: voxel size (z, y, x) in mm.
        tolerance_mm: a surfel counts as matched when the other surface is at most this far (mm).

    Returns:
        A float in [0, 1]: the surfel area (mm²) of both surfaces lying within ``tolerance_mm`` of
        the other surface, over the total surfel area. Both masks empty → NaN; exactly one empty →
        0.0.

    >>> import numpy as np
    >>> gt = np.zeros((6, 6, 6), bool); gt[1:4, 1:4, 1:4] = True
    >>> pred = np.roll(gt, 1, axis=0)  # shifted by one 2 mm slice
    >>> nsd(pred, gt, (2.0, 1.0, 1.0), tolerance_mm=2.0)
    1.0
    """
    return surface_distances(pred, gt, spacing_mm).nsd(tolerance_mm)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm (surfel-area weighted).

    The larger of the two directed 95th percentiles, each the distance at which the cumulative
    surfel area (sorted by distance) first reaches 95 % — no interpolation, as in
    ``surface-distance``'s ``compute_robust_hausdorff``. Both empty → NaN; one empty → ``inf``.
    Arguments as in :func:`nsd`.
    """
    return surface_distances(pred, gt, spacing_mm).hd95()


def assd(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """Average symmetric surface distance in mm (surfel-area-weighted mean over both surfaces).

    Both empty → NaN; one empty → ``inf``. Arguments as in :func:`nsd`.
    """
    return surface_distances(pred, gt, spacing_mm).assd()
