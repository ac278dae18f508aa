"""``radioactive run``: an experiment file or the quick form; results printed as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from radioactive.cli import _ui
from radioactive.cli._app import CacheOpt, app
from radioactive.errors import RadioactiveError


def _percent(value: float) -> str:
    return "–" if value != value else f"{100 * value:.1f}"  # NaN: the entry lacks a dataset


def print_results(directory: Path) -> None:
    """The final step per model × prompter of the store in ``directory``: the numbers of the
    report (its results view), not a second computation."""
    from radioactive.report.figure_kit import short_spec
    from radioactive.report.view import ENTRY, ResultsView

    view = ResultsView.from_store(directory)
    table = Table(
        title=f"Final step per model × prompter — {directory}",
        caption="Dice and NSD ×100: mean over each dataset's targets, then over datasets "
        "(– where an entry lacks a dataset); n: scored units; DoF and sec: interactions and "
        "estimated human seconds per trajectory; prompters and users with the parameters "
        "that differ from their defaults; overlap: whether the model was trained on these "
        "datasets (known, possible, unknown or none; docs/models.md)",
        title_justify="left",
    )
    table.add_column("model", overflow="fold")
    table.add_column("prompter", overflow="fold")
    table.add_column("user", overflow="fold")
    for col in ("n", "Dice", "NSD", "DoF", "sec"):
        table.add_column(col, justify="right", min_width=len(col))
    table.add_column("overlap")
    if len(view.finals):
        from radioactive.report.overlap import entry_overlap, overlap_table

        overlaps = overlap_table(view)
        rows = view.effort()
        for metric in ("dice", "nsd"):
            stats = view.entry_stats(metric)[[*ENTRY, "mean"]].rename(columns={"mean": metric})
            rows = rows.merge(stats, on=list(ENTRY), how="left")
        for r in rows.itertuples(index=False):
            table.add_row(
                r.model, short_spec(r.prompter), short_spec(r.user) if r.user else "-",
                str(r.n_units), _percent(r.dice),
                _percent(r.nsd), f"{r.dof:.1f}", f"{r.seconds:.0f}",
                entry_overlap(overlaps, str(r.model)),
            )  # fmt: skip
    _ui.out.print(table)
    counts = view.unit_counts()
    units = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    _ui.out.print(f"{len(view.runs)} run(s); units {units}; {len(view.steps)} steps stored")


def print_report(report: Any) -> int:
    """The results table and what a run (or a replay) did; the exit status (1: units failed)."""
    print_results(report.output)
    extra = ""
    if getattr(report, "units_skipped", 0):
        extra += f", {report.units_skipped} skipped"
    if getattr(report, "units_replaced", 0):
        extra += f", {report.units_replaced} stale replaced"
    _ui.out.print(
        f"Run {report.run_id}: {report.units_written} units written "
        f"({report.units_already_done} already done), {report.units_failed} failed{extra}, "
        f"{report.jobs} case jobs in {report.wall_s:.1f} s → {report.output}"
    )
    for line in getattr(report, "warnings", []):
        _ui.err.print(f"[yellow]warning:[/] {line}", highlight=False)
    for line in report.skipped_combos:
        _ui.out.print(f"[dim]skipped: {line}[/]", highlight=False)
    for line in report.errors[:20]:
        _ui.err.print(f"[red]error:[/] {line}", highlight=False)
    if len(report.errors) > 20:
        _ui.err.print(f"[red]… and {len(report.errors) - 20} more errors (see the store)[/]")
    return 1 if report.units_failed else 0


def run_and_print(
    config: Any, results_dir: Path, retry_errors: bool = False, replace_stale: bool = False
) -> int:
    """Run an experiment with progress bars; print the summary; return the exit status."""
    from radioactive.cli._progress import run_progress
    from radioactive.runner.run import run_experiment

    options: dict[str, Any] = {"retry_errors": retry_errors}
    if replace_stale:
        options["replace_stale"] = True
    with run_progress() as on_event:
        report = run_experiment(config, results_dir, on_event=on_event, **options)
    return print_report(report)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_quick_form(config_file: Path | None, quick: dict[str, Any]) -> None:
    """Refuse quick-form options that would be ignored, as a usage error: they do not combine
    with an experiment file (``quick``: name -> value, ``None`` when not given), and ``--steps``
    needs ``--user`` (or a preset as ``--prompter``)."""
    from radioactive.prompts.presets import PRESETS

    given = [_option(k) for k, v in quick.items() if v is not None]
    if config_file is not None and given:
        raise _ui.usage_error(
            given[0],
            f"{' and '.join(given)} cannot be combined with an experiment file ({config_file}), "
            "which says what to run: put these settings in the file, or leave the file out and "
            "use the quick form (--dataset, --model, --prompter, ...)",
        )
    if quick.get("steps") is not None and quick.get("user") is None:
        prompter = quick.get("prompter")
        if prompter is None or prompter not in PRESETS:
            raise _ui.usage_error(
                "--steps",
                "it counts the corrections of a simulated user, and no --user is given: add "
                "--user (e.g. --user scribble; `radioactive ls users`), or name a preset as "
                "--prompter (`radioactive ls presets`)",
            )


def check_executor_options(
    executor: str | None, workers: int | None, ray_address: str | None, configured: str
) -> None:
    """``--workers`` needs the process executor and ``--ray-address`` the Ray executor, given
    with ``--executor`` or by the experiment (``configured``); else a usage error."""
    kind = executor or configured
    if workers is not None and kind != "process":
        raise _ui.usage_error(
            "--workers",
            f"it applies to --executor process only (the executor is {kind!r}): add "
            "--executor process, or leave --workers out",
        )
    if ray_address is not None and kind != "ray":
        raise _ui.usage_error(
            "--ray-address",
            f"it applies to --executor ray only (the executor is {kind!r}): add "
            "--executor ray, or leave --ray-address out",
        )


@app.command()
def run(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Argument(help="Experiment YAML (or use the quick form options).")
    ] = None,
    results_dir: Annotated[Path | None, typer.Option("--out", help="Results directory.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Quick form: dataset name or path.")] = None,
    model: Annotated[str | None, typer.Option(help="Quick form: model name.")] = None,
    prompter: Annotated[
        str | None, typer.Option(help="Quick form: prompter spec or preset name.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Quick form: simulated user spec.")] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Quick form: corrections per target (needs --user or a preset)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Quick form: seed [default: 0].")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Quick form: a local checkpoint file for the model.")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="inline, process or ray (overrides the config).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes for --executor process.")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Address of a Ray cluster (--executor ray).")
    ] = None,
    retry_errors: Annotated[bool, typer.Option(help="Run failed units again.")] = False,
    replace_stale: Annotated[
        bool,
        typer.Option(
            help="Delete the stored units of this experiment that were computed with other "
            "settings, and compute them again (without it such a run is refused)."
        ),
    ] = False,
    cache_dir: CacheOpt = None,
    embedding_cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep slice embeddings in this folder between runs and processes (a rerun with "
            "new prompters on the same data then runs no encoder); overrides the config."
        ),
    ] = None,
) -> None:
    """Run an experiment (a YAML file, or the quick form); rerun on the same --out to resume."""
    from radioactive.runner.config import load_config, quick_config

    quick = {"dataset": dataset, "model": model, "prompter": prompter, "user": user,
             "steps": steps, "seed": seed, "checkpoint": checkpoint}  # fmt: skip
    with _ui.usage_of(ctx):
        check_quick_form(config_file, quick)
        if config_file is None:
            check_executor_options(executor, workers, ray_address, "inline")
    if config_file is not None:
        config = load_config(config_file)
        with _ui.usage_of(ctx):
            check_executor_options(executor, workers, ray_address, config.executor.kind)
    elif dataset and model and prompter:
        config = quick_config(
            dataset, model, prompter, user=user, steps=steps or 0, seed=seed or 0,
            output=results_dir,
            model_options={"checkpoint": str(checkpoint)} if checkpoint else None,
        )  # fmt: skip
    elif any(v is not None for v in quick.values()):
        missing = [_option(k) for k in ("dataset", "model", "prompter") if not quick[k]]
        raise _ui.usage_error(
            missing[0],
            f"the quick form needs --dataset, --model and --prompter; missing: "
            f"{', '.join(missing)}",
            ctx,
        )
    else:
        raise RadioactiveError(
            "nothing to run",
            fix="pass an experiment file, or --dataset, --model and --prompter (quick form)",
        )
    updates: dict[str, Any] = {}
    if cache_dir is not None:
        updates["cache_dir"] = cache_dir
    if embedding_cache is not None:
        updates["embedding_cache"] = embedding_cache
    ex = config.executor.model_copy(
        update={
            k: v
            for k, v in {"kind": executor, "workers": workers, "ray_address": ray_address}.items()
            if v is not None
        }
    )
    config = config.model_copy(update={**updates, "executor": ex})
    target = results_dir or config.output or Path("results") / config.name
    raise typer.Exit(run_and_print(config, Path(target), retry_errors, replace_stale))
