"""MobileSAM: SAM with a TinyViT image encoder (points, boxes, mask prompts).

Code from the ``mobilesam-mirror`` package (``import mobile_sam``); weights ``mobile_sam.pt``
from the registry of :mod:`radioactive.models.checkpoints` (``radioactive models fetch
mobilesam``). Input contract: the SAM family's (:data:`radioactive.models.sam.SAM_CONTRACTS`,
the RadioActive reference's volume percentiles), each slice through ``mobile_sam``'s own
``ResizeLongestSide`` and ``Sam.preprocess``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.checkpoints import CHECKPOINTS, require_checkpoint
from radioactive.models.contracts import AUTO
from radioactive.models.sam import SamFamilyBackend
from radioactive.models.transforms import LongestSideResize


class MobileSAMBackend(SamFamilyBackend):
    """A :class:`~radioactive.models.slicewise.SliceBackend` for MobileSAM.

    Args:
        checkpoint: a checkpoint file to use instead of the registry's.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the SAM family's contract) or an intensity preset (see
            :mod:`radioactive.models.intensity`).
        multimask: ``"auto"`` (three candidates for a lone point, the best by predicted IoU, as
            SAM recommends), ``"always"`` (as the reference implementation) or ``"never"``.
    """

    card = ModelCard(
        name="mobilesam",
        version="2",
        checkpoint=CHECKPOINTS["mobilesam"].filename,
        checkpoint_sha256=CHECKPOINTS["mobilesam"].sha256,
        licence="Apache-2.0",
        training_data="SA-1B natural images (encoder distilled from SAM ViT-H)",
        reference="Zhang et al., Faster Segment Anything: Towards Lightweight SAM for Mobile "
        "Applications, arXiv:2306.14289 (2023)",
    )
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )
    checkpoint_name = "mobilesam"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "auto",
    ):
        from radioactive.models._torch import quiet_imports

        path = require_checkpoint("mobilesam", cache, checkpoint)
        with quiet_imports():
            from mobile_sam import sam_model_registry
        net = sam_model_registry["vit_t"](checkpoint=None)
        super().__init__(
            net,
            LongestSideResize(int(net.image_encoder.img_size)),
            weights_path=path,
            device=device,
            intensity=intensity,
            multimask=multimask,
        )

    def resize_transform(self) -> Any:
        """``mobile_sam``'s own ``ResizeLongestSide``."""
        from mobile_sam.utils.transforms import ResizeLongestSide

        return ResizeLongestSide(int(self.resize.size))
