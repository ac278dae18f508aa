"""SAM and MedSAM adapters: coordinates, intensity contracts, mask feedback, capabilities.

The networks are ``segment_anything`` ViT-B models with seeded random weights
(``weights="random"``), built once for the module. Encoding a 1024² slice with ViT-B takes tens
of seconds on a small CPU, so the image encoder is replaced by a recorder that keeps its input and
returns a fixed embedding; one test runs the real encoder end to end. Prompt encoder and mask
decoder calls are spied on to check, in the model's own frame, what the adapter hands them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radioactive.models.base import CheckpointError, UnsupportedPrompt
from radioactive.models.sam import MedSAMBackend, SAMBackend, SquareResize, build_net
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import Box2D, Point
from radioactive.prompts.cost import make_interaction
from tests.models.spies import assert_box_mask
from tests.models.spies import spy_prompt_encoder as spy

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def sam() -> SAMBackend:
    with pytest.warns(UserWarning, match="random weights"):
        return SAMBackend(variant="vit_b", weights="random", device="cpu")


@pytest.fixture(scope="module")
def medsam() -> MedSAMBackend:
    with pytest.warns(UserWarning, match="random weights"):
        return MedSAMBackend(weights="random", device="cpu")


@pytest.fixture(scope="module")
def medsam_percentile() -> MedSAMBackend:
    """MedSAM with the earlier default intensity rule, named explicitly."""
    with pytest.warns(UserWarning, match="random weights"):
        return MedSAMBackend(weights="random", device="cpu", intensity="percentile")


def run_medsam(backend, volume, prompts, modality="CT"):
    """As :func:`run`, with the volume's modality (MedSAM's contract depends on it)."""
    model = SliceWiseModel(backend)
    model.prepare(volume, modality=modality)
    target = np.zeros(volume.shape, bool)
    return model, model.predict(make_interaction(prompts, prompts, target, "test"), None)


class EncoderRecorder:
    """Stands in for the image encoder: records its input, returns a fixed embedding."""

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        gen = torch.Generator().manual_seed(0)
        self.embedding = torch.randn(256, 64, 64, generator=gen)

    def __call__(self, x):
        self.inputs.append(x.clone())
        return self.embedding.expand(x.shape[0], -1, -1, -1).clone()


def record_encoder(monkeypatch, backend) -> EncoderRecorder:
    rec = EncoderRecorder()
    monkeypatch.setattr(backend.net.image_encoder, "forward", rec)
    return rec


def spy_prompt_encoder(monkeypatch, backend) -> list[dict[str, Any]]:
    return spy(monkeypatch, backend.net.prompt_encoder)


def box_painting_decoder(monkeypatch, backend, prompt_calls) -> None:
    """Replaces the mask decoder by one that answers "the box it was prompted with", painted in
    the 256² low-resolution frame (model coordinates / 4): placement can then be checked."""

    def forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                multimask_output):  # fmt: skip
        x0, y0, x1, y1 = (prompt_calls[-1]["boxes"][0] / 4).tolist()
        low = torch.full((1, 1, 256, 256), -10.0)
        low[..., math.floor(y0) : math.ceil(y1) + 1, math.floor(x0) : math.ceil(x1) + 1] = 10.0
        return low, torch.ones(1, 1)

    monkeypatch.setattr(backend.net.mask_decoder, "forward", forward)


def run(backend, volume, prompts, previous=None, **engine):
    model = SliceWiseModel(backend, **engine)
    model.prepare(volume)
    target = np.zeros(volume.shape, bool)
    return model, model.predict(make_interaction(prompts, prompts, target, "test"), previous)


# -- SquareResize -------------------------------------------------------------------------------


def test_square_resize_scales_x_and_y_independently() -> None:
    t = SquareResize(1024)
    assert t.resized_shape((64, 128)) == (1024, 1024)
    assert t.points([[16, 32]], (64, 128)).tolist() == [[256.0, 256.0]]  # (x, y)
    box = t.box((10, 20, 30, 60), (64, 128))
    # MedSAM_Inference.py: box_np / [W, H, W, H] * 1024, box_np = extreme pixels (x0, y0, x1, y1)
    reference = np.array([20, 10, 59, 29]) / np.array([128, 64, 128, 64]) * 1024
    assert box.tolist() == reference.tolist() == [160.0, 160.0, 472.0, 464.0]
    with pytest.raises(ValueError, match="mode"):
        SquareResize(1024, mode="nearest")


@given(
    h=st.integers(1, 700), w=st.integers(1, 700), fy=st.floats(0, 1), fx=st.floats(0, 1),
)  # fmt: skip
def test_square_resize_points_round_trip(h, w, fy, fx) -> None:
    t = SquareResize(1024)
    yx = np.array([[fy * (h - 1), fx * (w - 1)]])
    xy = t.points(yx, (h, w))
    assert 0 <= xy[0, 0] <= 1024 and 0 <= xy[0, 1] <= 1024
    assert np.allclose(t.points_back(xy, (h, w)), yx, atol=1e-9)


def test_square_resize_image_fills_the_square_and_logits_map_back() -> None:
    t = SquareResize(64)
    img = torch.zeros(1, 1, 40, 80)
    img[..., 20:, 40:] = 1.0  # bottom-right quarter
    out = t.image(img)
    assert out.shape == (1, 1, 64, 64)
    assert out[..., 40:, 40:].min() > 0.9 and out[..., :24, :].max() < 0.1  # no padding rows
    low = torch.full((16, 16), -5.0)
    low[0:8, 8:16] = 5.0  # top-right quarter of the square is the top-right quarter of the slice
    full = t.logits_to_slice(low, (40, 80))
    assert full.shape == (40, 80) and full.dtype == np.float32
    mask = full > 0
    assert mask[:19, 41:].all() and not mask[:, :39].any() and not mask[21:].any()


# -- coordinates into the prompt encoder, placement back in the volume ---------------------------


@pytest.mark.parametrize(
    ("shape", "box", "point", "box_model", "point_model"),
    [
        # landscape 64×128 → 512×1024 (+ 512 rows of padding): scale 8 on both axes
        ((3, 64, 128), ((10, 20), (30, 60)), (40, 100), [160, 80, 472, 232], [800, 320]),
        # portrait 128×64 → 1024×512 (+ 512 columns of padding)
        ((3, 128, 64), ((20, 10), (60, 30)), (100, 40), [80, 160, 232, 472], [320, 800]),
    ],
    ids=["landscape", "portrait"],
)  # fmt: skip
def test_sam_prompts_reach_the_prompt_encoder_in_model_coordinates(
    sam, monkeypatch, shape, box, point, box_model, point_model
) -> None:
    from segment_anything.utils.transforms import ResizeLongestSide

    record_encoder(monkeypatch, sam)
    calls = spy_prompt_encoder(monkeypatch, sam)
    volume = np.random.default_rng(0).random(shape).astype(np.float32)
    prompts = [Box2D(1, *box), Point((1, *point)), Point((1, 5, 6), positive=False)]
    _, pred = run(sam, volume, prompts)
    (call,) = calls
    assert call["boxes"].tolist() == [box_model]
    coords, labels = call["points"]
    assert coords.tolist() == [[point_model, [6 * 8, 5 * 8]]] and labels.tolist() == [[1, 0]]
    # the same numbers as segment_anything's own ResizeLongestSide
    (y0, x0), (y1, x1) = box
    upstream = ResizeLongestSide(1024).apply_boxes(np.array([[x0, y0, x1 - 1, y1 - 1]]), shape[1:])
    assert np.allclose(upstream, [box_model])
    assert call["masks"] is None  # first step: nothing to feed back
    assert pred.mask.shape == shape and not pred.mask[[0, 2]].any()
    assert set(pred.logits) == {1} and tuple(pred.logits[1].shape) == (256, 256)


@pytest.mark.parametrize("which", ["sam-landscape", "sam-portrait", "medsam"])
def test_logits_come_back_onto_the_prompted_pixels(sam, medsam, monkeypatch, which) -> None:
    backend = medsam if which == "medsam" else sam
    shape = (4, 128, 64) if which == "sam-portrait" else (4, 64, 128)
    record_encoder(monkeypatch, backend)
    calls = spy_prompt_encoder(monkeypatch, backend)
    box_painting_decoder(monkeypatch, backend, calls)
    lo, hi = ((12, 20), (40, 50)) if shape[1] == 64 else ((20, 12), (50, 40))
    volume = np.random.default_rng(1).random(shape).astype(np.float32)
    if which == "medsam":  # MedSAM's contract depends on the modality
        _, pred = run_medsam(backend, volume, [Box2D(2, lo, hi)], modality="CT")
    else:
        _, pred = run(backend, volume, [Box2D(2, lo, hi)])
    assert_box_mask(pred.mask, 2, lo, hi)


def test_medsam_boxes_use_the_square_frame(medsam, monkeypatch) -> None:
    record_encoder(monkeypatch, medsam)
    calls = spy_prompt_encoder(monkeypatch, medsam)
    volume = np.random.default_rng(0).random((3, 64, 128)).astype(np.float32)
    _, pred = run_medsam(medsam, volume, [Box2D(1, (10, 20), (30, 60))])
    (call,) = calls
    # x scale 1024/128 = 8, y scale 1024/64 = 16: extreme pixels 20..59, 10..29
    assert call["boxes"].tolist() == [[160.0, 160.0, 472.0, 464.0]]
    assert call["points"] is None and call["masks"] is None
    assert pred.mask.shape == (3, 64, 128) and not pred.mask[[0, 2]].any()


# -- capabilities ------------------------------------------------------------------------------


def test_medsam_refuses_points_before_any_compute(medsam, monkeypatch) -> None:
    rec = record_encoder(monkeypatch, medsam)
    calls = spy_prompt_encoder(monkeypatch, medsam)
    model = SliceWiseModel(medsam)
    assert model.capabilities.prompt_types == {"box2d", "box3d"}
    assert not model.capabilities.accepts_mask
    model.prepare(np.zeros((3, 16, 16), np.float32), modality="MR")
    target = np.zeros((3, 16, 16), bool)
    with pytest.raises(UnsupportedPrompt, match="point"):
        model.predict(make_interaction([Point((1, 4, 4))], [Point((1, 4, 4))], target, "t"), None)
    assert rec.inputs == [] and calls == []
    # called directly, the backend refuses too (no embedding needed)
    pts = SlicePrompts(points=np.array([[4, 4]]), labels=np.array([1]), box=(0, 0, 8, 8))
    with pytest.raises(UnsupportedPrompt):
        medsam.decode(None, pts, (16, 16))
    with pytest.raises(ValueError, match="box"):
        medsam.decode(None, SlicePrompts(), (16, 16))
    assert calls == []


def test_cards_and_capabilities(sam, medsam) -> None:
    assert SAMBackend.card.name == "sam" and MedSAMBackend.card.name == "medsam"
    assert SAMBackend.card.checkpoint == "sam_vit_h_4b8939.pth"
    assert MedSAMBackend.card.checkpoint == "medsam_vit_b.pth"
    assert "Kirillov" in SAMBackend.card.reference and "Ma et al." in MedSAMBackend.card.reference
    assert SAMBackend.capabilities.prompt_types == {"point", "box2d"}
    assert SAMBackend.capabilities.accepts_mask
    # random weights are never mistaken for a checkpoint in the results
    for b in (sam, medsam):
        assert b.card.checkpoint is None and b.card.checkpoint_sha256 is None
        assert "random" in b.card.training_data
    assert sam.checkpoint_name == "sam_vit_b" and medsam.checkpoint_name == "medsam"


def test_bad_options_fail_before_building(tmp_path) -> None:
    with pytest.raises(ValueError, match="variant"):
        SAMBackend(variant="vit_x", weights="random")
    with pytest.raises(ValueError, match="weights"):
        SAMBackend(variant="vit_b", weights="imagenet")
    with pytest.raises(ValueError, match="checkpoint"):
        MedSAMBackend(checkpoint=tmp_path / "x.pth", weights="random")
    with pytest.raises(CheckpointError):
        SAMBackend(variant="vit_b", cache=tmp_path)  # nothing fetched into this cache
    with pytest.raises(CheckpointError):
        MedSAMBackend(cache=tmp_path)


def test_random_weights_are_seeded_without_touching_global_state() -> None:
    before = torch.get_rng_state()
    a = build_net(lambda checkpoint: torch.nn.Linear(4, 4))
    b = build_net(lambda checkpoint: torch.nn.Linear(4, 4))
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(torch.get_rng_state(), before)


# -- mask feedback and multimask ----------------------------------------------------------------


def test_second_step_feeds_back_the_first_steps_low_res_logits(sam, monkeypatch) -> None:
    record_encoder(monkeypatch, sam)
    calls = spy_prompt_encoder(monkeypatch, sam)
    volume = np.random.default_rng(0).random((3, 64, 128)).astype(np.float32)
    model, first = run(sam, volume, [Box2D(1, (10, 20), (30, 60))])
    low = first.logits[1]
    assert tuple(low.shape) == (256, 256)
    assert low.min() < 0 or low.max() > 1  # logits, not probabilities
    assert np.array_equal(first.mask[1], sam.resize.logits_to_slice(low, (64, 128)) > 0)
    target = np.zeros(volume.shape, bool)
    fix = [Point((1, 20, 40))]
    model.predict(make_interaction(fix, fix, target, "test"), first)
    second = calls[-1]
    assert second["masks"].shape == (1, 1, 256, 256)
    assert torch.equal(second["masks"][0, 0], low)
    assert second["boxes"] is not None  # the box is kept ("WithPrev")


def test_lone_point_takes_the_best_of_three_candidates(sam, monkeypatch) -> None:
    record_encoder(monkeypatch, sam)
    decoder = sam.net.mask_decoder
    original = decoder.forward
    outputs: list[tuple[bool, Any, Any]] = []

    def forward(**kwargs):
        low, iou = original(**kwargs)
        outputs.append((kwargs["multimask_output"], low.clone(), iou.clone()))
        return low, iou

    monkeypatch.setattr(decoder, "forward", forward)
    volume = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    _, pred = run(sam, volume, [Point((0, 10, 10))])
    multi, low, iou = outputs[-1]
    assert multi and low.shape[1] == 3
    assert torch.equal(pred.logits[0], low[0, int(torch.argmax(iou[0]))])
    run(sam, volume, [Point((0, 10, 10)), Box2D(0, (2, 2), (20, 20))])
    assert outputs[-1][0] is False and outputs[-1][1].shape[1] == 1


# -- intensity contracts -------------------------------------------------------------------------


def test_sam_input_is_volume_wide_uint8_levels_through_the_predictors_transform(
    sam, monkeypatch
) -> None:
    from segment_anything.utils.transforms import ResizeLongestSide

    rec = record_encoder(monkeypatch, sam)
    volume = np.zeros((2, 64, 128), np.float32)
    volume[0, :32] = 100.0  # top half bright
    volume[1, :32] = 40.0  # the same half, dimmer on the next slice
    volume[0, 40, 5] = 1e6  # an outlier above the volume's 99.5th percentile (100)
    norm = sam.normalize_volume(volume)
    assert sam.contract_used == {"contract": "sam-reference-v1", "intensity": "sam_reference",
                                 "modality": None}  # fmt: skip
    assert np.array_equal(norm, np.rint(norm))  # the 256 uint8 levels
    assert set(np.unique(norm[0])) == {0.0, 255.0} and norm[0, 40, 5] == 255.0  # clipped
    # one scale for the whole volume: 40 / 100 · 255 = 102, not the slice's own maximum
    assert set(np.unique(norm[1])) == {0.0, 102.0}
    sam.encode(norm[1:])
    (x,) = rec.inputs
    assert tuple(x.shape) == (1, 3, 1024, 1024)
    mean, std = sam.net.pixel_mean.flatten(), sam.net.pixel_std.flatten()
    bright = (102.0 - mean) / std
    dark = -mean / std
    assert torch.allclose(x[0, :, 10:240, 10:1000], bright[:, None, None].expand(-1, 230, 990))
    assert torch.allclose(x[0, :, 270:500, 10:1000], dark[:, None, None].expand(-1, 230, 990))
    assert (x[0, :, 512:] == 0).all()  # padding after normalisation, as Sam.preprocess
    # SamPredictor.set_image: the uint8 RGB slice through ResizeLongestSide.apply_image, then
    # Sam.preprocess: the same tensor, exactly
    rgb = np.repeat(norm[1].astype(np.uint8)[..., None], 3, axis=2)
    resized = torch.as_tensor(ResizeLongestSide(1024).apply_image(rgb)).permute(2, 0, 1)
    assert torch.equal(x, sam.net.preprocess(resized[None]))
    # the earlier rule, named explicitly: each slice scaled to its own range
    monkeypatch.setattr(sam, "intensity", "percentile")
    old = sam.normalize_volume(volume)
    assert sam.contract_used["contract"] == "preset:percentile"
    assert set(np.unique(old[1])) == {0.0, 255.0} and np.array_equal(old[0], norm[0])


def test_medsam_input_is_per_slice_clipped_square_and_in_0_1(
    medsam_percentile, monkeypatch
) -> None:
    # the earlier default, named explicitly: each slice clipped to its own percentiles
    backend = medsam_percentile
    rec = record_encoder(monkeypatch, backend)
    ramp = np.broadcast_to(np.arange(128, dtype=np.float32), (64, 128))
    volume = np.stack([ramp, 1000 * ramp])
    volume[0, 0, 0] = 1e6  # outlier: clipped to slice 0's own 99.5th percentile
    norm = backend.normalize_volume(volume)  # no modality needed: the preset is named
    assert backend.contract_used["contract"] == "preset:percentile"
    assert norm[0, 0, 0] == 255.0 and norm[1, 0, 0] == 0.0
    rest = np.ones((64, 128), bool)
    rest[0, 0] = False
    assert np.array_equal(norm[0][rest], norm[1][rest])  # each slice on its own range
    assert norm.min() == 0.0 and norm.max() == 255.0
    assert np.array_equal(norm, np.rint(norm))  # the 256 uint8 levels
    backend.encode(norm[1:])
    (x,) = rec.inputs
    assert tuple(x.shape) == (1, 3, 1024, 1024)
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    # no padding, no pixel mean: the ramp spans the whole square on every row, top to bottom
    row_top, row_bottom = x[0, 0, 8], x[0, 0, 1015]
    assert torch.allclose(row_top, row_bottom, atol=1e-6)
    assert row_top[:4].max() < 0.01 and row_top[-4:].min() > 0.99
    # MedSAM_Inference.py's preprocessing of the same uint8 slice (skimage cubic resize,
    # anti-aliased, uint8 cast, min-max): the same image, exactly
    from skimage import transform

    ref = transform.resize(norm[1].astype(np.uint8), (1024, 1024), order=3, preserve_range=True,
                           anti_aliasing=True).astype(np.uint8)  # fmt: skip
    ref = (ref - ref.min()) / np.clip(ref.max() - ref.min(), 1e-8, None)
    assert torch.equal(x[0, 0], torch.as_tensor(ref, dtype=torch.float32))


def test_medsam_default_is_the_authors_contract_for_the_modality(medsam) -> None:
    from radioactive.models.contracts import UnknownModalityError

    # CT: the window 40 / 400 on every slice alike (air, soft tissue at the level, bone)
    ct = np.stack([np.full((8, 12), v, np.int16) for v in (-1000, 40, 2000)])
    norm = medsam.normalize_volume(ct, "CT")
    assert medsam.contract_used == {"contract": "medsam-ct-v1", "intensity": "medsam_ct",
                                    "modality": "CT"}  # fmt: skip
    assert norm[:, 0, 0].tolist() == [0.0, 127.0, 255.0]  # 200 / 400 · 255 = 127.5, truncated
    # MR: percentiles of the positive voxels; the zero background stays 0
    mr = np.zeros((2, 8, 12), np.float32)
    mr[:, 2:6, 2:10] = np.linspace(100.0, 900.0, 64).reshape(2, 4, 8)
    norm = medsam.normalize_volume(mr, "MRI T2")
    assert medsam.contract_used["contract"] == "medsam-mr-v1"
    assert (norm[mr == 0] == 0).all() and norm.max() == 255.0 and norm[mr > 0].min() == 0.0
    # unknown modality: refused, not guessed, before any compute
    with pytest.raises(UnknownModalityError, match="medsam"):
        SliceWiseModel(medsam).prepare(ct)


# -- the real encoder, once ------------------------------------------------------------------------


@pytest.mark.slow
def test_real_vit_b_encoder_end_to_end(sam) -> None:
    volume = np.zeros((3, 40, 56), np.float32)
    volume[1, 10:30, 15:40] = 1.0
    model, pred = run(sam, volume, [Box2D(1, (10, 15), (30, 40))])
    assert pred.timings.encoder_calls == 1 and pred.timings.slices_inferred == 1
    assert pred.mask.shape == volume.shape and not pred.mask[[0, 2]].any()
    low = pred.logits[1]
    assert tuple(low.shape) == (256, 256) and torch.isfinite(low).all()
    (emb,) = model.cache._items.values()
    assert tuple(emb[0].shape) == (256, 64, 64) and emb[1] == 256 * 64 * 64 * 4
