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

from radioactive.records import Status
from radioactive.runner.diagnostics import propagates, unit_diagnostics
from radioactive.runner.identity import PLAN_VERSION, PairJob, data_fingerprint, slot_id
from radioactive.runner.writes import BackgroundWriter
from radioactive.session import SESSION_VERSION, Scoring, Stopping, run_trajectory

__all__ = [
    "PLAN_VERSION",
    "CaseJob",
    "PairJob",
    "StoredUnit",
    "UnitResult",
    "iter_case_job",
    "run_case_job",
    "unit_id",
    "unit_key",
    "unit_rng",
]

#: the pair of the units that stand for a whole case or target (load errors, skipped targets)
CASE_PAIR = PairJob("*", None, 0, True)


@dataclass(frozen=True)
class StoredUnit:
    """A unit the store already holds, as a case job needs to know it."""

    unit_id: str
    slot_id: str | None
    status: str
    pair: str  # PairJob.signature (CASE_PAIR's for load errors and skipped targets)
    seed: int


@dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs to run all units of one (dataset, case, model): frozen and
    picklable, with only the stored units of this case and model."""

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
    context: str  # hash of the settings that change numbers (see runner.identity)
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
    #: the persistent embedding cache's folder and bound (``None``: none)
    embedding_cache: str | None = None
    embedding_cache_bytes: int = 0
    #: ids of this job's units that are done (not computed again)
    finished: frozenset[str] = field(default_factory=frozenset)
    #: the settings of this job's units as canonical JSON (runner.identity.job_settings)
    settings: str = "{}"
    #: every unit of this case and model the store holds (stale ones are replaced)
    stored: tuple[StoredUnit, ...] = ()


@dataclass
class UnitResult:
    unit: dict[str, Any]
    steps: list[dict[str, Any]]
    #: stale units this one replaces (deleted when it is written)
    replaces: tuple[str, ...] = ()


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
    """Stable id of a unit: its key plus everything that changes its numbers (the job's
    settings and data in ``context``; the pair's ``spec@version`` strings and scoring rules)."""
    blob = json.dumps(
        {**key, "steps": pair.steps, "keep_initial": pair.keep_initial, "context": context,
         "pair": pair.sources()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def unit_rng(key: dict[str, Any]) -> np.random.Generator:
    """The unit's generator: ``SeedSequence(seed)`` spawned by the hash of the rest of its key."""
    rest = json.dumps({k: v for k, v in key.items() if k != "seed"}, sort_keys=True)
    words = np.frombuffer(hashlib.sha256(rest.encode()).digest()[:16], dtype=np.uint32)
    seq = np.random.SeedSequence(entropy=int(key["seed"]), spawn_key=tuple(int(w) for w in words))
    return np.random.default_rng(seq)


_MODELS: dict[tuple[str, str], Any] = {}


def build_model(name: str, options: dict[str, Any], cache_dir: str | None) -> Any:
    """The model ``name`` with ``options``, its checkpoints looked up in ``cache_dir`` when the
    adapter takes a ``cache`` and the options name none."""
    import inspect

    from radioactive.models import backend_class, get_model

    options = dict(options)
    takes_cache = "cache" in inspect.signature(backend_class(name)).parameters
    if takes_cache and cache_dir and "cache" not in options:
        options["cache"] = cache_dir
    return get_model(name, **options)


def _model(job: CaseJob) -> Any:
    """Models are built once per worker process and reused across jobs."""
    key = (job.model_label, json.dumps(job.model_options, sort_keys=True))
    if key not in _MODELS:
        _MODELS[key] = build_model(job.model_name, job.model_options, job.cache_dir)
    model = _MODELS[key]
    if hasattr(model, "use_disk_cache"):
        model.use_disk_cache(_disk_cache(job.embedding_cache, job.embedding_cache_bytes))
    return model


_DISK_CACHES: dict[tuple[str, int], Any] = {}


def _disk_cache(directory: str | None, max_bytes: int) -> Any:
    """The persistent embedding cache of a folder, opened once per worker process."""
    if directory is None:
        return None
    from radioactive.models.embedding_store import DiskEmbeddingCache

    key = (directory, max_bytes)
    if key not in _DISK_CACHES:
        _DISK_CACHES[key] = DiskEmbeddingCache(directory, max_bytes)
    return _DISK_CACHES[key]


def _identity(job: CaseJob, pair: PairJob, data: dict[str, str] | None) -> dict[str, Any]:
    """The ``units.versions`` record of a unit: settings, the pair's spec@version, data."""
    settings = {**json.loads(job.settings), **pair.sources()}
    return {"settings": settings, "data": data, "steps": pair.steps,
            "keep_initial": pair.keep_initial}  # fmt: skip


def _unit(
    job: CaseJob, key: dict[str, Any], uid: str, pair: PairJob, data: dict[str, str] | None,
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    return {**key, "unit_id": uid, "dataset_root": job.dataset_root,
            "versions": _identity(job, pair, data), "slot_id": slot_id(key, pair),
            **fields}  # fmt: skip


def _error_unit(
    job: CaseJob, key: dict[str, Any], uid: str, message: str, wall: float,
    pair: PairJob = CASE_PAIR, data: dict[str, str] | None = None, replaces: tuple[str, ...] = (),
) -> UnitResult:  # fmt: skip
    unit = _unit(job, key, uid, pair, data, status=Status.ERROR.value, error=message, n_steps=0,
                 wall_s=wall)  # fmt: skip
    row = {**key, "unit_id": uid, "step": 0, "status": Status.ERROR.value, "error": message,
           "modality": job.modality, "category": job.category, "wall_s": wall}  # fmt: skip
    return UnitResult(unit, [row], replaces)


def run_case_job(job: CaseJob, emit: Callable[[UnitResult], None]) -> None:
    """Run every unfinished unit of a case job, passing each unit's result to ``emit``."""
    for result in iter_case_job(job):
        emit(result)


@dataclass
class _Todo:
    key: dict[str, Any]
    uid: str
    pair: PairJob
    target: Any = None
    reason: str | None = None  # a skipped target


def _stale(job: CaseJob, planned: dict[str, _Todo]) -> tuple[dict[str, list[str]], list[str]]:
    """The stored units of this job that the plan no longer has: by slot (replaced by the
    planned unit of that slot), and those whose slot is gone (a target no longer there)."""
    mine = {pair.signature for pair in job.pairs}
    by_slot: dict[str, list[str]] = {}
    gone: list[str] = []
    slots = {slot_id(t.key, t.pair) for t in planned.values()}
    for unit in job.stored:
        if unit.unit_id in planned:
            continue
        ours = unit.pair == CASE_PAIR.signature or (unit.pair in mine and unit.seed in job.seeds)
        if not ours:
            continue  # another experiment's unit in the same output folder: kept
        if unit.slot_id in slots:
            by_slot.setdefault(unit.slot_id, []).append(unit.unit_id)
        else:
            gone.append(unit.unit_id)
    return by_slot, gone


def data_context(job: CaseJob, data: dict[str, Any]) -> str:
    """The context of a job's unit ids on one case: its settings' hash and the case's data
    fingerprint (:func:`~radioactive.runner.identity.data_fingerprint`)."""
    data_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return f"{job.context}:{data_hash}"


#: the case of this process's previous job, with its arrays loaded (see :func:`_loaded_once`)
_LAST_CASE: dict[tuple[Any, ...], Any] = {}


def _file_state(path: Any) -> tuple[str, int, int]:
    st = Path(path).stat()
    return str(path), st.st_mtime_ns, st.st_size


def _loaded_once(case: Any) -> Any:
    """``case``, or the same case of this process's previous job with its arrays already
    loaded: the jobs of a run go case by case, one per model, so each case is read once. A
    changed image or label file, channel, label map or target rule makes it a new case; the
    previous one is released."""
    key = (
        _file_state(case.image_path), _file_state(case.label_path), case.channel,
        json.dumps(dict(case.labels), sort_keys=True), case.spec.model_dump_json(),
    )  # fmt: skip
    kept = _LAST_CASE.get(key)
    if kept is not None:
        return kept
    release_loaded_case()
    _LAST_CASE[key] = case
    return case


def release_loaded_case() -> None:
    """Free the case kept from the previous job (at the end of a run)."""
    for kept in _LAST_CASE.values():
        kept.release()
    _LAST_CASE.clear()


def iter_case_job(job: CaseJob) -> Iterator[UnitResult]:
    """Run every unfinished unit of a case job, yielding each unit's result when it completes.

    Failures are isolated: a case that does not load becomes one error unit (target ``"*"``);
    a model or prompter error fails only its unit. A target the case reports in
    ``skipped_targets`` becomes one ``skipped`` unit (prompter ``"*"``) with the reason. Stored
    units of this case and model that were made from other data (a label, the image or the
    target rules changed) or from a target no longer there are replaced.
    """
    from radioactive.data.case import TargetSpec
    from radioactive.data.formats import open_dataset

    t0 = time.perf_counter()
    try:
        spec = TargetSpec(**job.target_spec) if job.target_spec else None
        case = _loaded_once(open_dataset(job.dataset_root, targets=spec).case(job.case_id))
        image = case.image
        targets = case.targets[: job.max_targets] if job.max_targets else case.targets
        skipped = list(getattr(case, "skipped_targets", []))
        data = data_fingerprint(case)
    except Exception as exc:
        key = unit_key(job, "*", CASE_PAIR, 0)
        uid = unit_id(key, CASE_PAIR, job.context)
        if uid not in job.finished:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - t0)
        return
    context = data_context(job, data)
    planned: dict[str, _Todo] = {}
    for t in targets:
        for pair in job.pairs:
            for seed in job.seeds:
                key = unit_key(job, t.name, pair, seed)
                planned.setdefault(unit_id(key, pair, context), _Todo(key, "", pair, target=t))
    for name, reason in skipped:
        key = unit_key(job, str(name), CASE_PAIR, 0)
        item = _Todo(key, "", CASE_PAIR, reason=str(reason))
        planned.setdefault(unit_id(key, CASE_PAIR, context), item)
    for uid, item in planned.items():
        item.uid = uid
    by_slot, gone = _stale(job, planned)
    todo = [t for t in planned.values() if t.uid not in job.finished]

    def replaces(item: _Todo) -> tuple[str, ...]:
        nonlocal gone
        extra, gone = gone, []  # units of vanished slots go with the first unit written
        return (*by_slot.get(slot_id(item.key, item.pair), ()), *extra)

    for item in [t for t in todo if t.reason is not None]:
        unit = _unit(job, item.key, item.uid, item.pair, data, status=Status.SKIPPED.value,
                     reason=item.reason, n_steps=0, wall_s=0.0)  # fmt: skip
        yield UnitResult(unit, [], replaces(item))
    todo = [t for t in todo if t.reason is None]
    if not todo:
        if gone:
            yield UnitResult({}, [], tuple(gone))  # only deletions
        return
    from radioactive.models.base import contract_of, prepare_model

    try:
        model = _model(job)
        prepare_model(model, image.array, image.spacing_mm, job.modality)
        contract = contract_of(model)
    except Exception as exc:
        for item in todo:
            yield _error_unit(job, item.key, item.uid, _message(exc), time.perf_counter() - t0,
                              item.pair, data, replaces(item))  # fmt: skip
        return
    joint = [t for t in todo if t.pair.multi_class]
    # prediction files are written while the next unit runs (see radioactive.runner.writes)
    writer: BackgroundWriter[UnitResult] | None = (
        BackgroundWriter() if job.save_predictions else None
    )
    try:
        yield from _single_units(job, case, image, model, contract, todo, data, replaces, writer)
    finally:
        if writer is not None:
            writer.close()
    yield from _joint_units(job, case, image, model, contract, planned, joint, data, replaces)


def _single_units(
    job: CaseJob, case: Any, image: Any, model: Any, contract: Any, todo: list[_Todo],
    data: dict[str, str] | None, replaces: Callable[[_Todo], tuple[str, ...]],
    writer: BackgroundWriter[UnitResult] | None,
) -> Iterator[UnitResult]:  # fmt: skip
    """The units of ``todo`` that segment one target each, in order of completion."""
    from radioactive.prompts import get_prompter, get_user

    for item in [t for t in todo if not t.pair.multi_class]:
        t, pair, key, uid = item.target, item.pair, item.key, item.uid
        start = time.perf_counter()
        try:
            tol = job.tolerance_mm_by_label.get(t.label_name, job.nsd_tolerance_mm)
            steps = run_trajectory(
                model,
                t.mask,
                image.spacing_mm,
                get_prompter(pair.prompter),
                unit_rng(key),
                user=get_user(pair.user) if pair.user else None,
                steps=pair.steps,
                keep_initial=pair.keep_initial,
                stopping=Stopping(job.dice_target, job.effort_budget_s),
                scoring=Scoring(tol, job.surface, **dict(pair.scoring)),
                keep_predictions=job.save_predictions,
                keep_final_prediction=True,
            )
        except Exception as exc:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - start, pair,
                              data, replaces(item))  # fmt: skip
            continue
        wall = time.perf_counter() - start
        done = _ok_unit(job, case, image, model, contract, item, steps, data, wall,
                        replaces(item), writer)  # fmt: skip
        if done is not None:
            yield done
        if writer is not None:
            yield from writer.ready()
    if writer is not None:
        yield from writer.drain()


def _ok_unit(
    job: CaseJob, case: Any, image: Any, model: Any, contract: Any, item: _Todo,
    steps: list[Any], data: dict[str, str] | None, wall: float, replaces: tuple[str, ...],
    writer: BackgroundWriter[UnitResult] | None = None,
) -> UnitResult | None:  # fmt: skip
    """The unit and step rows of a finished trajectory; ``None`` when ``writer`` saves its
    prediction file and releases the result once the file is written."""
    from radioactive.prompts import get_prompter, get_user

    t, pair, key, uid = item.target, item.pair, item.key, item.uid
    rows = []
    versions = json.dumps(
        {"session": SESSION_VERSION, "plan": PLAN_VERSION, "model": model.card.version,
         "prompter": pair.prompter_source or get_prompter(pair.prompter).source,
         "user": pair.user_source or (get_user(pair.user).source if pair.user else None),
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
    save: tuple[Any, Path] | None = None
    if job.save_predictions and steps and steps[-1].prediction is not None:
        save = (steps[-1].prediction, Path(job.output_dir) / "predictions" / f"{uid}.nii.gz")
        rows[-1]["prediction_path"] = str(save[1])
    one_value = not case.spec.includes.get(t.label_name)
    final = steps[-1].prediction if steps else None
    propagated = propagates(get_prompter(pair.prompter), model,
                            slice_predictor_given=not pair.multi_class)  # fmt: skip
    diagnostics = unit_diagnostics(final, t.mask, (s.interaction for s in steps),
                                   image.spacing_mm, propagated=propagated)  # fmt: skip
    unit = _unit(job, key, uid, pair, data, status=Status.OK.value, error=None,
                 n_steps=len(rows), wall_s=wall,
                 label_value=int(t.label_value) if one_value else None,
                 **diagnostics)  # fmt: skip
    result = UnitResult(unit, rows, replaces)
    if save is None:
        return result
    if writer is None:
        image.save(*save)
        return result
    writer.add(result, image.save, *save)
    return None


def _joint_units(
    job: CaseJob, case: Any, image: Any, model: Any, contract: Any,
    planned: dict[str, _Todo], todo: list[_Todo], data: dict[str, str] | None,
    replaces: Callable[[_Todo], tuple[str, ...]],
) -> Iterator[UnitResult]:  # fmt: skip
    """The units of multi-class pairs: per (pair, seed), every target of the case in one
    trajectory set (:func:`radioactive.session.run_joint_trajectories`); a group runs whole when
    any of its units is to do, and only those are written."""
    from radioactive.prompts import get_prompter, get_user
    from radioactive.session import run_joint_trajectories

    wanted = {t.uid for t in todo}
    groups: dict[tuple[str, int], list[_Todo]] = {}
    for item in planned.values():
        if item.pair.multi_class and item.reason is None:
            groups.setdefault((item.pair.signature, int(item.key["seed"])), []).append(item)
    for items in groups.values():
        if not wanted & {t.uid for t in items}:
            continue
        pair = items[0].pair
        start = time.perf_counter()
        tols = [job.tolerance_mm_by_label.get(t.target.label_name, job.nsd_tolerance_mm)
                for t in items]  # fmt: skip
        try:
            if len(set(tols)) > 1:
                raise ValueError("the targets of a multi-class case need one NSD tolerance")
            runs = run_joint_trajectories(
                model, [t.target.mask for t in items], image.spacing_mm,
                get_prompter(pair.prompter), [unit_rng(t.key) for t in items],
                user=get_user(pair.user) if pair.user else None, steps=pair.steps,
                keep_initial=pair.keep_initial,
                scoring=Scoring(tols[0], job.surface, **dict(pair.scoring)),
                keep_predictions=job.save_predictions, keep_final_prediction=True,
            )  # fmt: skip
        except Exception as exc:
            wall = time.perf_counter() - start
            for item in items:
                if item.uid in wanted:
                    yield _error_unit(job, item.key, item.uid, _message(exc), wall, item.pair,
                                      data, replaces(item))  # fmt: skip
            continue
        wall = (time.perf_counter() - start) / len(items)
        for item, steps in zip(items, runs, strict=True):
            if item.uid in wanted:
                done = _ok_unit(job, case, image, model, contract, item, steps, data, wall,
                                replaces(item))  # fmt: skip
                if done is not None:  # always, without a writer
                    yield done


def _message(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno})"
    return text
