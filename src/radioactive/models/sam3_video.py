"""SAM 3's tracker as a 3D model: the axial slices are the frames of a video.

Code from the ``sam3`` package (``sam3.model_builder.build_tracker`` with its vision backbone,
``sam3.model.sam3_tracking_predictor.Sam3TrackerPredictor``); weights from ``sam3.pt``, as
:mod:`radioactive.models.sam3` (the same file, mapped onto the tracker by
:func:`~radioactive.models.sam3.tracker_state`). The network is built as
``build_sam3_video_model`` builds its tracker (``apply_temporal_disambiguation=True``: memory
frames selected by predicted IoU), with SAM 3's vision backbone, as upstream's
``sam3_video_object_segmentation`` example runs it (the SAM 2 task on videos).

How a volume goes through the predictor:

* **Frames** (:data:`SAM3_VIDEO_CONTRACTS`). The volume gets the SAM family's uint8 levels
  (:meth:`~radioactive.models.sam2.SAM2Backend.normalize_volume`, as ``sam3``); each slice is
  then what ``Sam3TrackerPredictor.init_state(video_path=...)`` makes of a JPEG frame with its
  own loader (``sam3.model.utils.sam2_utils.load_video_frames``, whose defaults ``init_state``
  keeps): an RGB image resized to 1008 × 1008 by Pillow (bicubic, its default), divided by 255,
  normalised with the ImageNet mean / std, float32 (SAM 3's concept pipeline,
  ``Sam3VideoInference``, loads frames with mean / std 0.5 instead; the tracker's own loader
  keeps SAM 2's values, and this adapter follows it). Here the loader is substituted while
  ``init_state`` runs and given the slices in memory, made when the predictor encodes them
  (:class:`~radioactive.models.sam2_video.VolumeFrames`); the rest of the state is upstream's.
* **Prompts** as ``sam2_video``: the prompts of each prompted slice go in one
  ``add_new_points_or_box`` call on frame z (object 1) in relative coordinates (x / W, y / H;
  the predictor scales them by 1008), a 2D box as its first and last pixel; scribbles are points
  on their own slices; a 3D box is the box of its footprint on its middle slice and its z range
  bounds the passes, as z-limits do.
* **Propagation**: ``propagate_in_video`` forward, then in reverse, both from the lowest
  prompted slice, each with upstream's pre-flight (which encodes the prompted slices into
  memory); z-limits stop the passes; slices no pass reaches are background.
* **Output**: the masks the predictor yields at the slice's resolution, thresholded at 0.

Refinement: with ``keep_previous`` the new prompts go into the same inference state (a touched
slice is re-sent with all its prompts; the predictor feeds that slice's previous logits back
and keeps every corrected slice as a conditioning frame), and both passes run again.
``keep_previous=False`` clears the track (``clear_all_points_in_video``) and starts again.

The CPU shim. ``sam3`` 0.1.4's tracker calls ``Tensor.cuda()`` on every frame it encodes, on the
stored memories at each propagated frame and on a slice's previous logits at a correction, and
pins the memory of the temporal positions of its object pointers (``pin_memory()``, which needs
a CUDA driver). On a device other than CUDA, :func:`cuda_calls_to` replaces ``torch.Tensor.cuda``
by a move to the model's device (``non_blocking`` honoured) and ``torch.Tensor.pin_memory`` by
the identity (pinning only speeds up copies to a GPU), for exactly the duration of the adapter's
calls into the predictor, under a module lock, and restores both on exit (also after an error);
the inference state is kept on the CPU (``offload_state_to_cpu=True``). Another thread that calls
them while a prediction runs is redirected too. On a CUDA device nothing is replaced.

Not supported: lasso prompts, several objects at once (as ``sam2_video``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    ModelCard,
    NoSlicePredictor,
)
from radioactive.models.contracts import AUTO, InputContract
from radioactive.models.sam2_video import (
    OBJ_ID,
    TRACKER_CAPABILITIES,
    VideoTracker,
    pillow_frames,
)
from radioactive.models.sam3 import SAM3Backend, cpu_position_encodings
from radioactive.models.slicewise import slice_prompts
from radioactive.prompts.types import Prompt

__all__ = ["SAM3_VIDEO_CONTRACTS", "SAM3VideoModel", "cuda_calls_to", "tracker_frames_source"]

#: serialises the substitution of ``torch.Tensor.cuda`` (see :func:`cuda_calls_to`)
_CUDA_LOCK = threading.RLock()
#: serialises the substitution of the tracker module's frame loader
_LOADER_LOCK = threading.Lock()

_SOURCE = (
    "MIC-DKFZ/radioactive src/radioa/model/SAM2.py (intensity); facebookresearch/sam3 "
    "sam3/model/sam3_tracking_predictor.py (Sam3TrackerPredictor.init_state), "
    "sam3/model/utils/sam2_utils.py (load_video_frames, _load_img_as_tensor), "
    "examples/sam3_video_object_segmentation.ipynb"
)

SAM3_VIDEO_CONTRACTS = (
    InputContract(
        name="sam3-video-tracker-v1",
        modality="any",
        intensity="volume clipped to its 0.5-99.5 percentiles over all voxels, min-max scaled "
        "with the clipped volume's range to [0, 255] and rounded to uint8",
        preset="sam_reference",
        resampling="each axial slice as a uint8 RGB image resized to 1008 x 1008 by Pillow "
        "(bicubic, Pillow's default), divided by 255: Sam3TrackerPredictor.init_state's frame "
        "loader",
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels, ImageNet mean / std (the loader's defaults), float32",
        source=_SOURCE,
    ),
)


@contextlib.contextmanager
def cuda_calls_to(device: Any) -> Iterator[None]:
    """While open, ``Tensor.cuda()`` moves a tensor to ``device`` and ``Tensor.pin_memory()``
    returns the tensor itself (the CPU shim, see the module docstring); nothing is replaced when
    ``device`` is a CUDA device."""
    import torch

    if torch.device(device).type == "cuda":
        yield
        return

    def to_device(self: Any, device_: Any = None, non_blocking: bool = False, **_: Any) -> Any:
        return self.to(device, non_blocking=non_blocking)

    def unpinned(self: Any, *_: Any, **__: Any) -> Any:
        return self

    with _CUDA_LOCK:
        cuda, pin_memory = torch.Tensor.cuda, torch.Tensor.pin_memory
        torch.Tensor.cuda = to_device  # type: ignore[method-assign,assignment]
        torch.Tensor.pin_memory = unpinned  # type: ignore[method-assign]
        try:
            yield
        finally:
            torch.Tensor.cuda = cuda  # type: ignore[method-assign]
            torch.Tensor.pin_memory = pin_memory  # type: ignore[method-assign]


@contextlib.contextmanager
def tracker_frames_source(frames: Sequence[Any], height: int, width: int) -> Iterator[None]:
    """While open, ``Sam3TrackerPredictor.init_state`` takes ``frames`` (of a ``height × width``
    video) instead of loading a video: the ``load_video_frames`` its module calls is substituted,
    under a lock, and restored on exit."""
    import sam3.model.sam3_tracking_predictor as upstream

    def load_video_frames(**_: Any) -> tuple[Sequence[Any], int, int]:
        return frames, height, width

    with _LOADER_LOCK:
        original = upstream.load_video_frames
        upstream.load_video_frames = load_video_frames
        try:
            yield
        finally:
            upstream.load_video_frames = original


class SAM3VideoModel(VideoTracker, NoSlicePredictor, SAM3Backend):
    """SAM 3's tracker over the axial slices (see the module docstring).

    It takes :class:`~radioactive.models.sam3.SAM3Backend`'s weights, build on the CPU and
    intensity rule, and states its own frames (:data:`SAM3_VIDEO_CONTRACTS`); it implements the
    3D :class:`~radioactive.models.base.Model` protocol itself.

    Args:
        checkpoint: a checkpoint file to use instead of the registry's ``sam3.pt``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract) or an intensity preset (see
            :mod:`radioactive.models.intensity`).
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
    """

    card = ModelCard(
        name="sam3_video",
        version="1",
        checkpoint=SAM3Backend.card.checkpoint,
        checkpoint_sha256=SAM3Backend.card.checkpoint_sha256,
        licence=SAM3Backend.card.licence,
        training_data=SAM3Backend.card.training_data,
        reference=SAM3Backend.card.reference,
    )
    contracts = SAM3_VIDEO_CONTRACTS
    capabilities = TRACKER_CAPABILITIES
    checkpoint_name = "sam3"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        weights: str = "pretrained",
    ):
        super().__init__(
            checkpoint=checkpoint, cache=cache, device=device, intensity=intensity,
            weights=weights,
        )  # fmt: skip
        self.init_tracking()

    def build_sam3(self, device: Any) -> Any:
        """Upstream's tracker as ``build_sam3_video_model`` builds it, with SAM 3's vision
        backbone, in eval mode, with the process-wide autocast it enters left."""
        from sam3.model_builder import build_tracker

        own = device.type == "cuda"
        with contextlib.nullcontext() if own else cpu_position_encodings():
            net = build_tracker(apply_temporal_disambiguation=True, with_backbone=True)
        context = getattr(net, "bf16_context", None)
        if context is not None:
            context.__exit__(None, None, None)
        return net.eval()

    # -- input contract --------------------------------------------------------------------------

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) in [0, 1] (uint8 levels / 255) → (B, 3, 1008, 1008): each slice as a
        uint8 RGB image resized by Pillow (bicubic), / 255, ImageNet mean / std
        (:func:`~radioactive.models.sam2_video.pillow_frames`)."""
        return pillow_frames(x, int(self.net.image_size), self.device)

    # -- the hooks of the shared tracking (:class:`~radioactive.models.sam2_video.VideoTracker`)

    def to_frame(self, x: Any) -> Any:
        return self.encoder_input(x)

    def clear_track(self, state: dict[str, Any]) -> None:
        self.net.clear_all_points_in_video(state)

    def tracker_calls(self) -> contextlib.AbstractContextManager[Any]:
        """The CPU shim around the tracker's own calls (nothing on CUDA)."""
        return cuda_calls_to(self.device)

    # -- steps ---------------------------------------------------------------------------------

    def _pass(
        self, state: dict[str, Any], start: int, n: int, reverse: bool, mask: npt.NDArray[np.bool_]
    ) -> None:
        """One ``propagate_in_video`` pass (with its pre-flight) of ``n`` slices from ``start``,
        written into ``mask``."""
        for z, _, _, masks, _ in self.net.propagate_in_video(
            state, start_frame_idx=start, max_frame_num_to_track=n, reverse=reverse,
            tqdm_disable=True, propagate_preflight=True,
        ):  # fmt: skip
            mask[z] = (masks[0, 0] > 0).cpu().numpy()

    def _inference_state(self) -> dict[str, Any]:
        """The predictor's inference state for the prepared volume (made once per volume)."""
        if self.state is None:
            assert self.frames is not None
            _, h, w = self.shape
            with tracker_frames_source(self.frames, h, w):
                self.state = self.net.init_state(
                    video_path=f"<volume of {len(self.frames)}>",
                    offload_state_to_cpu=self.device.type != "cuda",
                )
        return self.state

    def _add_prompts(self, state: dict[str, Any], z: int, prompts: Sequence[Prompt]) -> None:
        """All prompts of slice ``z`` onto frame ``z`` in relative coordinates, replacing what it
        had."""
        _, h, w = self.shape
        sp = slice_prompts(prompts)
        points = labels = box = None
        if len(sp.points):
            xy = sp.points[:, ::-1].astype(np.float64)  # (y, x) → (x, y)
            points = (xy / [w, h]).astype(np.float32)
            labels = sp.labels.astype(np.int32)
        if sp.box is not None:
            y0, x0, y1, x1 = sp.box
            box = (np.array([x0, y0, x1 - 1, y1 - 1], np.float64) / [w, h, w, h]).astype(np.float32)
        self.net.add_new_points_or_box(
            state, frame_idx=z, obj_id=OBJ_ID, points=points, labels=labels,
            clear_old_points=True, rel_coordinates=True, box=box,
        )  # fmt: skip
