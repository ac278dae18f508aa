"""Replay: send the stored interactions of a finished run to another model.

A static prompter that does not consult the model (``needs_model`` false) makes prompts that do
not depend on the model. Replaying its stored prompts on another model compares the two on
identical prompts, prompt for prompt, which a fresh run does not guarantee (each unit's random
generator is seeded from its key, the model included). ``replay_run(RESULTS_DIR, MODEL)`` reads
the units of ``RESULTS_DIR``, loads each case as the runner does, sends every stored interaction
to ``MODEL``, scores the prediction under the source run's metric settings and writes the units
to their own store (default ``RESULTS_DIR/replay-MODEL``). Units are keyed by the source unit, so
running the same replay again resumes and writes no duplicates. See ``docs/replay.md``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radioactive.errors import RadioactiveError
from radioactive.prompts.types import Interaction
from radioactive.runner.diagnostics import propagates, unit_diagnostics
from radioactive.runner.plan import (
    PLAN_VERSION,
    CaseJob,
    PairJob,
    UnitResult,
    _error_unit,
    _message,
    _model,
    unit_id,
    unit_key,
    unit_rng,
)
from radioactive.runner.run import RunReport, build_jobs, manifest
from radioactive.runner.store import DB_FILENAME, ResultStore
from radioactive.session import SESSION_VERSION, Scoring, Stopping, run_trajectory

__all__ = ["REPLAY_VERSION", "default_output", "replay_run", "replayable"]

REPLAY_VERSION = "1"


def default_output(results_dir: str | Path, model: str, options: dict[str, Any] | None) -> Path:
    """``RESULTS_DIR/replay-MODEL``, with a short hash of the options when there are any (two
    option sets of one model are two stores, never one blend)."""
    name = f"replay-{model}"
    if options:
        blob = json.dumps(options, sort_keys=True, default=str)
        name += "-" + hashlib.sha256(blob.encode()).hexdigest()[:8]
    return Path(results_dir) / name


def replayable(prompter: str, user: str | None) -> str | None:
    """``None`` when the units of ``prompter`` (and ``user``) can be replayed, else why not."""
    from radioactive.prompts import get_prompter

    if user:
        return (
            f"{prompter} + {user}: interactive; the user's corrections depend on the model's "
            "predictions"
        )
    try:
        obj = get_prompter(prompter)
    except Exception as exc:
        return f"{prompter}: cannot be built here ({_message(exc)})"
    if getattr(obj, "needs_model", False) or getattr(obj, "uses_model", False):
        return f"{prompter}: its prompts depend on the model (it asks the model as it goes)"
    return None


@dataclass(frozen=True)
class _StoredPrompts:
    """A prompter that answers with one stored interaction (what :func:`run_trajectory` asks
    of a static prompter), so replay runs the same session code as a run."""

    interaction: Interaction
    needs_model = False

    def initial(self, target: Any, rng: Any, predictor: Any = None) -> Interaction:
        return self.interaction


def replay_run(
    results_dir: str | Path,
    model: str,
    *,
    model_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    on_event: Callable[[UnitResult | None, int], None] | None = None,
) -> RunReport:
    """Replay the stored interactions of the static units of ``results_dir`` on ``model``.

    Only ``ok`` units without a user whose prompter does not consult the model are replayed; the
    others are listed in :attr:`RunReport.skipped_combos` with the reason, and a run with nothing
    to replay is refused. Units land in ``out`` (default :func:`default_output`); a unit that
    fails is retried by the next replay. ``on_event(result, total_jobs)`` is called as in
    :func:`~radioactive.runner.run.run_experiment`.
    """
    from radioactive.runner.config import config_from_dict, validate

    source = Path(results_dir)
    options = dict(model_options or {})
    target_dir = Path(out) if out is not None else default_output(source, model, options)
    if target_dir.resolve() == source.resolve():
        raise RadioactiveError(
            "replay writes to its own store, not into the run it replays",
            path=source,
            fix="omit --out (the default is RESULTS_DIR/replay-MODEL) or name another folder",
        )
    units, steps, runs = _read_source(source)
    todo, skipped = _select(units)
    if todo.empty:
        raise RadioactiveError(
            f"nothing to replay in {source}: replay re-sends the stored prompts of static "
            "prompters that do not consult the model, and this run has none"
            + "".join(f"\n  {line}" for line in skipped),
            path=source / DB_FILENAME,
            fix=f"run the experiment on {model} instead (`radioactive run CONFIG --out DIR`)",
        )
    config = _replay_config(runs, todo, model, options, config_from_dict)
    report = validate(config)
    if not report.ok:
        raise RadioactiveError(
            "the replay cannot run:\n" + "\n".join(report.lines()),
            fix="fix the entries above (the datasets of the source run must still be there)",
        )
    t0 = time.perf_counter()
    with ResultStore(target_dir) as store:
        finished = frozenset(store.finished_units(include_errors=False))
        jobs, not_run = build_jobs(config, report, finished, target_dir)
        skipped += not_run
        plan = _plan(jobs, todo, steps, skipped)
        info = manifest(config, [job for job, _ in plan])
        info["config"]["replay"] = _provenance(source, runs, model, options)
        run_id = store.start_run(info)
        result = RunReport(run_id=run_id, output=target_dir, jobs=len(plan), skipped_combos=skipped)
        result.units_already_done = len(finished)
        for job, items in plan:
            for event in _replay_job(job, items):  # each unit is stored as soon as it is done
                _store(store, event, run_id, result)
                if on_event is not None:
                    on_event(event, len(plan))
            if on_event is not None:
                on_event(None, len(plan))
        store.finish_run(run_id)
    result.wall_s = time.perf_counter() - t0
    return result


# -- reading the source run -----------------------------------------------------------------------


def _read_source(source: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if not (source / DB_FILENAME).exists():
        raise RadioactiveError(
            f"no results store ({DB_FILENAME}) in this folder",
            path=source,
            fix="give the --out folder of a `radioactive run`",
        )
    with ResultStore(source, read_only=True) as store:
        units, runs = store.units(), store.runs()
        steps = store.steps("step = 0")
    return units, steps, runs


def _select(units: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The source units to replay, and one line per kind of unit left out (with why)."""
    user = units["user"].fillna("").astype(str)
    ok = units["status"].astype(str) == "ok"
    skipped: list[str] = []
    keep = pd.Series(False, index=units.index)
    for (prompter, who), group in units[ok].groupby([units["prompter"], user], sort=True):
        why = replayable(str(prompter), str(who) or None)
        if why is None:
            keep[group.index] = True
        else:
            skipped.append(f"{why} ({len(group)} units not replayed)")
    n_bad = int((~ok).sum())
    if n_bad:
        skipped.append(f"{n_bad} units that did not finish ok (error or skipped) are not replayed")
    return units[keep], skipped


