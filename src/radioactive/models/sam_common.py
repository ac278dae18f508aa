"""Helpers shared by the SAM-family backends (:mod:`radioactive.models.sam`, SAM 2) and SAM-Med3D.

:class:`SliceResize` is the slice ↔ model-frame mapping a slice-wise backend uses, and
:class:`SquareResize` MedSAM's square one. :func:`resolve_weights` finds the checkpoint to load
(or none, for random weights), :func:`build_net` builds a network with reproducible random
weights, and :func:`card_for` names the checkpoint actually used on the model card.
:mod:`radioactive.models.sam` re-exports them.
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

from radioactive.models.base import ModelCard
from radioactive.models.checkpoints import CHECKPOINTS, require_checkpoint

WEIGHTS = ("pretrained", "random")
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
        # divide, then multiply, as MedSAM_Inference.py does (``box / [W, H, W, H] * 1024``):
        # the same float64 numbers, not merely close ones
        return np.stack([pts[:, 1] / w * self.size, pts[:, 0] / h * self.size], axis=1)

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


__all__ = [
    "RANDOM_WEIGHTS_SEED",
    "WEIGHTS",
    "SliceResize",
    "SquareResize",
    "build_net",
    "card_for",
    "resolve_weights",
]
