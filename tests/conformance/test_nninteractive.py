"""Conformance of the nnInteractive adapter with its authors' usage of the inference session.

nnInteractive does its own preprocessing inside ``nnInteractiveInferenceSession`` (MIC-DKFZ/
nnInteractive ``nnInteractive/inference/inference_session.py``): the authors' README hands it
the raw array of the image with a channel axis (``set_image(img[None])``, the array as SimpleITK
reads it, here int16 HU), a uint8 target buffer of the image's shape (``set_target_buffer``),
and prompts in the same array indices (``add_point_interaction((i, j, k), include_interaction=
True)``, ``add_bbox_interaction([[i0, i1], [j0, j1], [k0, k1]], ...)`` with half-open bounds);
each ``add_*`` call predicts and writes into the target buffer. The reference below drives a
second session exactly so, and the adapter (through its :class:`~radioactive.models.base.Model`
interface) drives its own, with the same model folder, volume and prompts:

=============== ================================================= ==========================
check           what                                              tolerance
=============== ================================================= ==========================
image           what ``set_image`` receives vs the raw volume     exact: max abs diff 0,
                                                                  float32, (1, z, y, x)
preprocessed    the session's own normalised image                exact: max abs diff 0
point           the point's coordinates at the session            exact: max abs diff 0
box             the box's coordinates at the session              exact: max abs diff 0
interactions    the session's interaction channels after both     exact: max abs diff 0
target          the target buffer vs the adapter's mask           exact: 0 voxels differ
=============== ================================================= ==========================

The model folder is the tiny one of ``tests/models/test_nninteractive.py`` (nnInteractive's and
nnU-Net's own classes, no download) with seeded random weights, so that the prediction depends
on the image and on every interaction channel; autozoom is off on both sides (the same setting;
what is checked is the hand-off, not the session's algorithm).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("nnInteractive.inference.inference_session")

import torch

from radioactive.models.nninteractive import NNInteractiveModel
from radioactive.prompts.types import Box2D, Interaction, Point
from tests.conformance.upstream import max_diff
from tests.models.spies import Spy
from tests.models.test_nninteractive import make_model_folder

SHAPE = (30, 40, 50)  # (z, y, x), a 32³ patch: y and x differ, so a swap shows
POINT = Point((12, 14, 33))
BOX = Box2D(17, (8, 21), (30, 44))  # rows 8..29, columns 21..43 of slice 17
#: the tolerance of each check (see the module docstring)
TOLERANCE = {"image": 0.0, "preprocessed": 0.0, "point": 0.0, "box": 0.0, "interactions": 0.0,
             "target": 0}  # fmt: skip

# nnInteractive's session sets torch's process-wide thread count
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def raw_volume() -> np.ndarray:
    """int16 HU, as SimpleITK reads a CT: air, a body, a bright object, some noise."""
    rng = np.random.default_rng(4)
    z, y, x = np.indices(SHAPE)
    body = ((y - 20) / 18.0) ** 2 + ((x - 25) / 23.0) ** 2 <= 1
    vol = np.where(body, 40.0 + rng.normal(0, 60, SHAPE), -1000.0)
    blob = ((z - 15) / 8.0) ** 2 + ((y - 18) / 9.0) ** 2 + ((x - 30) / 12.0) ** 2 <= 1
    vol[blob] += 400.0
    return np.rint(vol).astype(np.int16)


RAW = raw_volume()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model folder with seeded random weights (instead of its constant predictor)."""
    root = make_model_folder(tmp_path_factory.mktemp("nni_conformance") / "model")
    path = root / "fold_0" / "checkpoint_final.pth"
    ckpt = torch.load(path, weights_only=False)
    gen = torch.Generator().manual_seed(0)
    for value in ckpt["network_weights"].values():
        if value.is_floating_point():
            value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
    torch.save(ckpt, path)
    return root


# -- the authors' usage ------------------------------------------------------------------------


def reference_session(folder: Path, image: np.ndarray) -> tuple[Any, torch.Tensor]:
    """A session driven as the README does: raw image with a channel axis, a uint8 target
    buffer, a positive point, then a positive box, each predicting."""
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    with contextlib.redirect_stdout(io.StringIO()):
        session = nnInteractiveInferenceSession(
            device=torch.device("cpu"), use_torch_compile=False, verbose=False,
            torch_n_threads=1, do_autozoom=False, enable_undo=False,
        )  # fmt: skip
        session.initialize_from_trained_model_folder(str(folder))
        session.set_image(image[None])
        target = torch.zeros(image.shape, dtype=torch.uint8)
        session.set_target_buffer(target)
        session.add_point_interaction(POINT.zyx, include_interaction=True)
        (z, (y0, x0), (y1, x1)) = BOX.z, BOX.lo, BOX.hi
        session.add_bbox_interaction([[z, z + 1], [y0, y1], [x0, x1]], include_interaction=True)
    return session, target


