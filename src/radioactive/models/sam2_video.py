"""SAM 2 / SAM 2.1 video predictor as a 3D model: the axial slices are the frames of a video.

Code from the ``sam2`` package (``sam2.build_sam.build_sam2_video_predictor``,
``SAM2VideoPredictor``); weights and configs as :mod:`radioactive.models.sam2` (the same
checkpoint registry entries, ``sam2.1_hiera_{tiny,small,base_plus,large}`` and ``sam2_hiera_*``).

How a volume goes through the predictor:

* **Frames.** The volume is normalised exactly as the image-predictor backend does it
  (:meth:`SAM2Backend.normalize_volume <radioactive.models.sam2.SAM2Backend.normalize_volume>`:
  percentiles or a CT window, uint8 levels, [0, 1]) and each slice becomes a frame with
  :meth:`~radioactive.models.sam2.SAM2Backend.encoder_input` (1024² square resize, three
  channels, ImageNet mean / std). ``init_state`` reads frames from a JPEG folder upstream; here it
  is given the slices in memory instead, made on demand (:class:`VolumeFrames`), by substituting
  the frame loader it calls for the duration of the call. The rest of the inference state is
  upstream's own.
* **Prompts.** Points, 2D boxes and scribbles (one point per voxel on its own slice, as the
  slice-wise engine) are grouped by slice; each prompted slice gets **one**
  ``add_new_points_or_box`` call (``frame_idx`` = z, object id 1) with all the prompts that slice
  has accumulated, as (x, y) pixel coordinates of the slice with ``normalize_coords=True`` (the
  predictor scales them by ``1024 / W`` and ``1024 / H``, as the image backend does); a box goes in
  as its first and last pixel (x0, y0, x1 − 1, y1 − 1). A 3D box becomes the 2D box of its (y, x)
  footprint on its middle slice, and its z range bounds the propagation, as z-limits do.
* **Propagation.** ``propagate_in_video`` runs forward and then in reverse, both from the lowest
  prompted slice (upstream's default start, the earliest conditioning frame): forward covers
  every slice above it (prompted slices in between included: SAM 2 attends to all conditioning
  frames, before or after the current one), reverse every slice below it. Each unprompted slice is
  predicted once per step. ``ZLimit`` prompts (and a 3D box's z range) stop the two passes at the
  lowest / highest slice of the object; a prompted slice outside them widens them. Slices no pass
  reaches are background.
* **Output.** The masks the predictor yields at the slice's own resolution (its 256² logits
  resized bilinearly, as ``SAM2Transforms.postprocess_masks``), thresholded at 0, placed in a
  canonical (z, y, x) boolean volume.

Refinement: a later ``predict`` with ``keep_previous`` (the default, "WithPrev") adds the new
prompts to the **same** inference state: each slice they touch is re-sent with all its prompts
(the predictor feeds that slice's previous logits back with them), and both passes run again from
the lowest prompted slice, re-predicting every unprompted slice with the updated memory. The
predictor is built with ``add_all_frames_to_correct_as_cond=True`` so that a corrected slice stays
a conditioning frame and is not overwritten by the next propagation. An interaction with
``keep_previous=False`` ("NoPrev") resets the state and starts a new track from its own prompts.
The previous step's logits live in the predictor's state, so ``Prediction.logits`` stays empty
and ``previous`` is not read.

Not supported: lasso prompts (the video API takes a frame mask through ``add_new_mask``, but a
mask replaces the frame's clicks and there is no negative mask); several objects at once (one
target per track). The hole filling of upstream's post-processing needs sam2's CUDA extension and
is off by default (``fill_hole_area=0``), so results do not depend on how ``sam2`` was built.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    Capabilities,
    ModelCard,
    NoSlicePredictor,
    Prediction,
    StepTimings,
    check_supported,
)
from radioactive.models.sam2 import SAM2Backend
from radioactive.models.slicewise import prompts_by_slice, slice_prompts
from radioactive.prompts.types import (
    Box2D,
    Box3D,
    Interaction,
    Point,
    Prompt,
    Scribble,
    ZLimit,
    check_within,
)

#: the one object tracked per target
OBJ_ID = 1
#: prompts placed on frames
FramePrompt = Point | Box2D | Scribble
#: serialises the substitution of the predictor module's frame loader (see :func:`frames_source`)
_LOADER_LOCK = threading.Lock()
#: serialises the substitution of a predictor module's progress bar (see :func:`quiet_progress`)
_PROGRESS_LOCK = threading.Lock()


class VolumeFrames(Sequence[Any]):
    """The slices of a normalised (z, y, x) volume as video frames, each made when the predictor
    asks for it (only the frame being encoded is held).

    Args:
        volume: the normalised volume.
        to_frame: (1, Y, X) float tensor → (1, 3, S, S) encoder input on the model's device.
    """

    def __init__(self, volume: npt.NDArray[np.float32], to_frame: Callable[[Any], Any]):
        self.volume = volume
        self.to_frame = to_frame

    def __len__(self) -> int:
        return int(self.volume.shape[0])

    def __getitem__(self, z: Any) -> Any:
        import torch

        if not isinstance(z, (int, np.integer)) or not 0 <= z < len(self):
            raise IndexError(f"frame {z!r} is not a slice of a volume of {len(self)} slices")
        x = torch.from_numpy(np.ascontiguousarray(self.volume[z : z + 1], dtype=np.float32))
        return self.to_frame(x)[0]


@contextlib.contextmanager
def frames_source(frames: Sequence[Any], height: int, width: int) -> Iterator[None]:
    """While open, ``SAM2VideoPredictor.init_state`` takes ``frames`` (of a ``height × width``
    video) instead of reading a JPEG folder: the ``load_video_frames`` its module calls is
    substituted, under a lock, and restored on exit."""
    import sam2.sam2_video_predictor as upstream

    def load_video_frames(**_: Any) -> tuple[Sequence[Any], int, int]:
        return frames, height, width

    with _LOADER_LOCK:
        original = upstream.load_video_frames
        upstream.load_video_frames = load_video_frames
        try:
            yield
        finally:
            upstream.load_video_frames = original


def pillow_frames(x: Any, size: int, device: Any) -> Any:
    """Slices (B, H, W) in [0, 1] (uint8 levels / 255) → (B, 3, size, size) as the video
    loaders of ``sam2`` and ``sam3`` make frames: each slice as a uint8 RGB image resized by
    Pillow (bicubic, its default), / 255, ImageNet mean / std."""
    import torch
    from PIL import Image

    from radioactive.models.sam2 import IMAGENET_MEAN, IMAGENET_STD

    levels = np.clip(np.rint(x.detach().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)
    frames = [
        np.asarray(
            Image.fromarray(s).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        ).transpose(2, 0, 1)
        for s in levels
    ]
    t = torch.as_tensor(np.stack(frames), dtype=torch.float32, device=device) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (t - mean) / std


@contextlib.contextmanager
def quiet_progress(module: Any) -> Iterator[None]:
    """While open, ``module.tqdm`` (an upstream predictor's progress bar) passes its iterable
    through; restored on exit."""
    with _PROGRESS_LOCK:
        original = module.tqdm
        module.tqdm = lambda iterable, *args, **kwargs: iterable
        try:
            yield
        finally:
            module.tqdm = original


@contextlib.contextmanager
def timed_encoder(net: Any, timings: StepTimings) -> Iterator[None]:
    """Count and time the image encoder runs (``net.forward_image``) while open."""
    had_own = "forward_image" in vars(net)
    inner = net.forward_image

    def forward_image(img: Any) -> Any:
        t0 = time.perf_counter()
        out = inner(img)
        timings.encoder_s += time.perf_counter() - t0
        timings.encoder_calls += int(img.shape[0])
        return out

    net.forward_image = forward_image
    try:
        yield
    finally:
        if had_own:
            net.forward_image = inner
        else:
            del net.forward_image


def key_slice_prompts(prompts: Sequence[Prompt]) -> tuple[list[FramePrompt], list[ZLimit]]:
    """The prompts that go onto frames (3D boxes as the 2D box on their middle slice) and the
    z bounds stated along the way (z-limits, and each 3D box's lowest and highest slice)."""
    onto: list[FramePrompt] = []
    bounds: list[ZLimit] = []
    for p in prompts:
        if isinstance(p, Box3D):
            onto.append(Box2D(math.floor(p.centre()[0]), p.lo[1:], p.hi[1:]))
            bounds += [ZLimit(p.lo[0], False), ZLimit(p.hi[0] - 1, True)]
        elif isinstance(p, ZLimit):
            bounds.append(p)
        elif isinstance(p, (Point, Box2D, Scribble)):
            onto.append(p)
    return onto, bounds


def propagation_range(
    depth: int, key_slices: Sequence[int], bounds: Sequence[ZLimit]
) -> tuple[int, int]:
    """First and last slice the passes cover: the latest lower / upper bound (the volume's ends
    without one), clipped to the volume, widened to every prompted slice."""
    lo, hi = 0, depth - 1
    for b in bounds:
        if b.upper:
            hi = min(max(int(b.z), 0), depth - 1)
        else:
            lo = min(max(int(b.z), 0), depth - 1)
    return min(lo, *key_slices), max(hi, *key_slices)


#: what a video predictor over the axial slices takes: prompts on frames, a 3D box as its
#: middle-slice box and z range, z-limits; a re-prompted slice's previous logits stay in the
#: predictor's state; it propagates and cannot predict a single slice on demand
TRACKER_CAPABILITIES = Capabilities(
    dim=3,
    prompt_types=frozenset({"point", "box2d", "box3d", "scribble"}),
    accepts_mask=True,
    slice_predictor=False,
    propagates=True,
)


class VideoTracker:
    """The 3D model protocol of a video predictor run over the axial slices: volume frames,
    prompts grouped by key slice, both propagation passes, refinement in the same state.

    A subclass supplies the upstream calls: ``to_frame`` (a (1, Y, X) slice → its encoder input),
    ``clear_track`` (forget the prompts of a state), ``tracker_calls`` (a context the predictor's
    own calls run in), ``_inference_state``, ``_add_prompts`` and ``_pass``.
    """

    card: ModelCard
    capabilities: Capabilities
    net: Any
    #: the backend's intensity contract (an annotation only: the backend class provides it)
    normalize_volume: Callable[..., Any]

    def init_tracking(self) -> None:
        """The empty tracking state (call at the end of ``__init__``)."""
        self.frames: VolumeFrames | None = None
        self.state: dict[str, Any] | None = None
        self._prompts: list[Prompt] = []
        self._bounds: list[ZLimit] = []
        self.spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
        self.totals = StepTimings()

    def tracker_calls(self) -> contextlib.AbstractContextManager[Any]:
        """The context of the predictor's own calls (nothing by default)."""
        return contextlib.nullcontext()

    def to_frame(self, x: Any) -> Any:
        raise NotImplementedError

    def clear_track(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _inference_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _add_prompts(self, state: dict[str, Any], z: int, prompts: Sequence[Prompt]) -> None:
        raise NotImplementedError

    def _pass(
        self, state: dict[str, Any], start: int, n: int, reverse: bool, mask: npt.NDArray[np.bool_]
    ) -> None:
        raise NotImplementedError

    # -- the Model protocol --------------------------------------------------------------------

    def prepare(
        self,
        image: npt.NDArray,
        spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
        modality: str | None = None,
    ) -> None:
        """Normalise the volume (the contract for ``modality``); the inference state is made at
        the first prediction."""
        arr = np.asarray(image)
        if arr.ndim != 3:
            raise ValueError(f"expected a 3D (z, y, x) image, got shape {arr.shape}")
        volume = np.ascontiguousarray(self.normalize_volume(arr, modality), dtype=np.float32)
        self.frames = VolumeFrames(volume, self.to_frame)
        self.spacing_mm = spacing_mm
        self.state = None
        self._prompts, self._bounds = [], []

    def reset(self) -> None:
        """Forget the prompts and the track of the previous target (the state is kept)."""
        self._prompts, self._bounds = [], []
        if self.state is not None:
            self.clear_track(self.state)

    @property
    def shape(self) -> tuple[int, int, int]:
        if self.frames is None:
            raise RuntimeError("call prepare(image) before predicting")
        z, y, x = self.frames.volume.shape
        return z, y, x

    def predict(self, interaction: Interaction, previous: Prediction | None = None) -> Prediction:
        check_supported(self.card.name, self.capabilities, interaction)
        depth = self.shape[0]
        check_within(interaction.prompts, self.shape, f"model {self.card.name!r}")
        onto, bounds = key_slice_prompts(interaction.prompts)
        keep = interaction.keep_previous
        prompts: list[Prompt] = [*self._prompts, *onto] if keep else list(onto)
        by_slice = prompts_by_slice(prompts, depth)
        if not by_slice:
            raise ValueError(
                f"model {self.card.name!r} needs at least one point, box or scribble to track",
            )
        if not keep:
            self.reset()
        self._prompts = prompts
        self._bounds = [*self._bounds, *bounds]
        touched = sorted(prompts_by_slice(onto, depth))
        timings = StepTimings()
        t0 = time.perf_counter()
        with self.tracker_calls(), timed_encoder(self.net, timings):
            state = self._inference_state()
            for z in touched:
                self._add_prompts(state, z, by_slice[z])
            lo, hi = propagation_range(depth, list(by_slice), self._bounds)
            mask = self._propagate(state, by_slice, lo, hi)
        timings.decoder_s = time.perf_counter() - t0 - timings.encoder_s
        timings.slices_inferred = hi - lo + 1
        self.totals.add(timings)
        return Prediction(mask=mask, logits={}, timings=timings)

    def _propagate(
        self, state: dict[str, Any], by_slice: dict[int, list[Prompt]], lo: int, hi: int
    ) -> npt.NDArray[np.bool_]:
        """Both passes from the lowest prompted slice in one inference state (forward to
        ``hi``, then in reverse to ``lo``); the mask of every slice they reach."""
        mask = np.zeros(self.shape, dtype=bool)
        start = min(by_slice)
        for reverse, n in ((False, hi - start), (True, start - lo)):
            self._pass(state, start, n, reverse, mask)
        return mask


class SAM2VideoModel(VideoTracker, NoSlicePredictor, SAM2Backend):
    """SAM 2 / 2.1 video predictor over the axial slices (see the module docstring).

    It keeps :class:`~radioactive.models.sam2.SAM2Backend`'s input contract (intensity, resize,
    ImageNet normalisation) and implements the 3D :class:`~radioactive.models.base.Model`
    protocol itself.

    Args:
        variant: ``"hiera_l"`` (default), ``"hiera_b+"``, ``"hiera_s"`` or ``"hiera_t"``.
        version: ``"2.1"`` (default) or ``"2"``.
        checkpoint: a checkpoint file to use instead of the registry's.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract) or an intensity preset (see
            :mod:`radioactive.models.intensity`).
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
        fill_hole_area: fill holes up to this many pixels in the 256² masks (upstream's
            post-processing, 8 in ``build_sam2_video_predictor``; needs sam2's CUDA extension,
            skipped with a warning without it). Default 0: off.
    """

    card = ModelCard(
        name="sam2_video",
        version="2",
        checkpoint=SAM2Backend.card.checkpoint,
        checkpoint_sha256=SAM2Backend.card.checkpoint_sha256,
        licence=SAM2Backend.card.licence,
        training_data=SAM2Backend.card.training_data,
        reference=SAM2Backend.card.reference,
    )
    capabilities = TRACKER_CAPABILITIES
    checkpoint_name = "sam2.1_hiera_large"

    def __init__(
        self,
        variant: str = "hiera_l",
        version: str = "2.1",
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = "auto",
        weights: str = "pretrained",
        fill_hole_area: int = 0,
    ):
        if int(fill_hole_area) < 0:
            raise ValueError(f"fill_hole_area must be >= 0, got {fill_hole_area!r}")
        super().__init__(
            variant=variant, version=version, checkpoint=checkpoint, cache=cache, device=device,
            intensity=intensity, weights=weights,
        )  # fmt: skip
        self.net.fill_hole_area = int(fill_hole_area)
        self.init_tracking()

    def build_sam2(self, config: str, checkpoint: Any) -> Any:
        """Upstream's video predictor, which keeps a corrected slice as a conditioning frame."""
        from radioactive.models._torch import quiet_imports

        with quiet_imports():
            from sam2.build_sam import build_sam2_video_predictor

        return build_sam2_video_predictor(
            config, ckpt_path=checkpoint, device="cpu", mode="eval",
            hydra_overrides_extra=["++model.add_all_frames_to_correct_as_cond=true"],
        )  # fmt: skip

    def to_frame(self, x: Any) -> Any:
        return self.encoder_input(x.to(self.device))

    def clear_track(self, state: dict[str, Any]) -> None:
        self.net.reset_state(state)

    # -- steps ---------------------------------------------------------------------------------

    def _pass(
        self, state: dict[str, Any], start: int, n: int, reverse: bool, mask: npt.NDArray[np.bool_]
    ) -> None:
        """One ``propagate_in_video`` pass of ``n`` slices from ``start``, written into ``mask``
        (without upstream's progress bar, which would cut through the runner's)."""
        import sam2.sam2_video_predictor as upstream

        with quiet_progress(upstream):
            for z, _, masks in self.net.propagate_in_video(
                state, start_frame_idx=start, max_frame_num_to_track=n, reverse=reverse
            ):
                mask[z] = (masks[0, 0] > 0).cpu().numpy()

    def _inference_state(self) -> dict[str, Any]:
        """The predictor's inference state for the prepared volume (made once per volume)."""
        if self.state is None:
            assert self.frames is not None
            _, h, w = self.shape
            with frames_source(self.frames, h, w):
                self.state = self.net.init_state(video_path=f"<volume of {len(self.frames)}>")
        return self.state

    def _add_prompts(self, state: dict[str, Any], z: int, prompts: Sequence[Prompt]) -> None:
        """All prompts of slice ``z`` onto frame ``z``, replacing what it had."""
        sp = slice_prompts(prompts)
        points = labels = box = None
        if len(sp.points):
            points = sp.points[:, ::-1].astype(np.float32)  # (y, x) → (x, y)
            labels = sp.labels.astype(np.int32)
        if sp.box is not None:
            y0, x0, y1, x1 = sp.box
            box = np.array([x0, y0, x1 - 1, y1 - 1], dtype=np.float32)
        self.net.add_new_points_or_box(
            state, frame_idx=z, obj_id=OBJ_ID, points=points, labels=labels,
            clear_old_points=True, normalize_coords=True, box=box,
        )  # fmt: skip
