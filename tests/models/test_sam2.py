"""SAM 2 adapter: coordinates, placement, mask feedback, capabilities, intensity contract, and
agreement with the upstream ``SAM2ImagePredictor``.

The network is SAM 2.1 Hiera-T with seeded random weights (``weights="random"``), built once for
the module. The image encoder takes seconds per 1024² slice on a small CPU, so ``forward_image``
is replaced by a recorder that keeps its input and returns fixed backbone features; the one
agreement test runs the real encoder (once in the adapter, once in the upstream predictor).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from radioactive.models.base import CheckpointError, UnsupportedPrompt
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import Box2D, Point
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Lasso
from tests.models.spies import assert_box_mask
from tests.models.spies import spy_prompt_encoder as spy

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from radioactive.models.sam2 import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    SAM2Backend,
    SAM2Embedding,
    checkpoint_name,
    config_name,
)


@pytest.fixture(scope="module")
def sam2() -> SAM2Backend:
    with pytest.warns(UserWarning, match="random weights"):
        return SAM2Backend(variant="hiera_t", weights="random", device="cpu")


class ImageRecorder:
    """Stands in for ``forward_image``: records its input, returns fixed backbone features of the
    shapes the real one gives for a 1024² input (already projected by ``conv_s0`` / ``conv_s1``)."""

    shapes = ((32, 256, 256), (64, 128, 128), (256, 64, 64))

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        gen = torch.Generator().manual_seed(0)
        self.fpn = [torch.randn(1, *s, generator=gen) for s in self.shapes]

    def __call__(self, x):
        self.inputs.append(x.clone())
        b = x.shape[0]
        fpn = [f.expand(b, -1, -1, -1).clone() for f in self.fpn]
        return {
            "vision_features": fpn[-1],
            "vision_pos_enc": [torch.zeros_like(f) for f in fpn],
            "backbone_fpn": fpn,
        }


def record_encoder(monkeypatch, backend) -> ImageRecorder:
    rec = ImageRecorder()
    monkeypatch.setattr(backend.net, "forward_image", rec)
    return rec


def spy_prompt_encoder(monkeypatch, backend) -> list[dict[str, Any]]:
    return spy(monkeypatch, backend.net.sam_prompt_encoder)


def box_painting_decoder(monkeypatch, backend, prompt_calls, value: float = 10.0) -> None:
    """Replaces the mask decoder by one answering "the box it was prompted with" (the corner
    points labelled 2 and 3), painted on the 256² grid (model coordinates / 4)."""

    def forward(**kwargs):
        coords, labels = prompt_calls[-1]["points"]
        (x0, y0), (x1, y1) = (coords[0, :2] / 4).tolist()
        assert labels[0, :2].tolist() == [2, 3]
        low = torch.full((1, 1, 256, 256), -value)
        low[..., math.floor(y0) : math.ceil(y1) + 1, math.floor(x0) : math.ceil(x1) + 1] = value
        return low, torch.ones(1, 1), None, None

    monkeypatch.setattr(backend.net.sam_mask_decoder, "forward", forward)


def run(backend, volume, prompts, previous=None, **engine):
    model = SliceWiseModel(backend, **engine)
    model.prepare(volume)
    target = np.zeros(volume.shape, bool)
    return model, model.predict(make_interaction(prompts, prompts, target, "test"), previous)


# -- coordinates into the prompt encoder, placement back in the volume ---------------------------


@pytest.mark.parametrize(
    ("shape", "box", "point", "corners", "point_model", "neg_model"),
    [
        # landscape 64×128 → 1024²: x × 8, y × 16; the box holds its extreme pixels
        ((3, 64, 128), ((10, 20), (30, 60)), (40, 100), [[160, 160], [472, 464]], [800, 640],
         [48, 80]),
        # portrait 128×64 → 1024²: x × 16, y × 8
        ((3, 128, 64), ((20, 10), (60, 30)), (100, 40), [[160, 160], [464, 472]], [640, 800],
         [96, 40]),
    ],
    ids=["landscape", "portrait"],
)  # fmt: skip
def test_prompts_reach_the_prompt_encoder_as_the_image_predictor_sends_them(
    sam2, monkeypatch, shape, box, point, corners, point_model, neg_model
) -> None:
    from sam2.utils.transforms import SAM2Transforms

    record_encoder(monkeypatch, sam2)
    calls = spy_prompt_encoder(monkeypatch, sam2)
    volume = np.random.default_rng(0).random(shape).astype(np.float32)
    prompts = [Box2D(1, *box), Point((1, *point)), Point((1, 5, 6), positive=False)]
    _, pred = run(sam2, volume, prompts)
    (call,) = calls
    coords, labels = call["points"]
    # box first as two corners labelled 2 / 3, then the clicks; boxes never go in as boxes
    assert coords.tolist() == [[*corners, point_model, neg_model]]
    assert labels.tolist() == [[2, 3, 1, 0]]
    assert call["boxes"] is None and call["masks"] is None
    # the same numbers as the predictor's own transform (x / W, y / H, × 1024)
    (y0, x0), (y1, x1) = box
    xy = torch.tensor([[x0, y0], [x1 - 1, y1 - 1], [point[1], point[0]], [6.0, 5.0]])
    upstream = SAM2Transforms(1024, 0.0).transform_coords(xy, normalize=True, orig_hw=shape[1:])
    assert torch.allclose(coords[0], upstream)
    assert pred.mask.shape == shape and not pred.mask[[0, 2]].any()
    assert set(pred.logits) == {1} and tuple(pred.logits[1].shape) == (256, 256)


@pytest.mark.parametrize("shape", [(4, 64, 128), (4, 128, 64)], ids=["landscape", "portrait"])
def test_logits_come_back_onto_the_prompted_pixels(sam2, monkeypatch, shape) -> None:
    record_encoder(monkeypatch, sam2)
    calls = spy_prompt_encoder(monkeypatch, sam2)
    box_painting_decoder(monkeypatch, sam2, calls)
    lo, hi = ((12, 20), (40, 50)) if shape[1] == 64 else ((20, 12), (50, 40))
    volume = np.random.default_rng(1).random(shape).astype(np.float32)
    _, pred = run(sam2, volume, [Box2D(2, lo, hi)])
    assert_box_mask(pred.mask, 2, lo, hi)


# -- mask feedback and multimask ----------------------------------------------------------------


def test_second_step_feeds_back_the_first_steps_low_res_logits(sam2, monkeypatch) -> None:
    record_encoder(monkeypatch, sam2)
    calls = spy_prompt_encoder(monkeypatch, sam2)
    volume = np.random.default_rng(0).random((3, 64, 128)).astype(np.float32)
    model, first = run(sam2, volume, [Box2D(1, (10, 20), (30, 60))])
    low = first.logits[1]
    assert tuple(low.shape) == (256, 256)
    assert np.array_equal(first.mask[1], sam2.resize.logits_to_slice(low, (64, 128)) > 0)
    fix = [Point((1, 20, 40))]
    model.predict(make_interaction(fix, fix, np.zeros(volume.shape, bool), "test"), first)
    second = calls[-1]
    assert second["masks"].shape == (1, 1, 256, 256)
    assert torch.equal(second["masks"][0, 0], low)
    assert second["points"][1].tolist() == [[2, 3, 1]]  # the box is kept ("WithPrev")


def test_fed_back_logits_are_clamped_like_the_predictors_but_not_the_full_ones(
    sam2, monkeypatch
) -> None:
    record_encoder(monkeypatch, sam2)
    calls = spy_prompt_encoder(monkeypatch, sam2)
    box_painting_decoder(monkeypatch, sam2, calls, value=50.0)
    emb = sam2.encode(np.zeros((1, 32, 32), np.float32))[0]
    full, low = sam2.decode(emb, SlicePrompts(box=(4, 4, 20, 20)), (32, 32))
    assert float(low.max()) == 32.0 and float(low.min()) == -32.0  # never probabilities
    assert full.max() == 50.0 and full.min() == -50.0 and full.dtype == np.float32


def test_lone_point_takes_the_best_of_three_candidates(sam2, monkeypatch) -> None:
    record_encoder(monkeypatch, sam2)
    decoder = sam2.net.sam_mask_decoder
    original = decoder.forward
    outputs: list[tuple[bool, Any, Any]] = []

    def forward(**kwargs):
        out = original(**kwargs)
        outputs.append((kwargs["multimask_output"], out[0].clone(), out[1].clone()))
        return out

    monkeypatch.setattr(decoder, "forward", forward)
    volume = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    _, pred = run(sam2, volume, [Point((0, 10, 10))])
    multi, low, iou = outputs[-1]
    assert multi and low.shape[1] == 3
    best = low[0, int(torch.argmax(iou[0]))].clamp(-32, 32)
    assert torch.equal(pred.logits[0], best)
    run(sam2, volume, [Point((0, 10, 10)), Box2D(0, (2, 2), (20, 20))])
    assert outputs[-1][0] is False and outputs[-1][1].shape[1] == 1


# -- capabilities, cards, options ----------------------------------------------------------------


def test_unsupported_prompt_is_refused_before_any_compute(sam2, monkeypatch) -> None:
    rec = record_encoder(monkeypatch, sam2)
    calls = spy_prompt_encoder(monkeypatch, sam2)
    model = SliceWiseModel(sam2)
    assert model.capabilities.prompt_types == {"point", "box2d", "box3d", "scribble"}
    assert model.capabilities.accepts_mask
    model.prepare(np.zeros((3, 16, 16), np.float32))
    lasso = [Lasso(1, ((2, 2), (2, 10), (10, 6)))]
    with pytest.raises(UnsupportedPrompt, match="lasso"):
        model.predict(make_interaction(lasso, lasso, np.zeros((3, 16, 16), bool), "t"), None)
    assert rec.inputs == [] and calls == []


def test_card_names_and_options(sam2, tmp_path) -> None:
    assert SAM2Backend.card.name == "sam2" and SAM2Backend.card.licence == "Apache-2.0"
    assert "Ravi et al." in SAM2Backend.card.reference
    assert "SA-V" in SAM2Backend.card.training_data and "SA-1B" in SAM2Backend.card.training_data
    assert SAM2Backend.card.checkpoint == "sam2.1_hiera_large.pt"
    assert SAM2Backend.capabilities.prompt_types == {"point", "box2d"}
    # random weights are never mistaken for a checkpoint in the results
    assert sam2.card.checkpoint is None and sam2.card.checkpoint_sha256 is None
    assert "random" in sam2.card.training_data
    assert sam2.checkpoint_name == "sam2.1_hiera_tiny"
    assert checkpoint_name("hiera_b+", "2") == "sam2_hiera_base_plus"
    assert config_name("hiera_l") == "configs/sam2.1/sam2.1_hiera_l.yaml"
    assert config_name("hiera_s", "2") == "configs/sam2/sam2_hiera_s.yaml"
    with pytest.raises(ValueError, match="variant"):
        SAM2Backend(variant="hiera_x", weights="random")
    with pytest.raises(ValueError, match="version"):
        SAM2Backend(version="3", weights="random")
    with pytest.raises(ValueError, match="weights"):
        SAM2Backend(variant="hiera_t", weights="imagenet")
    with pytest.raises(ValueError, match="checkpoint"):
        SAM2Backend(variant="hiera_t", checkpoint=tmp_path / "x.pt", weights="random")
    with pytest.raises(CheckpointError):
        SAM2Backend(variant="hiera_t", cache=tmp_path)  # nothing fetched into this cache


# -- intensity contract ----------------------------------------------------------------------------


def test_encoder_input_is_imagenet_normalised_1024_square_rgb(sam2, monkeypatch) -> None:
    from sam2.utils.transforms import SAM2Transforms

    rec = record_encoder(monkeypatch, sam2)
    volume = np.zeros((2, 64, 128), np.float32)
    volume[0, :32] = 100.0  # top half bright
    volume[1, :32] = 40.0  # the same half, dimmer on the next slice
    volume[0, 5, 5] = 1e6  # an outlier above the volume's 99.5th percentile (100)
    norm = sam2.normalize_volume(volume)
    assert sam2.contract_used == {"contract": "sam2-reference-v1", "intensity": "sam_reference",
                                  "modality": None}  # fmt: skip
    assert set(np.unique(norm[0])) == {0.0, 1.0}  # the outlier clipped to the bright level
    # uint8 levels / 255 (ToTensor), one scale for the whole volume: 40 / 100 · 255 = 102
    assert np.array_equal(norm * 255, np.rint(norm * 255).astype(np.float32))
    assert set(np.unique(norm[1])) == {0.0, np.float32(102.0) / np.float32(255.0)}
    (emb,) = sam2.encode(norm[:1])
    (x,) = rec.inputs
    assert tuple(x.shape) == (1, 3, 1024, 1024)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    bright, dark = (1 - mean) / std, -mean / std
    # no padding, aspect not kept: the bright half is the top half of the square
    assert torch.allclose(x[0, :, 10:500], bright[:, None, None].expand(-1, 490, 1024))
    assert torch.allclose(x[0, :, 524:], dark[:, None, None].expand(-1, 500, 1024))
    # the predictor's own transform of the same uint8 RGB image: the same tensor, exactly
    rgb = np.repeat(np.rint(norm[0] * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert torch.equal(x[0], SAM2Transforms(1024, 0.0)(rgb))
    # the embedding holds the image embedding and both high-resolution maps, all counted
    assert isinstance(emb, SAM2Embedding)
    assert tuple(emb.image_embed.shape) == (256, 64, 64)
    assert [tuple(f.shape) for f in emb.high_res_feats] == [(32, 256, 256), (64, 128, 128)]
    assert sam2.embedding_nbytes(emb) == 4 * (256 * 64**2 + 32 * 256**2 + 64 * 128**2)
    # the earlier rule, named explicitly: each slice scaled to its own range
    monkeypatch.setattr(sam2, "intensity", "percentile")
    old = sam2.normalize_volume(volume)
    assert sam2.contract_used["contract"] == "preset:percentile"
    assert set(np.unique(old[1])) == {0.0, 1.0} and np.array_equal(old[0], norm[0])


# -- the real encoder, once: agreement with SAM2ImagePredictor -----------------------------------


@pytest.mark.slow
def test_agrees_with_the_upstream_image_predictor(sam2) -> None:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    h, w = 40, 56
    volume = np.zeros((3, h, w), np.float32)
    volume[1, 10:30, 15:40] = 1.0
    volume[1] += np.random.default_rng(0).random((h, w)).astype(np.float32) * 0.3
    model, pred = run(sam2, volume, [Box2D(1, (10, 15), (30, 40))])
    assert pred.timings.encoder_calls == 1 and pred.mask.shape == volume.shape
    ((emb, _),) = model.cache._items.values()

    predictor = SAM2ImagePredictor(sam2.net)
    norm = sam2.normalize_volume(volume)[1]
    predictor.set_image(np.repeat(np.rint(norm * 255).astype(np.uint8)[..., None], 3, axis=2))
    feats = predictor._features
    assert torch.allclose(emb.image_embed, feats["image_embed"][0], atol=1e-4)
    for mine, theirs in zip(emb.high_res_feats, feats["high_res_feats"], strict=True):
        assert torch.allclose(mine, theirs[0], atol=1e-4)

    # box only (the box holds its extreme pixels)
    box = np.array([15, 10, 39, 29])
    masks, _, low = predictor.predict(box=box, multimask_output=False, return_logits=True)
    assert float(low[0].std()) > 0.02  # a non-trivial answer to agree on
    assert torch.allclose(pred.logits[1], torch.from_numpy(low[0]), atol=1e-5)
    full = sam2.resize.logits_to_slice(pred.logits[1], (h, w))
    assert np.array_equal(pred.mask[1], full > 0)
    assert np.allclose(full, masks[0], atol=1e-5)
    # box + clicks + the previous logits, from the cached embedding
    sp = SlicePrompts(
        points=np.array([[20, 25], [5, 5]]), labels=np.array([1, 0]), box=(10, 15, 30, 40),
        mask_logits=pred.logits[1],
    )  # fmt: skip
    full2, low2 = sam2.decode(emb, sp, (h, w))
    masks2, _, ref2 = predictor.predict(
        point_coords=np.array([[25, 20], [5, 5]]), point_labels=np.array([1, 0]), box=box,
        mask_input=low, multimask_output=False, return_logits=True,
    )  # fmt: skip
    assert torch.allclose(low2, torch.from_numpy(ref2[0]), atol=1e-5)
    assert np.allclose(full2, masks2[0], atol=1e-5)
    # a lone click: three candidates, the best by predicted IoU
    _, low3 = sam2.decode(emb, SlicePrompts(points=np.array([[20, 25]]), labels=np.array([1])),
                          (h, w))  # fmt: skip
    _, iou, ref3 = predictor.predict(
        point_coords=np.array([[25, 20]]), point_labels=np.array([1]), multimask_output=True,
        return_logits=True,
    )  # fmt: skip
    assert torch.allclose(low3, torch.from_numpy(ref3[int(np.argmax(iou))]), atol=1e-5)


def _embedding(seed: int) -> SAM2Embedding:
    gen = torch.Generator().manual_seed(seed)
    return SAM2Embedding(torch.randn(256, 64, 64, generator=gen),
                         (torch.randn(32, 256, 256, generator=gen),
                          torch.randn(64, 128, 128, generator=gen)))  # fmt: skip


@pytest.mark.parametrize("structure", ["box", "box+point", "points", "box+mask"])
def test_a_batch_of_slices_decodes_as_the_slices_one_by_one(sam2, structure) -> None:
    shape = (96, 80)
    rng = np.random.default_rng(1)
    prompts = []
    for i in range(4):
        sp = SlicePrompts()
        if "box" in structure:
            sp.box = (10 + i, 12, 60 + i, 70)
        if "point" in structure:
            sp.points = rng.integers(5, 75, size=(2 if structure == "points" else 1, 2))
            sp.labels = np.array([1, 0][: len(sp.points)])
        if "mask" in structure:
            sp.mask_logits = torch.randn(256, 256)
        prompts.append(sp)
    embeddings = [_embedding(i) for i in range(4)]
    batched = sam2.decode_batch(embeddings, prompts, shape)
    for (full, low), emb, sp in zip(batched, embeddings, prompts, strict=True):
        one_full, one_low = sam2.decode(emb, sp, shape)
        np.testing.assert_allclose(full, one_full, atol=1e-4)
        assert torch.allclose(low, one_low, atol=1e-4)
        uncertain = np.abs(one_full) < 1e-3
        assert np.array_equal((full > 0) | uncertain, (one_full > 0) | uncertain)


def test_the_engine_groups_slices_by_prompt_structure(sam2, monkeypatch) -> None:
    record_encoder(monkeypatch, sam2)
    calls: list[int] = []
    decode_batch = sam2.decode_batch

    def counting(embeddings, prompts, shape):
        calls.append(len(embeddings))
        return decode_batch(embeddings, prompts, shape)

    monkeypatch.setattr(sam2, "decode_batch", counting)
    volume = np.random.default_rng(0).random((7, 48, 40)).astype(np.float32)
    prompts = [*(Box2D(z, (5, 5), (30, 30)) for z in range(6)), Point((6, 20, 20))]
    _, batched = run(sam2, volume, prompts, decode_batch_size=4)
    # six boxes in chunks of four and two, and the lone point alone
    assert sorted(calls) == [1, 2, 4]
    _, single = run(sam2, volume, prompts, decode_batch_size=1)
    assert batched.timings.slices_inferred == single.timings.slices_inferred == 7
    assert np.array_equal(batched.mask, single.mask)


def test_bf16_runs_the_decoder_under_autocast_and_returns_float32_logits(sam2, monkeypatch):
    record_encoder(monkeypatch, sam2)
    seen: list[tuple[bool, Any]] = []
    forward = sam2.net.sam_mask_decoder.forward

    def spying(*args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return forward(*args, **kwargs)

    monkeypatch.setattr(sam2.net.sam_mask_decoder, "forward", spying)
    volume = np.random.default_rng(0).random((3, 48, 40)).astype(np.float32)
    prompts = [Box2D(1, (5, 5), (30, 30))]
    _, half = run(sam2, volume, prompts, precision="bf16")
    _, full = run(sam2, volume, prompts)
    assert seen == [(True, torch.bfloat16), (False, torch.get_autocast_dtype("cpu"))]
    assert half.mask.shape == full.mask.shape and half.mask.dtype == bool
    with pytest.raises(ValueError, match="precision must be one of"):
        SliceWiseModel(sam2, precision="fp8")


def test_a_model_without_a_torch_device_has_no_precision_to_choose() -> None:
    from radioactive.models import get_model

    with pytest.raises(ValueError, match="needs a torch model"):
        get_model("random_walker", precision="bf16")
