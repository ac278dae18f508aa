"""SAM 2 and SAM 2.1 (Hiera-T/S/B+/L) as a slice-wise backend, through the image predictor path.

Code from the ``sam2`` package (``import sam2``, configs ``configs/sam2.1/sam2.1_hiera_*.yaml``
and ``configs/sam2/sam2_hiera_*.yaml``); weights from the registry of
:mod:`radioactive.models.checkpoints` (``sam2.1_hiera_{tiny,small,base_plus,large}`` and
``sam2_hiera_*``).

Input contract (PROTOCOL §8, "as SAM, square resize 1024, image predictor"), exactly what
``SAM2ImagePredictor`` does with a uint8 RGB image:

* the RadioActive reference's intensity rule (:data:`SAM2_CONTRACTS`): the volume clipped to its
  0.5–99.5 percentiles over all voxels, scaled with the clipped volume's range to the 256 integer
  levels of a uint8 image (rounded) and divided by 255 (``ToTensor``), three channels (a preset
  named by ``intensity`` overrides the rule);
* resized to a 1024 × 1024 square (aspect ratio not kept; bilinear, anti-aliased, as
  torchvision's ``Resize`` on tensors), ImageNet mean / std;
* ``forward_image`` + ``_prepare_backbone_features`` (+ ``no_mem_embed``): the embedding of a
  slice is the 64² image embedding **and** the two high-resolution feature maps the mask decoder
  needs (:class:`SAM2Embedding`);
* points (x, y) scaled by ``1024 / W`` and ``1024 / H``; a box becomes two corner points labelled
  2 and 3 placed before the clicks; the previous low-resolution logits (clamped to ±32 as the
  predictor returns them) are the mask prompt;
* full-resolution logits: the 256² logits resized straight to the slice (bilinear, as
  ``SAM2Transforms.postprocess_masks`` without hole filling), not binarised.

The video predictor (memory-based propagation across slices) is not wrapped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard, UnsupportedPrompt
from radioactive.models.checkpoints import CHECKPOINTS
from radioactive.models.contracts import AUTO, InputContract
from radioactive.models.intensity import normalize
from radioactive.models.sam import (
    SamFamilyBackend,
    SquareResize,
    build_net,
    card_for,
    resolve_weights,
)
from radioactive.models.slicewise import SlicePrompts

#: variant → (config suffix, checkpoint suffix)
SAM2_VARIANTS: dict[str, tuple[str, str]] = {
    "hiera_t": ("t", "tiny"),
    "hiera_s": ("s", "small"),
    "hiera_b+": ("b+", "base_plus"),
    "hiera_l": ("l", "large"),
}
SAM2_VERSIONS = ("2.1", "2")
#: ImageNet statistics of ``SAM2Transforms``
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the predictor clamps the low-resolution logits it returns (and feeds back) to this range
LOW_RES_CLAMP = 32.0

SAM2_CONTRACTS = (
    InputContract(
        name="sam2-reference-v1",
        modality="any",
        intensity="volume clipped to its 0.5-99.5 percentiles over all voxels, min-max scaled "
        "with the clipped volume's range to [0, 255] and rounded to uint8",
        preset="sam_reference",
        resampling="SAM2Transforms: ToTensor (/ 255), Resize((1024, 1024)) bilinear",
        crop="the whole axial slice (aspect ratio not kept)",
        channels="3 identical channels, ImageNet mean / std",
        source="MIC-DKFZ/radioactive src/radioa/model/SAM2.py (set_image, preprocess_img); "
        "facebookresearch/sam2 sam2/sam2_image_predictor.py, sam2/utils/transforms.py",
    ),
)


def checkpoint_name(variant: str, version: str = "2.1") -> str:
    """Registry name of a variant's checkpoint, e.g. ``sam2.1_hiera_large``."""
    _check(variant, version)
    return f"sam{version}_hiera_{SAM2_VARIANTS[variant][1]}"


def config_name(variant: str, version: str = "2.1") -> str:
    """The ``sam2`` package's Hydra config of a variant, e.g.
    ``configs/sam2.1/sam2.1_hiera_l.yaml``."""
    _check(variant, version)
    return f"configs/sam{version}/sam{version}_hiera_{SAM2_VARIANTS[variant][0]}.yaml"


def _check(variant: str, version: str) -> None:
    if variant not in SAM2_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(SAM2_VARIANTS)}, got {variant!r}")
    if version not in SAM2_VERSIONS:
        raise ValueError(f"version must be one of {', '.join(SAM2_VERSIONS)}, got {version!r}")


