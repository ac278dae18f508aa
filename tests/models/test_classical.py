"""Weight-free baselines through the slice-wise engine, with hand-computable answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radioactive.metrics import dice
from radioactive.models import MODELS, backend_class
from radioactive.models.base import UnsupportedPrompt
from radioactive.models.classical import (
    OUTSIDE_LOGIT,
    FilledBoxBackend,
    RandomWalkerBackend,
    crop_window,
    normalize_percentiles,
    random_walker_probability,
    seed_labels,
)
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import Interaction, Lasso, Point, Scribble, get_prompter
from radioactive.prompts.types import Box2D


def _interaction(*prompts) -> Interaction:
    return Interaction(prompts=prompts, user_prompts=prompts, dof=0, seconds=0.0, source="test")


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1


@pytest.fixture(scope="module")
def blob() -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipsoid (100) on a dark background (−100), Gaussian noise of σ = 40."""
    target = _ellipsoid((12, 96, 96), (5.5, 48, 46), (5, 13, 16))
    rng = np.random.default_rng(0)
    image = np.where(target, 100.0, -100.0) + rng.normal(0, 40, target.shape)
    return image, target


# -- filled box ----------------------------------------------------------------------------------


def test_filled_box_of_a_cuboid_is_the_cuboid() -> None:
    target = np.zeros((8, 32, 40), bool)
    target[2:6, 5:15, 8:30] = True
    model = SliceWiseModel(FilledBoxBackend())
    model.prepare(np.zeros(target.shape, np.int16))
    inter = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    pred = model.predict(inter)
    np.testing.assert_array_equal(pred.mask, target)
    assert dice(pred.mask, target) == 1.0
    assert pred.timings.slices_inferred == 4 and pred.logits == {z: None for z in range(2, 6)}


