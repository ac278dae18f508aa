"""``radioactive models list | info | fetch``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from radioactive.cli import _ui
from radioactive.cli._app import CacheOpt, JsonOpt, models_app
from radioactive.errors import RadioactiveError

_COLOURS = {"present": "green", "missing": "yellow", "corrupt": "red", "not needed": "dim"}


@models_app.command("list")
def models_list(as_json: JsonOpt = False, cache_dir: CacheOpt = None) -> None:
    """Models with capabilities, licence and whether the checkpoint is present."""
    from radioactive.models import describe_model, model_names
    from radioactive.models.plugin_recipes import STATUS, uninstalled_recipes

    infos, broken = [], []
    for name in model_names():
        try:
            infos.append(describe_model(name, cache_dir))
        except RadioactiveError as exc:  # a broken plugin must not hide the other models
            broken.append((name, exc))
    recipes = uninstalled_recipes(model_names())
    if as_json:
        print(json.dumps(infos + [r.to_dict() for r in recipes], indent=2))
        return
    table = Table(title="Models", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("dim", "prompts", "mask prompt", "licence", "checkpoint"):
        table.add_column(col, overflow="fold")
    for i in infos:
        status = i["checkpoint_status"]
        table.add_row(
            f"{i['name']}@{i['version']}",
            f"{i['dim']}D",
            ", ".join(i["prompt_types"]),
            "yes" if i["accepts_mask"] else "no",
            i["licence"],
            f"[{_COLOURS.get(status, 'white')}]{status}[/]",
        )
    for r in recipes:
        table.add_row(
            r.name, f"{r.dim}D", ", ".join(sorted(r.prompt_types)), "-", r.licence,
            f"[dim]{STATUS}[/]",
        )  # fmt: skip
    _ui.out.print(table)
    if recipes:
        _ui.out.print(
            f"{', '.join(r.name for r in recipes)}: no package to depend on; wrap the authors' "
            "code as a plugin (docs/adding-a-model.md, Plugin recipes)."
        )
    for name, problem in broken:
        _ui.err.print(
            f"[red]model {name!r} cannot be loaded:[/] {problem.problem}", highlight=False
        )
    if any(i["checkpoint_status"] in ("missing", "corrupt") for i in infos):
        _ui.out.print("Fetch a checkpoint with `radioactive models fetch NAME`.")


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Model name, e.g. litemedsam.")],
    as_json: JsonOpt = False,
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
    sets = info["training_sets"]
    card.add_row("training_sets", f"{sets['status']}: {', '.join(sets['sets']) or 'none named'}")
    card.add_row("training_sources", "; ".join(s["citation"] for s in sets["sources"]))
    _ui.out.print(card)
    if not info["contracts"]:
        _ui.out.print("input contract: not stated by this model")
        return
    for c in info["contracts"]:
        table = Table(title=f"input contract, {c['modality']}: {c['name']}",
                      title_justify="left", show_header=False)  # fmt: skip
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key in ("intensity", "preset", "resampling", "crop", "channels", "source"):
            table.add_row(key, c[key])
        _ui.out.print(table)
    _ui.out.print(
        "The default (model option intensity: auto) is the contract for the dataset's modality; "
        f"other intensity presets: {', '.join(RULES)}."
    )


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Model name, e.g. mobilesam.")],
    cache_dir: CacheOpt = None,
    force: Annotated[bool, typer.Option(help="Fetch again even if present and valid.")] = False,
) -> None:
    """Download a model checkpoint into the cache and verify its sha256."""
    from radioactive.models import checkpoint_for
    from radioactive.models.checkpoints import CHECKPOINTS, fetch_checkpoint

    key = checkpoint_for(name)
    with _ui.err.status(f"fetching {key} ({CHECKPOINTS[key].how})"):
        path = fetch_checkpoint(key, cache_dir, force=force)
    _ui.out.print(f"[green]{key}[/] checkpoint ready: {path}")
