"""The typed identity of a unit, made once when the experiment is expanded.

A unit is one trajectory. Its **slot** is its place in the grid: dataset, case, target, model
label, the *canonical* prompter and user specs (``get_prompter(spec).spec``, so two spellings of
one prompter are one slot), seed, ``steps`` and ``keep_initial``. Its **settings** are everything
besides the data that changes its numbers: the prompter's and user's ``spec@version``, the model
name and options, the model's input contract on the dataset, the metric settings and
``radioactive.metrics.versions()``, the effort model and ``COST_VERSION``, the stopping rules and
the session and plan versions. Its **data fingerprint** (:func:`data_fingerprint`) covers the
files the unit reads. The unit id is the hash of all three; ``units.versions`` stores settings and
data as JSON, ``units.slot_id`` the slot's hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PLAN_VERSION",
    "PairJob",
    "canonical_pair",
    "data_fingerprint",
    "diff_settings",
    "job_settings",
    "settings_hash",
    "slot_id",
]

PLAN_VERSION = "2"


@dataclass(frozen=True)
class PairJob:
    """A prompting strategy in canonical form: what a case job runs (frozen, picklable)."""

    prompter: str  # canonical spec
    user: str | None  # canonical spec, None for a static prompter
    steps: int
    keep_initial: bool
    prompter_source: str = ""  # spec@version
    user_source: str | None = None
    #: the pair's scoring rules (``session.SCORING_RULES``), sorted by name; none: ()
    scoring: tuple[tuple[str, float], ...] = ()
    #: all targets of a case in one model call per step (session.run_joint_trajectories)
    multi_class: bool = False

    @property
    def signature(self) -> str:
        """The pair's part of a slot, as text (its scoring rules are settings, not its slot)."""
        return _canonical_json([self.prompter, self.user or "", self.steps, self.keep_initial])

    def sources(self) -> dict[str, Any]:
        """The pair's part of the settings: its ``spec@version`` strings (and scoring rules)."""
        out: dict[str, Any] = {"prompter": self.prompter_source, "user": self.user_source}
        if self.scoring:
            out["scoring"] = dict(self.scoring)
        if self.multi_class:
            out["multi_class"] = True
        return out


def canonical_pair(
    prompter: str,
    user: str | None,
    steps: int,
    keep_initial: bool,
    scoring: Mapping[str, float | None] | None = None,
    multi_class: bool = False,
) -> PairJob:
    """The :class:`PairJob` of a prompter and user given in any spelling.

    ``keep_initial`` only matters with a user; a static pair always has ``True``. ``scoring``:
    the pair's scoring rules (rules set to ``None`` are left out).
    """
    from radioactive.prompts.base import get_prompter, get_user

    p = get_prompter(prompter)
    u = get_user(user) if user is not None else None
    return PairJob(
        prompter=p.spec,
        user=u.spec if u is not None else None,
        steps=int(steps),
        keep_initial=bool(keep_initial) if u is not None else True,
        prompter_source=p.source,
        user_source=u.source if u is not None else None,
        scoring=tuple(sorted((k, float(v)) for k, v in (scoring or {}).items() if v is not None)),
        multi_class=bool(multi_class) and u is not None,
    )


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _effort() -> dict[str, Any]:
    from radioactive.prompts.cost import COST_VERSION, DEFAULT_EFFORT

    return {"cost_version": COST_VERSION, "model": DEFAULT_EFFORT.model_dump(mode="json")}


def job_settings(
    *,
    model_name: str,
    model_options: Mapping[str, Any],
    contract: Any,
    metrics: Mapping[str, Any],
    stopping: Mapping[str, Any],
) -> dict[str, Any]:
    """The settings of every unit of one model on one dataset, as JSON-ready data (the pair's
    ``spec@version`` strings are added per unit)."""
    from radioactive.metrics import versions as metric_versions
    from radioactive.session import SESSION_VERSION

    settings = {
        "model": {"name": model_name, "options": dict(model_options)},
        "contract": contract,
        "metrics": dict(metrics),
        "metric_versions": metric_versions(),
        "effort": _effort(),
        "stopping": dict(stopping),
        "session": SESSION_VERSION,
        "plan": PLAN_VERSION,
    }
    return json.loads(_canonical_json(settings))  # plain JSON types only (paths → text)


def settings_hash(settings: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of ``settings``."""
    return hashlib.sha256(_canonical_json(settings).encode()).hexdigest()[:16]


def slot_id(key: Mapping[str, Any], pair: PairJob) -> str:
    """The hash of a unit's slot: its key (dataset, case_id, target, model, prompter, user,
    seed) and the pair's steps and keep_initial."""
    slot = {**key, "steps": pair.steps, "keep_initial": pair.keep_initial}
    return hashlib.sha256(_canonical_json(slot).encode()).hexdigest()[:24]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The settings that differ, as ``name (old → new)`` with dotted names, e.g.
    ``metrics.nsd_tolerance_mm (2.0 → 3.0)``."""
    a, b = _flatten(old), _flatten(new)
    out = []
    for name in sorted(set(a) | set(b)):
        if a.get(name, "(unset)") != b.get(name, "(unset)"):
            out.append(f"{name} ({a.get(name, '(unset)')!r} → {b.get(name, '(unset)')!r})")
    return out


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, or of the names and bytes of every file under a folder (a
    DICOM series); cached per (path, size, modification time) within a process."""
    p = Path(path)
    if p.is_dir():
        digest = hashlib.sha256()
        for child in sorted(c for c in p.rglob("*") if c.is_file()):
            digest.update(str(child.relative_to(p)).encode() + b"\0")
            digest.update(file_sha256(child).encode())
        return digest.hexdigest()
    stat = os.stat(p)
    return _file_sha256(str(p), stat.st_size, stat.st_mtime_ns)


def data_fingerprint(case: Any) -> dict[str, str]:
    """What a case's units read: sha256 of the image file(s), of the label file, and of the
    target rules in force (the ``labels`` of ``dataset.json`` and its target spec, after any
    override of the experiment). Editing any of them changes every unit id of the case."""
    rules = {
        "labels": dict(case.labels),
        "targets": case.spec.model_dump(mode="json"),
        "channel": case.channel,
    }
    return {
        "image": file_sha256(case.image_path),
        "label": file_sha256(case.label_path),
        "target_rules": hashlib.sha256(_canonical_json(rules).encode()).hexdigest(),
    }
