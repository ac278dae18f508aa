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
) -> None:
    """The main job on the bundled demo data: prepare the real demo suite, fetch the model
    weights, run the demo experiment (real models + baselines) and print its headline table."""
    from radioactive.cli.datasets import prepare_all, show_info
    from radioactive.cli.report import write_report
    from radioactive.cli.run import run_and_print
    from radioactive.experiments import experiment_path
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.runner.config import load_config

    if prepare_all(["demo"], cache_dir) or show_info("demo", cache_dir, as_json=False):
        raise typer.Exit(1)
    config = load_config(experiment_path("demo"))
    if cache_dir is not None:
        config = config.model_copy(update={"cache_dir": cache_dir})
    for m in config.models:
        if m.name in ("litemedsam", "mobilesam"):
            with _ui.err.status(f"fetching the {m.name} checkpoint"):
                fetch_checkpoint(m.name, cache_dir)
    status = run_and_print(config, results_dir)
    path = write_report(results_dir, None)
    _ui.out.print(f"[bold]Demo report:[/] {path.resolve()}")
    raise typer.Exit(status)
