"""Interaction accounting: degrees of freedom and estimated human seconds, from the prompts placed.

Costs are never typed by hand per prompter: :func:`make_interaction` computes them from the
prompts the simulated user actually placed (``user_prompts``), so a prompter that generates fewer
prompts (e.g. fewer foreground slices) is charged less.

Degrees of freedom (PROTOCOL §5): point 1, 2D box 2, 3D box 3, scribble 3, lasso 3, z-limit 1,
mask prompt 0 (fed back by the system, not drawn).

Estimated seconds of an interaction (:meth:`EffortModel.seconds_of`)::

    sum(per-prompt time) + slice_visit_s × (distinct views visited)
                         + review_slice_s × (target's z extent in slices, if prompts placed)

The last term is the check of the 3D result the interaction produces: the user scrolls through
the target's z extent. The counts behind the sum (:func:`effort_components`) are stored with every
interaction (``Interaction.review_slices`` and its prompts), so a report can recompute the
seconds under any other effort model. Every constant has a range (low, typical, high) with its
source, or is marked as an assumption: :data:`EFFORT_RANGES`; the defaults are the typical values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from radioactive.prompts.types import (
    Box3D,
    Interaction,
    Point,
    Prompt,
    PromptKind,
    Realism,
    Scribble,
    check_within,
    slices_of,
)

DOF: dict[PromptKind, int] = {
    PromptKind.POINT: 1,
    PromptKind.BOX2D: 2,
    PromptKind.BOX3D: 3,
    PromptKind.SCRIBBLE: 3,
    PromptKind.LASSO: 3,
    PromptKind.ZLIMIT: 1,
    PromptKind.MASK: 0,
}

COST_VERSION = "2"
"""Version of the accounting: 2 adds the result review (``review_slice_s``) and the calibrated
typical values of :data:`EFFORT_RANGES`."""


@dataclass(frozen=True)
class EffortRange:
    """The plausible range of one effort constant, in seconds, and where it comes from.

    ``assumption`` is true when no published timing measures the action itself: the values are
    then derived from the ``source`` as ``basis`` explains, or chosen.
    """

    low: float
    typical: float
    high: float
    source: str
    basis: str
    assumption: bool

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.typical <= self.high:
            raise ValueError(f"need 0 <= low <= typical <= high, got {self}")


_PAPADOPOULOS = "Papadopoulos et al., Extreme clicking for efficient object annotation, ICCV 2017"
_ROOTPAINTER = "RootPainter's simulated-user benchmark (Smith et al.)"
_MCDONALD = "McDonald et al., Acad. Radiol. 2015 (16.1 images read per minute)"

#: Every constant of :class:`EffortModel`: its range and source (``docs/prompts.md`` has the table).
EFFORT_RANGES: dict[str, EffortRange] = {
    "point_s": EffortRange(
        1.0, 1.75, 3.0, _PAPADOPOULOS,
        "typical: 7.0 s for a box from four extreme clicks, per click; range: assumption",
        False,
    ),
    "box2d_s": EffortRange(
        3.5, 7.0, 34.5, _PAPADOPOULOS,
        "typical: 7.0 s per box by extreme clicking; high: 34.5 s per conventionally drawn box; "
        "low: half the typical, an assumption",
        False,
    ),
    "box3d_s": EffortRange(
        7.0, 14.0, 69.0, _PAPADOPOULOS,
        "two 2D boxes on orthogonal views (axial and coronal): twice the 2D box's range",
        True,
    ),
    "scribble_s": EffortRange(
        2.25, 2.9, 5.3, _ROOTPAINTER,
        "typical: a 1.4 s foreground stroke + 1.5 s between strokes; low: a 0.75 s background "
        "stroke + 1.5 s; high: the typical value two log-normal sigmas (0.3) up",
        False,
    ),
    "lasso_s": EffortRange(
        5.0, 15.0, 79.0, "Bearman et al., What's the point, ECCV 2016",
        "high: 79 s, the top of the 54-79 s polygon outlines of natural-image objects; typical "
        "and low: a rough outline of one slice's cross-section, an assumption",
        True,
    ),
    "zlimit_s": EffortRange(
        1.0, 2.0, 7.4, _MCDONALD,
        "one click to mark a slice; high: two radiologist image reads (2 x 3.7 s); typical and "
        "low: an assumption",
        True,
    ),
    "slice_visit_s": EffortRange(
        0.5, 1.0, 3.7, _MCDONALD,
        "scrolling to a slice or plane and looking at it; high: one radiologist image read "
        "(3.7 s); typical and low: an assumption",
        True,
    ),
    "review_slice_s": EffortRange(
        0.1, 0.25, 3.7, _MCDONALD,
        "checking a 3D result by scrolling through the target's z extent, per slice; typical: "
        "4 slices per second, an assumption; high: one radiologist image read per slice",
        True,
    ),
}  # fmt: skip

_KIND_CONSTANT: dict[PromptKind, str] = {
    PromptKind.POINT: "point_s",
    PromptKind.BOX2D: "box2d_s",
    PromptKind.BOX3D: "box3d_s",
    PromptKind.SCRIBBLE: "scribble_s",
    PromptKind.LASSO: "lasso_s",
    PromptKind.ZLIMIT: "zlimit_s",
}


def _typical(name: str) -> Any:
    return Field(default=EFFORT_RANGES[name].typical, ge=0)


class EffortModel(BaseModel):
    """Seconds a human needs per prompt type, per distinct view (slice or plane) visited, and per
    slice of the target's z extent reviewed after placing prompts. The defaults are the typical
    values of :data:`EFFORT_RANGES`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point_s: float = _typical("point_s")
    box2d_s: float = _typical("box2d_s")
    box3d_s: float = _typical("box3d_s")
    scribble_s: float = _typical("scribble_s")
    lasso_s: float = _typical("lasso_s")
    zlimit_s: float = _typical("zlimit_s")
    slice_visit_s: float = _typical("slice_visit_s")
    review_slice_s: float = _typical("review_slice_s")

    def prompt_seconds(self, prompt: Prompt) -> float:
        if prompt.kind is PromptKind.MASK:
            return 0.0
        seconds: float = getattr(self, _KIND_CONSTANT[prompt.kind])
        return seconds

    def seconds(self, prompts: Sequence[Prompt], review_slices: int = 0) -> float:
        """Seconds to place ``prompts`` and review ``review_slices`` slices of the result."""
        return self.seconds_of(effort_components(prompts, review_slices))

    def seconds_of(self, components: Mapping[str, float]) -> float:
        """``sum(count × constant)`` over :func:`effort_components`."""
        return float(sum(n * getattr(self, name) for name, n in components.items()))

    @classmethod
    def sample(cls, rng: np.random.Generator) -> EffortModel:
        """A model with every constant drawn uniformly from its :data:`EFFORT_RANGES` range."""
        return cls(**{k: float(rng.uniform(r.low, r.high)) for k, r in EFFORT_RANGES.items()})


