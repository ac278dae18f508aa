"""Conformance of the SAM 3 adapter with its authors' pipeline, run with
``SAM3InteractiveImagePredictor`` (``sam3/model/sam1_task_predictor.py``) itself.

SAM 3's contract for the SAM 1 task is the predictor's: the SAM family's uint8 levels (as for
SAM 2, :func:`~tests.conformance.test_sam.reference_levels`), each slice as an RGB uint8 image
through the predictor's ``SAM2Transforms`` (``ToTensor``, a 1008 × 1008 square ``Resize``, mean
0.5 / std 0.5), ``forward_image`` and the backbone features of ``set_image``; prompts through
``predict(point_coords, point_labels, box, mask_input, multimask_output, return_logits=True)``
with ``normalize_coords=True`` (clicks and box corners × 1008 / W and × 1008 / H), the box as its
extreme pixels (x0, y0, x1 - 1, y1 - 1), the previous (clamped) 288² logits fed back as
``mask_input``; the mask is the predictor's ``postprocess_masks`` (hole filling up to 256
low-resolution pixels, bilinear resize to the slice).

The checks, scenarios and helpers are those of ``test_sam.py`` (see its docstring), on the same
non-square 96 × 160 volume, and as for SAM 2:

* levels: the reference's levels divided by 255 (``ToTensor``), exact;
* image: ``forward_image``'s input (1, 3, 1008, 1008), exact;
* embedding: the 72² image embedding and both high-resolution maps the decoder gets (the
  predictor's ``_features``), exact;
* points / labels: the box corners (labels 2, 3) first, then the clicks, exact; boxes: none;
  mask input, low-res (clamped to ±32), slice logits and the mask placed in the volume: exact.

All exact: measured max |Δ| = 0. The network is SAM 3's tracker with its vision backbone, seeded
random weights (``weights="random"``), built once for the module; the ViT backbone takes about a
minute per 1008² slice on a small CPU, so ``forward_image`` is replaced in both paths by a
recorder that keeps its input and returns fixed backbone features of the real shapes
(``tests/models/test_sam3.py`` runs the whole network once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from radioactive.models.base import UnsupportedPrompt
from radioactive.models.slicewise import SliceWiseModel
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Box3D, Lasso, Point
from tests.conformance.test_sam import (
    BOX_ONLY,
    CLICKS_ONLY,
    SCENARIOS,
    TOLERANCE,
    VOLUME,
    Network,
    Scenario,
    adapter_trace,
    broken_copy,
    compare_traces,
    conformance,
    conforms,
    failed,
    nontrivial,
    per_slice_levels,
    predictor_trace,
    report,
    swapped_axes_levels,
    tapped,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*torch.jit.*:FutureWarning", "ignore:.*autocast.*:UserWarning"
)

torch = pytest.importorskip("torch")
pytest.importorskip("sam3")

from radioactive.models.sam3 import LOW_RES_CLAMP, SAM3Backend, SAM3Resize  # noqa: E402

#: shapes of ``forward_image``'s ``backbone_fpn`` for a 1008² input (after ``conv_s0`` /
#: ``conv_s1``), highest resolution first
FPN_SHAPES = ((32, 288, 288), (64, 144, 144), (256, 72, 72))


def sam3_network(net: Any) -> Network:
    """The taps of SAM 3's tracker (``Sam3TrackerBase`` with its backbone)."""
    gen = torch.Generator().manual_seed(0)
    fpn = [torch.randn(1, *s, generator=gen) for s in FPN_SHAPES]

    def answer(x: Any) -> dict[str, Any]:
        levels = [f.expand(x.shape[0], -1, -1, -1).clone() for f in fpn]
        pos = [torch.zeros_like(f) for f in levels]
        return {"vision_features": levels[-1], "vision_pos_enc": pos, "backbone_fpn": levels}

    def theirs(predictor: Any) -> list[Any]:
        f = predictor._features
        return [f["image_embed"][0], *(h[0] for h in f["high_res_feats"])]

    return Network(
        encoder=(net, "forward_image"),
        answer=answer,
        prompt_encoder=net.sam_prompt_encoder,
        ours=lambda emb: [emb.image_embed, *emb.high_res_feats],
        theirs=theirs,
        levels=lambda u8: torch.from_numpy(u8).float().div(255).numpy(),
    )


@pytest.fixture(scope="module")
def sam3() -> SAM3Backend:
    with pytest.warns(UserWarning, match="random weights"):
        return SAM3Backend(weights="random", device="cpu")


@pytest.fixture(scope="module")
def sam3_predictor(sam3) -> Any:
    """Upstream's predictor around the same network, with its own defaults."""
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor

    return SAM3InteractiveImagePredictor(sam3.net)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sam3_adapter_conforms_to_the_interactive_image_predictor(
    sam3, sam3_predictor, scenario
) -> None:
    network = sam3_network(sam3.net)
    ours = adapter_trace(sam3, network, VOLUME, scenario)
    theirs = predictor_trace(sam3_predictor, network, VOLUME, scenario)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    nontrivial(theirs)
    assert len(ours.images) == 1 and len(ours.prompts) == len(scenario.steps)
    assert tuple(ours.images[0].shape) == (1, 3, 1008, 1008)
    assert {c.kind for c in checks} == set(TOLERANCE)
    # SAM 3 takes a box as two corner points, never as a box; the fed-back logits are clamped
    assert all(call["boxes"] is None for call in ours.prompts)
    assert all(float(abs(low).max()) <= LOW_RES_CLAMP for low in ours.low)
    assert all(tuple(low.shape) == (288, 288) for low in ours.low)


