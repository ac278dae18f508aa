"""Plugins built from this project's own code that honour the input contracts of the two plugin
recipes (SegVol, ScribblePrompt), with a stand-in network where the authors' call would be: they
check that a plugin written as docs/adding-a-model.md says runs through radioactive, and that each
step of the recipe does what the recipe says.

The stand-in networks answer "bright voxels inside the box" on the grid the network sees, so a
prediction lands on the target only if every mapping (axes, resize, coordinates, back to the
volume) is right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard, Prediction, StepTimings
from radioactive.models.slicewise import SlicePrompts
from radioactive.prompts.types import Box3D, Interaction

# -- SegVol: a whole-volume model ---------------------------------------------------------------

#: SegVol's zoom-out grid (z, y, x)
SEGVOL_GRID = (32, 256, 256)


def segvol_normalise(volume: npt.NDArray) -> npt.NDArray[np.float32]:
    """The recipe's intensity rule: the voxels above the volume mean are the foreground; clip to
    its 0.05-99.95 percentiles, z-score with its mean / std, then min-max to [0, 1]."""
    v = np.asarray(volume, dtype=np.float64)
    fg = v[v > v.mean()]
    lo, hi = np.percentile(fg, 0.05), np.percentile(fg, 99.95)
    z = (np.clip(v, lo, hi) - fg.mean()) / max(float(fg.std()), 1e-8)
    z = z - z.min()
    return (z / max(float(z.max()), 1e-8)).astype(np.float32)


def nearest_exact(volume: npt.NDArray, shape: tuple[int, ...]) -> npt.NDArray:
    """Resize by nearest-exact sampling (source index ``floor((i + 0.5) * n_in / n_out)``)."""
    out = np.asarray(volume)
    for axis, n_out in enumerate(shape):
        n_in = out.shape[axis]
        idx = np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(int), n_in - 1)
        out = np.take(out, idx, axis=axis)
    return out


class SegVolStyleModel:
    """A 3D plugin following the SegVol recipe; ``network`` stands in for the authors' zoom-out
    pass (its input: the zoom-out volume and the box in that grid)."""

    card = ModelCard(
        "segvol", "1", None, None, "MIT", "none (stand-in network)", "SegVol recipe test plugin"
    )
    capabilities = Capabilities(dim=3, prompt_types=frozenset({"box3d"}))

    def __init__(self) -> None:
        self.zoomed: npt.NDArray[np.float32] | None = None
        self.shape: tuple[int, int, int] = (0, 0, 0)
        self.seen: list[tuple[npt.NDArray, tuple[tuple[int, ...], tuple[int, ...]]]] = []

    def prepare(
        self, image: npt.NDArray, spacing_mm: tuple[float, float, float], modality: Any = None
    ) -> None:
        vol = np.asarray(image)
        self.shape = (int(vol.shape[0]), int(vol.shape[1]), int(vol.shape[2]))
        self.zoomed = nearest_exact(segvol_normalise(vol), SEGVOL_GRID)

    def reset(self) -> None:
        self.seen = []

    def network(self, zoomed: npt.NDArray, lo: tuple[int, ...], hi: tuple[int, ...]) -> Any:
        logits = np.full(zoomed.shape, -4.0, dtype=np.float32)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        logits[box] = np.where(zoomed[box] > 0.5, 4.0, -4.0)
        return logits

    def predict(self, interaction: Interaction, previous: Prediction | None = None) -> Prediction:
        assert self.zoomed is not None, "call prepare first"
        (box,) = [p for p in interaction.prompts if isinstance(p, Box3D)]
        scale = [g / s for g, s in zip(SEGVOL_GRID, self.shape, strict=True)]
        lo = tuple(int(np.floor(a * f)) for a, f in zip(box.lo, scale, strict=True))
        hi = tuple(int(np.ceil(b * f)) for b, f in zip(box.hi, scale, strict=True))
        self.seen.append((self.zoomed, (lo, hi)))
        logits = self.network(self.zoomed, lo, hi)
        mask = nearest_exact(logits, self.shape) > 0
        return Prediction(mask=mask, logits={}, timings=StepTimings(slices_inferred=self.shape[0]))


# -- ScribblePrompt: a slice backend ------------------------------------------------------------

#: ScribblePrompt-UNet's input grid
SP_SIZE = 128


def bilinear(image: npt.NDArray, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Bilinear resize with half-pixel centres (``align_corners=False``), no anti-aliasing."""
    from scipy.ndimage import map_coordinates

    h, w = image.shape
    ys = (np.arange(shape[0]) + 0.5) * h / shape[0] - 0.5
    xs = (np.arange(shape[1]) + 0.5) * w / shape[1] - 0.5
    yy, xx = np.meshgrid(np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1), indexing="ij")
    return map_coordinates(np.asarray(image, np.float32), [yy, xx], order=1).astype(np.float32)


class ScribblePromptStyleBackend:
    """A 2D plugin following the ScribblePrompt recipe; ``network`` stands in for
    ``ScribblePromptUNet.predict(..., return_logits=True)`` on the 5-channel input."""

    card = ModelCard(
        "scribbleprompt", "1", None, None, "Apache-2.0", "none (stand-in network)",
        "ScribblePrompt recipe test plugin",
    )  # fmt: skip
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d", "scribble"}), accepts_mask=True
    )

    def __init__(self) -> None:
        self.inputs: list[npt.NDArray[np.float32]] = []

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        v = np.asarray(image, dtype=np.float32)
        lo = v.min(axis=(1, 2), keepdims=True)
        span = np.maximum(v.max(axis=(1, 2), keepdims=True) - lo, 1e-8)
        return ((v - lo) / span).astype(np.float32)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        return [bilinear(s, (SP_SIZE, SP_SIZE)) for s in slices]

    def embedding_nbytes(self, embedding: Any) -> int:
        return int(embedding.nbytes)

    def network(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        img, box, pos, neg, _ = x
        inside = (box > 0) | (pos > 0)
        return np.where(inside & (img > 0.5) & (neg == 0), 4.0, -4.0).astype(np.float32)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        h, w = shape
        sy, sx = SP_SIZE / h, SP_SIZE / w
        x = np.zeros((5, SP_SIZE, SP_SIZE), dtype=np.float32)
        x[0] = embedding
        if prompts.box is not None:  # (y0, x0, y1, x1) -> (x1, y1, x2, y2) on the 128 grid
            y0, x0, y1, x1 = prompts.box
            bx0, by0, bx1, by1 = int(x0 * sx), int(y0 * sy), int(x1 * sx), int(y1 * sy)
            x[1, by0:by1, bx0:bx1] = 1.0
        for (py, px), label in zip(prompts.points, prompts.labels, strict=True):
            x[2 if label else 3, int(py * sy), int(px * sx)] = 1.0
        if prompts.mask_logits is not None:
            x[4] = np.asarray(prompts.mask_logits, dtype=np.float32)
        self.inputs.append(x)
        logits = self.network(x)
        return bilinear(logits, shape), logits
