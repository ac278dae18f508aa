"""Result tables of the paper from the per-step results table, as pure functions.

Input: a :class:`~radioactive.report.view.ResultsView`, or the DataFrame of
:meth:`radioactive.runner.store.ResultStore.steps` (one row per step; :func:`load_steps` reads it
from a results directory), of which the view is made. Nothing here touches the store otherwise.

* :func:`final_steps` — the last step of every ``ok`` unit (a unit = dataset × case × target ×
  model × prompter × user × seed); units with an ``error`` row are left out and listed by
  :func:`errors`.
* :func:`build_tables` — ``dice``, ``nsd``, ``groups``, ``effort`` and ``refinement`` tables, one
  row per *entry* (model × prompter × user; no user is shown as ``"–"``).
* :func:`write_tables` — each table as Markdown, CSV (full precision) and LaTeX (booktabs).

Aggregation follows PROTOCOL §6 through :mod:`radioactive.metrics.aggregate`: mean over the
targets (and seeds) of a dataset, then the unweighted mean over datasets; MRI vs CT and pathology
vs organ sub-averages are unweighted means over the datasets of that group (for a target type:
per dataset, mean over its targets of that type). NaN scores (both masks empty) are left out of
every mean. A mean over datasets is only given (else NaN, shown ``"–"``) when the entry has results
in *every* dataset of that group present in the input, so that entries are never compared over
different dataset subsets. Dice and NSD tables hold percentages (×100) at full precision; rounding
to one decimal happens only when formatting (:func:`format_table`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from radioactive.metrics.aggregate import modality_group, summary
from radioactive.report.propagation import propagation_table
from radioactive.report.stability import stability_tables
from radioactive.report.timing import time_table
from radioactive.report.view import ENTRY, ResultsView, as_view, dataset_order

__all__ = [
    "ENTRY",
    "MEAN_COLUMN",
    "MISSING",
    "TABLES_VERSION",
    "build_tables",
    "dataset_order",
    "errors",
    "final_steps",
    "format_table",
    "load_steps",
    "ok_steps",
    "require_units",
    "to_latex",
    "to_markdown",
    "write_tables",
]

TABLES_VERSION = "1.1"
"""Version of the table definitions (what each cell aggregates)."""

MEAN_COLUMN = "mean (datasets)"
MISSING = "–"
"""Shown for a missing value (NaN) and for an entry without a simulated user."""

_METRIC_LABELS = {"dice": "Dice", "nsd": "NSD"}
_MODALITY_ORDER = ("MRI", "CT")
_TYPE_ORDER = ("pathology", "organ")


# -- inputs ------------------------------------------------------------------------------------


def load_steps(results_dir: str | Path) -> pd.DataFrame:
    """All step rows of a results directory (read-only; the file lock is released on return)."""
    from radioactive.runner.store import ResultStore

    with ResultStore(results_dir, read_only=True) as store:
        return store.steps()


def ok_steps(steps: pd.DataFrame | ResultsView) -> pd.DataFrame:
    """Every step row of the scored units (normalised copy, see :mod:`radioactive.report.view`)."""
    return as_view(steps).scored.reset_index(drop=True)


def final_steps(steps: pd.DataFrame | ResultsView) -> pd.DataFrame:
    """The last step (highest ``step``) of every scored unit (:attr:`ResultsView.finals`).

    Columns are those of ``steps`` (plus ``case`` if only ``case_id`` was given; ``user`` as text,
    ``""`` when none). Rows are sorted by unit identity. Error units are in :func:`errors`.
    """
    return as_view(steps).finals


def require_units(final: pd.DataFrame) -> pd.DataFrame:
    """``final`` unchanged, or ``ValueError`` when it has no rows (nothing to aggregate)."""
    if final.empty:
        raise ValueError(
            "the steps table has no unit without an error: nothing to aggregate (see errors())"
        )
    return final


def errors(steps: pd.DataFrame | ResultsView) -> pd.DataFrame:
    """One row per error unit: ``unit_id``, the unit identity columns and ``error``."""
    return as_view(steps).errors


# -- aggregation -------------------------------------------------------------------------------


def _long(final: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The aggregate module's long layout: ``value`` and ``target_type`` (from ``category``)."""
    columns = [*ENTRY, "dataset", "case", "target"]
    if "modality" in final.columns:
        columns.append("modality")
    out = final[columns].copy()
    out["value"] = final[metric].to_numpy(dtype=np.float64)
    if "category" in final.columns:
        out["target_type"] = final["category"].astype(str)
    return out


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(user=frame["user"].replace("", MISSING))


def _entry_index(frame: pd.DataFrame) -> pd.MultiIndex:
    """Sorted (model, prompter, user) index with no user shown as :data:`MISSING`."""
    keys = frame[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY), kind="stable")
    return pd.MultiIndex.from_frame(_shown(keys).reset_index(drop=True))


