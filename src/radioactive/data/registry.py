"""Find datasets by recipe name or folder path."""

from __future__ import annotations

from pathlib import Path

from radioactive.data.cache import cache_dir
from radioactive.data.formats import Dataset, is_dataset_dir, open_dataset
from radioactive.data.recipes import RECIPES, get_recipe
from radioactive.errors import DatasetError


def dataset_roots(name_or_path: str | Path, cache: str | Path | None = None) -> list[Path]:
    """The dataset folders behind a recipe name (e.g. ``"demo"``) or a path.

    A path may be one dataset folder or a folder of dataset folders (a suite).
    """
    name = str(name_or_path)
    if name in RECIPES:
        recipe = get_recipe(name)
        root = recipe.location(cache_dir(cache))
        if not (root / "suite.json").exists() and not is_dataset_dir(root):
            raise DatasetError(
                f"dataset {name!r} is not prepared in {root.parent}",
                fix=f"run `radioactive datasets prepare {name}` (or pass --cache-dir where you "
                "prepared it)",
            )
    else:
        root = Path(name_or_path).expanduser()
        if not root.exists():
            raise DatasetError(
                f"{name!r} is neither a known dataset nor an existing folder",
                fix=f"use one of {', '.join(sorted(RECIPES))} or the path of a dataset folder",
            )
    if is_dataset_dir(root):
        return [root]
    subs = (
        sorted(
            d
            for d in root.iterdir()
            if d.is_dir() and not d.name.startswith(".") and is_dataset_dir(d)
        )
        if root.is_dir()
        else []
    )
    if not subs:
        raise DatasetError(
            "no dataset found here",
            path=root,
            fix="a dataset folder holds dataset.json (nnU-Net raw or Decathlon) or images/ and "
            "labels/; a suite folder holds such dataset folders",
        )
    return subs


def resolve_datasets(name_or_path: str | Path, cache: str | Path | None = None) -> list[Dataset]:
    """Open every dataset behind a recipe name or a path (no volume is read)."""
    return [open_dataset(root) for root in dataset_roots(name_or_path, cache)]
