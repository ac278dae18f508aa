"""Conformance of the SAM 2 adapter with its authors' pipeline, run with ``SAM2ImagePredictor``.

SAM 2's contract is the RadioActive reference's (``src/radioa/model/SAM2.py``): the volume's
uint8 levels as for SAM (:func:`~tests.conformance.test_sam.reference_levels`), each slice as an
RGB uint8 image through the predictor's ``SAM2Transforms`` (``ToTensor``, a 1024 × 1024 square
``Resize``, ImageNet mean / std), ``forward_image`` and the backbone features of ``set_image``;
prompts through ``predict(point_coords, point_labels, box, mask_input, multimask_output,
return_logits=True)`` with ``normalize_coords=True`` (clicks and box corners scaled by 1024 / W
and 1024 / H), the box as its extreme pixels (x0, y0, x1 - 1, y1 - 1), the previous (clamped)
low-resolution logits fed back as ``mask_input``.

The checks, scenarios and helpers are those of ``test_sam.py`` (see its docstring), on the same
non-square 96 × 160 volume; for SAM 2:

* levels: ``normalize_volume`` returns the levels divided by 255, as ``ToTensor`` does
  (``float().div(255)``): compared with the reference's levels through that division, exact;
* image: ``forward_image``'s input (1, 3, 1024, 1024), exact (the adapter's antialiased bilinear
  ``F.interpolate`` is the kernel torchvision's ``Resize`` calls on tensors);
* embedding: the image embedding and both high-resolution feature maps the decoder gets
  (``_features`` of the predictor), exact;
* points / labels: the box corners (labels 2, 3) first, then the clicks, exact; boxes: none
  (SAM 2 takes the box as two points); mask input, low-res (clamped to ±32, as the predictor
  returns it), slice logits (the 256² logits resized straight to the slice), mask: exact.

All exact: measured max |Δ| = 0. ``multimask`` is set per scenario as in ``test_sam.py``; the
reference itself always passes ``multimask_output=False`` (the ``never-three`` and
``box-then-click`` scenarios), letting the decoder fall back to the most stable of three
candidates (``dynamic_multimask_via_stability``, which ``build_sam2`` sets in both paths, being
the same network).

SAM 2.1 Hiera-T with seeded random weights; ``forward_image`` is replaced in both paths by a
recorder that keeps its input and returns fixed backbone features of the real shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

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
)

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from radioactive.models.sam2 import LOW_RES_CLAMP, SAM2Backend, SAM2Resize  # noqa: E402

#: shapes of ``forward_image``'s ``backbone_fpn`` for a 1024² input (after ``conv_s0`` /
#: ``conv_s1``), highest resolution first
FPN_SHAPES = ((32, 256, 256), (64, 128, 128), (256, 64, 64))


def sam2_network(net: Any) -> Network:
    """The taps of a ``SAM2Base`` module."""
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
def sam2() -> SAM2Backend:
    with pytest.warns(UserWarning, match="random weights"):
        return SAM2Backend(variant="hiera_t", weights="random", device="cpu")


@pytest.fixture(scope="module")
def sam2_predictor(sam2) -> Any:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor(sam2.net)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sam2_adapter_conforms_to_sam2_image_predictor(sam2, sam2_predictor, scenario) -> None:
    network = sam2_network(sam2.net)
    ours = adapter_trace(sam2, network, VOLUME, scenario)
    theirs = predictor_trace(sam2_predictor, network, VOLUME, scenario)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    nontrivial(theirs)
    assert len(ours.images) == 1 and len(ours.prompts) == len(scenario.steps)
    assert {c.kind for c in checks} == set(TOLERANCE)
    # SAM 2 takes a box as two corner points, never as a box; the fed-back logits are clamped
    assert all(call["boxes"] is None for call in ours.prompts)
    assert all(float(abs(low).max()) <= LOW_RES_CLAMP for low in ours.low)


# -- deliberately broken copies --------------------------------------------------------------------


@dataclass(frozen=True)
class HalfOpenCorners(SAM2Resize):
    """A broken mapping: the half-open box's corners handed over as is (one past the box)."""

    def box(self, box_yx, shape):
        y0, x0, y1, x1 = box_yx
        return self.points([[y0, x0], [y1, x1]], shape).reshape(4)


@dataclass(frozen=True)
class LongestSideClicks(SAM2Resize):
    """A broken mapping: clicks scaled by the longest side (SAM's rule) instead of by W and H."""

    def points(self, yx, shape):
        scale = self.size / max(shape)
        return np.asarray(yx, dtype=float).reshape(-1, 2)[:, ::-1] * scale


@dataclass(frozen=True)
class AlignedCornersLogits(SAM2Resize):
    """A broken mapping: the logits resized with ``align_corners=True``."""

    def logits_to_slice(self, low_res, shape):
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        x = F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=True)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)


def sam2_breakages(backend: SAM2Backend) -> dict[str, tuple[Any, set[str], Scenario]]:
    """Broken copies of ``backend``: name → (copy, the check kinds that must fail, scenario)."""
    size = backend.resize.size

    class PerSlice(SAM2Backend):
        def normalize_volume(self, image, modality=None):
            return per_slice_levels(image) / np.float32(255.0)

    class SwappedAxes(SAM2Backend):
        def normalize_volume(self, image, modality=None):
            return swapped_axes_levels(image) / np.float32(255.0)

    return {
        "per-slice-scaling": (broken_copy(backend, PerSlice), {"levels", "image"}, BOX_ONLY),
        "swapped-axes": (broken_copy(backend, SwappedAxes), {"levels", "image"}, BOX_ONLY),
        "half-open-box": (
            broken_copy(backend, resize=HalfOpenCorners(size)), {"points"}, BOX_ONLY
        ),
        "clicks-by-longest-side": (
            broken_copy(backend, resize=LongestSideClicks(size)), {"points"}, CLICKS_ONLY
        ),
        "align-corners-logits": (
            broken_copy(backend, resize=AlignedCornersLogits(size)), {"slice logits"}, BOX_ONLY
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    "breakage",
    ["per-slice-scaling", "swapped-axes", "half-open-box", "clicks-by-longest-side",
     "align-corners-logits"],
)  # fmt: skip
def test_sam2_comparison_reports_a_broken_adapter(sam2, sam2_predictor, breakage) -> None:
    broken, must_fail, scenario = sam2_breakages(sam2)[breakage]
    checks = conformance(broken, sam2_predictor, sam2_network(sam2.net), scenario)
    assert not conforms(checks)
    assert must_fail <= failed(checks), report(checks)