def test_filled_box_equals_the_filled_tight_boxes() -> None:
    target = _ellipsoid((9, 30, 30), (4, 15, 14), (3, 9, 6))
    model = SliceWiseModel(FilledBoxBackend())
    model.prepare(np.zeros(target.shape))
    pred = model.predict(get_prompter("box_per_slice").initial(target, np.random.default_rng(0)))
    expected = np.zeros_like(target)
    for z in range(target.shape[0]):
        ys, xs = np.nonzero(target[z])
        if len(ys):
            expected[z, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    np.testing.assert_array_equal(pred.mask, expected)
    assert not pred.mask[0].any() and not pred.mask[-1].any()  # no prompt there
    assert 0.7 < dice(pred.mask, target) < 1.0


def test_filled_box_logits_and_card() -> None:
    backend = FilledBoxBackend()
    logits, low = backend.decode(None, SlicePrompts(box=(1, 2, 3, 5)), (4, 6))
    assert logits.dtype == np.float32 and logits.shape == (4, 6) and low is None
    assert set(np.unique(logits)) == {-1.0, 1.0}
    assert logits[1:3, 2:5].min() == 1.0 and (logits > 0).sum() == 6
    assert backend.encode(np.zeros((3, 4, 6), np.float32)) == [None, None, None]
    assert backend.embedding_nbytes(None) == 0
    assert backend.card.name == "filled_box" and backend.card.checkpoint is None
    assert backend.capabilities.prompt_types == {"box2d"} and backend.capabilities.dim == 2


def test_filled_box_refuses_points_only() -> None:
    prompts = SlicePrompts(points=np.array([[2, 2]]), labels=np.array([1]))
    with pytest.raises(ValueError, match="needs a box"):
        FilledBoxBackend().decode(None, prompts, (4, 4))


class _Spy(FilledBoxBackend):
    def __init__(self) -> None:
        self.calls = 0

    def encode(self, slices):
        self.calls += 1
        return super().encode(slices)

    def decode(self, embedding, prompts, shape):
        self.calls += 1
        return super().decode(embedding, prompts, shape)


@pytest.mark.parametrize(
    "prompt",
    [Scribble(((1, 2, 2), (1, 2, 3))), Point((1, 2, 2)), Lasso(1, ((0, 0), (0, 3), (3, 0)))],
)
def test_unsupported_prompt_is_refused_before_any_compute(prompt) -> None:
    spy = _Spy()
    model = SliceWiseModel(spy)
    model.prepare(np.zeros((3, 8, 8)))
    with pytest.raises(UnsupportedPrompt, match="filled_box") as err:
        model.predict(_interaction(Box2D(1, (1, 1), (4, 4)), prompt))
    assert prompt.kind in str(err.value) and err.value.fix
    assert spy.calls == 0


def test_random_walker_refuses_lassos() -> None:
    model = SliceWiseModel(RandomWalkerBackend())
    model.prepare(np.zeros((3, 8, 8)))
    with pytest.raises(UnsupportedPrompt, match="lasso"):
        model.predict(_interaction(Lasso(1, ((0, 0), (0, 3), (3, 0)))))


# -- random walker: the pieces -------------------------------------------------------------------


def test_normalisation_uses_all_voxels_and_clips_to_percentiles() -> None:
    ct = np.linspace(-1000, 1000, 2001).reshape(1, 1, -1)  # one voxel per HU
    out = normalize_percentiles(ct)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    # the 0.5–99.5 percentiles of −1000…1000 in steps of 1 are −990 and 990
    assert out[0, 0, 10] == 0.0 and out[0, 0, 1990] == 1.0
    assert out[0, 0, 1000] == pytest.approx(0.5)
    assert out[0, 0, 500] == pytest.approx(490 / 1980)  # −500 HU
    assert not normalize_percentiles(np.full((2, 3, 3), -7.0)).any()


def test_crop_window_by_hand() -> None:
    # a 20×40 box: margins 0.1·20 + 5 = 7 rows and 0.1·40 + 5 = 9 columns
    assert crop_window(SlicePrompts(box=(10, 10, 30, 50)), (100, 100)) == (3, 1, 37, 59)
    # clipped to the slice
    assert crop_window(SlicePrompts(box=(0, 0, 20, 40)), (100, 100)) == (0, 0, 27, 49)
    # points: their bounding box grown by 20 px
    pts = SlicePrompts(points=np.array([[50, 50], [60, 40]]), labels=np.array([1, 0]))
    assert crop_window(pts, (100, 100)) == (30, 20, 81, 71)
    # a box and a point outside it: the window holds both
    both = SlicePrompts(box=(10, 10, 30, 50), points=np.array([[80, 5]]), labels=np.array([0]))
    assert crop_window(both, (100, 100)) == (3, 1, 81, 59)
    with pytest.raises(ValueError):
        crop_window(SlicePrompts(), (10, 10))


def test_seeds_from_a_box() -> None:
    window = (0, 0, 12, 12)
    seeds = seed_labels(SlicePrompts(box=(3, 3, 9, 9)), window)
    inside = np.zeros((12, 12), bool)
    inside[3:9, 3:9] = True
    assert (seeds[~inside] == 2).all()
    # the box centre (5.5, 5.5) with radius max(1, 0.6) seeds the 4 central pixels
    assert set(zip(*np.nonzero(seeds == 1), strict=True)) == {(5, 5), (5, 6), (6, 5), (6, 6)}
    assert (seeds[inside] != 2).all()


def test_seeds_from_points() -> None:
    window = (10, 10, 20, 20)
    pos = SlicePrompts(points=np.array([[15, 15]]), labels=np.array([1]))
    seeds = seed_labels(pos, window)
    assert seeds[5, 5] == 1
    border = np.ones((10, 10), bool)
    border[1:-1, 1:-1] = False
    assert (seeds[border] == 2).all() and (seeds[~border] != 2).all()  # no background given
    both = SlicePrompts(points=np.array([[15, 15], [12, 18]]), labels=np.array([1, 0]))
    seeds = seed_labels(both, window)
    assert seeds[5, 5] == 1 and seeds[2, 8] == 2 and (seeds > 0).sum() == 2
    # a positive click inside the box replaces the centre seed
    box_pt = SlicePrompts(box=(12, 12, 18, 18), points=np.array([[13, 13]]), labels=np.array([1]))
    seeds = seed_labels(box_pt, window)
    assert (seeds == 1).sum() == 1 and seeds[3, 3] == 1


def test_probability_edge_cases() -> None:
    image = np.zeros((6, 6), np.float32)
    no_fg = np.zeros((6, 6), np.int32)
    no_fg[0, 0] = 2
    assert not random_walker_probability(image, no_fg).any()
    all_seeded = np.full((6, 6), 2, np.int32)
    all_seeded[2, 2] = 1
    np.testing.assert_array_equal(random_walker_probability(image, all_seeded), all_seeded == 1)
    # a constant crop: plain diffusion between two seeds, symmetric about the middle
    seeds = np.zeros((6, 6), np.int32)
    seeds[:, 0], seeds[:, -1] = 1, 2
    p = random_walker_probability(image, seeds)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[:, 1:-1], np.broadcast_to([0.8, 0.6, 0.4, 0.2], (6, 4)))


