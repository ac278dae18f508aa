"""Conformance of the MedSAM adapter with its authors' pipeline, re-expressed here.

The reference is bowang-lab/MedSAM: ``pre_CT_MR.py`` (the volume's intensities, with numpy: CT
clipped to the window level 40 / width 400, MR clipped to the 0.5 and 99.5 percentiles of its
positive voxels; min-max of the clipped volume to [0, 255]; MR zeros set back to 0; ``np.uint8``)
and ``MedSAM_Inference.py`` (one slice as an RGB image resized to 1024² by
``skimage.transform.resize(order=3, preserve_range=True, anti_aliasing=True)``, cast to uint8,
min-max scaled to [0, 1]; the box ``box / [W, H, W, H] * 1024``; ``medsam_inference``: the
network's own prompt encoder and mask decoder, the sigmoid of the low-resolution logits resized
bilinearly to (H, W) and thresholded at 0.5). It is written below with the same libraries, on a
non-square 90 × 140 slice, and compared with what the adapter hands the network on the same
slice and box, through the slice-wise engine:

======= ===================================================== ==========================
check   what                                                  tolerance
======= ===================================================== ==========================
levels  the volume's uint8 levels (the adapter's normalize)   exact: max abs diff 0
image   the image encoder's input tensor (1, 3, 1024, 1024)   exact: max abs diff 0
box     the boxes the prompt encoder receives (model frame)   exact: max abs diff 0
mask    the mask on the slice, and nothing on other slices    exact: 0 voxels differ
======= ===================================================== ==========================

All four are exact because both sides run the same operations on the same numbers; the only
difference in the path, the adapter resizing the grey slice where the script resizes its RGB
copy, changes the float resize by < 1e-12 before the uint8 cast (checked below as well).

Random weights (``weights="random"``); the ViT-B image encoder is replaced by a recorder that
keeps its input and returns a fixed embedding, which the reference decodes too: the image is
compared where it enters the encoder, the prompts and the mask with the same embedding.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("segment_anything")

import torch
import torch.nn.functional as F
from skimage import transform

from radioactive.models.sam import MedSAMBackend, SquareResize
from radioactive.models.slicewise import SliceWiseModel
from radioactive.prompts import Box2D
from radioactive.prompts.cost import make_interaction
from tests.conformance.upstream import max_diff, pre_ct_mr
from tests.models.spies import spy_prompt_encoder

SHAPE = (4, 90, 140)  # (z, y, x): a non-square slice, so the x and y scales differ
Z = 2
BOX = Box2D(Z, (25, 30), (66, 101))  # half-open rows 25..65, columns 30..100
#: the tolerance of each check (see the module docstring)
TOLERANCE = {"levels": 0.0, "image": 0.0, "box": 0.0, "mask": 0}


# -- volumes ---------------------------------------------------------------------------------------


def ct_volume() -> np.ndarray:
    """int16 HU: air (-1000) around a body of soft tissue, fat and a lesion inside the window,
    and bone far above it (the window's clip matters on both sides)."""
    rng = np.random.default_rng(0)
    _, y, x = np.indices(SHAPE)
    body = ((y - 45) / 42.0) ** 2 + ((x - 70) / 66.0) ** 2 <= 1
    vol = np.where(body, 40.0 + 25.0 * np.sin(x / 7.0) + rng.normal(0, 30, SHAPE), -1000.0)
    vol[:, 30:60, 20:40] = -110.0 + rng.normal(0, 20, (4, 30, 20))  # fat
    vol[:, 40:55, 60:95] = 130.0 + rng.normal(0, 15, (4, 15, 35))  # lesion
    vol[:, 70:78, 40:110] = 900.0 + rng.normal(0, 200, (4, 8, 70))  # bone
    return np.rint(vol).astype(np.int16)


def mr_volume() -> np.ndarray:
    """float32 MR: exactly 0 outside the head, positive inside with a few dim voxels and bright
    outliers, so that the percentiles of the positive voxels are not those of all voxels."""
    rng = np.random.default_rng(1)
    _, y, x = np.indices(SHAPE)
    head = ((y - 44) / 40.0) ** 2 + ((x - 72) / 60.0) ** 2 <= 1
    tissue = 400.0 + 150.0 * np.cos(y / 9.0) * np.sin(x / 13.0) + rng.normal(0, 40, SHAPE)
    vol = np.where(head, np.abs(tissue), 0.0)
    vol[:, 40:50, 60:90] += 600.0  # a bright structure
    vol[head & (rng.random(SHAPE) < 0.004)] = 5000.0  # outliers above the 99.5th percentile
    vol[head & (rng.random(SHAPE) < 0.004)] = 2.0  # dim voxels below the 0.5th percentile
    return vol.astype(np.float32)


VOLUMES = {"CT": ct_volume(), "MR": mr_volume()}


# -- the authors' pipeline, re-expressed ---------------------------------------------------------


def resized_rgb(slice_u8: np.ndarray) -> np.ndarray:
    """``MedSAM_Inference.py``: the slice as an RGB image, resized to 1024² (float, before the
    uint8 cast)."""
    rgb = np.repeat(slice_u8[:, :, None], 3, axis=-1)
    return transform.resize(rgb, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True)


def image_1024(resized: np.ndarray) -> torch.Tensor:
    """``MedSAM_Inference.py``: uint8 cast, min-max to [0, 1], (1, 3, 1024, 1024) float."""
    img = resized.astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    return torch.tensor(img).float().permute(2, 0, 1).unsqueeze(0)


def box_1024(box: Box2D, height: int, width: int) -> np.ndarray:
    """``MedSAM_Inference.py``: the box (its extreme pixels x_min, y_min, x_max, y_max, as
    MedSAM's boxes are drawn from a mask) scaled to the 1024² frame."""
    box_np = np.array([[box.lo[1], box.lo[0], box.hi[1] - 1, box.hi[0] - 1]])
    return box_np / np.array([width, height, width, height]) * 1024


@torch.no_grad()
def medsam_inference(net: Any, embedding: torch.Tensor, box: np.ndarray, h: int, w: int):
    """``medsam_inference`` of ``MedSAM_Inference.py`` with the network's own modules."""
    box_torch = torch.as_tensor(box, dtype=torch.float, device=embedding.device)
    if len(box_torch.shape) == 2:
        box_torch = box_torch[:, None, :]  # (B, 1, 4)
    sparse, dense = net.prompt_encoder(points=None, boxes=box_torch, masks=None)
    low, _ = net.mask_decoder(
        image_embeddings=embedding, image_pe=net.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
    )  # fmt: skip
    prob = F.interpolate(torch.sigmoid(low), size=(h, w), mode="bilinear", align_corners=False)
    return (prob.squeeze().cpu().numpy() > 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Reference:
    levels: np.ndarray
    resized: np.ndarray
    image: torch.Tensor
    box: np.ndarray


@functools.cache
def reference(modality: str) -> Reference:
    """The reference's preprocessing of the volume of ``modality`` (the RGB cubic resize is the
    slow part: computed once)."""
    levels = pre_ct_mr(VOLUMES[modality], modality)
    resized = resized_rgb(levels[Z])
    return Reference(levels, resized, image_1024(resized), box_1024(BOX, *SHAPE[1:]))


# -- the comparison --------------------------------------------------------------------------------


class EncoderRecorder:
    """Stands in for the image encoder: records its input, returns a fixed embedding."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.embedding = torch.randn(256, 64, 64, generator=torch.Generator().manual_seed(0))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return self.embedding.expand(x.shape[0], -1, -1, -1).clone()


def compare(
    backend: MedSAMBackend, modality: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, float], np.ndarray]:
    """Run ``backend`` through the engine on the volume of ``modality`` with :data:`BOX`, and
    measure each check against the reference: max |Δ| (levels, image, box) and the number of
    voxels whose mask differs (mask). Also returns the reference's mask of the volume."""
    volume = VOLUMES[modality]
    ref = reference(modality)
    rec = EncoderRecorder()
    monkeypatch.setattr(backend.net.image_encoder, "forward", rec)
    calls = spy_prompt_encoder(monkeypatch, backend.net.prompt_encoder)
    model = SliceWiseModel(backend)
    model.prepare(volume, modality=modality)
    target = np.zeros(SHAPE, bool)
    pred = model.predict(make_interaction([BOX], [BOX], target, "conformance"), None)
    (ours_image,) = rec.inputs
    ours_box = calls[0]["boxes"]
    ref_mask = medsam_inference(backend.net, rec.embedding[None], ref.box, *SHAPE[1:])
    expected = np.zeros(SHAPE, bool)
    expected[Z] = ref_mask > 0
    measured = {
        "levels": max_diff(backend.normalize_volume(volume, modality), ref.levels),
        "image": max_diff(ours_image, ref.image),
        "box": max_diff(ours_box.reshape(-1, 4), torch.as_tensor(ref.box, dtype=torch.float)),
        "mask": int(np.count_nonzero(pred.mask != expected)),
    }
    return measured, expected


def mismatches(measured: dict[str, float]) -> list[str]:
    """The checks whose measured difference exceeds its tolerance."""
    return [f"{k}: {v} > {TOLERANCE[k]}" for k, v in measured.items() if v > TOLERANCE[k]]


@pytest.fixture(scope="module")
def medsam() -> MedSAMBackend:
    with pytest.warns(UserWarning, match="random weights"):
        return MedSAMBackend(weights="random", device="cpu")


def wrong_copy(backend: MedSAMBackend, **changes: Any) -> MedSAMBackend:
    """A shallow copy of ``backend`` (the same network) with some attributes changed."""
    twin = copy.copy(backend)
    vars(twin).update(changes)
    return twin


class BoxInYX(SquareResize):
    """A deliberate bug: the box handed over as (y0, x0, y1, x1)."""

    def box(self, box_yx, shape):
        return super().box(box_yx, shape)[[1, 0, 3, 2]]


# -- the checks ----------------------------------------------------------------------------------


def test_the_volumes_discriminate_the_rules() -> None:
    ct, mr = VOLUMES["CT"], VOLUMES["MR"]
    assert ct.min() < -160 and ct.max() > 240  # beyond the window on both sides
    assert np.percentile(mr, 0.5) == 0 < np.percentile(mr[mr > 0], 0.5)
    assert np.percentile(mr, 99.5) != np.percentile(mr[mr > 0], 99.5)
    # the adapter resizes the grey slice, the script its RGB copy: the same floats to 1e-12, the
    # same uint8 image
    levels = reference("CT").levels[Z]
    grey = transform.resize(levels, (1024, 1024), order=3, preserve_range=True,
                            anti_aliasing=True)  # fmt: skip
    assert np.abs(grey - reference("CT").resized[..., 0]).max() < 1e-12
    assert np.array_equal(grey.astype(np.uint8), reference("CT").resized[..., 0].astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32, np.float64])
def test_medsam_levels_are_pre_ct_mr_bit_for_bit_for_every_dtype(medsam, dtype) -> None:
    # the script computes in the volume's own dtype (float32 for float32, float64 for integers)
    # and truncates: a level computed any other way is one off at some voxels (e.g. the top ones
    # at 254 instead of 255); MR volumes with a few negative voxels (percentiles over > 0 only)
    rng = np.random.default_rng(5)
    for _ in range(4):
        ct = rng.normal(0, 500, (3, 90, 140))
        mr = np.abs(rng.normal(300, 120, (3, 90, 140)))
        mr[:, :20] = 0
        if np.issubdtype(dtype, np.signedinteger) or np.issubdtype(dtype, np.floating):
            mr[:, 20:22, :8] = -3.0
        ct = ct.astype(dtype) if dtype != np.uint16 else (ct + 1024).clip(0).astype(dtype)
        mr = mr.astype(dtype)
        for modality, vol in (("CT", ct), ("MR", mr)):
            ref = pre_ct_mr(vol, modality)
            assert max_diff(medsam.normalize_volume(vol, modality), ref) == 0.0, modality


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_medsam_adapter_conforms_to_the_authors_pipeline(medsam, monkeypatch, modality) -> None:
    measured, expected = compare(medsam, modality, monkeypatch)
    assert mismatches(measured) == [], measured
    # not vacuous: the levels span [0, 255], the mask is neither empty nor the whole slice
    levels = reference(modality).levels
    assert levels.min() == 0 and levels.max() == 255 and len(np.unique(levels[Z])) > 100
    assert 0.05 < expected[Z].mean() < 0.95


def test_medsam_comparison_catches_the_percentile_rule_on_ct(medsam, monkeypatch) -> None:
    # the earlier default, per-slice percentiles, instead of the CT window
    wrong = wrong_copy(medsam, intensity="percentile")
    found = mismatches(compare(wrong, "CT", monkeypatch)[0])
    assert any(m.startswith("levels") for m in found)
    assert any(m.startswith("image") for m in found)


def test_medsam_comparison_catches_a_box_with_x_and_y_swapped(medsam, monkeypatch) -> None:
    wrong = wrong_copy(medsam, resize=BoxInYX(1024))
    found = mismatches(compare(wrong, "MR", monkeypatch)[0])
    assert any(m.startswith("box") for m in found)
    assert not any(m.startswith(("levels", "image")) for m in found)
