"""Human-like users: zero noise is the oracle, the noise has the stated spread in mm, slips and
laziness happen as parameterised, everything reproducible from the unit's generator."""

from __future__ import annotations

import numpy as np
import pytest

from radioactive.prompts import get_prompter, get_user
from radioactive.prompts.human import perturb
from radioactive.prompts.types import Box2D, Point
from radioactive.session import run_trajectory


def _target() -> np.ndarray:
    t = np.zeros((12, 40, 40), dtype=bool)
    t[2:10, 8:32, 10:30] = True
    return t


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("base", ["center_point_per_slice", "points_per_slice(n=3)",
                                  "box_per_slice", "box_3d", "center_points_3d(n=2)"])  # fmt: skip
def test_zero_noise_is_the_oracle(base: str) -> None:
    t = _target()
    oracle = get_prompter(base).initial(t, rng(5))
    wrapped = get_prompter(f"noisy(base={base!r})").initial(t, rng(5), spacing_mm=(2.0, 1.0, 1.0))
    assert wrapped.prompts == oracle.prompts and wrapped.user_prompts == oracle.user_prompts
    assert (wrapped.dof, wrapped.seconds) == (oracle.dof, oracle.seconds)
    user = get_user("noisy_user(base='center_of_largest_error')")
    pred = np.zeros_like(t)
    assert (
        user.correct(t, pred, [], rng(1)).prompts
        == get_user("center_of_largest_error").correct(t, pred, [], rng(1)).prompts
    )


def test_point_noise_has_the_stated_spread_in_mm() -> None:
    t = np.zeros((60, 60, 60), dtype=bool)
    points = [Point((30, 30, 30), True)] * 4000
    spacing = (2.0, 1.0, 0.5)
    moved = perturb(points, t, rng(3), spacing, point_sd_mm=2.0, clip=False)
    offsets = np.array([p.zyx for p in moved]) - 30
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.15)
    # a click stays on its slice; 2 mm is 2 and 4 voxels along y and x (rounding adds 1/12
    # voxel² of variance)
    assert (offsets[:, 0] == 0).all()
    np.testing.assert_allclose(offsets[:, 1:].std(axis=0), np.sqrt([4, 16]), rtol=0.06)
    again = perturb(points[:50], t, rng(3), spacing, point_sd_mm=2.0, clip=False)
    assert again == moved[:50]  # reproducible from the generator


def test_clipped_clicks_stay_on_their_side() -> None:
    t = _target()
    inside, outside = Point((5, 20, 20), True), Point((5, 2, 2), False)
    moved = perturb([inside, outside] * 300, t, rng(4), (1, 1, 1), point_sd_mm=6.0, clip=True)
    assert all(t[p.zyx] for p in moved[0::2]) and not any(t[p.zyx] for p in moved[1::2])
    assert len({p.zyx for p in moved[0::2]}) > 20  # and they do move


def test_missed_and_flipped_clicks() -> None:
    t = _target()
    points = [Point((5, 20, 20), True)] * 2000
    kept = perturb(points, t, rng(6), None, p_miss=0.25)
    assert abs(len(kept) / 2000 - 0.75) < 0.03
    flipped = perturb(points, t, rng(7), None, p_flip=0.1)
    assert abs(sum(not p.positive for p in flipped) / 2000 - 0.1) < 0.02
    none = get_prompter("noisy(base='center_point_per_slice', p_miss=1.0)").initial(t, rng())
    assert none.is_empty and none.dof == 0 and none.seconds == 0


def test_box_corners_move_and_stay_valid() -> None:
    t = _target()
    boxes = perturb([Box2D(5, (8, 10), (32, 30))] * 2000, t, rng(8), (1, 1, 1), box_sd_mm=2.0)
    lo = np.array([b.lo for b in boxes])
    hi = np.array([b.hi for b in boxes])
    assert (hi > lo).all() and (lo >= 0).all() and (hi <= 40).all()
    np.testing.assert_allclose((lo - [8, 10]).std(axis=0), 2.0, rtol=0.08)


def test_wrappers_refuse_what_they_cannot_perturb_honestly() -> None:
    with pytest.raises(Exception, match="wraps a static prompter"):
        get_prompter("noisy(base='noisy')")
    with pytest.raises(Exception, match="probabilities"):
        get_prompter("noisy(p_miss=1.5)")


def _oracle(t: np.ndarray):
    return lambda z, prompts: t[z]


@pytest.mark.parametrize("base", ["point_interpolation(k=3)", "box_interpolation(k=3)",
                                  "box_per_slice_from_3d_box", "point_propagation(seeds=3)",
                                  "box_propagation", "cvpr25_box(max_shift=0)"])  # fmt: skip
def test_zero_noise_is_the_oracle_for_derived_prompts(base: str) -> None:
    t = _target()
    noisy = get_prompter(f"noisy(base={base!r})")
    assert noisy.needs_model == get_prompter(base).needs_model
    assert noisy.uses_model == get_prompter(base).uses_model
    oracle = get_prompter(base).initial(t, rng(5), _oracle(t))
    wrapped = noisy.initial(t, rng(5), _oracle(t), spacing_mm=(2.0, 1.0, 1.0))
    assert wrapped.prompts == oracle.prompts and wrapped.user_prompts == oracle.user_prompts
    assert (wrapped.dof, wrapped.seconds) == (oracle.dof, oracle.seconds)


