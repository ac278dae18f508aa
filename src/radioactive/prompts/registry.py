"""The registries of prompters and simulated users, and their spec strings.

A spec is ``NAME`` or ``NAME(param=value, ...)`` with literal values. Each parameter is checked
against the dataclass field it sets: a non-integer for an integer parameter (``k=3.5``) is an
error, never silently truncated.

>>> parse_spec("box_interpolation(k=3, jitter=5)")
('box_interpolation', {'k': 3, 'jitter': 5})
>>> try:
...     get_prompter("box_interpolation(k=3.5)")
... except UnknownNameError as exc:
...     print(exc.problem)
prompter 'box_interpolation': parameter k must be an integer, got 3.5
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from radioactive.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from radioactive.prompts.base import Prompter, SimulatedUser

T = TypeVar("T")


def _load_prompters() -> None:
    import importlib

    # registers the prompters: the protocol's, then the CVPR 2025 challenge's
    for module in ("static", "cvpr25", "human"):
        importlib.import_module(f"radioactive.prompts.{module}")


def _load_users() -> None:
    import importlib

    # registers the users: the protocol's, then the human-like wrappers
    for module in ("users", "human"):
        importlib.import_module(f"radioactive.prompts.{module}")


#: prompters by name; the built-in ones are registered when the registry is first read
PROMPTERS: Registry[type[Prompter]] = Registry(
    "prompter", group="radioactive.prompters", populate=_load_prompters
)
#: simulated users by name
USERS: Registry[type[SimulatedUser]] = Registry(
    "simulated user", group="radioactive.users", populate=_load_users
)


def register_prompter(cls: type[T]) -> type[T]:
    """Class decorator: register a prompter under its ``name``."""
    return PROMPTERS.add(cls)


def register_user(cls: type[T]) -> type[T]:
    """Class decorator: register a simulated user under its ``name``."""
    return USERS.add(cls)


def load_all() -> None:
    """Register the built-in prompters and users (importing their modules)."""
    PROMPTERS.names()
    USERS.names()


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


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (int, float, bool, str, tuples, unions;
    other annotations are not checked)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(map(_matches, value, args))
    return True


def _expected(hint: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if hint in names:
        return names[hint]
    return f"of type {getattr(hint, '__name__', None) or str(hint).replace('typing.', '')}"


def _hint(cls: type, field: dataclasses.Field[Any]) -> Any:
    """The resolved annotation of ``field`` (``None``: it does not resolve, so is not checked)."""
    if not isinstance(field.type, str):
        return field.type
    try:
        return eval(field.type, vars(sys.modules[cls.__module__]))  # annotation text
    except Exception:
        return None


def check_params(kind: str, name: str, cls: type, params: dict[str, Any]) -> None:
    """Refuse parameters the class does not take, and values of the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = set(params) - set(fields)
    if unknown:
        raise UnknownNameError(
            f"{kind} {name!r} has no parameter {', '.join(sorted(unknown))}",
            fix=f"its parameters are: {', '.join(sorted(set(fields) - {'effort'})) or 'none'}",
        )
    for key, value in params.items():
        hint = _hint(cls, fields[key])
        if hint is None or _matches(value, hint):
            continue
        example = ""
        if hint is int and isinstance(value, float):
            example = f" (e.g. {key}={round(value)})"
        raise UnknownNameError(
            f"{kind} {name!r}: parameter {key} must be {_expected(hint)}, got {value!r}",
            fix=f"give {key} {_expected(hint)}{example}",
        )


def build(kind: str, registry: Registry[type[T]], name: str, params: dict[str, Any]) -> T:
    """The object registered as ``name`` (or a spec string) in ``registry``, with ``params``
    (which take precedence over parameters in the spec)."""
    if "(" in name:
        name, parsed = parse_spec(name)
        params = {**parsed, **params}
    cls = registry[name.strip()]
    check_params(kind, name, cls, params)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UnknownNameError(f"invalid parameters for {kind} {name!r}: {exc}") from exc


def get_prompter(name: str, **params: Any) -> Prompter:
    """The prompter registered as ``name`` (or a spec string) with the given parameters."""
    return build("prompter", PROMPTERS, name, params)


def get_user(name: str, **params: Any) -> SimulatedUser:
    """The simulated user registered as ``name`` (or a spec string) with the given parameters."""
    return build("simulated user", USERS, name, params)


__all__ = [
    "PROMPTERS",
    "USERS",
    "UnknownNameError",
    "build",
    "check_params",
    "get_prompter",
    "get_user",
    "load_all",
    "parse_spec",
    "register_prompter",
    "register_user",
]
