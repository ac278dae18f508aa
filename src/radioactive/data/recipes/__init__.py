"""Dataset recipes: fetch public sources and convert them to the nnU-Net raw layout.

A recipe is looked up by name (``get_recipe("demo")``); its module is imported only then. Each
recipe prepares into ``<cache>/datasets/<name>``, does no work when that is already complete and
valid, and never leaves a half-written case behind (cases are built in a staging folder that is
renamed into place when complete).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from radioactive.errors import DatasetError

#: name -> "module:Class"; modules load lazily.
RECIPES: dict[str, str] = {
    "demo": "radioactive.data.recipes.demo:DemoRecipe",
}


class Reporter(Protocol):
    """Receives progress from a recipe (the CLI draws it as a progress bar)."""

    def begin(self, total: int) -> None: ...

    def step(self, message: str) -> None: ...


class _Silent:
    def begin(self, total: int) -> None:
        pass

    def step(self, message: str) -> None:
        pass


SILENT: Reporter = _Silent()


@dataclass
class PrepareReport:
    """What a ``prepare`` call did."""

    root: Path
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def did_work(self) -> bool:
        return bool(self.built)


class Recipe(Protocol):
    name: str
    description: str

    def location(self, cache: Path) -> Path: ...

    def is_prepared(self, cache: Path) -> bool: ...

    def prepare(
        self, cache: Path, reporter: Reporter = SILENT, *, force: bool = False
    ) -> PrepareReport: ...


def recipe_names() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe registered under ``name``."""
    try:
        target = RECIPES[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset recipe {name!r}",
            fix=f"choose one of: {', '.join(recipe_names())} (or pass a dataset folder path)",
        ) from None
    module, cls = target.split(":")
    recipe: Recipe = getattr(importlib.import_module(module), cls)()
    return recipe
