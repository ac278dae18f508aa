"""Command-line interface: ``radioactive --help``.

Heavy modules (numpy, nibabel, SimpleITK) are imported inside the commands so that ``--help``
stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from radioactive import __version__
from radioactive.errors import RadioactiveError

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="radioactive",
    help="Benchmark for 3D interactive segmentation of radiological images (CT, MRI).",
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


def friendly(fn: F) -> F:
    """Print our errors as a message and a fix, without a traceback; exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RadioactiveError as exc:
            err.print(f"[bold red]Error:[/] {exc.problem}", highlight=False)
            if exc.path is not None:
                err.print(f"[red]File:[/] {exc.path}", highlight=False)
            if exc.fix:
                err.print(f"[yellow]Fix:[/] {exc.fix}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print(
                "[yellow]Interrupted.[/] Completed work is kept; run the command again to go on."
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"radioactive {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )


class _BarReporter:
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


class _TransferBars:
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


def _progress() -> Any:
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
        console=err,
        transient=True,
    )


def _prepare_one(
    recipe: Any, cache: Path, progress: Any, *, force: bool = False, source_dir: Path | None = None
) -> Any:
    """Run one recipe's ``prepare`` with progress bars; return its ``PrepareReport``."""
    from radioactive.data.recipes.download import observe_downloads

    reporter = _BarReporter(progress)
    kwargs: dict[str, Any] = {"force": force}
    if source_dir is not None:
        kwargs["source_dir"] = source_dir
    try:
        with observe_downloads(_TransferBars(progress)):
            report = recipe.prepare(cache, reporter, **kwargs)
    finally:
        if reporter.task is not None:
            progress.remove_task(reporter.task)
    return report


def _prepare(name: str, cache_dir: Path | None, force: bool = False) -> None:
    from radioactive.data.cache import cache_dir as resolve_cache
    from radioactive.data.recipes import get_recipe

    recipe = get_recipe(name)
    cache = resolve_cache(cache_dir)
    with _progress() as progress:
        report = _prepare_one(recipe, cache, progress, force=force)
    if report.built:
        out.print(
            f"[green]Prepared[/] {len(report.built)} dataset(s) of {name!r} in "
            f"{report.seconds:.1f} s: {', '.join(report.built)}"
        )
    if report.reused:
        out.print(
            f"Already prepared and verified ({len(report.reused)}): {', '.join(report.reused)}"
        )
    for folder, why in report.unavailable.items():
        out.print(f"[yellow]Skipped[/] {folder}: {why}")
    out.print(f"Location: {report.root}")


def _accepts_source_dir(recipe: Any) -> bool:
    import inspect

    return "source_dir" in inspect.signature(recipe.prepare).parameters


