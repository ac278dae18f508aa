"""Static prompters: known answers on hand-made targets, costs, registry and properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from radioactive.prompts import (
    PROMPTERS,
    Box2D,
    Box3D,
    Interaction,
    Point,
    UnknownNameError,
    ZLimit,
    get_prompter,
    parse_spec,
    static,  # noqa: F401  (registers the prompters)
)
from radioactive.prompts.cost import DEFAULT_EFFORT


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def cuboid(shape=(12, 30, 40), lo=(3, 5, 10), hi=(9, 20, 25)) -> np.ndarray:
    t = np.zeros(shape, bool)
    t[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return t


def disk_mask(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def oracle(target):
    return lambda z, prompts: target[z]


# ---------------------------------------------------------------------------- known answers


def test_box_per_slice_on_a_cuboid() -> None:
    t = cuboid()
    inter = get_prompter("box_per_slice").initial(t, rng())
    assert inter.prompts == tuple(Box2D(z, (5, 10), (20, 25)) for z in range(3, 9))
    assert inter.dof == 2 * 6 and inter.user_prompts == inter.prompts
    # six boxes on six slices, then the review of the target's six slices
    assert inter.review_slices == 6
    assert inter.seconds == pytest.approx(
        6 * DEFAULT_EFFORT.box2d_s + 6 * DEFAULT_EFFORT.slice_visit_s
        + 6 * DEFAULT_EFFORT.review_slice_s
    )  # fmt: skip
    assert inter.slices == tuple(range(3, 9))


def test_center_point_of_a_disk_and_of_the_largest_component() -> None:
    t = np.zeros((3, 40, 40), bool)
    t[1] = disk_mask((40, 40), 20, 14, 6)
    t[1] |= disk_mask((40, 40), 5, 35, 2)  # a smaller second component
    inter = get_prompter("center_point_per_slice").initial(t, rng())
    assert inter.prompts == (Point((1, 20, 14), True),)
    assert inter.dof == 1


def test_center_point_is_snapped_into_a_ring_shaped_object() -> None:
    t = np.zeros((1, 30, 30), bool)
    t[0] = disk_mask((30, 30), 15, 15, 10) & ~disk_mask((30, 30), 15, 15, 6)
    (p,) = get_prompter("center_point_per_slice").initial(t, rng()).prompts
    assert t[p.zyx]
    assert abs(np.hypot(p.zyx[1] - 15, p.zyx[2] - 15) - 7) < 1.01  # nearest ring pixel


def test_point_interpolation_between_two_key_slices() -> None:
    t = np.zeros((11, 40, 40), bool)
    for z in range(11):  # a slanted cylinder: centre moves from (10, 10) to (30, 20)
        t[z] = disk_mask((40, 40), 10 + 2 * z, 10 + z, 3)
    inter = get_prompter("point_interpolation", k=2).initial(t, rng())
    assert inter.user_prompts == (Point((0, 10, 10)), Point((10, 30, 20)))
    assert inter.dof == 2
    assert [p.zyx for p in inter.prompts] == [(z, 10 + 2 * z, 10 + z) for z in range(11)]
    assert inter.realism.derived_total == 9 and inter.realism.derived_outside == 0


def test_point_interpolation_counts_points_outside_a_curved_object() -> None:
    t = np.zeros((21, 40, 40), bool)
    for z in range(21):  # a U-shaped tube: centre x goes 5 -> 35 -> 5 ... along z as an arc
        cx = 5 + round(float(30 * np.sin(np.pi * z / 20)))
        t[z] = disk_mask((40, 40), 20, cx, 2)
    inter = get_prompter("point_interpolation", k=2).initial(t, rng())
    assert inter.dof == 2
    assert inter.realism.derived_outside > 10
    assert inter.realism.derived_outside <= inter.realism.derived_total == 19


def test_key_slices_are_capped_by_the_number_of_foreground_slices() -> None:
    t = cuboid(lo=(4, 5, 5), hi=(6, 10, 10))  # 2 foreground slices
    inter = get_prompter("point_interpolation", k=10).initial(t, rng())
    assert inter.dof == 2
    inter = get_prompter("box_interpolation", k=5).initial(t, rng())
    assert inter.dof == 4


def test_points_per_slice_draws_without_replacement() -> None:
    t = cuboid()
    inter = get_prompter("points_per_slice", n=5).initial(t, rng(3))
    assert inter.dof == 5 * 6 and len(inter.prompts) == 30
    assert len(set(inter.prompts)) == 30
    assert all(t[p.zyx] and p.positive for p in inter.prompts)
    per_slice = np.bincount([p.z for p in inter.prompts], minlength=12)
    assert per_slice[3:9].tolist() == [5] * 6


def test_points_per_slice_on_tiny_slices_takes_all_then_repeats() -> None:
    t = np.zeros((2, 5, 5), bool)
    t[0, 1, 1] = t[0, 1, 2] = True
    inter = get_prompter("points_per_slice", n=3).initial(t, rng())
    zyx = sorted(p.zyx for p in inter.prompts)
    assert len(zyx) == 3 and set(zyx) == {(0, 1, 1), (0, 1, 2)}
    assert inter.dof == 3


def test_alternating_points_take_negatives_from_the_ring() -> None:
    from scipy import ndimage

    from radioactive.prompts.geometry import disk

    t = np.zeros((3, 40, 40), bool)
    t[1] = disk_mask((40, 40), 20, 20, 6)
    inter = get_prompter("alternating_points_per_slice", n=5).initial(t, rng(1))
    pos = [p for p in inter.prompts if p.positive]
    neg = [p for p in inter.prompts if not p.positive]
    assert (len(pos), len(neg)) == (3, 2) and inter.dof == 5
    a = ndimage.binary_dilation(t[1], structure=disk(2))
    b = ndimage.binary_dilation(a, structure=disk(3))
    assert all(t[p.zyx] for p in pos)
    assert all(b[p.zyx[1:]] and not a[p.zyx[1:]] for p in neg)
    assert inter.realism.negatives_inside == 0


def test_point_propagation_with_an_oracle_model() -> None:
    t = np.zeros((12, 30, 30), bool)
    for z in range(2, 11):
        t[z] = disk_mask((30, 30), 10 + z, 15, 4)
    calls = []

    def predict(z, prompts):
        calls.append(z)
        assert all(p.zyx[0] == z for p in prompts)
        return t[z]

    inter = get_prompter("point_propagation").initial(t, rng(), predict)
    z0 = 6  # median of 2..10
    seeds = [p for p in inter.prompts if p.z == z0]
    assert len(seeds) == 5 and all(t[p.zyx] for p in seeds)
    others = {p.z: p for p in inter.prompts if p.z != z0}
    assert sorted(others) == [2, 3, 4, 5, 7, 8, 9, 10]
    for z, p in others.items():  # the bbox centre of the previous slice's prediction
        prev = z - 1 if z > z0 else z + 1
        assert p.zyx == (z, 10 + prev, 15)
    assert inter.user_prompts[-2:] == (ZLimit(2, False), ZLimit(10, True))
    assert inter.dof == 7
    assert sorted(calls) == list(range(2, 11))  # every slice predicted once


def test_point_propagation_stops_at_a_gap() -> None:
    t = np.zeros((10, 20, 20), bool)
    t[1:4, 5:10, 5:10] = True
    t[5:9, 5:10, 5:10] = True  # gap at z=4
    inter = get_prompter("point_propagation", seeds=2).initial(t, rng(), oracle(t))
    zs = sorted({p.z for p in inter.prompts})
    assert zs == [4, 5, 6, 7, 8]  # median slice 5; the point put on slice 4 finds nothing
    assert inter.dof == 4


def test_propagation_needs_a_predictor() -> None:
    with pytest.raises(ValueError, match="needs the model"):
        get_prompter("box_propagation").initial(cuboid(), rng())


def test_box_propagation_with_an_oracle_model() -> None:
    t = np.zeros((9, 30, 30), bool)
    for z in range(1, 8):
        t[z, 5 : 10 + z, 3 : 8 + 2 * z] = True
    inter = get_prompter("box_propagation").initial(t, rng(), oracle(t))
    boxes = {b.z: b for b in inter.prompts}
    assert sorted(boxes) == list(range(1, 8))
    assert boxes[4] == Box2D(4, (5, 3), (14, 16))  # tight box of the median slice
    for z in range(1, 8):
        if z != 4:  # the box of the neighbouring slice's prediction, applied here
            prev = z - 1 if z > 4 else z + 1
            assert boxes[z] == Box2D(z, (5, 3), (10 + prev, 8 + 2 * prev))
    assert inter.dof == 4 and inter.user_prompts[0] == boxes[4]


def test_box_from_3d_box_covers_gap_slices_and_costs_three() -> None:
    t = np.zeros((10, 20, 20), bool)
    t[2, 3:6, 4:9] = True
    t[6, 8:12, 2:5] = True
    inter = get_prompter("box_per_slice_from_3d_box").initial(t, rng())
    assert inter.prompts == tuple(Box2D(z, (3, 2), (12, 9)) for z in range(2, 7))
    assert inter.user_prompts == (Box3D((2, 3, 2), (7, 12, 9)),)
    assert inter.dof == 3


def test_box_interpolation_recovers_linearly_growing_boxes() -> None:
    t = np.zeros((11, 40, 40), bool)
    for z in range(11):
        t[z, 10 - z // 2 : 20 + z, 5 : 6 + 2 * z] = True
    inter = get_prompter("box_interpolation", k=3).initial(t, rng())
    keys = [b.z for b in inter.user_prompts]
    assert keys == [0, 5, 10] and inter.dof == 6
    for b in inter.prompts:
        z = b.z
        assert abs(b.lo[0] - (10 - z // 2)) <= 1 and b.hi[0] == 20 + z
        assert b.lo[1] == 5 and b.hi[1] == 6 + 2 * z


def test_box_jitter_stays_within_bounds_and_counts_clipping() -> None:
    t = cuboid(shape=(5, 20, 20), lo=(0, 0, 0), hi=(5, 6, 6))  # touches the border
    perfect = get_prompter("box_interpolation", k=3).initial(t, rng())
    clipped_any = 0
    for seed in range(20):
        inter = get_prompter("box_interpolation", k=3, jitter=3).initial(t, rng(seed))
        for b, p in zip(inter.user_prompts, perfect.user_prompts, strict=True):
            assert all(abs(a - c) <= 3 for a, c in zip(b.lo + b.hi, p.lo + p.hi, strict=True))
        clipped_any += inter.realism.boxes_clipped
    assert clipped_any > 0


def test_points_3d_and_box_3d() -> None:
    t = cuboid()
    inter = get_prompter("points_3d", n=10).initial(t, rng())
    assert inter.dof == 10 and len(set(inter.prompts)) == 10
    assert all(t[p.zyx] for p in inter.prompts)
    inter = get_prompter("box_3d").initial(t, rng())
    assert inter.prompts == (Box3D((3, 5, 10), (9, 20, 25)),) and inter.dof == 3


def test_center_points_3d_on_a_straight_tube() -> None:
    t = np.zeros((21, 30, 30), bool)
    t[0:21] = disk_mask((30, 30), 12, 17, 3)
    (p,) = get_prompter("center_points_3d", n=1).initial(t, rng()).prompts
    assert p.zyx == (10, 12, 17)
    inter = get_prompter("center_points_3d", n=3).initial(t, rng())
    assert [q.zyx[0] for q in inter.prompts] == [5, 10, 15]  # ends excluded, sorted by z
    cropped = get_prompter("center_points_3d", n=3, crop_size=(8, 64, 64)).initial(t, rng())
    assert all(6 <= q.zyx[0] <= 14 for q in cropped.prompts)
    assert cropped.dof == 3


# ---------------------------------------------------------------------------- registry, JSON


def test_registry_by_name_and_spec() -> None:
    assert get_prompter("box_interpolation(k=5, jitter=3)").params() == {
        "k": 5,
        "jitter": 3,
        "key_rounding": "floor",
    }
    assert get_prompter("points_per_slice", n=3).source == "points_per_slice(n=3)@1"
    assert parse_spec("box_3d") == ("box_3d", {})
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_prompter("points_per_slcie")
    with pytest.raises(UnknownNameError, match="no parameter m"):
        get_prompter("points_per_slice", m=3)
    with pytest.raises(UnknownNameError, match="invalid parameters"):
        get_prompter("points_per_slice(n=0)")


def test_interaction_round_trips_through_json() -> None:
    t = cuboid()
    inter = get_prompter("box_per_slice_from_3d_box").initial(t, rng())
    again = Interaction.from_dict(json.loads(json.dumps(inter.to_dict())))
    assert again == inter


# ---------------------------------------------------------------------------- properties

NO_MODEL = [name for name, cls in PROMPTERS.items() if not cls.needs_model]
RANDOM = ["points_per_slice", "alternating_points_per_slice", "points_3d", "point_propagation"]


@st.composite
def targets(draw):
    shape = draw(st.tuples(*(st.integers(1, 9) for _ in range(3))))
    t = draw(arrays(bool, shape, elements=st.booleans()))
    if not t.any():
        idx = tuple(draw(st.integers(0, s - 1)) for s in shape)
        t[idx] = True
    return t


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=targets(), seed=st.integers(0, 2**16))
def test_every_prompter_gives_valid_reproducible_prompts(t: np.ndarray, seed: int) -> None:
    for name in PROMPTERS:
        prompter = get_prompter(name)
        a = prompter.initial(t, rng(seed), oracle(t))  # make_interaction checks image bounds
        b = prompter.initial(t, rng(seed), oracle(t))
        assert a.to_dict() == b.to_dict()
        if not prompter.prompt_kinds():  # no_prompt: the challenge's cases without a box
            assert a.dof == 0 and not a.prompts and a.is_empty
            continue
        assert a.dof > 0 and a.prompts
        assert a.realism.positives_outside == 0 and a.realism.negatives_inside == 0
        fg = set(np.flatnonzero(t.any(axis=(1, 2))).tolist())
        if prompter.dim == 2:
            assert set(a.slices) <= set(range(min(fg), max(fg) + 1))


def test_random_prompters_differ_across_seeds() -> None:
    t = cuboid()
    for name in RANDOM:
        runs = {
            json.dumps(get_prompter(name).initial(t, rng(s), oracle(t)).to_dict()) for s in range(5)
        }
        assert len(runs) > 1, name


def test_declared_prompt_kinds_match_what_is_sent() -> None:
    t = cuboid()
    for name in PROMPTERS:
        p = get_prompter(name)
        inter = p.initial(t, rng(0), oracle(t))
        assert {q.kind for q in inter.prompts} == set(p.prompt_kinds()), name
