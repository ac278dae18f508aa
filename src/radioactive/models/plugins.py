"""Models from other packages: the ``radioactive.models`` entry-point group.

A package that is not part of radioactive (an adapter for SAM-Med2D, SegVol, ScribblePrompt, or a
user's own model) exposes a :class:`~radioactive.models.slicewise.SliceBackend` by declaring an
entry point in its ``pyproject.toml``::

    [project.entry-points."radioactive.models"]
    my_model = "my_package.backend:MyBackend"

Once that package is installed, ``radioactive models list``, ``get_model("my_model")`` and
experiment files find it. Discovery reads only the installed packages' metadata: a plugin's module
is imported when the model is built or described, never to list names. A plugin named like a
built-in model is ignored (the built-in wins) with a logged warning. When a plugin is loaded,
its class is checked against the backend contract (:func:`validate_backend`) and a broken one
gives a :class:`PluginError` that names the plugin, its package, every problem and the fix.

>>> class NotABackend:
...     pass
>>> validate_backend(NotABackend)[:2]
['no class attribute `card` (a radioactive.models.base.ModelCard)', \
'no class attribute `capabilities` (a radioactive.models.base.Capabilities)']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.models.base import Capabilities, ModelCard
from radioactive.registry import (
    PluginEntry,
    Registry,
    clear_entry_points,
    resolve_target,
    warn_once,
)

#: the entry-point group a package declares its models in
ENTRY_POINT_GROUP = "radioactive.models"

#: methods a backend must have (see :class:`radioactive.models.slicewise.SliceBackend`)
REQUIRED_METHODS = ("normalize_volume", "encode", "decode", "embedding_nbytes")
#: methods a model that runs whole volumes itself must have (:class:`radioactive.models.base.Model`)
MODEL_METHODS = ("prepare", "reset", "predict")
#: prompt types a model that runs whole volumes may declare
MODEL_PROMPT_KINDS = frozenset({"point", "box2d", "box3d", "scribble", "lasso"})

#: prompt types a 2D backend may declare: the engine sends points and 2D boxes, and turns 3D boxes
#: into 2D boxes and scribbles into points
SLICE_PROMPT_KINDS = frozenset({"point", "box2d", "box3d", "scribble"})

_DOCS = "docs/adding-a-model.md"


class PluginError(RadioactiveError):
    """A model plugin cannot be imported, or its class does not meet the backend contract."""


def clear_cache() -> None:
    """Forget discovered plugins (after installing or removing a package in this process)."""
    clear_entry_points()


def _builtin_models() -> Mapping[str, str]:
    from radioactive.models import MODELS

    return MODELS


def plugin_entries(builtin: Mapping[str, str] | None = None) -> dict[str, PluginEntry]:
    """Usable plugin entries by name: names of ``builtin`` models (default: ``MODELS``) are
    ignored, and of two plugins with one name the first found is kept (both with a warning)."""
    builtin = _builtin_models() if builtin is None else builtin
    return Registry("model", builtin, group=ENTRY_POINT_GROUP).plugins()


def discover_plugins(builtin: Mapping[str, str] | None = None) -> dict[str, str]:
    """Installed model plugins as ``name -> "module:Class"``, without importing them.

    Plugins named like a model of ``builtin`` (default: the built-in ``MODELS``) are left out.
    """
    return {name: e.value for name, e in plugin_entries(builtin).items()}


def all_models(builtin: Mapping[str, str]) -> dict[str, str]:
    """The built-in models and the installed plugins, ``name -> "module:Class"``."""
    return {**discover_plugins(builtin), **builtin}


def validate_backend(cls: Any) -> list[str]:
    """The ways ``cls`` falls short of the model contract (empty: none).

    Checks the class attributes ``card`` (a :class:`ModelCard`) and ``capabilities``
    (:class:`Capabilities`), then, for a class with a ``predict`` method (a model that runs whole
    volumes itself, 2D or 3D, e.g. SegVol), the methods of :class:`~radioactive.models.base.Model`
    and its prompt types; for any other class (a slice backend), ``dim=2``, prompt types the
    slice-wise engine can deliver and the methods of
    :class:`~radioactive.models.slicewise.SliceBackend`. Nothing is instantiated.
    """
    if not isinstance(cls, type):
        return [f"{cls!r} is not a class (the entry point must name the backend class)"]
    problems = []
    whole_volume = callable(getattr(cls, "predict", None))
    card = getattr(cls, "card", None)
    if card is None:
        problems.append("no class attribute `card` (a radioactive.models.base.ModelCard)")
    elif not isinstance(card, ModelCard):
        problems.append(
            f"`card` is a {type(card).__name__}, not a radioactive.models.base.ModelCard"
        )
    caps = getattr(cls, "capabilities", None)
    if caps is None:
        problems.append(
            "no class attribute `capabilities` (a radioactive.models.base.Capabilities)"
        )
    elif not isinstance(caps, Capabilities):
        problems.append(
            f"`capabilities` is a {type(caps).__name__}, not a radioactive.models.base.Capabilities"
        )
    elif whole_volume:
        if caps.dim not in (2, 3):
            problems.append(f"capabilities.dim is {caps.dim!r}: it must be 2 or 3")
        problems += _kind_problems(caps, MODEL_PROMPT_KINDS, "no model is sent")
    else:
        if caps.dim != 2:
            problems.append(
                f"capabilities.dim is {caps.dim!r}: a slice backend is 2D; a 3D model implements "
                "`prepare`, `reset` and `predict` itself (radioactive.models.base.Model)"
            )
        problems += _kind_problems(caps, SLICE_PROMPT_KINDS, "the slice-wise engine cannot send")
    for method in MODEL_METHODS if whole_volume else REQUIRED_METHODS:
        if not callable(getattr(cls, method, None)):
            problems.append(f"no method `{method}`")
    return problems


def _kind_problems(caps: Capabilities, known: frozenset[str], why: str) -> list[str]:
    kinds = {str(k) for k in caps.prompt_types}
    unknown = sorted(kinds - known)
    if unknown:
        return [
            f"capabilities.prompt_types holds {', '.join(map(repr, unknown))}, which {why} "
            f"(known: {', '.join(sorted(known))})"
        ]
    return [] if kinds else ["capabilities.prompt_types is empty"]


def load_plugin(name: str, builtin: Mapping[str, str] | None = None) -> type:
    """Import the backend class of the plugin ``name`` and check it (:func:`validate_backend`).

    Raises:
        PluginError: no such plugin, the entry point cannot be imported, or the class is broken;
            the message names the plugin, its package and the fix.
    """
    entries = plugin_entries(builtin)
    if name not in entries:
        raise PluginError(
            f"no model plugin {name!r} is installed",
            fix=f"install the package that declares it in the {ENTRY_POINT_GROUP!r} entry-point "
            f"group (plugins found: {', '.join(sorted(entries)) or 'none'})",
        )
    entry = entries[name]
    try:
        cls = resolve_target(entry.value)
    except ValueError as exc:
        raise PluginError(
            f"{entry.describe()} is malformed: {exc}",
            fix=f'declare it as `{name} = "package.module:BackendClass"` in the package\'s '
            f"[project.entry-points.{ENTRY_POINT_GROUP!r}] table, then reinstall it",
        ) from None
    except Exception as exc:
        raise PluginError(
            f"{entry.describe()} cannot be imported: {type(exc).__name__}: {exc}",
            fix="install the plugin's own dependencies, or reinstall or uninstall its package",
        ) from exc
    problems = validate_backend(cls)
    if problems:
        raise PluginError(
            f"{entry.describe()} is not a valid model backend:\n"
            + "\n".join(f"  - {p}" for p in problems),
            fix=f"make {entry.value} follow radioactive.models.slicewise.SliceBackend or "
            f"radioactive.models.base.Model (see {_DOCS}), or uninstall {entry.package_name}",
        )
    if cls.card.name != name:
        warn_once(
            (ENTRY_POINT_GROUP, "card", name),
            "%s has card.name %r; `radioactive models list` and error messages show the card's "
            "name, so make the two equal",
            entry.describe(), cls.card.name,
        )  # fmt: skip
    return cls


__all__ = [
    "ENTRY_POINT_GROUP",
    "REQUIRED_METHODS",
    "SLICE_PROMPT_KINDS",
    "PluginEntry",
    "PluginError",
    "all_models",
    "clear_cache",
    "discover_plugins",
    "load_plugin",
    "validate_backend",
]
