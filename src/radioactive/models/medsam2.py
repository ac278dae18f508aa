"""MedSAM2 (bowang-lab, 2025): SAM 2.1 Hiera-T fine-tuned on 3D medical images, run as its authors
run it on a CT volume, through the ``sam2`` package's video predictor.

MedSAM2's repository ships a fork of ``sam2`` whose modules are those of the ``sam2`` 1.1.0 package
(same classes and parameter names; the differences are refactors that do not change a number). Its
checkpoint therefore loads, strictly, into the package's SAM 2.1 Hiera-T built with the hyper-
parameters of MedSAM2's own config, which this module states as data
(:data:`MEDSAM2_ARCHITECTURE`): the package's ``sam2.1_hiera_t.yaml`` with a 512² input and the
memory attention's rotary position encoding on the 32 × 32 grid of a 512² input (instead of
1024² and 64 × 64). Nothing else in the config differs.

Input and inference, as ``medsam2_infer_3D_CT.py`` does them:

* intensities to uint8 levels: the CT window (MedSAM's level 40 / width 400 here; the script
  takes each DeepLesion lesion's own window), min-max of the clipped volume to [0, 255],
  truncated; MR as MedSAM's ``pre_CT_MR.py`` (:data:`MEDSAM2_CONTRACTS`);
* each slice as a uint8 RGB image resized to 512 × 512 by Pillow (bicubic, Pillow's default for
  RGB), divided by 255, ImageNet mean / std;
* a box on the key slice; one pass forward from it, the state reset, the box added again and one
  pass in reverse (``separate_passes=True``); the union of the two passes; the largest
  26-connected component (``largest_component=True``);
* upstream's mask post-processing overrides are the video predictor builder's defaults; hole
  filling needs sam2's CUDA extension and is off (``fill_hole_area=0``), as for ``sam2_video``.

Refinement (not part of the authors' script) keeps ``sam2_video``'s rules, except that with
``separate_passes`` every pass starts from a reset state holding all prompts so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import ModelCard
from radioactive.models.contracts import AUTO, InputContract
from radioactive.models.sam2 import config_name
from radioactive.models.sam2_video import SAM2VideoModel, pillow_frames
from radioactive.prompts.types import Prompt

#: MedSAM2's published architecture (``sam2/configs/sam2.1_hiera_t512.yaml`` of bowang-lab/MedSAM2)
#: as a difference from the ``sam2`` package's config of the same network
MEDSAM2_ARCHITECTURE: dict[str, Any] = {
    "base_config": config_name("hiera_t", "2.1"),
    "image_size": 512,
    "rope_feat_sizes": (32, 32),
}

#: where the facts above come from
MEDSAM2_SOURCE = (
    "bowang-lab/MedSAM2 sam2/configs/sam2.1_hiera_t512.yaml, medsam2_infer_3D_CT.py, "
    "sam2/build_sam.py (build_sam2_video_predictor_npz)"
)

_SLICE = (
    "each axial slice as a uint8 RGB image resized to 512 x 512 with Pillow (bicubic), divided "
    "by 255, ImageNet mean / std"
)

MEDSAM2_CONTRACTS = (
    InputContract(
        name="medsam2-ct-v1",
        modality="CT",
        intensity="window level 40 / width 400 HU, min-max of the windowed volume to [0, 255], "
        "truncated to uint8 (the authors' script uses each DeepLesion lesion's own window)",
        preset="medsam_ct",
        resampling=_SLICE,
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels, ImageNet mean / std",
        source=MEDSAM2_SOURCE,
    ),
    InputContract(
        name="medsam2-mr-v1",
        modality="MR",
        intensity="clipped to the 0.5-99.5 percentiles of the positive voxels, min-max to "
        "[0, 255], zeros kept, truncated to uint8 (MedSAM's pre_CT_MR.py)",
        preset="medsam_mr",
        resampling=_SLICE,
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels, ImageNet mean / std",
        source=MEDSAM2_SOURCE,
    ),
)


def architecture_overrides(arch: dict[str, Any] | None = None) -> list[str]:
    """Hydra overrides that turn the base config into ``arch`` (default: MedSAM2's)."""
    arch = MEDSAM2_ARCHITECTURE if arch is None else arch
    h, w = (int(v) for v in arch["rope_feat_sizes"])
    layer = "++model.memory_attention.layer"
    return [
        f"++model.image_size={int(arch['image_size'])}",
        f"{layer}.self_attention.feat_sizes=[{h},{w}]",
        f"{layer}.cross_attention.feat_sizes=[{h},{w}]",
    ]


class MedSAM2Model(SAM2VideoModel):
    """MedSAM2 over the axial slices as video frames (see the module docstring).

    Args:
        checkpoint: a checkpoint file (e.g. ``MedSAM2_latest.pt``) instead of the registry's.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: ``"auto"`` (the contract) or an intensity preset.
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (tests and timing only).
        fill_hole_area: as ``sam2_video`` (default 0: off).
        separate_passes: the authors' two passes, each from a reset state (default); ``False``
            runs both in one state, as ``sam2_video``.
        largest_component: keep the largest 26-connected component, as the authors' script.
    """

    card = ModelCard(
        name="medsam2",
        version="1",
        checkpoint="MedSAM2_latest.pt",
        checkpoint_sha256=None,
        licence="Apache-2.0",
        training_data="public 3D CT, MR and PET datasets, CT lesion and ultrasound / endoscopy "
        "videos, with newly annotated CT (DeepLesion), MR (LLD-MMRI) and echocardiography "
        "(RVENet) sets; fine-tuned from SAM 2.1 Hiera-T",
        reference="Ma et al., MedSAM2: Segment Anything in 3D Medical Images and Videos, "
        "arXiv:2504.03600 (2025)",
    )
    contracts = MEDSAM2_CONTRACTS
    checkpoint_name = "medsam2_latest"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        weights: str = "pretrained",
        fill_hole_area: int = 0,
        separate_passes: bool = True,
        largest_component: bool = True,
    ):
        super().__init__(
            variant="hiera_t", version="2.1", checkpoint=checkpoint, cache=cache, device=device,
            intensity=intensity, weights=weights, fill_hole_area=fill_hole_area,
        )  # fmt: skip
        self.separate_passes = bool(separate_passes)
        self.largest_component = bool(largest_component)

    def weights_and_config(self, variant: str, version: str) -> tuple[str, str]:
        return type(self).checkpoint_name, str(MEDSAM2_ARCHITECTURE["base_config"])

    def build_sam2(self, config: str, checkpoint: Any) -> Any:
        """The package's video predictor with MedSAM2's hyper-parameters."""
        from radioactive.models._torch import quiet_imports

        with quiet_imports():
            from sam2.build_sam import build_sam2_video_predictor

        extra = ["++model.add_all_frames_to_correct_as_cond=true", *architecture_overrides()]
        return build_sam2_video_predictor(
            config, ckpt_path=checkpoint, device="cpu", mode="eval", hydra_overrides_extra=extra
        )

    # -- input contract --------------------------------------------------------------------------

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) in [0, 1] (uint8 levels / 255) → (B, 3, 512, 512): each slice as a
        uint8 RGB image resized by Pillow (bicubic), / 255, ImageNet mean / std
        (:func:`~radioactive.models.sam2_video.pillow_frames`)."""
        return pillow_frames(x, int(self.net.image_size), self.device)

    # -- inference -------------------------------------------------------------------------------

    def _propagate(
        self, state: dict[str, Any], by_slice: dict[int, list[Prompt]], lo: int, hi: int
    ) -> npt.NDArray[np.bool_]:
        if not self.separate_passes:
            mask = super()._propagate(state, by_slice, lo, hi)
        else:
            mask = np.zeros(self.shape, dtype=bool)
            start = min(by_slice)
            for reverse, n in ((False, hi - start), (True, start - lo)):
                self.net.reset_state(state)
                for z in sorted(by_slice):
                    self._add_prompts(state, z, by_slice[z])
                part = np.zeros_like(mask)
                self._pass(state, start, n, reverse, part)
                mask |= part
        if self.largest_component and mask.any():
            import cc3d

            mask = np.asarray(cc3d.largest_k(mask, k=1, connectivity=26) > 0)
        return mask


__all__ = ["MEDSAM2_ARCHITECTURE", "MEDSAM2_CONTRACTS", "MedSAM2Model", "architecture_overrides"]
