"""Human-like users: noise, slips and laziness around any prompter or simulated user.

Every prompter and user of the benchmark is an oracle: its click lands on the mathematically best
voxel, its box is tight. People are not. These wrappers make an oracle human-like, drawing only
from the unit's generator (after the wrapped prompter or user has drawn), with every parameter in
the spec, so in the unit's identity:

* ``noisy(base=PROMPTER, point_sd_mm, box_sd_mm, p_miss, p_flip, clip)`` — the prompts a user
  places for a static prompter: all of them for one that places every prompt
  (``points_per_slice``, ``box_per_slice``, ``center_points_3d``, ``box_3d``…); the placed ones
  for a prompter that derives the others from them (point and box interpolation, point and box
  propagation, the per-slice boxes of a 3D box, the CVPR 2025 challenge's box), which then
  derives its prompts from what the human placed: interpolation between the moved key points or
  boxes, propagation from the moved seed points or box;
* ``noisy_user(base=USER, …)`` — the clicks of a simulated user's corrections;
* ``lazy(base=USER, min_error_fraction)`` — a user who stops correcting once the error
  (false negatives + false positives) is below that fraction of the target's voxels.

The noise, per prompt, in the order the prompts were placed:

* a **point** is missed (left out) with probability ``p_miss``; else its position moves by a
  Gaussian offset of standard deviation ``point_sd_mm`` along y and x (in voxels: divided by the
  case's spacing, rounded, kept in the image; a click lands on the slice the user looks at, so z
  does not move); then its label flips with probability ``p_flip``. With
  ``clip=True`` the offset is drawn again (up to 20 times) until a positive click lies in the
  target and a negative one outside it; after 20 misses the click stays where the oracle put it;
* a **box** (2D or 3D) moves each of its corners by a Gaussian offset of ``box_sd_mm`` per axis
  (rounded, kept in the image, at least one voxel wide);
* other prompts (z-limits, scribbles, lassos, mask prompts) are kept.

Costs are those of the prompts actually placed (a missed click costs nothing). With every
parameter 0 a wrapper gives its base's prompts exactly. Distances are in mm with the spacing of
the case (the session passes it); without one, in voxels.

Versions: 2 keeps clicks on their slice (version 1 also moved them along z) and places the prompts
of interpolating and propagating prompters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.prompts.base import (
    BoolArray,
    Prompter,
    SimulatedUser,
    SlicePredictor,
    check_target,
    get_prompter,
    get_user,
    register_prompter,
    register_user,
)
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Box2D, Box3D, Interaction, Point, Prompt

__all__ = ["LazyUser", "NoisyPrompter", "NoisyUser", "perturb"]

_REDRAWS = 20


def _check_noise(point_sd_mm: float, box_sd_mm: float, p_miss: float, p_flip: float) -> None:
    if point_sd_mm < 0 or box_sd_mm < 0:
        raise ValueError("point_sd_mm and box_sd_mm must be >= 0")
    if not (0 <= p_miss <= 1 and 0 <= p_flip <= 1):
        raise ValueError("p_miss and p_flip must be probabilities in [0, 1]")


def _offset(rng: np.random.Generator, sd_vox: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.rint(rng.normal(0.0, 1.0, sd_vox.size) * sd_vox).astype(np.int64)


def _point(
    p: Point, target: BoolArray, rng: np.random.Generator, sd_vox: npt.NDArray[np.float64],
    p_flip: float, clip: bool,
) -> Point:  # fmt: skip
    shape = np.asarray(target.shape)
    origin = np.asarray(p.zyx, dtype=np.int64)
    zyx = origin
    if sd_vox.any():
        for _ in range(_REDRAWS if clip else 1):
            moved = np.clip(origin + _offset(rng, sd_vox), 0, shape - 1)
            if not clip or bool(target[tuple(moved)]) == p.positive:
                zyx = moved
                break
    positive = p.positive if not p_flip or rng.random() >= p_flip else not p.positive
    return Point(tuple(int(c) for c in zyx), positive)  # type: ignore[arg-type]


def _corners(
    lo: Sequence[int], hi: Sequence[int], limits: Sequence[int], rng: np.random.Generator,
    sd_vox: npt.NDArray[np.float64],
) -> tuple[tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    a = np.asarray(lo, dtype=np.int64) + _offset(rng, sd_vox)
    b = np.asarray(hi, dtype=np.int64) + _offset(rng, sd_vox)
    top = np.asarray(limits, dtype=np.int64)
    a = np.clip(a, 0, top - 1)
    b = np.clip(np.maximum(b, a + 1), 1, top)
    return tuple(int(v) for v in a), tuple(int(v) for v in b)


def perturb(
    prompts: Sequence[Prompt],
    target: BoolArray,
    rng: np.random.Generator,
    spacing_mm: Sequence[float] | None,
    *,
    point_sd_mm: float = 0.0,
    box_sd_mm: float = 0.0,
    p_miss: float = 0.0,
    p_flip: float = 0.0,
    clip: bool = True,
) -> list[Prompt]:
    """The prompts as a human would place them (see the module docstring)."""
    spacing = np.asarray(spacing_mm if spacing_mm is not None else (1.0, 1.0, 1.0), dtype=float)
    point_sd = point_sd_mm / spacing
    point_sd[0] = 0.0  # a click lands on the slice the user looks at
    box_sd = box_sd_mm / spacing
    out: list[Prompt] = []
    for p in prompts:
        if isinstance(p, Point):
            if p_miss and rng.random() < p_miss:
                continue
            out.append(_point(p, target, rng, point_sd, p_flip, clip))
        elif isinstance(p, Box2D) and box_sd_mm:
            lo, hi = _corners(p.lo, p.hi, target.shape[1:], rng, box_sd[1:])
            out.append(Box2D(p.z, lo, hi))  # type: ignore[arg-type]
        elif isinstance(p, Box3D) and box_sd_mm:
            lo, hi = _corners(p.lo, p.hi, target.shape, rng, box_sd)
            out.append(Box3D(lo, hi))  # type: ignore[arg-type]
        else:
            out.append(p)
    return out


@dataclasses.dataclass(frozen=True)
class _Noise:
    point_sd_mm: float = 0.0
    box_sd_mm: float = 0.0
    p_miss: float = 0.0
    p_flip: float = 0.0
    clip: bool = True

    def _noise(self) -> dict[str, Any]:
        return {"point_sd_mm": self.point_sd_mm, "box_sd_mm": self.box_sd_mm,
                "p_miss": self.p_miss, "p_flip": self.p_flip, "clip": self.clip}  # fmt: skip


class _WrapsUser:
    """What a user wrapper takes from the user it wraps: its prompt kinds, and its source after
    the wrapper's own."""

    base: str
    spec: str
    version: ClassVar[str]

    def _inner(self) -> SimulatedUser:
        return get_user(self.base)

    def prompt_kinds(self) -> frozenset[str]:
        return self._inner().prompt_kinds()

    @property
    def source(self) -> str:
        return f"{self.spec}@{self.version}/{self._inner().source}"


