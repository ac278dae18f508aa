"""Stale results: stored units of the experiment's slots that were computed with other settings.

A run into an output folder that already holds results checks, before anything runs, every
stored unit that the experiment would compute again (same dataset, case, model, canonical
prompter and user, steps, keep_initial and seed): if its recorded settings differ from the
experiment's (a metric setting, the stopping rules, a model option, a prompter version, …), the
run is refused with the changed settings named, unless ``replace_stale`` deletes those units
first. Units written before schema 2 recorded no settings; they count as stale when they collide.

Changes of the *data* (a label or image file, the target rules) are not refused: the affected
units get new ids and replace the stored ones as they are computed (:mod:`radioactive.runner.plan`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.runner.identity import diff_settings
from radioactive.runner.plan import CaseJob, StoredUnit

__all__ = ["StaleResultsError", "find_stale", "pair_signature", "stale_error", "stored_for_jobs"]


class StaleResultsError(RadioactiveError):
    """The output folder holds results of the same units computed with other settings."""


def pair_signature(unit: Mapping[str, Any]) -> str:
    """A stored unit's :attr:`PairJob.signature` ("" for units written before schema 2)."""
    versions = unit.get("versions")
    if not versions:
        return ""  # written before schema 2: unknown
    return json.dumps(
        [unit["prompter"], unit.get("user") or "", versions.get("steps"),
         versions.get("keep_initial")],
        sort_keys=True, separators=(",", ":"), default=str,
    )  # fmt: skip


def stored_for_jobs(
    stored: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str, str], list[StoredUnit]]:
    """The stored units by (dataset, case_id, model), as case jobs carry them."""
    out: dict[tuple[str, str, str], list[StoredUnit]] = defaultdict(list)
    for u in stored:
        seed = u.get("seed")
        out[u["dataset"], u["case_id"], u["model"]].append(
            StoredUnit(
                unit_id=u["unit_id"],
                slot_id=u.get("slot_id"),
                status=str(u["status"]),
                pair=pair_signature(u),
                seed=int(seed) if seed is not None else 0,
            )
        )
    return out


@dataclass(frozen=True)
class Stale:
    unit_id: str
    what: str  # "model × prompter [+ user]"
    changes: tuple[str, ...]


def _canonical(spec: str | None, kind: str) -> str:
    from radioactive.prompts.base import get_prompter, get_user

    if not spec:
        return ""
    try:
        return (get_prompter if kind == "prompter" else get_user)(spec).spec
    except RadioactiveError:
        return spec


def find_stale(jobs: Sequence[CaseJob], stored: Iterable[Mapping[str, Any]]) -> list[Stale]:
    """Stored units of the jobs' slots whose settings differ from the jobs' (or are unknown)."""
    by_job: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for u in stored:
        if u["prompter"] != "*" and u["case_id"] != "*":
            by_job[u["dataset"], u["case_id"], u["model"]].append(u)
    out: list[Stale] = []
    for job in jobs:
        units = by_job.get((job.dataset, job.case_id, job.model_label))
        if not units:
            continue
        settings = json.loads(job.settings)
        pairs = {p.signature: p for p in job.pairs}
        legacy = {(p.prompter, p.user or "") for p in job.pairs}
        for u in units:
            seed = u.get("seed")
            if seed is None or int(seed) not in job.seeds:
                continue
            what = f"{u['model']} × {u['prompter']}" + (f" + {u['user']}" if u.get("user") else "")
            if not u.get("versions"):
                pair_key = (_canonical(u["prompter"], "prompter"), _canonical(u["user"], "user"))
                if pair_key in legacy:
                    why = "settings not recorded (written before results schema 2)"
                    out.append(Stale(u["unit_id"], what, (why,)))
                continue
            pair = pairs.get(pair_signature(u))
            if pair is None:
                continue
            old = u["versions"].get("settings") or {}
            changes = diff_settings(old, {**settings, **pair.sources()})
            if changes:
                out.append(Stale(u["unit_id"], what, tuple(changes)))
    return out


def stale_error(stale: Sequence[Stale], output: Path) -> StaleResultsError:
    """The refusal for ``stale`` units: which settings changed, for how many units, the fix."""
    by_change: dict[tuple[str, ...], list[Stale]] = defaultdict(list)
    for s in stale:
        by_change[s.changes].append(s)
    lines = []
    for changes, units in sorted(by_change.items(), key=lambda kv: -len(kv[1])):
        whats = sorted({u.what for u in units})
        shown = ", ".join(whats[:3]) + (", …" if len(whats) > 3 else "")
        lines.append(f"  {'; '.join(changes)}: {len(units)} units ({shown})")
    n = len(stale)
    return StaleResultsError(
        f"{n} stored unit{'s' if n != 1 else ''} of this experiment were computed with other "
        "settings; running would mix two settings in one results folder. Changed:\n"
        + "\n".join(lines),
        path=output,
        fix="write to a new output folder (--out), or rerun with --replace-stale "
        f"(run_experiment(..., replace_stale=True)) to delete these {n} units and compute them "
        "again with the current settings",
    )
