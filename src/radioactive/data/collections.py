"""Which public image collections a dataset's images come from.

A collection is named by an identifier (``"LiTS"``, ``"MSD-Task03-Liver"``, ``"HCC-TACE-Seg"``,
``"SA-1B"``): the same vocabulary as the training sets of the model cards
(:mod:`radioactive.models.training_data`), so that a model's training data and an evaluation
dataset can be compared. Identifiers are compared case-insensitively and without punctuation
(``"kits19"`` is ``"KiTS19"``).

Where a dataset's collections come from, first match wins:

1. the experiment file: a dataset entry's ``collections:`` list;
2. the dataset's own ``dataset.json``: a ``collections`` list in its ``"radioactive"`` block;
3. the recipe that prepared it (``radioactive.recipe`` in ``dataset.json``), or, when the folder
   is not at hand (a report read elsewhere), a recipe dataset of the same name;
4. otherwise none: the collections are **unknown** (a plain nnU-Net ``dataset.json`` says
   nothing about where its images come from), which is never read as "no overlap".

Collections can contain one another (the Decathlon's liver task is the LiTS training set):
:data:`CONTAINED_IN` records such relations, each with its source, and :func:`shares_images`
uses them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CONTAINED_IN",
    "dataset_collections",
    "known_dataset_collections",
    "normalise",
    "recipe_collections",
    "recipe_datasets",
    "shares_images",
]

#: part → ((whole, source), ...): every image of ``part`` is also in ``whole``
CONTAINED_IN: dict[str, tuple[tuple[str, str], ...]] = {
    "LiTS": (
        (
            "MSD-Task03-Liver",
            "Antonelli et al., The Medical Segmentation Decathlon, Nat. Commun. 13:4128 (2022): "
            "the liver task's data are those of the LiTS challenge",
        ),
    ),
    "LNQ2023": (
        (
            "Mediastinal-Lymph-Node-SEG",
            "TCIA collection Mediastinal-Lymph-Node-SEG (doi:10.7937/QVAZ-JA09): the data of "
            "the MICCAI 2023 LNQ challenge",
        ),
    ),
    "Mediastinal-Lymph-Node-SEG": (
        ("LNQ2023", "the same release as LNQ2023 (TCIA, doi:10.7937/QVAZ-JA09)"),
    ),
    "RIDER-LungCT-Seg": (
        (
            "RIDER-Lung-CT",
            "TCIA analysis result RIDER-LungCT-Seg (doi:10.7937/tcia.2020.jit9grk8): "
            "delineations drawn on the RIDER Lung CT images",
        ),
    ),
}


def normalise(identifier: str) -> str:
    """The form identifiers are compared in: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", identifier.casefold())


def _parts() -> dict[str, set[str]]:
    """normalised whole → normalised identifiers of its parts (direct)."""
    out: dict[str, set[str]] = {}
    for part, wholes in CONTAINED_IN.items():
        for whole, _ in wholes:
            out.setdefault(normalise(whole), set()).add(normalise(part))
    return out


def _closure(identifier: str, parts: Mapping[str, set[str]]) -> set[str]:
    """``identifier`` and every collection contained in it, transitively (normalised)."""
    seen = {normalise(identifier)}
    todo = list(seen)
    while todo:
        for p in parts.get(todo.pop(), ()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def shares_images(a: str, b: str) -> list[str]:
    """Why collections ``a`` and ``b`` share images: ``[]`` when they do not (as far as
    :data:`CONTAINED_IN` knows), ``["same collection"]`` when they are one, else the sources
    of the containments that link them."""
    if normalise(a) == normalise(b):
        return ["same collection"]
    parts = _parts()
    common = _closure(a, parts) & _closure(b, parts)
    if not common:
        return []
    linked = _closure(a, parts) | _closure(b, parts)
    reasons = {
        f"{part} ⊂ {whole}: {source}"
        for part, wholes in CONTAINED_IN.items()
        for whole, source in wholes
        if normalise(part) in linked and normalise(whole) in linked
    }
    return sorted(reasons)


def recipe_collections(recipe: Any, dataset_name: str | None = None) -> tuple[str, ...]:
    """The collections a recipe states for one of its datasets (``()``: unknown).

    A recipe states them as a ``collections`` attribute (one dataset) or a
    ``dataset_collections(name)`` method (a suite such as ``demo``)."""
    per = getattr(recipe, "dataset_collections", None)
    if callable(per):
        return tuple(per(dataset_name or ""))
    return tuple(getattr(recipe, "collections", ()) or ())


def recipe_datasets(recipe: Any) -> list[str]:
    """The names (``dataset.json`` "name") of the datasets a recipe prepares, where it says."""
    names = getattr(recipe, "dataset_names", None)
    if callable(names):
        return [str(n) for n in names()]
    folder = getattr(recipe, "folder", None)
    return [folder.split("_", 1)[-1]] if isinstance(folder, str) else []


@functools.cache
def known_dataset_collections() -> dict[str, tuple[str, ...]]:
    """Dataset name (``dataset.json`` "name") → collections, for every dataset the built-in
    recipes prepare."""
    from radioactive.data.recipes import RECIPES, get_recipe

    out: dict[str, tuple[str, ...]] = {}
    for name in RECIPES:
        recipe = get_recipe(name)
        for ds in recipe_datasets(recipe):
            out[ds] = recipe_collections(recipe, ds)
    return out


def _from_dataset_json(root: Path, name: str) -> tuple[str, ...] | None:
    """What ``root/dataset.json`` says (its own list, or its recipe's); ``None``: nothing."""
    try:
        raw = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = raw.get("radioactive") if isinstance(raw, dict) else None
    if not isinstance(meta, dict):
        return None
    own = meta.get("collections")
    if isinstance(own, list) and own:
        return tuple(str(c) for c in own)
    recipe_name = meta.get("recipe")
    if isinstance(recipe_name, str):
        from radioactive.data.recipes import RECIPES, get_recipe

        if recipe_name in RECIPES:
            found = recipe_collections(get_recipe(recipe_name), name)
            return found or None
    return None


def dataset_collections(
    name: str,
    root: str | Path | None = None,
    declared: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """The collections dataset ``name`` (at ``root``, when known) comes from; ``()`` when
    unknown. ``declared``: the experiment file's list for it, which wins."""
    if declared:
        return tuple(str(c) for c in declared)
    if root is not None:
        found = _from_dataset_json(Path(root), name)
        if found:
            return found
    return known_dataset_collections().get(name, ())