@register_prompter
@dataclasses.dataclass(frozen=True)
class NoisyPrompter(Prompter, _Noise):
    """A static prompter's prompts placed by a human-like user (see the module docstring)."""

    name: ClassVar[str] = "noisy"
    dim: ClassVar[int | None] = None
    paper_label: ClassVar[str] = "human-like prompts (noise, missed and flipped clicks)"
    cost_formula: ClassVar[str] = "the base's, for the prompts placed"
    description: ClassVar[str] = "a prompter's prompts with mm noise, missed and flipped clicks"
    version: ClassVar[str] = "2"
    #: the session passes the case's spacing to ``initial``
    wants_spacing: ClassVar[bool] = True

    base: str = "center_point_per_slice"

    def __post_init__(self) -> None:
        _check_noise(self.point_sd_mm, self.box_sd_mm, self.p_miss, self.p_flip)
        inner = get_prompter(self.base)
        if inner.name == "noisy" or (
            getattr(inner, "uses_model", False) and not getattr(inner, "accepts_placement", False)
        ):
            raise ValueError(
                f"noisy wraps a static prompter, not {self.base!r} (a wrapper, or a prompter "
                "that consults the model without taking a human's placement)"
            )
        object.__setattr__(self, "base", inner.spec)
        # a base that needs or uses the model: so does its human-like version
        object.__setattr__(self, "needs_model", bool(getattr(inner, "needs_model", False)))
        object.__setattr__(self, "uses_model", bool(getattr(inner, "uses_model", False)))
        object.__setattr__(self, "dim", getattr(inner, "dim", None))

    def prompt_kinds(self) -> frozenset[str]:
        return get_prompter(self.base).prompt_kinds()

    @property
    def source(self) -> str:
        return f"{self.spec}@{self.version}/{get_prompter(self.base).source}"

    def initial(
        self,
        target: BoolArray,
        rng: np.random.Generator,
        predict: SlicePredictor | None = None,
        *,
        spacing_mm: tuple[float, float, float] | None = None,
    ) -> Interaction:
        target = check_target(target)
        base = get_prompter(self.base)

        def place(prompts: list[Prompt]) -> list[Prompt]:
            return perturb(prompts, target, rng, spacing_mm, **self._noise())

        if getattr(base, "accepts_placement", False):
            inner = base.initial(target, rng, predict, place=place)  # type: ignore[call-arg]
            return make_interaction(inner.prompts, inner.user_prompts, target, self.source,
                                    effort=self.effort,
                                    boxes_clipped=inner.realism.boxes_clipped)  # fmt: skip
        inner = base.initial(target, rng, predict)
        if tuple(inner.prompts) != tuple(inner.user_prompts):
            raise ValueError(
                f"noisy cannot place the prompts of {self.base}: it derives prompts from the "
                "ones placed without accepting a placement (accepts_placement)"
            )
        placed = place(list(inner.prompts))
        return make_interaction(placed, placed, target, self.source, effort=self.effort)


