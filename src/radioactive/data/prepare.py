"""Preparing datasets by recipe name: the logic behind ``radioactive datasets prepare`` and
``radioactive datasets list``, without any printing.

:func:`plan_prepare` checks every name and option before any work; :func:`prepare_datasets`
then prepares the datasets one after the other, going on after a failure, and yields one
:class:`PrepareOutcome` per dataset. :func:`recipe_rows` lists the recipes with whether each is
prepared in a cache.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radioactive.data.recipes import (
    ALIASES,
    PrepareReport,
    Recipe,
    canonical_name,
    get_recipe,
    recipe_names,
    suggest,
)
from radioactive.errors import DatasetError

#: runs one recipe's ``prepare(cache, **kwargs)`` (the CLI adds progress bars around it)
Runner = Callable[[Recipe, Path, dict[str, Any]], PrepareReport]


def _plain(recipe: Recipe, cache: Path, kwargs: dict[str, Any]) -> PrepareReport:
    return recipe.prepare(cache, **kwargs)


def accepts_source_dir(recipe: Recipe) -> bool:
    """Whether the recipe can build from files downloaded by hand (``prepare(source_dir=)``)."""
    return "source_dir" in inspect.signature(recipe.prepare).parameters


def plan_prepare(names: Sequence[str], source_dir: Path | None = None) -> list[str]:
    """The recipe names behind ``names`` (names or paper ids, any case), each once, in order.

    Raises:
        DatasetError: an unknown name (with the closest one), or ``source_dir`` with more than
            one dataset or with a recipe that fetches its own files.
    """
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
            f"unknown dataset {', '.join(repr(n) + suggest(n) for n in unknown)}",
            fix=f"choose among {', '.join(recipe_names())} or the paper's ids "
            f"{', '.join(a.upper() for a in ALIASES)} (`radioactive datasets list` shows them)",
        )
    if source_dir is not None and len(keys) > 1:
        raise DatasetError(
            f"--source-dir holds the files of one dataset, but {len(keys)} were named",
            fix="prepare the datasets one at a time, e.g. "
            f"`radioactive datasets prepare {keys[0]} --source-dir {source_dir}`",
        )
    if source_dir is not None and not accepts_source_dir(get_recipe(keys[0])):
        raise DatasetError(
            f"the {keys[0]} recipe fetches its own files; --source-dir does not apply to it",
            fix=f"run `radioactive datasets prepare {keys[0]}` without --source-dir",
        )
    return keys


@dataclass
class PrepareOutcome:
    """What preparing one dataset gave: a report, or the error that stopped it."""

    key: str
    #: ``"D1 ms_flair"`` for a paper dataset, else the recipe name
    label: str
    report: PrepareReport | None = None
    error: BaseException | None = None


def recipe_label(key: str, recipe: Any) -> str:
    paper_id = getattr(recipe, "paper_id", None)
    return f"{paper_id} {key}" if paper_id else key


def prepare_datasets(
    keys: Sequence[str],
    cache: Path,
    *,
    force: bool = False,
    source_dir: Path | None = None,
    run: Runner = _plain,
) -> Iterator[PrepareOutcome]:
    """Prepare the recipes ``keys`` (from :func:`plan_prepare`) one after the other.

    A failure (any exception but ``KeyboardInterrupt``) is yielded as an outcome with its error
    and does not stop the others.
    """
    for key in keys:
        outcome = PrepareOutcome(key, key)
        try:
            recipe = get_recipe(key)
            outcome.label = recipe_label(key, recipe)
            kwargs: dict[str, Any] = {"force": force}
            if source_dir is not None:
                kwargs["source_dir"] = source_dir
            outcome.report = run(recipe, cache, kwargs)
        except Exception as exc:  # a bug in one recipe must not stop the other datasets
            outcome.error = exc
        yield outcome


def paper_order(paper_id: str | None) -> tuple[int, str]:
    """Sort key: the paper's datasets by number (D1, D2, … D10), then the others."""
    digits = "".join(c for c in (paper_id or "") if c.isdigit())
    return (int(digits), "") if digits else (10_000, paper_id or "")


def prepared_state(recipe: Recipe, cache: Path) -> str:
    """``"yes"``, ``"no"``, ``"damaged"`` or ``"outdated"``: whether a recipe's output is in the
    cache (reads dataset.json only, hashes nothing)."""
    loc = recipe.location(cache)
    if (loc / "suite.json").exists():
        return "yes"
    js = loc / "dataset.json"
    if not js.exists():
        return "no"
    version = getattr(recipe, "version", None)
    if version is not None:
        from radioactive.data.recipes.public import BASE_VERSION

        try:
            meta = json.loads(js.read_text(encoding="utf-8")).get("radioactive", {})
        except (OSError, ValueError):
            return "damaged"
        if meta.get("recipe_version") != f"{BASE_VERSION}.{version}":
            return "outdated"
    return "yes"


def recipe_rows(cache: Path) -> list[dict[str, Any]]:
    """One row per recipe, in paper order: ``info()`` fields (``paper_id``, ``name``, ``title``,
    ``modality``, ``targets``, ``licence``, ``access``, ``download_size``) and ``prepared``."""
    rows = []
    for name in recipe_names():
        recipe = get_recipe(name)
        info: dict[str, Any] = dict(recipe.info()) if hasattr(recipe, "info") else {"name": name}
        info.setdefault("name", name)
        if not info.get("title"):
            info["title"] = getattr(recipe, "description", "")
        info["prepared"] = prepared_state(recipe, cache)
        rows.append(info)
    return sorted(rows, key=lambda r: paper_order(r.get("paper_id")))


__all__ = [
    "PrepareOutcome",
    "accepts_source_dir",
    "paper_order",
    "plan_prepare",
    "prepare_datasets",
    "prepared_state",
    "recipe_label",
    "recipe_rows",
]
