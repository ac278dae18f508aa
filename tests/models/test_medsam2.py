"""MedSAM2: the published architecture in the ``sam2`` package, its checkpoint format, the input
contract of its authors' CT script, and its inference loop re-run against the package's own video
predictor (seeded random weights; the network is built once for the module)."""

from __future__ import annotations

import numpy as np
import pytest

from radioactive.models.base import CheckpointError
from radioactive.prompts import Box2D
from radioactive.prompts.cost import make_interaction
from tests.conformance.upstream import max_diff, pre_ct_mr

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from radioactive.models.medsam2 import (  # noqa: E402
    MEDSAM2_ARCHITECTURE,
    MedSAM2Model,
    architecture_overrides,
)
from radioactive.models.sam2_video import (  # noqa: E402
    SAM2VideoModel,
    frames_source,
    quiet_progress,
)

SHAPE = (4, 40, 48)


@pytest.fixture(scope="module")
def medsam2() -> MedSAM2Model:
    with pytest.warns(UserWarning, match="random weights"):
        return MedSAM2Model(weights="random", device="cpu")


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(3)
    img = rng.normal(40, 60, SHAPE).astype(np.float32)
    img[0:3, 10:30, 12:36] += 250
    return img


def test_architecture_is_the_published_one(medsam2: MedSAM2Model) -> None:
    net = medsam2.net
    assert MEDSAM2_ARCHITECTURE["image_size"] == 512
    assert net.image_size == 512
    assert tuple(net.sam_prompt_encoder.image_embedding_size) == (32, 32)
    for layer in net.memory_attention.layers:
        # rotary encodings of a 32 x 32 grid: one row per token
        assert layer.self_attn.freqs_cis.shape[0] == 32 * 32
        assert layer.cross_attn_image.freqs_cis.shape[0] == 32 * 32
    assert architecture_overrides({"image_size": 256, "rope_feat_sizes": (16, 16)})[0] == (
        "++model.image_size=256"
    )


def test_sam21_tiny_weights_load_strictly(medsam2: MedSAM2Model) -> None:
    """MedSAM2 is fine-tuned SAM 2.1 Hiera-T: every parameter has the same name and shape, so a
    checkpoint of one loads strictly into the other."""
    with pytest.warns(UserWarning, match="random weights"):
        tiny = SAM2VideoModel(variant="hiera_t", weights="random", device="cpu")
    ours = {k: tuple(v.shape) for k, v in medsam2.net.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tiny.net.state_dict().items()}
    assert ours == theirs
    medsam2.net.load_state_dict(tiny.net.state_dict(), strict=True)  # no error


def test_checkpoint_file_round_trip(tmp_path, medsam2: MedSAM2Model) -> None:
    state = {k: v.clone() + 0.5 for k, v in medsam2.net.state_dict().items()}
    path = tmp_path / "MedSAM2_latest.pt"
    torch.save({"model": state}, path)
    loaded = MedSAM2Model(checkpoint=path, device="cpu")
    key = "sam_mask_decoder.iou_token.weight"
    assert max_diff(loaded.net.state_dict()[key], state[key]) == 0.0
    assert loaded.card.checkpoint == "MedSAM2_latest.pt"


def test_missing_checkpoint_names_the_file_and_fix(tmp_path) -> None:
    with pytest.raises(CheckpointError) as err:
        MedSAM2Model(cache=tmp_path, device="cpu")
    text = str(err.value)
    assert "MedSAM2_latest.pt" in text
    assert "radioactive models fetch medsam2_latest" in text or "checkpoint=" in text


def test_intensity_and_frames_follow_the_authors_script(
    medsam2: MedSAM2Model, volume: np.ndarray
) -> None:
    from PIL import Image

    norm = medsam2.normalize_volume(volume, "CT")
    levels = pre_ct_mr(volume, "CT")
    assert max_diff(norm * 255.0, levels) < 1e-3
    assert medsam2.contract_used is not None
    assert medsam2.contract_used["contract"] == "medsam2-ct-v1"

    got = medsam2.encoder_input(torch.from_numpy(norm[1:2]))
    # medsam2_infer_3D_CT.py: uint8 slice -> RGB -> resize((512, 512)) with Pillow's default
    # filter -> / 255 -> ImageNet mean / std
    rgb = Image.fromarray(levels[1]).convert("RGB").resize((512, 512))
    ref = np.asarray(rgb, dtype=np.float64).transpose(2, 0, 1) / 255.0
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    ref = (ref - mean) / std
    assert got.shape == (1, 3, 512, 512)
    assert max_diff(got[0], ref) < 1e-5


def _authors_loop(model: MedSAM2Model, volume: np.ndarray, z: int, box_xyxy) -> np.ndarray:
    """``medsam2_infer_3D_CT.py``'s loop on the package's predictor: box on the key slice,
    forward pass, reset, box again, reverse pass, union, largest connected component."""
    from skimage import measure

    net = model.net
    model.prepare(volume, (2.0, 1.0, 1.0), "CT")
    assert model.frames is not None
    _, h, w = volume.shape
    with frames_source(model.frames, h, w):
        state = net.init_state(video_path="<volume>")
    seg = np.zeros(volume.shape, dtype=np.uint8)
    for reverse in (False, True):
        net.add_new_points_or_box(state, frame_idx=z, obj_id=1, box=np.asarray(box_xyxy))
        for f, _, logits in net.propagate_in_video(state, reverse=reverse):
            seg[f, (logits[0] > 0.0).cpu().numpy()[0]] = 1
        net.reset_state(state)
    if seg.max() > 0:
        labels = measure.label(seg)
        seg = (labels == np.argmax(np.bincount(labels.flat)[1:]) + 1).astype(np.uint8)
    return seg.astype(bool)


def test_quiet_progress_passes_through_and_restores() -> None:
    import sam2.sam2_video_predictor as upstream

    original = upstream.tqdm
    with quiet_progress(upstream):
        assert upstream.tqdm is not original
        assert list(upstream.tqdm([3, 1, 2], desc="propagate in video")) == [3, 1, 2]
    assert upstream.tqdm is original


@pytest.mark.slow
def test_prediction_equals_the_authors_loop(
    medsam2: MedSAM2Model, volume: np.ndarray, capfd: pytest.CaptureFixture[str]
) -> None:
    z, (y0, x0), (y1, x1) = 1, (10, 12), (30, 36)
    reference = _authors_loop(medsam2, volume, z, [x0, y0, x1 - 1, y1 - 1])

    medsam2.prepare(volume, (2.0, 1.0, 1.0), "CT")
    box = (Box2D(z, (y0, x0), (y1, x1)),)
    target = np.zeros(volume.shape, dtype=bool)
    target[0:3, 10:30, 12:36] = True
    prediction = medsam2.predict(make_interaction(box, box, target, "test"), None)
    assert prediction.mask.shape == volume.shape
    assert np.array_equal(prediction.mask, reference)
    assert prediction.timings.encoder_calls > 0
    capfd.readouterr()
    medsam2.predict(make_interaction(box, box, target, "test"), None)
    assert "propagate in video" not in capfd.readouterr().err  # no upstream progress bar
