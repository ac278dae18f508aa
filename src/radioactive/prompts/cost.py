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
        if prompt.kind is PromptKind.MASK:
            return 0.0
        seconds: float = getattr(self, f"{prompt.kind.value}_s")
        return seconds

    def seconds(self, prompts: Sequence[Prompt]) -> float:
        views = set().union(*(views_of(p) for p in prompts)) if prompts else set()
        return float(sum(self.prompt_seconds(p) for p in prompts) + self.slice_visit_s * len(views))


DEFAULT_EFFORT = EffortModel()


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

    Raises ``ValueError`` if any prompt lies outside the image: prompters must clip.
    """
    check_within((*prompts, *user_prompts), target.shape, f"interaction from {source}")
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
