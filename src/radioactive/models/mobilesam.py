"""MobileSAM: SAM with a TinyViT image encoder (points, boxes, mask prompts).

Code from the ``mobilesam-mirror`` package (``import mobile_sam``); weights ``mobile_sam.pt``
from the registry of :mod:`radioactive.models.checkpoints` (``radioactive models fetch
mobilesam``). Input contract (PROTOCOL §8, SAM family): the volume clipped to its 0.5–99.5
percentiles, each slice scaled to [0, 255], three channels, longest side 1024 plus padding.
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


class MobileSAMBackend:
    """A :class:`~radioactive.models.slicewise.SliceBackend` for MobileSAM.

    Args:
        checkpoint: a checkpoint file to use instead of the registry's.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: intensity preset (see :mod:`radioactive.models.intensity`).
        multimask: ``"auto"`` (three candidates for a lone point, the best by predicted IoU, as
            SAM recommends), ``"always"`` or ``"never"``.
    """

    card: ClassVar[ModelCard] = ModelCard(
        name="mobilesam",
        version="1",
        checkpoint=CHECKPOINTS["mobilesam"].filename,
        checkpoint_sha256=CHECKPOINTS["mobilesam"].sha256,
        licence="Apache-2.0",
        training_data="SA-1B natural images (encoder distilled from SAM ViT-H)",
        reference="Zhang et al., Faster Segment Anything: Towards Lightweight SAM for Mobile "
        "Applications, arXiv:2306.14289 (2023)",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = "percentile",
        multimask: str = "auto",
    ):
        import torch

        from radioactive.models._torch import load_state_dict, pick_device, quiet_imports

        if multimask not in ("auto", "always", "never"):
            raise ValueError("multimask must be 'auto', 'always' or 'never'")
        path = require_checkpoint("mobilesam", cache, checkpoint)
        self.device = pick_device(device)
        with quiet_imports():
            from mobile_sam import sam_model_registry
        net = sam_model_registry["vit_t"](checkpoint=None)
        net.load_state_dict(load_state_dict(str(path), self.device), strict=True)
        self.net = net.to(self.device).eval()
        self.resize = LongestSideResize(int(self.net.image_encoder.img_size))
        self.intensity = intensity
        self.multimask = multimask
        self._torch = torch

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        return np.rint(normalize(image, self.intensity, out_max=255.0)).astype(np.float32)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices)).to(self.device)[:, None]
            x = self.resize.image(x).clamp(0, 255).expand(-1, 3, -1, -1)
            x = (x - self.net.pixel_mean) / self.net.pixel_std
            # padding must be 0 after normalisation, as in Sam.preprocess
            h, w = slices.shape[1:]
            nh, nw = self.resize.resized_shape((h, w))
            x[..., nh:, :] = 0
            x[..., :, nw:] = 0
            emb = self.net.image_encoder(x)
        return list(emb)

    def embedding_nbytes(self, embedding: Any) -> int:
        from radioactive.models._torch import tensor_nbytes

        return tensor_nbytes(embedding)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        torch = self._torch
        dev = self.device
        points = boxes = masks = None
        if len(prompts.points):
            xy = torch.as_tensor(self.resize.points(prompts.points, shape), dtype=torch.float32)
            lab = torch.as_tensor(prompts.labels, dtype=torch.int64)
            points = (xy[None].to(dev), lab[None].to(dev))
        if prompts.box is not None:
            boxes = torch.as_tensor(self.resize.box(prompts.box, shape), dtype=torch.float32)
            boxes = boxes[None].to(dev)
        if prompts.mask_logits is not None:
            masks = prompts.mask_logits.reshape(1, 1, *prompts.mask_logits.shape[-2:]).to(dev)
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
            full = self.resize.logits_to_slice(chosen, shape)
        return full, chosen.detach().clone()
