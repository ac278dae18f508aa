"""Prompt types and the interaction that groups one step's prompts with its cost.

All coordinates are integer voxel indices of the canonical (z, y, x) array; boxes are half-open
(``lo`` inclusive, ``hi`` exclusive). Every prompt is a frozen dataclass that converts to and from
plain JSON (``to_dict`` / ``prompt_from_dict``) so trajectories can be stored and replayed.

Every prompt also knows its own geometry, the one definition that cost accounting, the slice-wise
engine, the simulated users and the report's overlays use (``docs/prompts.md``, "Prompt
geometry"):

* ``kind`` — its :class:`PromptKind`;
* ``slices()`` — the axial slices it lies on, sorted (a 3D box: its whole z range; a scribble: the
  slices of its voxels; a z-limit: its slice; a mask prompt: none);
* ``touches(z)`` — whether it lies on axial slice ``z``;
* ``centre()`` — its (z, y, x) centre in voxel coordinates (boxes: the centre of their voxels;
  scribbles: the mean of their voxels; lassos: the mean of their vertices); a z-limit and a mask
  prompt have no position (``kind.located`` is false) and raise ``ValueError``;
* ``inside(mask)`` — whether it lies inside the shape ``mask``: every voxel it marks is in the
  array and foreground (a point: its voxel; a box: every voxel of the box; a scribble: every
  voxel; a lasso: every pixel of its filled polygon; a z-limit: its slice holds foreground);
* ``within(shape)`` — whether it lies inside an image of that shape (the support check).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import numpy as np
import numpy.typing as npt

Zyx = tuple[int, int, int]
Yx = tuple[int, int]
Centre = tuple[float, float, float]
BoolArray = npt.NDArray[np.bool_]


class PromptKind(str, enum.Enum):
    """What a prompt is; equal to (and hashed as) its string value, e.g. ``"box2d"``."""

    POINT = "point"
    BOX2D = "box2d"
    BOX3D = "box3d"
    SCRIBBLE = "scribble"
    LASSO = "lasso"
    ZLIMIT = "zlimit"
    MASK = "mask"

    def __str__(self) -> str:  # "point", not "PromptKind.POINT"
        return self.value

    @property
    def located(self) -> bool:
        """Whether prompts of this kind have a position (z-limits and mask prompts do not)."""
        return self not in (PromptKind.ZLIMIT, PromptKind.MASK)


def _zyx(v: Iterable[Any]) -> Zyx:
    a, b, c = (int(x) for x in v)
    return a, b, c


def _yx(v: Iterable[Any]) -> Yx:
    a, b = (int(x) for x in v)
    return a, b


def _in_image(zyx: npt.ArrayLike, shape: tuple[int, ...]) -> bool:
    """Whether every (z, y, x) row of ``zyx`` indexes a voxel of an array of ``shape``."""
    arr = np.asarray(zyx, dtype=np.int64).reshape(-1, 3)
    return bool(np.all(arr >= 0) and np.all(arr < np.asarray(shape[:3], dtype=np.int64)))


def _box_inside(mask: npt.ArrayLike, lo: Zyx, hi: Zyx) -> bool:
    m = np.asarray(mask)
    if not _in_image([lo, [h - 1 for h in hi]], m.shape):
        return False
    return bool(np.all(m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]))


class _Geometry:
    """Shared parts of the prompt geometry (see the module docstring)."""

    kind: ClassVar[PromptKind]

    def slices(self) -> tuple[int, ...]:
        raise NotImplementedError

    def touches(self, z: int) -> bool:
        """Whether the prompt lies on axial slice ``z``."""
        return int(z) in self.slices()

    def centre(self) -> Centre:
        raise ValueError(f"a {self.kind} prompt has no position (it has no centre)")


@dataclass(frozen=True)
class Point(_Geometry):
    """A click at voxel ``zyx``; ``positive`` marks foreground."""

    zyx: Zyx
    positive: bool = True
    kind: ClassVar[PromptKind] = PromptKind.POINT

    def __post_init__(self) -> None:
        object.__setattr__(self, "zyx", _zyx(self.zyx))
        object.__setattr__(self, "positive", bool(self.positive))

    @property
    def z(self) -> int:
        return self.zyx[0]

    def slices(self) -> tuple[int, ...]:
        return (self.zyx[0],)

    def centre(self) -> Centre:
        z, y, x = self.zyx
        return float(z), float(y), float(x)

    def within(self, shape: tuple[int, ...]) -> bool:
        return _in_image(self.zyx, shape)

    def inside(self, mask: npt.ArrayLike) -> bool:
        m = np.asarray(mask)
        return self.within(m.shape) and bool(m[self.zyx])

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind.value, "zyx": list(self.zyx), "positive": self.positive}


@dataclass(frozen=True)
class Box2D(_Geometry):
    """An axial box on slice ``z``: rows ``lo[0] <= y < hi[0]``, columns ``lo[1] <= x < hi[1]``."""

    z: int
    lo: Yx
    hi: Yx
    kind: ClassVar[PromptKind] = PromptKind.BOX2D

    def __post_init__(self) -> None:
        object.__setattr__(self, "z", int(self.z))
        object.__setattr__(self, "lo", _yx(self.lo))
        object.__setattr__(self, "hi", _yx(self.hi))
        if not (self.lo[0] < self.hi[0] and self.lo[1] < self.hi[1]):
            raise ValueError(f"empty box: lo={self.lo} hi={self.hi} (half-open, lo < hi needed)")

    def slices(self) -> tuple[int, ...]:
        return (self.z,)

    def centre(self) -> Centre:
        return (
            float(self.z),
            (self.lo[0] + self.hi[0] - 1) / 2.0,
            (self.lo[1] + self.hi[1] - 1) / 2.0,
        )

    def within(self, shape: tuple[int, ...]) -> bool:
        lo, hi = (self.z, *self.lo), (self.z, self.hi[0] - 1, self.hi[1] - 1)
        return _in_image([lo, hi], shape)

    def inside(self, mask: npt.ArrayLike) -> bool:
        return _box_inside(mask, (self.z, *self.lo), (self.z + 1, *self.hi))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind.value, "z": self.z, "lo": list(self.lo), "hi": list(self.hi)}


@dataclass(frozen=True)
class Box3D(_Geometry):
    """A 3D box: ``lo[i] <= index_i < hi[i]`` along (z, y, x)."""

    lo: Zyx
    hi: Zyx
    kind: ClassVar[PromptKind] = PromptKind.BOX3D

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", _zyx(self.lo))
        object.__setattr__(self, "hi", _zyx(self.hi))
        if not all(a < b for a, b in zip(self.lo, self.hi, strict=True)):
            raise ValueError(f"empty box: lo={self.lo} hi={self.hi} (half-open, lo < hi needed)")

    def slices(self) -> tuple[int, ...]:
        return tuple(range(self.lo[0], self.hi[0]))

    def touches(self, z: int) -> bool:
        return self.lo[0] <= int(z) < self.hi[0]

    def centre(self) -> Centre:
        c = [(a + b - 1) / 2.0 for a, b in zip(self.lo, self.hi, strict=True)]
        return c[0], c[1], c[2]

    def within(self, shape: tuple[int, ...]) -> bool:
        return _in_image([self.lo, [h - 1 for h in self.hi]], shape)

    def inside(self, mask: npt.ArrayLike) -> bool:
        return _box_inside(mask, self.lo, self.hi)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind.value, "lo": list(self.lo), "hi": list(self.hi)}


@dataclass(frozen=True)
class Scribble(_Geometry):
    """A stroke given as the voxels it covers (in drawing order where known)."""

    voxels: tuple[Zyx, ...]
    positive: bool = True
    kind: ClassVar[PromptKind] = PromptKind.SCRIBBLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxels", tuple(_zyx(v) for v in self.voxels))
        object.__setattr__(self, "positive", bool(self.positive))
        if not self.voxels:
            raise ValueError("a scribble needs at least one voxel")

    def array(self) -> npt.NDArray[np.int64]:
        """The voxels as an (N, 3) integer array."""
        return np.asarray(self.voxels, dtype=np.int64).reshape(-1, 3)

    def slices(self) -> tuple[int, ...]:
        return tuple(sorted({v[0] for v in self.voxels}))

    def touches(self, z: int) -> bool:
        return any(v[0] == int(z) for v in self.voxels)

    def centre(self) -> Centre:
        c = self.array().mean(axis=0)
        return float(c[0]), float(c[1]), float(c[2])

    def within(self, shape: tuple[int, ...]) -> bool:
        return _in_image(self.array(), shape)

    def inside(self, mask: npt.ArrayLike) -> bool:
        m = np.asarray(mask)
        vox = self.array()
        return self.within(m.shape) and bool(np.all(m[vox[:, 0], vox[:, 1], vox[:, 2]]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "voxels": [list(v) for v in self.voxels],
            "positive": self.positive,
        }


@dataclass(frozen=True)
class Lasso(_Geometry):
    """A closed polygon drawn on axial slice ``z``; vertices are (y, x) pixel coordinates."""

    z: int
    polygon: tuple[tuple[float, float], ...]
    positive: bool = True
    kind: ClassVar[PromptKind] = PromptKind.LASSO

    def __post_init__(self) -> None:
        object.__setattr__(self, "z", int(self.z))
        object.__setattr__(self, "polygon", tuple((float(y), float(x)) for y, x in self.polygon))
        if len(self.polygon) < 3:
            raise ValueError("a lasso needs at least three vertices")

    def slices(self) -> tuple[int, ...]:
        return (self.z,)

    def centre(self) -> Centre:
        yx = np.asarray(self.polygon, dtype=float).mean(axis=0)
        return float(self.z), float(yx[0]), float(yx[1])

    def filled(self, plane: tuple[int, int]) -> BoolArray:
        """The filled polygon on a (Y, X) slice (pixels whose centre lies inside it)."""
        from skimage.draw import polygon

        out = np.zeros(plane, dtype=bool)
        ys = [p[0] for p in self.polygon]
        xs = [p[1] for p in self.polygon]
        rr, cc = polygon(ys, xs, shape=plane)
        out[rr, cc] = True
        return out

    def within(self, shape: tuple[int, ...]) -> bool:
        if not 0 <= self.z < shape[0]:
            return False
        yx = np.asarray(self.polygon, dtype=float)
        return bool(np.all(yx >= 0) and np.all(yx <= np.asarray(shape[1:3], dtype=float) - 1))

    def inside(self, mask: npt.ArrayLike) -> bool:
        m = np.asarray(mask)
        if not self.within(m.shape):
            return False
        fill = self.filled((m.shape[1], m.shape[2]))
        return bool(fill.any() and np.all(m[self.z][fill]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "z": self.z,
            "polygon": [list(p) for p in self.polygon],
            "positive": self.positive,
        }


@dataclass(frozen=True)
class ZLimit(_Geometry):
    """The user marks the lowest (``upper=False``) or highest slice ``z`` of the object."""

    z: int
    upper: bool
    kind: ClassVar[PromptKind] = PromptKind.ZLIMIT

    def slices(self) -> tuple[int, ...]:
        return (int(self.z),)

    def within(self, shape: tuple[int, ...]) -> bool:
        return 0 <= int(self.z) < shape[0]

    def inside(self, mask: npt.ArrayLike) -> bool:
        m = np.asarray(mask)
        return self.within(m.shape) and bool(np.any(m[int(self.z)]))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind.value, "z": int(self.z), "upper": bool(self.upper)}


@dataclass(frozen=True, eq=False)
class MaskPrompt(_Geometry):
    """Previous low-resolution logits fed back to a model (never charged to the user).

    Only the shape is serialised; the logits themselves belong to the prediction of the step. It
    lies on no slice and in no shape.
    """

    logits: npt.NDArray[np.floating] = field(repr=False)
    kind: ClassVar[PromptKind] = PromptKind.MASK

    def slices(self) -> tuple[int, ...]:
        return ()

    def within(self, shape: tuple[int, ...]) -> bool:
        return True

    def inside(self, mask: npt.ArrayLike) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind.value, "shape": list(np.shape(self.logits))}


Prompt = Union[Point, Box2D, Box3D, Scribble, Lasso, ZLimit, MaskPrompt]  # noqa: UP007


def check_within(prompts: Iterable[Prompt], shape: tuple[int, ...], who: str) -> None:
    """Raise ``ValueError`` if one of ``prompts`` lies outside an image of ``shape`` (the support
    check); ``who`` names the checker in the message, e.g. ``"model 'sam'"``."""
    for p in prompts:
        if not p.within(shape):
            text = repr(p)
            text = text if len(text) <= 160 else text[:157] + "..."
            raise ValueError(f"{who}: a {p.kind} prompt lies outside the volume {shape}: {text}")


def slices_of(prompts: Iterable[Prompt]) -> tuple[int, ...]:
    """Sorted axial slices that any of ``prompts`` lies on."""
    zs: set[int] = set()
    for p in prompts:
        zs.update(p.slices())
    return tuple(sorted(zs))


_DECODERS: dict[str, Any] = {
    "point": lambda d: Point(d["zyx"], d.get("positive", True)),
    "box2d": lambda d: Box2D(d["z"], d["lo"], d["hi"]),
    "box3d": lambda d: Box3D(d["lo"], d["hi"]),
    "scribble": lambda d: Scribble(tuple(d["voxels"]), d.get("positive", True)),
    "lasso": lambda d: Lasso(
        d["z"], tuple(tuple(p) for p in d["polygon"]), d.get("positive", True)
    ),
    "zlimit": lambda d: ZLimit(d["z"], d["upper"]),
}


def prompt_from_dict(d: Mapping[str, Any]) -> Prompt:
    """Inverse of ``prompt.to_dict()`` (mask prompts carry no data and cannot be rebuilt)."""
    try:
        decode = _DECODERS[d["type"]]
    except KeyError:
        raise ValueError(f"unknown or non-rebuildable prompt type: {d.get('type')!r}") from None
    prompt: Prompt = decode(d)
    return prompt


@dataclass(frozen=True)
class Realism:
    """How plausible the prompts of one interaction are for a human user.

    Attributes:
        positives_outside: positive points / scribble voxels that lie outside the target.
        negatives_inside: negative points / scribble voxels that lie inside the target.
        boxes_clipped: boxes that had to be clipped to the image (e.g. after jitter).
        derived_outside: points the user did not place (interpolated or propagated) that lie
            outside the target, e.g. interpolation across a curved structure.
        derived_total: number of such derived points.
    """

    positives_outside: int = 0
    negatives_inside: int = 0
    boxes_clipped: int = 0
    derived_outside: int = 0
    derived_total: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "positives_outside": self.positives_outside,
            "negatives_inside": self.negatives_inside,
            "boxes_clipped": self.boxes_clipped,
            "derived_outside": self.derived_outside,
            "derived_total": self.derived_total,
        }


@dataclass(frozen=True)
class Interaction:
    """The prompts of one step and what they cost.

    Attributes:
        prompts: everything sent to the model at this step.
        user_prompts: what the simulated user actually placed (the cost is computed from these);
            prompts derived from them (interpolated, propagated, expanded per slice) are free.
        dof: degrees of freedom of ``user_prompts`` (PROTOCOL §5).
        seconds: estimated human time of ``user_prompts`` under the effort model.
        source: registry name and version of the prompter or user that made it.
        realism: plausibility counts (see :class:`Realism`).
        keep_previous: whether earlier prompts stay in effect ("WithPrev") or only this step's.
        slices: the axial slices this interaction touches (a model re-infers only these).
        review_slices: slices the user scrolls through to check the result (the target's z
            extent when prompts were placed; part of ``seconds``).
    """

    prompts: tuple[Prompt, ...]
    user_prompts: tuple[Prompt, ...]
    dof: int
    seconds: float
    source: str
    realism: Realism = field(default_factory=Realism)
    keep_previous: bool = True
    slices: tuple[int, ...] = ()
    review_slices: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.prompts

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": [p.to_dict() for p in self.prompts],
            "user_prompts": [p.to_dict() for p in self.user_prompts],
            "dof": self.dof,
            "seconds": self.seconds,
            "source": self.source,
            "realism": self.realism.to_dict(),
            "keep_previous": self.keep_previous,
            "slices": list(self.slices),
            "review_slices": self.review_slices,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interaction:
        return cls(
            prompts=tuple(prompt_from_dict(p) for p in d["prompts"] if p["type"] != "mask"),
            user_prompts=tuple(prompt_from_dict(p) for p in d["user_prompts"]),
            dof=int(d["dof"]),
            seconds=float(d["seconds"]),
            source=str(d["source"]),
            realism=Realism(**d.get("realism", {})),
            keep_previous=bool(d.get("keep_previous", True)),
            slices=tuple(int(z) for z in d.get("slices", ())),
            review_slices=int(d.get("review_slices", 0)),
        )
