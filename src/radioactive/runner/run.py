"""Run an experiment: plan the case jobs, execute them, store every unit as it completes.

``run_experiment(config, output)`` is what ``radioactive run`` calls. Running again on the same
output directory resumes: units already in the store are skipped (errors too, unless
``retry_errors``), so a run killed at any point finishes with exactly the rows of an uninterrupted
run and no duplicates.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radioactive import __version__
from radioactive.errors import RadioactiveError
from radioactive.records import Status
from radioactive.runner.config import ExperimentConfig, ModelSpec, ValidationReport, validate
from radioactive.runner.executors import execute
from radioactive.runner.identity import (
    PairJob,
    canonical_pair,
    job_settings,
    settings_hash,
    slot_id,
)
from radioactive.runner.plan import CaseJob, StoredUnit, UnitResult, release_loaded_case, unit_id
from radioactive.runner.stale import find_stale, pair_signature, stale_error, stored_for_jobs
from radioactive.runner.store import ResultStore, StoreError


@dataclass
class RunReport:
    """What a run did."""

    run_id: str
    output: Path
    jobs: int
    units_written: int = 0
    units_failed: int = 0
    units_already_done: int = 0
    skipped_combos: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    #: what the datasets left out (images without a label, hidden files, …)
    warnings: list[str] = field(default_factory=list)
    #: units written as ``skipped`` (model × pair that cannot run, targets not scored)
    units_skipped: int = 0
    #: stale units deleted (other settings with ``replace_stale``, or other data)
    units_replaced: int = 0


def _settings(
    config: ExperimentConfig, model: ModelSpec, contract: dict[str, Any] | None
) -> dict[str, Any]:
    """The settings of a model's units on one dataset (see :mod:`radioactive.runner.identity`)."""
    return job_settings(
        model_name=model.name,
        model_options=model.options,
        contract=contract["contract"] if contract else None,
        metrics=config.metrics.model_dump(mode="json"),
        stopping={
            "dice_target": config.stopping.dice_target,
            "effort_budget_s": config.stopping.effort_budget_s,
        },
    )


def _context(config: ExperimentConfig, model: Any, contract: dict[str, Any] | None) -> str:
    """Hash of the settings that change a unit's numbers (part of every unit id), the input
    contract the model will use on the dataset included."""
    return settings_hash(_settings(config, model, contract))


@dataclass
class Plan:
    """The case jobs of an experiment and what it cannot run."""

    jobs: list[CaseJob]
    #: "model × pair: reason" of each combination that cannot run
    skipped: list[str]
    #: one ``skipped`` unit per dataset × model × pair that cannot run
    skipped_units: list[UnitResult]
    #: the datasets' problems, "dataset: problem"
    warnings: list[str]


