"""``radioactive import-cvpr25 DIR``: the organisers' metrics of challenge submissions into a
results store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import app
from radioactive.errors import RadioactiveError


@app.command("import-cvpr25")
def import_cvpr25(
    directory: Annotated[
        Path,
        typer.Argument(help="The --save_path of CVPR25_iter_eval.py, or one <team>_metrics.csv."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The results directory to add them to.")],
    dataset: Annotated[str, typer.Option(help="The dataset name the cases belong to.")],
    modality: Annotated[
        str | None, typer.Option(help="CT or MR (default: the dataset's in the store, if any).")
    ] = None,
) -> None:
    """Store the organisers' per-case metrics (one CSV per team) as units of that team, so that
    their numbers and the benchmark's sit in one report."""
    from radioactive.data.cvpr25_npz import import_cvpr25_metrics

    if directory.is_file():
        files = [directory]
    else:  # the script's --save_path holds one folder per team; or the team folder itself
        files = sorted(directory.glob("*/*_metrics.csv")) or sorted(directory.glob("*_metrics.csv"))
    if not files:
        raise RadioactiveError(
            "no <team>_metrics.csv here", path=directory,
            fix="give the --save_path folder of CVPR25_iter_eval.py or one metrics file",
        )  # fmt: skip
    for path in files:
        team = path.name.removesuffix("_metrics.csv")
        n = import_cvpr25_metrics(path, out, model=team, dataset=dataset, modality=modality)
        _ui.out.print(f"{team}: {n} cases imported from {path}", highlight=False)
    _ui.out.print(f"→ {out} (radioactive report {out})", highlight=False)
