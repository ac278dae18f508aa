"""Propagation diagnostics of a finished unit, as the columns of its ``units`` row.

For every scored unit with a prompted slice, the runner stores over-propagation and Dice
against the distance from the prompted slices of its final prediction
(:func:`radioactive.metrics.propagation.propagation_diagnostics`), and ``propagates``: whether
that prediction was propagated from the prompted slices, because the prompter ran the model
slice by slice (``needs_model``, or ``uses_model`` with a model that predicts single slices: the
prompters the session gives a slice predictor) or because the model is a propagation engine
(``capabilities.propagates``, e.g. the SAM 2 video predictor). The report's propagation table
and figure read the units where it is true. None of this is part of a unit's identity.

The prompted slices come from the unit's interactions (the objects, or the stored ``prompts``
JSON of its step rows): the axial slices on which the user placed a located prompt
(``user_prompts``), over every step. A z-limit places nothing on its slice and a mask prompt is
the model's own output, so neither counts; a 3D box counts as its middle slice
(``floor((lo_z + hi_z − 1) / 2)``), the slice it is drawn on and the one a video model
conditions on; derived prompts (interpolated, propagated) are not the user's and do not count.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from radioactive.metrics.propagation import propagation_diagnostics
from radioactive.prompts.types import Box3D, Interaction, Prompt, prompt_from_dict

__all__ = ["DIAGNOSTIC_COLUMNS", "prompted_slices", "propagates", "unit_diagnostics"]

logger = logging.getLogger(__name__)

#: the ``units`` columns this module fills
DIAGNOSTIC_COLUMNS = (
    "propagates",
    "overprop_below",
    "overprop_above",
    "overprop_slices",
    "overprop_voxels",
    "overprop_mm",
    "propagation",
)


def _user_prompts(interaction: Interaction | Mapping[str, Any] | str) -> list[Prompt]:
    if isinstance(interaction, Interaction):
        return list(interaction.user_prompts)
    data = json.loads(interaction) if isinstance(interaction, str) else interaction
    return [prompt_from_dict(p) for p in data.get("user_prompts", ()) if p.get("type") != "mask"]


def prompted_slices(
    interactions: Iterable[Interaction | Mapping[str, Any] | str | None],
) -> tuple[int, ...]:
    """The sorted axial slices the user prompted over ``interactions`` (see the module
    docstring); each is an :class:`~radioactive.prompts.types.Interaction`, its ``to_dict()``,
    that as JSON text (a step row's ``prompts``) or ``None`` (a step without one)."""
    slices: set[int] = set()
    for interaction in interactions:
        if interaction is None:
            continue
        for prompt in _user_prompts(interaction):
            if not prompt.kind.located:
                continue
            if isinstance(prompt, Box3D):
                slices.add(math.floor(prompt.centre()[0]))
            else:
                slices.update(int(z) for z in prompt.slices())
    return tuple(sorted(slices))


def propagates(prompter: Any, model: Any, *, slice_predictor_given: bool = True) -> bool:
    """Whether a unit's prediction is propagated: the prompter runs the model slice by slice
    (the session gives it a slice predictor; ``slice_predictor_given=False`` where it never
    does, e.g. multi-class trajectories) or the model is a propagation engine."""
    capabilities = getattr(model, "capabilities", None)
    if getattr(capabilities, "propagates", False):
        return True
    if not slice_predictor_given:
        return False
    return bool(
        getattr(prompter, "needs_model", False)
        or (getattr(prompter, "uses_model", False) and getattr(capabilities, "slice_predictor",
                                                               False))
    )  # fmt: skip


def unit_diagnostics(
    prediction: np.ndarray | None,
    target: np.ndarray,
    interactions: Iterable[Interaction | Mapping[str, Any] | str | None],
    spacing_mm: tuple[float, float, float],
    *,
    propagated: bool,
) -> dict[str, Any]:
    """The diagnostic columns of a unit's row (:data:`DIAGNOSTIC_COLUMNS`): ``propagates``
    always; the others when there is a final ``prediction``, a non-empty ``target`` and at
    least one prompted slice (else only ``propagates``). Diagnostics that cannot be computed
    are logged and left out: they never fail a scored unit."""
    out: dict[str, Any] = {"propagates": bool(propagated)}
    keys = prompted_slices(interactions)
    if prediction is None or not keys:
        return out
    try:
        d = propagation_diagnostics(prediction, target, keys, spacing_mm)
    except ValueError as error:
        logger.warning("propagation diagnostics left out: %s", error)
        return out
    out.update(
        overprop_below=d.below,
        overprop_above=d.above,
        overprop_slices=d.slices,
        overprop_voxels=d.voxels,
        overprop_mm=d.mm,
        propagation=d.to_dict(),
    )
    return out
