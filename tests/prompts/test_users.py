"""Simulated correcting users (PROTOCOL §4): hand-computable cases, reproducibility, properties."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from radioactive.prompts import users as U
from radioactive.prompts.base import USERS, describe
from radioactive.prompts.cost import DEFAULT_EFFORT, make_interaction
from radioactive.prompts.types import Box2D, Box3D, Interaction, Point, Scribble

ALL = (
    U.ScribbleUser,
    U.RandomErrorPerSliceUser,
    U.RandomError3DUser,
    U.CenterOfLargestErrorUser,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def boxes_initial(target: np.ndarray) -> Interaction:
    """A box_per_slice-like initial interaction: a tight 2D box on every FG slice."""
    boxes = []
    for z in np.flatnonzero(target.any(axis=(1, 2))):
        ys, xs = np.nonzero(target[z])
        boxes.append(Box2D(int(z), (ys.min(), xs.min()), (ys.max() + 1, xs.max() + 1)))
    return make_interaction(boxes, boxes, target, "test_boxes")


def points_initial(target: np.ndarray, *zyx: tuple[int, int, int]) -> Interaction:
    pts = [Point(p, positive=bool(target[p])) for p in zyx]
    return make_interaction(pts, pts, target, "test_points")


def block(shape, lo, hi) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return m


def voxels_of(inter: Interaction) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for p in inter.prompts:
        out.extend(p.voxels if isinstance(p, Scribble) else [p.zyx])
    return out


# ------------------------------------------------------------------------------------------
# registry and parameters
# ------------------------------------------------------------------------------------------


def test_registry_and_metadata():
    for cls in ALL:
        assert USERS[cls.name] is cls
        d = describe(cls)
        # center_of_largest_error v2 measures in mm with the case's spacing (v1: voxels)
        version = "2" if cls is U.CenterOfLargestErrorUser else "1"
        assert d["version"] == version and d["cost"] and d["paper_label"] and d["description"]
        assert d["params"]["keep_previous"] is True
    assert [c.name for c in ALL] == [
        "scribble",
        "random_error_per_slice",
        "random_error_3d",
        "center_of_largest_error",
    ]
    assert U.RandomError3DUser().source == (
        "random_error_3d(keep_previous=True, crop_size=(128, 128, 128))@1"
    )
    assert U.RandomError3DUser(crop_size=[4, 5, 6]).crop_size == (4, 5, 6)  # type: ignore[arg-type]
    assert U.CenterOfLargestErrorUser(spacing_mm=(3, 1, 1)).spacing_mm == (3.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: U.ScribbleUser(max_points=0),
        lambda: U.RandomError3DUser(crop_size=(0, 4, 4)),
        lambda: U.RandomError3DUser(crop_size=(4, 4)),  # type: ignore[arg-type]
        lambda: U.CenterOfLargestErrorUser(spacing_mm=(1.0, -1.0, 1.0)),
    ],
)
def test_bad_parameters(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("cls", ALL)
def test_bad_inputs(cls):
    t = block((4, 5, 6), (1, 1, 1), (3, 3, 3))
    hist = [boxes_initial(t)]
    user = cls()
    with pytest.raises(ValueError, match="shape"):
        user.correct(t, np.zeros((4, 5, 7), bool), hist, rng())
    with pytest.raises(ValueError, match="3D"):
        user.correct(t[0], t[0], hist, rng())
    with pytest.raises(ValueError, match="empty"):
        user.correct(np.zeros_like(t), t, hist, rng())


@pytest.mark.parametrize("cls", [U.RandomErrorPerSliceUser, U.RandomError3DUser])
def test_history_required(cls):
    t = block((4, 5, 6), (1, 1, 1), (3, 3, 3))
    with pytest.raises(ValueError, match="initial interaction"):
        cls().correct(t, np.zeros_like(t), [], rng())


@pytest.mark.parametrize("cls", ALL)
def test_perfect_prediction_gives_empty_interaction(cls):
    t = block((5, 6, 7), (1, 2, 0), (4, 5, 7))
    inter = cls().correct(t, t.copy(), [boxes_initial(t)], rng())
    assert inter.is_empty and inter.dof == 0 and inter.seconds == 0.0 and inter.slices == ()
    assert inter.source == cls().source


@pytest.mark.parametrize("cls", ALL)
def test_keep_previous_and_effort_recorded(cls):
    t = block((5, 6, 7), (1, 1, 1), (4, 5, 6))
    p = np.zeros_like(t)
    effort = DEFAULT_EFFORT.model_copy(update={"point_s": 10.0, "scribble_s": 10.0})
    user = cls(keep_previous=False, effort=effort)
    inter = user.correct(t, p, [boxes_initial(t)], rng())
    assert inter.keep_previous is False and "keep_previous=False" in inter.source
    assert inter.review_slices == 3  # the target's z extent, slices 1-3
    assert inter.seconds == effort.seconds(inter.user_prompts, 3)
    assert inter.user_prompts == inter.prompts


# ------------------------------------------------------------------------------------------
# scribble
# ------------------------------------------------------------------------------------------


def test_scribble_positive_centre_points_on_largest_fn_component():
    t = block((9, 12, 12), (1, 2, 2), (8, 10, 10))
    p = t.copy()
    p[3:6, 4:7, 4:7] = False  # FN cube of 27 voxels, centre (4, 5, 5)
    p[7, 9, 9] = False  # a smaller FN component, ignored
    inter = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng())
    (s,) = inter.prompts
    assert isinstance(s, Scribble) and s.positive
    assert s.voxels == ((3, 5, 5), (4, 5, 5), (5, 5, 5))
    assert inter.dof == 3 and inter.slices == (3, 4, 5)
    # one stroke, one plane, and the review of the target's 7 slices
    assert inter.review_slices == 7
    assert inter.seconds == pytest.approx(
        DEFAULT_EFFORT.scribble_s + DEFAULT_EFFORT.slice_visit_s + 7 * DEFAULT_EFFORT.review_slice_s
    )


def test_scribble_positive_point_is_snapped_into_the_slice_component():
    t = np.zeros((3, 10, 10), bool)
    # an L: column x=1 rows 1..6 and row y=6 columns 2..4; centre of mass (4.33, 1.67) → (4, 2)
    # lies outside; the nearest L pixel is (4, 1)
    t[1, 1:7, 1] = True
    t[1, 6, 2:5] = True
    inter = U.ScribbleUser().correct(t, np.zeros_like(t), [boxes_initial(t)], rng())
    assert inter.prompts == (Scribble(((1, 4, 1),), positive=True),)


def test_scribble_positive_uses_the_largest_2d_component_per_slice():
    t = np.zeros((2, 12, 12), bool)
    t[0, 1:4, 1:4] = True  # 9 px, centre (2, 2)
    t[0, 8:10, 8:10] = True  # 4 px on the same slice (same 3D component via slice 1)
    t[1, 3:9, 3:9] = True  # connects both in 3D
    inter = U.ScribbleUser().correct(t, np.zeros_like(t), [boxes_initial(t)], rng())
    # slice 1: 6x6 block with centre (5.5, 5.5) → rint (6, 6) (half to even)
    assert inter.prompts[0].voxels == ((0, 2, 2), (1, 6, 6))


def test_scribble_negative_contour_in_plane_with_most_fp():
    t = block((12, 16, 20), (3, 4, 5), (9, 12, 12))
    p = t.copy()
    p[2:10, 7, 12:17] = True  # 8 x 5 = 40 FP on coronal plane y = 7
    p[4:6, 5, 12:15] = True  # 6 FP on y = 5
    for seed in range(10):
        inter = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng(seed))
        (s,) = inter.prompts
        assert isinstance(s, Scribble) and not s.positive
        v = s.array()
        assert np.all(v[:, 1] == 7)
        assert p[tuple(v.T)].all() and not t[tuple(v.T)].any()
        assert len(v) >= 3
        # the contour of the target dilated by 2 px runs at x = 14 next to the target
        assert set(v[:, 2].tolist()) <= {12, 13, 14, 15}
        # drawn pixels form one 8-connected stroke in the (z, x) plane
        plane = np.zeros((12, 20), bool)
        plane[v[:, 0], v[:, 2]] = True
        assert ndimage.label(plane, structure=np.ones((3, 3)))[1] == 1
        assert inter.dof == 3 and inter.realism.negatives_inside == 0
        assert inter.seconds == pytest.approx(
            DEFAULT_EFFORT.scribble_s + DEFAULT_EFFORT.slice_visit_s
            + 6 * DEFAULT_EFFORT.review_slice_s
        )  # fmt: skip


def test_scribble_negative_line_on_plane_without_target():
    t = block((10, 16, 12), (2, 2, 2), (8, 6, 8))
    p = t.copy()
    p[2:8, 12, 4] = True  # column x=4 on plane y=12: 6 FP
    p[3:6, 12, 7] = True  # column x=7: 3 FP
    p[1:3, 13, 2:4] = True  # plane y=13: 4 FP
    inter = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng())
    assert inter.prompts == (Scribble(tuple((z, 12, 4) for z in range(2, 8)), positive=False),)
    assert inter.dof == 3 and inter.slices == tuple(range(2, 8))


def test_scribble_negative_fallback_is_three_random_fp_voxels_labelled_negative():
    t = block((10, 10, 24), (2, 2, 2), (8, 8, 8))
    p = t.copy()
    p[1:9, 5, 20] = True  # far from the target's contour on plane y=5: no contour point inside
    inter = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng(3))
    (s,) = inter.prompts
    assert isinstance(s, Scribble) and not s.positive and len(s.voxels) == 3
    assert all(v[1:] == (5, 20) and 1 <= v[0] < 9 for v in s.voxels)
    assert len(set(s.voxels)) == 3
    assert inter.realism.negatives_inside == 0 and inter.dof == 3


def test_scribble_chooses_polarity_with_fp_share():
    t = block((6, 10, 10), (1, 1, 1), (5, 9, 9))
    p = t.copy()
    p[2:4, 3:6, 3:6] = False  # 18 FN
    p[1:5, 9, 2:8] = True  # 24 FP
    polarity = [
        U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng(s)).prompts[0].positive
        for s in range(60)
    ]
    assert 5 < sum(polarity) < 55  # both kinds occur


def test_scribble_max_points_samples_points_from_the_scribble():
    t = block((9, 12, 12), (1, 2, 2), (8, 10, 10))
    p = t.copy()
    p[2:7, 4:7, 4:7] = False
    full = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng()).prompts[0].voxels
    assert len(full) == 5
    seen = set()
    for seed in range(20):
        inter = U.ScribbleUser(max_points=1).correct(t, p, [boxes_initial(t)], rng(seed))
        (pt,) = inter.prompts
        assert isinstance(pt, Point) and pt.positive and pt.zyx in full and inter.dof == 1
        seen.add(pt.zyx)
    assert len(seen) > 1
    inter = U.ScribbleUser(max_points=10).correct(t, p, [boxes_initial(t)], rng())
    assert [q.zyx for q in inter.prompts] == list(full) and inter.dof == 5


# ------------------------------------------------------------------------------------------
# random_error_per_slice
# ------------------------------------------------------------------------------------------


def test_random_error_per_slice_only_on_imperfect_initial_slices():
    t = block((12, 10, 10), (2, 2, 2), (8, 8, 8))
    p = t.copy()
    p[3, 4, 4] = False  # FN on slice 3
    p[5, 9, 9] = True  # FP on slice 5
    p[10, 1, 1] = True  # FP on slice 10: not prompted initially
    inter = U.RandomErrorPerSliceUser().correct(t, p, [boxes_initial(t)], rng())
    assert inter.prompts == (Point((3, 4, 4), True), Point((5, 9, 9), False))
    assert inter.dof == 2 and inter.slices == (3, 5)


def test_random_error_per_slice_uses_the_initial_interaction_only():
    t = block((12, 10, 10), (2, 2, 2), (8, 8, 8))
    p = np.zeros_like(t)
    hist = [points_initial(t, (4, 3, 3)), points_initial(t, (6, 3, 3))]
    for seed in range(10):
        inter = U.RandomErrorPerSliceUser().correct(t, p, hist, rng(seed))
        (pt,) = inter.prompts
        assert pt.z == 4 and t[pt.zyx] and pt.positive and inter.dof == 1


def test_random_error_per_slice_cost_is_number_of_points():
    t = block((12, 10, 10), (2, 2, 2), (8, 8, 8))
    p = block((12, 10, 10), (3, 3, 3), (8, 8, 8))  # slice 2 empty, others have FN rims
    inter = U.RandomErrorPerSliceUser().correct(t, p, [boxes_initial(t)], rng())
    assert len(inter.prompts) == 6 and inter.dof == 6 and inter.slices == tuple(range(2, 8))
    assert all(pt.positive and t[pt.zyx] and not p[pt.zyx] for pt in inter.prompts)


def test_random_error_per_slice_rejects_foreign_history():
    t = block((4, 5, 6), (1, 1, 1), (3, 3, 3))
    big = np.zeros((9, 5, 6), bool)
    big[8, 1, 1] = True
    with pytest.raises(ValueError, match="outside"):
        U.RandomErrorPerSliceUser().correct(t, np.zeros_like(t), [boxes_initial(big)], rng())


# ------------------------------------------------------------------------------------------
# random_error_3d
# ------------------------------------------------------------------------------------------


def test_crop_around():
    assert U.crop_around((5, 5, 5), (10, 10, 10), (40, 40, 40)) == (slice(0, 10),) * 3
    assert U.crop_around((38, 20, 1), (10, 10, 10), (40, 40, 40)) == (
        slice(30, 40),
        slice(15, 25),
        slice(0, 10),
    )
    assert U.crop_around((3, 3, 3), (128, 128, 128), (6, 7, 8)) == (
        slice(0, 6),
        slice(0, 7),
        slice(0, 8),
    )


def test_prompt_centre():
    assert U.prompt_centre(Point((1, 2, 3))).tolist() == [1, 2, 3]
    assert U.prompt_centre(Box3D((10, 10, 10), (20, 21, 22))).tolist() == [14.5, 15, 15.5]
    assert U.prompt_centre(Box2D(4, (2, 2), (5, 7))).tolist() == [4, 3, 4]


def test_random_error_3d_stays_inside_the_crop_of_the_initial_prompt():
    shape = (40, 40, 40)
    t = block(shape, (2, 2, 2), (36, 36, 36))
    p = np.zeros(shape, bool)  # every target voxel is an error
    hist = [points_initial(t, (4, 4, 4), (6, 6, 6))]  # mean (5, 5, 5) → crop [0, 10)^3
    user = U.RandomError3DUser(crop_size=(10, 10, 10))
    seen = set()
    for seed in range(30):
        inter = user.correct(t, p, hist, rng(seed))
        (pt,) = inter.prompts
        assert all(0 <= c < 10 for c in pt.zyx) and pt.positive and t[pt.zyx]
        assert inter.dof == 1
        seen.add(pt.zyx)
    assert len(seen) > 20


def test_random_error_3d_labels_by_target_and_box_initial():
    shape = (30, 30, 30)
    t = block(shape, (10, 10, 10), (20, 20, 20))
    p = t.copy()
    p[25:, 25:, 25:] = True  # FP outside the crop around the box
    p[12, 12, 12] = False  # FN inside it
    box = Box3D((10, 10, 10), (20, 20, 20))
    hist = [make_interaction([box], [box], t, "box_3d")]
    inter = U.RandomError3DUser(crop_size=(16, 16, 16)).correct(t, p, hist, rng())
    assert inter.prompts == (Point((12, 12, 12), True),)
    p[12, 12, 12] = True
    inter = U.RandomError3DUser(crop_size=(16, 16, 16)).correct(t, p, hist, rng())
    assert inter.is_empty and inter.dof == 0  # the only errors lie outside the crop
    p[21, 9, 9] = True  # an FP inside the crop [6, 22) (centre rint(14.5) = 14)
    inter = U.RandomError3DUser(crop_size=(16, 16, 16)).correct(t, p, hist, rng())
    assert inter.prompts == (Point((21, 9, 9), False),)


# ------------------------------------------------------------------------------------------
# center_of_largest_error
# ------------------------------------------------------------------------------------------


def test_center_of_largest_error_cube_centre():
    t = block((20, 20, 20), (2, 2, 2), (18, 18, 18))
    p = t.copy()
    p[5:10, 6:11, 7:12] = False  # 5^3 FN cube, centre (7, 8, 9)
    p[14:16, 14:16, 14:16] = False  # a smaller error
    inter = U.CenterOfLargestErrorUser().correct(t, p, [], rng())
    assert inter.prompts == (Point((7, 8, 9), True),) and inter.dof == 1


def test_center_of_largest_error_negative_and_at_volume_border():
    t = block((12, 12, 12), (6, 4, 4), (10, 8, 8))
    p = t.copy()
    p[0:4, :, :] = True  # FP slab z 0..3 touching the border: the border counts as outside
    for seed in range(10):
        inter = U.CenterOfLargestErrorUser().correct(t, p, [], rng(seed))
        (pt,) = inter.prompts
        assert not pt.positive and pt.z in (1, 2)
        assert all(1 <= c <= 10 for c in pt.zyx[1:])


@pytest.mark.parametrize("shape", [(3, 1, 1), (1, 3, 1), (1, 1, 3), (1, 2, 3)])
def test_largest_component_on_degenerate_shapes(shape):
    # cc3d 4.1 raises on [1, 0, 1] shaped (3, 1, 1); label_26 must not
    mask = np.zeros(shape, bool)
    mask.flat[0] = mask.flat[2] = True
    comp, box = U.largest_component_3d(mask)  # two single voxels: the first one wins
    assert [(s.start, s.stop) for s in box] == [(0, 1)] * 3 and comp.all()


def test_label_26_matches_scipy():
    r = rng(5)
    for _ in range(30):
        mask = r.random(tuple(r.integers(1, 9, 3))) < 0.4
        ref, n_ref = ndimage.label(mask, structure=np.ones((3, 3, 3)))
        labels, n = U.label_26(mask)
        assert n == n_ref and np.array_equal(labels, ref)


def test_deepest_voxel_counts_the_array_border_as_outside():
    assert U.deepest_voxel(np.ones((5, 5, 5), bool), rng()) == (2, 2, 2)
    assert U.deepest_voxel(np.ones((1, 1, 1), bool), rng()) == (0, 0, 0)


def test_center_of_largest_error_ties_are_random():
    t = block((10, 10, 10), (1, 1, 1), (9, 9, 9))
    p = t.copy()
    p[3:7, 3:7, 3:7] = False  # 4^3 cube: 8 central voxels tie
    picks = {
        U.CenterOfLargestErrorUser().correct(t, p, [], rng(s)).prompts[0].zyx for s in range(40)
    }
    assert len(picks) > 1
    assert all(all(c in (4, 5) for c in zyx) for zyx in picks)


def test_center_of_largest_error_anisotropic_spacing():
    t = np.zeros((9, 9, 9), bool)
    t[1:8, 1:8, 1:8] = True
    p = np.zeros_like(t)
    # in voxels the cube centre (4, 4, 4) is deepest; with 5 mm slices every slice of the cube is
    # >= 5 mm from the outside in z but the in-plane centre only 4 mm: all slices 1..7 tie
    inter = U.CenterOfLargestErrorUser().correct(t, p, [], rng())
    assert inter.prompts == (Point((4, 4, 4), True),)
    picks = {
        U.CenterOfLargestErrorUser(spacing_mm=(5.0, 1.0, 1.0))
        .correct(t, p, [], rng(s))
        .prompts[0]
        .zyx
        for s in range(30)
    }
    assert all(zyx[1:] == (4, 4) and 1 <= zyx[0] <= 7 for zyx in picks) and len(picks) > 1


@settings(max_examples=40, deadline=None)
@given(
    comp=arrays(bool, st.tuples(*[st.integers(1, 7)] * 3)),
    spacing=st.one_of(st.none(), st.tuples(*[st.floats(0.3, 4.0)] * 3)),
)
def test_deepest_voxel_matches_scipy(comp, spacing):
    if not comp.any():
        comp[0, 0, 0] = True
    zyx = U.deepest_voxel(comp, rng(), spacing)
    ref = ndimage.distance_transform_edt(np.pad(comp, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    assert comp[zyx]
    assert ref[zyx] == pytest.approx(ref.max(), rel=1e-5)


# ------------------------------------------------------------------------------------------
# reproducibility
# ------------------------------------------------------------------------------------------


def _many_choices():
    t = block((12, 16, 20), (3, 4, 5), (9, 12, 12))
    p = t.copy()
    p[2:10, 7, 12:17] = True
    p[4:6, 2:5, 6:9] = False
    p[1, 1:10, 1:15] = True  # a thin FP sheet (many EDT ties)
    return t, p, [boxes_initial(t)]


@pytest.mark.parametrize("cls", ALL)
def test_same_seed_same_interaction(cls):
    t, p, hist = _many_choices()
    a = cls().correct(t, p, hist, rng(7)).to_dict()
    b = cls().correct(t, p, hist, rng(7)).to_dict()
    assert a == b


@pytest.mark.parametrize("cls", ALL)
def test_different_seeds_differ(cls):
    t, p, hist = _many_choices()
    runs = {str(cls().correct(t, p, hist, rng(s)).to_dict()) for s in range(8)}
    assert len(runs) > 1


def test_users_do_not_touch_global_random_state():
    t, p, hist = _many_choices()
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    for cls in ALL:
        cls().correct(t, p, hist, rng(1))
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


# ------------------------------------------------------------------------------------------
# properties on random small cases
# ------------------------------------------------------------------------------------------


@st.composite
def cases(draw):
    shape = draw(st.tuples(*[st.integers(1, 7)] * 3))
    kind = draw(st.sampled_from(["random", "single", "full"]))
    if kind == "single":
        t = np.zeros(shape, bool)
        t[tuple(draw(st.integers(0, n - 1)) for n in shape)] = True
    elif kind == "full":
        t = np.ones(shape, bool)
    else:
        t = draw(arrays(bool, shape))
        if not t.any():
            t.flat[draw(st.integers(0, t.size - 1))] = True
    p = draw(arrays(bool, shape))
    seed = draw(st.integers(0, 2**32 - 1))
    return t, p, seed


def _check_common(inter: Interaction, t: np.ndarray, p: np.ndarray) -> None:
    assert inter.realism.positives_outside == 0 and inter.realism.negatives_inside == 0
    err = t != p
    for v in voxels_of(inter):
        assert err[v], "every prompt marks a misclassified voxel"
    if not err.any():
        assert inter.is_empty and inter.dof == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_property_scribble(case):
    t, p, seed = case
    inter = U.ScribbleUser().correct(t, p, [boxes_initial(t)], rng(seed))
    _check_common(inter, t, p)
    if (t != p).any():
        (s,) = inter.prompts
        assert isinstance(s, Scribble) and inter.dof == 3 and inter.slices
        fn = t & ~p
        fp = p & ~t
        assert all((fn if s.positive else fp)[v] for v in s.voxels)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_property_scribble_points(case):
    t, p, seed = case
    inter = U.ScribbleUser(max_points=2).correct(t, p, [boxes_initial(t)], rng(seed))
    _check_common(inter, t, p)
    assert len(inter.prompts) <= 2 and inter.dof == len(inter.prompts)
    assert len({q.positive for q in inter.prompts}) <= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_property_random_error_per_slice(case):
    t, p, seed = case
    initial = boxes_initial(t)
    inter = U.RandomErrorPerSliceUser().correct(t, p, [initial], rng(seed))
    _check_common(inter, t, p)
    imperfect = [z for z in initial.slices if (t[z] != p[z]).any()]
    assert list(inter.slices) == imperfect and inter.dof == len(imperfect)
    assert all(q.positive == bool(t[q.zyx]) for q in inter.prompts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), size=st.integers(1, 8))
def test_property_random_error_3d(case, size):
    t, p, seed = case
    zyx = tuple(int(c) for c in np.argwhere(t)[0])
    hist = [points_initial(t, zyx)]
    user = U.RandomError3DUser(crop_size=(size, size, size))
    inter = user.correct(t, p, hist, rng(seed))
    _check_common(inter, t, p)
    crop = user.crop(t.shape, hist)
    assert len(inter.prompts) == int((t[crop] != p[crop]).any()) == inter.dof
    for q in inter.prompts:
        assert all(s.start <= c < s.stop for c, s in zip(q.zyx, crop, strict=True))
        assert q.positive == bool(t[q.zyx])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_property_center_of_largest_error(case):
    t, p, seed = case
    inter = U.CenterOfLargestErrorUser().correct(t, p, [], rng(seed))
    _check_common(inter, t, p)
    if (t != p).any():
        (q,) = inter.prompts
        assert inter.dof == 1 and q.positive == bool(t[q.zyx]) and inter.slices == (q.z,)
        labels, _ = ndimage.label(t != p, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert sizes[labels[q.zyx] - 1] == sizes.max()


def test_users_are_frozen():
    user = U.ScribbleUser()
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.max_points = 3  # type: ignore[misc]