@register_user
@dataclasses.dataclass(frozen=True)
class NoisyUser(_WrapsUser, SimulatedUser, _Noise):
    """A simulated user's corrections placed by a human-like user (see the module docstring)."""

    name: ClassVar[str] = "noisy_user"
    paper_label: ClassVar[str] = "human-like corrections (noise, missed and flipped clicks)"
    cost_formula: ClassVar[str] = "the base's, for the prompts placed"
    description: ClassVar[str] = "a user's clicks with mm noise, missed and flipped clicks"
    version: ClassVar[str] = "2"

    base: str = "center_of_largest_error"

    def __post_init__(self) -> None:
        _check_noise(self.point_sd_mm, self.box_sd_mm, self.p_miss, self.p_flip)
        object.__setattr__(self, "base", get_user(self.base).spec)

    def correct(
        self,
        target: BoolArray,
        prediction: BoolArray,
        history: Sequence[Interaction],
        rng: np.random.Generator,
        *,
        spacing_mm: tuple[float, float, float] | None = None,
    ) -> Interaction:
        inner = self._inner().correct(target, prediction, history, rng, spacing_mm=spacing_mm)
        placed = perturb(inner.prompts, target, rng, spacing_mm, **self._noise())
        return make_interaction(placed, placed, target, self.source, effort=self.effort,
                                keep_previous=inner.keep_previous)  # fmt: skip


@register_user
@dataclasses.dataclass(frozen=True)
class LazyUser(_WrapsUser, SimulatedUser):
    """A user who stops correcting once the error (false negatives + false positives) is below
    ``min_error_fraction`` of the target's voxels, and corrects as ``base`` otherwise."""

    name: ClassVar[str] = "lazy"
    paper_label: ClassVar[str] = "lazy user (stops below an error level)"
    cost_formula: ClassVar[str] = "the base's while correcting, then 0"
    description: ClassVar[str] = "stops correcting once the error is a small share of the target"

    base: str = "center_of_largest_error"
    min_error_fraction: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.min_error_fraction <= 1:
            raise ValueError("min_error_fraction must be in [0, 1]")
        object.__setattr__(self, "base", get_user(self.base).spec)

    def correct(
        self,
        target: BoolArray,
        prediction: BoolArray,
        history: Sequence[Interaction],
        rng: np.random.Generator,
        *,
        spacing_mm: tuple[float, float, float] | None = None,
    ) -> Interaction:
        t = np.asarray(target, dtype=bool)
        error = int(np.count_nonzero(t != np.asarray(prediction, dtype=bool)))
        if error < self.min_error_fraction * max(int(t.sum()), 1):
            return make_interaction([], [], t, self.source, effort=self.effort)
        return self._inner().correct(target, prediction, history, rng, spacing_mm=spacing_mm)