def _by_entry(frame: pd.DataFrame, columns: str, values: str) -> pd.DataFrame:
    table = _shown(frame).set_index([*ENTRY, columns])[values].unstack(columns)
    table.columns.name = None
    return table


def _complete(
    sub: pd.DataFrame, group_column: str | None, expected: dict[str, int] | int
) -> pd.DataFrame:
    """NaN the mean of rows whose entry lacks a dataset of the group (``n`` < expected)."""
    need = (
        sub[group_column].map(expected)
        if group_column is not None and isinstance(expected, dict)
        else expected
    )
    return sub.assign(mean=sub["mean"].where(sub["n"] >= need))


def _metric_tables(view: ResultsView, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-dataset table with the mean over datasets, sub-average table) for one metric, ×100."""
    final = view.finals
    long = _long(final, metric)
    rows = summary(long, by=list(ENTRY))
    index = _entry_index(final)

    per_dataset = rows[rows["group"] == "dataset"]
    table = _by_entry(per_dataset, "name", "mean").reindex(index=index, columns=view.datasets)
    overall = view.entry_stats(metric).assign(name="all")
    table[MEAN_COLUMN] = _by_entry(overall, "name", "mean").reindex(index=index)["all"]

    label = _METRIC_LABELS.get(metric, metric)
    groups = pd.DataFrame(index=index)
    if "modality" in long.columns:
        modality = long[["dataset"]].assign(g=long["modality"].map(modality_group))
        expected = modality.drop_duplicates()["g"].value_counts().to_dict()
        sub = _complete(rows[rows["group"] == "modality"], "name", expected)
        wide = _by_entry(sub, "name", "mean").reindex(index=index)
        for name in _ordered(wide.columns, _MODALITY_ORDER):
            groups[f"{label} {name}"] = wide[name]
    if "target_type" in long.columns:
        typed = long[["dataset", "target_type"]].drop_duplicates()
        expected = typed["target_type"].value_counts().to_dict()
        sub = _complete(rows[rows["group"] == "target_type"], "name", expected)
        wide = _by_entry(sub, "name", "mean").reindex(index=index)
        for name in _ordered(wide.columns, _TYPE_ORDER):
            groups[f"{label} {name}"] = wide[name]
    return table * 100.0, groups * 100.0


def _ordered(names: Iterable[object], first: Sequence[str]) -> list[str]:
    present = [str(n) for n in names]
    return [n for n in first if n in present] + sorted(n for n in present if n not in first)


_EFFORT_COLUMNS = {
    "dof": "DoF",
    "seconds": "seconds",
    "n_targets": "n targets",
    "n_units": "n units",
    "n_errors": "n errors",
    "n_skipped": "n skipped",
}


def _effort(view: ResultsView) -> pd.DataFrame:
    effort = _shown(view.effort()).set_index(list(ENTRY))
    return effort.rename(columns=_EFFORT_COLUMNS)[list(_EFFORT_COLUMNS.values())]


def _refinement(view: ResultsView, metric: str = "dice") -> pd.DataFrame:
    curves = view.refinement(metric)
    if curves.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []], names=list(ENTRY)))
    table = _by_entry(curves, "step", "mean").reindex(index=_entry_index(curves))
    return table.reindex(columns=sorted(int(s) for s in curves["step"].unique())) * 100.0


def _skipped(view: ResultsView) -> pd.DataFrame:
    """One row per (entry, reason) of the skipped units: the datasets and the unit count."""
    keys = [*ENTRY, "reason"]
    skipped = _shown(view.skipped.assign(reason=view.skipped["reason"].fillna("")))
    if skipped.empty:
        index = pd.MultiIndex.from_arrays([[]] * len(keys), names=keys)
        return pd.DataFrame({"datasets": pd.Series(dtype=object),
                             "n units": pd.Series(dtype=int)}, index=index)  # fmt: skip
    order = {d: i for i, d in enumerate(dataset_order(skipped))}
    grouped = skipped.groupby(keys, sort=True)
    return pd.DataFrame(
        {
            "datasets": grouped["dataset"].agg(
                lambda d: ", ".join(sorted(set(map(str, d)), key=lambda x: order.get(x, 0)))
            ),
            "n units": grouped.size().astype(int),
        }
    )


def build_tables(steps: pd.DataFrame | ResultsView) -> dict[str, pd.DataFrame]:
    """The report tables, each indexed by entry (model, prompter, user; no user → ``"–"``).

    * ``dice``, ``nsd``: one column per dataset (mean over its targets and seeds at the final
      step) and ``"mean (datasets)"`` (the view's dataset-weighted mean), in percent;
    * ``groups``: ``"Dice MRI"``, ``"Dice CT"``, ``"Dice pathology"``, ``"Dice organ"`` and the
      same for NSD (those present in the input; a dataset that does not state its modality or
      category is grouped as ``"unknown"``), in percent;
    * ``effort``: ``DoF`` and ``seconds`` (means over the entry's scored units of ``cum_dof``
      and ``cum_seconds`` at the final step), ``n targets`` (distinct dataset/case/target),
      ``n units`` (scored units: targets × seeds), ``n errors``, ``n skipped``;
    * ``refinement``: entries with a simulated user only; mean Dice per step (columns ``0…N``),
      aggregated like ``dice``'s ``"mean (datasets)"``, in percent — the data of the
      refinement figure;
    * ``skipped``: indexed by entry and reason: the datasets and the number of skipped units (a
      model × prompter pair that cannot run, an empty or undeclared target);
    * ``time``: what the user has after so many seconds of time to result (human seconds + the
      model's time): Dice and NSD at 30, 60 and 120 s, the Dice AUC over 120 s, seconds and
      degrees of freedom to Dice 0.8 and 0.9 and the share of units that never reach it
      (:mod:`radioactive.report.timing`);
    * ``stability``, ``stability_pairs``, ``stability_tau``: how sure the ranking of models by
      the Dice AUC over 120 s is, within each protocol, when cases, the effort model and the
      user's noise are redrawn (:func:`radioactive.report.stability.stability_tables`; indexed
      by protocol, and model for ``stability``);
    * ``propagation`` (only when the run has units whose prediction was propagated): per entry,
      over-propagation and Dice at distance bins from the prompted slices
      (:func:`radioactive.report.propagation.propagation_table`).

    Missing combinations are NaN. Rows are sorted by entry; datasets by :func:`dataset_order`.
    ``steps`` is a steps DataFrame or a :class:`~radioactive.report.view.ResultsView`.
    """
    view = as_view(steps)
    require_units(view.finals)
    dice, dice_groups = _metric_tables(view, "dice")
    nsd, nsd_groups = _metric_tables(view, "nsd")
    groups = pd.concat([dice_groups, nsd_groups], axis=1)
    propagation = propagation_table(view)
    return {
        "dice": dice,
        "nsd": nsd,
        "groups": groups,
        "effort": _effort(view),
        "refinement": _refinement(view),
        "skipped": _skipped(view),
        "time": _shown(time_table(view)).set_index(list(ENTRY)),
        **stability_tables(view),
        **({"propagation": propagation} if len(propagation) else {}),
    }


# -- output ------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{float(value):.1f}"
        return "0.0" if text == "-0.0" else text
    if value is pd.NA:
        return MISSING
    return str(value)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every cell (index levels become columns) as display text: floats with one decimal,
    integers as they are, NaN as ``"–"``."""
    flat = table.reset_index()
    flat.columns = [str(c) for c in flat.columns]
    return pd.DataFrame(
        {c: [_cell(v) for v in flat[c].tolist()] for c in flat.columns}, dtype=object
    )


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub pipe table; text columns left-aligned, numeric columns right-aligned."""
    text = format_table(table)
    numeric = _numeric_columns(table)
    rows = [[c.replace("|", "\\|") for c in text.columns]]
    rows += [[v.replace("|", "\\|") for v in row] for row in text.itertuples(index=False)]
    align = ["---:" if c in numeric else ":---" for c in text.columns]
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    MISSING: "--",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``tabular`` (wrapped in a ``table`` float when a caption or label is given);
    LaTeX special characters escaped, ``"–"`` written as ``--``."""
    text = format_table(table)
    numeric = _numeric_columns(table)
    spec = "".join("r" if c in numeric else "l" for c in text.columns)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    lines.append(" & ".join(_latex_escape(c) for c in text.columns) + " \\\\")
    lines.append("\\midrule")
    for row in text.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(v) for v in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines) + "\n"
    wrapped = ["\\begin{table}", "\\centering"]
    if caption is not None:
        wrapped.append(f"\\caption{{{_latex_escape(caption)}}}")
    if label is not None:
        wrapped.append(f"\\label{{{label}}}")
    return "\n".join([*wrapped, *lines, "\\end{table}"]) + "\n"


def _numeric_columns(table: pd.DataFrame) -> set[str]:
    flat = table.reset_index()
    return {str(c) for c in flat.columns if pd.api.types.is_numeric_dtype(flat[c])}


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write each table as ``NAME.md``, ``NAME.csv`` (full precision, empty cell for NaN) and
    ``NAME.tex``; returns the paths in the order written (tables by name, then md, csv, tex).

    Output is deterministic: same tables, same bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name in sorted(tables):
        table = tables[name]
        md = out / f"{name}.md"
        md.write_text(to_markdown(table), encoding="utf-8")
        csv = out / f"{name}.csv"
        flat = table.reset_index()
        flat.columns = [str(c) for c in flat.columns]
        flat.to_csv(csv, index=False, lineterminator="\n", float_format="%.17g")
        tex = out / f"{name}.tex"
        tex.write_text(to_latex(table), encoding="utf-8")
        paths += [md, csv, tex]
    return paths
