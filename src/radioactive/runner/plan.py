"""The work plan: case jobs, units, seeds, and the worker that runs one case job.

A *unit* is one trajectory, keyed by (dataset, case, target, model, prompter, user, seed). Units
that share a volume and a model form one :class:`CaseJob`, run by one worker in a row, so the
model's embedding cache serves them all. Each unit draws from its own generator, derived with
``numpy.random.SeedSequence`` from the seed and the unit's key: results do not depend on the
order, the executor or which units ran before.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radioactive.session import SESSION_VERSION, Scoring, Stopping, run_trajectory

PLAN_VERSION = "1"


@dataclass(frozen=True)
class PairJob:
    prompter: str
    user: str | None
    steps: int
    keep_initial: bool


@dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs to run all units of one (dataset, case, model)."""

    dataset: str
    dataset_root: str
    modality: str
    category: str | None
    case_id: str
    model_label: str
    model_name: str
    model_options: dict[str, Any]
    pairs: tuple[PairJob, ...]
    seeds: tuple[int, ...]
    context: str  # hash of the settings that change numbers (metrics, stopping, model options)
    nsd_tolerance_mm: float
    tolerance_mm_by_label: dict[str, float]
    surface: bool
    dice_target: float | None
    effort_budget_s: float | None
    target_spec: dict[str, Any] | None = None
    max_targets: int | None = None
    save_predictions: bool = False
    output_dir: str = ""
    cache_dir: str | None = None
    finished: frozenset[str] = field(default_factory=frozenset)


@dataclass
class UnitResult:
    unit: dict[str, Any]
    steps: list[dict[str, Any]]


def unit_key(job: CaseJob, target: str, pair: PairJob, seed: int) -> dict[str, Any]:
    return {
        "dataset": job.dataset,
        "case_id": job.case_id,
        "target": target,
        "model": job.model_label,
        "prompter": pair.prompter,
        "user": pair.user or "",
        "seed": int(seed),
    }


def unit_id(key: dict[str, Any], pair: PairJob, context: str) -> str:
    """Stable id of a unit: its key plus everything that changes its numbers."""
    blob = json.dumps(
        {**key, "steps": pair.steps, "keep_initial": pair.keep_initial, "context": context},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def unit_rng(key: dict[str, Any]) -> np.random.Generator:
    """The unit's generator: ``SeedSequence(seed)`` spawned by the hash of the rest of its key."""
    rest = json.dumps({k: v for k, v in key.items() if k != "seed"}, sort_keys=True)
    words = np.frombuffer(hashlib.sha256(rest.encode()).digest()[:16], dtype=np.uint32)
    seq = np.random.SeedSequence(entropy=int(key["seed"]), spawn_key=tuple(int(w) for w in words))
    return np.random.default_rng(seq)


_MODELS: dict[tuple[str, str], Any] = {}


def _model(job: CaseJob) -> Any:
    """Models are built once per worker process and reused across jobs."""
    import inspect

    from radioactive.models import backend_class, get_model

    key = (job.model_label, json.dumps(job.model_options, sort_keys=True))
    if key not in _MODELS:
        options = dict(job.model_options)
        takes_cache = "cache" in inspect.signature(backend_class(job.model_name)).parameters
        if takes_cache and job.cache_dir and "cache" not in options:
            options["cache"] = job.cache_dir
        _MODELS[key] = get_model(job.model_name, **options)
    return _MODELS[key]


def _error_unit(
    job: CaseJob, key: dict[str, Any], uid: str, message: str, wall: float
) -> UnitResult:
    unit = {**key, "unit_id": uid, "status": "error", "error": message, "n_steps": 0,
            "wall_s": wall}  # fmt: skip
    row = {**key, "unit_id": uid, "step": 0, "status": "error", "error": message,
           "modality": job.modality, "category": job.category, "wall_s": wall}  # fmt: skip
    return UnitResult(unit, [row])


def run_case_job(job: CaseJob, emit: Callable[[UnitResult], None]) -> None:
    """Run every unfinished unit of a case job, passing each unit's result to ``emit``."""
    for result in iter_case_job(job):
        emit(result)


def iter_case_job(job: CaseJob) -> Iterator[UnitResult]:
    """Run every unfinished unit of a case job, yielding each unit's result when it completes.

    Failures are isolated: a case that does not load becomes one error unit (target ``"*"``);
    a model or prompter error fails only its unit.
    """
    from radioactive.data.case import TargetSpec
    from radioactive.data.formats import open_dataset
    from radioactive.prompts import get_prompter, get_user

    t0 = time.perf_counter()
    try:
        spec = TargetSpec(**job.target_spec) if job.target_spec else None
        case = open_dataset(job.dataset_root, targets=spec).case(job.case_id)
        image = case.image
        targets = case.targets[: job.max_targets] if job.max_targets else case.targets
    except Exception as exc:
        pair = PairJob("*", None, 0, True)
        key = unit_key(job, "*", pair, 0) | {"prompter": "*"}
        uid = unit_id(key, pair, job.context)
        if uid not in job.finished:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - t0)
        return
    todo = []
    for t in targets:
        for pair in job.pairs:
            for seed in job.seeds:
                key = unit_key(job, t.name, pair, seed)
                uid = unit_id(key, pair, job.context)
                if uid not in job.finished:
                    todo.append((t, pair, seed, key, uid))
    if not todo:
        case.release()
        return
    from radioactive.models.base import contract_of, prepare_model

    try:
        model = _model(job)
        prepare_model(model, image.array, image.spacing_mm, job.modality)
        contract = contract_of(model)
    except Exception as exc:
        for *_, key, uid in todo:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - t0)
        case.release()
        return
    for t, pair, _seed, key, uid in todo:
        start = time.perf_counter()
        try:
            mask = t.mask
            tol = job.tolerance_mm_by_label.get(t.label_name, job.nsd_tolerance_mm)
            steps = run_trajectory(
                model,
                mask,
                image.spacing_mm,
                get_prompter(pair.prompter),
                unit_rng(key),
                user=get_user(pair.user) if pair.user else None,
                steps=pair.steps,
                keep_initial=pair.keep_initial,
                stopping=Stopping(job.dice_target, job.effort_budget_s),
                scoring=Scoring(tol, job.surface),
                keep_predictions=job.save_predictions,
            )
        except Exception as exc:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - start)
            continue
        rows = []
        versions = json.dumps(
            {"session": SESSION_VERSION, "plan": PLAN_VERSION, "model": model.card.version,
             "prompter": get_prompter(pair.prompter).source,
             "user": get_user(pair.user).source if pair.user else None,
             "contract": contract},
            sort_keys=True,
        )  # fmt: skip
        for s in steps:
            row = s.row()
            row.update(key)
            row.update(
                unit_id=uid, target_kind=t.kind, modality=job.modality, category=job.category,
                versions=versions, error=None,
                prompts=json.dumps(row["prompts"]) if row["prompts"] is not None else None,
                realism=json.dumps(row["realism"]) if row["realism"] is not None else None,
            )  # fmt: skip
            rows.append(row)
        if job.save_predictions and steps and steps[-1].prediction is not None:
            path = Path(job.output_dir) / "predictions" / f"{uid}.nii.gz"
            image.save(steps[-1].prediction, path)
            rows[-1]["prediction_path"] = str(path)
        unit = {**key, "unit_id": uid, "status": "ok", "error": None, "n_steps": len(rows),
                "wall_s": time.perf_counter() - start}  # fmt: skip
        yield UnitResult(unit, rows)
    case.release()


def _message(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno})"
    return text
