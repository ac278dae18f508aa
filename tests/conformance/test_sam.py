"""Conformance of the SAM adapter with its authors' pipeline, run with ``SamPredictor`` itself.

The authors' contract for SAM (MobileSAM and SAM 2 share it) is the RadioActive reference's
preprocessing: the whole volume clipped to its 0.5 and 99.5 percentiles (over all voxels), the
clipped volume's minimum..maximum scaled to 0..255 and rounded to uint8 (re-expressed here with
numpy in :func:`reference_levels`, in float64 as the reference computes on ``get_fdata()``), then
each slice as an RGB uint8 image through the upstream predictor: ``set_image`` (its
``ResizeLongestSide.apply_image``, ``Sam.preprocess``) and ``predict(point_coords, point_labels,
box, mask_input, multimask_output, return_logits=True)``, boxes given as their extreme pixels
(x0, y0, x1 - 1, y1 - 1), the previous low-resolution logits fed back as ``mask_input``.

The same volume and prompts go through our adapter, driven by the slice-wise engine
(``SliceWiseModel(SAMBackend)``), and through a ``SamPredictor`` around the same network; both
paths are tapped where they reach the network and compared (:func:`conformance`):

============== ============================================================ =========
check          what                                                          tolerance
============== ============================================================ =========
levels         the volume's intensity levels (``normalize_volume``)          exact
image          the image encoder's input tensor (1, 3, 1024, 1024)           exact
embedding      the embedding the mask decoder is given                       exact
points         prompt encoder: click / corner coordinates in the model frame exact
labels         prompt encoder: click labels                                  exact
boxes          prompt encoder: box in the model frame                        exact
mask input     prompt encoder: the previous low-resolution logits            exact
low-res        the chosen 256² logits (what the engine feeds back)           exact
slice logits   the chosen logits on the slice (H, W)                         exact
mask           the predicted volume: the slice's mask, other slices empty    exact
============== ============================================================ =========

Every check is exact (max |Δ| = 0, measured) because both paths run the same operations on the
same numbers: the adapter calls the predictor's own ``ResizeLongestSide.apply_image`` and
``Sam.preprocess``, the same float64 coordinate scaling, the same prompt encoder, mask decoder
and ``postprocess_masks`` interpolations.

The slice is non-square (96 × 160: resized to 614 × 1024, 410 rows of padding), and the slices of
the volume span different ranges, so per-slice scaling would give other levels. Multimask:
the adapter's ``multimask="auto"`` (three candidates for a lone click, the best by predicted
IoU; one otherwise) is a documented choice; each scenario states the predictor's
``multimask_output`` per step explicitly, with the same best-IoU pick when it is ``True``;
``"always"`` is the reference's own choice for SAM.

ViT-B on 1024² takes tens of seconds on a small CPU, so in both paths the image encoder is
replaced by a recorder that keeps its input and returns one fixed embedding: the image is
compared where it enters the encoder, everything after it from the same embedding. The mask
decoder is the real one (random weights, ``weights="random"``).

The comparison helpers are shared with ``test_mobilesam.py`` and ``test_sam2.py``; each file also
runs them on deliberately broken copies of its adapter, which they must report.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from radioactive.models.intensity import normalize
from radioactive.models.slicewise import SliceWiseModel
from radioactive.models.transforms import LongestSideResize
from radioactive.prompts import Box2D, Point
from radioactive.prompts.cost import make_interaction
from tests.conformance.upstream import max_diff
from tests.models.spies import spy_prompt_encoder

torch = pytest.importorskip("torch")

SHAPE = (3, 96, 160)  # (z, y, x): non-square, so resizing and padding matter
Z = 1  # the prompted slice
BOX = (30, 50, 70, 121)  # half-open (y0, x0, y1, x1): rows 30..69, columns 50..120
#: the tolerance of each kind of check (see the module docstring)
TOLERANCE = {
    "levels": 0.0, "image": 0.0, "embedding": 0.0, "points": 0.0, "labels": 0.0, "boxes": 0.0,
    "mask input": 0.0, "low-res": 0.0, "slice logits": 0.0, "mask": 0.0,
}  # fmt: skip


def make_volume() -> np.ndarray:
    """float32, each slice on its own range (x1, x2.5, x6), with a bright structure on the
    prompted slice, bright outliers above the volume's 99.5th percentile on the last slice and
    dim ones below its 0.5th on the first: per-slice scaling, or no clipping, gives other
    levels."""
    rng = np.random.default_rng(7)
    _, y, x = np.indices(SHAPE)
    vol = 200.0 + 80.0 * np.sin(x / 9.0) * np.cos(y / 11.0) + rng.normal(0, 20, SHAPE)
    vol[:, 40:62, 70:110] += 250.0
    vol *= np.array([1.0, 2.5, 6.0])[:, None, None]
    vol[2][rng.random(SHAPE[1:]) < 0.004] = 2e4
    vol[0][rng.random(SHAPE[1:]) < 0.004] = -3e3
    return vol.astype(np.float32)


VOLUME = make_volume()


# -- the authors' pipeline, re-expressed ---------------------------------------------------------


def reference_levels(volume: np.ndarray) -> np.ndarray:
    """The reference's intensity rule: the volume (float64) clipped to its 0.5 and 99.5
    percentiles over all voxels, the clipped volume's range scaled to [0, 255], rounded to
    uint8."""
    v = np.asarray(volume, dtype=np.float64)
    low, high = np.percentile(v, [0.5, 99.5])
    clipped = np.clip(v, low, high)
    lo, hi = clipped.min(), clipped.max()
    return np.rint((clipped - lo) / (hi - lo) * 255.0).astype(np.uint8)


def rgb(levels: np.ndarray) -> np.ndarray:
    """A (H, W) uint8 slice as the (H, W, 3) RGB image the predictor takes."""
    return np.repeat(levels[:, :, None], 3, axis=2)


@dataclass(frozen=True)
class Step:
    """One interaction on slice :data:`Z`: a half-open box (y0, x0, y1, x1) and / or clicks
    (y, x, positive); prompts accumulate across steps (the latest box counts)."""

    box: tuple[int, int, int, int] | None = None
    clicks: tuple[tuple[int, int, bool], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """Steps, the adapter's ``multimask`` option, and the predictor's ``multimask_output`` of
    each step (when ``True`` the best candidate by predicted IoU is taken, as the adapter does)."""

    name: str
    multimask: str
    upstream_multimask: tuple[bool, ...]
    steps: tuple[Step, ...]


#: the scenarios every SAM-family adapter runs
SCENARIOS = (
    Scenario("box-then-click", "auto", (False, False),
             (Step(box=BOX), Step(clicks=((45, 60, False),)))),
    Scenario("lone-click-then-click", "auto", (True, False),
             (Step(clicks=((50, 85, True),)), Step(clicks=((35, 55, False), (60, 100, True))))),
    Scenario("always-three", "always", (True,), (Step(box=BOX, clicks=((50, 85, True),)),)),
    Scenario("never-three", "never", (False,), (Step(clicks=((50, 85, True),)),)),
)  # fmt: skip


# -- tapping the network ------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """Where a SAM-style network is tapped, and how its embeddings are read.

    Attributes:
        encoder: (object, attribute) of the image encoder call both paths make; replaced by a
            recorder that keeps its input and answers ``answer(input)``.
        answer: the fixed encoder output for an input batch.
        prompt_encoder: the prompt encoder module (its inputs are recorded).
        ours: the adapter's embedding (as its decoder gets it) → list of tensors.
        theirs: the predictor (after ``set_image``) → its embedding as a list of tensors.
        levels: the reference's uint8 levels as the adapter's ``normalize_volume`` should
            return them (SAM: the levels as float32).
    """

    encoder: tuple[Any, str]
    answer: Callable[[Any], Any]
    prompt_encoder: Any
    ours: Callable[[Any], list[Any]]
    theirs: Callable[[Any], list[Any]]
    levels: Callable[[np.ndarray], np.ndarray] = lambda u8: u8.astype(np.float32)


def sam_network(net: Any) -> Network:
    """The taps of a ``segment_anything`` / ``mobile_sam`` ``Sam`` module."""
    embedding = torch.randn(256, 64, 64, generator=torch.Generator().manual_seed(0))
    return Network(
        encoder=(net.image_encoder, "forward"),
        answer=lambda x: embedding.expand(x.shape[0], -1, -1, -1).clone(),
        prompt_encoder=net.prompt_encoder,
        ours=lambda emb: [emb],
        theirs=lambda predictor: [predictor.features[0]],
    )


@dataclass
class Trace:
    """What one path handed the network and got back, step by step."""

    levels: np.ndarray
    images: list[Any] = field(default_factory=list)
    embeddings: list[list[Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    low: list[Any] = field(default_factory=list)
    full: list[Any] = field(default_factory=list)
    volumes: list[np.ndarray] = field(default_factory=list)


@contextmanager
def tapped(network: Network) -> Iterator[tuple[list[Any], list[dict[str, Any]]]]:
    """While open: the encoder's inputs and the prompt encoder's inputs, as both paths run."""
    images: list[Any] = []

    def record(x: Any) -> Any:
        images.append(x.detach().clone())
        return network.answer(x)

    with pytest.MonkeyPatch.context() as mp:
        owner, attr = network.encoder
        mp.setattr(owner, attr, record)
        calls = spy_prompt_encoder(mp, network.prompt_encoder)
        yield images, calls


def adapter_trace(backend: Any, network: Network, volume: np.ndarray, scenario: Scenario) -> Trace:
    """Our adapter through the slice-wise engine (WithPrev: the previous step's logits are fed
    back by the engine)."""
    decoded: list[tuple[Any, Any]] = []
    original = backend.decode

    def decode(embedding: Any, prompts: Any, shape: tuple[int, int]) -> Any:
        full, low = original(embedding, prompts, shape)
        decoded.append((embedding, full))
        return full, low

    option = backend.multimask
    trace = Trace(levels=np.asarray(backend.normalize_volume(volume)))
    backend.decode, backend.multimask = decode, scenario.multimask
    try:
        with tapped(network) as (images, calls):
            engine = SliceWiseModel(backend)
            engine.prepare(volume)
            previous = None
            target = np.zeros(volume.shape, bool)
            for step in scenario.steps:
                new: list[Any] = []
                if step.box is not None:
                    new.append(Box2D(Z, step.box[:2], step.box[2:]))
                new += [Point((Z, y, x), positive=p) for y, x, p in step.clicks]
                previous = engine.predict(make_interaction(new, new, target, "test"), previous)
                trace.low.append(previous.logits[Z])
                trace.volumes.append(previous.mask.copy())
    finally:
        del backend.decode
        backend.multimask = option
    trace.images, trace.prompts = images, calls
    trace.embeddings = [network.ours(e) for e, _ in decoded]
    trace.full = [f for _, f in decoded]
    return trace


def predictor_trace(
    predictor: Any, network: Network, volume: np.ndarray, scenario: Scenario
) -> Trace:
    """The authors' pipeline: the reference's levels, the slice as RGB, the upstream
    predictor's ``set_image`` and ``predict`` with the accumulated prompts."""
    levels = reference_levels(volume)
    trace = Trace(levels=network.levels(levels))
    clicks: list[tuple[int, int, bool]] = []
    box: tuple[int, int, int, int] | None = None
    fed: np.ndarray | None = None
    expected = np.zeros(volume.shape, bool)
    with tapped(network) as (images, calls):
        predictor.set_image(rgb(levels[Z]))
        for step, multi in zip(scenario.steps, scenario.upstream_multimask, strict=True):
            clicks += step.clicks
            box = step.box if step.box is not None else box
            masks, iou, low = predictor.predict(
                point_coords=np.array([[x, y] for y, x, _ in clicks], float) if clicks else None,
                point_labels=np.array([int(p) for _, _, p in clicks]) if clicks else None,
                box=None if box is None else np.array([box[1], box[0], box[3] - 1, box[2] - 1]),
                mask_input=None if fed is None else fed[None],
                multimask_output=multi,
                return_logits=True,
            )  # fmt: skip
            best = int(np.argmax(iou)) if multi else 0
            fed = low[best]
            expected = expected.copy()
            expected[Z] = masks[best] > 0
            trace.low.append(fed)
            trace.full.append(masks[best])
            trace.volumes.append(expected)
            trace.embeddings.append(network.theirs(predictor))
    trace.images, trace.prompts = images, calls
    return trace


