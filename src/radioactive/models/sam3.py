"""SAM 3 as a slice-wise backend, through its interactive (SAM 1 task) image predictor.

Code from the ``sam3`` package (``import sam3``: ``sam3.model_builder.build_tracker`` with its
vision backbone, ``sam3.model.sam1_task_predictor.SAM3InteractiveImagePredictor``); weights from
the registry of :mod:`radioactive.models.checkpoints` (``sam3``: ``sam3.pt`` of the gated Hugging
Face repository ``facebook/sam3``, placed by the user).

The network is SAM 3's tracker (SAM 2's prompt encoder and mask decoder, retrained) on SAM 3's
shared vision backbone: the modules ``build_sam3_image_model(enable_inst_interactivity=True)``
runs for the SAM 1 task, without the text encoder and the concept detector, which points and
boxes never reach.

Input contract (:data:`SAM3_CONTRACTS`), exactly what ``SAM3InteractiveImagePredictor`` does with
a uint8 RGB image, through the predictor's own ``SAM2Transforms`` object:

* the SAM family's intensity rule, as for SAM 2: the volume clipped to its 0.5-99.5 percentiles
  over all voxels, scaled with the clipped volume's range to the 256 levels of a uint8 image
  (rounded) and divided by 255 (``ToTensor``), three channels (a preset named by ``intensity``
  overrides the rule);
* ``Resize((1008, 1008))`` (aspect ratio not kept), ``Normalize`` with mean 0.5 / std 0.5;
* ``forward_image`` (the backbone's SAM 2 neck, ``conv_s0`` / ``conv_s1``),
  ``_prepare_backbone_features`` and ``no_mem_embed``: the embedding of a slice is the 72² image
  embedding and the 288² and 144² feature maps (:class:`~radioactive.models.sam2.SAM2Embedding`);
* points (x, y) through the predictor's ``transform_coords`` (``/ W``, ``/ H``, ``× 1008`` in
  float32); a box becomes two corner points labelled 2 and 3 placed before the clicks; the
  previous low-resolution logits (clamped to ±32 as the predictor returns them) are the mask
  prompt; a lone click takes the best of three candidates by predicted IoU (``multimask``);
* full-resolution logits: the predictor's ``postprocess_masks`` of the 288² logits (holes of up
  to 256 low-resolution pixels filled, as the predictor's default ``max_hole_area``, then a
  bilinear resize to the slice), not binarised.

sam3 0.1.4 precomputes positional encodings with ``device="cuda"`` when a model is built
(facebookresearch/sam3 issue #587); on another device the adapter builds the same modules with
those encodings computed on the CPU (:func:`cpu_position_encodings`). Building the tracker also
enters a process-wide bfloat16 autocast for CUDA; the adapter leaves it again, so that SAM 3 runs
at the engine's ``precision`` (``bf16`` is what upstream's notebooks use on a GPU) and no other
model in the process is affected.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, CheckpointError, ModelCard
from radioactive.models.contracts import AUTO, InputContract
from radioactive.models.intensity import check_intensity
from radioactive.models.sam import MULTIMASK
from radioactive.models.sam2 import LOW_RES_CLAMP, SAM2Backend, SAM2Embedding
from radioactive.models.sam_common import build_net, card_for, resolve_weights

__all__ = [
    "LOW_RES_CLAMP",
    "MAX_HOLE_AREA",
    "SAM3_CONTRACTS",
    "SAM3Backend",
    "SAM3Resize",
    "cpu_position_encodings",
    "tracker_state",
]

#: holes (background components of the low-resolution mask) up to this many pixels are filled,
#: the default of ``SAM3InteractiveImagePredictor``
MAX_HOLE_AREA = 256.0
#: serialises the substitution of the builder's positional encoding (see
#: :func:`cpu_position_encodings`)
_BUILD_LOCK = threading.Lock()

SAM3_CONTRACTS = (
    InputContract(
        name="sam3-reference-v1",
        modality="any",
        intensity="volume clipped to its 0.5-99.5 percentiles over all voxels, min-max scaled "
        "with the clipped volume's range to [0, 255] and rounded to uint8",
        preset="sam_reference",
        resampling="SAM3InteractiveImagePredictor's SAM2Transforms: ToTensor (/ 255), "
        "Resize((1008, 1008)) bilinear",
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels, mean 0.5 / std 0.5",
        source="MIC-DKFZ/radioactive src/radioa/model/SAM2.py (intensity); "
        "facebookresearch/sam3 sam3/model/sam1_task_predictor.py, "
        "sam3/model/utils/sam1_utils.py",
    ),
)


@dataclass(frozen=True)
class SAM3Resize:
    """Slice ↔ model frame through the predictor's own ``SAM2Transforms`` (``sam3``): square
    resize to ``size``, coordinates (x, y) scaled by ``size / W`` and ``size / H`` in float32,
    logits back with ``postprocess_masks`` (hole filling, bilinear resize).

    Attributes:
        transforms: the ``SAM2Transforms`` of a ``SAM3InteractiveImagePredictor``.
    """

    transforms: Any

    @property
    def size(self) -> int:
        return int(self.transforms.resolution)

    def resized_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return self.size, self.size

    def points(self, yx: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """(N, 2) slice pixel (y, x) → (N, 2) model (x, y), as ``transform_coords``."""
        import torch

        pts = np.asarray(yx, dtype=float).reshape(-1, 2)[:, ::-1]
        xy = torch.as_tensor(np.ascontiguousarray(pts), dtype=torch.float32)
        out = self.transforms.transform_coords(xy, normalize=True, orig_hw=tuple(shape))
        return np.asarray(out.numpy(), dtype=np.float64)

    def box(
        self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> npt.NDArray[np.float64]:
        """Half-open slice box (y0, x0, y1, x1) → model box (x0, y0, x1, y1) of its extreme
        pixels."""
        y0, x0, y1, x1 = box_yx
        return self.points([[y0, x0], [y1 - 1, x1 - 1]], shape).reshape(4)

    def image(self, slices: Any) -> Any:
        """(B, 3, H, W) in [0, 1] → (B, 3, size, size): the predictor's resize and
        normalisation (``transforms.transforms``)."""
        return self.transforms.transforms(slices)

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """Low-resolution logits (..., L, L) → logits on the slice (H, W), as the predictor's
        ``postprocess_masks``."""
        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        out = self.transforms.postprocess_masks(x, tuple(shape))
        return np.asarray(out[0, 0].detach().cpu().numpy(), dtype=np.float32)


@contextlib.contextmanager
def cpu_position_encodings() -> Iterator[None]:
    """While open, ``sam3.model_builder`` builds its sine positional encodings with their
    precomputed cache made on the CPU instead of on ``"cuda"`` (the same values, for a model
    that runs on another device than CUDA). The builder's name is substituted under a lock and
    restored on exit."""
    import torch
    from sam3 import model_builder
    from sam3.model.position_encoding import PositionEmbeddingSine

    class CPUPositionEmbeddingSine(PositionEmbeddingSine):
        def __init__(self, *args: Any, precompute_resolution: int | None = None, **kw: Any):
            super().__init__(*args, precompute_resolution=None, **kw)
            if precompute_resolution is not None:
                for stride in (4, 8, 16, 32):
                    side = precompute_resolution // stride
                    self.forward(torch.zeros((1, 1, side, side)))
                    self.cache[(side, side)] = self.cache[(side, side)].clone().detach()

    with _BUILD_LOCK:
        original = model_builder.PositionEmbeddingSine
        model_builder.PositionEmbeddingSine = CPUPositionEmbeddingSine
        try:
            yield
        finally:
            model_builder.PositionEmbeddingSine = original


def tracker_state(checkpoint_state: dict[str, Any]) -> dict[str, Any]:
    """The state dict of the tracker with its vision backbone, from a checkpoint.

    ``sam3.pt`` holds the detector (``detector.*``, its vision backbone under
    ``detector.backbone.vision_backbone.``) and the tracker (``tracker.*``, no backbone of its
    own); the tracker takes the detector's vision backbone as its ``backbone``. A state dict
    already in the tracker's layout is returned as it is."""
    if not any(k.startswith(("detector.", "tracker.")) for k in checkpoint_state):
        return dict(checkpoint_state)
    backbone = "detector.backbone.vision_backbone."
    out = {
        "backbone.vision_backbone." + k[len(backbone) :]: v
        for k, v in checkpoint_state.items()
        if k.startswith(backbone)
    }
    out.update(
        {k[len("tracker.") :]: v for k, v in checkpoint_state.items() if k.startswith("tracker.")}
    )
    return out


