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
    # 2 mm is 1, 2 and 4 voxels along z, y, x (rounding adds 1/12 voxel² of variance)
    np.testing.assert_allclose(offsets.std(axis=0), np.sqrt([1, 4, 16]), rtol=0.06)
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
    with pytest.raises(Exception, match="does not consult the model"):
        get_prompter("noisy(base='box_propagation')")
    with pytest.raises(ValueError, match="derives prompts"):
        get_prompter("noisy(base='box_interpolation')").initial(_target(), rng())
    with pytest.raises(Exception, match="probabilities"):
        get_prompter("noisy(p_miss=1.5)")


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
