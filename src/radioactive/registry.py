"""One lazy registry for every named thing: models, dataset recipes, prompters, users, presets.

A :class:`Registry` maps names to *targets*: an object, or a ``"module:attr"`` string whose
module is imported only when the name is looked up (never to list names). Installed packages add
names through an entry-point group (``[project.entry-points."radioactive.models"]`` …); a plugin
named like a built-in is ignored with a warning, the built-in wins. An unknown name raises the
registry's error, naming the choices and the closest one:

>>> reg = Registry("colour", {"red": "builtins:str", "green": 2})
>>> reg.names()
['red', 'green']
>>> reg["green"], reg["red"] is str
(2, True)
>>> reg["gren"]
Traceback (most recent call last):
...
radioactive.registry.UnknownNameError: unknown colour 'gren' (did you mean 'green'?)
Fix: choose one of: green, red
>>> did_you_mean("box_interpolaton", ["box_interpolation", "box_3d"])
" (did you mean 'box_interpolation'?)"
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from radioactive.errors import RadioactiveError

log = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownNameError(RadioactiveError, KeyError):
    """An unknown registry name, or a spec with parameters the named thing does not take."""

    def __str__(self) -> str:  # KeyError would quote the message
        return RadioactiveError.__str__(self)


class PluginLoadError(RadioactiveError):
    """A plugin's entry point cannot be imported."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the choice closest to ``name``, or ``""`` when none is close.

    Case and surrounding blanks are ignored; an exact match (after that) is not a suggestion.
    """
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(str(choice).lower(), str(choice))
    key = str(name).strip().lower()
    if not key or not lowered:
        return ""
    if key in lowered:
        return "" if lowered[key] == name else f" (did you mean {lowered[key]!r}?)"
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    if not close:  # a prefix: "box" -> "box_3d" only when unambiguous
        starts = [c for c in lowered if c.startswith(key) and len(key) >= 3]
        close = starts if len(starts) == 1 else []
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def resolve_target(value: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module, sep, attr = value.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{value!r} is not of the form 'module:attr'")
    return functools.reduce(getattr, attr.split("."), importlib.import_module(module.strip()))


@dataclass(frozen=True)
class PluginEntry:
    """One declared entry point ``name = value`` and the installed package declaring it."""

    name: str
    value: str
    #: distribution name and version, e.g. ``"my-package 1.0"`` (``None``: unreadable metadata)
    package: str | None = None
    #: what the group registers, for messages ("model", "dataset recipe", …)
    kind: str = "model"

    def describe(self) -> str:
        entry_point = f"{self.name} = {self.value}"
        where = f"package {self.package}" if self.package else "an unknown package"
        return f"{self.kind} plugin {self.name!r} (entry point `{entry_point}` of {where})"

    @property
    def package_name(self) -> str:
        return self.package.split(" ")[0] if self.package else "the package that declares it"


def _package(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    try:
        return f"{dist.name} {dist.version}" if dist is not None else None
    except Exception:  # unreadable METADATA: still name the entry point
        return None


@functools.cache
def declared_entry_points(group: str) -> tuple[tuple[str, str, str | None], ...]:
    """``(name, "module:attr", package)`` of every entry point of ``group``, in discovery order;
    reads package metadata only, imports nothing."""
    out = []
    for ep in metadata.entry_points(group=group):
        value = f"{ep.module}:{ep.attr}" if ep.attr else ep.value.strip()
        out.append((ep.name, value, _package(ep)))
    return tuple(out)


_warned: set[tuple[str, str, str]] = set()


def warn_once(key: tuple[str, str, str], message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def clear_entry_points() -> None:
    """Forget discovered entry points (after installing or removing a package in this process)."""
    declared_entry_points.cache_clear()
    _warned.clear()


class Registry(Mapping[str, T], Generic[T]):
    """Names of one kind → lazily loaded objects, plus the plugins of an entry-point group.

    Args:
        kind: what is registered, for messages ("model", "prompter", "dataset recipe").
        builtin: ``name -> target`` (an object, or a ``"module:attr"`` string imported on first
            look-up). The mapping is used live: names added to it later are seen.
        group: the entry-point group installed packages declare further names in.
        aliases: other names (lower case) a name answers to; look-ups then ignore case.
        error: the exception class raised for an unknown name (takes ``problem, fix=``).
        hint: appended to the list of choices in the fix of an unknown name.
        populate: called once before the first look-up (imports modules that register names).
        plugin_loader: loads a plugin by name instead of importing its entry point directly
            (to check it against a contract); gets the :class:`PluginEntry`.
    """

    def __init__(
        self,
        kind: str,
        builtin: Mapping[str, Any] | None = None,
        *,
        group: str | None = None,
        aliases: Mapping[str, str] | None = None,
        error: Callable[..., Exception] = UnknownNameError,
        hint: str = "",
        populate: Callable[[], None] | None = None,
        plugin_loader: Callable[[PluginEntry], T] | None = None,
    ) -> None:
        self.kind = kind
        self.builtin: dict[str, Any] = builtin if isinstance(builtin, dict) else dict(builtin or {})
        self.group = group
        self.aliases = dict(aliases or {})
        self.error = error
        self.hint = hint
        self._populate = populate
        self._plugin_loader = plugin_loader

    # -- registration ---------------------------------------------------------------------
    def register(self, name: str, target: Any) -> Any:
        """Register ``target`` (an object or ``"module:attr"``) as ``name``; returns it."""
        self.builtin[name] = target
        return target

    def add(self, obj: Any) -> Any:
        """Decorator: register a class under its ``name`` attribute."""
        return self.register(obj.name, obj)

    def _ready(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate()

    # -- plugins --------------------------------------------------------------------------
    def plugins(self) -> dict[str, PluginEntry]:
        """Usable plugin entries by name: a plugin named like a built-in is ignored, and of two
        plugins with one name the first found is kept (both with a logged warning)."""
        if self.group is None:
            return {}
        self._ready()
        out: dict[str, PluginEntry] = {}
        for name, value, package in declared_entry_points(self.group):
            entry = PluginEntry(name, value, package, self.kind)
            if name in self.builtin:
                target = self.builtin[name]
                shown = target if isinstance(target, str) else type(target).__name__
                warn_once(
                    (self.group, "builtin", name),
                    "%s is ignored: %r is a built-in %s (%s). Rename the entry point.",
                    entry.describe(), name, self.kind, shown,
                )  # fmt: skip
            elif name in out:
                if out[name].value != value:
                    warn_once(
                        (self.group, "duplicate", name),
                        "%s is ignored: %s declares the same name first. Uninstall one of them.",
                        entry.describe(), out[name].package or "another package",
                    )  # fmt: skip
            else:
                out[name] = entry
        return out

    # -- look-up --------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Built-in names in the order they were registered, then plugin names, sorted."""
        self._ready()
        return [*self.builtin, *sorted(set(self.plugins()) - set(self.builtin))]

    def canonical(self, name: str) -> str | None:
        """The registered name behind ``name`` (itself, an alias, or either in another case)."""
        self._ready()
        if name in self.builtin:
            return name
        if self.aliases:
            key = str(name).strip().lower()
            key = self.aliases.get(key, key)
            if key in self.builtin:
                return key
        if self.group is not None and name in self.plugins():
            return name
        return None

    def unknown(self, name: str) -> Exception:
        """The error for an unknown ``name``: the closest choice and all of them."""
        choices = sorted(self.names())
        fix = f"choose one of: {', '.join(choices) or 'none'}{self.hint}"
        return self.error(f"unknown {self.kind} {name!r}{did_you_mean(name, choices)}", fix=fix)

    def target(self, name: str) -> Any:
        """The registered target of ``name`` (``"module:attr"`` string, or the object itself)."""
        key = self.canonical(name)
        if key is None:
            raise self.unknown(name)
        if key in self.builtin:
            return self.builtin[key]
        return self.plugins()[key].value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def __getitem__(self, name: str) -> T:
        key = self.canonical(name)
        if key is None:
            raise self.unknown(name)
        return self._load(key)

    def _load(self, key: str) -> T:
        if key in self.builtin:
            target = self.builtin[key]
            return resolve_target(target) if isinstance(target, str) else target
        entry = self.plugins()[key]
        if self._plugin_loader is not None:
            return self._plugin_loader(entry)
        try:
            return resolve_target(entry.value)
        except Exception as exc:
            raise PluginLoadError(
                f"{entry.describe()} cannot be imported: {type(exc).__name__}: {exc}",
                fix=f"install the plugin's own dependencies, or reinstall or uninstall "
                f"{entry.package_name}",
            ) from exc

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()!r})"


__all__ = [
    "PluginEntry",
    "PluginLoadError",
    "Registry",
    "UnknownNameError",
    "clear_entry_points",
    "declared_entry_points",
    "did_you_mean",
    "resolve_target",
    "warn_once",
]
