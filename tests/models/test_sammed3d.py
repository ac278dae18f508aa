"""SAM-Med3D adapter: geometry helpers, prompt wiring, mask feedback and the two input contracts
(CPU, random weights). The 128³ ViT-B encoder is run for real once (it takes tens of seconds on
two CPUs); the other model tests replace its ``forward`` with a stub returning a zero embedding,
which leaves the adapter's own computations (crop, prompts, feedback, mapping back) untouched."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("medim")

import torch

from radioactive.models.base import Model, UnsupportedPrompt
from radioactive.models.contracts import UnknownModalityError
from radioactive.models.sammed3d import (
    BACKGROUND_LOGIT,
    LEGACY_CONTRACT,
    SAMMed3DLogits,
    SAMMed3DModel,
    bbox_crop_start,
    crop_start,
    extract_crop,
    grid_coords,
    grid_to_volume,
    grid_voxels,
    isotropic_grid,
    map_index,
    nearest_to_grid,
    resample_isotropic,
    resampled_shape,
    window,
    znorm_positive,
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


def variant(model: SAMMed3DModel, **attrs: Any) -> SAMMed3DModel:
    """The shared model with other options (same network; no second build)."""
    other = copy.copy(model)
    for k, v in attrs.items():
        setattr(other, k, v)
    return other


def stub_encoder(monkeypatch: pytest.MonkeyPatch, model: SAMMed3DModel) -> list[Any]:
    """Record the encoder's inputs and return a zero embedding instead of running the ViT."""
    seen: list[Any] = []
    pe = model.net.prompt_encoder
    shape = (pe.embed_dim, *pe.image_embedding_size)

    def forward(x: Any) -> Any:
        seen.append(x.detach().clone())
        return torch.zeros((x.shape[0], *shape), dtype=x.dtype, device=x.device)

    monkeypatch.setattr(model.net.image_encoder, "forward", forward)
    return seen


# -- helpers: the authors' contract ------------------------------------------------------------


def test_isotropic_grid_corner_is_torchio_0_20_resample_grid() -> None:
    # ceil(n·s/t) voxels: 40·3/1.5 = 80, 100·0.75/1.5 = 50, 99·0.8/1.5 = 52.8 → 53; voxel 0 at
    # volume index (t/s − 1)/2, i.e. at s·(t/s − 1)/2 mm
    shape, origin = isotropic_grid((40, 100, 99), (3.0, 0.75, 0.8), 1.5)
    assert shape == (80, 50, 53)
    np.testing.assert_allclose(origin, [-0.75, 0.375, 0.35])
    assert isotropic_grid((1, 10, 10), (5.0, 1.5, 1.5), 1.5)[0] == (1, 10, 10)
    centre = grid_coords([[19.5, 49.5, 49]], (40, 100, 99), (3.0, 0.75, 0.8), 1.5)
    np.testing.assert_allclose(centre[0], [39.5, 24.5, 25.9])
    vox = grid_voxels([[0, 0, 0], [39, 99, 98]], (40, 100, 99), (3.0, 0.75, 0.8), 1.5)
    # z: index 0 at grid 0.5 → 1 (half up), index 39 at 78.5 → 79
    assert vox.tolist() == [[1, 0, 0], [79, 49, 52]]


def test_isotropic_grid_centre_is_torchio_current_resample_grid() -> None:
    # floor(n·s/t) voxels, same centre: 40·3/1.5 = 80, 100·0.75/1.5 = 50, 99·0.8/1.5 = 52.8 → 52
    shape, origin = isotropic_grid((40, 100, 99), (3.0, 0.75, 0.8), 1.5, "centre")
    assert shape == (80, 50, 52)
    np.testing.assert_allclose(origin, [39 * 3 / 2 - 79 * 0.75, 99 * 0.375 - 49 * 0.75,
                                        98 * 0.4 - 51 * 0.75])  # fmt: skip
    # the volume's centre maps to the grid's centre
    centre = grid_coords([[19.5, 49.5, 49]], (40, 100, 99), (3.0, 0.75, 0.8), 1.5, "centre")
    np.testing.assert_allclose(centre[0], [39.5, 24.5, 25.5])
    vox = grid_voxels([[0, 0, 0], [39, 99, 98]], (40, 100, 99), (3.0, 0.75, 0.8), 1.5, "centre")
    # x: at grid −0.63 and 51.6 → kept inside the grid
    assert vox.tolist() == [[1, 0, 0], [79, 49, 51]]
    with pytest.raises(ValueError, match="grid"):
        isotropic_grid((4, 4, 4), (1.0, 1.0, 1.0), 1.5, "middle")