def test_random_walker_logits_are_bounded_and_low_outside_the_crop() -> None:
    backend = RandomWalkerBackend()
    image = np.zeros((60, 60), np.float32)
    image[20:30, 20:30] = 1.0
    (emb,) = backend.encode(image[None])
    assert emb is not image and backend.embedding_nbytes(emb) == 60 * 60 * 4
    prompts = SlicePrompts(points=np.array([[25, 25]]), labels=np.array([1]))
    logits, low = backend.decode(emb, prompts, (60, 60))
    assert low is None and logits.dtype == np.float32
    assert (logits[:4] == OUTSIDE_LOGIT).all() and (logits[:, 46:] == OUTSIDE_LOGIT).all()
    bound = math.log((1 - 1e-4) / 1e-4)
    assert np.abs(logits[5:46, 5:46]).max() <= bound + 1e-4
    np.testing.assert_array_equal(logits > 0, image > 0)


def test_random_walker_validates_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        RandomWalkerBackend(mode="cg_mg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta"):
        RandomWalkerBackend(beta=0)
    with pytest.raises(ValueError, match="smoothing"):
        RandomWalkerBackend(smoothing_sigma_px=-1)


# -- random walker through the engine ------------------------------------------------------------


@pytest.mark.parametrize("prompter", ["center_point_per_slice", "box_per_slice"])
def test_random_walker_segments_a_noisy_blob(prompter: str, blob) -> None:
    image, target = blob
    model = SliceWiseModel(RandomWalkerBackend())
    model.prepare(image)
    pred = model.predict(get_prompter(prompter).initial(target, np.random.default_rng(0)))
    assert dice(pred.mask, target) > 0.85
    assert not pred.mask[0].any() and not pred.mask[-1].any()  # unprompted slices


def test_filled_box_is_a_weaker_baseline_than_the_random_walker(blob) -> None:
    image, target = blob
    scores = {}
    for name, cls in BACKENDS.items():
        model = SliceWiseModel(cls())
        model.prepare(image)
        inter = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
        scores[name] = dice(model.predict(inter).mask, target)
    assert 0.8 < scores["filled_box"] < scores["random_walker"]


def test_smoothing_with_a_larger_beta_survives_heavy_noise() -> None:
    target = _ellipsoid((5, 96, 96), (2, 48, 46), (3, 13, 16))
    image = np.where(target, 100.0, -100.0)
    image = image + np.random.default_rng(1).normal(0, 90, target.shape)
    model = SliceWiseModel(RandomWalkerBackend(beta=2000, smoothing_sigma_px=1.0))
    model.prepare(image)
    pred = model.predict(get_prompter("box_per_slice").initial(target, np.random.default_rng(0)))
    assert dice(pred.mask, target) > 0.9


#: the weight-free baselines, as the model registry lists them
BACKENDS = {
    name: backend_class(name)
    for name, target in MODELS.items()
    if target.startswith("radioactive.models.classical:")
}


def test_registry_and_cards() -> None:
    assert set(BACKENDS) == {"filled_box", "random_walker"}
    for name, cls in BACKENDS.items():
        backend = cls()
        assert backend.card.name == name and backend.card.checkpoint is None
        assert backend.card.training_data == "none (weight-free)"
        assert backend.capabilities.dim == 2 and not backend.capabilities.accepts_mask
    assert RandomWalkerBackend().capabilities.prompt_types == {"point", "box2d"}
    assert SliceWiseModel(RandomWalkerBackend()).capabilities.prompt_types == {
        "point", "box2d", "box3d", "scribble",
    }  # fmt: skip


def test_module_examples_run() -> None:
    import doctest

    import radioactive.models.classical as mod

    assert doctest.testmod(mod).failed == 0
