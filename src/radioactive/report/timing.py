"""The report's time-to-result numbers: what a user has after so many seconds.

Time to result at a step = the estimated human seconds so far (``cum_seconds``) + the model's
seconds so far (encoder + decoder of every step up to it): :mod:`radioactive.metrics.timing`.
Per scored unit, :func:`unit_times` computes Dice at each budget of
:data:`~radioactive.metrics.timing.TIME_BUDGETS_S`, the area under Dice over the longest budget
(normalised by it), and the seconds and degrees of freedom to reach Dice 0.8 and 0.9.
:func:`time_table` aggregates them per entry with the view's dataset-weighted mean (seconds and
DoF to a target: over the units that reach it; the failure rate beside them);
:func:`dice_over_time` gives the curve of the figure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from radioactive.metrics.curves import effort_to_target
from radioactive.metrics.timing import (
    TIME_BUDGETS_S,
    auc_time,
    time_to_result,
    time_to_target,
    value_at_time,
)
from radioactive.report.view import ENTRY, ResultsView

__all__ = ["DICE_TARGETS", "dice_over_time", "time_table", "unit_times", "with_times"]

#: the Dice levels whose time to reach the report gives
DICE_TARGETS = (0.8, 0.9)


def with_times(steps: pd.DataFrame) -> pd.DataFrame:
    """``steps`` (one unit's rows or many) sorted by unit and step, with ``model_s`` and
    ``time_to_result_s``."""
    df = steps.sort_values(["unit_id", "step"], kind="stable").copy()
    enc = pd.to_numeric(df.get("encoder_s"), errors="coerce") if "encoder_s" in df else 0.0
    dec = pd.to_numeric(df.get("decoder_s"), errors="coerce") if "decoder_s" in df else 0.0
    df["model_s"] = (pd.Series(enc, index=df.index).fillna(0.0)
                     + pd.Series(dec, index=df.index).fillna(0.0))  # fmt: skip
    human = pd.to_numeric(df["cum_seconds"], errors="coerce")
    df = df.reset_index(drop=True)
    human = human.reset_index(drop=True)
    times = pd.Series(0.0, index=df.index)
    model_s = df["model_s"].to_numpy(dtype=np.float64)
    for idx in df.groupby("unit_id", sort=False).indices.values():
        times.iloc[idx] = time_to_result(human.iloc[idx].to_numpy(dtype=np.float64), model_s[idx])
    df["time_to_result_s"] = times
    return df


def unit_times(view: ResultsView) -> pd.DataFrame:
    """One row per scored unit: its identity, ``dataset``, ``case``, ``target``, ``unit_id``,
    ``dice_at_<T>s`` and ``nsd_at_<T>s`` for each budget (0 before the first result),
    ``auc_time_<T>s`` (the Dice AUC over the longest budget),
    ``s_to_dice_<τ>`` and ``dof_to_dice_<τ>`` (the seconds of time to result and the degrees of
    freedom spent when Dice first reaches τ; NaN when never) and ``fails_dice_<τ>`` (1.0 or
    0.0); and, when the experiment states an inter-rater Dice for a dataset
    (:meth:`ResultsView.inter_rater_dice`), ``s_to_dice_rater``, ``dof_to_dice_rater`` and
    ``fails_dice_rater`` for that level (NaN for the other datasets)."""
    rows = with_times(view.scored)
    keys = [*ENTRY, "dataset", "case", "target", "unit_id"]
    longest = max(TIME_BUDGETS_S)
    rater = view.inter_rater_dice()
    out = []
    for _, unit in rows.groupby("unit_id", sort=True):
        dice = pd.to_numeric(unit["dice"], errors="coerce").to_numpy(dtype=np.float64)
        nsd = pd.to_numeric(unit.get("nsd", np.nan), errors="coerce")
        nsd = np.broadcast_to(np.asarray(nsd, dtype=np.float64), dice.shape)
        times = unit["time_to_result_s"].to_numpy(dtype=np.float64)
        record = {k: unit.iloc[0][k] for k in keys}
        for budget in TIME_BUDGETS_S:
            record[f"dice_at_{budget:g}s"] = value_at_time(dice, times, budget)
        for budget in TIME_BUDGETS_S:
            record[f"nsd_at_{budget:g}s"] = value_at_time(nsd, times, budget)
        record[f"auc_time_{longest:g}s"] = auc_time(dice, times, longest)
        levels: list[tuple[str, float | None]] = [(f"{t:g}", t) for t in DICE_TARGETS]
        if rater:
            levels.append(("rater", rater.get(str(record["dataset"]))))
        dof = pd.to_numeric(unit["cum_dof"], errors="coerce").fillna(0).to_numpy(np.float64)
        for name, level in levels:
            seconds = time_to_target(dice, times, level) if level is not None else math.nan
            record[f"s_to_dice_{name}"] = seconds if math.isfinite(seconds) else math.nan
            spent = effort_to_target(dice, dof, level) if level is not None else math.nan
            record[f"dof_to_dice_{name}"] = spent if math.isfinite(spent) else math.nan
            fails = 0.0 if math.isfinite(seconds) else 1.0
            record[f"fails_dice_{name}"] = math.nan if level is None else fails
        out.append(record)
    return pd.DataFrame(out, columns=[*keys, *_value_columns(bool(rater))])


def _value_columns(rater: bool = False) -> list[str]:
    longest = max(TIME_BUDGETS_S)
    levels = [*(f"{t:g}" for t in DICE_TARGETS), *(["rater"] if rater else [])]
    return [
        *(f"dice_at_{b:g}s" for b in TIME_BUDGETS_S),
        *(f"nsd_at_{b:g}s" for b in TIME_BUDGETS_S),
        f"auc_time_{longest:g}s",
        *(f"{kind}_dice_{level}" for level in levels for kind in ("s_to", "dof_to", "fails")),
    ]


def _label(column: str) -> str:
    if column.startswith("dice_at_"):
        return f"Dice @ {column.removeprefix('dice_at_')}"
    if column.startswith("nsd_at_"):
        return f"NSD @ {column.removeprefix('nsd_at_')}"
    if column.startswith("auc_time_"):
        return f"Dice AUC over {column.removeprefix('auc_time_')}"
    if column == "s_to_dice_rater":
        return "s to inter-rater Dice"
    if column == "dof_to_dice_rater":
        return "DoF to inter-rater Dice"
    if column.startswith("dof_to_dice_"):
        return f"DoF to Dice {column.removeprefix('dof_to_dice_')}"
    if column == "fails_dice_rater":
        return "% never inter-rater Dice"
    if column.startswith("s_to_dice_"):
        return f"s to Dice {column.removeprefix('s_to_dice_')}"
    return f"% never Dice {column.removeprefix('fails_dice_')}"


def time_table(view: ResultsView) -> pd.DataFrame:
    """Per entry (model, prompter, user; no user ``""``), the dataset-weighted mean of every
    column of :func:`unit_times`: Dice and its AUC ×100, seconds as they are, failure rates in
    percent. Entries without results in every dataset get NaN."""
    units = unit_times(view)
    table = view.entries.copy()
    for column in _value_columns("s_to_dice_rater" in units.columns):
        # the inter-rater level: over the datasets that state one
        rows = units[units[column].notna() | ~column.endswith("_rater")]
        stats = view.entry_stats(column, rows)[[*ENTRY, "mean"]]
        scale = 1.0 if column.startswith(("s_to_", "dof_to_")) else 100.0
        stats = stats.assign(mean=stats["mean"].astype(float) * scale)
        table = table.merge(stats.rename(columns={"mean": _label(column)}), on=list(ENTRY),
                            how="left")  # fmt: skip
    return table


def dice_over_time(view: ResultsView, grid_s: np.ndarray | None = None) -> pd.DataFrame:
    """Per entry and time ``t`` of ``grid_s`` (default: 0 to the longest budget, every 5 s), the
    view's dataset-weighted mean Dice shown at ``t`` (0 before a unit's first result), with its
    bootstrap interval: :meth:`ResultsView.entry_stats` with ``by=("t",)``."""
    grid = np.arange(0.0, max(TIME_BUDGETS_S) + 1e-9, 5.0) if grid_s is None else grid_s
    rows = with_times(view.scored)
    keys = [*ENTRY, "dataset", "case", "target", "unit_id"]
    records = []
    for _, unit in rows.groupby("unit_id", sort=True):
        dice = pd.to_numeric(unit["dice"], errors="coerce").to_numpy(dtype=np.float64)
        times = unit["time_to_result_s"].to_numpy(dtype=np.float64)
        first = {k: unit.iloc[0][k] for k in keys}
        for t in grid:
            records.append({**first, "t": float(t), "dice": value_at_time(dice, times, t)})
    long = pd.DataFrame(records, columns=[*keys, "t", "dice"])
    return view.entry_stats("dice", long, by=("t",))
