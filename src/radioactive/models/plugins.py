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

import functools
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.models.base import Capabilities, ModelCard

log = logging.getLogger(__name__)

#: the entry-point group a package declares its models in
ENTRY_POINT_GROUP = "radioactive.models"

#: methods a backend must have (see :class:`radioactive.models.slicewise.SliceBackend`)
REQUIRED_METHODS = ("normalize_volume", "encode", "decode", "embedding_nbytes")

#: prompt types a 2D backend may declare: the engine sends points and 2D boxes, and turns 3D boxes
#: into 2D boxes and scribbles into points
SLICE_PROMPT_KINDS = frozenset({"point", "box2d", "box3d", "scribble"})

_DOCS = "docs/adding-a-model.md"


class PluginError(RadioactiveError):
    """A model plugin cannot be imported, or its class does not meet the backend contract."""


@dataclass(frozen=True)
class PluginEntry:
    """One declared entry point ``name = value`` and the installed package declaring it."""

    name: str
    value: str
    #: distribution name and version, e.g. ``"my-package 1.0"`` (``None``: unreadable metadata)
    package: str | None = None

    def describe(self) -> str:
        entry_point = f"{self.name} = {self.value}"
        where = f"package {self.package}" if self.package else "an unknown package"
        return f"model plugin {self.name!r} (entry point `{entry_point}` of {where})"


def _package(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    try:
        return f"{dist.name} {dist.version}" if dist is not None else None
    except Exception:  # unreadable METADATA: still name the entry point
        return None


@functools.cache
def _entries() -> tuple[PluginEntry, ...]:
    """The declared entry points of the group, in discovery order (reads metadata only)."""
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        value = f"{ep.module}:{ep.attr}" if ep.attr else ep.value.strip()
        out.append(PluginEntry(ep.name, value, _package(ep)))
    return tuple(out)


_warned: set[tuple[str, str]] = set()


def _warn_once(key: tuple[str, str], message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def clear_cache() -> None:
    """Forget discovered plugins (after installing or removing a package in this process)."""
    _entries.cache_clear()
    _warned.clear()


def _builtin_models() -> Mapping[str, str]:
    from radioactive.models import MODELS

    return MODELS


def plugin_entries(builtin: Mapping[str, str] | None = None) -> dict[str, PluginEntry]:
    """Usable plugin entries by name: names of ``builtin`` models (default: ``MODELS``) are
    ignored, and of two plugins with one name the first found is kept (both with a warning)."""
    builtin = _builtin_models() if builtin is None else builtin
    out: dict[str, PluginEntry] = {}
    for entry in _entries():
        if entry.name in builtin:
            _warn_once(
                ("builtin", entry.name),
                "%s is ignored: %r is a built-in model (%s). Rename the entry point.",
                entry.describe(), entry.name, builtin[entry.name],
            )  # fmt: skip
        elif entry.name in out:
            if out[entry.name].value != entry.value:
                _warn_once(
                    ("duplicate", entry.name),
                    "%s is ignored: %s declares the same name first. Uninstall one of them.",
                    entry.describe(), out[entry.name].package or "another package",
                )  # fmt: skip
        else:
            out[entry.name] = entry
    return out


def discover_plugins(builtin: Mapping[str, str] | None = None) -> dict[str, str]:
    """Installed model plugins as ``name -> "module:Class"``, without importing them.

    Plugins named like a model of ``builtin`` (default: the built-in ``MODELS``) are left out.
    """
    return {name: e.value for name, e in plugin_entries(builtin).items()}


def all_models(builtin: Mapping[str, str]) -> dict[str, str]:
    """The built-in models and the installed plugins, ``name -> "module:Class"``."""
    return {**discover_plugins(builtin), **builtin}


def validate_backend(cls: Any) -> list[str]:
    """The ways ``cls`` falls short of the slice-wise backend contract (empty: none).

    Checks the class attributes ``card`` (a :class:`ModelCard`) and ``capabilities`` (a 2D
    :class:`Capabilities` with prompt types the engine can deliver), and the methods of
    :class:`~radioactive.models.slicewise.SliceBackend`. Nothing is instantiated.
    """
    if not isinstance(cls, type):
        return [f"{cls!r} is not a class (the entry point must name the backend class)"]
    problems = []
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
    else:
        if caps.dim != 2:
            problems.append(
                f"capabilities.dim is {caps.dim!r}: only 2D models (dim=2) are supported; the "
                "slice-wise engine does not run 3D models yet"
            )
        kinds = {str(k) for k in caps.prompt_types}
        unknown = sorted(kinds - SLICE_PROMPT_KINDS)
        if unknown:
            problems.append(
                f"capabilities.prompt_types holds {', '.join(map(repr, unknown))}, which the "
                f"slice-wise engine cannot send (known: {', '.join(sorted(SLICE_PROMPT_KINDS))})"
            )
        elif not kinds:
            problems.append("capabilities.prompt_types is empty")
    for method in REQUIRED_METHODS:
        if not callable(getattr(cls, method, None)):
            problems.append(f"no method `{method}`")
    return problems


def _resolve(value: str) -> Any:
    module, sep, attr = value.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{value!r} is not of the form 'module:Class'")
    return functools.reduce(getattr, attr.split("."), importlib.import_module(module))


def _package_name(entry: PluginEntry) -> str:
    return entry.package.split(" ")[0] if entry.package else "the package that declares it"


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
        cls = _resolve(entry.value)
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
            fix=f"make {entry.value} follow radioactive.models.slicewise.SliceBackend (see "
            f"{_DOCS}), or uninstall {_package_name(entry)}",
        )
    if cls.card.name != name:
        _warn_once(
            ("card", name),
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