# -- the comparison ----------------------------------------------------------------------------


def as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x[...], dtype=np.float32)  # a blosc2 array


def compare(model: NNInteractiveModel, reference: tuple[Any, torch.Tensor]) -> dict[str, float]:
    """Drive ``model`` with the volume and prompts of the reference, and measure each check."""
    ref_session, ref_target = reference
    spies = {n: Spy(model.session, n) for n in
             ("set_image", "add_point_interaction", "add_bbox_interaction")}  # fmt: skip
    model.prepare(RAW, (1.0, 1.0, 1.0), modality="CT")
    inter = Interaction(prompts=(POINT, BOX), user_prompts=(POINT, BOX), dof=0, seconds=0.0,
                        source="conformance")  # fmt: skip
    pred = model.predict(inter, None)
    ((image,), _) = spies["set_image"].calls[0]
    ((point,), point_kw) = spies["add_point_interaction"].calls[0]
    ((box,), box_kw) = spies["add_bbox_interaction"].calls[0]
    z, (y0, x0), (y1, x1) = BOX.z, BOX.lo, BOX.hi
    flags_ok = point_kw["include_interaction"] is True and box_kw["include_interaction"] is True
    image_ok = image.dtype == np.float32 and image.shape == (1, *SHAPE)
    return {
        "image": max_diff(image, RAW[None]) if image_ok else float("inf"),
        "preprocessed": max_diff(
            as_array(model.session.preprocessed_image), as_array(ref_session.preprocessed_image)
        ),
        "point": max_diff(point, POINT.zyx) if flags_ok else float("inf"),
        "box": max_diff(box, [[z, z + 1], [y0, y1], [x0, x1]]) if flags_ok else float("inf"),
        "interactions": max_diff(
            as_array(model.session.interactions), as_array(ref_session.interactions)
        ),
        "target": int(np.count_nonzero(pred.mask != (ref_target.numpy() > 0))),
    }


def mismatches(measured: dict[str, float]) -> list[str]:
    """The checks whose measured difference exceeds its tolerance."""
    return [f"{k}: {v} > {TOLERANCE[k]}" for k, v in measured.items() if v > TOLERANCE[k]]


@pytest.fixture(scope="module")
def reference(folder: Path) -> tuple[Any, torch.Tensor]:
    return reference_session(folder, RAW)


def adapter(cls: type[NNInteractiveModel], folder: Path) -> NNInteractiveModel:
    return cls(checkpoint=folder, device="cpu", do_autozoom=False, threads=1)


class PointInZXY(NNInteractiveModel):
    """A deliberate bug: points handed over as (z, x, y)."""

    def _add(self, prompt: Any, run: bool) -> None:
        if isinstance(prompt, Point):
            z, y, x = prompt.zyx
            prompt = Point((z, x, y), prompt.positive)
        super()._add(prompt, run)


class ZScoredImage(NNInteractiveModel):
    """A deliberate bug: the volume z-scored before it reaches the session."""

    def prepare(self, image: Any, spacing_mm: Any, modality: str | None = None) -> None:
        arr = np.asarray(image, dtype=np.float32)
        super().prepare((arr - arr.mean()) / arr.std(), spacing_mm, modality)


# -- the checks ----------------------------------------------------------------------------------


def test_nninteractive_adapter_conforms_to_the_authors_usage(folder, reference) -> None:
    measured = compare(adapter(NNInteractiveModel, folder), reference)
    assert mismatches(measured) == [], measured
    # not vacuous: the random network predicts some foreground, but not everywhere it looked
    target = reference[1].numpy() > 0
    assert 0 < target.sum() < 0.5 * target.size
    assert target[POINT.zyx] or target[BOX.z, BOX.lo[0] : BOX.hi[0], BOX.lo[1] : BOX.hi[1]].any()


def test_nninteractive_comparison_catches_a_point_with_x_and_y_swapped(folder, reference) -> None:
    found = mismatches(compare(adapter(PointInZXY, folder), reference))
    assert any(m.startswith("point") for m in found)
    assert any(m.startswith("interactions") for m in found)
    assert not any(m.startswith(("image", "preprocessed", "box")) for m in found)


def test_nninteractive_comparison_catches_an_image_normalised_by_us(folder, reference) -> None:
    found = mismatches(compare(adapter(ZScoredImage, folder), reference))
    assert any(m.startswith("image") for m in found)
