"""Interaction accounting: degrees of freedom and estimated human seconds, from the prompts placed.

Costs are never typed by hand per prompter: :func:`make_interaction` computes them from the
prompts the simulated user actually placed (``user_prompts``), so a prompter that generates fewer
prompts (e.g. fewer foreground slices) is charged less.

Degrees of freedom (PROTOCOL §5): point 1, 2D box 2, 3D box 3, scribble 3, lasso 3, z-limit 1,
mask prompt 0 (fed back by the system, not drawn).

Estimated seconds: ``sum(per-prompt time) + slice_visit_s × (distinct views visited)``, with the
defaults of :class:`EffortModel` (documented, with sources, in ``docs/prompts.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from radioactive.prompts.types import (
    Box2D,
    Box3D,
    Interaction,
    Lasso,
    MaskPrompt,
    Point,
    Prompt,
    Realism,
    Scribble,
    ZLimit,
)

DOF: dict[str, int] = {
    "point": 1,
    "box2d": 2,
    "box3d": 3,
    "scribble": 3,
    "lasso": 3,
    "zlimit": 1,
    "mask": 0,
}

COST_VERSION = "1"


class EffortModel(BaseModel):
    """Seconds a human needs per prompt type, plus per distinct view (slice or plane) visited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point_s: float = Field(default=2.0, ge=0)
    box2d_s: float = Field(default=7.0, ge=0)
    box3d_s: float = Field(default=14.0, ge=0)
    scribble_s: float = Field(default=5.0, ge=0)
    lasso_s: float = Field(default=15.0, ge=0)
    zlimit_s: float = Field(default=2.0, ge=0)
    slice_visit_s: float = Field(default=1.0, ge=0)

    def prompt_seconds(self, prompt: Prompt) -> float:
        per = {
            "point": self.point_s,
            "box2d": self.box2d_s,
            "box3d": self.box3d_s,
            "scribble": self.scribble_s,
            "lasso": self.lasso_s,
            "zlimit": self.zlimit_s,
            "mask": 0.0,
        }
        return per[prompt.kind]

    def seconds(self, prompts: Sequence[Prompt]) -> float:
        views = set().union(*(views_of(p) for p in prompts)) if prompts else set()
        return float(sum(self.prompt_seconds(p) for p in prompts) + self.slice_visit_s * len(views))


DEFAULT_EFFORT = EffortModel()


def dof(prompts: Sequence[Prompt]) -> int:
    """Degrees of freedom of the prompts a user placed."""
    return sum(DOF[p.kind] for p in prompts)


def views_of(prompt: Prompt) -> set[tuple[int, int]]:
    """The views (axis, index) a user looks at to place ``prompt``.

    A point, 2D box, lasso or z-limit needs its axial slice; a 3D box an axial and a coronal view
    through its centre; a scribble the one plane it lies in (any axis), else its axial slices.
    """
    if isinstance(prompt, (Point,)):
        return {(0, prompt.zyx[0])}
    if isinstance(prompt, (Box2D, Lasso, ZLimit)):
        return {(0, prompt.z)}
    if isinstance(prompt, Box3D):
        mid = [(a + b - 1) // 2 for a, b in zip(prompt.lo, prompt.hi, strict=True)]
        return {(0, mid[0]), (1, mid[1])}
    if isinstance(prompt, Scribble):
        vox = prompt.array()
        for axis in (0, 1, 2):
            if np.all(vox[:, axis] == vox[0, axis]):
                return {(axis, int(vox[0, axis]))}
        return {(0, int(z)) for z in np.unique(vox[:, 0])}
    return set()


def slices_of(prompts: Sequence[Prompt]) -> tuple[int, ...]:
    """Sorted axial slices touched by the prompts (a 3D box touches its whole z range)."""
    zs: set[int] = set()
    for p in prompts:
        if isinstance(p, Point):
            zs.add(p.zyx[0])
        elif isinstance(p, (Box2D, Lasso, ZLimit)):
            zs.add(p.z)
        elif isinstance(p, Box3D):
            zs.update(range(p.lo[0], p.hi[0]))
        elif isinstance(p, Scribble):
            zs.update(int(z) for z in np.unique(p.array()[:, 0]))
    return tuple(sorted(zs))


def _check_inside(p: Prompt, shape: tuple[int, ...]) -> None:
    def bad(msg: str) -> ValueError:
        return ValueError(f"{p.kind} prompt outside the image of shape {shape}: {msg}")

    if isinstance(p, Point):
        if not all(0 <= c < s for c, s in zip(p.zyx, shape, strict=True)):
            raise bad(str(p.zyx))
    elif isinstance(p, Box2D):
        if not (0 <= p.z < shape[0] and 0 <= p.lo[0] and 0 <= p.lo[1]):
            raise bad(f"z={p.z} lo={p.lo}")
        if p.hi[0] > shape[1] or p.hi[1] > shape[2]:
            raise bad(f"hi={p.hi}")
    elif isinstance(p, Box3D):
        if min(p.lo) < 0 or any(h > s for h, s in zip(p.hi, shape, strict=True)):
            raise bad(f"lo={p.lo} hi={p.hi}")
    elif isinstance(p, Scribble):
        vox = p.array()
        if vox.min() < 0 or np.any(vox >= np.asarray(shape)):
            raise bad("scribble voxel out of range")
    elif isinstance(p, (Lasso, ZLimit)) and not 0 <= p.z < shape[0]:
        raise bad(f"z={p.z}")


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
            inside = bool(target[p.zyx])
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
    derived_out = sum(1 for p in derived if not target[p.zyx])
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

    Raises ``ValueError`` if any prompt lies outside the image: prompters must clip.
    """
    for p in (*prompts, *user_prompts):
        if not isinstance(p, MaskPrompt):
            _check_inside(p, target.shape)
    return Interaction(
        prompts=tuple(prompts),
        user_prompts=tuple(user_prompts),
        dof=dof(user_prompts),
        seconds=effort.seconds(user_prompts),
        source=source,
        realism=assess(prompts, user_prompts, target, boxes_clipped=boxes_clipped),
        keep_previous=keep_previous,
        slices=slices_of(prompts),
    )
