"""Propagation diagnostics in the report: over-propagation and Dice against the distance from the
prompted slice, per entry, for the units whose prediction was propagated.

The runner stores, per scored unit, the diagnostics of its final prediction in the ``units``
table (:mod:`radioactive.runner.diagnostics`; definitions in
:mod:`radioactive.metrics.propagation` and docs/metrics.md) and ``propagates``: whether a
propagating prompter or a propagation engine (a video model) made it. Only those units are read
here; a run without them (or a store written before results schema 3) has no propagation table
and no figure.

Every number is a mean over the units of each dataset, then the unweighted mean over datasets
(the aggregation of PROTOCOL §6, :mod:`radioactive.metrics.aggregate`); a unit without slices in
a distance bin is left out of that bin's mean. Dice values are shown ×100.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from radioactive.metrics.aggregate import dataset_means, overall_means
from radioactive.metrics.meta import meta
from radioactive.metrics.propagation import DISTANCE_BINS
from radioactive.report.view import ENTRY, ResultsView

__all__ = [
    "PROPAGATION_COLUMNS",
    "dice_by_distance",
    "dice_vs_distance_figure",
    "propagation_table",
    "propagation_units",
]


def _bin_column(label: str) -> str:
    """The table column of a distance bin: ``Dice d=1-5``, ``Dice d>10``."""
    return f"Dice d{label}" if label[:1] in "<>" else f"Dice d={label}"


#: the propagation table's columns, in order
PROPAGATION_COLUMNS = (
    "n units",
    "over-propagated slices",
    "units over-propagating (%)",
    "over-propagation (mm)",
    *(_bin_column(label) for label, _, _ in DISTANCE_BINS),
    "Dice slope per slice",
)

_KEYS = ["unit_id", *ENTRY, "dataset", "case", "target"]


def _parsed(text: Any) -> dict[str, Any] | None:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def propagation_units(view: ResultsView) -> pd.DataFrame:
    """One row per scored unit with ``propagates`` true and stored diagnostics: the unit
    identity, ``overprop_slices``, ``overprop_mm``, ``overprop_voxels``, ``dice_d=<bin>`` per
    distance bin, ``slope`` and ``curve`` (``[[distance, dice, slices], ...]``)."""
    columns = [*_KEYS, "overprop_slices", "overprop_mm", "overprop_voxels",
               *(f"dice_d={label}" for label, _, _ in DISTANCE_BINS), "slope", "curve"]  # fmt: skip
    units = view.units
    needed = {"unit_id", "propagates", "propagation", "overprop_slices"}
    if units.empty or not needed <= set(units.columns) or view.finals.empty:
        return pd.DataFrame(columns=columns)
    flagged = units[units["propagates"].fillna(False).astype(bool)]
    finals = view.finals[[c for c in _KEYS if c in view.finals.columns]]
    merged = finals.merge(
        flagged[["unit_id", "overprop_slices", "overprop_mm", "overprop_voxels", "propagation"]],
        on="unit_id",
    )
    rows = []
    for row in merged.itertuples(index=False):
        data = _parsed(row.propagation)
        if data is None:
            continue
        bins = data.get("bins") or {}
        rows.append({
            **{k: getattr(row, k) for k in _KEYS},
            "overprop_slices": float(row.overprop_slices),
            "overprop_mm": float(row.overprop_mm),
            "overprop_voxels": float(row.overprop_voxels),
            **{f"dice_d={label}": _number(bins.get(label)) for label, _, _ in DISTANCE_BINS},
            "slope": _number(data.get("slope")),
            "curve": [list(c) for c in data.get("dice_by_distance") or ()],
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _weighted(long: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per ``by`` group: the mean over each dataset's units, then over datasets."""
    per_dataset = dataset_means(long, by=by)
    return overall_means(per_dataset, by=by).set_index(by)["mean"]