DEFAULT_EFFORT = EffortModel()


def effort_components(prompts: Sequence[Prompt], review_slices: int = 0) -> dict[str, float]:
    """How often each constant of :class:`EffortModel` is paid for ``prompts`` (the prompts a
    user placed) and ``review_slices``: one count per constant name, in :data:`EFFORT_RANGES`
    order."""
    counts = dict.fromkeys(EFFORT_RANGES, 0.0)
    for p in prompts:
        if p.kind is not PromptKind.MASK:
            counts[_KIND_CONSTANT[p.kind]] += 1.0
    views = set().union(*(views_of(p) for p in prompts)) if prompts else set()
    counts["slice_visit_s"] = float(len(views))
    counts["review_slice_s"] = float(review_slices)
    return counts


def review_extent(target: npt.NDArray[np.bool_]) -> int:
    """The slices a user scrolls through to check a result: the target's z extent (first to last
    slice holding target voxels; 0 for an empty target)."""
    zs = np.flatnonzero(np.asarray(target).reshape(target.shape[0], -1).any(axis=1))
    return int(zs[-1] - zs[0] + 1) if zs.size else 0


def dof(prompts: Sequence[Prompt]) -> int:
    """Degrees of freedom of the prompts a user placed."""
    return sum(DOF[p.kind] for p in prompts)


def views_of(prompt: Prompt) -> set[tuple[int, int]]:
    """The views (axis, index) a user looks at to place ``prompt``.

    A 3D box needs an axial and a coronal view through its centre voxel; a scribble the one plane
    it lies in (any axis), else its axial slices; every other prompt its axial slices
    (``prompt.slices()``: a point, 2D box, lasso or z-limit lies on one; a mask prompt on none).
    """
    if isinstance(prompt, Box3D):
        z, y, _ = (int(c // 1) for c in prompt.centre())
        return {(0, z), (1, y)}
    if isinstance(prompt, Scribble):
        vox = prompt.array()
        for axis in (0, 1, 2):
            if np.all(vox[:, axis] == vox[0, axis]):
                return {(axis, int(vox[0, axis]))}
    return {(0, z) for z in prompt.slices()}


def assess(
    prompts: Sequence[Prompt],
    user_prompts: Sequence[Prompt],
    target: npt.NDArray[np.bool_],
    *,
    boxes_clipped: int = 0,
) -> Realism:
    """Count implausible prompts (see :class:`~radioactive.prompts.types.Realism`)."""
    pos_out = neg_in = 0
    for p in user_prompts:
        if isinstance(p, Point):
            inside = p.inside(target)
            pos_out += int(p.positive and not inside)
            neg_in += int(not p.positive and inside)
        elif isinstance(p, Scribble):
            vox = p.array()
            hits = int(np.count_nonzero(target[vox[:, 0], vox[:, 1], vox[:, 2]]))
            if p.positive:
                pos_out += len(vox) - hits
            else:
                neg_in += hits
    user = {p for p in user_prompts if isinstance(p, Point)}
    derived = [p for p in prompts if isinstance(p, Point) and p not in user and p.positive]
    derived_out = sum(1 for p in derived if not p.inside(target))
    return Realism(pos_out, neg_in, boxes_clipped, derived_out, len(derived))


def make_interaction(
    prompts: Sequence[Prompt],
    user_prompts: Sequence[Prompt],
    target: npt.NDArray[np.bool_],
    source: str,
    *,
    effort: EffortModel = DEFAULT_EFFORT,
    boxes_clipped: int = 0,
    keep_previous: bool = True,
) -> Interaction:
    """Build an :class:`Interaction`, computing its cost and realism from the prompts.

    An interaction with placed prompts is charged the review of its result
    (:func:`review_extent` slices).

    Raises ``ValueError`` if any prompt lies outside the image: prompters must clip.
    """
    check_within((*prompts, *user_prompts), target.shape, f"interaction from {source}")
    slices = review_extent(target) if user_prompts else 0
    return Interaction(
        prompts=tuple(prompts),
        user_prompts=tuple(user_prompts),
        dof=dof(user_prompts),
        seconds=effort.seconds(user_prompts, slices),
        source=source,
        realism=assess(prompts, user_prompts, target, boxes_clipped=boxes_clipped),
        keep_previous=keep_previous,
        slices=slices_of(prompts),
        review_slices=slices,
    )