def _prepare_many(
    names: list[str], cache_dir: Path | None, force: bool, source_dir: Path | None
) -> int:
    """Prepare every named dataset, going on after a failure; print a summary; return the exit
    status (0: all prepared, 2: a dataset failed with an error of ours, 1: an unexpected one)."""
    import traceback

    from radioactive.data.cache import cache_dir as resolve_cache
    from radioactive.data.recipes import ALIASES, canonical_name, get_recipe, recipe_names
    from radioactive.errors import DatasetError

    keys: list[str] = []
    unknown = []
    for n in names:
        key = canonical_name(n)
        if key is None:
            unknown.append(n)
        elif key not in keys:
            keys.append(key)
    if unknown:
        raise DatasetError(
            f"unknown dataset {', '.join(map(repr, unknown))}",
            fix=f"choose among {', '.join(recipe_names())} or the paper's ids "
            f"{', '.join(a.upper() for a in ALIASES)} (`radioactive datasets list` shows them)",
        )
    if source_dir is not None and len(keys) > 1:
        raise DatasetError(
            f"--source-dir holds the files of one dataset, but {len(keys)} were named",
            fix="prepare the datasets one at a time, e.g. "
            f"`radioactive datasets prepare {keys[0]} --source-dir {source_dir}`",
        )
    cache = resolve_cache(cache_dir)
    rows: list[tuple[str, str, str, str]] = []
    status = 0
    for key in keys:
        label = key
        try:
            recipe = get_recipe(key)
            paper_id = getattr(recipe, "paper_id", None)
            label = f"{paper_id} {key}" if paper_id else key
            if source_dir is not None and not _accepts_source_dir(recipe):
                raise DatasetError(
                    f"the {key} recipe fetches its own files; --source-dir does not apply to it",
                    fix=f"run `radioactive datasets prepare {key}` without --source-dir",
                )
            with _progress() as progress:
                report = _prepare_one(recipe, cache, progress, force=force, source_dir=source_dir)
        except RadioactiveError as exc:
            status = max(status, 2)
            err.print(f"[bold red]Error[/] ({label}): {exc.problem}", highlight=False)
            if exc.path is not None:
                err.print(f"[red]File:[/] {exc.path}", highlight=False)
            if exc.fix:
                err.print(f"[yellow]Fix:[/] {exc.fix}", highlight=False)
            lines = exc.problem.splitlines()
            first = lines[0].rstrip(":") + (" (listed above)" if len(lines) > 1 else "")
            rows.append((label, "[red]failed[/]", first, "-"))
            continue
        except Exception as exc:  # a bug in a recipe must not stop the other datasets
            status = 1 if status == 0 else status
            err.print(f"[bold red]Unexpected error[/] ({label}):", highlight=False)
            err.print(traceback.format_exc(), highlight=False, markup=False)
            rows.append((label, "[red]failed[/]", f"{type(exc).__name__}: {exc}", "-"))
            continue
        notes = [f"skipped {k}: {v}" for k, v in report.unavailable.items()]
        if report.built:
            what = f"{', '.join(report.built)} in {report.seconds:.1f} s"
            rows.append((label, "[green]built[/]", "; ".join([what, *notes]), str(report.root)))
        else:
            what = f"verified, no work: {', '.join(report.reused) or '-'}"
            rows.append((label, "reused", "; ".join([what, *notes]), str(report.root)))
    table = Table(title="Prepared datasets", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("details", overflow="fold")
    table.add_column("location", overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    return status


def _print_summary(summary: dict[str, Any]) -> None:
    src = summary.get("source") or {}
    origin = f"{src.get('package', '')} {src.get('version', '')} ({src.get('registry', '')})"
    table = Table(
        title=f"[bold]{summary['name']}[/]  {summary['modality']} · "
        f"{summary['target_type']} targets · {summary['n_cases']} cases · "
        f"{summary['n_targets']} targets",
        caption=f"{summary['root']}"
        + (f"\nsource: {origin.strip()}" if src else "")
        + (f" · licence: {summary['licence']}" if summary.get("licence") else ""),
        title_justify="left",
        caption_justify="left",
        show_lines=False,
        expand=True,
    )
    table.add_column("case", no_wrap=True)
    table.add_column("shape z×y×x", no_wrap=True)
    table.add_column("spacing mm", no_wrap=True)
    table.add_column("modality", no_wrap=True)
    table.add_column("#", justify="right")
    table.add_column("targets", overflow="fold", ratio=1)
    for c in summary["cases"]:
        targets = ", ".join(t["name"] for t in c["targets"]) or "-"
        if c["skipped"]:
            targets += " [dim]· skipped: " + ", ".join(s["name"] for s in c["skipped"]) + "[/]"
        if c["nonfinite_voxels"]:
            targets += f" [yellow]· {c['nonfinite_voxels']} NaN/inf voxels replaced[/]"
        table.add_row(
            c["case"],
            "×".join(str(s) for s in c["shape_zyx"]),
            "×".join(f"{s:.3g}" for s in c["spacing_mm_zyx"]),
            summary["modality"],
            str(len(c["targets"])),
            targets,
        )
    out.print(table)
    for e in summary["errors"]:
        err.print(
            f"[bold red]Error[/] in {summary['name']}/{e['case']}: {e['error']}", highlight=False
        )


def _info(name_or_path: str, cache_dir: Path | None, as_json: bool) -> int:
    from rich.progress import Progress

    from radioactive.data.registry import resolve_datasets
    from radioactive.data.summary import summarize_dataset

    datasets = resolve_datasets(name_or_path, cache_dir)
    summaries = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("reading cases", total=sum(len(d) for d in datasets))
        for ds in datasets:

            def on_case(case_id: str, ds_name: str = ds.name) -> None:
                progress.update(task, description=f"reading {ds_name}/{case_id}")

            summaries.append(summarize_dataset(ds, on_case))
            progress.advance(task, len(ds))
    if as_json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    else:
        for s in summaries:
            _print_summary(s)
        n_cases = sum(s["n_cases"] for s in summaries)
        n_targets = sum(s["n_targets"] for s in summaries)
        groups = sorted({s["modality_group"] for s in summaries})
        kinds = sorted({s["target_type"] for s in summaries})
        out.print(
            f"[bold]{len(summaries)} dataset(s), {n_cases} cases, {n_targets} targets[/] "
            f"({', '.join(groups)}; {', '.join(kinds)} targets)"
        )
    return 1 if any(s["errors"] for s in summaries) else 0


@app.command()
@friendly
def demo(
    cache_dir: CacheOpt = None,
    results_dir: Annotated[Path, typer.Option("--out", help="Results directory.")] = Path(
        "results/demo"
    ),
) -> None:
    """The main job on the bundled demo data: prepare the real demo suite, fetch the model
    weights, run the demo experiment (real models + baselines) and print its headline table."""
    from radioactive.experiments import experiment_path
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.runner.config import load_config

    _prepare("demo", cache_dir)
    if _info("demo", cache_dir, as_json=False):
        raise typer.Exit(1)
    config = load_config(experiment_path("demo"))
    if cache_dir is not None:
        config = config.model_copy(update={"cache_dir": cache_dir})
    for m in config.models:
        if m.name in ("litemedsam", "mobilesam"):
            with err.status(f"fetching the {m.name} checkpoint"):
                fetch_checkpoint(m.name, cache_dir)
    status = _run(config, results_dir)
    path = _report(results_dir, None)
    out.print(f"[bold]Demo report:[/] {path.resolve()}")
    raise typer.Exit(status)


@datasets_app.command("list")
@friendly
def datasets_list(cache_dir: CacheOpt = None) -> None:
    """List the dataset recipes (the paper's public datasets and the demo) and whether each is
    prepared."""
    from radioactive.data.cache import cache_dir as resolve_cache
    from radioactive.data.recipes import get_recipe, recipe_names

    cache = resolve_cache(cache_dir)
    table = Table(title="Dataset recipes", title_justify="left", caption_justify="left")
    for col in ("id", "name", "dataset", "modality", "targets", "licence", "access", "download"):
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "name"))
    table.add_column("prepared", no_wrap=True)
    rows = []
    for name in recipe_names():
        recipe = get_recipe(name)
        info: dict[str, Any] = (
            recipe.info() if hasattr(recipe, "info") else {"name": name, "title": ""}
        )
        info.setdefault("title", "")
        if not info["title"]:
            info["title"] = getattr(recipe, "description", "")
        rows.append((_paper_order(info.get("paper_id")), info, _prepared_state(recipe, cache)))
    for _, info, state in sorted(rows, key=lambda r: r[0]):
        table.add_row(
            info.get("paper_id") or "-",
            info["name"],
            info["title"],
            info.get("modality", "-"),
            info.get("targets", "-"),
            info.get("licence", "-"),
            info.get("access", "-"),
            info.get("download_size", "-"),
            state,
        )
    table.caption = (
        f"cache: {cache}\nprepare with `radioactive datasets prepare NAME [NAME ...]` (a name or "
        "an id such as D1); files behind a login: download them by hand and add --source-dir DIR"
    )
    out.print(table)