def plan_experiment(
    config: ExperimentConfig,
    report: ValidationReport,
    output: Path,
    *,
    stored: Sequence[Mapping[str, Any]] = (),
    finished: frozenset[str] | None = None,
    retry_errors: bool = False,
) -> Plan:
    """Expand an experiment into case jobs with canonical pairs and their settings.

    Each job carries the stored units of its own case and model (``stored``, as
    :meth:`ResultStore.stored_units` gives them): those done are its ``finished`` ids (errors
    left out with ``retry_errors``). ``finished`` instead gives every job the same ids.

    Raises :class:`~radioactive.models.contracts.UnknownModalityError` before anything runs when
    a model's input contract depends on the modality and a dataset does not state it.
    """
    from radioactive.data.registry import resolve_datasets
    from radioactive.models import planned_contract

    pairs = {p: canonical_pair(p.prompter, p.user, p.steps, p.keep_initial, dict(p.scoring),
                               p.multi_class)
             for p in config.pairs()}  # fmt: skip
    ordered = list(dict.fromkeys(pairs.values()))
    runnable = {(c.model, pairs[c.pair]) for c in report.combos if c.runs and c.pair in pairs}
    not_run = [c for c in report.combos if not c.runs]
    by_job = stored_for_jobs(stored)
    plan = Plan([], [f"{c.model} × {c.label}: {c.reason}" for c in not_run], [], [])
    cache = str(config.cache_dir) if config.cache_dir else None
    embeddings = str(config.embedding_cache) if config.embedding_cache else None
    for spec in config.datasets:
        for ds in resolve_datasets(spec.name, config.cache_dir):
            if spec.datasets and ds.name not in spec.datasets:
                continue
            plan.warnings += [f"{ds.name}: {p}" for p in getattr(ds, "problems", [])]
            for c in not_run:
                pair = pairs.get(c.pair) or canonical_pair(
                    c.pair.prompter, c.pair.user, c.pair.steps, c.pair.keep_initial,
                    dict(c.pair.scoring), c.pair.multi_class,
                )  # fmt: skip
                plan.skipped_units.append(_skipped_combo(ds, c.model, pair, str(c.reason)))
            case_ids = [c for c in ds.case_ids if not spec.cases or c in spec.cases]
            modality = spec.modality or ds.modality_group
            per_model = []
            for model in config.models:
                label = model.label or model.name
                model_pairs = tuple(p for p in ordered if (label, p) in runnable)
                if not model_pairs:
                    continue
                contract = planned_contract(
                    model.name, model.options, modality, where=Path(ds.root) / "dataset.json"
                )
                settings = _settings(config, model, contract)
                text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
                per_model.append((model, label, model_pairs, settings, text))
            # case by case, each case's models in a row: a process reads the case once for all
            for case_id in case_ids:
                for model, label, model_pairs, settings, text in per_model:
                    mine = tuple(by_job.get((ds.name, case_id, label), ()))
                    plan.jobs.append(
                        CaseJob(
                            dataset=ds.name,
                            dataset_root=str(ds.root),
                            modality=modality,
                            category=ds.meta.category,
                            case_id=case_id,
                            model_label=label,
                            model_name=model.name,
                            model_options=dict(model.options),
                            pairs=model_pairs,
                            seeds=tuple(config.seeds),
                            context=settings_hash(settings),
                            nsd_tolerance_mm=config.metrics.nsd_tolerance_mm,
                            tolerance_mm_by_label=dict(config.metrics.tolerance_mm_by_label),
                            surface=config.metrics.surface,
                            dice_target=config.stopping.dice_target,
                            effort_budget_s=config.stopping.effort_budget_s,
                            target_spec=spec.targets.model_dump() if spec.targets else None,
                            max_targets=spec.max_targets_per_case,
                            save_predictions=config.save_predictions,
                            output_dir=str(output),
                            cache_dir=cache,
                            embedding_cache=embeddings,
                            embedding_cache_bytes=int(config.embedding_cache_gb * 1024**3),
                            finished=finished
                            if finished is not None
                            else _done(mine, retry_errors),
                            settings=text,
                            stored=mine,
                        )
                    )
    return plan


def _done(stored: Sequence[StoredUnit], retry_errors: bool) -> frozenset[str]:
    return frozenset(
        u.unit_id for u in stored if not (retry_errors and u.status == Status.ERROR.value)
    )


def _skipped_combo(ds: Any, model: str, pair: PairJob, reason: str) -> UnitResult:
    """The ``skipped`` unit of a model × pair that cannot run on a dataset (case and target
    ``*``, seed 0, no steps)."""
    key = {"dataset": ds.name, "case_id": "*", "target": "*", "model": model,
           "prompter": pair.prompter, "user": pair.user or "", "seed": 0}  # fmt: skip
    versions = {"settings": pair.sources(), "data": None, "steps": pair.steps,
                "keep_initial": pair.keep_initial}  # fmt: skip
    unit = {**key, "unit_id": unit_id(key, pair, f"skipped:{reason}"),
            "status": Status.SKIPPED.value, "reason": reason, "n_steps": 0, "wall_s": 0.0,
            "dataset_root": str(ds.root), "versions": versions,
            "slot_id": slot_id(key, pair)}  # fmt: skip
    return UnitResult(unit, [])


