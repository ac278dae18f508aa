"""Aggregations of PROTOCOL §6 as pure functions over pandas DataFrames.

Input: a *long* table with one row per scored target (and per step, model, … — any extra columns
can be grouped on with ``by``) and at least the columns ``dataset``, ``case``, ``target`` and the
value column (default ``value``); ``modality`` (e.g. ``"MRI"``, ``"MRI T2"``, ``"CT"``) and
``target_type`` (e.g. ``"organ"``, ``"pathology"``) for the sub-averages.

* :func:`dataset_means` — mean over targets within each dataset (``level="case"``: mean over each
  case's targets first, then over cases — the lesion-wise mean of instance datasets);
* :func:`overall_means` — unweighted mean over datasets of the dataset means;
* :func:`summary` — per-dataset rows, the overall row, MRI vs CT and per-target-type
  (pathology vs organ) sub-averages in one table.

NaN values (undefined pairs, e.g. both masks empty) are excluded from every mean and counted in
``n_nan``; ``inf`` values (e.g. HD95 with an empty prediction) are kept, so the mean is ``inf``,
and counted in ``n_inf``. Means stay in the metric's own unit; ×100 is display only
(:func:`format_percent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

AGGREGATE_VERSION = "1.0"
"""Version of the aggregation rules (grouping, NaN/inf handling, sub-averages)."""

_STAT_COLUMNS = ["mean", "n", "n_nan", "n_inf"]


def _require(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing}; it has {list(df.columns)}")


def _stats(values: pd.Series) -> pd.Series:
    array = values.to_numpy(dtype=np.float64)
    nan = np.isnan(array)
    kept = array[~nan]
    return pd.Series(
        {
            "mean": float(kept.mean()) if kept.size else math.nan,
            "n": int(array.size),
            "n_nan": int(nan.sum()),
            "n_inf": int(np.isinf(kept).sum()),
        }
    )


def _grouped_stats(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=[*keys, *_STAT_COLUMNS])
    rows = []
    for key, group in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        stats = _stats(group[value])
        rows.append({**dict(zip(keys, key, strict=True)), **stats.to_dict()})
    out = pd.DataFrame(rows, columns=[*keys, *_STAT_COLUMNS])
    return out.astype({"n": int, "n_nan": int, "n_inf": int})


def case_means(df: pd.DataFrame, *, value: str = "value", by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean over each case's targets (NaN excluded): one row per (``by``, dataset, case).

    Columns: ``by``…, ``dataset``, ``case``, ``value`` (the case mean), ``n``, ``n_nan``,
    ``n_inf``, and ``modality`` when the input has it. Feeding the result to
    :func:`dataset_means` gives the mean over cases of the case means.
    """
    keys = [*by, "dataset", "case"]
    _require(df, [*keys, value])
    out = _grouped_stats(df, keys, value).rename(columns={"mean": value})
    if "modality" in df.columns:
        out = out.merge(_dataset_modality(df), on="dataset", how="left")
    return out


def dataset_means(
    df: pd.DataFrame,
    *,
    value: str = "value",
    by: Sequence[str] = (),
    level: str = "target",
) -> pd.DataFrame:
    """Mean of ``value`` within each dataset (and ``by`` group), NaN excluded and counted.

    Args:
        df: long table, one row per target (see the module docstring).
        value: column to average.
        by: extra grouping columns (e.g. ``("model", "prompter", "step")``).
        level: ``"target"`` — mean over all targets of the dataset; ``"case"`` — mean over each
            case's targets first, then over cases (lesion-wise mean of instance datasets; a case
            whose targets are all NaN counts as one NaN).

    Returns:
        One row per (``by``…, ``dataset``): ``mean``, ``n`` (targets or cases), ``n_nan``,
        ``n_inf`` and ``modality`` when the input has that column.
    """
    if level not in ("target", "case"):
        raise ValueError(f"level must be 'target' or 'case', got {level!r}")
    keys = [*by, "dataset"]
    _require(df, [*keys, value])
    source = df if level == "target" else case_means(df, value=value, by=by)
    out = _grouped_stats(source, keys, value)
    if "modality" in df.columns:
        out = out.merge(_dataset_modality(df), on="dataset", how="left")
    return out


def overall_means(per_dataset: pd.DataFrame, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """Unweighted mean over datasets of the dataset means (output of :func:`dataset_means`).

    A dataset whose mean is NaN is excluded and counted in ``n_nan``. Columns: ``by``…,
    ``mean``, ``n`` (datasets), ``n_nan``, ``n_inf``.
    """
    _require(per_dataset, [*by, "mean"])
    if not by:
        stats = _stats(per_dataset["mean"])
        return pd.DataFrame([stats.to_dict()], columns=_STAT_COLUMNS).astype(
            {"n": int, "n_nan": int, "n_inf": int}
        )
    return _grouped_stats(per_dataset, list(by), "mean")


def modality_group(modality: str) -> str:
    """``"MRI"`` for MR modalities (``"MR"``, ``"MRI T2"``…), ``"CT"`` for CT, else unchanged."""
    text = str(modality).strip()
    upper = text.upper()
    if upper.startswith("MR"):
        return "MRI"
    if upper.startswith("CT"):
        return "CT"
    return text


def _dataset_modality(df: pd.DataFrame) -> pd.DataFrame:
    groups = df[["dataset", "modality"]].drop_duplicates()
    groups = groups.assign(modality=groups["modality"].map(modality_group)).drop_duplicates()
    clash = groups[groups["dataset"].duplicated(keep=False)]
    if not clash.empty:
        raise ValueError(
            "each dataset must have one modality; conflicting rows: "
            + ", ".join(f"{d}={m}" for d, m in clash.itertuples(index=False))
        )
    return groups


def summary(
    df: pd.DataFrame,
    *,
    value: str = "value",
    by: Sequence[str] = (),
    level: str = "target",
) -> pd.DataFrame:
    """Per-dataset means plus the overall and sub-averages of PROTOCOL §6, in one long table.

    Rows (column ``group`` / ``name``): ``dataset`` / each dataset; ``all`` / ``all`` (unweighted
    mean over datasets); ``modality`` / ``MRI``, ``CT``… (unweighted mean over the datasets of
    that modality, when the input has ``modality``); ``target_type`` / ``organ``,
    ``pathology``… (per dataset, mean over its targets of that type, then unweighted over those
    datasets, when the input has ``target_type``). Other columns: ``by``…, ``mean``, ``n``
    (targets for dataset rows, datasets otherwise), ``n_nan``, ``n_inf``.
    """
    per_dataset = dataset_means(df, value=value, by=by, level=level)
    frames = [per_dataset.assign(group="dataset", name=per_dataset["dataset"])]
    overall = overall_means(per_dataset, by=by)
    frames.append(overall.assign(group="all", name="all"))
    if "modality" in per_dataset.columns:
        sub = overall_means(per_dataset, by=[*by, "modality"])
        frames.append(sub.assign(group="modality", name=sub["modality"]))
    if "target_type" in df.columns:
        typed = dataset_means(df, value=value, by=[*by, "target_type"], level=level)
        sub = overall_means(typed, by=[*by, "target_type"])
        frames.append(sub.assign(group="target_type", name=sub["target_type"]))
    columns = [*by, "group", "name", *_STAT_COLUMNS]
    out = pd.concat([f[columns] for f in frames], ignore_index=True)
    return out.astype({"n": int, "n_nan": int, "n_inf": int})


def format_percent(value: float, digits: int = 1) -> str:
    """Display a [0, 1] score ×100 with ``digits`` decimals (``"n/a"`` for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{100.0 * float(value):.{digits}f}"
