"""Exact coordinate and image mapping between a canonical axial slice and a model's input space.

SAM-family models take a slice resized so that its longest side is ``size`` (aspect ratio kept),
padded at the bottom and right to ``size × size``; coordinates are (x, y) in that resized frame.
The inverse maps the model's low-resolution logits back onto the slice: upsample to
``size × size``, crop the padding, resize to the slice (as ``Sam.postprocess_masks`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class LongestSideResize:
    """Resize so the longest side is ``size``, then pad to ``size × size``."""

    size: int

    def resized_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of a slice of ``shape`` after resizing (SAM's rounding)."""
        h, w = shape
        scale = self.size / max(h, w)
        return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))

    def points(self, yx: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """(N, 2) slice pixel (y, x) → (N, 2) model (x, y) coordinates."""
        pts = np.asarray(yx, dtype=float).reshape(-1, 2)
        nh, nw = self.resized_shape(shape)
        h, w = shape
        return np.stack([pts[:, 1] * (nw / w), pts[:, 0] * (nh / h)], axis=1)

    def points_back(self, xy: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """Inverse of :meth:`points`: model (x, y) → slice (y, x)."""
        pts = np.asarray(xy, dtype=float).reshape(-1, 2)
        nh, nw = self.resized_shape(shape)
        h, w = shape
        return np.stack([pts[:, 1] * (h / nh), pts[:, 0] * (w / nw)], axis=1)

    def box(
        self, box_yx: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> npt.NDArray[np.float64]:
        """Half-open slice box (y0, x0, y1, x1) → model box (x0, y0, x1, y1) of its extreme
        pixels (SAM boxes hold the first and last pixel, not one past it)."""
        y0, x0, y1, x1 = box_yx
        corners = self.points([[y0, x0], [y1 - 1, x1 - 1]], shape)
        return corners.reshape(4)

    def image(self, slices: Any) -> Any:
        """Resize a torch tensor (B, C, H, W) to the longest side and pad to ``size × size``."""
        import torch.nn.functional as F

        h, w = slices.shape[-2:]
        nh, nw = self.resized_shape((h, w))
        out = F.interpolate(slices, size=(nh, nw), mode="bilinear", align_corners=False,
                            antialias=True)  # fmt: skip
        return F.pad(out, (0, self.size - nw, 0, self.size - nh))

    def logits_to_slice(self, low_res: Any, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        """Low-resolution logits (..., L, L) → logits on the slice (H, W) as float32 numpy."""
        import torch.nn.functional as F

        x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        nh, nw = self.resized_shape(shape)
        x = x[..., :nh, :nw]
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
        return np.asarray(x[0, 0].detach().cpu().numpy(), dtype=np.float32)