def test_the_adapter_uses_the_predictors_own_defaults(sam3, sam3_predictor) -> None:
    mine, theirs = sam3.predictor._transforms, sam3_predictor._transforms
    assert (mine.resolution, mine.mean, mine.std) == (1008, [0.5] * 3, [0.5] * 3)
    assert (mine.resolution, mine.mean, mine.std) == (theirs.resolution, theirs.mean, theirs.std)
    assert (mine.mask_threshold, mine.max_hole_area, mine.max_sprinkle_area) == (
        theirs.mask_threshold, theirs.max_hole_area, theirs.max_sprinkle_area)  # fmt: skip
    assert sam3.feat_sizes == [tuple(s) for s in sam3_predictor._bb_feat_sizes]


# -- capabilities: refused before any compute ----------------------------------------------------


def test_unsupported_prompts_are_refused_before_any_compute(sam3) -> None:
    network = sam3_network(sam3.net)
    model = SliceWiseModel(sam3)
    assert model.capabilities.prompt_types == {"point", "box2d", "box3d", "scribble"}
    assert model.capabilities.accepts_mask
    shape = (3, 16, 16)
    model.prepare(np.zeros(shape, np.float32))
    lasso = [Lasso(1, ((2, 2), (2, 10), (10, 6))), Point((1, 4, 4))]
    outside = [Box3D((0, 2, 2), (3, 20, 10))]
    with tapped(network) as (images, calls):
        with pytest.raises(UnsupportedPrompt, match="lasso"):
            model.predict(make_interaction(lasso, lasso, np.zeros(shape, bool), "t"), None)
        with pytest.raises(ValueError, match="outside the volume"):
            model.predict(make_interaction(outside, outside, np.zeros(shape, bool), "t"), None)
    assert images == [] and calls == []


# -- deliberately broken copies --------------------------------------------------------------------


@dataclass(frozen=True)
class HalfOpenCorners(SAM3Resize):
    """A broken mapping: the half-open box's corners handed over as is (one past the box)."""

    def box(self, box_yx, shape):
        y0, x0, y1, x1 = box_yx
        return self.points([[y0, x0], [y1, x1]], shape).reshape(4)


@dataclass(frozen=True)
class LongestSideClicks(SAM3Resize):
    """A broken mapping: clicks scaled by the longest side (SAM's rule) instead of by W and H."""

    def points(self, yx, shape):
        scale = self.size / max(shape)
        return np.asarray(yx, dtype=float).reshape(-1, 2)[:, ::-1] * scale


@dataclass(frozen=True)
class AlignedCornersLogits(SAM3Resize):
    """A broken mapping: the logits resized with ``align_corners=True``, no hole filling."""

    def logits_to_slice(self, low_res, shape):
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        x = F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=True)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)


@dataclass(frozen=True)
class ImageNetStatistics(SAM3Resize):
    """A broken mapping: SAM 2's ImageNet mean / std instead of SAM 3's 0.5 / 0.5."""

    def image(self, slices):
        from torchvision.transforms.functional import normalize, resize

        x = resize(slices, [self.size, self.size])
        return normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def sam3_breakages(backend: SAM3Backend) -> dict[str, tuple[Any, set[str], Scenario]]:
    """Broken copies of ``backend``: name → (copy, the check kinds that must fail, scenario)."""
    transforms = backend.resize.transforms

    class PerSlice(SAM3Backend):
        def normalize_volume(self, image, modality=None):
            return per_slice_levels(image) / np.float32(255.0)

    class SwappedAxes(SAM3Backend):
        def normalize_volume(self, image, modality=None):
            return swapped_axes_levels(image) / np.float32(255.0)

    def resized(cls: type) -> Any:
        return broken_copy(backend, resize=cls(transforms))

    return {
        "per-slice-scaling": (broken_copy(backend, PerSlice), {"levels", "image"}, BOX_ONLY),
        "swapped-axes": (broken_copy(backend, SwappedAxes), {"levels", "image"}, BOX_ONLY),
        "half-open-box": (resized(HalfOpenCorners), {"points"}, BOX_ONLY),
        "clicks-by-longest-side": (resized(LongestSideClicks), {"points"}, CLICKS_ONLY),
        "align-corners-logits": (resized(AlignedCornersLogits), {"slice logits"}, BOX_ONLY),
        "imagenet-statistics": (resized(ImageNetStatistics), {"image"}, BOX_ONLY),
    }


@pytest.mark.parametrize(
    "breakage",
    ["per-slice-scaling", "swapped-axes", "half-open-box", "clicks-by-longest-side",
     "align-corners-logits", "imagenet-statistics"],
)  # fmt: skip
def test_sam3_comparison_reports_a_broken_adapter(sam3, sam3_predictor, breakage) -> None:
    broken, must_fail, scenario = sam3_breakages(sam3)[breakage]
    checks = conformance(broken, sam3_predictor, sam3_network(sam3.net), scenario)
    assert not conforms(checks)
    assert must_fail <= failed(checks), report(checks)
