"""Prompt simulation: prompt types, prompters (initial prompts), simulated users (corrections),
and interaction accounting.

>>> import numpy as np
>>> from radioactive.prompts import get_prompter
>>> target = np.zeros((4, 8, 8), bool); target[1:3, 2:6, 2:6] = True
>>> inter = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
>>> inter.dof, [p.to_dict()["lo"] for p in inter.prompts]
(4, [[2, 2], [2, 2]])
"""

from radioactive.prompts.base import Prompter, SimulatedUser, SlicePredictor
from radioactive.prompts.cost import (
    DEFAULT_EFFORT,
    EFFORT_RANGES,
    EffortModel,
    EffortRange,
    effort_components,
)
from radioactive.prompts.registry import (
    PROMPTERS,
    USERS,
    UnknownNameError,
    get_prompter,
    get_user,
    parse_spec,
)
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

__all__ = [
    "DEFAULT_EFFORT",
    "EFFORT_RANGES",
    "PROMPTERS",
    "USERS",
    "Box2D",
    "Box3D",
    "EffortModel",
    "EffortRange",
    "Interaction",
    "Lasso",
    "MaskPrompt",
    "Point",
    "Prompt",
    "Prompter",
    "Realism",
    "Scribble",
    "SimulatedUser",
    "SlicePredictor",
    "UnknownNameError",
    "ZLimit",
    "effort_components",
    "get_prompter",
    "get_user",
    "parse_spec",
]
