"""SAM 2 video-predictor adapter: frames, coordinates, propagation directions, z-limits, placement,
refinement in the same inference state, capabilities and registry.

The network is SAM 2.1 Hiera-T with seeded random weights (``weights="random"``), built once for
the module. On a CPU its image encoder, mask decoder, memory encoder and memory attention take
seconds per frame, so the fast tests replace them by recorders: fixed backbone features, a
decoder answering a known rectangle, zero memories, identity memory attention. The predictor's
own logic (inference state, prompt encoding, conditioning frames, propagation order, resizing of
the output) is upstream's. One slow test runs the whole network.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from radioactive.models.base import CheckpointError, UnsupportedPrompt
from radioactive.prompts import Box2D, Point
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Box3D, Interaction, Lasso, Scribble, ZLimit

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from radioactive.models.sam2 import SAM2Resize  # noqa: E402
from radioactive.models.sam2_video import (  # noqa: E402
    SAM2VideoModel,
    VolumeFrames,
    frames_source,
    propagation_range,
)

SHAPE = (6, 64, 96)  # (z, y, x): non-square slices, so x and y cannot be swapped unnoticed
#: the decoder stub paints rows 64:192, columns 64:192 of the 256² grid: on a 64 × 96 slice
#: (× 1/4 rows, × 3/8 columns, bilinear) that is rows 16:48 and columns 24:72
PAINTED = ((16, 48), (24, 72))


@pytest.fixture(scope="module")
def video() -> SAM2VideoModel:
    with pytest.warns(UserWarning, match="random weights"):
        return SAM2VideoModel(variant="hiera_t", weights="random", device="cpu")


class ImageRecorder:
    """Stands in for ``forward_image``: keeps its input, returns fixed backbone features of the
    shapes the real one gives for a 1024² input."""

    shapes = ((32, 256, 256), (64, 128, 128), (256, 64, 64))

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        gen = torch.Generator().manual_seed(0)
        self.fpn = [torch.randn(1, *s, generator=gen) for s in self.shapes]

    def __call__(self, x):
        self.inputs.append(x.clone())
        fpn = [f.expand(x.shape[0], -1, -1, -1).clone() for f in self.fpn]
        return {
            "vision_features": fpn[-1],
            "vision_pos_enc": [torch.zeros_like(f) for f in fpn],
            "backbone_fpn": fpn,
        }


@dataclasses.dataclass
class Spies:
    encoder: ImageRecorder
    memory: list[int]  # memory tokens the memory attention received, per call
    memorised: list[Any]  # the high-resolution masks handed to the memory encoder
    adds: list[dict[str, Any]]  # arguments of add_new_points_or_box
    passes: list[dict[str, Any]]  # arguments of propagate_in_video and the frames it yielded


@pytest.fixture
def spies(video, monkeypatch) -> Spies:
    net = video.net
    spies = Spies(ImageRecorder(), [], [], [], [])
    monkeypatch.setattr(net, "forward_image", spies.encoder)

    def attention(curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0):
        spies.memory.append(int(memory.shape[0]))
        return curr[0] if isinstance(curr, list) else curr

    monkeypatch.setattr(net.memory_attention, "forward", attention)

    def decoder(*, image_embeddings, multimask_output, **_):  # answers a known rectangle
        b, m = image_embeddings.shape[0], 3 if multimask_output else 1
        masks = torch.full((b, m, 256, 256), -10.0)
        masks[..., 64:192, 64:192] = 10.0
        return masks, torch.ones(b, m), torch.zeros(b, m, 256), torch.full((b, 1), 10.0)

    monkeypatch.setattr(net.sam_mask_decoder, "forward", decoder)

    def memory_encoder(pix_feat, masks, skip_mask_sigmoid=False):
        spies.memorised.append(masks.clone())
        out = torch.zeros(pix_feat.shape[0], net.mem_dim, *pix_feat.shape[-2:])
        return {"vision_features": out, "vision_pos_enc": [torch.zeros_like(out)]}

    monkeypatch.setattr(net.memory_encoder, "forward", memory_encoder)
    add = net.add_new_points_or_box

    def add_spy(inference_state, **kwargs):
        spies.adds.append(dict(kwargs))
        return add(inference_state, **kwargs)

    monkeypatch.setattr(net, "add_new_points_or_box", add_spy)
    propagate = net.propagate_in_video

    def propagate_spy(inference_state, **kwargs):
        record: dict[str, Any] = {**kwargs, "frames": []}
        spies.passes.append(record)
        for out in propagate(inference_state, **kwargs):
            record["frames"].append(out[0])
            yield out

    monkeypatch.setattr(net, "propagate_in_video", propagate_spy)
    return spies


def volume(shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(0).random(shape).astype(np.float32)


def interaction(prompts, keep_previous: bool = True):
    target = np.zeros(SHAPE, bool)
    return make_interaction(prompts, prompts, target, "test", keep_previous=keep_previous)


def painted(zs) -> np.ndarray:
    expected = np.zeros(SHAPE, bool)
    (y0, y1), (x0, x1) = PAINTED
    for z in zs:
        expected[z, y0:y1, x0:x1] = True
    return expected


# -- prompts reach the predictor on their frame, in slice pixels ---------------------------------


def test_prompts_reach_the_predictor_on_their_frame_in_slice_pixels(video, spies) -> None:
    video.prepare(volume(), (2.0, 1.0, 1.0))
    prompts = [
        Point((2, 10, 70)),
        Point((2, 40, 5), positive=False),
        Box2D(4, (8, 16), (30, 50)),
    ]
    pred = video.predict(interaction(prompts), None)
    assert [a["frame_idx"] for a in spies.adds] == [2, 4]
    first, second = spies.adds
    assert first["obj_id"] == second["obj_id"] == 1
    assert first["normalize_coords"] is True and first["clear_old_points"] is True
    # (y, x) voxel indices → (x, y) pixels of the slice; the box as its first and last pixel
    assert first["points"].tolist() == [[70.0, 10.0], [5.0, 40.0]]
    assert first["labels"].tolist() == [1, 0] and first["box"] is None
    assert second["points"] is None and second["labels"] is None
    assert second["box"].tolist() == [16.0, 8.0, 49.0, 29.0]
    # what the predictor made of them: the image backend's model-frame coordinates
    resize, hw = SAM2Resize(1024), SHAPE[1:]
    inputs = video.state["point_inputs_per_obj"][0]
    expected = resize.points([[10, 70], [40, 5]], hw)
    assert torch.allclose(inputs[2]["point_coords"][0].double(), torch.from_numpy(expected))
    assert inputs[2]["point_labels"].tolist() == [[1, 0]]
    corners = resize.box((8, 16, 30, 50), hw).reshape(2, 2)
    assert torch.allclose(inputs[4]["point_coords"][0].double(), torch.from_numpy(corners))
    assert inputs[4]["point_labels"].tolist() == [[2, 3]]
    assert pred.mask.shape == SHAPE and pred.mask.dtype == bool and pred.logits == {}


def test_frames_are_the_normalised_slices_as_the_image_backend_sees_them(video, spies) -> None:
    from sam2.utils.transforms import SAM2Transforms

    vol = volume()
    video.prepare(vol, (1.0, 1.0, 1.0))
    video.predict(interaction([Point((3, 20, 20))]), None)
    state = video.state
    assert isinstance(state["images"], VolumeFrames) and state["num_frames"] == SHAPE[0]
    assert (state["video_height"], state["video_width"]) == SHAPE[1:]
    norm = video.normalize_volume(vol)
    # the contract's levels: the whole volume clipped to its 0.5 / 99.5 percentiles, one scale
    clipped = np.clip(vol.astype(np.float64), *np.percentile(vol.astype(np.float64), [0.5, 99.5]))
    levels = np.rint((clipped - clipped.min()) / (clipped.max() - clipped.min()) * 255)
    assert np.array_equal(np.rint(norm * 255), levels)
    rgb = np.repeat(levels[3].astype(np.uint8)[..., None], 3, axis=2)
    assert torch.equal(state["images"][3], SAM2Transforms(1024, 0.0)(rgb))
    # init_state warmed up on frame 0, then the prompted frame 3 was encoded
    assert torch.equal(spies.encoder.inputs[0][0], state["images"][0])
    assert torch.equal(spies.encoder.inputs[1][0], state["images"][3])
    # the frame loader of the predictor's module is upstream's again
    import sam2.sam2_video_predictor as upstream
    from sam2.utils.misc import load_video_frames

    assert upstream.load_video_frames is load_video_frames


def test_frames_source_restores_the_loader_after_an_error() -> None:
    import sam2.sam2_video_predictor as upstream

    original = upstream.load_video_frames
    with pytest.raises(RuntimeError, match="boom"), frames_source([], 1, 1):
        assert upstream.load_video_frames(video_path="x") == ([], 1, 1)
        raise RuntimeError("boom")
    assert upstream.load_video_frames is original


# -- propagation: both directions, z-limits, placement --------------------------------------------


def test_both_directions_cover_the_slices_above_and_below_the_key_slice(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    pred = video.predict(interaction([Point((2, 30, 40))]), None)
    forward, backward = spies.passes
    assert (forward["start_frame_idx"], forward["max_frame_num_to_track"]) == (2, 3)
    assert (backward["start_frame_idx"], backward["max_frame_num_to_track"]) == (2, 2)
    assert forward["reverse"] is False and backward["reverse"] is True
    assert forward["frames"] == [2, 3, 4, 5] and backward["frames"] == [2, 1, 0]
    # every slice holds the decoder's rectangle, at the slice's own rows and columns
    assert np.array_equal(pred.mask, painted(range(6)))
    # every slice went into memory once; memory was attended to on every propagated
    # (unprompted) slice, never on the key slice
    assert len(spies.memorised) == 6
    assert len(spies.memory) == 5 and all(n > 0 for n in spies.memory)
    assert pred.timings.slices_inferred == 6
    assert pred.timings.encoder_calls == len(spies.encoder.inputs) >= 6


def test_z_limits_stop_propagation(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    prompts = [ZLimit(1, upper=False), Point((2, 30, 40)), ZLimit(3, upper=True)]
    pred = video.predict(interaction(prompts), None)
    assert [p["frames"] for p in spies.passes] == [[2, 3], [2, 1]]
    assert np.array_equal(pred.mask, painted([1, 2, 3]))
    assert pred.timings.slices_inferred == 3


def test_a_3d_box_is_its_footprint_on_its_middle_slice_and_bounds_the_passes(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    pred = video.predict(interaction([Box3D((1, 8, 16), (5, 30, 50))]), None)
    ((add),) = spies.adds
    assert add["frame_idx"] == 2 and add["box"].tolist() == [16.0, 8.0, 49.0, 29.0]
    assert [p["frames"] for p in spies.passes] == [[2, 3, 4], [2, 1]]
    assert np.array_equal(pred.mask, painted([1, 2, 3, 4]))


def test_propagation_range_rules() -> None:
    assert propagation_range(6, [2], []) == (0, 5)
    assert propagation_range(6, [2], [ZLimit(1, False), ZLimit(3, True)]) == (1, 3)
    # the latest bound of a side wins; bounds outside the volume are clipped
    assert propagation_range(6, [2], [ZLimit(0, True), ZLimit(9, True)]) == (0, 5)
    # a prompted slice outside the bounds widens them
    assert propagation_range(6, [0, 4], [ZLimit(1, False), ZLimit(3, True)]) == (0, 4)


# -- refinement ------------------------------------------------------------------------------------


def test_refinement_adds_to_the_same_state_and_propagates_again(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    video.predict(interaction([Point((2, 30, 40))]), None)
    state = video.state
    encoded_first = len(spies.encoder.inputs)
    first = interaction([Point((4, 20, 30), positive=False), Point((2, 5, 6), positive=False)])
    pred = video.predict(first, None)
    assert video.state is state  # no new init_state: no warm-up encoding of frame 0 again
    # each touched slice is sent once with everything it has accumulated
    assert [a["frame_idx"] for a in spies.adds] == [2, 2, 4]
    assert spies.adds[1]["points"].tolist() == [[40.0, 30.0], [6.0, 5.0]]
    assert spies.adds[1]["labels"].tolist() == [1, 0]
    assert spies.adds[2]["points"].tolist() == [[30.0, 20.0]]
    assert spies.adds[2]["labels"].tolist() == [0]
    # corrected slices are conditioning frames (kept by the next propagation)
    outputs = state["output_dict_per_obj"][0]
    assert sorted(outputs["cond_frame_outputs"]) == [2, 4]
    assert not set(outputs["non_cond_frame_outputs"]) & {2, 4}
    # both passes again over the whole volume, from the lowest prompted slice
    assert [p["frames"] for p in spies.passes[2:]] == [[2, 3, 4, 5], [2, 1, 0]]
    assert np.array_equal(pred.mask, painted(range(6)))
    assert pred.timings.encoder_calls == len(spies.encoder.inputs) - encoded_first


def test_keep_previous_false_starts_a_new_track(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    video.predict(interaction([Point((2, 30, 40)), ZLimit(3, upper=True)]), None)
    state = video.state
    video.predict(interaction([Point((4, 20, 30))], keep_previous=False), None)
    assert video.state is state
    assert sorted(state["output_dict_per_obj"][0]["cond_frame_outputs"]) == [4]
    assert list(state["point_inputs_per_obj"][0]) == [4]
    # the earlier z-limit went with the earlier prompts
    assert [p["frames"] for p in spies.passes[2:]] == [[4, 5], [4, 3, 2, 1, 0]]


def test_reset_forgets_the_previous_target(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    video.predict(interaction([Point((2, 30, 40))]), None)
    video.reset()
    assert video.state["obj_ids"] == [] and video.state["point_inputs_per_obj"] == {}
    video.predict(interaction([Point((5, 30, 40))]), None)
    assert spies.passes[-2]["frames"] == [5] and spies.passes[-1]["frames"] == [5, 4, 3, 2, 1, 0]


# -- refusals before compute -----------------------------------------------------------------------


def test_unsupported_prompt_is_refused_before_any_compute(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    lasso = Lasso(1, ((2, 2), (2, 10), (10, 6)))
    with pytest.raises(UnsupportedPrompt, match="lasso") as exc:
        video.predict(interaction([Point((1, 3, 3)), lasso]), None)
    assert "radioactive models list" in str(exc.value)
    outside = Interaction((Scribble(((1, 3, 3), (7, 3, 3))),), (), 0, 0.0, "test")
    with pytest.raises(ValueError, match="outside the volume"):
        video.predict(outside, None)
    with pytest.raises(ValueError, match="at least one point"):
        video.predict(interaction([ZLimit(1, upper=False)]), None)
    assert video.state is None and spies.encoder.inputs == [] and spies.adds == []


def test_scribbles_become_points_on_their_own_slices(video, spies) -> None:
    video.prepare(volume(), (1.0, 1.0, 1.0))
    video.predict(interaction([Scribble(((1, 3, 4), (1, 3, 5), (2, 6, 7)), positive=False)]), None)
    assert [a["frame_idx"] for a in spies.adds] == [1, 2]
    assert spies.adds[0]["points"].tolist() == [[4.0, 3.0], [5.0, 3.0]]
    assert spies.adds[0]["labels"].tolist() == [0, 0]


# -- card, registry, options -----------------------------------------------------------------------


def test_card_capabilities_and_registry(video, tmp_path) -> None:
    from radioactive.models import describe_model, get_model

    card = SAM2VideoModel.card
    assert card.name == "sam2_video" and card.checkpoint == "sam2.1_hiera_large.pt"
    assert "Ravi et al." in card.reference and card.licence == "Apache-2.0"
    assert video.card.checkpoint is None and "random" in video.card.training_data
    assert video.checkpoint_name == "sam2.1_hiera_tiny"
    assert video.net.add_all_frames_to_correct_as_cond is True and video.net.fill_hole_area == 0
    info = describe_model("sam2_video", tmp_path)
    assert info["dim"] == 3 and info["slice_predictor"] is False
    assert info["prompt_types"] == ["box2d", "box3d", "point", "scribble"]
    assert info["checkpoint_status"] == "missing"
    with pytest.raises(CheckpointError, match="radioactive models fetch"):
        get_model("sam2_video", variant="hiera_t", cache=tmp_path)
    with pytest.raises(ValueError, match="variant"):
        SAM2VideoModel(variant="hiera_x", weights="random")
    with pytest.raises(ValueError, match="version"):
        SAM2VideoModel(version="3", weights="random")
    with pytest.raises(ValueError, match="fill_hole_area"):
        SAM2VideoModel(variant="hiera_t", weights="random", fill_hole_area=-1)


# -- the whole network, once -------------------------------------------------------------------


@pytest.mark.slow
def test_the_whole_network_runs_two_steps(video) -> None:
    vol = np.zeros((3, 32, 48), np.float32)
    vol[:, 8:24, 12:36] = 1.0
    video.prepare(vol, (1.0, 1.0, 1.0))
    first = make_interaction([Point((1, 16, 24))], [], np.zeros(vol.shape, bool), "t")
    pred = video.predict(first, None)
    assert pred.mask.shape == vol.shape and pred.timings.encoder_calls >= 3
    fix = make_interaction([Point((0, 2, 2), False)], [], np.zeros(vol.shape, bool), "t")
    again = video.predict(fix, pred)
    assert again.mask.shape == vol.shape
    assert sorted(video.state["output_dict_per_obj"][0]["cond_frame_outputs"]) == [0, 1]
