"""Run an experiment: plan the case jobs, execute them, store every unit as it completes.

``run_experiment(config, output)`` is what ``radioactive run`` calls. Running again on the same
output directory resumes: units already in the store are skipped (errors too, unless
``retry_errors``), so a run killed at any point finishes with exactly the rows of an uninterrupted
run and no duplicates.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radioactive import __version__
from radioactive.errors import RadioactiveError
from radioactive.runner.config import ExperimentConfig, ValidationReport, validate
from radioactive.runner.executors import execute
from radioactive.runner.plan import CaseJob, PairJob, UnitResult
from radioactive.runner.store import ResultStore


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


def _context(config: ExperimentConfig, model: Any, contract: dict[str, Any] | None) -> str:
    """Hash of the settings that change a unit's numbers (part of every unit id), the input
    contract the model will use on the dataset included."""
    blob = json.dumps(
        {
            "metrics": config.metrics.model_dump(mode="json"),
            "dice_target": config.stopping.dice_target,
            "effort_budget_s": config.stopping.effort_budget_s,
            "model": model.name,
            "options": model.options,
            **({"contract": contract["contract"]} if contract else {}),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_jobs(
    config: ExperimentConfig, report: ValidationReport, finished: frozenset[str], output: Path
) -> tuple[list[CaseJob], list[str]]:
    """The case jobs of an experiment, and the model × pair combinations skipped (with why).

    Raises :class:`~radioactive.models.contracts.UnknownModalityError` before anything runs when
    a model's input contract depends on the modality and a dataset does not state it.
    """
    from radioactive.data.registry import resolve_datasets
    from radioactive.models import planned_contract

    pairs = config.pairs()
    runnable = {(c.model, c.pair.prompter, c.pair.user) for c in report.combos if c.runs}
    skipped = [f"{c.model} × {c.label}: {c.reason}" for c in report.combos if not c.runs]
    jobs: list[CaseJob] = []
    cache = str(config.cache_dir) if config.cache_dir else None
    for spec in config.datasets:
        for ds in resolve_datasets(spec.name, config.cache_dir):
            if spec.datasets and ds.name not in spec.datasets:
                continue
            case_ids = [c for c in ds.case_ids if not spec.cases or c in spec.cases]
            modality = spec.modality or ds.modality_group
            for model in config.models:
                label = model.label or model.name
                model_pairs = tuple(
                    PairJob(p.prompter, p.user, p.steps, p.keep_initial)
                    for p in pairs
                    if (label, p.prompter, p.user) in runnable
                )
                if not model_pairs:
                    continue
                contract = planned_contract(
                    model.name, model.options, modality, where=Path(ds.root) / "dataset.json"
                )
                context = _context(config, model, contract)
                for case_id in case_ids:
                    jobs.append(
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
                            context=context,
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
                            finished=finished,
                        )
                    )
    return jobs, skipped


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
    on_event: Callable[[UnitResult | None, int], None] | None = None,
) -> RunReport:
    """Validate, plan, execute and store an experiment (resuming what ``output`` already holds).

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
    with ResultStore(out) as store, (out / "run.log").open("a", encoding="utf-8") as log:
        finished = frozenset(store.finished_units(include_errors=not retry_errors))
        jobs, skipped = build_jobs(config, report, finished, out)
        run_id = store.start_run(manifest(config, jobs))
        result = RunReport(run_id=run_id, output=out, jobs=len(jobs), skipped_combos=skipped)
        result.units_already_done = len(finished)
        ex = config.executor
        log.write(
            f"{_now()} run {run_id} started: {len(jobs)} case jobs, {len(finished)} units done\n"
        )
        log.flush()
        for event in execute(jobs, ex.kind, ex.workers, ex.ray_address, ex.gpus_per_model):
            if event is not None:
                event.unit["run_id"] = run_id
                for row in event.steps:
                    row["run_id"] = run_id
                if store.write_unit(event.unit, event.steps, replace_errors=retry_errors):
                    log.write(
                        f"{_now()} unit {event.unit['unit_id']} {event.unit['status']} "
                        f"{event.unit['model']} {event.unit['case_id']} {event.unit['target']} "
                        f"{event.unit['prompter']} {event.unit['user'] or '-'}\n"
                    )
                    log.flush()
                    result.units_written += 1
                    if event.unit["status"] == "error":
                        result.units_failed += 1
                        result.errors.append(
                            f"{event.unit['dataset']}/{event.unit['case_id']}/"
                            f"{event.unit['target']} {event.unit['model']} "
                            f"{event.unit['prompter']}: {event.unit['error']}"
                        )
            if on_event is not None:
                on_event(event, len(jobs))
        store.finish_run(run_id)
        log.write(f"{_now()} run {run_id} finished\n")
    result.wall_s = time.perf_counter() - t0
    return result
