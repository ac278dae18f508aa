"""Result tables of the paper from the per-step results table, as pure functions.

Input: the DataFrame of :meth:`radioactive.runner.store.ResultStore.steps` (one row per step;
:func:`load_steps` reads it from a results directory). Nothing here touches the store otherwise.

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

from radioactive.metrics.aggregate import dataset_means, modality_group, overall_means, summary

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

TABLES_VERSION = "1.0"
"""Version of the table definitions (what each cell aggregates)."""

ENTRY = ("model", "prompter", "user")
"""Columns that identify an entry of the tables and the leaderboard."""

UNIT = ("dataset", "case", "target", "model", "prompter", "user", "seed")
"""Columns that identify a work unit when the input has no ``unit_id``."""

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


def _normalise(steps: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``case`` (from ``case_id`` if needed) and ``user`` as text ("" for none)."""
    df = steps.copy()
    if "case" not in df.columns and "case_id" in df.columns:
        df["case"] = df["case_id"]
    missing = [c for c in (*UNIT, "step", "status") if c not in df.columns]
    if missing:
        raise ValueError(f"the steps table lacks column(s) {missing}; it has {list(df.columns)}")
    df["user"] = df["user"].astype(object).where(df["user"].notna(), "").astype(str)
    return df


def _unit_keys(df: pd.DataFrame) -> list[str]:
    return ["unit_id"] if "unit_id" in df.columns else list(UNIT)


def _error_mask(df: pd.DataFrame) -> pd.Series:
    """True for every row of a unit that has at least one ``error`` row."""
    keys = _unit_keys(df)
    is_error = (df["status"] == "error").astype(int)
    return is_error.groupby([df[k] for k in keys], dropna=False).transform("max").astype(bool)


def ok_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """Every step row of the units without an error (normalised copy)."""
    df = _normalise(steps)
    return df[~_error_mask(df)].reset_index(drop=True)


def final_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The last step (highest ``step``) of every unit without an ``error`` row.

    Columns are those of ``steps`` (plus ``case`` if only ``case_id`` was given; ``user`` as text,
    ``""`` when none). Rows are sorted by unit identity. Error units are in :func:`errors`.
    """
    df = ok_steps(steps)
    keys = _unit_keys(df)
    last = df.sort_values([*keys, "step"], kind="stable").drop_duplicates(keys, keep="last")
    return last.sort_values(list(UNIT), kind="stable").reset_index(drop=True)


def require_units(final: pd.DataFrame) -> pd.DataFrame:
    """``final`` unchanged, or ``ValueError`` when it has no rows (nothing to aggregate)."""
    if final.empty:
        raise ValueError(
            "the steps table has no unit without an error: nothing to aggregate (see errors())"
        )
    return final


def errors(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per error unit: the unit identity columns and ``error`` (the message)."""
    df = _normalise(steps)
    bad = df[_error_mask(df)]
    if "error" not in bad.columns:
        bad = bad.assign(error=None)
    bad = bad[bad["status"] == "error"]
    keys = _unit_keys(df)
    bad = bad.sort_values([*keys, "step"], kind="stable").drop_duplicates(keys, keep="first")
    columns = [*(["unit_id"] if "unit_id" in df.columns else []), *UNIT, "error"]
    return bad.sort_values(list(UNIT), kind="stable")[columns].reset_index(drop=True)


def dataset_order(steps: pd.DataFrame) -> list[str]:
    """Datasets in table order: MRI first, then CT, then others; by name within each group."""
    if "modality" not in steps.columns:
        return sorted(steps["dataset"].dropna().unique())
    pairs = steps[["dataset", "modality"]].drop_duplicates()
    rank = {group: i for i, group in enumerate(_MODALITY_ORDER)}
    keyed = {
        str(d): (rank.get(modality_group(m), len(rank)), str(d))
        for d, m in pairs.itertuples(index=False)
    }
    return sorted(keyed, key=lambda d: keyed[d])


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


