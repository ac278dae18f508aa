"""``radioactive validate``: check an experiment without running it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import JsonOpt, app


@app.command()
def validate(
    config_file: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    as_json: JsonOpt = False,
) -> None:
    """Check an experiment without running it: names, paths, model × prompter capabilities."""
    from radioactive.runner.config import load_config
    from radioactive.runner.config import validate as check

    report = check(load_config(config_file))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines():
            _ui.out.print(line, highlight=False)
    raise typer.Exit(0 if report.ok else 1)
