"""What every command shares: the consoles, the error messages and the one top-level handler.

Consoles are wide when the stream is not a terminal (a log file, a pipe, CI): rich tables stay on
one line per row instead of wrapping at 80 columns. ``COLUMNS`` still sets the width when given.

No exception reaches a user as a raw traceback: :class:`HandledGroup` turns our errors
(:class:`~radioactive.errors.RadioactiveError`) and any other exception (a read-only or full
``--out``, a damaged store, a bug) into a short message with the fix. ``--debug`` or
``RADIOACTIVE_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import traceback
from collections.abc import Iterator
from typing import Any

import typer
import typer.core
from rich.console import Console, ConsoleDimensions
from typer.exceptions import TyperException

from radioactive.errors import RadioactiveError

#: width of a console that does not write to a terminal (and ``COLUMNS`` is not set)
LOG_WIDTH = 1000
#: set to 1 (or pass ``--debug``) to see the traceback of an error
DEBUG_ENV = "RADIOACTIVE_DEBUG"


class LogConsole(Console):
    """A rich console that is :data:`LOG_WIDTH` wide when it does not write to a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS"):
            return ConsoleDimensions(LOG_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = LogConsole()
err = LogConsole(stderr=True)

_state = {"debug": False}


def set_debug(on: bool) -> None:
    _state["debug"] = on


def debug() -> bool:
    return _state["debug"] or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _duckdb_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


def explain(exc: BaseException) -> tuple[str, Any, str]:
    """``(problem, path, fix)`` for any exception, in words a user can act on."""
    if isinstance(exc, RadioactiveError):
        return exc.problem, exc.path, exc.fix or ""
    trace = f"rerun with --debug (or {DEBUG_ENV}=1) to see where it happened"
    if isinstance(exc, OSError):
        where = exc.filename
        what = exc.strerror or str(exc)
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
            return (
                f"permission denied: {what}",
                where,
                "make the folder writable, or write elsewhere (--out DIR, --cache-dir DIR)",
            )
        if exc.errno == errno.EROFS:
            return (
                f"the file system is read-only: {what}",
                where,
                "write elsewhere (--out DIR, --cache-dir DIR)",
            )
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return (
                f"no space left on the device: {what}",
                where,
                "free disk space, or write elsewhere (--out DIR, --cache-dir DIR); "
                "completed work is kept and a rerun goes on from there",
            )
        return (
            f"{type(exc).__name__}: {what}",
            where,
            f"check that the path exists and can be read and written; {trace}",
        )
    if _duckdb_error(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (
            f"the results store could not be read or written ({type(exc).__name__}: {first})",
            None,
            "if another radioactive process uses this results folder, wait for it to finish; if "
            "the store file (results.duckdb) is damaged, move it away and run again; " + trace,
        )
    if isinstance(exc, MemoryError):
        return (
            "out of memory",
            None,
            "use fewer --workers, smaller batches or a smaller cache_bytes model option",
        )
    return (
        f"unexpected error: {type(exc).__name__}: {exc}",
        None,
        f"this is a bug of radioactive or of a plugin; {trace}, and report it",
    )


def print_error(exc: BaseException, label: str | None = None) -> None:
    """Print the message of ``exc`` (problem, file, fix) on stderr, the traceback in debug."""
    if debug():
        err.print(
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            highlight=False,
            markup=False,
        )
    problem, path, fix = explain(exc)
    where = f" ({label})" if label else ""
    err.print(f"[bold red]Error[/]{where}: ", end="", highlight=False)
    err.print(problem, highlight=False, markup=False)
    if path is not None:
        err.print("[red]File:[/] ", end="", highlight=False)
        err.print(str(path), highlight=False, markup=False)
    if fix:
        err.print("[yellow]Fix:[/] ", end="", highlight=False)
        err.print(fix, highlight=False, markup=False)


def exit_status(exc: BaseException) -> int:
    """2 for an error of ours (bad input), 1 for anything else."""
    return 2 if isinstance(exc, RadioactiveError) else 1


class HandledGroup(typer.core.TyperGroup):
    """The root command group: every command runs inside its handler."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exits and usage errors
            raise
        except KeyboardInterrupt:
            err.print(
                "[yellow]Interrupted.[/] Completed work is kept; run the command again to go on."
            )
            raise typer.Exit(130) from None
        except Exception as exc:
            print_error(exc)
            raise typer.Exit(exit_status(exc)) from None


def usage_error(option: str, message: str, ctx: typer.Context | None = None) -> Exception:
    """A usage error about ``option`` (printed with the command's usage line; exit status 2)."""
    return typer.BadParameter(message, ctx=ctx, param_hint=f"'{option}'")


@contextlib.contextmanager
def usage_of(ctx: typer.Context) -> Iterator[None]:
    """Usage errors raised inside are shown with the usage line of the command of ``ctx``."""
    try:
        yield
    except typer.BadParameter as exc:
        exc.ctx = exc.ctx or ctx
        raise
