"""``radioactive datasets list | prepare | info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from radioactive.cli import _ui
from radioactive.cli._app import CacheOpt, JsonOpt, datasets_app

_STATE_STYLE = {"yes": "[green]yes[/]", "damaged": "[yellow]damaged[/]",
                "outdated": "[yellow]outdated[/]"}  # fmt: skip


@datasets_app.command("list")
def datasets_list(cache_dir: CacheOpt = None) -> None:
    """List the dataset recipes (the paper's public datasets and the demo) and whether each is
    prepared."""
    from radioactive.data.cache import cache_dir as resolve_cache
    from radioactive.data.prepare import recipe_rows

    cache = resolve_cache(cache_dir)
    table = Table(title="Dataset recipes", title_justify="left", caption_justify="left")
    for col in ("id", "name", "dataset", "modality", "targets", "licence", "access", "download"):
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "name"))
    table.add_column("prepared", no_wrap=True)
    for info in recipe_rows(cache):
        table.add_row(
            info.get("paper_id") or "-",
            info["name"],
            info["title"],
            info.get("modality", "-"),
            info.get("targets", "-"),
            info.get("licence", "-"),
            info.get("access", "-"),
            info.get("download_size", "-"),
            _STATE_STYLE.get(info["prepared"], info["prepared"]),
        )
    table.caption = (
        f"cache: {cache}\nprepare with `radioactive datasets prepare NAME [NAME ...]` (a name or "
        "an id such as D1); files behind a login: download them by hand and add --source-dir DIR"
    )
    _ui.out.print(table)


def prepare_all(
    names: list[str], cache_dir: Path | None, force: bool = False, source_dir: Path | None = None
) -> int:
    """Prepare every named dataset, going on after a failure; print a summary; return the exit
    status (0: all prepared, 2: a dataset failed with an error of ours, 1: an unexpected one)."""
    from radioactive.cli._progress import prepare_with_bars
    from radioactive.data.cache import cache_dir as resolve_cache
    from radioactive.data.prepare import plan_prepare, prepare_datasets

    keys = plan_prepare(names, source_dir)
    cache = resolve_cache(cache_dir)
    rows: list[tuple[str, str, str, str]] = []
    status = 0
    for done in prepare_datasets(
        keys, cache, force=force, source_dir=source_dir, run=prepare_with_bars
    ):
        if done.error is not None:
            _ui.print_error(done.error, done.label)
            status = max(status, _ui.exit_status(done.error))
            lines = _ui.explain(done.error)[0].splitlines() or [""]
            first = lines[0].rstrip(":") + (" (listed above)" if len(lines) > 1 else "")
            rows.append((done.label, "[red]failed[/]", first, "-"))
            continue
        report = done.report
        assert report is not None
        notes = [f"skipped {k}: {v}" for k, v in report.unavailable.items()]
        if report.built:
            what = f"{', '.join(report.built)} in {report.seconds:.1f} s"
            rows.append(
                (done.label, "[green]built[/]", "; ".join([what, *notes]), str(report.root))
            )
        else:
            what = f"verified, no work: {', '.join(report.reused) or '-'}"
            rows.append((done.label, "reused", "; ".join([what, *notes]), str(report.root)))
    table = Table(title="Prepared datasets", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("details", overflow="fold")
    table.add_column("location", overflow="fold")
    for row in rows:
        table.add_row(*row)
    _ui.out.print(table)
    return status


@datasets_app.command("prepare")
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
    raise typer.Exit(prepare_all(names, cache_dir, force, source_dir))


def print_summary(summary: dict[str, Any]) -> None:
    """One dataset's cases as a table (``radioactive.data.summary.summarize_dataset``)."""
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
        expand=_ui.out.is_terminal,
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
    _ui.out.print(table)
    for e in summary["errors"]:
        _ui.err.print(
            f"[bold red]Error[/] in {summary['name']}/{e['case']}: {e['error']}", highlight=False
        )


def show_info(name_or_path: str, cache_dir: Path | None, as_json: bool) -> int:
    """Print every case of the datasets behind ``name_or_path``; 1 when a case does not load."""
    from rich.progress import Progress

    from radioactive.data.registry import resolve_datasets
    from radioactive.data.summary import summarize_dataset

    datasets = resolve_datasets(name_or_path, cache_dir)
    summaries = []
    with Progress(console=_ui.err, transient=True) as progress:
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
            print_summary(s)
        n_cases = sum(s["n_cases"] for s in summaries)
        n_targets = sum(s["n_targets"] for s in summaries)
        groups = sorted({s["modality_group"] for s in summaries})
        kinds = sorted({s["target_type"] for s in summaries})
        _ui.out.print(
            f"[bold]{len(summaries)} dataset(s), {n_cases} cases, {n_targets} targets[/] "
            f"({', '.join(groups)}; {', '.join(kinds)} targets)"
        )
    return 1 if any(s["errors"] for s in summaries) else 0


@datasets_app.command("info")
def datasets_info(
    name_or_path: Annotated[str, typer.Argument(help="Recipe name (e.g. demo) or dataset folder.")],
    as_json: JsonOpt = False,
    cache_dir: CacheOpt = None,
) -> None:
    """Print every case with shape, spacing, modality and targets."""
    raise typer.Exit(show_info(name_or_path, cache_dir, as_json))


@datasets_app.command("export-cvpr25")
def datasets_export_cvpr25(
    name_or_path: Annotated[str, typer.Argument(help="Recipe name (e.g. demo) or dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the challenge .npz files.")],
    seed: Annotated[int, typer.Option(help="Seed of the boxes' random shifts.")] = 0,
    intensity: Annotated[
        str, typer.Option(help="'auto' (the challenge's preparation) or an intensity preset.")
    ] = "auto",
    cache_dir: CacheOpt = None,
) -> None:
    """Write a prepared dataset as CVPR 2025 challenge .npz files (imgs, gts, spacing, boxes), so
    the organisers' CVPR25_iter_eval.py runs on it (a suite: one sub-folder per dataset)."""
    from rich.progress import Progress

    from radioactive.data.cvpr25_npz import export_cvpr25
    from radioactive.data.registry import resolve_datasets

    datasets = resolve_datasets(name_or_path, cache_dir)
    total = 0
    with Progress(console=_ui.err, transient=True) as progress:
        for ds in datasets:
            folder = out if len(datasets) == 1 else out / ds.name
            task = progress.add_task(f"exporting {ds.name}", total=len(ds))
            paths = export_cvpr25(
                ds, folder, seed=seed, intensity=intensity,
                progress=lambda done, n, t=task: progress.update(t, completed=done),
            )  # fmt: skip
            total += len(paths)
            _ui.out.print(f"{ds.name}: {len(paths)} cases → {folder}", highlight=False)
    _ui.out.print(
        f"{total} challenge files written; run the organisers' script with "
        f"--test_img_path {out if len(datasets) == 1 else out / '<dataset>'}",
        highlight=False,
    )