def build_jobs(
    config: ExperimentConfig, report: ValidationReport, finished: frozenset[str], output: Path
) -> tuple[list[CaseJob], list[str]]:
    """The case jobs of an experiment (each with ``finished`` as its done ids), and the model ×
    pair combinations skipped (with why). See :func:`plan_experiment`."""
    plan = plan_experiment(config, report, output, finished=finished)
    return plan.jobs, plan.skipped


def manifest(config: ExperimentConfig, jobs: list[CaseJob]) -> dict[str, Any]:
    """Provenance of a run: config, versions, git commit, environment, data and weight hashes."""
    from radioactive.data.cache import sha256_file
    from radioactive.models.checkpoints import CHECKPOINTS

    roots = sorted({j.dataset_root for j in jobs})
    checksums = {}
    for root in roots:
        js = Path(root) / "dataset.json"
        checksums[root] = sha256_file(js) if js.exists() else None
    models = {m.name for m in config.models}
    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("numpy", "torch", "duckdb", "SimpleITK", "nibabel"):
        module = sys.modules.get(mod)
        if module is not None:
            env[mod] = getattr(module, "__version__", "?")
    return {
        "config": config.model_dump(mode="json"),
        "package_version": __version__,
        "git_commit": _git_commit(),
        "environment": env,
        "dataset_checksums": checksums,
        "checkpoint_hashes": {n: CHECKPOINTS[n].sha256 for n in sorted(models) if n in CHECKPOINTS},
        "input_contracts": input_contracts(jobs),
    }


def input_contracts(jobs: list[CaseJob]) -> dict[str, dict[str, Any]]:
    """model label → dataset → the input contract its units use (or ``None``: not stated)."""
    from radioactive.models import planned_contract

    out: dict[str, dict[str, Any]] = {}
    for j in jobs:
        per = out.setdefault(j.model_label, {})
        if j.dataset not in per:
            per[j.dataset] = planned_contract(j.model_name, j.model_options, j.modality)
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_experiment(
    config: ExperimentConfig,
    output: str | Path | None = None,
    *,
    retry_errors: bool = False,
    replace_stale: bool = False,
    on_event: Callable[[UnitResult | None, int], None] | None = None,
) -> RunReport:
    """Validate, plan, execute and store an experiment (resuming what ``output`` already holds).

    Stored units of this experiment computed with other settings make the run refuse before
    anything runs (:class:`~radioactive.runner.stale.StaleResultsError`, naming the changed
    settings), unless ``replace_stale`` deletes them first. Units made from other data (an
    edited label, image or target rules) are recomputed and replace the stored ones.

    ``on_event(result, total_jobs)`` is called for every stored unit and with ``None`` for every
    finished job (the CLI draws its progress bars from it).
    """
    out = Path(output or config.output or "results")
    report = validate(config)
    if not report.ok:
        raise RadioactiveError(
            "the experiment does not validate:\n" + "\n".join(report.lines()),
            fix="fix the entries above (`radioactive validate CONFIG` checks without running)",
        )
    t0 = time.perf_counter()
    with ResultStore(out) as store:
        stored = store.stored_units()
        plan = plan_experiment(config, report, out, stored=stored, retry_errors=retry_errors)
        stale = find_stale(plan.jobs, stored)
        if stale and not replace_stale:
            raise stale_error(stale, out)
        replaced = store.delete_units(s.unit_id for s in stale)
        if replaced:
            gone = {s.unit_id for s in stale}
            stored = [u for u in stored if u["unit_id"] not in gone]
            plan = plan_experiment(config, report, out, stored=stored, retry_errors=retry_errors)
        jobs = plan.jobs
        run_id = store.start_run(manifest(config, jobs))
        result = RunReport(run_id=run_id, output=out, jobs=len(jobs),
                           skipped_combos=list(plan.skipped), warnings=list(plan.warnings),
                           units_replaced=replaced)  # fmt: skip
        result.units_already_done = sum(len(j.finished) for j in jobs)
        try:
            log = (out / "run.log").open("a", encoding="utf-8")
        except OSError as error:
            raise StoreError(
                f"cannot write the run log ({error.strerror or error})",
                path=out / "run.log",
                fix="choose an output directory you can write to (is it read-only or full?)",
            ) from error
        with log:
            _log(log, f"run {run_id} started: {len(jobs)} case jobs, "
                      f"{result.units_already_done} units done")  # fmt: skip
            for line in plan.warnings:
                _log(log, f"warning: {line}")
            _store_combo_skips(store, plan, stored, run_id, result)
            ex = config.executor
            try:
                for event in execute(jobs, ex.kind, ex.workers, ex.ray_address,
                                     ex.gpus_per_model):  # fmt: skip
                    if event is not None and not event.unit:  # only stale units to delete
                        result.units_replaced += store.delete_units(event.replaces)
                        continue
                    if event is not None:
                        _store_event(store, event, run_id, retry_errors, result, log)
                    if on_event is not None:
                        on_event(event, len(jobs))
            finally:
                release_loaded_case()  # the case an in-process job kept for the next one
            store.finish_run(run_id)
            _log(log, f"run {run_id} finished")
    result.wall_s = time.perf_counter() - t0
    return result


