"""Progress bars on stderr: recipe steps, downloads, and the case jobs of a run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from radioactive.cli import _ui


class BarReporter:
    """Draws a recipe's progress as a rich progress bar on stderr."""

    def __init__(self, progress: Any):
        self.progress = progress
        self.task: Any = None
        self.steps = 0

    def begin(self, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("preparing", total=max(total, 1))
        self.steps = 0

    def step(self, message: str) -> None:
        if self.task is None:
            self.begin(1)
        if self.steps:  # the previous step is done
            self.progress.advance(self.task)
        self.steps += 1
        total = self._total() or 0
        if self.steps > total:  # more steps than announced
            self.progress.update(self.task, total=self.steps)
        self.progress.update(self.task, description=message)

    def _total(self) -> float | None:
        return next((t.total for t in self.progress.tasks if t.id == self.task), None)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self._total())


class TransferBars:
    """Draws one byte-counting bar per file being downloaded (see ``observe_downloads``)."""

    def __init__(self, progress: Any):
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def started(self, name: str, url: str) -> Callable[[int, int | None], None]:
        task = self.progress.add_task(f"downloading {name}", total=None, unit="bytes")
        self.tasks[name] = task

        def update(done: int, total: int | None) -> None:
            self.progress.update(task, completed=done, total=total)

        return update

    def finished(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)


def transfer_progress() -> Any:
    """A rich progress display for conversion steps (n/total) and downloads (bytes, speed)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self.size = DownloadColumn()
            self.speed = TransferSpeedColumn()

        def render(self, task: Any) -> Any:
            if task.fields.get("unit") == "bytes":
                return Text.assemble(self.size.render(task), " ", self.speed.render(task))
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total}", style="progress.download")

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        Amount(),
        TimeElapsedColumn(),
        console=_ui.err,
        transient=True,
    )


def prepare_with_bars(recipe: Any, cache: Path, kwargs: dict[str, Any]) -> Any:
    """Run one recipe's ``prepare`` with progress bars; return its ``PrepareReport``."""
    from radioactive.data.recipes.download import observe_downloads

    with transfer_progress() as progress:
        reporter = BarReporter(progress)
        try:
            with observe_downloads(TransferBars(progress)):
                return recipe.prepare(cache, reporter, **kwargs)
        finally:
            if reporter.task is not None:
                progress.remove_task(reporter.task)


@contextmanager
def run_progress() -> Iterator[Callable[[Any, int], None]]:
    """A progress display of a run's case jobs; yields the ``on_event`` callback of
    ``run_experiment`` / ``replay_run``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    state = {"units": 0, "steps": 0, "t0": 0.0}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[units]} units · {task.fields[steps]} steps · {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_ui.err,
        transient=True,
    ) as progress:
        task = progress.add_task("case jobs", total=None, units=0, steps=0, rate="")

        def on_event(event: Any, total: int) -> None:
            if not state["t0"]:
                state["t0"] = time.perf_counter()
            progress.update(task, total=total)
            if event is None:
                progress.advance(task)
                return
            state["units"] += 1
            state["steps"] += len(event.steps)
            rate = state["units"] / max(1e-9, time.perf_counter() - state["t0"])
            progress.update(
                task, units=state["units"], steps=state["steps"], rate=f"{rate:.2f} units/s"
            )

        yield on_event
