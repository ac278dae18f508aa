"""The prompts of the CVPR 2025 interactive challenge, as its organisers' scripts make them.

The challenge ("Foundation Models for Interactive 3D Biomedical Image Segmentation", evaluation
repository ``JunMa11/CVPR-MedSegFMCompetition``) starts every class of a case with a 2D box and its
z range (``get_boxes.py``), then corrects it with five clicks at the centre of the largest error
(``CVPR25_iter_eval.py``). This module re-expresses both rules on the canonical (z, y, x) array:

* :func:`organisers_box` — the box dictionary of ``get_boxes.py``: ``z_min`` and ``z_max`` of the
  target, ``z_mid`` the middle one of its *distinct* foreground slices (the element at index
  ``n // 2`` of their sorted list: the upper one of the two middles for an even count), and the
  **inclusive** bounding box of the target on ``z_mid``, each side moved outwards by
  ``int(shift · W / 256)`` voxels along x and ``int(shift · H / 256)`` along y (one ``shift``
  drawn uniformly from 0…5 for the box) and clipped to the slice;
* :class:`Cvpr25Box` (``cvpr25_box``) — that box as a prompt: a :class:`Box2D` on ``z_mid`` (half
  open: the inclusive maximum + 1) and the two :class:`ZLimit` of the range, the shift drawn from
  the unit's generator. A model with a slice predictor (the slice-wise 2D models) gets the box
  propagated over the z range, slice by slice, as ``box_propagation`` does; a 3D model gets the
  box and the range as they are;
* :class:`NoPrompt` (``no_prompt``) — the challenge's cases without a box: no initial prompt, the
  first step is scored as an empty prediction (the organisers score it 0) and the clicks follow;
* :func:`organisers_click` — the click of ``CVPR25_iter_eval.py`` in the largest 26-connected
  error component: the Euclidean distance transform (voxel units) of the component's bounding box
  padded by 25 % of its size per axis (at least one voxel; above 60 million voxels the padded box
  is max-pooled 2× before the transform and the distances repeated back), the maximum taken over
  the component, and among equal maxima the one that ``numpy.random.seed(42)`` then
  ``numpy.random.choice`` picks in raster order. The simulated user
  ``center_of_largest_error(mode='cvpr25')`` places it.

Where the organisers' script writes coordinates, it writes them in the array order of its volume
``(D, H, W)``: clicks are ``[z, y, x]`` voxel indices (although its documentation says x, y, z),
boxes name x and y explicitly. :mod:`radioactive.models.cvpr25_container` writes both that way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.prompts.base import (
    BoolArray,
    Place,
    Prompter,
    SlicePredictor,
    check_target,
    register_prompter,
)
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Box2D, Interaction, Prompt, ZLimit

__all__ = [
    "BOX_KEYS",
    "MAX_SHIFT",
    "ROI_LIMIT_VOXELS",
    "Cvpr25Box",
    "NoPrompt",
    "box_prompts",
    "organisers_box",
    "organisers_click",
]

#: the largest box shift of ``get_boxes.py`` (``randint(0, 6)``: 0…5), in units of 1/256 of the
#: slice size
MAX_SHIFT = 5

#: the keys of one class's box in the challenge's ``boxes`` list, in the organisers' order
BOX_KEYS = ("z_min", "z_max", "z_mid", "z_mid_x_min", "z_mid_y_min", "z_mid_x_max", "z_mid_y_max")

#: above this many voxels the padded error box is max-pooled 2× before the distance transform
ROI_LIMIT_VOXELS = 60_000_000


def organisers_box(target: npt.ArrayLike, shift: int) -> dict[str, int]:
    """The challenge's box of a non-empty boolean (z, y, x) target for a drawn ``shift`` (0…5).

    >>> t = np.zeros((5, 8, 8), bool); t[1:4, 2:5, 3:6] = True
    >>> organisers_box(t, 0)["z_mid"], organisers_box(t, 0)["z_mid_x_max"]
    (2, 5)
    """
    mask = np.asarray(target, dtype=bool)
    zs = np.flatnonzero(mask.any(axis=(1, 2)))  # distinct foreground slices, sorted
    if zs.size == 0:
        raise ValueError("the target is empty: it has no box")
    z_mid = int(zs[len(zs) // 2])
    ys, xs = np.nonzero(mask[z_mid])
    height, width = mask.shape[1:]
    shift_x = int(shift * width / 256)
    shift_y = int(shift * height / 256)
    return {
        "z_min": int(zs[0]),
        "z_max": int(zs[-1]),
        "z_mid": z_mid,
        "z_mid_x_min": max(0, int(xs.min()) - shift_x),
        "z_mid_y_min": max(0, int(ys.min()) - shift_y),
        "z_mid_x_max": min(width - 1, int(xs.max()) + shift_x),
        "z_mid_y_max": min(height - 1, int(ys.max()) + shift_y),
    }


def box_prompts(box: dict[str, Any]) -> tuple[Box2D, ZLimit, ZLimit]:
    """The prompts of a challenge box dictionary: the half-open :class:`Box2D` on ``z_mid`` and
    the lower and upper :class:`ZLimit`."""
    return (
        Box2D(
            int(box["z_mid"]),
            (int(box["z_mid_y_min"]), int(box["z_mid_x_min"])),
            (int(box["z_mid_y_max"]) + 1, int(box["z_mid_x_max"]) + 1),
        ),
        ZLimit(int(box["z_min"]), upper=False),
        ZLimit(int(box["z_max"]), upper=True),
    )


@register_prompter
@dataclasses.dataclass(frozen=True)
class Cvpr25Box(Prompter):
    """The CVPR 2025 challenge's first prompt: a 2D box on the middle foreground slice and the
    target's z range (see the module docstring); ``max_shift=0`` gives the tight box."""

    name: ClassVar[str] = "cvpr25_box"
    dim: ClassVar[int | None] = None  # for 2D and 3D models
    emits: ClassVar[frozenset[str]] = frozenset({"box2d"})
    paper_label: ClassVar[str] = "CVPR25 box (2D box on the middle slice + z range)"
    cost_formula: ClassVar[str] = "4 (box 2 + 2 z-limits)"
    description: ClassVar[str] = (
        "the challenge's box: middle foreground slice, jittered 0-5 px per 256, with the z range"
    )
    #: propagates the box over the z range with the model's slice predictor when it has one
    uses_model: ClassVar[bool] = True
    accepts_placement: ClassVar[bool] = True

    max_shift: int = MAX_SHIFT

    def __post_init__(self) -> None:
        if not 0 <= int(self.max_shift) <= 255:
            raise ValueError(f"max_shift must be in 0..255, got {self.max_shift}")

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        shift = int(rng.integers(0, int(self.max_shift) + 1)) if self.max_shift else 0
        box, low, high = box_prompts(organisers_box(target, shift))
        if place is not None:  # a human draws the box; the z range stays as given
            (placed,) = place([box])
            assert isinstance(placed, Box2D)
            box = placed
        user: list[Prompt] = [box, low, high]
        if predict is None:
            return make_interaction(user, user, target, self.source, effort=self.effort)
        from radioactive.prompts import geometry as geo
        from radioactive.prompts.derive import propagate

        def next_prompt(nz: int, pred: BoolArray) -> Prompt:
            return Box2D(nz, *geo.tight_box_2d(pred))

        by_slice = propagate(predict, box.z, [box], (low.z, high.z), next_prompt)
        prompts = [p for z in sorted(by_slice) for p in by_slice[z]]
        return make_interaction(prompts, user, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class NoPrompt(Prompter):
    """No initial prompt (the challenge's cases without a box): the first step predicts nothing
    and the simulated user's clicks follow."""

    name: ClassVar[str] = "no_prompt"
    dim: ClassVar[int | None] = None  # for 2D and 3D models
    emits: ClassVar[frozenset[str]] = frozenset()
    paper_label: ClassVar[str] = "CVPR25 without a box"
    cost_formula: ClassVar[str] = "0"
    description: ClassVar[str] = "no initial prompt; the first step is an empty prediction"

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        return make_interaction([], [], target, self.source, effort=self.effort)


def _pooled_distances(padded: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """The organisers' transform of a padded box above :data:`ROI_LIMIT_VOXELS`: 2× max-pooled
    (the last block of an odd axis padded with 0), transformed, each distance repeated 2×."""
    from scipy.ndimage import distance_transform_edt
    from skimage.measure import block_reduce

    pooled = block_reduce(padded, block_size=(2, 2, 2), func=np.max)
    dist = distance_transform_edt(pooled)
    return np.asarray(dist.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2))


def organisers_click(component: npt.ArrayLike) -> tuple[int, int, int]:
    """The click of ``CVPR25_iter_eval.py`` in an error component given cropped to its bounding
    box (boolean (z, y, x)); the voxel index within that crop (see the module docstring)."""
    from scipy.ndimage import distance_transform_edt

    comp = np.asarray(component, dtype=bool)
    if not comp.any():
        raise ValueError("the error component is empty")
    shape = np.asarray(comp.shape)
    pad = np.maximum((shape * 0.25).astype(int), 1)
    padded = np.zeros(tuple(shape + 2 * pad), dtype=np.uint8)
    inner = tuple(slice(int(p), int(p + s)) for p, s in zip(pad, shape, strict=True))
    padded[inner] = comp
    if padded.size > ROI_LIMIT_VOXELS:
        dist = _pooled_distances(padded)[inner]
    else:
        dist = distance_transform_edt(padded)[inner]
    dist = dist * comp
    if not dist.any():  # a tiny error lost to the pooling: any voxel of the component
        dist = comp.astype(np.float64)
    ties = np.argwhere(dist == dist.max())
    pick = np.random.RandomState(42).choice(len(ties))  # the organisers' fixed seed
    z, y, x = (int(v) for v in ties[pick])
    return z, y, x
