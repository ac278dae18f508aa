"""Weight-free baselines: honest reference points that any learned model should beat.

Both are :class:`~radioactive.models.slicewise.SliceBackend`\\ s, so they run through the same
slice-wise engine (slice selection, prompt accumulation) as the learned 2D models:

* ``filled_box`` — the prompt box itself, filled: what a box prompt alone is worth.
* ``random_walker`` — Grady's random walker (scikit-image) seeded from the prompts on a crop
  around them: what classical interactive segmentation does with the same clicks and boxes.

>>> import numpy as np
>>> from radioactive.models.slicewise import SlicePrompts
>>> logits, low = FilledBoxBackend().decode(None, SlicePrompts(box=(1, 1, 3, 4)), (4, 5))
>>> (logits > 0).astype(int)
array([[0, 0, 0, 0, 0],
       [0, 1, 1, 1, 0],
       [0, 1, 1, 1, 0],
       [0, 0, 0, 0, 0]])
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.contracts import InputContract
from radioactive.models.intensity import normalize
from radioactive.models.slicewise import SlicePrompts

#: logit given to pixels outside the random walker's crop (probability ≈ 4.5e-5)
OUTSIDE_LOGIT = -10.0
_P_EPS = 1e-4


class FilledBoxBackend:
    """The filled prompt box: logit +1 inside the half-open box, −1 outside.

    Takes boxes only (2D boxes, and 3D boxes through the engine); no encoder, no weights.
    """

    card = ModelCard(
        name="filled_box",
        version="1",
        checkpoint=None,
        checkpoint_sha256=None,
        licence="Apache-2.0",
        training_data="none (weight-free)",
        reference="the filled prompt box",
    )
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}), accepts_mask=False)
    contracts = (
        InputContract(
            name="filled-box-v1", modality="any", intensity="not used", preset="raw",
            resampling="none", crop="the prompt box", channels="none",
            source="radioactive (weight-free baseline)",
        ),
    )  # fmt: skip
    contract_used: ClassVar[dict[str, Any]] = {"contract": "filled-box-v1", "intensity": "raw"}

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        return np.asarray(image, dtype=np.float32)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        return [None] * len(slices)

    def embedding_nbytes(self, embedding: Any) -> int:
        return 0

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        if prompts.box is None:
            raise ValueError("filled_box needs a box on every prompted slice; it got only points")
        y0, x0, y1, x1 = prompts.box
        logits = np.full(shape, -1.0, dtype=np.float32)
        logits[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 1.0
        return logits, None


def normalize_percentiles(image: npt.NDArray) -> npt.NDArray[np.float32]:
    """Clip to the 0.5–99.5 percentiles of all voxels (correct for CT's negative values) and
    scale the whole volume to [0, 1]; a constant image becomes all zeros."""
    return normalize(image, "percentile", out_max=1.0, per_slice=False)


def _clip_range(lo: int, hi: int, size: int) -> tuple[int, int]:
    return max(0, lo), min(size, hi)


def crop_window(
    prompts: SlicePrompts,
    shape: tuple[int, int],
    *,
    box_margin_frac: float = 0.1,
    box_margin_px: int = 5,
    point_margin_px: int = 20,
) -> tuple[int, int, int, int]:
    """The half-open (y0, x0, y1, x1) window the random walker runs on.

    With a box: the box grown on each side by ``box_margin_frac`` of its size plus
    ``box_margin_px``, extended to hold every point. Without: the points' bounding box grown by
    ``point_margin_px``. Always clipped to the slice.
    """
    if prompts.empty:
        raise ValueError("no prompts on this slice")
    pts = np.asarray(prompts.points, dtype=np.int64).reshape(-1, 2)
    if prompts.box is not None:
        y0, x0, y1, x1 = prompts.box
        my = round(box_margin_frac * (y1 - y0)) + box_margin_px
        mx = round(box_margin_frac * (x1 - x0)) + box_margin_px
        y0, x0, y1, x1 = y0 - my, x0 - mx, y1 + my, x1 + mx
        if len(pts):
            y0, x0 = min(y0, int(pts[:, 0].min())), min(x0, int(pts[:, 1].min()))
            y1, x1 = max(y1, int(pts[:, 0].max()) + 1), max(x1, int(pts[:, 1].max()) + 1)
    else:
        m = point_margin_px
        y0, x0 = int(pts[:, 0].min()) - m, int(pts[:, 1].min()) - m
        y1, x1 = int(pts[:, 0].max()) + 1 + m, int(pts[:, 1].max()) + 1 + m
    y0, y1 = _clip_range(y0, y1, shape[0])
    x0, x1 = _clip_range(x0, x1, shape[1])
    if y0 >= y1 or x0 >= x1:
        raise ValueError(f"the prompts lie outside the slice of shape {shape}")
    return y0, x0, y1, x1


def seed_labels(
    prompts: SlicePrompts, window: tuple[int, int, int, int], *, centre_radius_frac: float = 0.1
) -> npt.NDArray[np.int32]:
    """Random-walker seeds on the crop ``window``: 0 unknown, 1 foreground, 2 background.

    Crop pixels outside the box → 2. A box without a positive point inside it seeds its centre as
    foreground (a disk of radius ``centre_radius_frac`` × the box's smaller side, at least one
    pixel). Negative points → 2. If nothing says where the background is (positive points only,
    or a box covering the whole crop), the crop border → 2. Positive points → 1 last, so a user's
    click always wins.
    """
    wy0, wx0, wy1, wx1 = window
    seeds = np.zeros((wy1 - wy0, wx1 - wx0), dtype=np.int32)
    pts = np.asarray(prompts.points, dtype=np.int64).reshape(-1, 2) - (wy0, wx0)
    labels = np.asarray(prompts.labels, dtype=np.int64).reshape(-1)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < seeds.shape[0])
    inside &= (pts[:, 1] >= 0) & (pts[:, 1] < seeds.shape[1])
    pos = pts[inside & (labels > 0)]
    neg = pts[inside & (labels <= 0)]
    if prompts.box is not None:
        by0, bx0, by1, bx1 = prompts.box
        by0, bx0, by1, bx1 = by0 - wy0, bx0 - wx0, by1 - wy0, bx1 - wx0
        outside = np.ones(seeds.shape, dtype=bool)
        outside[max(0, by0) : max(0, by1), max(0, bx0) : max(0, bx1)] = False
        seeds[outside] = 2
        in_box = (pos[:, 0] >= by0) & (pos[:, 0] < by1) & (pos[:, 1] >= bx0) & (pos[:, 1] < bx1)
        if not in_box.any():
            cy, cx = (by0 + by1 - 1) / 2, (bx0 + bx1 - 1) / 2
            r = max(1.0, centre_radius_frac * min(by1 - by0, bx1 - bx0))
            yy, xx = np.ogrid[: seeds.shape[0], : seeds.shape[1]]
            seeds[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    seeds[neg[:, 0], neg[:, 1]] = 2
    if not (seeds == 2).any():
        seeds[0, :] = seeds[-1, :] = 2
        seeds[:, 0] = seeds[:, -1] = 2
    seeds[pos[:, 0], pos[:, 1]] = 1
    return seeds


def random_walker_probability(
    image: npt.NDArray[np.float32],
    seeds: npt.NDArray[np.int32],
    *,
    beta: float = 130.0,
    mode: Literal["bf", "cg_j"] = "bf",
) -> npt.NDArray[np.float64]:
    """Probability that a walker from each pixel first reaches a label-1 seed (seeds 1 and 2).

    A crop without foreground seeds gives 0, one without unknown pixels gives the seeds
    themselves. A constant crop (no edges) is solved as plain diffusion.
    """
    from skimage.segmentation import random_walker

    if not (seeds == 1).any():
        return np.zeros(seeds.shape, dtype=np.float64)
    if not (seeds == 2).any():
        return np.ones(seeds.shape, dtype=np.float64)
    if not (seeds == 0).any():
        return (seeds == 1).astype(np.float64)
    data = np.asarray(image, dtype=np.float64)
    if not float(data.std()) > 0:
        # uniform edge weights: a checkerboard has the same gradient everywhere
        yy, xx = np.indices(data.shape)
        data = data + 1e-6 * ((yy + xx) % 2)
    prob = random_walker(data, seeds, beta=beta, mode=mode, return_full_prob=True)
    return np.asarray(prob[0], dtype=np.float64)


class RandomWalkerBackend:
    """Grady's random walker on a crop around the prompts of each slice.

    Args:
        beta: edge sensitivity (scikit-image's ``beta``; its gradients are scaled by the crop's
            standard deviation, so the value is intensity-independent).
        mode: ``"bf"`` (direct sparse solve: exact, fast on crops up to a few hundred pixels a
            side) or ``"cg_j"`` (Jacobi-preconditioned conjugate gradient, for large crops).
        smoothing_sigma_px: in-plane Gaussian smoothing of each slice before the walk (0: none).
            On noisy images, smoothing with a larger ``beta`` is more robust (e.g. 1 px with
            ``beta=2000``). The default ``beta=5000`` was chosen on the demo suite's lesions,
            spleen and kidney with box prompts (mean Dice 0.33 at scikit-image's 130, 0.72 at
            5000); it is a baseline, not a tuned method.
        box_margin_frac, box_margin_px, point_margin_px: the crop (see :func:`crop_window`).

    Seeds are described in :func:`seed_labels`. Logits are ``log(p / (1 − p))`` of the foreground
    probability inside the crop (``p`` clipped to [1e-4, 1 − 1e-4]) and ``OUTSIDE_LOGIT`` outside.
    """

    card = ModelCard(
        name="random_walker",
        version="1",
        checkpoint=None,
        checkpoint_sha256=None,
        licence="Apache-2.0 (scikit-image: BSD-3-Clause)",
        training_data="none (weight-free)",
        reference="L. Grady, Random Walks for Image Segmentation, IEEE TPAMI 28(11), 2006",
    )
    contracts = (
        InputContract(
            name="random-walker-v1", modality="any",
            intensity="volume clipped to its 0.5-99.5 percentiles over all voxels, "
            "scaled to [0, 1]",
            preset="percentile (volume scaling)", resampling="none", crop="the whole slice",
            channels="1 channel, float",
            source="radioactive (weight-free baseline, scikit-image random_walker)",
        ),
    )  # fmt: skip
    contract_used: ClassVar[dict[str, Any]] = {
        "contract": "random-walker-v1", "intensity": "percentile"
    }  # fmt: skip
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=False
    )

    def __init__(
        self,
        beta: float = 5000.0,
        mode: Literal["bf", "cg_j"] = "bf",
        *,
        smoothing_sigma_px: float = 0.0,
        box_margin_frac: float = 0.1,
        box_margin_px: int = 5,
        point_margin_px: int = 20,
    ):
        if mode not in ("bf", "cg_j"):
            raise ValueError(f"mode must be 'bf' or 'cg_j', got {mode!r}")
        if not beta > 0:
            raise ValueError(f"beta must be positive, got {beta}")
        self.beta = float(beta)
        self.mode: Literal["bf", "cg_j"] = mode
        if smoothing_sigma_px < 0:
            raise ValueError(f"smoothing_sigma_px must be >= 0, got {smoothing_sigma_px}")
        self.smoothing_sigma_px = float(smoothing_sigma_px)
        self.box_margin_frac = float(box_margin_frac)
        self.box_margin_px = int(box_margin_px)
        self.point_margin_px = int(point_margin_px)
        self.card = ModelCard(
            name="random_walker",
            version="1",
            checkpoint=None,
            checkpoint_sha256=None,
            licence="Apache-2.0 (scikit-image: BSD-3-Clause)",
            training_data="none (weight-free)",
            reference="L. Grady, Random Walks for Image Segmentation, IEEE TPAMI 28(11), 2006; "
            f"scikit-image random_walker (beta={self.beta:g}, mode={mode}, "
            f"smoothing_sigma_px={self.smoothing_sigma_px:g})",
        )

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        return normalize_percentiles(image)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        """The normalised slices themselves (copies), smoothed if asked."""
        if self.smoothing_sigma_px > 0:
            from scipy.ndimage import gaussian_filter

            return [
                gaussian_filter(np.asarray(s, dtype=np.float32), self.smoothing_sigma_px)
                for s in slices
            ]
        return [np.array(s, dtype=np.float32, copy=True) for s in slices]

    def embedding_nbytes(self, embedding: Any) -> int:
        return int(np.asarray(embedding).nbytes)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        image = np.asarray(embedding, dtype=np.float32)
        window = crop_window(
            prompts,
            shape,
            box_margin_frac=self.box_margin_frac,
            box_margin_px=self.box_margin_px,
            point_margin_px=self.point_margin_px,
        )
        y0, x0, y1, x1 = window
        seeds = seed_labels(prompts, window)
        prob = random_walker_probability(image[y0:y1, x0:x1], seeds, beta=self.beta, mode=self.mode)
        p = np.clip(prob, _P_EPS, 1 - _P_EPS)
        logits = np.full(shape, OUTSIDE_LOGIT, dtype=np.float32)
        logits[y0:y1, x0:x1] = np.log(p / (1 - p))
        return logits, None