def test_interpolation_runs_between_the_points_the_human_placed() -> None:
    t = np.zeros((21, 60, 60), dtype=bool)
    t[0:21, 10:50, 10:50] = True
    spec = "noisy(base='point_interpolation(k=3)', point_sd_mm=5.0)"
    inter = get_prompter(spec).initial(t, rng(2), spacing_mm=(1.0, 1.0, 1.0))
    keys = sorted(inter.user_prompts, key=lambda p: p.zyx[0])
    assert [p.zyx[0] for p in keys] == [0, 10, 20]  # clicks stay on their key slices
    assert any(p.zyx[1:] != (29, 29) for p in keys)  # ... but land off the oracle's centre
    assert inter.prompts[0] == keys[0] and inter.prompts[10] == keys[1]
    assert inter.prompts[-1] == keys[2] and len(inter.prompts) == 21
    # half-way between two placed keys, the interpolated point is their rounded mean
    half = np.rint((np.array(keys[0].zyx) + np.array(keys[1].zyx)) / 2)
    assert inter.prompts[5].zyx == tuple(int(v) for v in half)
    assert inter.dof == 3  # only the placed keys cost


def test_box_interpolation_and_propagation_start_from_the_moved_boxes() -> None:
    t = _target()
    spec = "noisy(base='box_interpolation(k=3)', box_sd_mm=3.0)"
    inter = get_prompter(spec).initial(t, rng(4), spacing_mm=(1.0, 1.0, 1.0))
    sent = {b.z: b for b in inter.prompts}
    assert all(sent[b.z] == b for b in inter.user_prompts)  # key boxes sent as placed
    assert any((b.lo, b.hi) != ((8, 10), (32, 30)) for b in inter.user_prompts)
    spec = "noisy(base='box_propagation', box_sd_mm=3.0)"
    seen: list = []

    def predict(z, prompts):
        seen.append((z, prompts))
        return t[z]

    inter = get_prompter(spec).initial(t, rng(4), predict, spacing_mm=(1.0, 1.0, 1.0))
    first = inter.user_prompts[0]
    assert seen[0] == (first.z, [first])  # the model sees the human's box first
    assert inter.dof == 2 + 2  # the box and two z-limits


def test_propagation_without_any_placed_seed_sends_nothing() -> None:
    t = _target()
    spec = "noisy(base='point_propagation(seeds=3)', p_miss=1.0)"
    inter = get_prompter(spec).initial(t, rng(), lambda z, p: pytest.fail("model called"))
    assert inter.prompts == () and [p.kind.value for p in inter.user_prompts] == ["zlimit"] * 2


def test_lazy_user_stops_below_the_error_level() -> None:
    t = _target()
    almost = t.copy()
    almost[2, 8:12, 10:14] = False  # 16 of 3840 voxels wrong: 0.4 %
    lazy = get_user("lazy(min_error_fraction=0.01)")
    assert lazy.correct(t, almost, [], rng()).is_empty
    far = np.zeros_like(t)
    assert (
        lazy.correct(t, far, [], rng()).prompts
        == get_user("center_of_largest_error").correct(t, far, [], rng()).prompts
    )


def test_the_session_gives_the_case_spacing_to_a_noisy_prompter() -> None:
    from radioactive.models import get_model

    t = _target()
    model = get_model("random_walker")
    model.prepare(np.where(t, 200.0, 0.0).astype(np.float32), (4.0, 1.0, 1.0))
    spec = "noisy(base='center_points_3d(n=1)', point_sd_mm=8.0, clip=False)"
    (step,) = run_trajectory(model, t, (4.0, 1.0, 1.0), get_prompter(spec), rng(9))
    # the wrapper draws its noise from the unit's generator after its base has drawn
    g = rng(9)
    oracle = get_prompter("center_points_3d(n=1)").initial(t, g)
    expected = perturb(oracle.prompts, t, g, (4.0, 1.0, 1.0), point_sd_mm=8.0, clip=False)
    assert step.interaction.prompts == tuple(expected)


def test_the_challenge_box_is_drawn_by_the_human_and_propagated_from_there() -> None:
    t = _target()
    spec = "noisy(base='cvpr25_box(max_shift=0)', box_sd_mm=3.0)"
    seen: list = []

    def predict(z, prompts):
        seen.append((z, list(prompts)))
        return t[z]

    inter = get_prompter(spec).initial(t, rng(2), predict, spacing_mm=(1.0, 1.0, 1.0))
    box, low, high = inter.user_prompts
    assert (low.z, high.z) == (2, 9)  # the z range stays as the organisers give it
    assert (box.lo, box.hi) != ((8, 10), (32, 30)) and seen[0] == (box.z, [box])
    without_model = get_prompter(spec).initial(t, rng(2), spacing_mm=(1.0, 1.0, 1.0))
    assert without_model.prompts == (box, low, high)  # a 3D model gets the human's box
