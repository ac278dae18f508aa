"""SAM-Med3D (-turbo): a native 3D promptable model (point prompts and mask feedback).

Code from the ``medim`` package (``medim==0.1.2``, ``medim.models.sam_med3d``); weights from the
registry of :mod:`radioactive.models.checkpoints` (``sammed3d_turbo``). The network is built with
``build_sam3D_vit_b_ori(pretrained=False)`` (never medim's downloading ``create_model``).

Input contract (PROTOCOL §8):

* the canonical (z, y, x) volume is resampled to 1.5 mm isotropic (``scipy.ndimage.zoom``,
  order 1, corner-aligned: canonical index ``i`` ↦ resampled index ``i·(r−1)/(n−1)``), lazily,
  once per volume;
* ONE 128³ crop is taken, centred on the centroid of all points, clipped to the volume (padded
  with the crop's minimum where the volume is smaller than 128), and z-scored in the crop;
* ALL accumulated points are passed (the reference silently used only one: a defect).

Axis order: SAM-Med3D was trained on torchio tensors laid out (x, y, z) (NIfTI voxel order),
so the crop is transposed from canonical (z, y, x) to (x, y, z) before the encoder, point
coordinates are given to the prompt encoder as (x, y, z) crop voxel indices, and the low-res
logits (1×1×32³) the decoder returns are in that (x, y, z) layout too.

``weights="random"`` builds seeded random weights (tests and timing only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    Capabilities,
    ModelCard,
    Prediction,
    StepTimings,
    check_supported,
)
from radioactive.models.sam import build_net, card_for, resolve_weights
from radioactive.prompts.types import Interaction, Point

SAMMED3D_FILE = "sam_med3d_turbo.pth"
#: logit given to resampled voxels no prediction has reached yet
BACKGROUND_LOGIT = -20.0
#: canonical (z, y, x) → network (x, y, z)
NET_AXES = (2, 1, 0)


# -- geometry helpers (pure numpy, unit-tested) -----------------------------------------------


def resampled_shape(
    shape: tuple[int, ...], spacing_mm: tuple[float, ...], target_mm: float
) -> tuple[int, int, int]:
    """Shape of the volume resampled to ``target_mm`` isotropic (at least one voxel per axis)."""
    z, y, x = (max(1, round(n * s / target_mm)) for n, s in zip(shape, spacing_mm, strict=True))
    return z, y, x


def map_index(
    coords: npt.ArrayLike, src: tuple[int, ...], dst: tuple[int, ...]
) -> npt.NDArray[np.float64]:
    """(N, 3) voxel coordinates on grid ``src`` → grid ``dst`` with the corner-aligned mapping
    of ``scipy.ndimage.zoom`` (``i·(dst−1)/(src−1)``; an axis of one voxel maps to 0)."""
    c = np.asarray(coords, dtype=float).reshape(-1, 3)
    s = np.asarray(src, dtype=float)
    d = np.asarray(dst, dtype=float)
    scale = np.where(s > 1, (d - 1) / np.maximum(s - 1, 1), 0.0)
    return c * scale


def crop_start(center: npt.ArrayLike, shape: tuple[int, ...], size: int) -> tuple[int, int, int]:
    """Start of the ``size³`` window centred on ``center`` (voxel index ``start + size // 2``),
    clipped to the volume; 0 on an axis shorter than ``size`` (the crop is then padded)."""
    c = np.rint(np.asarray(center, dtype=float)).astype(int)
    z, y, x = (
        int(np.clip(ci - size // 2, 0, max(n - size, 0))) for ci, n in zip(c, shape, strict=True)
    )
    return z, y, x


def extract_crop(
    volume: npt.NDArray, start: tuple[int, ...], size: int, fill: float | None = None
) -> npt.NDArray[np.float32]:
    """The ``size³`` window at ``start``; padded after the volume's end with ``fill`` (default:
    the minimum of the part inside the volume)."""
    sl = tuple(slice(s, s + size) for s in start)
    part = np.asarray(volume[sl], dtype=np.float32)
    if part.shape == (size, size, size):
        return part.copy()
    value = float(part.min()) if fill is None else fill
    out = np.full((size, size, size), value, dtype=np.float32)
    out[tuple(slice(0, n) for n in part.shape)] = part
    return out


def zscore(crop: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Zero mean, unit standard deviation over the crop (std floored at 1e-8)."""
    return ((crop - crop.mean()) / max(float(crop.std()), 1e-8)).astype(np.float32)


