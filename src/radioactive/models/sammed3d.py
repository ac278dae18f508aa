"""SAM-Med3D (-turbo): a native 3D promptable model (point prompts and mask feedback).

Code from the ``medim`` package (``medim==0.1.2``, ``medim.models.sam_med3d``); weights from the
registry of :mod:`radioactive.models.checkpoints` (``sammed3d_turbo``). The network is built with
``build_sam3D_vit_b_ori(pretrained=False)`` (never medim's downloading ``create_model``).

Input contract (PROTOCOL §8), ``contract="authors"`` (the default): the authors' torchio
pipeline (uni-medical/SAM-Med3D ``utils/infer_utils.py`` ``data_preprocess`` /
``sam_model_infer``, ``utils/data_loader.py``, ``train.py``), re-expressed without torchio:

* CT is clamped to [-1000, 1000] HU (the training loader's clamp); MR is not clamped;
* the canonical (z, y, x) volume is resampled linearly to 1.5 mm isotropic on the grid of
  torchio's ``Resample(1.5)``, evaluated by SimpleITK's linear ``ResampleImageFilter`` (what
  torchio calls; identical output), 0 beyond half a voxel outside the volume; lazily, once per
  volume. torchio changed that grid in 0.20.11 (June 2025, "make resampling symmetric"); the
  default ``grid="corner"`` is the grid of torchio ≤ 0.20.10, which made the model's training
  data (``utils/prepare_data_from_nnUNet.py``) and ran the authors' inference when it was
  written: ``ceil(n·s / 1.5)`` voxels per axis, the first voxel's corner on the volume's first
  corner. ``grid="centre"`` is the newer grid (``floor(n·s / 1.5)`` voxels centred on the
  volume), what the authors' unpinned script gets with a current torchio. The two grids are
  shifted by less than half a grid voxel (0.75 mm) and differ by at most one voxel per axis;
* ONE 128³ crop is taken where torchio's ``CropOrPad(target_shape=128, mask_name=...)`` takes
  it for a mask holding the voxels of all accumulated points on that grid: centred on the centre
  of their bounding box (half-voxel centres rounded down, as torchio does), NOT shifted to stay
  inside the volume, padded with 0 on each side where it leaves it;
* the crop is z-scored with the mean and (unbiased) standard deviation of its voxels > 0
  (torchio ``ZNormalization(masking_method=lambda x: x > 0)``), applied to every voxel of the
  crop, the zero padding included. Where fewer than two voxels are > 0, or they are all equal,
  torchio gives NaN everywhere (no voxel or one voxel: NaN mean or std) or raises
  (``RuntimeError``, std 0); the adapter instead leaves the crop as it is, warns
  (``RuntimeWarning``) and counts it in ``contract_used["znorm_skipped"]``;
* ALL accumulated points are passed (the reference silently used only one: a defect), and the
  mask prompt is the previous low-res logits, all zeros (1×1×32³) at the first step, as the
  authors' inference and training do (never ``masks=None``, which would substitute
  ``no_mask_embed``);
* the prediction goes back to the volume by nearest neighbour, as the authors'
  ``data_postprocess`` (torchio ``Resample`` of the crop's mask to the original image,
  ``nearest``): a voxel of the volume takes the grid voxel nearest to its centre (half-integers
  rounded up, as ITK does). On the "centre" grid, along an axis where it is coarser than the
  volume, the volume's edge voxels can lie more than half a grid voxel outside the grid: there
  the authors take the crop's prediction in its zero padding, so the adapter keeps a rim of one
  grid voxel around the resampled volume (:attr:`SAMMed3DLogits.rim`) for them (the "corner"
  grid always covers the volume); voxels of the crop further outside are dropped, and a voxel
  no crop reached is background. The mapping is exact except at ties (a
  voxel centre exactly halfway between two grid voxels, decided by ITK's floating-point path).

``contract="legacy"`` keeps the adapter's previous behaviour (results of version 1):
``scipy.ndimage.zoom`` resampling (order 1, corner-aligned: index ``i`` ↦ ``i·(r−1)/(n−1)``),
the crop centred on the rounded centroid of the points and shifted to stay inside the volume
(padded after its end with the crop's minimum), z-scored over the whole crop, no clamp, and
``masks=None`` (``no_mask_embed``) at the first step.

Axis order: SAM-Med3D was trained on torchio tensors laid out (x, y, z) (NIfTI voxel order), so
the crop is transposed from canonical (z, y, x) to (x, y, z) before the encoder, point
coordinates are given to the prompt encoder as (x, y, z) crop voxel indices, and the low-res
logits (1×1×32³) the decoder returns are in that (x, y, z) layout too.

``weights="random"`` builds seeded random weights (tests and timing only). The geometry of both
contracts (grids, crops, z-scores) is in :mod:`radioactive.models.sammed3d_grid`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    Capabilities,
    ModelCard,
    NoSlicePredictor,
    Prediction,
    StepTimings,
    check_supported,
)
from radioactive.models.contracts import AUTO, InputContract, modality_key, select_contract
from radioactive.models.sam import build_net, card_for, resolve_weights
from radioactive.models.sammed3d_grid import (  # noqa: F401  (re-exported)
    GRIDS,
    bbox_crop_start,
    crop_start,
    extract_crop,
    grid_coords,
    grid_to_volume,
    grid_voxels,
    isotropic_grid,
    map_index,
    nearest_to_grid,
    overlap,
    resample_isotropic,
    resampled_shape,
    window,
    znorm_positive,
    zscore,
)
from radioactive.prompts.types import Interaction, Point

SAMMED3D_FILE = "sam_med3d_turbo.pth"
#: logit given to resampled voxels no prediction has reached yet
BACKGROUND_LOGIT = -20.0
#: canonical (z, y, x) → network (x, y, z)
NET_AXES = (2, 1, 0)
#: the input contracts an instance can follow (see the module docstring)
CONTRACT_CHOICES = ("authors", "legacy")
LEGACY_CONTRACT = "sammed3d-legacy"
#: the CT clamp of the authors' training loader (Hounsfield units)
CT_CLAMP = (-1000.0, 1000.0)
#: intensity rules (``intensity=`` other than ``"auto"``): name → description
INTENSITY_PRESETS: dict[str, str] = {
    "sammed3d_ct": "clamped to [-1000, 1000] HU before resampling; the 128³ crop z-scored with "
    "the mean and unbiased standard deviation of its voxels > 0",
    "sammed3d_mr": "no clamp; the 128³ crop z-scored with the mean and unbiased standard "
    "deviation of its voxels > 0",
    "crop_zscore": "no clamp; the 128³ crop z-scored over all its voxels (the earlier default)",
}

_SOURCE = (
    "uni-medical/SAM-Med3D utils/infer_utils.py (data_preprocess: Resample, CropOrPad with the "
    "label mask, ZNormalization over x > 0; sam_model_infer: zero low-res mask at the first "
    "click, points in (x, y, z) crop voxels); utils/data_loader.py (Clamp(-1000, 1000) for CT); "
    "train.py (ZNormalization, zero low-res mask at the first click)"
)
_RESAMPLING = (
    "linear, to 1.5 mm isotropic on torchio Resample(1.5)'s grid as of the training data "
    "(torchio <= 0.20.10): ceil(n*s/1.5) voxels per axis, the first voxel's corner on the "
    "volume's first corner (SimpleITK linear; 0 beyond half a voxel outside); option "
    "grid='centre': the grid of torchio >= 0.20.11 (floor(n*s/1.5) voxels, centred)"
)
_CROP = (
    "one 128^3 window placed as torchio CropOrPad(128, mask_name) places it for a mask of the "
    "accumulated points' voxels: centred on their bounding-box centre, not shifted inside the "
    "volume, zero-padded on each side; all points as (x, y, z) crop voxel indices; mask prompt: "
    "the previous low-res logits, all zeros (1x1x32^3) at the first step"
)
_CHANNELS = "1 channel, float32, (1, 1, 128, 128, 128) in (x, y, z) order (torchio voxel order)"
SAMMED3D_CONTRACTS = (
    InputContract(
        name="sammed3d-authors-ct-v1",
        modality="CT",
        intensity="clamped to [-1000, 1000] HU before resampling; the crop (zero padding "
        "included) z-scored with the mean and unbiased standard deviation of its voxels > 0",
        preset="sammed3d_ct",
        resampling=_RESAMPLING,
        crop=_CROP,
        channels=_CHANNELS,
        source=_SOURCE,
    ),
    InputContract(
        name="sammed3d-authors-mr-v1",
        modality="MR",
        intensity="no clamp; the crop (zero padding included) z-scored with the mean and "
        "unbiased standard deviation of its voxels > 0",
        preset="sammed3d_mr",
        resampling=_RESAMPLING,
        crop=_CROP,
        channels=_CHANNELS,
        source=_SOURCE,
    ),
)


@dataclass
class SAMMed3DLogits:
    """What SAM-Med3D feeds back: the decoder's low-res logits (torch, 1×1×L³ in (x, y, z)
    order) of the crop at ``start`` (resampled grid, (z, y, x); may be negative with the
    authors' contract), and the logits of the whole resampled grid (numpy, (z, y, x)) with a
    rim of ``rim`` voxels on each side (1 with the authors' contract: the crop's padding next to
    the volume, where the volume's edge voxels can find their nearest grid voxel; 0 legacy)."""

    low_res: Any
    start: tuple[int, int, int]
    size: int
    grid: npt.NDArray[np.float32]
    rim: int = 0

    @property
    def volume_grid(self) -> npt.NDArray[np.float32]:
        """The logits of the resampled volume (without the rim)."""
        r = self.rim
        return self.grid[r : self.grid.shape[0] - r, r : self.grid.shape[1] - r,
                         r : self.grid.shape[2] - r]  # fmt: skip


class SAMMed3DModel(NoSlicePredictor):
    """SAM-Med3D-turbo as a :class:`~radioactive.models.base.Model` (see the module docstring).

    Args:
        checkpoint: a checkpoint file to use instead of the registry's ``sammed3d_turbo``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        weights: ``"pretrained"`` or ``"random"`` (seeded random weights, no checkpoint).
        target_spacing_mm: isotropic spacing of the model's grid.
        crop: side of the crop (the network's input size).
        contract: ``"authors"`` (the authors' pipeline, see :attr:`contracts`) or ``"legacy"``
            (the adapter's version-1 behaviour).
        intensity: ``"auto"`` (the authors' intensity rule for the volume's modality; the
            modality must then be known) or one of :data:`INTENSITY_PRESETS`
            (``contract="legacy"`` takes only ``"auto"`` or ``"crop_zscore"``).
        grid: the 1.5 mm grid of ``contract="authors"`` (:data:`GRIDS`): ``"corner"`` (torchio
            ≤ 0.20.10, the grid of the model's training data) or ``"centre"`` (torchio ≥
            0.20.11, what the authors' unpinned inference script gets today).
    """

    card = ModelCard(
        name="sammed3d",
        version="2",
        checkpoint=SAMMED3D_FILE,
        checkpoint_sha256=None,
        licence="Apache-2.0",
        training_data="SA-Med3D-140K (SAM-Med3D-turbo: 44 datasets, 143K 3D masks)",
        reference="Wang et al. 2023, SAM-Med3D (arXiv:2310.15161); SAM-Med3D-turbo",
    )
    capabilities = Capabilities(dim=3, prompt_types=frozenset({"point"}), accepts_mask=True)
    checkpoint_name = "sammed3d_turbo"
    #: the authors' input contracts, per modality (see :mod:`radioactive.models.contracts`)
    contracts: ClassVar[tuple[InputContract, ...]] = SAMMED3D_CONTRACTS

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        weights: str = "pretrained",
        target_spacing_mm: float = 1.5,
        crop: int = 128,
        contract: str = "authors",
        intensity: str = AUTO,
        grid: str = "corner",
    ):
        import torch

        from radioactive.models._torch import pick_device, quiet_imports
        from radioactive.models.checkpoints import load_checkpoint_state

        if contract not in CONTRACT_CHOICES:
            raise ValueError(
                f"contract must be one of {', '.join(CONTRACT_CHOICES)}, got {contract!r}"
            )
        if intensity != AUTO and intensity not in INTENSITY_PRESETS:
            raise ValueError(
                f"unknown intensity {intensity!r} for sammed3d; choose 'auto' (the authors' "
                f"contract for the modality) or one of: {', '.join(INTENSITY_PRESETS)}"
            )
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
        if contract == "legacy" and intensity not in (AUTO, "crop_zscore"):
            raise ValueError(
                f"contract='legacy' z-scores the whole crop; intensity {intensity!r} needs "
                "contract='authors'"
            )
        path = resolve_weights(self.checkpoint_name, weights, cache, checkpoint)
        self.card = card_for(type(self).card, self.checkpoint_name, SAMMED3D_FILE, path is None)
        with quiet_imports():
            from medim.models.sam_med3d import build_sam3D_vit_b_ori

        net = build_net(lambda checkpoint=None: build_sam3D_vit_b_ori(pretrained=False))
        self.device = pick_device(device)
        if path is not None:
            state = load_checkpoint_state(path, self.device, self.checkpoint_name)
            if "model_state_dict" in state and isinstance(state["model_state_dict"], dict):
                state = state["model_state_dict"]
            net.load_state_dict(state, strict=True)
        self.net = net.to(self.device).eval()
        if int(self.net.image_encoder.img_size) != crop:
            raise ValueError(f"crop must be {self.net.image_encoder.img_size}, got {crop}")
        self.target_spacing_mm = float(target_spacing_mm)
        self.crop = int(crop)
        self.contract = contract
        self.intensity = intensity
        self.grid = grid
        self._torch = torch
        self.image: npt.NDArray[np.float32] | None = None
        self.spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
        self.contract_used: dict[str, Any] | None = None
        self._preset = "crop_zscore"
        self._resampled: npt.NDArray[np.float32] | None = None
        self._embedding: tuple[tuple[int, int, int], Any] | None = None
        self._points: list[Point] = []

    @staticmethod
    def contract_variant(options: dict[str, Any]) -> str:
        """What the options add to the contract's name: the newer torchio grid gives other
        numbers, so another name (``"+grid:centre"``)."""
        grid = options.get("grid", "corner")
        if options.get("contract", "authors") == "authors" and grid != "corner":
            return f"+grid:{grid}"
        return ""

    # -- Model protocol ----------------------------------------------------------------------

    def prepare(
        self,
        image: npt.NDArray,
        spacing_mm: tuple[float, float, float],
        modality: str | None = None,
    ) -> None:
        """Take a canonical (z, y, x) volume. ``modality`` (``"CT"``, ``"MR"``, ``"MRI T2"``…)
        picks the authors' contract; with ``contract="authors"`` and ``intensity="auto"`` an
        unknown modality raises :class:`~radioactive.models.contracts.UnknownModalityError`."""
        if np.ndim(image) != 3:
            raise ValueError(f"expected a 3D (z, y, x) image, got shape {np.shape(image)}")
        key = modality_key(modality)
        if self.contract == "legacy":
            preset = "crop_zscore"
            used: dict[str, Any] = {"contract": LEGACY_CONTRACT, "intensity": preset}
        elif self.intensity == AUTO:
            c = select_contract(self.card.name, self.contracts, modality)
            preset = c.preset
            used = {"contract": c.name, "intensity": preset}
        else:
            preset = self.intensity
            used = {"contract": f"preset:{preset}", "intensity": preset}
        used["contract"] += self.contract_variant({"contract": self.contract, "grid": self.grid})
        self.image = np.asarray(image, dtype=np.float32)
        self.spacing_mm = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
        self._preset = preset
        self.contract_used = {
            **used,
            "modality": key,
            "geometry": self.contract,
            "grid": "zoom (corner-aligned)" if self.contract == "legacy" else self.grid,
            "first_mask": "zeros" if self.contract == "authors" else "none (no_mask_embed)",
            "znorm_skipped": 0,
        }
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
        if self.contract == "legacy":
            return resampled_shape(self.shape, self.spacing_mm, self.target_spacing_mm)
        return isotropic_grid(self.shape, self.spacing_mm, self.target_spacing_mm, self.grid)[0]

    def resampled(self) -> npt.NDArray[np.float32]:
        """The volume on the isotropic grid, before the crop's normalisation (computed once per
        volume; CT clamped first under the ``sammed3d_ct`` rule)."""
        if self._resampled is not None:
            return self._resampled
        assert self.image is not None
        if self.contract == "legacy":
            from scipy.ndimage import zoom

            factors = [r / n for r, n in zip(self.grid_shape, self.shape, strict=True)]
            out = zoom(self.image, factors, order=1, grid_mode=False)
            if out.shape != self.grid_shape:  # rounding of scipy; never expected
                out = nearest_to_grid(out, self.grid_shape)
        else:
            image = self.image
            if self._preset == "sammed3d_ct":
                image = np.clip(image, *CT_CLAMP)
            out = resample_isotropic(image, self.spacing_mm, self.target_spacing_mm, self.grid)
        self._resampled = np.asarray(out, dtype=np.float32)
        return self._resampled

    def crop_for(self, points: list[Point]) -> tuple[npt.NDArray[np.float64], tuple[int, int, int]]:
        """(N, 3) point voxels on the resampled grid (z, y, x; integers) and the crop start."""
        zyx = np.array([p.zyx for p in points], dtype=float)
        if self.contract == "legacy":
            grid = np.rint(map_index(zyx, self.shape, self.grid_shape))
            return grid, crop_start(grid.mean(axis=0), self.grid_shape, self.crop)
        vox = grid_voxels(zyx, self.shape, self.spacing_mm, self.target_spacing_mm, self.grid)
        return vox.astype(float), bbox_crop_start(vox, self.crop)

    def encoder_input(self, start: tuple[int, int, int]) -> npt.NDArray[np.float32]:
        """The normalised ``crop³`` window at ``start`` in canonical (z, y, x) order (the
        network gets its (x, y, z) transpose)."""
        if self.contract == "legacy":
            return zscore(extract_crop(self.resampled(), start, self.crop))
        crop = window(self.resampled(), start, self.crop, fill=0.0)
        if self._preset == "crop_zscore":
            return zscore(crop)
        # statistics over the network's (x, y, z) layout: torchio's order of summation
        out = znorm_positive(np.ascontiguousarray(crop.transpose(NET_AXES)))
        if out is not None:
            out = out.transpose(NET_AXES)
        if out is None:
            assert self.contract_used is not None
            self.contract_used["znorm_skipped"] += 1
            warnings.warn(
                "sammed3d: fewer than two distinct voxels > 0 in the crop at "
                f"{start}; the z-score over voxels > 0 is undefined, the crop is left as it is",
                RuntimeWarning,
                stacklevel=3,
            )
            return crop
        return out

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
            crop = self.encoder_input(start)
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
        if prev is not None:
            mask_in = self._mask_input(prev, start)
        elif self.contract == "authors":  # the authors' first step: an all-zero low-res mask
            low = size // 4
            mask_in = torch.zeros((1, 1, low, low, low), dtype=torch.float32, device=self.device)
        else:
            mask_in = None  # legacy: no_mask_embed
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

        # the crop's logits onto the grid (and its rim); the rest of the crop is dropped
        rim = self.rim
        gshape = tuple(n + 2 * rim for n in self.grid_shape)
        if prev is not None and prev.grid.shape == gshape and prev.rim == rim:
            grid = prev.grid.copy()
        else:
            grid = np.full(gshape, BACKGROUND_LOGIT, dtype=np.float32)
        src, dst = overlap(tuple(s + rim for s in start), size, gshape)
        grid[src] = crop_logits[dst]
        mask = self.to_volume(grid > 0)
        timings.decoder_s = time.perf_counter() - t1
        logits = SAMMed3DLogits(
            low_res=low_res.detach(), start=start, size=size, grid=grid, rim=rim
        )
        return Prediction(mask=mask, logits={0: logits}, timings=timings)

    @property
    def rim(self) -> int:
        """Grid voxels kept on each side of the resampled volume (see the module docstring)."""
        return 0 if self.contract == "legacy" else 1

    def to_volume(self, grid_mask: npt.NDArray) -> npt.NDArray[np.bool_]:
        """A mask on the resampled grid (with its rim) → the volume (nearest neighbour)."""
        if self.contract == "legacy":
            return nearest_to_grid(grid_mask, self.shape).astype(bool)
        return grid_to_volume(
            grid_mask, self.shape, self.spacing_mm, self.target_spacing_mm, self.rim, self.grid
        )

    def _mask_input(self, prev: SAMMed3DLogits, start: tuple[int, int, int]) -> Any:
        """The previous low-res logits as mask prompt: as returned when the crop is the same,
        else the previous logits of the resampled volume in the new crop (``BACKGROUND_LOGIT``
        where no prediction reached and outside the volume, the rim included), downsampled to
        the low-res size."""
        torch = self._torch
        if prev.start == start and prev.size == self.crop:
            return prev.low_res.to(self.device)
        crop = window(prev.volume_grid, start, self.crop, fill=BACKGROUND_LOGIT)
        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(NET_AXES)))[None, None]
        low = tuple(prev.low_res.shape[-3:])
        return torch.nn.functional.interpolate(
            x.to(self.device), size=low, mode="trilinear", align_corners=False
        )