def _entry_index(frame: pd.DataFrame) -> pd.MultiIndex:
    """Sorted (model, prompter, user) index with no user shown as :data:`MISSING`."""
    keys = frame[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY), kind="stable")
    keys = keys.assign(user=keys["user"].replace("", MISSING))
    return pd.MultiIndex.from_frame(keys.reset_index(drop=True))


def _by_entry(frame: pd.DataFrame, columns: str, values: str) -> pd.DataFrame:
    shown = frame.assign(user=frame["user"].replace("", MISSING))
    table = shown.set_index([*ENTRY, columns])[values].unstack(columns)
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


def _metric_tables(final: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-dataset table with the mean over datasets, sub-average table) for one metric, ×100."""
    long = _long(final, metric)
    rows = summary(long, by=list(ENTRY))
    index = _entry_index(final)
    datasets = dataset_order(final)

    per_dataset = rows[rows["group"] == "dataset"]
    table = _by_entry(per_dataset, "name", "mean").reindex(index=index, columns=datasets)
    overall = _complete(rows[rows["group"] == "all"], None, len(datasets))
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


def _effort(final: pd.DataFrame, errs: pd.DataFrame) -> pd.DataFrame:
    index = _entry_index(final)
    shown = final.assign(user=final["user"].replace("", MISSING))
    grouped = shown.groupby(list(ENTRY), sort=True)
    out = pd.DataFrame(index=index)
    out["DoF"] = grouped["cum_dof"].mean().astype(float).reindex(index)
    out["seconds"] = grouped["cum_seconds"].mean().astype(float).reindex(index)
    targets = shown.drop_duplicates([*ENTRY, "dataset", "case", "target"])
    out["n targets"] = targets.groupby(list(ENTRY)).size().reindex(index).astype(int)
    out["n units"] = grouped.size().reindex(index).astype(int)
    err = errs.assign(user=errs["user"].replace("", MISSING)).groupby(list(ENTRY)).size()
    out["n errors"] = err.reindex(index).fillna(0).astype(int)
    return out


def _refinement(steps: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    ok = ok_steps(steps)
    ok = ok[ok["user"] != ""]
    if ok.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []], names=list(ENTRY)))
    long = _long(ok, metric).assign(step=ok["step"].astype(int).to_numpy())
    by = [*ENTRY, "step"]
    per_dataset = dataset_means(long, by=by)
    overall = _complete(overall_means(per_dataset, by=by), None, len(dataset_order(ok)))
    table = _by_entry(overall, "step", "mean").reindex(index=_entry_index(ok))
    return table.reindex(columns=sorted(int(s) for s in overall["step"].unique())) * 100.0


def build_tables(steps: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The report tables, each indexed by entry (model, prompter, user; no user → ``"–"``).

    * ``dice``, ``nsd``: one column per dataset (mean over its targets and seeds at the final
      step) and ``"mean (datasets)"`` (unweighted mean over datasets), in percent;
    * ``groups``: ``"Dice MRI"``, ``"Dice CT"``, ``"Dice pathology"``, ``"Dice organ"`` and the
      same for NSD (those present in the input), in percent;
    * ``effort``: ``DoF`` and ``seconds`` (means over the entry's ok units of ``cum_dof`` and
      ``cum_seconds`` at the final step, as :meth:`ResultStore.summary`), ``n targets``
      (distinct dataset/case/target), ``n units`` (ok units: targets × seeds), ``n errors``;
    * ``refinement``: entries with a simulated user only; mean Dice per step (columns ``0…N``),
      aggregated like ``dice``'s ``"mean (datasets)"``, in percent.

    Missing combinations are NaN. Rows are sorted by entry; datasets by :func:`dataset_order`.
    """
    final = require_units(final_steps(steps))
    dice, dice_groups = _metric_tables(final, "dice")
    nsd, nsd_groups = _metric_tables(final, "nsd")
    groups = pd.concat([dice_groups, nsd_groups], axis=1)
    return {
        "dice": dice,
        "nsd": nsd,
        "groups": groups,
        "effort": _effort(final, errors(steps)),
        "refinement": _refinement(steps),
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