def nearest_to_grid(volume: npt.NDArray, shape: tuple[int, ...]) -> npt.NDArray:
    """Nearest-neighbour resampling of ``volume`` onto ``shape`` (exact shape, corner-aligned
    as :func:`map_index`)."""
    idx = []
    for n_dst, n_src in zip(shape, volume.shape, strict=True):
        i = np.arange(n_dst, dtype=float)
        scale = (n_src - 1) / (n_dst - 1) if n_dst > 1 else 0.0
        idx.append(np.clip(np.rint(i * scale).astype(int), 0, n_src - 1))
    return volume[np.ix_(*idx)]


@dataclass
class SAMMed3DLogits:
    """What SAM-Med3D feeds back: the decoder's low-res logits (torch, 1×1×L³ in (x, y, z)
    order) of the crop at ``start`` (resampled grid, (z, y, x)), and the logits of the whole
    resampled grid (numpy, (z, y, x))."""

    low_res: Any
    start: tuple[int, int, int]
    size: int
    grid: npt.NDArray[np.float32]


class SAMMed3DModel:
    """SAM-Med3D-turbo as a :class:`~radioactive.models.base.Model` (see the module docstring).

    Args:
        checkpoint: a checkpoint file to use instead of the registry's ``sammed3d_turbo``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        weights: ``"pretrained"`` or ``"random"`` (seeded random weights, no checkpoint).
        target_spacing_mm: isotropic spacing of the model's grid.
        crop: side of the crop (the network's input size).
    """

    card = ModelCard(
        name="sammed3d",
        version="1",
        checkpoint=SAMMED3D_FILE,
        checkpoint_sha256=None,
        licence="Apache-2.0",
        training_data="SA-Med3D-140K (SAM-Med3D-turbo: 44 datasets, 143K 3D masks)",
        reference="Wang et al. 2023, SAM-Med3D (arXiv:2310.15161); SAM-Med3D-turbo",
    )
    capabilities = Capabilities(dim=3, prompt_types=frozenset({"point"}), accepts_mask=True)
    checkpoint_name = "sammed3d_turbo"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        weights: str = "pretrained",
        target_spacing_mm: float = 1.5,
        crop: int = 128,
    ):
        import torch

        from radioactive.models._torch import load_state_dict, pick_device, quiet_imports

        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(type(self).card, self.checkpoint_name, SAMMED3D_FILE, path is None)
        with quiet_imports():
            from medim.models.sam_med3d import build_sam3D_vit_b_ori

        net = build_net(lambda checkpoint=None: build_sam3D_vit_b_ori(pretrained=False))
        self.device = pick_device(device)
        if path is not None:
            state = load_state_dict(str(path), self.device)
            if "model_state_dict" in state and isinstance(state["model_state_dict"], dict):
                state = state["model_state_dict"]
            net.load_state_dict(state, strict=True)
        self.net = net.to(self.device).eval()
        if int(self.net.image_encoder.img_size) != crop:
            raise ValueError(f"crop must be {self.net.image_encoder.img_size}, got {crop}")
        self.target_spacing_mm = float(target_spacing_mm)
        self.crop = int(crop)
        self._torch = torch
        self.image: npt.NDArray[np.float32] | None = None
        self.spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
        self._resampled: npt.NDArray[np.float32] | None = None
        self._embedding: tuple[tuple[int, int, int], Any] | None = None
        self._points: list[Point] = []

    # -- Model protocol ----------------------------------------------------------------------

    def prepare(self, image: npt.NDArray, spacing_mm: tuple[float, float, float]) -> None:
        if np.ndim(image) != 3:
            raise ValueError(f"expected a 3D (z, y, x) image, got shape {np.shape(image)}")
        self.image = np.asarray(image, dtype=np.float32)
        self.spacing_mm = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
        self._resampled = None
        self._embedding = None
        self.reset()

    def reset(self) -> None:
        self._points = []

    @property
    def shape(self) -> tuple[int, int, int]:
        if self.image is None:
            raise RuntimeError("call prepare(image, spacing_mm) first")
        z, y, x = self.image.shape
        return z, y, x

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Shape of the volume on the model's isotropic grid."""
        return resampled_shape(self.shape, self.spacing_mm, self.target_spacing_mm)

    def resampled(self) -> npt.NDArray[np.float32]:
        """The volume on the isotropic grid (computed once per volume)."""
        if self._resampled is None:
            from scipy.ndimage import zoom

            factors = [r / n for r, n in zip(self.grid_shape, self.shape, strict=True)]
            out = zoom(self.image, factors, order=1, grid_mode=False)
            if out.shape != self.grid_shape:  # rounding of scipy; never expected
                out = nearest_to_grid(out, self.grid_shape)
            self._resampled = np.asarray(out, dtype=np.float32)
        return self._resampled

    def crop_for(self, points: list[Point]) -> tuple[npt.NDArray[np.float64], tuple[int, int, int]]:
        """(N, 3) point coordinates on the resampled grid (z, y, x; rounded) and the crop start."""
        zyx = np.array([p.zyx for p in points], dtype=float)
        grid = np.rint(map_index(zyx, self.shape, self.grid_shape))
        return grid, crop_start(grid.mean(axis=0), self.grid_shape, self.crop)

    def predict(self, interaction: Interaction, previous: Prediction | None) -> Prediction:
        check_supported(self.card.name, self.capabilities, interaction)
        torch = self._torch
        new = [p for p in interaction.prompts if isinstance(p, Point)]
        self._points = [*self._points, *new] if interaction.keep_previous else list(new)
        if not self._points:
            raise ValueError("SAM-Med3D needs at least one point prompt")
        timings = StepTimings()
        grid_pts, start = self.crop_for(self._points)
        size = self.crop

        # image embedding of the crop (cached per crop)
        t0 = time.perf_counter()
        if self._embedding is not None and self._embedding[0] == start:
            embedding = self._embedding[1]
            timings.cache_hits += 1
        else:
            crop = zscore(extract_crop(self.resampled(), start, size))
            x = torch.from_numpy(np.ascontiguousarray(crop.transpose(NET_AXES)))
            with torch.no_grad():
                embedding = self.net.image_encoder(x[None, None].to(self.device))
            self._embedding = (start, embedding)
            timings.cache_misses += 1
            timings.encoder_calls += 1
        timings.encoder_s = time.perf_counter() - t0

        # prompts: ALL points, (x, y, z) crop voxel coordinates
        t1 = time.perf_counter()
        in_crop = (grid_pts - np.asarray(start, dtype=float))[:, list(NET_AXES)]
        coords = torch.as_tensor(in_crop, dtype=torch.float32, device=self.device)[None]
        labels = torch.as_tensor(
            [[1 if p.positive else 0 for p in self._points]], dtype=torch.int64, device=self.device
        )
        prev = previous.logits.get(0) if previous is not None else None
        prev = prev if isinstance(prev, SAMMed3DLogits) else None
        mask_in = self._mask_input(prev, start) if prev is not None else None
        with torch.no_grad():
            sparse, dense = self.net.prompt_encoder(
                points=(coords, labels), boxes=None, masks=mask_in
            )
            low_res, _ = self.net.mask_decoder(
                image_embeddings=embedding,
                image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            up = torch.nn.functional.interpolate(
                low_res, size=(size, size, size), mode="trilinear", align_corners=False
            )
        crop_logits = up[0, 0].float().cpu().numpy().transpose(NET_AXES)  # back to (z, y, x)

        gshape = self.grid_shape
        if prev is not None and prev.grid.shape == gshape:
            grid = prev.grid.copy()
        else:
            grid = np.full(gshape, BACKGROUND_LOGIT, dtype=np.float32)
        inside = tuple(slice(s, min(s + size, n)) for s, n in zip(start, gshape, strict=True))
        grid[inside] = crop_logits[tuple(slice(0, sl.stop - sl.start) for sl in inside)]
        mask = nearest_to_grid(grid > 0, self.shape).astype(bool)
        timings.decoder_s = time.perf_counter() - t1
        logits = SAMMed3DLogits(low_res=low_res.detach(), start=start, size=size, grid=grid)
        return Prediction(mask=mask, logits={0: logits}, timings=timings)

    def _mask_input(self, prev: SAMMed3DLogits, start: tuple[int, int, int]) -> Any:
        """The previous low-res logits as mask prompt: as returned when the crop is the same,
        else the previous grid logits in the new crop, downsampled to the low-res size."""
        torch = self._torch
        if prev.start == start and prev.size == self.crop:
            return prev.low_res.to(self.device)
        crop = extract_crop(prev.grid, start, self.crop, fill=BACKGROUND_LOGIT)
        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(NET_AXES)))[None, None]
        low = tuple(prev.low_res.shape[-3:])
        return torch.nn.functional.interpolate(
            x.to(self.device), size=low, mode="trilinear", align_corners=False
        )