def _replay_config(
    runs: pd.DataFrame, todo: pd.DataFrame, model: str, options: dict[str, Any], parse: Any
) -> Any:
    """The experiment of the replayed units: the source run's datasets, metric and stopping
    settings, the replayed prompters, and ``model`` alone."""
    used = runs[runs["run_id"].isin(set(todo["run_id"]))]
    configs = {text for text in used["config"] if isinstance(text, str) and text}
    if not configs:
        raise RadioactiveError(
            "the runs of the units to replay recorded no configuration",
            fix="rerun the experiment with this version of radioactive, then replay it",
        )
    data = json.loads(sorted(configs)[-1])
    data.pop("replay", None)
    data.update(
        models=[{"name": model, "options": options}],
        prompters=sorted(set(todo["prompter"].astype(str))),
        families=[],
        interactive=[],
        executor={"kind": "inline"},
        output=None,
    )
    return parse(data)


def _provenance(
    source: Path, runs: pd.DataFrame, model: str, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": REPLAY_VERSION,
        "source": str(source.resolve()),
        "source_runs": [str(r) for r in runs["run_id"]],
        "model": model,
        "model_options": options,
    }


# -- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One unit to replay: the source unit and its stored interaction."""

    source_unit: str
    source_model: str
    target: str
    prompter: str
    seed: int
    prompts: str


def _plan(
    jobs: list[CaseJob], todo: pd.DataFrame, steps: pd.DataFrame, skipped: list[str]
) -> list[tuple[CaseJob, list[_Item]]]:
    """The new model's case jobs, each with the source units of its case."""
    prompts = dict(zip(steps["unit_id"], steps["prompts"], strict=True))
    by_case: dict[tuple[str, str], list[_Item]] = defaultdict(list)
    missing = 0
    for row in todo.itertuples(index=False):
        text = prompts.get(row.unit_id)
        if not isinstance(text, str):
            missing += 1
            continue
        item = _Item(
            str(row.unit_id),
            str(row.model),
            str(row.target),
            str(row.prompter),
            int(row.seed),
            text,
        )
        by_case[str(row.dataset), str(row.case_id)].append(item)
    if missing:
        skipped.append(f"{missing} units stored no prompts and are not replayed")
    plan = []
    for job in jobs:
        runs = {pair.prompter for pair in job.pairs}  # the pairs the model takes (validated)
        items = [i for i in by_case.get((job.dataset, job.case_id), []) if i.prompter in runs]
        if items:
            plan.append((job, items))
    cases = {(job.dataset, job.case_id) for job in jobs}
    by_case = {case: items for case, items in by_case.items() if case not in cases}
    lost = sum(len(items) for items in by_case.values())
    if lost:
        names = ", ".join(sorted(f"{d}/{c}" for d, c in by_case))
        skipped.append(f"{lost} units of cases no longer in the datasets are not replayed: {names}")
    return plan


