"""SAM (ViT-B/L/H) and MedSAM, and the code every ``segment_anything``-style model shares.

Code from the ``segment-anything`` package (``import segment_anything``); weights from the registry
of :mod:`radioactive.models.checkpoints` (``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``,
``medsam``).

:class:`SamFamilyBackend` is a :class:`~radioactive.models.slicewise.SliceBackend` for any
``Sam`` module (``image_encoder``, ``prompt_encoder``, ``mask_decoder``, ``pixel_mean`` /
``pixel_std``): it normalises the volume, encodes batches of slices, decodes one slice's points /
box / mask prompt and maps the low-resolution logits back onto the slice. The models differ only
in their input contract (PROTOCOL §8), which a subclass states:

* **SAM** (and MobileSAM), the RadioActive reference's preprocessing (:data:`SAM_CONTRACTS`):
  the volume clipped to its 0.5–99.5 percentiles over all voxels and scaled with the clipped
  volume's range to [0, 255] (rounded uint8 levels), each slice as an RGB image through the
  predictor's own ``ResizeLongestSide.apply_image`` and ``Sam.preprocess`` (pixel mean / std,
  zero padding to 1024²).
* **MedSAM**, its authors' ``pre_CT_MR.py`` and ``MedSAM_Inference.py``
  (:data:`MEDSAM_CONTRACTS`): CT windowed at level 40 / width 400, MR clipped to the
  0.5–99.5 percentiles of its positive voxels, both truncated to uint8; each slice resized to a
  1024 × 1024 square with ``skimage.transform.resize`` (order 3, anti-aliased), cast to uint8,
  min-max scaled to [0, 1], no pixel mean / std; the sigmoid of the low-resolution logits is
  resized straight to the slice; box prompts only.

``intensity="auto"`` (the default) selects the contract for the volume's modality; any preset
of :mod:`radioactive.models.intensity` (e.g. the earlier ``"percentile"``) overrides its
intensity rule and is recorded as such.

``weights="random"`` builds a model with random (seeded, reproducible) weights and no checkpoint:
for tests and timing benchmarks only, never for results; the card then names no checkpoint.

The slice resize mappings and the weight helpers are in :mod:`radioactive.models.sam_common`
(re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard, UnsupportedPrompt
from radioactive.models.checkpoints import CHECKPOINTS
from radioactive.models.contracts import AUTO, InputContract, resolved
from radioactive.models.intensity import check_intensity, normalize
from radioactive.models.sam_common import (  # noqa: F401  (re-exported)
    RANDOM_WEIGHTS_SEED,
    WEIGHTS,
    SliceResize,
    SquareResize,
    build_net,
    card_for,
    resolve_weights,
)
from radioactive.models.slicewise import SlicePrompts
from radioactive.models.transforms import LongestSideResize

MULTIMASK = ("auto", "always", "never")
SAM_VARIANTS = ("vit_b", "vit_l", "vit_h")
#: checkpoint file of each SAM variant (the registry entry ``sam_<variant>`` is authoritative)
SAM_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
MEDSAM_FILE = "medsam_vit_b.pth"

SAM_CONTRACTS = (
    InputContract(
        name="sam-reference-v1",
        modality="any",
        intensity="volume clipped to its 0.5-99.5 percentiles over all voxels, min-max scaled "
        "with the clipped volume's range to [0, 255] and rounded to uint8",
        preset="sam_reference",
        resampling="ResizeLongestSide(1024) of the uint8 RGB slice (SamPredictor.set_image)",
        crop="the whole axial slice; zero padding to 1024 x 1024 after pixel mean / std",
        channels="3 identical channels, (x - pixel_mean) / pixel_std (Sam.preprocess)",
        source="MIC-DKFZ/radioactive src/radioa/model/SAM.py (set_image, preprocess_img); "
        "facebookresearch/segment-anything segment_anything/predictor.py, utils/transforms.py",
    ),
)
_MEDSAM_SLICE = (
    "per slice: skimage.transform.resize to 1024 x 1024 (order 3, anti-aliased, "
    "preserve_range), cast to uint8, min-max scaled to [0, 1]"
)
MEDSAM_CONTRACTS = (
    InputContract(
        name="medsam-ct-v1",
        modality="CT",
        intensity="window level 40 / width 400 HU ([-160, 240]), min-max of the windowed volume "
        "to [0, 255], truncated to uint8",
        preset="medsam_ct",
        resampling=_MEDSAM_SLICE,
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels in [0, 1]; no pixel mean / std",
        source="bowang-lab/MedSAM pre_CT_MR.py (CT branch); MedSAM_Inference.py",
    ),
    InputContract(
        name="medsam-mr-v1",
        modality="MR",
        intensity="clipped to the 0.5-99.5 percentiles of the positive voxels (> 0), min-max of "
        "the clipped volume to [0, 255], voxels that were 0 stay 0, truncated to uint8",
        preset="medsam_mr",
        resampling=_MEDSAM_SLICE,
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels in [0, 1]; no pixel mean / std",
        source="bowang-lab/MedSAM pre_CT_MR.py (MR branch); MedSAM_Inference.py",
    ),
)


class SamFamilyBackend:
    """A :class:`~radioactive.models.slicewise.SliceBackend` for a ``segment_anything``-style
    ``Sam`` module, with SAM's input contract (override :meth:`normalize_volume` and
    :meth:`encoder_input` for another one).

    Subclasses set ``card``, ``capabilities`` and ``checkpoint_name``, build the network and call
    ``super().__init__``.

    Args:
        net: the ``Sam`` module (weights not yet loaded).
        resize: slice ↔ model-frame mapping.
        weights_path: state dict to load strictly (``None``: keep the weights ``net`` has).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the authors' contract for the volume's modality) or an
            intensity preset (see :mod:`radioactive.models.intensity`).
        multimask: ``"auto"`` (three candidates for a lone point, the best by predicted IoU, as
            SAM recommends), ``"always"`` or ``"never"``.
    """

    card: ModelCard
    capabilities: Capabilities
    #: the registry entry of :mod:`radioactive.models.checkpoints` this model loads
    checkpoint_name: str
    #: the authors' input contracts, per modality (see :mod:`radioactive.models.contracts`)
    contracts: ClassVar[tuple[InputContract, ...]] = SAM_CONTRACTS

    def __init__(
        self,
        net: Any,
        resize: SliceResize,
        *,
        weights_path: Path | None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "auto",
    ):
        import torch

        from radioactive.models._torch import pick_device
        from radioactive.models.checkpoints import load_checkpoint_state

        if multimask not in MULTIMASK:
            raise ValueError(f"multimask must be one of {', '.join(MULTIMASK)}, got {multimask!r}")
        check_intensity(intensity)
        self.device = pick_device(device)
        #: the weights file loaded (``None``: the net's own, seeded random weights)
        self.weights_path = weights_path
        if weights_path is not None:
            state = load_checkpoint_state(
                weights_path, self.device, getattr(self, "checkpoint_name", None)
            )
            net.load_state_dict(state, strict=True)
        self.net = net.to(self.device).eval()
        self.resize = resize
        self.intensity = intensity
        self.multimask = multimask
        self.contract_used: dict[str, Any] | None = None
        self._torch = torch

    # -- input contract --------------------------------------------------------------------------

    def preset_for(self, modality: str | None) -> str:
        """The intensity preset for a volume of ``modality``: the authors' contract
        (``intensity="auto"``) or the preset the user named; recorded in ``contract_used``."""
        self.contract_used = resolved(self.card.name, self.contracts, modality, self.intensity)
        return str(self.contract_used["intensity"])

    def normalize_volume(
        self, image: npt.NDArray, modality: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The volume on the 256 integer levels of [0, 255] (the contract's intensity rule)."""
        preset = self.preset_for(modality)
        return np.rint(normalize(image, preset, out_max=255.0)).astype(np.float32)

    def resize_transform(self) -> Any:
        """The predictor's own ``ResizeLongestSide`` (``segment_anything``)."""
        from segment_anything.utils.transforms import ResizeLongestSide

        return ResizeLongestSide(int(self.resize.size))

    def encoder_input(self, x: Any) -> Any:
        """Normalised slices (B, H, W) on the device → the image encoder's (B, 3, S, S) input,
        exactly as ``SamPredictor.set_image`` makes it: each slice as a uint8 RGB image resized
        by the predictor's ``ResizeLongestSide.apply_image``, then ``Sam.preprocess`` (pixel
        mean / std, zero padding)."""
        torch = self._torch
        transform = self.resize_transform()
        levels = np.clip(np.rint(x.detach().cpu().numpy()), 0, 255).astype(np.uint8)
        images = [transform.apply_image(np.repeat(s[..., None], 3, axis=-1)) for s in levels]
        t = torch.as_tensor(np.stack(images), device=self.device)
        t = t.permute(0, 3, 1, 2).contiguous().float()
        return self.net.preprocess(t)

    def full_logits(self, low: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """The chosen low-resolution logits on the slice (``Sam.postprocess_masks``)."""
        return self.resize.logits_to_slice(low, shape)

    # -- the SliceBackend protocol ---------------------------------------------------------------

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32)).to(self.device)
            emb = self.net.image_encoder(self.encoder_input(x))
            # one tensor per slice owning its memory, so the cache's byte budget is exact
            return [e.clone() for e in emb]

    def embedding_nbytes(self, embedding: Any) -> int:
        from radioactive.models._torch import tensor_nbytes

        return tensor_nbytes(embedding)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        torch = self._torch
        dev = self.device
        types = self.capabilities.prompt_types
        if len(prompts.points) and "point" not in types:
            raise UnsupportedPrompt(f"model {self.card.name!r} does not accept point prompts")
        if prompts.box is None and "point" not in types:
            raise ValueError(f"model {self.card.name!r} needs a box on every prompted slice")
        points = boxes = masks = None
        if len(prompts.points):
            xy = torch.as_tensor(self.resize.points(prompts.points, shape), dtype=torch.float32)
            lab = torch.as_tensor(prompts.labels, dtype=torch.int64)
            points = (xy[None].to(dev), lab[None].to(dev))
        if prompts.box is not None:
            boxes = torch.as_tensor(self.resize.box(prompts.box, shape), dtype=torch.float32)
            boxes = boxes[None].to(dev)
        if prompts.mask_logits is not None and self.capabilities.accepts_mask:
            low_shape = prompts.mask_logits.shape[-2:]
            masks = prompts.mask_logits.reshape(1, 1, *low_shape).to(dev, torch.float32)
        lone_point = len(prompts.points) == 1 and boxes is None and masks is None
        multi = self.multimask == "always" or (self.multimask == "auto" and lone_point)
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(points=points, boxes=boxes, masks=masks)
            low, iou = self.net.mask_decoder(
                image_embeddings=embedding[None],
                image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multi,
            )
            best = int(torch.argmax(iou[0])) if multi else 0
            chosen = low[0, best]
            full = self.full_logits(chosen, shape)
        return full, chosen.detach().clone()