def _paper_order(paper_id: str | None) -> tuple[int, str]:
    digits = "".join(c for c in (paper_id or "") if c.isdigit())
    return (int(digits), "") if digits else (10_000, paper_id or "")


def _prepared_state(recipe: Any, cache: Path) -> str:
    """Whether a recipe's output is in the cache (reads dataset.json only, hashes nothing)."""
    loc = recipe.location(cache)
    if (loc / "suite.json").exists():
        return "[green]yes[/]"
    js = loc / "dataset.json"
    if not js.exists():
        return "no"
    version = getattr(recipe, "version", None)
    if version is not None:
        from radioactive.data.recipes.public import BASE_VERSION

        try:
            meta = json.loads(js.read_text(encoding="utf-8")).get("radioactive", {})
        except (OSError, ValueError):
            return "[yellow]damaged[/]"
        if meta.get("recipe_version") != f"{BASE_VERSION}.{version}":
            return "[yellow]outdated[/]"
    return "[green]yes[/]"


@datasets_app.command("prepare")
@friendly
def datasets_prepare(
    names: Annotated[
        list[str],
        typer.Argument(
            help="Recipe names or paper ids, e.g. demo, D1, ms_flair (`datasets list`).",
            metavar="NAME...",
            show_default=False,
        ),
    ],
    source_dir: Annotated[
        Path | None,
        typer.Option(
            "--source-dir",
            help="Folder holding the dataset's files as downloaded by hand (one dataset only); "
            "it is read, never modified.",
            show_default=False,
        ),
    ] = None,
    cache_dir: CacheOpt = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if prepared and valid.")] = False,
) -> None:
    """Fetch and convert datasets (no work for one already prepared and verified).

    Datasets are prepared one after the other; a failure does not undo the others. The exit
    status is non-zero when any failed.
    """
    raise typer.Exit(_prepare_many(names, cache_dir, force, source_dir))


