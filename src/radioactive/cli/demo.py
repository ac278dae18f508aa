"""``radioactive demo``: the main job on the bundled demo data, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import CacheOpt, app


@app.command()
def demo(
    cache_dir: CacheOpt = None,
    results_dir: Annotated[Path, typer.Option("--out", help="Results directory.")] = Path(
        "results/demo"
    ),
    human: Annotated[
        bool,
        typer.Option(
            "--human/--no-human",
            help="Also run the human-like users experiment (about a minute more) into "
            "<out>-human: perfect and noisy users side by side, time to result, robustness to "
            "noise and ranking stability.",
        ),
    ] = True,
) -> None:
    """The main job on the bundled demo data: prepare the real demo suite, fetch the model
    weights, run the demo experiment (real models + baselines) and, with ``--human``, the
    human-like users experiment, and print their headline tables and report paths."""
    from radioactive.cli.datasets import prepare_all, show_info
    from radioactive.cli.report import write_report
    from radioactive.cli.run import run_and_print
    from radioactive.experiments import experiment_path
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.runner.config import load_config

    if prepare_all(["demo"], cache_dir) or show_info("demo", cache_dir, as_json=False):
        raise typer.Exit(1)
    jobs = [("demo", results_dir)]
    if human:
        folder = results_dir.resolve()  # "--out ." has no name of its own
        jobs.append(("demo_human", folder.with_name(f"{folder.name}-human")))
    status = 0
    for name, out in jobs:
        config = load_config(experiment_path(name))
        if cache_dir is not None:
            config = config.model_copy(update={"cache_dir": cache_dir})
        for m in config.models:
            if m.name in ("litemedsam", "mobilesam"):
                with _ui.err.status(f"fetching the {m.name} checkpoint"):
                    fetch_checkpoint(m.name, cache_dir)
        status = max(status, run_and_print(config, out))
        path = write_report(out, None)
        _ui.out.print(f"[bold]{'Demo' if name == 'demo' else 'Human-like users'} report:[/] "
                      f"{path.resolve()}")  # fmt: skip
    raise typer.Exit(status)
