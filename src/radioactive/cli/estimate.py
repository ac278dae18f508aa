"""``radioactive estimate``: what a grid will cost before it runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import JsonOpt, app


@app.command()
def estimate(
    config_file: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    costs: Annotated[
        Path | None,
        typer.Option(
            help="Per-call costs (JSON: written by --save-costs, or the output of "
            "benchmarks/gpu.py --json); without it they are measured here."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Workers the grid will run on.")] = 1,
    results_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Results directory: its finished units are not counted."),
    ] = None,
    save_costs: Annotated[
        Path | None, typer.Option(help="Write the per-call costs used to this JSON file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count the encoder and decoder calls an experiment will make (exact for static prompters,
    an upper bound for propagation and corrections) and project its run time from per-call
    costs."""
    from rich.table import Table

    from radioactive.runner.config import load_config
    from radioactive.runner.estimate import count_calls, load_costs, probe_costs, project

    config = load_config(config_file)
    with _ui.err.status("counting the model calls of the grid") as status:
        counts = count_calls(config, results_dir,
                             progress=lambda s: status.update(f"counting: {s}"))  # fmt: skip
    if costs is not None:
        per_call = load_costs(costs)
    else:
        with _ui.err.status("measuring per-call costs on this machine"):
            per_call = probe_costs(config, counts)
    if save_costs is not None:
        save_costs.write_text(json.dumps({"models": {k: asdict(v) for k, v in per_call.items()}},
                                         indent=2) + "\n", encoding="utf-8")  # fmt: skip
    rows = project(counts, per_call, workers)
    if as_json:
        print(json.dumps({"rows": rows, "costs": {k: asdict(v) for k, v in per_call.items()}},
                         indent=2))  # fmt: skip
        raise typer.Exit(0)
    table = Table(title=f"Projected cost of {config_file}", title_justify="left",
                  caption="encoder slices: each slice of a case encoded once; counts for "
                  "propagation and corrections are upper bounds")  # fmt: skip
    for col in ("model", "units", "steps", "encoder slices", "decoder calls", "counts",
                "seconds"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("model", "counts") else "right")
    for r in rows[:-1]:
        table.add_row(r["model"], str(r["units"]), str(r["steps"]),
                      _num(r["encoder slices"]), _num(r["decoder calls"]), r["counts"],
                      _secs(r["seconds"]))  # fmt: skip
    _ui.out.print(table)
    total = rows[-1]
    if total["seconds"] is None:
        missing = ", ".join(r["model"] for r in rows[:-1] if r["seconds"] is None)
        _ui.out.print(f"no per-call cost for {missing}: give them in --costs")
    else:
        _ui.out.print(f"total {_secs(total['seconds'])} of model and harness time; on {workers} "
                      f"worker(s) about {_secs(total['wall seconds'])} of wall time")  # fmt: skip


def _num(value: int | None) -> str:
    return "–" if value is None else str(value)


def _secs(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"
