"""SAM-Med2D: SAM ViT-B with adapter layers, fine-tuned on SA-Med2D-20M (points, boxes, masks).

Code from the PyPI source release ``isat-sam-backend`` 1.0.2, which ships SAM-Med2D's model code
as ``ISAT_SAM_BACKEND.segment_any.segment_anything_med2d``; its predictor needs
``albumentations``. Install both with
``pip install --no-deps isat-sam-backend==1.0.2 albumentations`` (``--no-deps``: the release
declares the dependencies of its web server, which the model code does not use). Weights: the
authors' ``sam-med2d_b.pth``, published without a direct link: put it in ``<cache>/models/`` or
pass ``checkpoint=``.

Input contract (:data:`SAMMED2D_CONTRACTS`): intensities per axial slice, as the RadioActive
reference's SAM-Med2D adapter scales them: each slice clipped to its own 0.5–99.5 percentiles
over all its voxels, min-max scaled with that slice's clipped range to [0, 255], rounded to the
uint8 levels (the ``sam_reference`` rule applied to one slice at a time; a constant slice becomes
0), each slice as a uint8 RGB image fed exactly as SAM-Med2D's own ``SammedPredictor`` feeds it:

* ``set_image``: ``(image - pixel_mean) / pixel_std`` with the network's fixed ImageNet mean and
  std on the 0–255 scale (not per image), then the predictor's own albumentations transform, a
  nearest-neighbour resize to 256 × 256 (the aspect ratio is not kept, nothing is padded);
* the network from ``build_sam_vit_b``: ViT-B at 256², ``encoder_adapter=True``;
* prompts through the predictor's ``apply_coords`` / ``apply_boxes`` (x scaled by 256 / W, y by
  256 / H); boxes as their extreme pixels (x0, y0, x1 - 1, y1 - 1), as SAM's;
* the previous step's 64 × 64 low-resolution logits go back as the mask prompt;
* ``multimask="always"`` (the default): three candidates, the best by predicted IoU, as
  ``SammedPredictor.predict``'s default and SAM-Med2D's ``test.py`` (``--multimask True``) do;
* the chosen low-resolution logits back onto the slice by the predictor's
  ``postprocess_masks`` (bilinear to 256², then to the slice); foreground where the logits are
  > 0 (the predictor's sigmoid > 0.5).

The reference takes each slice's percentiles over its positive voxels only; this adapter
deliberately takes them over all the slice's voxels, since positive-only percentiles are wrong
for CT, where most tissue is below 0 HU. ``intensity=`` names any preset of
:mod:`radioactive.models.intensity` instead, applied as for the other SAM-family models (e.g.
``"sam_reference"``: the volume rule, one scale for the whole volume).

``weights="random"`` builds the network with seeded random weights (tests and timing only).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, CheckpointError, ModelCard
from radioactive.models.contracts import AUTO, InputContract
from radioactive.models.intensity import check_intensity, normalize
from radioactive.models.sam import MULTIMASK, SamFamilyBackend
from radioactive.models.sam_common import build_net, card_for, resolve_weights

log = logging.getLogger(__name__)

#: where ``isat-sam-backend`` keeps SAM-Med2D's model code
UPSTREAM = "ISAT_SAM_BACKEND.segment_any.segment_anything_med2d"
SAMMED2D_FILE = "sam-med2d_b.pth"
INSTALL = "pip install --no-deps isat-sam-backend==1.0.2 albumentations"

SAMMED2D_CONTRACTS = (
    InputContract(
        name="sammed2d-reference-v1",
        modality="any",
        intensity="each axial slice clipped to its own 0.5-99.5 percentiles over all its voxels, "
        "min-max scaled with that slice's clipped range to [0, 255] and rounded to uint8 (a "
        "constant slice becomes 0); the RadioActive reference's per-slice rule, except that the "
        "reference takes the percentiles over positive voxels only (wrong for CT)",
        preset="sam_reference",
        resampling="SammedPredictor.set_image of the uint8 RGB slice: albumentations Resize to "
        "256 x 256 (cv2.INTER_NEAREST), aspect ratio not kept",
        crop="the whole axial slice; no padding; points and boxes scaled by 256 / W and 256 / H",
        channels="3 identical channels, (x - pixel_mean) / pixel_std with the fixed ImageNet "
        "mean / std on 0-255 (not per image), float32",
        source="OpenGVLab/SAM-Med2D segment_anything/predictor_sammed.py, build_sam.py, "
        "test.py (as shipped in isat-sam-backend 1.0.2)",
    ),
)


def _import(module: str) -> Any:
    """``UPSTREAM.module``, or a clear error naming the install command."""
    import importlib

    # albumentations asks PyPI for a newer version on import unless told not to
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        return importlib.import_module(f"{UPSTREAM}.{module}")
    except ImportError as exc:
        raise CheckpointError(
            f"SAM-Med2D's code is not installed ({exc})",
            fix=f"`{INSTALL}` (SAM-Med2D's model code ships in that source release)",
        ) from exc


class Med2DFrame:
    """The slice ↔ SAM-Med2D frame mapping, by ``SammedPredictor``'s own methods: the square
    resize to ``size × size`` (nearest, no padding), coordinates scaled per axis to (x, y), and
    ``postprocess_masks`` back to the slice.

    Args:
        predictor: a ``SammedPredictor`` around the network.
        size: the network's input side (256).
    """

    def __init__(self, predictor: Any, size: int):
        self.predictor = predictor
        self._size = int(size)
        self._transform = predictor.transforms((self._size, self._size))

    @property
    def size(self) -> int:
        return self._size

    def resized_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of any slice after resizing: the square."""
        return self._size, self._size

    def points(self, yx: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """(N, 2) slice pixel (y, x) → (N, 2) model (x, y) (``apply_coords``)."""
        xy = np.asarray(yx).reshape(-1, 2)[:, ::-1]
        square = (self._size, self._size)
        return np.asarray(self.predictor.apply_coords(xy, tuple(shape), square), np.float64)

    def box(
        self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> npt.NDArray[np.float64]:
        """Half-open slice box (y0, x0, y1, x1) → model box (x0, y0, x1, y1) of its extreme
        pixels (``apply_boxes``)."""
        y0, x0, y1, x1 = box_yx
        corners = np.array([x0, y0, x1 - 1, y1 - 1])
        square = (self._size, self._size)
        out = self.predictor.apply_boxes(corners, tuple(shape), square)
        return np.asarray(out, np.float64).reshape(4)

    def resize_hwc(self, image: npt.NDArray) -> Any:
        """One (H, W, C) image → the (C, size, size) tensor of the predictor's transform."""
        return self._transform(image=image)["image"]

    def image(self, slices: Any) -> Any:
        """A torch batch (B, C, H, W) resized by the predictor's transform to (B, C, S, S)."""
        import torch

        arrays = slices.detach().permute(0, 2, 3, 1).cpu().numpy()
        out = torch.stack([self.resize_hwc(np.ascontiguousarray(a)) for a in arrays])
        return out.to(slices.device)

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """Low-resolution logits (..., L, L) → logits on the slice (H, W), float32 numpy
        (``postprocess_masks``)."""
        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        full = self.predictor.postprocess_masks(x, self._size, tuple(shape))
        return np.asarray(full[0, 0].detach().cpu().numpy(), dtype=np.float32)


class _Dropped:
    """What the loader makes of the optimizer object saved next to the weights: nothing."""

    def __setstate__(self, state: Any) -> None:
        pass


def _dropped_dict(*args: Any) -> dict[Any, Any]:
    """The optimizer's per-parameter state (a ``defaultdict``), as a plain dict to be dropped."""
    return {}


def load_weights(net: Any, path: Path) -> None:
    """Load SAM-Med2D's checkpoint into ``net``.

    The authors' training script saves ``{"model": state_dict, "optimizer": optimizer}``, the
    ``Adam`` optimizer as a pickled object. The file is read with torch's weights-only
    unpickler, which is told to build that object (and its ``defaultdict`` of moment tensors)
    as inert placeholders, so no class of the file is executed; only ``"model"`` is used. Keys
    are matched as the authors' loader does (not strictly), but a weight of the network missing
    from the file is an error.
    """
    import torch

    from radioactive.models.checkpoints import load_checkpoint_state

    placeholders: list[Any] = [
        (_Dropped, "torch.optim.adam.Adam"),
        (_dropped_dict, "collections.defaultdict"),
        dict,
    ]
    with torch.serialization.safe_globals(placeholders):
        state = load_checkpoint_state(path, "cpu", "sammed2d")
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(
            f"not a SAM-Med2D ViT-B checkpoint ({exc})".splitlines()[0],
            path=path,
            fix=f"pass SAM-Med2D's {SAMMED2D_FILE} (ViT-B with adapters, 256 x 256 input)",
        ) from exc
    if missing:
        raise CheckpointError(
            f"the checkpoint lacks {len(missing)} weights of SAM-Med2D's network "
            f"(e.g. {', '.join(missing[:3])})",
            path=path,
            fix=f"pass SAM-Med2D's {SAMMED2D_FILE} (ViT-B with adapters, 256 x 256 input)",
        )
    if unexpected:
        log.warning("%s: %d entries not used by SAM-Med2D's network (e.g. %s)",
                    path, len(unexpected), ", ".join(unexpected[:3]))  # fmt: skip


class SAMMed2DBackend(SamFamilyBackend):
    """A :class:`~radioactive.models.slicewise.SliceBackend` for SAM-Med2D.

    Args:
        checkpoint: SAM-Med2D's ``sam-med2d_b.pth`` (default: ``<cache>/models/``).
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract's per-slice rule) or an intensity preset (see
            :mod:`radioactive.models.intensity`), applied to the whole volume as for the other
            SAM-family models.
        multimask: ``"always"`` (the authors' default: three candidates, the best by predicted
            IoU), ``"auto"`` (three for a lone point only, as SAM recommends) or ``"never"``.
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
    """

    card = ModelCard(
        name="sammed2d",
        version="2",
        checkpoint=SAMMED2D_FILE,
        checkpoint_sha256=None,
        licence="Apache-2.0 (SAM-Med2D repository)",
        training_data="SA-Med2D-20M: 4.6M 2D medical images with 19.7M masks from public "
        "datasets (10 modalities, CT and MR slices among them), fine-tuned from SAM ViT-B with "
        "adapter layers in the image encoder",
        reference="Cheng et al., SAM-Med2D, arXiv:2308.16184 (2023)",
    )
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )
    checkpoint_name = "sammed2d"
    contracts: ClassVar[tuple[InputContract, ...]] = SAMMED2D_CONTRACTS

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "always",
        weights: str = "pretrained",
    ):
        from radioactive.models._torch import quiet_imports

        if multimask not in MULTIMASK:
            raise ValueError(f"multimask must be one of {', '.join(MULTIMASK)}, got {multimask!r}")
        check_intensity(intensity)
        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(type(self).card, self.checkpoint_name, SAMMED2D_FILE, path is None)
        with quiet_imports():
            build = _import("build_sam")
            predictor_module = _import("predictor_sammed")
        net = build_net(build.build_sam_vit_b)
        if path is not None:
            load_weights(net, path)
        #: SAM-Med2D's own predictor around the network (its transforms map slices and prompts)
        self.predictor = predictor_module.SammedPredictor(net)
        self.frame = Med2DFrame(self.predictor, int(net.image_encoder.img_size))
        super().__init__(
            net, self.frame, weights_path=None, device=device, intensity=intensity,
            multimask=multimask,
        )  # fmt: skip
        self.weights_path = path

    def normalize_volume(
        self, image: npt.NDArray, modality: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The volume on the 256 uint8 levels of [0, 255]. The contract (``intensity="auto"``):
        each axial slice by the ``sam_reference`` rule on its own (its own 0.5-99.5 percentiles
        over all its voxels and its own clipped range); a preset the user named: that preset on
        the whole volume, as for the other SAM-family models."""
        if self.intensity != AUTO:
            return super().normalize_volume(image, modality)
        preset = self.preset_for(modality)
        arr = np.asarray(image)
        out = np.empty(arr.shape, dtype=np.float32)
        for z in range(arr.shape[0]):
            out[z] = normalize(arr[z : z + 1], preset, out_max=255.0)[0]
        return np.rint(out).astype(np.float32)

    def encoder_input(self, x: Any) -> Any:
        """Normalised slices (B, H, W) on the device → the image encoder's (B, 3, 256, 256)
        input, as ``SammedPredictor.set_image`` makes it: the uint8 RGB slice minus the
        network's pixel mean, over its pixel std (numpy, float32), through the predictor's
        transform (nearest resize to 256², HWC → CHW)."""
        torch = self._torch
        levels = np.clip(np.rint(x.detach().cpu().numpy()), 0, 255).astype(np.uint8)
        mean = self.net.pixel_mean.squeeze().cpu().numpy()
        std = self.net.pixel_std.squeeze().cpu().numpy()
        images = [self.frame.resize_hwc((np.repeat(s[..., None], 3, axis=-1) - mean) / std)
                  for s in levels]  # fmt: skip
        return torch.stack(images).contiguous().to(self.device)
