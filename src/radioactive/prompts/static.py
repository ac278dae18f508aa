"""The static prompters of PROTOCOL §2 (2D models, slice by slice). Those of §3 (3D models) are in
:mod:`radioactive.prompts.static3d`, registered after these and importable from here too.

"X" in the cost formulas is the number of axial slices that contain the target. Costs are not
typed here: :func:`~radioactive.prompts.cost.make_interaction` computes them from the prompts the
user placed (``user_prompts``); interpolated or propagated prompts are derived and free.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from radioactive.prompts import geometry as geo
from radioactive.prompts.base import (
    EMPTY_TARGET,
    BoolArray,
    Place,
    Prompter,
    SlicePredictor,
    check_target,
    register_prompter,
)
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.derive import interpolate_points, propagate
from radioactive.prompts.types import Box2D, Box3D, Interaction, Point, Prompt, ZLimit


def _box(target: BoolArray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The target's bounding box; raises ``ValueError`` for an empty target."""
    box = geo.bbox(target)
    if box is None:
        raise ValueError(EMPTY_TARGET)
    return box


def _crop(target: BoolArray) -> tuple[BoolArray, tuple[int, int, int]]:
    """The target cropped to its bounding box, and the crop's offset."""
    lo, hi = _box(target)
    sub = target[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    return sub, (lo[0], lo[1], lo[2])


def _points_from(zyx: np.ndarray, offset: tuple[int, int, int], positive: bool) -> list[Point]:
    off = np.asarray(offset, dtype=np.int64)
    return [Point(tuple(int(c) for c in row + off), positive) for row in np.asarray(zyx)]  # type: ignore[arg-type]


def _need(predict: SlicePredictor | None, name: str) -> SlicePredictor:
    if predict is None:
        raise ValueError(
            f"prompter {name!r} needs the model in the loop: pass predict=<slice predictor>"
        )
    return predict


# --------------------------------------------------------------------------------------------
# points on slices


@register_prompter
@dataclasses.dataclass(frozen=True)
class PointsPerSlice(Prompter):
    """On every foreground slice, ``n`` foreground pixels drawn uniformly without replacement
    (if fewer exist: all of them plus draws with replacement)."""

    n: int = 1
    name: ClassVar[str] = "points_per_slice"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "nPPS (nFGPointsPer2DSlice)"
    cost_formula: ClassVar[str] = "n·X"
    description: ClassVar[str] = "n random foreground points on every slice with target"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        sub, off = _crop(target)
        points: list[Point] = []
        lo, hi = geo.slice_boxes(sub)
        for z in geo.fg_slices(sub):
            yx = geo.sample_foreground(sub[z], self.n, rng, lo[z], hi[z])
            points += _points_from(np.column_stack([np.full(len(yx), z), yx]), off, True)
        return make_interaction(points, points, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class AlternatingPointsPerSlice(Prompter):
    """On every foreground slice, ⌈n/2⌉ positive foreground pixels and ⌊n/2⌋ negative pixels from
    the ring just outside the object (dilate by a disk of radius 2 → A, dilate A by a disk of
    radius 3 → B, ring = B ∖ A)."""

    n: int = 2
    name: ClassVar[str] = "alternating_points_per_slice"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "n±PPS (AlternatingNPointsPer2DSlice)"
    cost_formula: ClassVar[str] = "n·X"
    description: ClassVar[str] = "positive and negative (ring) points on every slice with target"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        n_pos, n_neg = (self.n + 1) // 2, self.n // 2
        margin = 2 + 3 + 1
        box = _box(target)
        lo = [max(0, a - margin) for a in box[0]]
        hi = [min(s, b + margin) for s, b in zip(target.shape, box[1], strict=True)]
        lo[0], hi[0] = box[0][0], box[1][0]
        sub = target[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        off = (lo[0], lo[1], lo[2])
        points: list[Point] = []
        lo_s, hi_s = geo.slice_boxes(sub)
        for z in geo.fg_slices(sub):
            yx = geo.sample_foreground(sub[z], n_pos, rng, lo_s[z], hi_s[z])
            points += _points_from(np.column_stack([np.full(len(yx), z), yx]), off, True)
            if n_neg:
                neg = geo.sample_ring(sub[z], n_neg, rng)
                points += _points_from(np.column_stack([np.full(len(neg), z), neg]), off, False)
        return make_interaction(points, points, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class CenterPointPerSlice(Prompter):
    """On every foreground slice, the centre of mass of its largest component, snapped into it."""

    name: ClassVar[str] = "center_point_per_slice"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "1 center PPS (CenterPointPrompter)"
    cost_formula: ClassVar[str] = "X"
    description: ClassVar[str] = "one central point on every slice with target"

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        sub, off = _crop(target)
        points = []
        for z in geo.fg_slices(sub):
            y, x = geo.largest_cc_point(sub[z], "com")
            points.append(Point((z + off[0], y + off[1], x + off[2]), True))
        return make_interaction(points, points, target, self.source, effort=self.effort)


def _key_points(sub: BoolArray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Key slices and, on each, the bbox centre of the largest component snapped into it (the
    earlier ``key_rounding="nearest"`` rules, in crop coordinates)."""
    keys = geo.key_slices(geo.fg_slices(sub), k, "nearest")
    centres = []
    for z in keys:
        centres.append(geo.largest_cc_point(sub[z], "bbox"))
    return keys, np.asarray(centres, dtype=float)


def _reference_key_points(
    sub: BoolArray, off: tuple[int, int, int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Key slices and key points by the reference implementation's rules (``key_rounding="floor"``),
    in image coordinates: key slices from the absolute z range, the rounded bbox centre of the
    largest component, snapped (see :func:`~radioactive.prompts.geometry.rounded_bbox_point`)."""
    keys = geo.key_slices(geo.fg_slices(sub) + off[0], k, "floor")
    centres = [geo.rounded_bbox_point(sub[z - off[0]], (off[1], off[2])) for z in keys]
    return keys, np.asarray(centres, dtype=float)


@register_prompter
@dataclasses.dataclass(frozen=True)
class PointInterpolation(Prompter):
    """``k`` key points (bbox centre of the largest component on slices evenly spread over the
    target's z range), linearly interpolated to one positive point on every slice in between.

    Interpolated points may fall outside a curved object; they are counted in
    ``interaction.realism.derived_outside``.

    ``key_rounding="floor"`` (default) follows the reference implementation's integer conventions,
    with which the paper's numbers were made: key positions rounded down (9.5 → 9) from the
    absolute z range; the bbox centre rounded half to even in image coordinates, then snapped to
    the component pixel nearest to that rounded centre (component size ties broken as the
    reference does). ``"nearest"`` is the earlier variant: key positions rounded half to even
    (9.5 → 10), snapping measured from the unrounded centre, the lowest-labelled component on
    ties. Interpolated coordinates are rounded half to even in both."""

    k: int = 5
    key_rounding: str = "floor"
    name: ClassVar[str] = "point_interpolation"
    version: ClassVar[str] = "2"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "kP Inter (kPointInterpolation)"
    cost_formula: ClassVar[str] = "k (k = min(k, X))"
    description: ClassVar[str] = "k key points, interpolated along z"
    accepts_placement: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        geo.check_key_rounding(self.key_rounding)

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        sub, off = _crop(target)
        if self.key_rounding == "floor":  # image coordinates throughout, as the reference
            keys, centres = _reference_key_points(sub, off, self.k)
            shift = np.zeros(3, dtype=np.int64)
        else:  # the earlier variant, computed in crop coordinates
            keys, centres = _key_points(sub, self.k)
            shift = np.asarray(off, dtype=np.int64)
        key_zyx = np.column_stack([keys, centres]).astype(np.int64) + shift
        user: list[Prompt] = [Point((int(z), int(y), int(x)), True) for z, y, x in key_zyx]
        if place is not None:
            user = place(user)
            return make_interaction(interpolate_points(user), user, target, self.source,
                                    effort=self.effort)  # fmt: skip
        zs, yx = geo.interpolate_along_z(keys, centres)
        zyx = np.column_stack([zs, np.rint(yx)]).astype(np.int64) + shift
        points = [Point((int(z), int(y), int(x)), True) for z, y, x in zyx]
        return make_interaction(points, user, target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class PointPropagation(Prompter):
    """``seeds`` random foreground points on the median foreground slice; then, upwards and
    downwards separately, the model predicts the current slice and the bbox centre of the largest
    predicted component (snapped into it) becomes the single prompt of the next slice, until the
    prediction is empty or the target's z extent (given by the user: two z-limits) is reached."""

    seeds: int = 5
    name: ClassVar[str] = "point_propagation"
    emits: ClassVar[frozenset[str]] = frozenset({"point"})
    paper_label: ClassVar[str] = "5P Prop (PointPropagation)"
    cost_formula: ClassVar[str] = "seeds + 2 (z-limits)"
    description: ClassVar[str] = "seed points on the median slice, propagated by the model"
    accepts_placement: ClassVar[bool] = True
    needs_model: ClassVar[bool] = True

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        predict = _need(predict, self.name)
        fg = geo.fg_slices(target)
        z0 = geo.median_slice(target)
        pix = np.argwhere(target[z0])
        chosen = pix[geo.sample_indices(len(pix), self.seeds, rng)]
        seeds: list[Prompt] = [Point((z0, int(y), int(x)), True) for y, x in chosen]
        if place is not None:
            seeds = place(seeds)

        def next_prompt(nz: int, pred: BoolArray) -> Prompt:
            return Point((nz, *geo.largest_cc_point(pred, "bbox")), True)

        prompts = list(seeds)
        if any(isinstance(p, Point) and p.positive for p in seeds):  # a human may miss them all
            by_slice = propagate(predict, z0, seeds, (int(fg[0]), int(fg[-1])), next_prompt)
            prompts = [p for z in sorted(by_slice) for p in by_slice[z]]
        user: list[Prompt] = [*seeds, ZLimit(int(fg[0]), False), ZLimit(int(fg[-1]), True)]
        return make_interaction(prompts, user, target, self.source, effort=self.effort)


# --------------------------------------------------------------------------------------------
# boxes on slices


def _slice_boxes(sub: BoolArray, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tight (half-open) boxes of the given slices as (len(zs), 2) lo and hi arrays."""
    lo, hi = [], []
    for z in zs:
        a, b = geo.tight_box_2d(sub[z])
        lo.append(a)
        hi.append(b)
    return np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)


@register_prompter
@dataclasses.dataclass(frozen=True)
class BoxPerSlice(Prompter):
    """The tight box of every foreground slice (optionally jittered by up to ``jitter`` pixels)."""

    jitter: int = 0
    name: ClassVar[str] = "box_per_slice"
    emits: ClassVar[frozenset[str]] = frozenset({"box2d"})
    paper_label: ClassVar[str] = "Box PS (BoxPer2DSlice)"
    cost_formula: ClassVar[str] = "2·X"
    description: ClassVar[str] = "a tight 2D box on every slice with target"

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        target = check_target(target)
        sub, off = _crop(target)
        zs = geo.fg_slices(sub)
        lo, hi = _slice_boxes(sub, zs)
        boxes, clipped = [], 0
        plane = target.shape[1:]
        for z, a, b in zip(zs, lo + off[1:], hi + off[1:], strict=True):
            a2, b2, c = geo.jitter_box(a, b, self.jitter, rng, plane)
            clipped += c
            boxes.append(Box2D(int(z) + off[0], a2, b2))  # type: ignore[arg-type]
        return make_interaction(
            boxes, boxes, target, self.source, effort=self.effort, boxes_clipped=clipped
        )


@register_prompter
@dataclasses.dataclass(frozen=True)
class BoxPerSliceFrom3DBox(Prompter):
    """The (y, x) footprint of the target's 3D box, used as the same 2D box on every slice of its
    z range (slices without target included). The user draws one 3D box."""

    name: ClassVar[str] = "box_per_slice_from_3d_box"
    emits: ClassVar[frozenset[str]] = frozenset({"box2d"})
    paper_label: ClassVar[str] = "from 3D Box (BoxPer2dSliceFrom3DBox)"
    cost_formula: ClassVar[str] = "3"
    description: ClassVar[str] = "one 3D box, applied to every slice of its z range"
    accepts_placement: ClassVar[bool] = True

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        box = _box(target)
        lo, hi = box
        box3d = Box3D(lo, hi)  # type: ignore[arg-type]
        if place is not None:
            (placed,) = place([box3d])
            assert isinstance(placed, Box3D)
            box3d, lo, hi = placed, placed.lo, placed.hi
        boxes = [Box2D(z, lo[1:], hi[1:]) for z in range(lo[0], hi[0])]  # type: ignore[arg-type]
        return make_interaction(boxes, [box3d], target, self.source, effort=self.effort)


@register_prompter
@dataclasses.dataclass(frozen=True)
class BoxInterpolation(Prompter):
    """Tight boxes on ``k`` key slices (chosen as for point interpolation); their corners are
    linearly interpolated to a box on every slice in between. With ``jitter``, each coordinate of
    each key box gets uniform integer noise in [−jitter, jitter], clipped to the image and
    repaired when min ≥ max.

    ``key_rounding="floor"`` (default) follows the reference implementation, with which the
    paper's numbers were made: key positions rounded down (9.5 → 9) from the absolute z range,
    and ``k' = 1`` uses the median foreground slice (the lower middle one). ``"nearest"`` is the
    earlier variant: key positions rounded half to even (9.5 → 10), ``k' = 1`` on the lowest
    foreground slice. Interpolated corners are rounded half to even in both."""

    k: int = 3
    jitter: int = 0
    key_rounding: str = "floor"
    name: ClassVar[str] = "box_interpolation"
    version: ClassVar[str] = "2"
    emits: ClassVar[frozenset[str]] = frozenset({"box2d"})
    paper_label: ClassVar[str] = "kB Inter (kBoxInterpolation; jitter: nonperfect)"
    cost_formula: ClassVar[str] = "2k (k = min(k, X))"
    description: ClassVar[str] = "k key boxes, interpolated along z"
    accepts_placement: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.k < 1 or self.jitter < 0:
            raise ValueError("k must be >= 1 and jitter >= 0")
        geo.check_key_rounding(self.key_rounding)

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        sub, off = _crop(target)
        fg = geo.fg_slices(sub) + off[0]  # absolute z
        if self.key_rounding == "nearest":
            keys = geo.key_slices(fg - off[0], self.k, "nearest") + off[0]
        elif min(self.k, fg.size) == 1:
            keys = fg[[(fg.size - 1) // 2]]  # the median foreground slice (the lower middle one)
        else:
            keys = geo.key_slices(fg, self.k, "floor")
        lo, hi = _slice_boxes(sub, keys - off[0])
        lo, hi = lo + off[1:], hi + off[1:]
        plane = target.shape[1:]
        clipped = 0
        for i in range(len(keys)):
            a, b, c = geo.jitter_box(lo[i], hi[i], self.jitter, rng, plane)
            lo[i], hi[i] = a, b
            clipped += c
        key_boxes: list[Prompt] = [
            Box2D(int(z), a, b) for z, a, b in zip(keys, lo, hi, strict=True)
        ]
        if place is not None:
            placed = [b for b in place(key_boxes) if isinstance(b, Box2D)]
            key_boxes = list(placed)
            lo = np.asarray([b.lo for b in placed], dtype=np.int64)
            hi = np.asarray([b.hi for b in placed], dtype=np.int64)
        zs, corners = geo.interpolate_along_z(keys, np.hstack([lo, hi]).astype(float))
        corners = np.rint(corners).astype(np.int64)
        boxes = []
        for z, c in zip(zs, corners, strict=True):
            a, b, _ = geo.clip_box(c[:2], c[2:], plane)
            boxes.append(Box2D(int(z), a, b))  # type: ignore[arg-type]
        return make_interaction(
            boxes, key_boxes, target, self.source, effort=self.effort, boxes_clipped=clipped
        )


@register_prompter
@dataclasses.dataclass(frozen=True)
class BoxPropagation(Prompter):
    """The tight box of the median foreground slice; then, upwards and downwards, the current box
    is applied to the next slice, the model predicts it, and the tight box of the prediction
    becomes the next box, until the prediction is empty or the target's z extent (two z-limits
    given by the user) is reached."""

    name: ClassVar[str] = "box_propagation"
    emits: ClassVar[frozenset[str]] = frozenset({"box2d"})
    paper_label: ClassVar[str] = "B Prop (BoxPropagation)"
    cost_formula: ClassVar[str] = "4 (box 2 + 2 z-limits)"
    description: ClassVar[str] = "one box on the median slice, propagated by the model"
    accepts_placement: ClassVar[bool] = True
    needs_model: ClassVar[bool] = True

    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None,
        *, place: Place | None = None,
    ) -> Interaction:  # fmt: skip
        target = check_target(target)
        predict = _need(predict, self.name)
        fg = geo.fg_slices(target)
        z0 = geo.median_slice(target)
        lo, hi = geo.tight_box_2d(target[z0])
        first: Prompt = Box2D(z0, lo, hi)
        if place is not None:
            (first,) = place([first])

        def next_prompt(nz: int, pred: BoolArray) -> Prompt:
            return Box2D(nz, *geo.tight_box_2d(pred))

        by_slice = propagate(predict, z0, [first], (int(fg[0]), int(fg[-1])), next_prompt)
        prompts = [p for z in sorted(by_slice) for p in by_slice[z]]
        user: list[Prompt] = [first, ZLimit(int(fg[0]), False), ZLimit(int(fg[-1]), True)]
        return make_interaction(prompts, user, target, self.source, effort=self.effort)


# the 3D prompters (PROTOCOL §3) live in radioactive.prompts.static3d; importing it here registers
# them after the 2D prompters above
from radioactive.prompts import static3d as _static3d  # noqa: E402

_STATIC_3D = frozenset({"Box3DPrompter", "CenterPoints3D", "Points3D"})


def __getattr__(name: str) -> type[Prompter]:
    """The 3D prompters of :mod:`radioactive.prompts.static3d`, importable from this module too
    (looked up when used, so that either module can be imported first)."""
    if name in _STATIC_3D:
        return getattr(_static3d, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
