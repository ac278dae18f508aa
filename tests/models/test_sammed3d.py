"""SAM-Med3D adapter: geometry helpers, prompt wiring and mask feedback (CPU, random weights)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("medim")

from radioactive.models.base import Model, UnsupportedPrompt
from radioactive.models.sammed3d import (
    SAMMed3DLogits,
    SAMMed3DModel,
    crop_start,
    extract_crop,
    map_index,
    nearest_to_grid,
    resampled_shape,
)
from radioactive.prompts.types import Box3D, Interaction, Point
from tests.models.spies import spy_prompt_encoder


def interaction(*prompts: Any, keep_previous: bool = True) -> Interaction:
    return Interaction(
        prompts=tuple(prompts), user_prompts=tuple(prompts), dof=0, seconds=0.0, source="test",
        keep_previous=keep_previous,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model() -> SAMMed3DModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return SAMMed3DModel(weights="random", device="cpu")


# -- helpers ----------------------------------------------------------------------------------


def test_resampled_shape_and_index_mapping() -> None:
    assert resampled_shape((40, 100, 100), (3.0, 0.75, 0.75), 1.5) == (80, 50, 50)
    got = map_index([[0, 0, 0], [39, 99, 99], [13, 33, 66]], (40, 100, 100), (80, 50, 50))
    np.testing.assert_allclose(got[0], 0)
    np.testing.assert_allclose(got[1], [79, 49, 49])
    np.testing.assert_allclose(got[2], [13 * 79 / 39, 33 * 49 / 99, 66 * 49 / 99])


def test_crop_start_centred_and_clipped() -> None:
    assert crop_start((100, 100, 100), (300, 300, 300), 128) == (36, 36, 36)
    assert crop_start((5, 290, 150), (300, 300, 300), 128) == (0, 172, 86)
    assert crop_start((10, 10, 10), (50, 200, 128), 128) == (0, 0, 0)


def test_extract_crop_pads_with_minimum() -> None:
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) + 7
    crop = extract_crop(vol, (0, 1, 2), 8)
    assert crop.shape == (8, 8, 8)
    np.testing.assert_array_equal(crop[:4, :4, :4], vol[:, 1:, 2:])
    assert crop[7, 7, 7] == vol[:, 1:, 2:].min()


def test_nearest_to_grid_exact_shape() -> None:
    m = np.zeros((10, 7, 7), bool)
    m[9, 6, 6] = True
    out = nearest_to_grid(m, (23, 15, 13))
    assert out.shape == (23, 15, 13) and out[-1, -1, -1] and out.sum() >= 1


# -- model ------------------------------------------------------------------------------------


def test_protocol_and_card(model: SAMMed3DModel) -> None:
    assert isinstance(model, Model)
    assert model.capabilities.dim == 3 and model.capabilities.accepts_mask
    assert model.card.checkpoint is None  # random weights


def test_box_prompt_rejected_before_compute(model: SAMMed3DModel) -> None:
    model.prepare(np.zeros((8, 8, 8), np.float32), (1.5, 1.5, 1.5))
    with pytest.raises(UnsupportedPrompt):
        model.predict(interaction(Box3D(lo=(0, 0, 0), hi=(2, 2, 2))), None)
    assert model._resampled is None  # nothing computed


def test_all_points_reach_prompt_encoder_in_crop_xyz(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    shape, spacing = (60, 200, 180), (3.0, 0.75, 0.9)  # → grid (120, 100, 108)
    model.prepare(rng.normal(size=shape).astype(np.float32), spacing)
    calls = spy_prompt_encoder(monkeypatch, model.net.prompt_encoder)
    pts = [Point((30, 100, 90)), Point((40, 150, 20), positive=False), Point((50, 20, 170))]
    pred = model.predict(interaction(*pts), None)

    gshape = model.grid_shape
    assert gshape == (120, 100, 108)
    grid = np.rint(map_index([p.zyx for p in pts], shape, gshape))
    start = crop_start(grid.mean(axis=0), gshape, 128)
    assert start == (0, 0, 0)
    expected = (grid - np.asarray(start))[:, ::-1]  # (x, y, z) in the crop
    coords, labels = calls[0]["points"]
    assert coords.shape == (1, 3, 3)  # all three points, not one
    np.testing.assert_allclose(coords[0].numpy(), expected)
    assert labels.tolist() == [[1, 0, 1]]
    assert calls[0]["masks"] is None

    assert pred.mask.shape == shape and pred.mask.dtype == bool
    logits = pred.logits[0]
    assert isinstance(logits, SAMMed3DLogits) and tuple(logits.low_res.shape) == (1, 1, 32, 32, 32)
    assert pred.timings.encoder_calls == 1 and pred.timings.encoder_s > 0


def test_clipped_crop_mask_inside_and_feedback(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # grid (200, 40, 40) at 1.5 mm: the crop covers z in [start, start + 128) only
    shape = (200, 40, 40)
    model.prepare(np.random.default_rng(1).normal(size=shape).astype(np.float32), (1.5,) * 3)
    calls = spy_prompt_encoder(monkeypatch, model.net.prompt_encoder)
    first = model.predict(interaction(Point((190, 20, 20))), None)
    start = first.logits[0].start
    assert start == (72, 0, 0)  # clipped to the end of the volume
    coords = calls[0]["points"][0]
    np.testing.assert_allclose(coords[0, 0].numpy(), [20, 20, 190 - 72])
    outside = first.mask.copy()
    outside[72:] = False
    assert not outside.any()

    second = model.predict(interaction(Point((180, 10, 10), positive=False)), first)
    assert calls[1]["points"][0].shape == (1, 2, 3)  # kept the previous point
    fed = calls[1]["masks"]
    assert fed is not None
    np.testing.assert_array_equal(fed.numpy(), first.logits[0].low_res.numpy())
    assert second.timings.cache_hits == 1 and second.timings.encoder_calls == 0

    third = model.predict(interaction(Point((100, 10, 10)), keep_previous=False), second)
    assert calls[2]["points"][0].shape == (1, 1, 3)
    assert calls[2]["masks"].shape == (1, 1, 32, 32, 32)  # regridded to the new crop
    assert third.logits[0].start == (36, 0, 0)
