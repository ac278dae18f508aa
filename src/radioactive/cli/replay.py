"""``radioactive replay RESULTS_DIR --model OTHER``: the stored prompts on another model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radioactive.cli._app import app
from radioactive.errors import RadioactiveError


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["checkpoint=/x.pth", "batch_size=4"]`` → ``{"checkpoint": "/x.pth", "batch_size": 4}``;
    a value is read as YAML (numbers, booleans, lists), else kept as text."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RadioactiveError(
                f"--option {pair!r} is not of the form KEY=VALUE",
                fix="write e.g. --option checkpoint=/path/to/weights.pth",
            )
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


@app.command()
def replay(
    results_dir: Annotated[Path, typer.Argument(help="The results directory of a finished run.")],
    model: Annotated[str, typer.Option(help="The model to send the stored prompts to.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write (default RESULTS_DIR/replay-MODEL)."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="A model option KEY=VALUE (repeatable).", show_default=False),
    ] = None,
) -> None:
    """Re-send the stored interactions of a run's static units to another model, prompt for
    prompt, and score its predictions (docs/replay.md)."""
    from radioactive.cli._progress import run_progress
    from radioactive.cli.run import print_report
    from radioactive.runner.replay import replay_run

    options = parse_options(option or [])
    with run_progress() as on_event:
        report = replay_run(
            results_dir, model, model_options=options or None, out=out, on_event=on_event
        )
    raise typer.Exit(print_report(report))
