"""The static prompters of PROTOCOL §3 (3D models): random foreground points in the volume,
points on the target's interpolated centre line, and the target's 3D bounding box.

They share the cropping helpers of :mod:`radioactive.prompts.static`, which imports this module
at its end: the 3D prompters are registered after the 2D ones and can be imported from either
module.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from radioactive.prompts import geometry as geo
from radioactive.prompts.base import (
    BoolArray,
    Prompter,
    SlicePredictor,
    check_target,
    register_prompter,
)
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.static import _box, _crop, _key_points, _points_from
from radioactive.prompts.types import Box3D, Interaction, Point


@register_prompter
@dataclasses.dataclass(frozen=True)
class Points3D(Prompter):
    """``n`` foreground voxels drawn uniformly over the whole 3D target."""

    n: int = 1
    name: ClassVar[str] = "points_3d"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "nPPV (nPoints3DVolume)"
    cost_formula: ClassVar[str] = "n"
    description: ClassVar[str] = "n random foreground points in the volume"
    dim: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        sub, off = _crop(target)
        zyx = geo.sample_foreground(sub, self.n, rng, (0, 0, 0), sub.shape)
        points = _points_from(zyx, off, True)
        return make_interaction(points, points, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class CenterPoints3D(Prompter):
    """``n`` points on the target's centre line: the 5-key-slice point interpolation line,
    restricted (if ``crop_size`` is given, in canonical voxels) to a crop around the line's
    centroid; points at evenly spaced line indices excluding both ends (n=1: the middle), sorted
    along the canonical z axis.

    Line points outside the target (a gap between slices, a curved object) are dropped before
    choosing, so a positive click never lands outside the target; the reference can place one
    there. The reference also sorts along a model-dependent axis; we sort along z."""

    n: int = 1
    crop_size: tuple[int, int, int] | None = None
    name: ClassVar[str] = "center_points_3d"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "n center PPV (nPointsFromCenterCropped3DVolume)"
    cost_formula: ClassVar[str] = "n"
    description: ClassVar[str] = "n points on the interpolated centre line"
    dim: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.crop_size is not None:
            object.__setattr__(self, "crop_size", tuple(int(c) for c in self.crop_size))

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        sub, off = _crop(target)
        keys, centres = _key_points(sub, 5)
        zs, yx = geo.interpolate_along_z(keys, centres)
        line = np.column_stack([zs, np.rint(yx)]).astype(np.int64) + np.asarray(off)
        if self.crop_size is not None:
            centre = line.mean(axis=0)
            half = np.asarray(self.crop_size, dtype=float) / 2.0
            inside = np.all(np.abs(line - centre) <= half, axis=1)
            line = line[inside] if inside.any() else line[[len(line) // 2]]
        inside = target[line[:, 0], line[:, 1], line[:, 2]]
        if inside.any():
            line = line[inside]
        else:  # the whole line misses the target: use its middle, snapped to the nearest voxel
            fg = np.argwhere(sub) + np.asarray(off)
            mid = line[len(line) // 2]
            line = fg[[int(np.argmin(((fg - mid) ** 2).sum(axis=1)))]]
        idx = np.rint(np.linspace(0, len(line) - 1, self.n + 2)[1:-1]).astype(np.int64)
        chosen = line[np.sort(idx)]
        chosen = chosen[np.argsort(chosen[:, 0], kind="stable")]
        points = [Point(tuple(int(c) for c in row), True) for row in chosen]  # type: ignore[arg-type]
        return make_interaction(points, points, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class Box3DPrompter(Prompter):
    """The target's 3D bounding box (optionally jittered by up to ``jitter`` voxels per face)."""

    jitter: int = 0
    name: ClassVar[str] = "box_3d"
    emits: ClassVar[frozenset[str]] = frozenset({"box3d"})
    paper_label: ClassVar[str] = "3D Box (Box3DVolume)"
    cost_formula: ClassVar[str] = "3"
    description: ClassVar[str] = "the 3D bounding box"
    dim: ClassVar[int] = 3

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        box = _box(target)
        lo, hi, clipped = geo.jitter_box(box[0], box[1], self.jitter, rng, target.shape)
        b = Box3D(lo, hi)  # type: ignore[arg-type]
        return make_interaction(
            [b], [b], target, self.source, effort=self.effort, boxes_clipped=int(clipped)
        )
