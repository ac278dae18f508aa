"""Training-data overlap of the report's models and datasets, read from the results alone.

For every model (label, as in the tables) × dataset of a :class:`ResultsView`,
:func:`overlap_table` says whether the model's weights saw the dataset's images
(:func:`radioactive.models.training_data.overlap`). The model behind a label and the datasets'
declared collections come from the runs' configurations (the latest run wins); a dataset's own
collections from the ``dataset.json`` its units recorded, else from the recipe dataset of the same
name. Without runs (a bare steps table) a label is taken as the model's name. The status is
provenance, not a number: nothing here changes a mean, a rank or an interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from radioactive.report.view import ResultsView

__all__ = ["OVERLAP_COLUMNS", "entry_overlap", "overlap_table"]

OVERLAP_COLUMNS = ("model", "dataset", "overlap", "matched", "reason", "sources")


def _configs(view: ResultsView) -> list[dict[str, Any]]:
    if "config" not in view.runs.columns:
        return []
    runs = view.runs.sort_values("started_at") if "started_at" in view.runs else view.runs
    out = []
    for text in runs["config"].dropna():
        try:
            config = json.loads(text) if isinstance(text, str) else dict(text)
        except (TypeError, ValueError):
            continue
        if isinstance(config, dict):
            out.append(config)
    return out


def _model_names(configs: Iterable[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for config in configs:
        for m in config.get("models") or []:
            if isinstance(m, dict) and m.get("name"):
                names[str(m.get("label") or m["name"])] = str(m["name"])
    return names


def _roots(view: ResultsView) -> dict[str, str]:
    units = view.units
    if units.empty or not {"dataset", "dataset_root"} <= set(units.columns):
        return {}
    rows = units[["dataset", "dataset_root"]].dropna().drop_duplicates("dataset", keep="last")
    return {str(d): str(r) for d, r in rows.itertuples(index=False)}


def _entry_covers(entry: dict[str, Any], dataset: str, root: str | None) -> bool:
    """Whether an experiment's dataset entry selects ``dataset`` (at ``root``)."""
    from radioactive.data.collections import recipe_datasets
    from radioactive.data.recipes import canonical_name, get_recipe

    chosen = entry.get("datasets")
    if chosen:
        return dataset in chosen
    key = canonical_name(str(entry.get("name", "")))
    if key is not None:
        return dataset in recipe_datasets(get_recipe(key))
    if root is None:
        return False
    where, folder = Path(str(entry.get("name", ""))), Path(root)
    return folder == where or folder.parent == where


def _declared(configs: list[dict[str, Any]], dataset: str, root: str | None) -> list[str] | None:
    found = None
    for config in configs:
        for entry in config.get("datasets") or []:
            if isinstance(entry, dict) and entry.get("collections"):
                if _entry_covers(entry, dataset, root):
                    found = [str(c) for c in entry["collections"]]
    return found


def overlap_table(view: ResultsView) -> pd.DataFrame:
    """One row per model label × dataset of the view's scored units: ``model``, ``dataset``,
    ``overlap`` (``known``, ``possible``, ``none``, ``unknown``), ``matched``, ``reason`` and
    ``sources`` (``; ``-joined)."""
    from radioactive.data.collections import dataset_collections
    from radioactive.models.training_data import overlap

    frame = view.finals if len(view.finals) else view.steps
    pairs = frame[["model", "dataset"]].drop_duplicates().astype(str)
    configs = _configs(view)
    names = _model_names(configs)
    roots = _roots(view)
    collections: dict[str, tuple[str, ...]] = {}
    rows = []
    for label, dataset in sorted(pairs.itertuples(index=False)):
        if dataset not in collections:
            root = roots.get(dataset)
            collections[dataset] = dataset_collections(
                dataset, root, _declared(configs, dataset, root)
            )
        o = overlap(names.get(label, label), collections[dataset])
        rows.append((label, dataset, o.status, ", ".join(o.matched), o.reason,
                     "; ".join(o.sources)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def entry_overlap(table: pd.DataFrame, model: str, datasets: Iterable[str] | None = None) -> str:
    """The most serious overlap of ``model`` over ``datasets`` (all of its rows by default)."""
    from radioactive.models.training_data import worst

    rows = table[table["model"] == model]
    if datasets is not None:
        rows = rows[rows["dataset"].isin(list(datasets))]
    return worst(rows["overlap"])