@datasets_app.command("info")
@friendly
def datasets_info(
    name_or_path: Annotated[str, typer.Argument(help="Recipe name (e.g. demo) or dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """Print every case with shape, spacing, modality and targets."""
    raise typer.Exit(_info(name_or_path, cache_dir, as_json))


def _run(config: Any, results_dir: Path, retry_errors: bool = False) -> int:
    """Run an experiment with progress bars; print the summary; return the exit status."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from radioactive.runner.run import run_experiment

    state = {"units": 0, "steps": 0, "errors": 0}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[units]} units · {task.fields[steps]} steps · {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("case jobs", total=None, units=0, steps=0, rate="")
        t0 = [0.0]

        def on_event(event: Any, total: int) -> None:
            import time as _time

            if not t0[0]:
                t0[0] = _time.perf_counter()
            progress.update(task, total=total)
            if event is None:
                progress.advance(task)
                return
            state["units"] += 1
            state["steps"] += len(event.steps)
            state["errors"] += event.unit["status"] == "error"
            rate = state["units"] / max(1e-9, _time.perf_counter() - t0[0])
            progress.update(
                task, units=state["units"], steps=state["steps"], rate=f"{rate:.2f} units/s"
            )

        report = run_experiment(config, results_dir, retry_errors=retry_errors, on_event=on_event)
    _print_results(report.output)
    out.print(
        f"Run {report.run_id}: {report.units_written} units written "
        f"({report.units_already_done} already done), {report.units_failed} failed, "
        f"{report.jobs} case jobs in {report.wall_s:.1f} s → {report.output}"
    )
    for line in report.skipped_combos:
        out.print(f"[dim]skipped: {line}[/]", highlight=False)
    for line in report.errors[:20]:
        err.print(f"[red]error:[/] {line}", highlight=False)
    if len(report.errors) > 20:
        err.print(f"[red]… and {len(report.errors) - 20} more errors (see the store)[/]")
    return 1 if report.units_failed else 0


def _print_results(directory: Path) -> None:
    from radioactive.runner.store import ResultStore

    with ResultStore(directory, read_only=True) as store:
        summary = store.summary()
    table = Table(
        title=f"Final step per model × prompter, mean over n targets — {directory}",
        caption="Dice and NSD ×100; DoF and sec: interactions and estimated human seconds",
        title_justify="left",
    )
    table.add_column("model", overflow="fold")
    table.add_column("prompter", overflow="fold")
    table.add_column("user", overflow="fold")
    for col in ("n", "Dice", "NSD", "DoF", "sec"):
        table.add_column(col, justify="right", min_width=len(col))
    for r in summary["final"]:
        table.add_row(
            r["model"], r["prompter"], r["user"] or "-", str(r["n_targets"]),
            f"{100 * r['mean_dice']:.1f}", f"{100 * r['mean_nsd']:.1f}",
            f"{r['mean_dof']:.1f}", f"{r['mean_seconds']:.0f}",
        )  # fmt: skip
    out.print(table)
    units = ", ".join(f"{k}: {v}" for k, v in sorted(summary["units"].items()))
    out.print(f"{summary['runs']} run(s); units {units}; {summary['steps']} steps stored")


@app.command()
@friendly
def run(
    config_file: Annotated[
        Path | None, typer.Argument(help="Experiment YAML (or use the quick form options).")
    ] = None,
    results_dir: Annotated[Path | None, typer.Option("--out", help="Results directory.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Quick form: dataset name or path.")] = None,
    model: Annotated[str | None, typer.Option(help="Quick form: model name.")] = None,
    prompter: Annotated[str | None, typer.Option(help="Quick form: prompter spec.")] = None,
    user: Annotated[str | None, typer.Option(help="Quick form: simulated user spec.")] = None,
    steps: Annotated[int, typer.Option(help="Quick form: corrections per target.")] = 0,
    seed: Annotated[int, typer.Option(help="Quick form: seed.")] = 0,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Quick form: a local checkpoint file for the model.")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="inline, process or ray (overrides the config).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes for --executor process.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Address of a Ray cluster.")] = None,
    retry_errors: Annotated[bool, typer.Option(help="Run failed units again.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """Run an experiment (a YAML file, or the quick form); rerun on the same --out to resume."""
    from radioactive.runner.config import load_config, quick_config

    if config_file is not None:
        config = load_config(config_file)
    elif dataset and model and prompter:
        config = quick_config(
            dataset, model, prompter, user=user, steps=steps, seed=seed, output=results_dir,
            model_options={"checkpoint": str(checkpoint)} if checkpoint else None,
        )  # fmt: skip
    else:
        raise RadioactiveError(
            "nothing to run",
            fix="pass an experiment file, or --dataset, --model and --prompter (quick form)",
        )
    updates: dict[str, Any] = {}
    if cache_dir is not None:
        updates["cache_dir"] = cache_dir
    ex = config.executor.model_copy(
        update={
            k: v
            for k, v in {"kind": executor, "workers": workers, "ray_address": ray_address}.items()
            if v is not None
        }
    )
    config = config.model_copy(update={**updates, "executor": ex})
    target = results_dir or config.output or Path("results") / config.name
    raise typer.Exit(_run(config, Path(target), retry_errors))


@app.command()
@friendly
def report(
    results: Annotated[Path, typer.Argument(help="A results directory (holds results.duckdb).")],
    report_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RESULTS/report).")
    ] = None,
) -> None:
    """Tables, figures, case overlays, leaderboard and one self-contained HTML file."""
    path = _report(results, report_dir)
    out.print(f"Report: {path}")


def _report(results: Path, report_dir: Path | None) -> Path:
    from radioactive.report.html import build_report

    with err.status("writing the report (tables, figures, overlays)"):
        built = build_report(results, report_dir)
    out.print(
        f"{len(built.tables)} table files, {len(built.figures)} figure files, "
        f"{len(built.overlays)} overlays, {len(built.leaderboard)} leaderboard files"
    )
    return built.html


@app.command()
@friendly
def validate(
    config_file: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check an experiment without running it: names, paths, model × prompter capabilities."""
    from radioactive.runner.config import load_config
    from radioactive.runner.config import validate as check

    report = check(load_config(config_file))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines():
            out.print(line, highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command("ls")
@friendly
def ls(
    what: Annotated[str, typer.Argument(help="prompters, users, presets or results")] = "prompters",
    directory: Annotated[Path | None, typer.Argument(help="For results: the directory.")] = None,
) -> None:
    """List prompters, simulated users, presets, or the results of a run directory."""
    if what == "results":
        if directory is None:
            raise RadioactiveError("which results?", fix="radioactive ls results DIR")
        _print_results(directory)
        return
    from radioactive.prompts.base import PROMPTERS, USERS, _load, describe
    from radioactive.prompts.presets import PRESETS

    _load()
    if what == "presets":
        table = Table(title="Presets (initial prompter + simulated user)", title_justify="left")
        table.add_column("name", no_wrap=True)
        for col in ("prompter", "user", "steps", "initial prompts re-sent", "paper"):
            table.add_column(col, overflow="fold")
        for p in PRESETS.values():
            table.add_row(
                p.name, p.prompter, p.user, str(p.steps), "yes" if p.keep_initial else "no",
                p.paper_label,
            )  # fmt: skip
        out.print(table)
        return
    registries: dict[str, dict[str, Any]] = {"prompters": PROMPTERS, "users": USERS}
    if what not in registries:
        raise RadioactiveError(f"cannot list {what!r}", fix="use one of: prompters, users, presets")
    table = Table(title=f"{what.capitalize()}", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("parameters (defaults)", "cost (DoF)", "dim", "paper label"):
        table.add_column(col, overflow="fold")
    for cls in registries[what].values():
        d = describe(cls)
        params = ", ".join(f"{k}={v!r}" for k, v in d["params"].items()) or "-"
        dim = (
            "any" if d["dim"] is None else f"{d['dim']}D" + (" +model" if d["needs_model"] else "")
        )
        table.add_row(f"{d['name']}@{d['version']}", params, d["cost"], dim, d["paper_label"])
    out.print(table)
    if what == "prompters":
        out.print("X = number of axial slices that contain the target.")


@models_app.command("list")
@friendly
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """Models with capabilities, licence and whether the checkpoint is present."""
    from radioactive.models import describe_model, model_names

    infos, broken = [], []
    for name in model_names():
        try:
            infos.append(describe_model(name, cache_dir))
        except RadioactiveError as exc:  # a broken plugin must not hide the other models
            broken.append((name, exc))
    if as_json:
        print(json.dumps(infos, indent=2))
        return
    table = Table(title="Models", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("dim", "prompts", "mask prompt", "licence", "checkpoint"):
        table.add_column(col, overflow="fold")
    colours = {"present": "green", "missing": "yellow", "corrupt": "red", "not needed": "dim"}
    for i in infos:
        status = i["checkpoint_status"]
        table.add_row(
            f"{i['name']}@{i['version']}",
            f"{i['dim']}D",
            ", ".join(i["prompt_types"]),
            "yes" if i["accepts_mask"] else "no",
            i["licence"],
            f"[{colours.get(status, 'white')}]{status}[/]",
        )
    out.print(table)
    for name, problem in broken:
        err.print(f"[red]model {name!r} cannot be loaded:[/] {problem.problem}", highlight=False)
    if any(i["checkpoint_status"] in ("missing", "corrupt") for i in infos):
        out.print("Fetch a checkpoint with `radioactive models fetch NAME`.")


@models_app.command("info")
@friendly
def models_info(
    name: Annotated[str, typer.Argument(help="Model name, e.g. litemedsam.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """A model's card, capabilities and input contract per modality, with its sources."""
    from radioactive.models import describe_model
    from radioactive.models.intensity import RULES

    info = describe_model(name, cache_dir)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    card = Table(title=f"{info['name']}@{info['version']}", title_justify="left",
                 show_header=False)  # fmt: skip
    card.add_column("field", style="bold", no_wrap=True)
    card.add_column("value", overflow="fold")
    for key in ("dim", "prompt_types", "accepts_mask", "licence", "checkpoint",
                "checkpoint_status", "training_data", "reference"):  # fmt: skip
        value = info[key]
        card.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(card)
    if not info["contracts"]:
        out.print("input contract: not stated by this model")
        return
    for c in info["contracts"]:
        table = Table(title=f"input contract, {c['modality']}: {c['name']}",
                      title_justify="left", show_header=False)  # fmt: skip
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key in ("intensity", "preset", "resampling", "crop", "channels", "source"):
            table.add_row(key, c[key])
        out.print(table)
    out.print(
        "The default (model option intensity: auto) is the contract for the dataset's modality; "
        f"other intensity presets: {', '.join(RULES)}."
    )


@models_app.command("fetch")
@friendly
def models_fetch(
    name: Annotated[str, typer.Argument(help="Model name, e.g. mobilesam.")],
    cache_dir: CacheOpt = None,
    force: Annotated[bool, typer.Option(help="Fetch again even if present and valid.")] = False,
) -> None:
    """Download a model checkpoint into the cache and verify its sha256."""
    from radioactive.models import MODELS, backend_class
    from radioactive.models.checkpoints import CHECKPOINTS, fetch_checkpoint

    if name not in CHECKPOINTS and name in MODELS:  # a model name: its default checkpoint
        name = getattr(backend_class(name), "checkpoint_name", name)
    if name not in CHECKPOINTS:
        raise RadioactiveError(
            f"no checkpoint to fetch for {name!r}",
            fix=f"models with checkpoints: {', '.join(sorted(CHECKPOINTS))}",
        )
    with err.status(f"fetching {name} ({CHECKPOINTS[name].how})"):
        path = fetch_checkpoint(name, cache_dir, force=force)
    out.print(f"[green]{name}[/] checkpoint ready: {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
