"""Base classes and registries of prompters (initial prompts) and simulated users (corrections).

A prompter or user is a small frozen dataclass whose fields are its parameters; it is registered
under a stable name and looked up with :func:`get_prompter` / :func:`get_user`, or from a spec
string such as ``"box_interpolation(k=3, jitter=5)"``. Randomness comes only from the
``numpy.random.Generator`` passed to each call.
"""

from __future__ import annotations

import ast
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from radioactive.errors import RadioactiveError
from radioactive.prompts.cost import DEFAULT_EFFORT, EffortModel
from radioactive.prompts.types import Interaction, Prompt

BoolArray = npt.NDArray[np.bool_]


class SlicePredictor(Protocol):
    """ "Predict this slice": the model's 2D mask for axial slice ``z`` given the prompts on it."""

    def __call__(self, z: int, prompts: Sequence[Prompt]) -> BoolArray: ...


class UnknownNameError(RadioactiveError, KeyError):
    """A prompter, user or preset name (or one of its parameters) is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self._message()


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
    dim: ClassVar[int] = 2
    needs_model: ClassVar[bool] = False

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

    @abstractmethod
    def correct(
        self,
        target: BoolArray,
        prediction: BoolArray,
        history: Sequence[Interaction],
        rng: np.random.Generator,
    ) -> Interaction:
        """The next corrective interaction. ``history`` holds the earlier interactions of this
        trajectory, the initial one first. Returns an interaction without prompts when there is
        nothing to correct."""


def check_target(target: BoolArray) -> BoolArray:
    """Validate a target mask: a 3D array, returned as boolean (emptiness is checked by the
    prompters when they crop to the target's bounding box)."""
    arr = np.asarray(target)
    if arr.ndim != 3:
        raise ValueError(f"a target must be a 3D (z, y, x) mask, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


EMPTY_TARGET = "the target is empty; empty targets are skipped, never prompted"


T = TypeVar("T", bound=_Described)

PROMPTERS: dict[str, type[Prompter]] = {}
USERS: dict[str, type[SimulatedUser]] = {}


def register_prompter(cls: type[Prompter]) -> type[Prompter]:
    PROMPTERS[cls.name] = cls
    return cls


def register_user(cls: type[SimulatedUser]) -> type[SimulatedUser]:
    USERS[cls.name] = cls
    return cls


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"box_interpolation(k=3, jitter=5)"`` → ``("box_interpolation", {"k": 3, "jitter": 5})``."""
    text = spec.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise UnknownNameError(
            f"cannot parse {spec!r}", fix="write NAME or NAME(param=value, ...)"
        ) from exc
    if isinstance(node, ast.Name):
        return node.id, {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        try:
            params = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError as exc:
            raise UnknownNameError(
                f"parameters of {spec!r} must be literals", fix="e.g. points_per_slice(n=3)"
            ) from exc
        return node.func.id, params
    raise UnknownNameError(f"cannot parse {spec!r}", fix="write NAME or NAME(param=value, ...)")


def _build(kind: str, registry: dict[str, type[T]], name: str, params: dict[str, Any]) -> T:
    if "(" in name:
        name, parsed = parse_spec(name)
        params = {**parsed, **params}
    try:
        cls = registry[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown {kind} {name!r}", fix=f"choose one of: {', '.join(sorted(registry))}"
        ) from None
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(params) - allowed
    if unknown:
        raise UnknownNameError(
            f"{kind} {name!r} has no parameter {', '.join(sorted(unknown))}",
            fix=f"its parameters are: {', '.join(sorted(allowed - {'effort'})) or 'none'}",
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UnknownNameError(f"invalid parameters for {kind} {name!r}: {exc}") from exc


def get_prompter(name: str, **params: Any) -> Prompter:
    """The prompter registered as ``name`` (or a spec string) with the given parameters."""
    from radioactive.prompts import static  # noqa: F401  (registers the prompters)

    return _build("prompter", PROMPTERS, name, params)


def get_user(name: str, **params: Any) -> SimulatedUser:
    """The simulated user registered as ``name`` (or a spec string) with the given parameters."""
    from radioactive.prompts import users  # noqa: F401  (registers the users)

    return _build("simulated user", USERS, name, params)


def _load() -> None:
    """Import the modules that register prompters and users."""
    from radioactive.prompts import static, users  # noqa: F401


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


Factory = Callable[..., Any]