def test_resample_isotropic_is_linear_and_exact_on_ramps() -> None:
    z = np.arange(20, dtype=np.float32)[:, None, None]
    vol = np.broadcast_to(z * 3.0, (20, 6, 6)).copy()  # a ramp along z, 3.0 mm voxels
    out = resample_isotropic(vol, (3.0, 1.5, 1.5), 1.5)
    assert out.shape == (40, 6, 6)
    # grid voxel j sits at volume index (j - 0.5) / 2; linear interpolation is exact on a ramp,
    # the two voxels half a volume voxel outside take the edge value
    expect = np.clip((np.arange(40) - 0.5) / 2, 0, 19) * 3.0
    np.testing.assert_allclose(out[:, 3, 3], expect, atol=1e-5)


def test_bbox_crop_start_rounds_like_crop_or_pad() -> None:
    # one voxel at 190: bbox [190, 191), centre 190.5 → 190 (half voxel down) → start 126
    assert bbox_crop_start([[190, 20, 20]], 128) == (126, -44, -44)
    # z: bbox [10, 21), centre 15.5 → 15; y: [0, 4), centre 2 (exact); x: [5, 6) → 5
    assert bbox_crop_start([[10, 0, 5], [20, 3, 5]], 128) == (15 - 64, 2 - 64, 5 - 64)
    # an odd target moves an integer centre half a voxel down instead
    assert bbox_crop_start([[10, 10, 10], [11, 11, 11]], 5) == (8, 8, 8)
    assert bbox_crop_start([[10, 10, 10]], 5) == (8, 8, 8)


def test_window_pads_with_fill_on_both_sides() -> None:
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) + 7
    w = window(vol, (-2, 1, 3), 8, fill=0.0)
    assert w.shape == (8, 8, 8)
    np.testing.assert_array_equal(w[2:6, 0:4, 0:3], vol[:, 1:, 3:])
    assert w[:2].max() == 0 and w[6:].max() == 0 and w[:, 4:].max() == 0 and w[:, :, 3:].max() == 0
    assert window(vol, (10, 0, 0), 4, fill=-1.0).min() == -1.0  # fully outside: all fill


