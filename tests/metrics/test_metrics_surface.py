"""Surface metrics on masks whose answers are computable by hand, edge cases and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radioactive.metrics import (
    SurfaceDistances,
    assd,
    hd95,
    nsd,
    score_pair,
    surface_distances,
)
from radioactive.metrics._surfels import surfel_area_table


def corner_area(s):
    """Area of the single-voxel-corner triangle: vertices at half a voxel along each axis."""
    s0, s1, s2 = s
    return math.sqrt((s0 * s1) ** 2 + (s0 * s2) ** 2 + (s1 * s2) ** 2) / 8


def edge_area(s, axis):
    """Area of the patch on a box edge parallel to ``axis``: a rectangle s_axis × half-diagonal."""
    j, k = (a for a in range(3) if a != axis)
    return s[axis] * math.hypot(s[j], s[k]) / 2


def face_area(s, axis):
    """Area of the patch on a box face perpendicular to ``axis``."""
    j, k = (a for a in range(3) if a != axis)
    return s[j] * s[k]


def box_surface_area(n, s):
    """Surfel area of an n0×n1×n2-voxel box: face, edge and corner lattice points."""
    total = 8 * corner_area(s)
    for axis in range(3):
        j, k = (a for a in range(3) if a != axis)
        total += 2 * (n[j] - 1) * (n[k] - 1) * face_area(s, axis)
        total += 4 * (n[axis] - 1) * edge_area(s, axis)
    return total


# --- two voxels -------------------------------------------------------------------------------


def test_single_voxel_has_eight_corner_surfels():
    spacing = (3.0, 0.5, 2.0)
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    sd = surface_distances(mask, mask, spacing)
    assert sd.surfel_areas_gt_mm2.size == 8
    np.testing.assert_allclose(sd.surfel_areas_gt_mm2, corner_area(spacing), rtol=1e-12)
    assert np.all(sd.distances_gt_to_pred_mm == 0)
    assert sd.nsd(0.0) == 1.0 and sd.hd95() == 0.0 and sd.assd() == 0.0


def test_two_adjacent_voxels_2mm_apart():
    # centres 2 mm apart along x (x spacing 2 mm): the shared face's 4 corners are at 0 mm,
    # the 4 far corners at 2 mm from the other voxel's surface.
    spacing = (3.0, 0.5, 2.0)
    gt = np.zeros((3, 3, 4), bool)
    pred = np.zeros_like(gt)
    gt[1, 1, 1] = True
    pred[1, 1, 2] = True
    sd = surface_distances(pred, gt, spacing)
    np.testing.assert_array_equal(sd.distances_gt_to_pred_mm, [0, 0, 0, 0, 2, 2, 2, 2])
    np.testing.assert_array_equal(sd.distances_pred_to_gt_mm, [0, 0, 0, 0, 2, 2, 2, 2])
    assert sd.nsd(1.0) == pytest.approx(0.5)
    assert sd.nsd(2.0) == 1.0
    assert sd.hd95() == 2.0
    assert sd.hausdorff(100) == 2.0
    assert sd.assd() == pytest.approx(1.0)


def test_two_voxels_2mm_apart_with_a_gap():
    # z spacing 1 mm, one empty slice between: corners 1 mm and 2 mm from the other surface.
    spacing = (1.0, 0.7, 0.9)
    gt = np.zeros((5, 3, 3), bool)
    pred = np.zeros_like(gt)
    gt[1, 1, 1] = True
    pred[3, 1, 1] = True
    assert nsd(pred, gt, spacing, tolerance_mm=1.0) == pytest.approx(0.5)
    assert nsd(pred, gt, spacing, tolerance_mm=0.99) == 0.0
    assert nsd(pred, gt, spacing, tolerance_mm=2.0) == 1.0
    assert hd95(pred, gt, spacing) == 2.0
    assert assd(pred, gt, spacing) == pytest.approx(1.5)


# --- a box shifted by k voxels ------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_box_shifted_by_k_voxels_anisotropic(axis, k):
    spacing_along = (2.5, 0.8, 1.3)  # spacing with the shift axis first
    n_along = (7, 5, 6)  # box size with the shift axis first
    gt = np.zeros((12, 9, 10), bool)
    gt[1 : 1 + n_along[0], 2 : 2 + n_along[1], 2 : 2 + n_along[2]] = True
    pred = np.roll(gt, k, axis=0)
    order = {0: (0, 1, 2), 1: (1, 0, 2), 2: (1, 2, 0)}[axis]  # move the shift axis to `axis`
    gt_a, pred_a = gt.transpose(order), pred.transpose(order)
    spacing = tuple(spacing_along[order[i]] for i in range(3))
    s, n = spacing_along, n_along

    sd = surface_distances(pred_a, gt_a, spacing)
    total = box_surface_area(n, s)
    assert sd.gt_area_mm2 == pytest.approx(total, rel=1e-12)
    assert sd.pred_area_mm2 == pytest.approx(total, rel=1e-12)

    # Hausdorff (and HD95: the far face holds > 5 % of the area) is the shift in mm
    assert sd.hausdorff(100) == pytest.approx(k * s[0], rel=1e-12)
    assert sd.hd95() == pytest.approx(k * s[0], rel=1e-12)
    assert sd.nsd(k * s[0]) == 1.0

    # below the smallest non-zero distance only the shared lateral band counts
    lateral = 2 * (n[2] - 1) * s[0] * s[2] + 2 * (n[1] - 1) * s[0] * s[1] + 4 * edge_area(s, 0)
    rim = 2 * (n[2] - 1) * edge_area(s, 2) + 2 * (n[1] - 1) * edge_area(s, 1) + 4 * corner_area(s)
    shared = (n[0] - k) * lateral + rim
    assert sd.nsd(0.5 * min(s)) == pytest.approx(shared / total, rel=1e-12)
    assert sd.surface_overlap(0.5 * min(s)) == pytest.approx((shared / total,) * 2, rel=1e-12)


def test_shift_distances_scale_with_isotropic_spacing():
    rng = np.random.default_rng(3)
    gt = rng.random((8, 9, 10)) < 0.4
    pred = rng.random((8, 9, 10)) < 0.4
    one = surface_distances(pred, gt, (1.0, 1.0, 1.0))
    three = surface_distances(pred, gt, (3.0, 3.0, 3.0))
    np.testing.assert_allclose(three.distances_gt_to_pred_mm, 3 * one.distances_gt_to_pred_mm)
    np.testing.assert_allclose(three.surfel_areas_pred_mm2, 9 * one.surfel_areas_pred_mm2)
    assert three.hd95() == pytest.approx(3 * one.hd95())
    assert three.nsd(3.0) == pytest.approx(one.nsd(1.0))


# --- spheres of known radius --------------------------------------------------------------------


def sphere(radius_mm, spacing, half_extent_mm):
    n = [math.ceil(half_extent_mm / s) for s in spacing]
    z, y, x = np.ogrid[-n[0] : n[0] + 1, -n[1] : n[1] + 1, -n[2] : n[2] + 1]
    r = np.sqrt((z * spacing[0]) ** 2 + (y * spacing[1]) ** 2 + (x * spacing[2]) ** 2)
    return r <= radius_mm


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.7, 0.9)])
def test_concentric_spheres(spacing):
    radius, gap = 12.0, 2.0
    gt = sphere(radius, spacing, radius + gap + 3)
    pred = sphere(radius + gap, spacing, radius + gap + 3)
    sd = surface_distances(pred, gt, spacing)
    # marching-cubes patches of a voxelised sphere overestimate its area by a few percent
    assert 1.0 < sd.gt_area_mm2 / (4 * math.pi * radius**2) < 1.15
    assert 1.0 < sd.pred_area_mm2 / (4 * math.pi * (radius + gap) ** 2) < 1.15
    # surfaces lie `gap` mm apart, up to the voxelisation (at most half a voxel on each)
    assert abs(sd.assd() - gap) <= max(spacing) / 2
    assert abs(sd.hd95() - gap) <= max(spacing) / 2
    assert sd.nsd(gap + max(spacing)) == 1.0
    assert sd.nsd(gap / 4) < 0.5
    # swapping pred and gt swaps the directions and leaves the symmetric metrics unchanged
    swapped = surface_distances(gt, pred, spacing)
    np.testing.assert_array_equal(swapped.distances_gt_to_pred_mm, sd.distances_pred_to_gt_mm)
    assert swapped.nsd(1.0) == sd.nsd(1.0)
    assert swapped.hd95() == sd.hd95()
    assert swapped.assd() == pytest.approx(sd.assd(), rel=1e-12)


def test_far_apart_masks_use_the_exact_fallback():
    # distances beyond the local search radius (k-d tree path) are still exact
    spacing = (1.5, 0.8, 0.8)
    gt = np.zeros((30, 60, 60), bool)
    pred = np.zeros_like(gt)
    gt[2:5, 3:7, 3:9] = True
    pred[20:24, 40:50, 45:52] = True
    sd = surface_distances(pred, gt, spacing)
    # nearest corners: gt's lattice corner (5, 7, 9) and pred's (20, 40, 45)
    expected = math.sqrt((15 * 1.5) ** 2 + (33 * 0.8) ** 2 + (36 * 0.8) ** 2)
    assert sd.distances_gt_to_pred_mm[0] == pytest.approx(expected, rel=1e-12)
    assert sd.nsd(10.0) == 0.0


# --- empty masks --------------------------------------------------------------------------------


def test_both_empty_is_nan_everywhere():
    empty = np.zeros((4, 5, 6), bool)
    sd = surface_distances(empty, empty, (1.0, 1.0, 1.0))
    assert sd.gt_empty and sd.pred_empty
    assert math.isnan(sd.nsd(2.0))
    assert math.isnan(sd.hd95())
    assert math.isnan(sd.assd())
    assert all(math.isnan(v) for v in sd.surface_overlap(2.0))
    assert all(math.isnan(v) for v in score_pair(empty, empty, (1.0, 1.0, 1.0)).values())


@pytest.mark.parametrize("empty_side", ["pred", "gt"])
def test_one_empty_mask(empty_side):
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 1:4, 2:5] = True
    empty = np.zeros_like(mask)
    pred, gt = (empty, mask) if empty_side == "pred" else (mask, empty)
    sd = surface_distances(pred, gt, (2.0, 1.0, 1.0))
    assert sd.nsd(2.0) == 0.0
    assert sd.hd95() == math.inf
    assert sd.hausdorff(100) == math.inf
    assert sd.assd() == math.inf
    scores = score_pair(pred, gt, (2.0, 1.0, 1.0))
    assert scores == {"dice": 0.0, "nsd": 0.0, "hd95_mm": math.inf, "assd_mm": math.inf}
    directed = sd.average_distances()
    assert math.isnan(directed[0 if empty_side == "gt" else 1])
    assert directed[1 if empty_side == "gt" else 0] == math.inf


def test_empty_mask_conventions_against_reference(reference, monkeypatch):
    """Where ours differs from surface-distance on empty masks, on purpose (docs/metrics.md).

    surface-distance 0.1 still uses ``np.Inf`` / ``np.NaN`` (removed in numpy 2), so it cannot
    run on an empty mask as released; with the aliases restored its conventions are: one empty →
    NSD 0, HD95 inf, directed averages (nan, inf) — like ours; both empty → NSD nan (0/0) like
    ours but HD95 ``inf`` where we return NaN (no surface on either side: nothing to measure).
    """
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 1:4, 2:5] = True
    empty = np.zeros_like(mask)
    spacing = (2.0, 1.0, 1.0)

    ref = reference(empty, mask, spacing)
    ours = surface_distances(empty, mask, spacing)
    assert ref["nsd"] == ours.nsd(2.0) == 0.0
    assert ref["hd95"] == ours.hd95() == math.inf
    assert ref["average"][0] == math.inf and math.isnan(ref["average"][1])
    assert ours.average_distances()[0] == math.inf and math.isnan(ours.average_distances()[1])

    ref = reference(empty, empty, spacing)
    ours = surface_distances(empty, empty, spacing)
    assert math.isnan(ref["nsd"]) and math.isnan(ours.nsd(2.0))
    assert ref["hd95"] == math.inf  # the reference's convention
    assert math.isnan(ours.hd95())  # ours: undefined, excluded from means and counted


# --- input checks -------------------------------------------------------------------------------


def test_integer_masks_equal_bool_masks():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, (6, 7, 8)).astype(np.int16)
    pred = rng.integers(0, 2, (6, 7, 8)).astype(np.uint8)
    spacing = (2.0, 0.5, 0.75)
    a = surface_distances(pred, gt, spacing)
    b = surface_distances(pred != 0, gt != 0, spacing)
    np.testing.assert_array_equal(a.distances_gt_to_pred_mm, b.distances_gt_to_pred_mm)
    np.testing.assert_array_equal(a.surfel_areas_pred_mm2, b.surfel_areas_pred_mm2)


def test_mask_touching_the_volume_border():
    full = np.ones((3, 4, 5), bool)
    sd = surface_distances(full, full, (1.0, 2.0, 3.0))
    assert sd.gt_area_mm2 == pytest.approx(box_surface_area((3, 4, 5), (1.0, 2.0, 3.0)))
    assert sd.nsd(0.0) == 1.0


@pytest.mark.parametrize(
    ("pred", "gt", "spacing", "message"),
    [
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 6), bool), (1, 1, 1), "same shape"),
        (np.zeros((4, 5), bool), np.zeros((4, 5), bool), (1, 1, 1), "3D"),
        (np.zeros((2, 3, 4, 5), bool), np.zeros((2, 3, 4, 5), bool), (1, 1, 1), "3D"),
        (np.zeros((3, 4, 5)), np.zeros((3, 4, 5), bool), (1, 1, 1), "dtype float64"),
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool), (1, 0, 1), "positive"),
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool), (1, -2, 1), "positive"),
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool), (1, math.nan, 1), "finite"),
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool), (1, 1), "3 values"),
        (np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool), 1.0, "sequence"),
    ],
)
def test_bad_input_raises_a_clear_value_error(pred, gt, spacing, message):
    for function in (surface_distances, hd95, assd, nsd, score_pair):
        with pytest.raises(ValueError, match=message):
            function(pred, gt, spacing)


def test_bad_tolerance_and_percent():
    mask = np.ones((2, 2, 2), bool)
    sd = surface_distances(mask, mask, (1, 1, 1))
    with pytest.raises(ValueError, match="tolerance_mm"):
        sd.nsd(-1.0)
    with pytest.raises(ValueError, match="percent"):
        sd.hausdorff(101)


def test_result_is_sorted_and_immutable_table():
    rng = np.random.default_rng(1)
    sd = surface_distances(rng.random((6, 6, 6)) < 0.5, rng.random((6, 6, 6)) < 0.5, (1, 2, 3))
    assert isinstance(sd, SurfaceDistances)
    assert np.all(np.diff(sd.distances_gt_to_pred_mm) >= 0)
    assert np.all(np.diff(sd.distances_pred_to_gt_mm) >= 0)
    with pytest.raises(ValueError):
        sd.distances_gt_to_pred_mm[0] = 1.0
    table = surfel_area_table((1.0, 2.0, 3.0))
    assert table[0] == table[255] == 0.0
    with pytest.raises(ValueError):
        table[1] = 0.0
