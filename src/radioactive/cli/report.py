"""``radioactive report``: tables, figures, overlays, leaderboard and one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import app


def write_report(results: Path, report_dir: Path | None) -> Path:
    """Build the report of ``results``; print what was written; return the HTML file."""
    from radioactive.report.html import build_report

    with _ui.err.status("writing the report (tables, figures, overlays)"):
        built = build_report(results, report_dir)
    _ui.out.print(
        f"{len(built.tables)} table files, {len(built.figures)} figure files, "
        f"{len(built.overlays)} overlays, {len(built.leaderboard)} leaderboard files"
    )
    return built.html


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results directory (holds results.duckdb).")],
    report_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RESULTS/report).")
    ] = None,
) -> None:
    """Tables, figures, case overlays, leaderboard and one self-contained HTML file."""
    path = write_report(results, report_dir)
    _ui.out.print(f"Report: {path}")
