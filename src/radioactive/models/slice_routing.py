"""What the slice-wise engine sends a 2D backend for each prompt, slice by slice: points and 2D
boxes as they are, a 3D box as its 2D footprint on each slice of its z range, a scribble as a point
per voxel of the slice; nothing for z-limits and mask prompts; lassos refused."""

from __future__ import annotations

from collections.abc import Sequence

from radioactive.models.base import UnsupportedPrompt
from radioactive.prompts.types import Box2D, Box3D, Point, Prompt, PromptKind, Scribble

__all__ = ["ROUTED_KINDS", "UNSENT_KINDS", "expanded_prompt_types", "on_slice",
           "prompts_by_slice"]  # fmt: skip


#: the prompt kinds a 2D backend can receive (per slice: points, one box, a mask)
ROUTED_KINDS = frozenset({PromptKind.POINT, PromptKind.BOX2D})
#: what the engine sends nothing for: z-limits bound propagation, mask prompts are the engine's
UNSENT_KINDS = frozenset({PromptKind.ZLIMIT, PromptKind.MASK})


def on_slice(prompt: Prompt, z: int) -> list[Prompt]:
    """What the engine sends a backend for ``prompt`` on axial slice ``z`` (a prompt that lies on
    ``z``): points and 2D boxes as they are, a 3D box as its 2D footprint, a scribble as one
    point per voxel of that slice; nothing for z-limits and mask prompts. A lasso raises
    :class:`~radioactive.models.base.UnsupportedPrompt` (never dropped silently)."""
    if isinstance(prompt, (Point, Box2D)):
        return [prompt]
    if isinstance(prompt, Box3D):
        return [Box2D(z, prompt.lo[1:], prompt.hi[1:])]
    if isinstance(prompt, Scribble):
        return [Point(v, prompt.positive) for v in prompt.voxels if v[0] == z]
    if prompt.kind in UNSENT_KINDS:
        return []
    raise UnsupportedPrompt(
        f"the slice-wise engine cannot send a {prompt.kind} prompt to a 2D backend",
        fix="use points, boxes or scribbles with slice-wise models (a model that takes lassos, "
        "e.g. nninteractive, runs them itself)",
    )


def prompts_by_slice(prompts: Sequence[Prompt], depth: int) -> dict[int, list[Prompt]]:
    """Group prompts by the axial slices they lie on (``prompt.slices()`` within ``depth``), as
    :func:`on_slice` sends them; slices that receive nothing are left out."""
    out: dict[int, list[Prompt]] = {}
    for p in prompts:
        for z in p.slices():
            sent = on_slice(p, z) if 0 <= z < depth else []
            if sent:
                out.setdefault(z, []).extend(sent)
    return out


def expanded_prompt_types(types: frozenset[str]) -> frozenset[str]:
    """What the engine accepts for a backend: the kinds it can route (:data:`ROUTED_KINDS`;
    a lasso is not one, even where a backend claims it), plus 3D boxes (sent as 2D boxes) and
    scribbles (sent as points)."""
    routed = {PromptKind(t) for t in types if t in ROUTED_KINDS}
    if PromptKind.BOX2D in routed:
        routed.add(PromptKind.BOX3D)
    if PromptKind.POINT in routed:
        routed.add(PromptKind.SCRIBBLE)
    return frozenset(k.value for k in routed)