def test_znorm_positive_statistics_over_positive_voxels_only() -> None:
    crop = np.zeros((4, 4, 4), np.float32)
    crop[0, 0, :3] = [1.0, 2.0, 3.0]
    crop[1, 1, 1] = -5.0
    out = znorm_positive(crop)
    assert out is not None
    # mean 2, unbiased std 1 over the three voxels > 0; applied to every voxel
    np.testing.assert_allclose(out[0, 0, :3], [-1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[1, 1, 1], -7.0, atol=1e-6)
    np.testing.assert_allclose(out[3, 3, 3], -2.0, atol=1e-6)
    assert znorm_positive(np.zeros((3, 3, 3), np.float32)) is None  # no voxel > 0
    one = np.zeros((3, 3, 3), np.float32)
    one[1, 1, 1] = 4.0
    assert znorm_positive(one) is None  # one voxel: std undefined
    assert znorm_positive(np.full((3, 3, 3), 2.0, np.float32)) is None  # std 0


def test_grid_to_volume_nearest_and_outside_is_background() -> None:
    # 3 mm voxels → 1.5 mm grid of 2n voxels; volume voxel i sits at grid index 2i + 0.5
    # (half-integer: rounded up) → grid voxel 2i + 1
    shape, spacing = (5, 2, 2), (3.0, 3.0, 3.0)
    gshape, _ = isotropic_grid(shape, spacing, 1.5)
    assert gshape == (10, 4, 4)
    g = np.zeros(gshape, bool)
    g[3, 1, 1] = True
    out = grid_to_volume(g, shape, spacing, 1.5)
    assert out.sum() == 1 and out[1, 0, 0]
    # downsampling on the "centre" grid: 0.7 mm voxels → floor(7/1.5) = 4 voxels; the edge
    # voxels of the volume lie at grid −0.6 and 3.6, more than half a grid voxel outside: background
    shape2, sp2 = (10, 1, 1), (0.7, 1.0, 1.0)
    g2 = np.ones(isotropic_grid(shape2, sp2, 1.5, "centre")[0], bool)
    out2 = grid_to_volume(g2, shape2, sp2, 1.5, grid="centre")
    assert out2[:, 0, 0].tolist() == [False] + [True] * 8 + [False]
    # ... unless the grid's rim (the crop's padding next to the volume) holds a prediction
    rimmed = np.zeros((4 + 2, 3, 3), bool)
    rimmed[0, 1, 1] = True  # grid voxel −1
    out3 = grid_to_volume(rimmed, shape2, sp2, 1.5, rim=1, grid="centre")
    assert out3[:, 0, 0].tolist() == [True] + [False] * 9
    # the "corner" grid (ceil: 5 voxels) covers the volume
    g4 = np.ones(isotropic_grid(shape2, sp2, 1.5)[0], bool)
    assert g4.shape == (5, 1, 1) and grid_to_volume(g4, shape2, sp2, 1.5).all()


# -- helpers: the legacy contract --------------------------------------------------------------


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


# -- model: options and contracts ------------------------------------------------------------


def test_protocol_card_and_contracts(model: SAMMed3DModel) -> None:
    assert isinstance(model, Model)
    assert model.capabilities.dim == 3 and model.capabilities.accepts_mask
    assert model.card.checkpoint is None  # random weights
    assert model.card.version == "2"
    assert model.contract == "authors" and model.intensity == "auto"
    by = {c.modality: c for c in SAMMed3DModel.contracts}
    assert set(by) == {"CT", "MR"}
    assert by["CT"].name == "sammed3d-authors-ct-v1" and by["CT"].preset == "sammed3d_ct"
    assert by["MR"].name == "sammed3d-authors-mr-v1" and by["MR"].preset == "sammed3d_mr"
    for c in by.values():
        assert "uni-medical/SAM-Med3D" in c.source and "utils/infer_utils.py" in c.source
        assert "utils/data_loader.py" in c.source


def test_bad_options_rejected_before_building() -> None:
    with pytest.raises(ValueError, match="contract"):
        SAMMed3DModel(weights="random", contract="reference")
    with pytest.raises(ValueError, match="unknown intensity"):
        SAMMed3DModel(weights="random", intensity="ct_lung")
    with pytest.raises(ValueError, match="legacy"):
        SAMMed3DModel(weights="random", contract="legacy", intensity="sammed3d_ct")
    with pytest.raises(ValueError, match="grid"):
        SAMMed3DModel(weights="random", grid="middle")


def test_modality_picks_the_contract_and_is_recorded(model: SAMMed3DModel) -> None:
    img = np.zeros((8, 8, 8), np.float32)
    model.prepare(img, (1.5,) * 3, modality="MRI T2")
    assert model.contract_used is not None
    assert model.contract_used["contract"] == "sammed3d-authors-mr-v1"
    assert model.contract_used["modality"] == "MR"
    assert model.contract_used["first_mask"] == "zeros"
    model.prepare(img, (1.5,) * 3, modality="CT")
    assert model.contract_used["contract"] == "sammed3d-authors-ct-v1"
    with pytest.raises(UnknownModalityError, match="sammed3d"):
        model.prepare(img, (1.5,) * 3)
    with pytest.raises(UnknownModalityError, match="sammed3d"):
        model.prepare(img, (1.5,) * 3, modality="PET")
    preset = variant(model, intensity="sammed3d_mr")
    preset.prepare(img, (1.5,) * 3)  # a named preset needs no modality
    assert preset.contract_used is not None
    assert preset.contract_used["contract"] == "preset:sammed3d_mr"
    centre = variant(model, grid="centre")  # other numbers, another name
    centre.prepare(img, (1.5,) * 3, modality="CT")
    assert centre.contract_used is not None
    assert centre.contract_used["contract"] == "sammed3d-authors-ct-v1+grid:centre"
    legacy = variant(model, contract="legacy")
    legacy.prepare(img, (1.5,) * 3)
    assert legacy.contract_used is not None
    assert legacy.contract_used["contract"] == LEGACY_CONTRACT == "sammed3d-legacy"


def test_ct_is_clamped_before_resampling_mr_is_not(model: SAMMed3DModel) -> None:
    img = np.full((6, 6, 6), 3000.0, np.float32)
    img[0] = -3000.0
    model.prepare(img, (1.5,) * 3, modality="CT")
    assert model.resampled().max() == 1000.0 and model.resampled().min() == -1000.0
    model.prepare(img, (1.5,) * 3, modality="MR")
    assert model.resampled().max() == 3000.0 and model.resampled().min() == -3000.0


def test_box_prompt_rejected_before_compute(model: SAMMed3DModel) -> None:
    model.prepare(np.zeros((8, 8, 8), np.float32), (1.5, 1.5, 1.5), modality="CT")
    with pytest.raises(UnsupportedPrompt):
        model.predict(interaction(Box3D(lo=(0, 0, 0), hi=(2, 2, 2))), None)
    assert model._resampled is None  # nothing computed


# -- model: the authors' contract ------------------------------------------------------------


def test_real_encoder_end_to_end(model: SAMMed3DModel) -> None:
    """The one real encoder call: shapes, dtype and what comes back."""
    seen: list[Any] = []
    handle = model.net.image_encoder.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone())
    )
    try:
        rng = np.random.default_rng(0)
        model.prepare(rng.normal(size=(30, 60, 50)).astype(np.float32) + 1, (3.0, 1.0, 1.2), "MR")
        pred = model.predict(interaction(Point((15, 30, 25))), None)
    finally:
        handle.remove()
    assert len(seen) == 1
    x = seen[0]
    assert tuple(x.shape) == (1, 1, 128, 128, 128) and x.dtype == torch.float32
    assert bool(torch.isfinite(x).all())
    assert pred.mask.shape == (30, 60, 50) and pred.mask.dtype == bool
    logits = pred.logits[0]
    assert isinstance(logits, SAMMed3DLogits) and tuple(logits.low_res.shape) == (1, 1, 32, 32, 32)
    assert np.isfinite(logits.grid).all() and logits.volume_grid.shape == model.grid_shape
    assert logits.rim == 1 and logits.grid.shape == tuple(n + 2 for n in model.grid_shape)
    assert pred.timings.encoder_calls == 1 and pred.timings.encoder_s > 0