def propagation_table(view: ResultsView) -> pd.DataFrame:
    """Per entry (model, prompter, user; no user ``"–"``) with propagation units: their number,
    the mean over-propagated slices, the share (%) of units that over-propagate, the mean
    over-propagation in mm, the mean Dice (×100) in each distance bin and the mean slope of
    Dice (×100) per slice of distance. Empty when the run has no propagation units."""
    units = propagation_units(view)
    index_names = list(ENTRY)
    if units.empty:
        empty = pd.MultiIndex.from_arrays([[]] * len(ENTRY), names=index_names)
        return pd.DataFrame(columns=list(PROPAGATION_COLUMNS), index=empty)
    scale = meta("dice").scale
    values = {
        "over-propagated slices": (units["overprop_slices"], 1.0),
        "units over-propagating (%)": ((units["overprop_slices"] > 0).astype(float), 100.0),
        "over-propagation (mm)": (units["overprop_mm"], 1.0),
        **{_bin_column(b): (units[f"dice_d={b}"], scale) for b, _, _ in DISTANCE_BINS},
        "Dice slope per slice": (units["slope"], scale),
    }
    table = pd.DataFrame(index=pd.MultiIndex.from_frame(
        units[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY), kind="stable")
    ))  # fmt: skip
    table["n units"] = units.groupby(list(ENTRY))["unit_id"].nunique().reindex(table.index)
    for name, (series, factor) in values.items():
        long = units[[*ENTRY, "dataset", "case", "target"]].assign(value=series.to_numpy(float))
        table[name] = _weighted(long, list(ENTRY)).reindex(table.index) * factor
    table = table.reset_index()
    table["user"] = table["user"].replace("", "–")
    return table.set_index(index_names)[list(PROPAGATION_COLUMNS)]


def dice_by_distance(view: ResultsView) -> pd.DataFrame:
    """Per entry and distance (slices from the nearest prompted slice): ``mean`` Dice (0..1)
    over the units with slices at that distance (a unit's own value is the mean over its slices
    there) and ``n_units``; the data of the figure."""
    units = propagation_units(view)
    columns = [*ENTRY, "distance", "mean", "n_units"]
    rows = [
        {**{k: getattr(u, k) for k in (*ENTRY, "dataset", "case", "target", "unit_id")},
         "distance": int(d), "value": _number(v)}
        for u in units.itertuples(index=False)
        for d, v, _ in u.curve
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=columns)
    long = pd.DataFrame(rows)
    by = [*ENTRY, "distance"]
    means = _weighted(long, by).rename("mean")
    counts = long.groupby(by)["unit_id"].nunique().rename("n_units")
    out = pd.concat([means, counts], axis=1).reset_index()
    return out.sort_values(by, kind="stable").reset_index(drop=True)[columns]


def dice_vs_distance_figure(view: ResultsView) -> Any:
    """The figure "Dice vs distance from the prompted slice": one line per entry with
    propagation units (the mean Dice ×100 at each distance, :func:`dice_by_distance`); ``None``
    without them."""
    from radioactive.report.figure_kit import (
        FEW_ENTRIES,
        entry_label,
        legend_beside,
        model_colours,
        model_strategy_legend,
        new_figure,
        strategy_markers,
    )

    curves = dice_by_distance(view)
    curves = curves[np.isfinite(curves["mean"].astype(float))]
    if curves.empty:
        return None
    scale = meta("dice").scale
    entries = curves[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY))
    colours = model_colours(entries["model"])
    markers = strategy_markers(entries)
    fig = new_figure(9.0, 5.0)
    ax = fig.add_subplot()
    for model, prompter, user in entries.itertuples(index=False):
        sub = curves[(curves["model"] == model) & (curves["prompter"] == prompter)
                     & (curves["user"] == user)].sort_values("distance")  # fmt: skip
        ax.plot(
            sub["distance"].to_numpy(dtype=float), sub["mean"].to_numpy(dtype=float) * scale,
            color=colours[model], marker=markers[entry_label(prompter, user)], markersize=4,
            label=f"{model}: {entry_label(prompter, user)} (n={int(sub['n_units'].max())})",
        )  # fmt: skip
    ax.set_xlabel("distance from the nearest prompted slice (slices)")
    ax.set_ylabel(meta("dice").axis_label("mean slice"))
    ax.set_title("Dice vs distance from the prompted slice (mean over datasets)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    if len(entries) <= FEW_ENTRIES:
        handles, _ = ax.get_legend_handles_labels()
        legend_beside(fig, handles, "model: strategy (units)")
    else:
        model_strategy_legend(fig, colours, markers, line=True)
    return fig