class SAMBackend(SamFamilyBackend):
    """Segment Anything (points, boxes, mask prompts).

    Args:
        variant: ``"vit_h"`` (the paper's model, default), ``"vit_l"`` or ``"vit_b"``.
        checkpoint: a checkpoint file to use instead of the registry's ``sam_<variant>``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the authors' contract for the volume's modality) or an
            intensity preset (see :mod:`radioactive.models.intensity`).
        multimask: ``"auto"``, ``"always"`` or ``"never"`` (see :class:`SamFamilyBackend`).
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
    """

    card = ModelCard(
        name="sam",
        version="2",
        checkpoint=SAM_FILES["vit_h"],
        checkpoint_sha256=CHECKPOINTS["sam_vit_h"].sha256 if "sam_vit_h" in CHECKPOINTS else None,
        licence="Apache-2.0",
        training_data="SA-1B: 11M natural images with 1.1B automatically generated masks",
        reference="Kirillov et al., Segment Anything, ICCV 2023",
    )
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )
    checkpoint_name = "sam_vit_h"

    def __init__(
        self,
        variant: str = "vit_h",
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "auto",
        weights: str = "pretrained",
    ):
        from radioactive.models._torch import quiet_imports

        if variant not in SAM_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(SAM_VARIANTS)}, got {variant!r}")
        self.variant = variant
        self.checkpoint_name = f"sam_{variant}"
        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(
            type(self).card, self.checkpoint_name, SAM_FILES[variant], path is None
        )
        with quiet_imports():
            from segment_anything import sam_model_registry
        net = build_net(sam_model_registry[variant])
        super().__init__(
            net, LongestSideResize(int(net.image_encoder.img_size)), weights_path=path,
            device=device, intensity=intensity, multimask=multimask,
        )  # fmt: skip