@dataclass(frozen=True)
class SAM2Embedding:
    """One slice's encoder output: what ``SAM2ImagePredictor._features`` holds for an image.

    Attributes:
        image_embed: (256, 64, 64) image embedding (``no_mem_embed`` added when the model does).
        high_res_feats: the decoder's high-resolution features, (32, 256, 256) and
            (64, 128, 128) for a 1024² input.
    """

    image_embed: Any
    high_res_feats: tuple[Any, ...]

    @property
    def nbytes(self) -> int:
        from radioactive.models._torch import tensor_nbytes

        return tensor_nbytes(self.image_embed) + sum(tensor_nbytes(f) for f in self.high_res_feats)


@dataclass(frozen=True)
class SAM2Resize(SquareResize):
    """:class:`~radioactive.models.sam.SquareResize` (bilinear) whose logits go straight from the
    low-resolution grid to the slice, as ``SAM2Transforms.postprocess_masks``."""

    mode: str = "bilinear"

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        x = F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=False)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)


#: the registry entry of the default model (absent until the registry lists SAM 2)
_DEFAULT = CHECKPOINTS.get("sam2.1_hiera_large")


class SAM2Backend(SamFamilyBackend):
    """Segment Anything 2 / 2.1, image predictor (points, boxes, mask prompts).

    Args:
        variant: ``"hiera_l"`` (the paper's model, default), ``"hiera_b+"``, ``"hiera_s"`` or
            ``"hiera_t"``.
        version: ``"2.1"`` (default) or ``"2"``.
        checkpoint: a checkpoint file to use instead of the registry's.
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
        name="sam2",
        version="2",
        checkpoint="sam2.1_hiera_large.pt",
        checkpoint_sha256=_DEFAULT.sha256 if _DEFAULT is not None else None,
        licence="Apache-2.0",
        training_data="SA-1B (11M images, 1.1B masks) and SA-V (50.9K videos, 642.6K masklets), "
        "plus internal video data",
        reference="Ravi et al., SAM 2: Segment Anything in Images and Videos, arXiv:2408.00714 "
        "(2024)",
    )
    contracts: ClassVar[tuple[InputContract, ...]] = SAM2_CONTRACTS
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )
    checkpoint_name = "sam2.1_hiera_large"

    def __init__(
        self,
        variant: str = "hiera_l",
        version: str = "2.1",
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = AUTO,
        multimask: str = "auto",
        weights: str = "pretrained",
    ):
        _check(variant, version)
        self.variant = variant
        self.version = version
        self.checkpoint_name, self.config = self.weights_and_config(variant, version)
        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(
            type(self).card, self.checkpoint_name, f"{self.checkpoint_name}.pt", path is None
        )
        config = self.config
        net = build_net(lambda checkpoint=None: self.build_sam2(config, checkpoint))
        super().__init__(
            net, SAM2Resize(int(net.image_size)), weights_path=path, device=device,
            intensity=intensity, multimask=multimask,
        )  # fmt: skip
        size = int(net.image_size)
        #: (h, w) of the backbone levels, as ``SAM2ImagePredictor._bb_feat_sizes``
        self.feat_sizes = [(size // 4 // 2**k, size // 4 // 2**k) for k in range(3)]
        torch = self._torch
        self.pixel_mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.pixel_std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def weights_and_config(self, variant: str, version: str) -> tuple[str, str]:
        """The checkpoint registry entry and the ``sam2`` package config of a variant."""
        return checkpoint_name(variant, version), config_name(variant, version)

    def build_sam2(self, config: str, checkpoint: Any) -> Any:
        """The upstream ``SAM2Base`` module of ``config`` (subclasses build another predictor)."""
        from radioactive.models._torch import quiet_imports

        with quiet_imports():
            from sam2.build_sam import build_sam2

        return build_sam2(config, ckpt_path=checkpoint, device="cpu", mode="eval")

    # -- input contract --------------------------------------------------------------------------

    def normalize_volume(
        self, image: npt.NDArray, modality: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The volume on the 256 uint8 levels, divided by 255 (the contract's intensity rule)."""
        preset = self.preset_for(modality)
        out = np.rint(normalize(image, preset, out_max=255.0)).astype(np.float32)
        return (out / np.float32(255.0)).astype(np.float32)

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) in [0, 1] → (B, 3, 1024, 1024): square resize (bilinear,
        anti-aliased), three channels, ImageNet mean / std (``SAM2Transforms``)."""
        x = self.resize.image(x[:, None]).expand(-1, 3, -1, -1)
        return (x - self.pixel_mean) / self.pixel_std

    # -- the SliceBackend protocol ---------------------------------------------------------------

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        torch = self._torch
        net = self.net
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32)).to(self.device)
            backbone_out = net.forward_image(self.encoder_input(x))
            _, vision_feats, _, _ = net._prepare_backbone_features(backbone_out)
            if net.directly_add_no_mem_embed:
                vision_feats[-1] = vision_feats[-1] + net.no_mem_embed
            b = x.shape[0]
            feats = [
                f.permute(1, 2, 0).reshape(b, -1, *size)
                for f, size in zip(vision_feats, self.feat_sizes, strict=True)
            ]
            # tensors owning their memory, one set per slice, so the cache's budget is exact
            return [
                SAM2Embedding(feats[-1][i].clone(), tuple(f[i].clone() for f in feats[:-1]))
                for i in range(b)
            ]

    def embedding_nbytes(self, embedding: Any) -> int:
        return int(embedding.nbytes)

    def embedding_tensors(self, embedding: SAM2Embedding) -> dict[str, Any]:
        """The embedding's tensors by name (for the persistent embedding cache)."""
        high = {f"high_res_{i}": t for i, t in enumerate(embedding.high_res_feats)}
        return {"image_embed": embedding.image_embed, **high}

    def embedding_from_tensors(self, tensors: dict[str, Any]) -> SAM2Embedding:
        """The embedding :meth:`embedding_tensors` named."""
        high = tuple(tensors[f"high_res_{i}"] for i in range(len(tensors) - 1))
        return SAM2Embedding(tensors["image_embed"], high)

    def _prompt_tensors(self, prompts: SlicePrompts, shape: tuple[int, int]) -> tuple[Any, ...]:
        """One slice's point coordinates (n, 2) and labels (n,) (the box first, as two corners
        labelled 2 and 3; ``None`` without any) and its mask prompt (1, h, w) or ``None``."""
        torch = self._torch
        if len(prompts.points) and "point" not in self.capabilities.prompt_types:
            raise UnsupportedPrompt(f"model {self.card.name!r} does not accept point prompts")
        coords: list[Any] = []
        labels: list[Any] = []
        if prompts.box is not None:
            box = self.resize.box(prompts.box, shape).reshape(2, 2)
            coords.append(torch.as_tensor(box, dtype=torch.float32))
            labels.append(torch.tensor([2, 3], dtype=torch.int32))
        if len(prompts.points):
            pts = self.resize.points(prompts.points, shape)
            coords.append(torch.as_tensor(pts, dtype=torch.float32))
            labels.append(torch.as_tensor(np.asarray(prompts.labels), dtype=torch.int32))
        points = (torch.cat(coords), torch.cat(labels)) if coords else (None, None)
        mask = None
        if prompts.mask_logits is not None:
            low_shape = prompts.mask_logits.shape[-2:]
            mask = torch.as_tensor(prompts.mask_logits).reshape(1, *low_shape).float()
        return (*points, mask)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        (out,) = self.decode_batch([embedding], [prompts], shape)
        return out

    def decode_batch(
        self, embeddings: list[Any], prompts: list[SlicePrompts], shape: tuple[int, int]
    ) -> list[tuple[npt.NDArray[np.float32], Any]]:
        """Slices whose prompts have one structure (as many points, a box on all or none, a
        mask prompt on all or none) in one call of the mask decoder, which takes a batch of
        images with one set of prompts each (``repeat_image=False``)."""
        torch = self._torch
        dev = self.device
        parts = [self._prompt_tensors(p, shape) for p in prompts]
        points = None
        if parts[0][0] is not None:
            points = (torch.stack([c for c, _, _ in parts]).to(dev),
                      torch.stack([lab for _, lab, _ in parts]).to(dev))  # fmt: skip
        masks = None
        if parts[0][2] is not None:
            masks = torch.stack([m for _, _, m in parts]).to(dev, torch.float32)
        first = prompts[0]
        lone_point = len(first.points) == 1 and first.box is None and masks is None
        multi = self.multimask == "always" or (self.multimask == "auto" and lone_point)
        net = self.net
        n_high = len(embeddings[0].high_res_feats)
        with torch.inference_mode():
            sparse, dense = net.sam_prompt_encoder(points=points, boxes=None, masks=masks)
            low, iou, _, _ = net.sam_mask_decoder(
                image_embeddings=torch.stack([e.image_embed for e in embeddings]),
                image_pe=net.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multi,
                repeat_image=False,
                high_res_features=[torch.stack([e.high_res_feats[i] for e in embeddings])
                                   for i in range(n_high)],
            )  # fmt: skip
            out = []
            for i in range(len(embeddings)):
                best = int(torch.argmax(iou[i])) if multi else 0
                chosen = low[i, best]
                full = self.resize.logits_to_slice(chosen, shape)
                out.append((full, chosen.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP).detach().clone()))
        return out