class SAM3Backend(SAM2Backend):
    """SAM 3, interactive image predictor (points, boxes, mask prompts).

    It shares SAM 2's decoding (:class:`~radioactive.models.sam2.SAM2Backend`: one decoder call
    for a batch of slices, the box as two corner points, mask feedback) and states its own
    network, transforms and weights (see the module docstring).

    Args:
        checkpoint: a checkpoint file to use instead of the registry's ``sam3.pt`` (the official
            file, or a state dict of the tracker with its vision backbone).
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract) or an intensity preset (see
            :mod:`radioactive.models.intensity`).
        multimask: ``"auto"`` (three candidates for a lone point, the best by predicted IoU),
            ``"always"`` or ``"never"``.
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
    """

    card = ModelCard(
        name="sam3",
        version="1",
        checkpoint="sam3.pt",
        checkpoint_sha256=None,
        licence="SAM License",
        training_data="SA-Co: images and videos annotated by SAM 3's data engine (over 4 million "
        "unique concepts), with SAM 2's data for the tracker; the share of medical images is "
        "not published in detail",
        reference="Carion et al., SAM 3: Segment Anything with Concepts, Meta AI (2025), "
        "https://ai.meta.com/research/publications/sam-3-segment-anything-with-concepts/",
    )
    contracts = SAM3_CONTRACTS
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )
    checkpoint_name = "sam3"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "auto",
        weights: str = "pretrained",
    ):
        from radioactive.models._torch import pick_device, quiet_imports

        if multimask not in MULTIMASK:
            raise ValueError(f"multimask must be one of {', '.join(MULTIMASK)}, got {multimask!r}")
        check_intensity(intensity)
        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(type(self).card, self.checkpoint_name, "sam3.pt", path is None)
        target = pick_device(device)
        with quiet_imports():
            from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor

            net = build_net(lambda checkpoint=None: self.build_sam3(target))
            #: the upstream predictor around the same network (its transforms are used)
            self.predictor = SAM3InteractiveImagePredictor(net, max_hole_area=MAX_HOLE_AREA)
        # SamFamilyBackend's constructor (SAM 2's builds a SAM 2 network)
        super(SAM2Backend, self).__init__(
            net, SAM3Resize(self.predictor._transforms), weights_path=None, device=str(target),
            intensity=intensity, multimask=multimask,
        )  # fmt: skip
        if path is not None:
            self._load(path)
        self.weights_path = path
        #: (h, w) of the three backbone levels, as the predictor's ``_bb_feat_sizes``
        self.feat_sizes = [(int(h), int(w)) for h, w in self.predictor._bb_feat_sizes]

    def build_sam3(self, device: Any) -> Any:
        """Upstream's tracker with SAM 3's vision backbone (``build_tracker(...,
        with_backbone=True)``), in eval mode, with the process-wide autocast it enters left."""
        from sam3.model_builder import build_tracker

        own = device.type == "cuda"
        with contextlib.nullcontext() if own else cpu_position_encodings():
            net = build_tracker(apply_temporal_disambiguation=False, with_backbone=True)
        context = getattr(net, "bf16_context", None)
        if context is not None:
            context.__exit__(None, None, None)
        return net.eval()

    def _load(self, path: Path) -> None:
        """Load ``path`` (strictly, once mapped by :func:`tracker_state`)."""
        from radioactive.models.checkpoints import load_checkpoint_state

        state = tracker_state(load_checkpoint_state(path, self.device, self.checkpoint_name))
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"not a SAM 3 checkpoint: its weights do not fit SAM 3's tracker and vision "
                f"backbone ({str(exc).splitlines()[0]})",
                path=path,
                fix="pass sam3.pt from https://huggingface.co/facebook/sam3 (or a state dict of "
                "the tracker with its backbone), or leave `checkpoint` out",
            ) from exc

    # -- input contract --------------------------------------------------------------------------

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) in [0, 1] → (B, 3, 1008, 1008): three channels through the
        predictor's resize and normalisation (mean 0.5, std 0.5)."""
        return self.resize.image(x[:, None].expand(-1, 3, -1, -1))

    # -- the SliceBackend protocol ---------------------------------------------------------------

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        """What ``set_image`` stores as the predictor's features, one set per slice."""
        torch = self._torch
        net = self.net
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32)).to(self.device)
            backbone_out = net.forward_image(self.encoder_input(x))
            _, vision_feats, _, _ = net._prepare_backbone_features(backbone_out)
            vision_feats[-1] = vision_feats[-1] + net.no_mem_embed
            b = x.shape[0]
            feats = [
                f.permute(1, 2, 0).reshape(b, -1, *size)
                for f, size in zip(vision_feats, self.feat_sizes, strict=True)
            ]
            return [
                SAM2Embedding(feats[-1][i].clone(), tuple(f[i].clone() for f in feats[:-1]))
                for i in range(b)
            ]