class MedSAMBackend(SamFamilyBackend):
    """MedSAM: SAM ViT-B fine-tuned on medical images (box prompts only).

    Args:
        checkpoint: a checkpoint file to use instead of the registry's ``medsam``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (MedSAM's contract: CT window 40 / 400, MR percentiles of the
            positive voxels, both as :func:`~radioactive.models.intensity.pre_ct_mr`) or a
            preset; ``"percentile"`` clips each slice to its own 0.5–99.5 percentiles (the
            earlier default), a CT window clips every slice alike.
        weights: ``"pretrained"`` or ``"random"`` (as :class:`SAMBackend`).
    """

    card = ModelCard(
        name="medsam",
        version="2",
        checkpoint=MEDSAM_FILE,
        checkpoint_sha256=CHECKPOINTS["medsam"].sha256 if "medsam" in CHECKPOINTS else None,
        licence="Apache-2.0",
        training_data="1,570,263 medical image-mask pairs over 10 imaging modalities and 30+ "
        "cancer types (CT, MR, X-ray, ultrasound, endoscopy, …), fine-tuned from SAM ViT-B",
        reference="Ma et al., Segment anything in medical images, Nat. Commun. 15:654 (2024)",
    )
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}), accepts_mask=False)
    checkpoint_name = "medsam"
    contracts = MEDSAM_CONTRACTS

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        weights: str = "pretrained",
    ):
        from radioactive.models._torch import quiet_imports

        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(type(self).card, self.checkpoint_name, MEDSAM_FILE, path is None)
        with quiet_imports():
            from segment_anything import sam_model_registry
        net = build_net(sam_model_registry["vit_b"])
        super().__init__(
            net, SquareResize(int(net.image_encoder.img_size)), weights_path=path,
            device=device, intensity=intensity, multimask="never",
        )  # fmt: skip

    def normalize_volume(
        self, image: npt.NDArray, modality: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The volume on the 256 uint8 levels of [0, 255]: the contract's rule for the modality
        (window 40 / 400 for CT, percentiles of the positive voxels for MR, exactly as
        ``pre_CT_MR.py``: :func:`~radioactive.models.intensity.pre_ct_mr`); the named preset
        ``"percentile"`` clips each slice to its own 0.5-99.5 percentiles (the earlier default)."""
        preset = self.preset_for(modality)
        arr = np.asarray(image)
        if preset == "percentile":
            out = np.empty(arr.shape, dtype=np.float32)
            for z in range(arr.shape[0]):
                out[z] = normalize(arr[z : z + 1], preset, out_max=255.0)[0]
        else:
            out = normalize(arr, preset, out_max=255.0)
        return np.rint(out).astype(np.float32)

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) on the 256 levels → (B, 3, 1024, 1024), as ``MedSAM_Inference.py``:
        ``skimage.transform.resize`` to the square (order 3, anti-aliased, range preserved),
        cast to uint8, min-max to [0, 1] per slice; no pixel mean / std, no padding."""
        from skimage import transform

        torch = self._torch
        size = int(self.resize.size)
        out = []
        for s in np.clip(np.rint(x.detach().cpu().numpy()), 0, 255).astype(np.uint8):
            r = transform.resize(
                s, (size, size), order=3, preserve_range=True, anti_aliasing=True
            ).astype(np.uint8)
            lo, hi = float(r.min()), float(r.max())
            out.append((r - lo) / max(hi - lo, 1e-8))
        t = torch.as_tensor(np.stack(out), dtype=torch.float32, device=self.device)
        return t[:, None].expand(-1, 3, -1, -1).contiguous()

    def full_logits(self, low: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """As ``medsam_inference``: the sigmoid of the low-resolution logits resized bilinearly
        straight to the slice; returned as logits, so ``> 0`` is MedSAM's ``> 0.5``."""
        torch = self._torch
        import torch.nn.functional as F

        p = torch.sigmoid(low.reshape(1, 1, *low.shape[-2:]).float())
        p = F.interpolate(p, size=shape, mode="bilinear", align_corners=False)[0, 0]
        p = p.clamp(1e-7, 1 - 1e-7)
        return np.asarray(torch.logit(p).cpu().numpy(), dtype=np.float32)
