"""Prompt types and the interaction that groups one step's prompts with its cost.

All coordinates are integer voxel indices of the canonical (z, y, x) array; boxes are half-open
(``lo`` inclusive, ``hi`` exclusive). Every prompt is a frozen dataclass that converts to and from
plain JSON (``to_dict`` / ``prompt_from_dict``) so trajectories can be stored and replayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union

import numpy as np
import numpy.typing as npt

Zyx = tuple[int, int, int]
Yx = tuple[int, int]


def _zyx(v: Iterable[Any]) -> Zyx:
    a, b, c = (int(x) for x in v)
    return a, b, c


def _yx(v: Iterable[Any]) -> Yx:
    a, b = (int(x) for x in v)
    return a, b


@dataclass(frozen=True)
class Point:
    """A click at voxel ``zyx``; ``positive`` marks foreground."""

    zyx: Zyx
    positive: bool = True
    kind: ClassVar[str] = "point"

    def __post_init__(self) -> None:
        object.__setattr__(self, "zyx", _zyx(self.zyx))
        object.__setattr__(self, "positive", bool(self.positive))

    @property
    def z(self) -> int:
        return self.zyx[0]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "zyx": list(self.zyx), "positive": self.positive}


@dataclass(frozen=True)
class Box2D:
    """An axial box on slice ``z``: rows ``lo[0] <= y < hi[0]``, columns ``lo[1] <= x < hi[1]``."""

    z: int
    lo: Yx
    hi: Yx
    kind: ClassVar[str] = "box2d"

    def __post_init__(self) -> None:
        object.__setattr__(self, "z", int(self.z))
        object.__setattr__(self, "lo", _yx(self.lo))
        object.__setattr__(self, "hi", _yx(self.hi))
        if not (self.lo[0] < self.hi[0] and self.lo[1] < self.hi[1]):
            raise ValueError(f"empty box: lo={self.lo} hi={self.hi} (half-open, lo < hi needed)")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "z": self.z, "lo": list(self.lo), "hi": list(self.hi)}


@dataclass(frozen=True)
class Box3D:
    """A 3D box: ``lo[i] <= index_i < hi[i]`` along (z, y, x)."""

    lo: Zyx
    hi: Zyx
    kind: ClassVar[str] = "box3d"

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", _zyx(self.lo))
        object.__setattr__(self, "hi", _zyx(self.hi))
        if not all(a < b for a, b in zip(self.lo, self.hi, strict=True)):
            raise ValueError(f"empty box: lo={self.lo} hi={self.hi} (half-open, lo < hi needed)")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "lo": list(self.lo), "hi": list(self.hi)}


@dataclass(frozen=True)
class Scribble:
    """A stroke given as the voxels it covers (in drawing order where known)."""

    voxels: tuple[Zyx, ...]
    positive: bool = True
    kind: ClassVar[str] = "scribble"

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxels", tuple(_zyx(v) for v in self.voxels))
        object.__setattr__(self, "positive", bool(self.positive))
        if not self.voxels:
            raise ValueError("a scribble needs at least one voxel")

    def array(self) -> npt.NDArray[np.int64]:
        """The voxels as an (N, 3) integer array."""
        return np.asarray(self.voxels, dtype=np.int64).reshape(-1, 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "voxels": [list(v) for v in self.voxels],
            "positive": self.positive,
        }


@dataclass(frozen=True)
class Lasso:
    """A closed polygon drawn on axial slice ``z``; vertices are (y, x) pixel coordinates."""

    z: int
    polygon: tuple[tuple[float, float], ...]
    positive: bool = True
    kind: ClassVar[str] = "lasso"

    def __post_init__(self) -> None:
        object.__setattr__(self, "z", int(self.z))
        object.__setattr__(self, "polygon", tuple((float(y), float(x)) for y, x in self.polygon))
        if len(self.polygon) < 3:
            raise ValueError("a lasso needs at least three vertices")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "z": self.z,
            "polygon": [list(p) for p in self.polygon],
            "positive": self.positive,
        }


@dataclass(frozen=True)
class ZLimit:
    """The user marks the lowest (``upper=False``) or highest slice ``z`` of the object."""

    z: int
    upper: bool
    kind: ClassVar[str] = "zlimit"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "z": int(self.z), "upper": bool(self.upper)}


@dataclass(frozen=True, eq=False)
class MaskPrompt:
    """Previous low-resolution logits fed back to a model (never charged to the user).

    Only the shape is serialised; the logits themselves belong to the prediction of the step.
    """

    logits: npt.NDArray[np.floating] = field(repr=False)
    kind: ClassVar[str] = "mask"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "shape": list(np.shape(self.logits))}


Prompt = Union[Point, Box2D, Box3D, Scribble, Lasso, ZLimit, MaskPrompt]  # noqa: UP007

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
    """

    prompts: tuple[Prompt, ...]
    user_prompts: tuple[Prompt, ...]
    dof: int
    seconds: float
    source: str
    realism: Realism = field(default_factory=Realism)
    keep_previous: bool = True
    slices: tuple[int, ...] = ()

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
        )


PromptKind = Literal["point", "box2d", "box3d", "scribble", "lasso", "zlimit", "mask"]