def _log(log: Any, line: str) -> None:
    log.write(f"{_now()} {line}\n")
    log.flush()


def _store_combo_skips(
    store: ResultStore, plan: Plan, stored: Sequence[Mapping[str, Any]], run_id: str,
    result: RunReport,
) -> None:  # fmt: skip
    """Write the skipped units of model × pair combinations that cannot run, and delete those
    stored for combinations of this experiment that now run (or now fail for another reason)."""
    planned = {u.unit["unit_id"] for u in plan.skipped_units}
    pairs = {p.signature for j in plan.jobs for p in j.pairs}
    pairs |= {pair_signature(u.unit) for u in plan.skipped_units}
    models = {j.model_label for j in plan.jobs} | {u.unit["model"] for u in plan.skipped_units}
    datasets = {j.dataset for j in plan.jobs} | {u.unit["dataset"] for u in plan.skipped_units}
    old = [u["unit_id"] for u in stored
           if u["case_id"] == "*" and u["target"] == "*" and u["status"] == Status.SKIPPED.value
           and u["model"] in models and u["dataset"] in datasets and pair_signature(u) in pairs
           and u["unit_id"] not in planned]  # fmt: skip
    result.units_replaced += store.delete_units(old)
    for event in plan.skipped_units:
        event.unit["run_id"] = run_id
        if store.write_unit(event.unit, event.steps):
            result.units_skipped += 1


def _store_event(
    store: ResultStore, event: UnitResult, run_id: str, retry_errors: bool, result: RunReport,
    log: Any,
) -> None:  # fmt: skip
    unit = event.unit
    unit["run_id"] = run_id
    for row in event.steps:
        row["run_id"] = run_id
    if not store.write_unit(unit, event.steps, replace_errors=retry_errors,
                            replaces=event.replaces):  # fmt: skip
        return
    result.units_replaced += len(event.replaces)
    _log(log, f"unit {unit['unit_id']} {unit['status']} {unit['model']} {unit['case_id']} "
              f"{unit['target']} {unit['prompter']} {unit['user'] or '-'}")  # fmt: skip
    if unit["status"] == Status.SKIPPED.value:
        result.units_skipped += 1
        result.skipped_combos.append(
            f"{unit['dataset']}/{unit['case_id']}/{unit['target']} {unit['model']}: "
            f"{unit['reason']}"
        )
        return
    result.units_written += 1
    if unit["status"] == Status.ERROR.value:
        result.units_failed += 1
        result.errors.append(
            f"{unit['dataset']}/{unit['case_id']}/{unit['target']} {unit['model']} "
            f"{unit['prompter']}: {unit['error']}"
        )