# -- the comparison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison: its name (``"step 2: mask input"``), kind (``"mask input"``), measured
    max |Δ| (infinite when shapes differ or one side is missing) and tolerance."""

    name: str
    kind: str
    diff: float
    tol: float

    @property
    def ok(self) -> bool:
        return self.diff <= self.tol

    def __str__(self) -> str:
        return f"{self.name}: max |diff| {self.diff:.3g} (tolerance {self.tol:g})"


def check(name: str, kind: str, ours: Any, theirs: Any, tolerance: dict[str, float]) -> Check:
    return Check(name, kind, max_diff(ours, theirs), tolerance[kind])


def boxes(call: dict[str, Any]) -> Any:
    """The boxes of a prompt encoder call as (N, 4): the predictor passes (1, 1, 4), the adapter
    (1, 4); the prompt encoder reads both as (N, 2, 2) corners."""
    b = call.get("boxes")
    return None if b is None else b.reshape(-1, 4)


def compare_traces(
    ours: Trace, theirs: Trace, tolerance: dict[str, float] = TOLERANCE
) -> list[Check]:
    """Every check of the module docstring, step by step."""
    out = [
        check("levels", "levels", ours.levels, theirs.levels, tolerance),
        check("encoder calls", "image", len(ours.images), len(theirs.images), tolerance),
    ]
    for i, (a, b) in enumerate(zip(ours.images, theirs.images, strict=False)):
        out.append(check(f"image {i}", "image", a, b, tolerance))
    steps = max(len(ours.prompts), len(theirs.prompts), len(ours.low), len(theirs.low))
    for k in range(steps):
        s = f"step {k + 1}: "

        def at(items: list[Any], k: int = k) -> Any:
            return items[k] if k < len(items) else None

        a, b = at(ours.prompts) or {}, at(theirs.prompts) or {}
        pa, pb = a.get("points"), b.get("points")
        out += [
            check(s + "points", "points", pa and pa[0], pb and pb[0], tolerance),
            check(s + "labels", "labels", pa and pa[1], pb and pb[1], tolerance),
            check(s + "boxes", "boxes", boxes(a), boxes(b), tolerance),
            check(s + "mask input", "mask input", a.get("masks"), b.get("masks"), tolerance),
            check(s + "low-res", "low-res", at(ours.low), at(theirs.low), tolerance),
            check(s + "slice logits", "slice logits", at(ours.full), at(theirs.full), tolerance),
            check(s + "mask", "mask", at(ours.volumes), at(theirs.volumes), tolerance),
        ]
        ea, eb = at(ours.embeddings) or [], at(theirs.embeddings) or []
        out.append(check(s + "embedding parts", "embedding", len(ea), len(eb), tolerance))
        for j, (x, y) in enumerate(zip(ea, eb, strict=False)):
            out.append(check(s + f"embedding {j}", "embedding", x, y, tolerance))
    return out


def conformance(
    backend: Any, predictor: Any, network: Network, scenario: Scenario,
    volume: np.ndarray = VOLUME, tolerance: dict[str, float] = TOLERANCE,
) -> list[Check]:  # fmt: skip
    """Run ``scenario`` through the adapter and through the upstream ``predictor`` (around the
    same network) and compare what each handed the network."""
    ours = adapter_trace(backend, network, volume, scenario)
    theirs = predictor_trace(predictor, network, volume, scenario)
    return compare_traces(ours, theirs, tolerance)


def conforms(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)


def failed(checks: list[Check]) -> set[str]:
    """The kinds of the checks that failed."""
    return {c.kind for c in checks if not c.ok}


def report(checks: list[Check]) -> str:
    return "\n".join(str(c) for c in checks if not c.ok) or "all checks pass"


def nontrivial(theirs: Trace) -> None:
    """The predictor's answers are worth agreeing on: logits that vary, a mask neither empty
    nor the whole slice."""
    for full, vol in zip(theirs.full, theirs.volumes, strict=True):
        assert float(np.std(full)) > 1e-3
        assert 0.0 < vol[Z].mean() < 1.0


# -- deliberately broken copies --------------------------------------------------------------------


def broken_copy(backend: Any, cls: type | None = None, **changes: Any) -> Any:
    """A shallow copy of ``backend`` (the same network), as an instance of the subclass ``cls``
    and / or with some attributes changed."""
    twin = copy.copy(backend)
    if cls is not None:
        twin.__class__ = cls
    vars(twin).update(changes)
    return twin


def per_slice_levels(image: np.ndarray) -> np.ndarray:
    """The broken intensity rule: each slice min-max scaled on its own (the earlier
    ``"percentile"`` preset), on the 256 levels."""
    return np.rint(normalize(image, "percentile", out_max=255.0)).astype(np.float32)


def swapped_axes_levels(image: np.ndarray) -> np.ndarray:
    """The broken intensity rule: the right levels, but each slice flipped along y and x (a
    "wrong axis" bug that keeps the shape)."""
    levels = np.rint(normalize(image, "sam_reference", out_max=255.0)).astype(np.float32)
    return np.ascontiguousarray(levels[:, ::-1, ::-1])


@dataclass(frozen=True)
class HalfOpenBoxResize(LongestSideResize):
    """A broken mapping: the half-open box handed over as is (x1, y1 one past the box)."""

    def box(self, box_yx, shape):
        y0, x0, y1, x1 = box_yx
        return self.points([[y0, x0], [y1, x1]], shape).reshape(4)


@dataclass(frozen=True)
class PaddedLogitsResize(LongestSideResize):
    """A broken mapping: the logits resized to the slice without cropping the padding first."""

    def logits_to_slice(self, low_res, shape):
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)


@dataclass(frozen=True)
class YXPointsResize(LongestSideResize):
    """A broken mapping: clicks handed over as (y, x) instead of (x, y)."""

    def points(self, yx, shape):
        return np.ascontiguousarray(super().points(yx, shape)[:, ::-1])


#: one-step scenarios for the broken copies (each breakage shows at the first step)
BOX_ONLY = Scenario("box", "auto", (False,), (Step(box=BOX),))
CLICKS_ONLY = Scenario(
    "clicks", "auto", (False,), (Step(clicks=((50, 85, True), (35, 55, False))),)
)


def sam_breakages(backend: Any) -> dict[str, tuple[Any, set[str], Scenario]]:
    """Broken copies of a SAM-family ``backend``: name → (copy, the check kinds that must fail,
    the scenario that exposes it)."""
    size = backend.resize.size

    class PerSlice(type(backend)):
        def normalize_volume(self, image, modality=None):
            return per_slice_levels(image)

    class SwappedAxes(type(backend)):
        def normalize_volume(self, image, modality=None):
            return swapped_axes_levels(image)

    return {
        "per-slice-scaling": (broken_copy(backend, PerSlice), {"levels", "image"}, BOX_ONLY),
        "swapped-axes": (broken_copy(backend, SwappedAxes), {"levels", "image"}, BOX_ONLY),
        "half-open-box": (
            broken_copy(backend, resize=HalfOpenBoxResize(size)), {"boxes"}, BOX_ONLY
        ),
        "clicks-as-yx": (
            broken_copy(backend, resize=YXPointsResize(size)), {"points"}, CLICKS_ONLY
        ),
        "padding-not-cropped": (
            broken_copy(backend, resize=PaddedLogitsResize(size)), {"slice logits", "mask"},
            BOX_ONLY,
        ),
    }  # fmt: skip


BREAKAGES = ("per-slice-scaling", "swapped-axes", "half-open-box", "clicks-as-yx",
             "padding-not-cropped")  # fmt: skip


# -- SAM ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam() -> Any:
    pytest.importorskip("segment_anything")
    from radioactive.models.sam import SAMBackend

    with pytest.warns(UserWarning, match="random weights"):
        return SAMBackend(variant="vit_b", weights="random", device="cpu")


@pytest.fixture(scope="module")
def sam_predictor(sam) -> Any:
    from segment_anything import SamPredictor

    return SamPredictor(sam.net)


def test_the_volume_discriminates_the_rules() -> None:
    levels = reference_levels(VOLUME)
    assert levels.min() == 0 and levels.max() == 255 and len(np.unique(levels[Z])) > 100
    # per-slice scaling, or scaling without clipping, gives other levels
    assert (per_slice_levels(VOLUME) != levels).mean() > 0.5
    raw = VOLUME.astype(np.float64)
    unclipped = np.rint((raw - raw.min()) / (raw.max() - raw.min()) * 255)
    assert (unclipped != levels).mean() > 0.5
    # the resize to 614 x 1024 and its padding matter
    assert LongestSideResize(1024).resized_shape(SHAPE[1:]) == (614, 1024)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sam_adapter_conforms_to_sam_predictor(sam, sam_predictor, scenario) -> None:
    network = sam_network(sam.net)
    ours = adapter_trace(sam, network, VOLUME, scenario)
    theirs = predictor_trace(sam_predictor, network, VOLUME, scenario)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    nontrivial(theirs)
    # the checks saw something: one encoder input per path, one prompt call per step
    assert len(ours.images) == 1 and len(ours.prompts) == len(scenario.steps)
    assert {c.kind for c in checks} == set(TOLERANCE)


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_sam_comparison_reports_a_broken_adapter(sam, sam_predictor, breakage) -> None:
    broken, must_fail, scenario = sam_breakages(sam)[breakage]
    checks = conformance(broken, sam_predictor, sam_network(sam.net), scenario)
    assert not conforms(checks)
    assert must_fail <= failed(checks), report(checks)


def test_levels_are_exact_where_float32_rounding_would_flip_one() -> None:
    volume = np.random.default_rng(11).normal(0, 1000, (2, 64, 64)).astype(np.float32)
    ours = np.rint(normalize(volume, "sam_reference", out_max=255.0))
    assert max_diff(ours, reference_levels(volume)) == 0.0
