"""Base classes and registries of prompters (initial prompts) and simulated users (corrections).

A prompter or user is a small frozen dataclass whose fields are its parameters; it is registered
under a stable name and looked up with :func:`get_prompter` / :func:`get_user`, or from a spec
string such as ``"box_interpolation(k=3, jitter=5)"``. Randomness comes only from the
``numpy.random.Generator`` passed to each call.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from radioactive.prompts.cost import DEFAULT_EFFORT, EffortModel
from radioactive.prompts.types import Interaction, Prompt
from radioactive.registry import UnknownNameError  # noqa: F401  (re-exported)

BoolArray = npt.NDArray[np.bool_]

#: How a human places prompts: the prompts an oracle would place in, those placed out (moved,
#: missed, flipped). A prompter that derives prompts (interpolation, propagation) applies it to
#: the prompts the user places, before deriving the others from them.
Place = Callable[[list[Prompt]], list[Prompt]]


class SlicePredictor(Protocol):
    """ "Predict this slice": the model's 2D mask for axial slice ``z`` given the prompts on it."""

    def __call__(self, z: int, prompts: Sequence[Prompt]) -> BoolArray: ...


@dataclasses.dataclass(frozen=True)
class _Described:
    """Shared description and parameter handling."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    #: the label of the RadioActive paper / reference implementation this corresponds to
    paper_label: ClassVar[str] = ""
    #: the cost formula in words, e.g. "n·X" (X = slices with target)
    cost_formula: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the prompt kinds sent to a model (checked against a model's capabilities before running)
    emits: ClassVar[frozenset[str]] = frozenset()

    def prompt_kinds(self) -> frozenset[str]:
        """The prompt kinds this instance sends to a model."""
        return self.emits

    def params(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "effort" and f.init
        }

    @property
    def spec(self) -> str:
        """The registry spec that rebuilds this object, e.g. ``points_per_slice(n=3)``."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})" if args else self.name

    @property
    def source(self) -> str:
        """``spec@version``: recorded with every interaction."""
        return f"{self.spec}@{self.version}"


@dataclasses.dataclass(frozen=True)
class Prompter(_Described, ABC):
    """Makes the initial prompt of a trajectory from the target alone (plus, for propagation, the
    model through a :class:`SlicePredictor`)."""

    effort: EffortModel = dataclasses.field(
        default=DEFAULT_EFFORT, repr=False, compare=False, kw_only=True
    )
    #: 2: prompts axial slices of a 2D model; 3: prompts a 3D model
    dim: ClassVar[int | None] = 2
    needs_model: ClassVar[bool] = False
    #: consults the model's slice predictor when the model has one, else prompts without it
    uses_model: ClassVar[bool] = False
    #: ``initial`` takes a keyword ``place`` (a :data:`Place`) applied to the prompts the user
    #: places before the prompter derives prompts from them
    accepts_placement: ClassVar[bool] = False

    @abstractmethod
    def initial(
        self, target: BoolArray, rng: np.random.Generator, predict: SlicePredictor | None = None
    ) -> Interaction:
        """The first interaction for a non-empty boolean (z, y, x) target."""


@dataclasses.dataclass(frozen=True)
class SimulatedUser(_Described, ABC):
    """Looks at the current prediction and places a corrective prompt."""

    effort: EffortModel = dataclasses.field(
        default=DEFAULT_EFFORT, repr=False, compare=False, kw_only=True
    )
    #: the most axial slices one correction puts prompts on (``None``: up to the target's z
    #: extent); a cost estimate counts decoder calls with it
    slices_per_correction: ClassVar[int | None] = None

    @abstractmethod
    def correct(
        self,
        target: BoolArray,
        prediction: BoolArray,
        history: Sequence[Interaction],
        rng: np.random.Generator,
        *,
        spacing_mm: tuple[float, float, float] | None = None,
    ) -> Interaction:
        """The next corrective interaction. ``history`` holds the earlier interactions of this
        trajectory, the initial one first; ``spacing_mm`` is the case's voxel size in mm along
        (z, y, x) (the session passes it; ``None``: unknown, distances in voxel units). Returns
        an interaction without prompts when there is nothing to correct."""


def check_target(target: BoolArray) -> BoolArray:
    """Validate a target mask: a 3D array, returned as boolean (emptiness is checked by the
    prompters when they crop to the target's bounding box)."""
    arr = np.asarray(target)
    if arr.ndim != 3:
        raise ValueError(f"a target must be a 3D (z, y, x) mask, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


EMPTY_TARGET = "the target is empty; empty targets are skipped, never prompted"


def describe(obj_cls: type[_Described]) -> dict[str, Any]:
    """Name, parameters with defaults, cost formula and paper label of a registered class."""
    params = {
        f.name: (f.default if f.default is not dataclasses.MISSING else None)
        for f in dataclasses.fields(obj_cls)
        if f.init and f.name != "effort"
    }
    return {
        "name": obj_cls.name,
        "version": obj_cls.version,
        "params": params,
        "cost": obj_cls.cost_formula,
        "paper_label": obj_cls.paper_label,
        "description": obj_cls.description,
        "dim": getattr(obj_cls, "dim", None),
        "needs_model": getattr(obj_cls, "needs_model", False),
    }


def _load() -> None:
    """Import the modules that register prompters and users."""
    load_all()


# the registries and spec parsing live in prompts.registry; imported here for existing callers
from radioactive.prompts.registry import (  # noqa: E402, F401  (re-exported)
    PROMPTERS,
    USERS,
    get_prompter,
    get_user,
    load_all,
    parse_spec,
    register_prompter,
    register_user,
)
