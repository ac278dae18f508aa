"""``radioactive migrate DIR``: convert an older results store in place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radioactive.cli import _ui
from radioactive.cli._app import app


@app.command()
def migrate(
    directory: Annotated[Path, typer.Argument(help="A results directory (holds results.duckdb).")],
) -> None:
    """Convert the results store of DIR to the current schema, in place (one transaction)."""
    from radioactive.runner.store import migrate_store

    _ui.out.print(migrate_store(directory), highlight=False)
