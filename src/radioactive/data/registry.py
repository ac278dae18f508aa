"""Find datasets by recipe name or folder path."""

from __future__ import annotations

from pathlib import Path

from radioactive.data.cache import cache_dir
from radioactive.data.formats import Dataset, is_dataset_dir, open_dataset
from radioactive.data.recipes import ALIASES, RECIPES, canonical_name, get_recipe
from radioactive.errors import DatasetError


def dataset_roots(name_or_path: str | Path, cache: str | Path | None = None) -> list[Path]:
    """The dataset folders behind a recipe name or alias (``"demo"``, ``"D1"``, ``"ms_flair"``)
    or a path.

    A recipe of the paper's public datasets prepares one nnU-Net dataset folder; the demo recipe
    prepares a suite. A path may be one dataset folder or a folder of dataset folders (a suite).
    """
    name = str(name_or_path)
    key = canonical_name(name)
    if key is not None:
        recipe = get_recipe(key)
        root = recipe.location(cache_dir(cache))
        if not (root / "suite.json").exists() and not is_dataset_dir(root):
            command = f"radioactive datasets prepare {key}"
            if cache is not None:
                command += f" --cache-dir {cache}"
            shown = name if name.strip().lower() == key else f"{name} ({key})"
            raise DatasetError(
                f"dataset {shown!r} is not prepared in {root.parent}",
                fix=f"run `{command}`"
                + ("" if cache is not None else " (or pass --cache-dir where you prepared it)"),
            )
    else:
        root = Path(name_or_path).expanduser()
        if not root.exists():
            raise DatasetError(
                f"{name!r} is neither a known dataset nor an existing folder",
                fix=f"use one of {', '.join(sorted(RECIPES))} (or the paper's ids "
                f"{', '.join(sorted(ALIASES, key=_alias_order)).upper()}) or the path of a "
                "dataset folder",
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


def _alias_order(alias: str) -> tuple[int, str]:
    digits = "".join(c for c in alias if c.isdigit())
    return (int(digits) if digits else 0, alias)


def resolve_datasets(name_or_path: str | Path, cache: str | Path | None = None) -> list[Dataset]:
    """Open every dataset behind a recipe name or a path (no volume is read)."""
    return [open_dataset(root) for root in dataset_roots(name_or_path, cache)]