def test_all_points_and_zero_mask_reach_prompt_encoder(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    shape, spacing = (60, 200, 180), (3.0, 0.75, 0.9)  # → grid (120, 100, 108)
    model.prepare(rng.normal(size=shape).astype(np.float32), spacing, modality="MR")
    seen = stub_encoder(monkeypatch, model)
    calls = spy_prompt_encoder(monkeypatch, model.net.prompt_encoder)
    pts = [Point((30, 100, 90)), Point((40, 150, 20), positive=False), Point((50, 20, 170))]
    pred = model.predict(interaction(*pts), None)

    gshape = model.grid_shape
    assert gshape == (120, 100, 108)
    vox = grid_voxels([p.zyx for p in pts], shape, spacing, 1.5)
    start = bbox_crop_start(vox, 128)
    assert pred.logits[0].start == start
    coords, labels = calls[0]["points"]
    assert coords.shape == (1, 3, 3)  # all three points, not one
    np.testing.assert_array_equal(coords[0].numpy(), (vox - np.asarray(start))[:, ::-1])
    assert labels.tolist() == [[1, 0, 1]]
    fed = calls[0]["masks"]  # the authors' first step: zeros, not masks=None (no_mask_embed)
    assert fed is not None and tuple(fed.shape) == (1, 1, 32, 32, 32) and not fed.any()
    assert len(seen) == 1 and tuple(seen[0].shape) == (1, 1, 128, 128, 128)
    assert pred.mask.shape == shape and pred.mask.dtype == bool


def test_padded_crop_mask_inside_and_feedback(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # grid (200, 40, 40) at 1.5 mm (the grid is the volume): the crop covers z in
    # [start, start + 128) and is padded, never shifted, where it leaves the volume
    shape = (200, 40, 40)
    model.prepare(np.random.default_rng(1).normal(size=shape).astype(np.float32), (1.5,) * 3, "CT")
    seen = stub_encoder(monkeypatch, model)
    calls = spy_prompt_encoder(monkeypatch, model.net.prompt_encoder)
    first = model.predict(interaction(Point((190, 20, 20))), None)
    assert first.logits[0].start == (126, -44, -44)  # centred on the point, padded
    np.testing.assert_array_equal(calls[0]["points"][0][0, 0].numpy(), [64, 64, 64])
    x = seen[0][0, 0].numpy()  # (x, y, z): the padding (zeros before normalisation) is uniform
    assert np.ptp(x[:, :, 74:]) == 0 and np.ptp(x[:44]) == 0 and np.ptp(x[:, :44]) == 0
    outside = first.mask.copy()
    outside[126:] = False
    assert not outside.any()
    grid = first.logits[0].volume_grid
    assert (grid[:126] == BACKGROUND_LOGIT).all() and (grid[126:] != BACKGROUND_LOGIT).all()

    # two more points around the first keep the bounding box centre: same crop, cache hit
    second = model.predict(
        interaction(Point((189, 19, 19), positive=False), Point((191, 21, 21))), first
    )
    assert second.logits[0].start == (126, -44, -44)
    assert calls[1]["points"][0].shape == (1, 3, 3)  # kept the previous point
    np.testing.assert_array_equal(calls[1]["masks"].numpy(), first.logits[0].low_res.numpy())
    assert second.timings.cache_hits == 1 and second.timings.encoder_calls == 0

    third = model.predict(interaction(Point((100, 10, 10)), keep_previous=False), second)
    assert calls[2]["points"][0].shape == (1, 1, 3)
    assert calls[2]["masks"].shape == (1, 1, 32, 32, 32)  # regridded to the new crop
    assert third.logits[0].start == (36, -54, -54)
    assert len(seen) == 2


def test_degenerate_crop_is_left_as_it_is_and_warned(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.prepare(np.zeros((20, 20, 20), np.float32), (1.5,) * 3, modality="MR")
    seen = stub_encoder(monkeypatch, model)
    with pytest.warns(RuntimeWarning, match="left as it is"):
        model.predict(interaction(Point((10, 10, 10))), None)
    assert not seen[0].any()  # torchio would give NaN here
    assert model.contract_used is not None and model.contract_used["znorm_skipped"] == 1


# -- model: the legacy contract --------------------------------------------------------------


def test_legacy_contract_keeps_version_1(
    model: SAMMed3DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = variant(model, contract="legacy")
    rng = np.random.default_rng(0)
    shape, spacing = (60, 200, 180), (3.0, 0.75, 0.9)
    vol = rng.normal(size=shape).astype(np.float32)
    legacy.prepare(vol, spacing)  # the legacy contract needs no modality
    seen = stub_encoder(monkeypatch, legacy)
    calls = spy_prompt_encoder(monkeypatch, legacy.net.prompt_encoder)
    pts = [Point((30, 100, 90)), Point((40, 150, 20), positive=False), Point((50, 20, 170))]
    legacy.predict(interaction(*pts), None)
    gshape = legacy.grid_shape
    assert gshape == (120, 100, 108)
    grid = np.rint(map_index([p.zyx for p in pts], shape, gshape))
    start = crop_start(grid.mean(axis=0), gshape, 128)
    assert start == (0, 0, 0)
    np.testing.assert_allclose(calls[0]["points"][0][0].numpy(), (grid - start)[:, ::-1])
    assert calls[0]["masks"] is None  # no_mask_embed at the first step
    x = seen[0][0, 0].numpy()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3  # whole-crop z-score

    legacy.prepare(
        np.random.default_rng(1).normal(size=(200, 40, 40)).astype(np.float32), (1.5,) * 3
    )
    first = legacy.predict(interaction(Point((190, 20, 20))), None)
    assert first.logits[0].start == (72, 0, 0)  # shifted to stay inside the volume
    np.testing.assert_allclose(calls[1]["points"][0][0, 0].numpy(), [20, 20, 190 - 72])