# -- running -------------------------------------------------------------------------------------


def _replay_job(job: CaseJob, items: list[_Item]) -> Iterator[UnitResult]:
    """Replay the items of one case on the job's model (the model is prepared once)."""
    from radioactive.data.case import TargetSpec
    from radioactive.data.formats import open_dataset
    from radioactive.models.base import contract_of, prepare_model

    todo = []
    for item in items:
        pair = PairJob(item.prompter, None, 0, True)
        key = unit_key(job, item.target, pair, item.seed)
        uid = unit_id(key, pair, f"{job.context}:replay:{item.source_unit}")
        if uid not in job.finished:
            todo.append((item, key, uid))
    if not todo:
        return
    t0 = time.perf_counter()
    try:
        spec = TargetSpec(**job.target_spec) if job.target_spec else None
        case = open_dataset(job.dataset_root, targets=spec).case(job.case_id)
        image = case.image
        targets = {t.name: t for t in case.targets}
        model = _model(job)
        prepare_model(model, image.array, image.spacing_mm, job.modality)
        contract = contract_of(model)
    except Exception as exc:
        for _item, key, uid in todo:
            yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - t0)
        return
    try:
        for item, key, uid in todo:
            start = time.perf_counter()
            try:
                target = targets.get(item.target)
                if target is None:
                    raise RadioactiveError(
                        f"target {item.target!r} is no longer in case {job.case_id}",
                        path=job.dataset_root,
                        fix="replay a run made on the current version of the dataset",
                    )
                steps = run_trajectory(
                    model,
                    target.mask,
                    image.spacing_mm,
                    _StoredPrompts(Interaction.from_dict(json.loads(item.prompts))),  # type: ignore[arg-type]
                    unit_rng(key),
                    stopping=Stopping(job.dice_target, job.effort_budget_s),
                    scoring=Scoring(
                        job.tolerance_mm_by_label.get(target.label_name, job.nsd_tolerance_mm),
                        job.surface,
                    ),
                    keep_predictions=job.save_predictions,
                    keep_final_prediction=True,
                )
            except Exception as exc:
                yield _error_unit(job, key, uid, _message(exc), time.perf_counter() - start)
                continue
            versions = json.dumps(
                {"session": SESSION_VERSION, "plan": PLAN_VERSION, "model": model.card.version,
                 "prompter": steps[0].interaction.source if steps[0].interaction else None,
                 "user": None, "contract": contract,
                 "replay": {"version": REPLAY_VERSION, "unit": item.source_unit,
                            "model": item.source_model}},
                sort_keys=True,
            )  # fmt: skip
            rows = []
            for s in steps:
                row = s.row()
                row.update(key)
                row.update(
                    unit_id=uid, target_kind=target.kind, modality=job.modality,
                    category=job.category, versions=versions, error=None,
                    prompts=_json(row["prompts"]), realism=_json(row["realism"]),
                )  # fmt: skip
                rows.append(row)
            if job.save_predictions and steps[-1].prediction is not None:
                path = Path(job.output_dir) / "predictions" / f"{uid}.nii.gz"
                image.save(steps[-1].prediction, path)
                rows[-1]["prediction_path"] = str(path)
            unit = {**key, "unit_id": uid, "status": "ok", "error": None, "n_steps": len(rows),
                    "wall_s": time.perf_counter() - start}  # fmt: skip
            unit |= unit_diagnostics(steps[-1].prediction, target.mask,
                                     (s.interaction for s in steps), image.spacing_mm,
                                     propagated=propagates(None, model))  # fmt: skip
            yield UnitResult(unit, rows)
    finally:
        case.release()


def _json(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


def _store(store: ResultStore, event: UnitResult, run_id: str, result: RunReport) -> None:
    event.unit["run_id"] = run_id
    for row in event.steps:
        row["run_id"] = run_id
    if store.write_unit(event.unit, event.steps, replace_errors=True):
        result.units_written += 1
        if event.unit["status"] == "error":
            result.units_failed += 1
            result.errors.append(
                f"{event.unit['dataset']}/{event.unit['case_id']}/{event.unit['target']} "
                f"{event.unit['model']} {event.unit['prompter']}: {event.unit['error']}"
            )
