"""Agreement with DeepMind's ``surface-distance`` on random shapes and on the demo suite's masks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from radioactive.metrics import dice, score_pair, surface_distances
from radioactive.metrics._surfels import surfel_area_table

REL = 1e-6


def assert_agrees(pred, gt, spacing, tolerance_mm, reference):
    ref = reference(pred, gt, spacing, tolerance_mm)
    ours = surface_distances(pred, gt, spacing)
    raw = ref["raw"]
    # same surfels with the same distances and areas (to rounding). Both sides are sorted by
    # (distance, area); distances equal up to an ulp may sort the other way, so compare in an
    # order that rounds the distances first.
    for distances, areas, prefix in [
        (ours.distances_gt_to_pred_mm, ours.surfel_areas_gt_mm2, "gt"),
        (ours.distances_pred_to_gt_mm, ours.surfel_areas_pred_mm2, "pred"),
    ]:
        other = "pred" if prefix == "gt" else "gt"
        ref_distances = raw[f"distances_{prefix}_to_{other}"]
        ref_areas = raw[f"surfel_areas_{prefix}"]
        assert distances.shape == ref_distances.shape, prefix
        np.testing.assert_allclose(distances, ref_distances, rtol=1e-12, atol=1e-12)
        mine = np.lexsort((areas, np.round(distances, 9)))
        theirs = np.lexsort((ref_areas, np.round(ref_distances, 9)))
        np.testing.assert_allclose(areas[mine], ref_areas[theirs], rtol=1e-12, atol=1e-12)
    assert math.isclose(ours.nsd(tolerance_mm), ref["nsd"], rel_tol=REL, abs_tol=1e-12)
    assert math.isclose(ours.hd95(), ref["hd95"], rel_tol=REL, abs_tol=1e-12)
    assert math.isclose(ours.hausdorff(100), ref["hausdorff"], rel_tol=REL, abs_tol=1e-12)
    assert math.isclose(ours.assd(), ref["assd"], rel_tol=REL, abs_tol=1e-12)
    assert math.isclose(dice(pred, gt), ref["dice"], rel_tol=1e-12)
    scores = score_pair(pred, gt, spacing, tolerance_mm)
    assert scores["nsd"] == ours.nsd(tolerance_mm)
    assert scores["hd95_mm"] == ours.hd95()


# --- the surfel area table ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.tuples(*[st.floats(0.05, 10.0, allow_nan=False)] * 3))
def test_surfel_area_table_matches_reference(spacing):
    lookup_tables = pytest.importorskip("surface_distance.lookup_tables")
    expected = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    np.testing.assert_allclose(surfel_area_table(spacing), expected, rtol=1e-13, atol=0)


# --- random shapes ------------------------------------------------------------------------------

spacings = st.tuples(*[st.floats(0.3, 4.0).map(lambda v: round(v, 3))] * 3)


@st.composite
def mask_pairs(draw):
    """Blobs, noise, boxes and far-apart pieces of 2–18 voxels a side, with a derived prediction."""
    shape = tuple(draw(st.integers(2, 18)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "blob", "box", "perturbed"]))
    if kind == "noise":
        gt = rng.random(shape) < draw(st.floats(0.05, 0.9))
        pred = rng.random(shape) < draw(st.floats(0.05, 0.9))
    elif kind == "blob":
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
        gt = field > np.quantile(field, 0.6)
        pred = field > np.quantile(field, draw(st.floats(0.3, 0.9)))
    elif kind == "box":
        gt = np.zeros(shape, bool)
        pred = np.zeros(shape, bool)
        for mask in (gt, pred):
            lo = [int(rng.integers(0, n)) for n in shape]
            hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, shape, strict=True)]
            mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    else:  # a gt blob and a dilated, eroded or shifted copy
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
        gt = field > 0.0
        op = draw(st.sampled_from(["dilate", "erode", "shift"]))
        if op == "dilate":
            pred = ndimage.binary_dilation(gt)
        elif op == "erode":
            pred = ndimage.binary_erosion(gt)
        else:
            pred = np.roll(gt, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 3)))
    return pred, gt


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mask_pairs(), spacings, st.floats(0.0, 6.0))
def test_random_shapes_agree_with_reference(reference, pair, spacing, tolerance_mm):
    pred, gt = pair
    if not pred.any() or not gt.any():
        return  # empty masks: see test_empty_mask_conventions_against_reference
    assert_agrees(pred, gt, spacing, tolerance_mm, reference)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), spacings)
def test_far_apart_shapes_agree_with_reference(reference, seed, spacing):
    # pieces tens of voxels apart exercise the exact k-d tree fallback
    rng = np.random.default_rng(seed)
    gt = np.zeros((24, 40, 40), bool)
    pred = np.zeros_like(gt)
    gt[1:6, 2:10, 3:12] = rng.random((5, 8, 9)) < 0.7
    pred[15:22, 25:38, 20:37] = rng.random((7, 13, 17)) < 0.7
    pred[2:4, 2:5, 30:33] = True
    assert_agrees(pred, gt, spacing, 3.0, reference)


# --- the demo suite's real masks ----------------------------------------------------------------


def _perturbations(mask: np.ndarray):
    yield "dilated", ndimage.binary_dilation(mask)
    yield "eroded", ndimage.binary_erosion(mask)
    yield "shifted", np.roll(mask, (1, -2, 1), axis=(0, 1, 2))


@pytest.mark.registry
def test_demo_masks_agree_with_reference(demo_suite: Path, reference):
    nib = pytest.importorskip("nibabel")
    label_files = sorted(demo_suite.glob("*/labelsTr/*.nii.gz"))
    assert label_files, f"no label maps under {demo_suite}"
    checked = 0
    for path in label_files:
        image = nib.load(str(path))
        labels = np.asarray(image.dataobj).transpose(2, 1, 0)
        spacing = tuple(float(z) for z in image.header.get_zooms()[:3][::-1])
        values = [int(v) for v in np.unique(labels) if v != 0][:2]  # two targets per file
        for value in values:
            gt = labels == value
            # perturb inside a margin around the target, then embed in the full-size volume
            box = tuple(slice(max(int(i.min()) - 4, 0), int(i.max()) + 5) for i in np.nonzero(gt))
            for _, perturbed in _perturbations(gt[box]):
                pred = np.zeros_like(gt)
                pred[box] = perturbed
                if pred.any():
                    assert_agrees(pred, gt, spacing, 2.0, reference)
                    checked += 1
    assert checked >= 10
