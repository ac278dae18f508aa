"""The command groups, the options several commands share, and the global options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from radioactive import __version__
from radioactive.cli import _ui
from radioactive.cli._ui import HandledGroup

app = typer.Typer(
    name="radioactive",
    help="Benchmark for 3D interactive segmentation of radiological images (CT, MRI).",
    cls=HandledGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(
    help="List, prepare and inspect datasets.", no_args_is_help=True, add_completion=False
)
app.add_typer(datasets_app, name="datasets")
models_app = typer.Typer(
    help="List promptable models and fetch their checkpoints.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(models_app, name="models")

CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where downloads and prepared datasets live "
        "(default: $RADIOACTIVE_CACHE_DIR or the user cache directory).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _version(value: bool) -> None:
    if value:
        _ui.out.print(f"radioactive {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help=f"Show the traceback of an error (or set {_ui.DEBUG_ENV}=1)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    from rich.logging import RichHandler

    _ui.set_debug(debug)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=_ui.err, show_path=False, show_time=False)],
        force=True,
    )


def main() -> None:
    """The ``radioactive`` console script."""
    app()
