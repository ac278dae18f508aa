"""SAM (ViT-B/L/H) and MedSAM, and the code every ``segment_anything``-style model shares.

Code from the ``segment-anything`` package (``import segment_anything``); weights from the registry
of :mod:`radioactive.models.checkpoints` (``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``,
``medsam``).

:class:`SamFamilyBackend` is a :class:`~radioactive.models.slicewise.SliceBackend` for any
``Sam`` module (``image_encoder``, ``prompt_encoder``, ``mask_decoder``, ``pixel_mean`` /
``pixel_std``): it normalises the volume, encodes batches of slices, decodes one slice's points /
box / mask prompt and maps the low-resolution logits back onto the slice. The models differ only
in their input contract (PROTOCOL §8), which a subclass states:

* **SAM** (and MobileSAM): the volume clipped to its 0.5–99.5 percentiles, each slice scaled to
  [0, 255] (integer levels), three channels, longest side 1024 plus zero padding after SAM's
  pixel mean / std (:class:`~radioactive.models.transforms.LongestSideResize`).
* **MedSAM**: each slice clipped to its *own* 0.5–99.5 percentiles and scaled to [0, 1], resized
  to a 1024 × 1024 square (aspect ratio not kept, bicubic), min-max scaled to [0, 1] again, no
  pixel mean / std (:class:`SquareResize`); box prompts only, as in ``MedSAM_Inference.py``.

``weights="random"`` builds a model with random (seeded, reproducible) weights and no checkpoint:
for tests and timing benchmarks only, never for results; the card then names no checkpoint.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard, UnsupportedPrompt
from radioactive.models.checkpoints import CHECKPOINTS, require_checkpoint
from radioactive.models.intensity import PRESETS, normalize
from radioactive.models.slicewise import SlicePrompts
from radioactive.models.transforms import LongestSideResize

MULTIMASK = ("auto", "always", "never")
WEIGHTS = ("pretrained", "random")
SAM_VARIANTS = ("vit_b", "vit_l", "vit_h")
#: checkpoint file of each SAM variant (the registry entry ``sam_<variant>`` is authoritative)
SAM_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
MEDSAM_FILE = "medsam_vit_b.pth"
#: seed of ``weights="random"`` (drawn from a forked generator; global state is left alone)
RANDOM_WEIGHTS_SEED = 0


class SliceResize(Protocol):
    """The slice ↔ model-frame mapping a SAM-family backend uses (see
    :class:`~radioactive.models.transforms.LongestSideResize`, :class:`SquareResize`)."""

    @property
    def size(self) -> int: ...

    def resized_shape(self, shape: tuple[int, int]) -> tuple[int, int]: ...

    def points(self, yx: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]: ...

    def box(
        self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> npt.NDArray[np.float64]: ...

    def image(self, slices: Any) -> Any: ...

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class SquareResize:
    """Resize a slice to ``size × size`` with independent x and y scales (no padding), as MedSAM
    does (``skimage.transform.resize`` to 1024², boxes scaled by ``1024 / W`` and ``1024 / H``).

    Coordinates in the model frame are (x, y), as in :class:`LongestSideResize`.

    Attributes:
        size: side of the square.
        mode: ``"bicubic"`` (MedSAM, the reference's ``order=3``) or ``"bilinear"``; both
            anti-aliased when shrinking.
    """

    size: int
    mode: str = "bicubic"

    def __post_init__(self) -> None:
        if self.mode not in ("bilinear", "bicubic"):
            raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {self.mode!r}")

    def resized_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of any slice after resizing: the square."""
        return self.size, self.size

    def points(self, yx: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """(N, 2) slice pixel (y, x) → (N, 2) model (x, y) coordinates."""
        pts = np.asarray(yx, dtype=float).reshape(-1, 2)
        h, w = shape
        return np.stack([pts[:, 1] * (self.size / w), pts[:, 0] * (self.size / h)], axis=1)

    def points_back(self, xy: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """Inverse of :meth:`points`: model (x, y) → slice (y, x)."""
        pts = np.asarray(xy, dtype=float).reshape(-1, 2)
        h, w = shape
        return np.stack([pts[:, 1] * (h / self.size), pts[:, 0] * (w / self.size)], axis=1)

    def box(
        self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> npt.NDArray[np.float64]:
        """Half-open slice box (y0, x0, y1, x1) → model box (x0, y0, x1, y1) of its extreme
        pixels (MedSAM's boxes hold the first and last pixel, as SAM's do)."""
        y0, x0, y1, x1 = box_yx
        return self.points([[y0, x0], [y1 - 1, x1 - 1]], shape).reshape(4)

    def image(self, slices: Any) -> Any:
        """Resize a torch tensor (B, C, H, W) to (B, C, size, size)."""
        import torch.nn.functional as F

        return F.interpolate(
            slices, size=(self.size, self.size), mode=self.mode, align_corners=False,
            antialias=True,
        )  # fmt: skip

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """Low-resolution logits (..., L, L) → logits on the slice (H, W) as float32 numpy:
        upsampled to ``size × size``, then resized to the slice (bilinear)."""
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)


def resolve_weights(
    name: str, weights: str, cache: str | Path | None, checkpoint: str | Path | None
) -> Path | None:
    """The checkpoint file to load for registry entry ``name``, or ``None`` for random weights
    (with a warning)."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if weights == "pretrained":
        return require_checkpoint(name, cache, checkpoint)
    if checkpoint is not None:
        raise ValueError("weights='random' takes no checkpoint")
    warnings.warn(
        f"{name}: building random weights (weights='random'): for tests and timing only, "
        "its predictions mean nothing",
        UserWarning,
        stacklevel=3,
    )
    return None


def build_net(builder: Callable[..., Any]) -> Any:
    """``builder(checkpoint=None)`` with its initialisation drawn from a forked, seeded generator
    (reproducible random weights; the global random state is left untouched)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        return builder(checkpoint=None)


def card_for(card: ModelCard, checkpoint_name: str, filename: str, random: bool) -> ModelCard:
    """``card`` naming the checkpoint actually used (none for random weights)."""
    if random:
        return dataclasses.replace(
            card, checkpoint=None, checkpoint_sha256=None,
            training_data="none: random weights (weights='random', tests and timing only)",
        )  # fmt: skip
    entry = CHECKPOINTS.get(checkpoint_name)
    return dataclasses.replace(
        card,
        checkpoint=entry.filename if entry else filename,
        checkpoint_sha256=entry.sha256 if entry else None,
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
        intensity: intensity preset (see :mod:`radioactive.models.intensity`).
        multimask: ``"auto"`` (three candidates for a lone point, the best by predicted IoU, as
            SAM recommends), ``"always"`` or ``"never"``.
    """

    card: ModelCard
    capabilities: Capabilities
    #: the registry entry of :mod:`radioactive.models.checkpoints` this model loads
    checkpoint_name: str

    def __init__(
        self,
        net: Any,
        resize: SliceResize,
        *,
        weights_path: Path | None,
        device: str | None = None,
        intensity: str = "percentile",
        multimask: str = "auto",
    ):
        import torch

        from radioactive.models._torch import load_state_dict, pick_device

        if multimask not in MULTIMASK:
            raise ValueError(f"multimask must be one of {', '.join(MULTIMASK)}, got {multimask!r}")
        if intensity not in PRESETS:
            raise ValueError(
                f"unknown intensity preset {intensity!r}; choose one of: {', '.join(PRESETS)}"
            )
        self.device = pick_device(device)
        if weights_path is not None:
            net.load_state_dict(load_state_dict(str(weights_path), self.device), strict=True)
        self.net = net.to(self.device).eval()
        self.resize = resize
        self.intensity = intensity
        self.multimask = multimask
        self._torch = torch

    # -- input contract --------------------------------------------------------------------------

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        """Volume percentiles (or a CT window) → each slice on integer levels of [0, 255]."""
        return np.rint(normalize(image, self.intensity, out_max=255.0)).astype(np.float32)

    def encoder_input(self, x: Any) -> Any:
        """Normalised slices (B, H, W) on the device → the image encoder's (B, 3, S, S) input:
        resized, three channels, ``(x - pixel_mean) / pixel_std``, then zero padding (as
        ``Sam.preprocess``)."""
        nh, nw = self.resize.resized_shape((int(x.shape[-2]), int(x.shape[-1])))
        x = self.resize.image(x[:, None]).clamp(0, 255).expand(-1, 3, -1, -1)
        x = (x - self.net.pixel_mean) / self.net.pixel_std
        x[..., nh:, :] = 0
        x[..., :, nw:] = 0
        return x

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
            full = self.resize.logits_to_slice(chosen, shape)
        return full, chosen.detach().clone()


class SAMBackend(SamFamilyBackend):
    """Segment Anything (points, boxes, mask prompts).

    Args:
        variant: ``"vit_h"`` (the paper's model, default), ``"vit_l"`` or ``"vit_b"``.
        checkpoint: a checkpoint file to use instead of the registry's ``sam_<variant>``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        intensity: intensity preset (see :mod:`radioactive.models.intensity`).
        multimask: ``"auto"``, ``"always"`` or ``"never"`` (see :class:`SamFamilyBackend`).
        weights: ``"pretrained"`` (the checkpoint) or ``"random"`` (seeded random weights, no
            checkpoint, a warning: tests and timing benchmarks only).
    """

    card = ModelCard(
        name="sam",
        version="1",
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
        intensity: str = "percentile",
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
        intensity: intensity preset; ``"percentile"`` clips each slice to its own 0.5–99.5
            percentiles (MedSAM's contract), a CT window clips every slice alike.
        weights: ``"pretrained"`` or ``"random"`` (as :class:`SAMBackend`).
    """

    card = ModelCard(
        name="medsam",
        version="1",
        checkpoint=MEDSAM_FILE,
        checkpoint_sha256=CHECKPOINTS["medsam"].sha256 if "medsam" in CHECKPOINTS else None,
        licence="Apache-2.0",
        training_data="1,570,263 medical image-mask pairs over 10 imaging modalities and 30+ "
        "cancer types (CT, MR, X-ray, ultrasound, endoscopy, …), fine-tuned from SAM ViT-B",
        reference="Ma et al., Segment anything in medical images, Nat. Commun. 15:654 (2024)",
    )
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}), accepts_mask=False)
    checkpoint_name = "medsam"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        intensity: str = "percentile",
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

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        """Each slice clipped to its own percentiles (or the CT window) and scaled to [0, 1] on
        the 256 levels of the reference's uint8 images."""
        arr = np.asarray(image)
        if PRESETS[self.intensity][0] == "percentile":
            out = np.empty(arr.shape, dtype=np.float32)
            for z in range(arr.shape[0]):
                out[z] = normalize(arr[z : z + 1], self.intensity, out_max=255.0)[0]
        else:
            out = normalize(arr, self.intensity, out_max=255.0)
        return (np.rint(out) / np.float32(255.0)).astype(np.float32)

    def encoder_input(self, x: Any) -> Any:
        """Slices (B, H, W) in [0, 1] → (B, 3, 1024, 1024): square resize, then min-max to
        [0, 1] per slice as ``MedSAM_Inference.py`` (no pixel mean / std, no padding)."""
        x = self.resize.image(x[:, None]).clamp(0, 1)
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-8)
        return x.expand(-1, 3, -1, -1).contiguous()
