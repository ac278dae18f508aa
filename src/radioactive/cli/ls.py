"""``radioactive ls``: prompters, simulated users, presets, or the results of a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from radioactive.cli import _ui
from radioactive.cli._app import app
from radioactive.errors import RadioactiveError
from radioactive.registry import did_you_mean

LISTS = ("prompters", "users", "presets", "results")


def _presets() -> Table:
    from radioactive.prompts.presets import PRESETS

    table = Table(title="Presets (initial prompter + simulated user)", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("prompter", "user", "steps", "initial prompts re-sent", "paper"):
        table.add_column(col, overflow="fold")
    for p in PRESETS.values():
        table.add_row(
            p.name, p.prompter, p.user, str(p.steps), "yes" if p.keep_initial else "no",
            p.paper_label,
        )  # fmt: skip
    return table


def _described(what: str, registry: Any) -> Table:
    from radioactive.prompts.base import describe

    table = Table(title=what.capitalize(), title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("parameters (defaults)", "cost (DoF)", "dim", "paper label"):
        table.add_column(col, overflow="fold")
    for cls in registry.values():
        d = describe(cls)
        params = ", ".join(f"{k}={v!r}" for k, v in d["params"].items()) or "-"
        dim = (
            "any" if d["dim"] is None else f"{d['dim']}D" + (" +model" if d["needs_model"] else "")
        )
        table.add_row(f"{d['name']}@{d['version']}", params, d["cost"], dim, d["paper_label"])
    return table


@app.command("ls")
def ls(
    what: Annotated[str, typer.Argument(help="prompters, users, presets or results")] = "prompters",
    directory: Annotated[Path | None, typer.Argument(help="For results: the directory.")] = None,
) -> None:
    """List prompters, simulated users, presets, or the results of a run directory."""
    from radioactive.prompts.registry import PROMPTERS, USERS

    if what == "results":
        from radioactive.cli.run import print_results

        if directory is None:
            raise RadioactiveError("which results?", fix="radioactive ls results DIR")
        print_results(directory)
    elif what == "presets":
        _ui.out.print(_presets())
    elif what in ("prompters", "users"):
        _ui.out.print(_described(what, PROMPTERS if what == "prompters" else USERS))
        if what == "prompters":
            _ui.out.print("X = number of axial slices that contain the target.")
    else:
        raise RadioactiveError(
            f"cannot list {what!r}{did_you_mean(what, LISTS)}",
            fix=f"use one of: {', '.join(LISTS)}",
        )
