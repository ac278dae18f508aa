"""Leaderboard with bootstrap confidence intervals, and paired comparisons of entries.

Pure functions over a :class:`~radioactive.report.view.ResultsView` (or the per-step results
table, :meth:`ResultStore.steps`, of which the view is made); the final step of every scored unit
is scored (:attr:`ResultsView.finals`). An *entry* is model × prompter × user (no user is shown
as ``"–"``).

Statistics (PROTOCOL §6, with cases as the unit of resampling):

* a **case's value** is the mean of ``metric`` over its targets and seeds (NaN — both masks
  empty — left out; a case with only NaN values has no value);
* a **dataset mean** is the mean over its cases of the case values (the lesion-wise mean of
  instance datasets; it differs from the tables' mean over targets when cases have different
  numbers of targets);
* the **overall mean** is the unweighted mean over datasets of the dataset means, given only for
  entries with results in every dataset of the input (NaN otherwise, ranked last).

Confidence intervals are percentile bootstrap intervals over the view's shared draws
(:mod:`radioactive.report.bootstrap`): ``n_boot`` times, the cases of every dataset are
resampled with replacement, independently per dataset, and the statistic recomputed (the overall
one from the resampled dataset means). All entries (and all pairs, and the report's other
intervals) share the same resamples — which is what makes the paired comparison paired — and the
work is a few matrix products. The same input and seed give the same numbers, bit for bit, in
:func:`leaderboard` and :func:`paired_comparisons` alike. A single
case gives no interval: ``ci_low``/``ci_high`` are NaN (and ``distinguishable`` false) for a
dataset row with fewer than two cases, and for an overall row whose datasets all have fewer than
two. Values stay in the metric's unit (Dice in [0, 1]; ×100 is display only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from radioactive.metrics.aggregate import case_means, dataset_means, overall_means
from radioactive.metrics.meta import higher_is_better as metric_higher_is_better
from radioactive.report.bootstrap import Draws, nanmean, percentile_interval, ratio_means
from radioactive.report.overlap import entry_overlap, overlap_table
from radioactive.report.stability import is_time_metric, rank_intervals, resample_scores
from radioactive.report.tables import MISSING, require_units
from radioactive.report.view import ENTRY, ResultsView, as_view

__all__ = ["LEADERBOARD_VERSION", "leaderboard", "paired_comparisons"]

LEADERBOARD_VERSION = "1.2"
"""Version of the leaderboard statistics (case means, resampling scheme, interval type)."""

_Array = npt.NDArray[np.float64]


def _check(n_boot: int, ci: float, level: str) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if level not in ("dataset", "overall"):
        raise ValueError(f"level must be 'dataset' or 'overall', got {level!r}")


def _final_long(view: ResultsView, metric: str) -> pd.DataFrame:
    final = require_units(view.finals)
    if metric not in final.columns and is_time_metric(metric):
        from radioactive.report.timing import unit_times

        times = unit_times(view)
        if metric not in times.columns:
            scored = [c for c in times.columns if c.startswith(("dice_at", "nsd_at", "auc_time"))]
            raise ValueError(f"no time metric {metric!r}: the report scores {', '.join(scored)}")
        final = final.merge(times[["unit_id", metric]], on="unit_id", how="left")
    if metric not in final.columns:
        raise ValueError(f"the steps table has no column {metric!r}")
    columns = [*ENTRY, "dataset", "case", "target", "seed"]
    if "modality" in final.columns:
        columns.append("modality")
    out = final[columns].copy()
    out["user"] = out["user"].replace("", MISSING)
    out["value"] = pd.to_numeric(final[metric], errors="coerce").to_numpy(dtype=np.float64)
    return out


def _entries(long: pd.DataFrame) -> pd.DataFrame:
    keys = long[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY), kind="stable")
    return keys.reset_index(drop=True)


def _resampled_means(counts: _Array, values: _Array) -> _Array:
    """Means of ``values`` (n_cases, k; NaN = no value) under each resample: (n_boot, k)."""
    valid = ~np.isnan(values)
    return ratio_means(counts, np.where(valid, values, 0.0), valid.astype(np.float64))


@dataclass(frozen=True)
class _Cases:
    """Case values of one dataset: ``values`` (n_cases, n_entries), NaN where none."""

    cases: list[str]
    values: _Array
    present: npt.NDArray[np.bool_]  # (n_entries,) entry has final rows in this dataset
    n_units: npt.NDArray[np.int64]  # (n_entries,)


def _case_tables(
    long: pd.DataFrame, entries: pd.DataFrame, draws: Draws
) -> tuple[pd.DataFrame, dict[str, _Cases]]:
    per_case = case_means(long, by=list(ENTRY))
    per_case["case"] = per_case["case"].astype(str)
    index = pd.MultiIndex.from_frame(entries)
    tables: dict[str, _Cases] = {}
    for dataset, cases in draws.cases.items():
        rows = per_case[per_case["dataset"] == dataset]
        wide = rows.set_index(["case", *ENTRY])["value"].unstack(list(ENTRY))
        wide = wide.reindex(index=list(cases), columns=index)
        units = rows.groupby(list(ENTRY))["n"].sum().reindex(index).fillna(0)
        tables[dataset] = _Cases(
            cases=[str(c) for c in wide.index],
            values=wide.to_numpy(dtype=np.float64),
            present=units.to_numpy() > 0,
            n_units=units.to_numpy(dtype=np.int64),
        )
    return per_case, tables


def _rank(frame: pd.DataFrame, by: list[str], higher_is_better: bool) -> pd.Series:
    grouped = frame.groupby(by, sort=False)["mean"] if by else frame["mean"]
    ranks = grouped.rank(method="min", ascending=not higher_is_better, na_option="keep")
    return ranks.astype("Int64")


def leaderboard(
    steps: pd.DataFrame | ResultsView,
    metric: str = "dice",
    n_boot: int = 1000,
    seed: int = 0,
    level: str = "overall",
    *,
    ci: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Entries ranked by the mean of ``metric`` at the final step, with bootstrap intervals.

    Args:
        steps: a :class:`ResultsView` or the per-step results table (:meth:`ResultStore.steps`).
        metric: a score column (``dice``, ``nsd``, ``hd95_mm``…) or a time metric of the
            report (``auc_time_120s``, ``dice_at_60s``…: :mod:`radioactive.report.timing`),
            whose rank intervals then also redraw the effort model's constants.
        n_boot: bootstrap resamples (the view's shared draws for these ``n_boot`` and ``seed``).
        seed: seed of ``numpy.random.default_rng``; same input and seed, same result.
        level: ``"overall"`` — one row per entry, the unweighted mean over datasets;
            ``"dataset"`` — one row per (dataset, entry), ranked within each dataset.
        ci: coverage of the percentile interval (0.95: the 2.5th and 97.5th percentiles).
        higher_is_better: rank direction; by default descending except for
            the metrics that :mod:`radioactive.metrics.meta` marks lower-is-better.

    Returns:
        Columns ``[dataset,] rank, model, prompter, user, mean, ci_low, ci_high, n_cases,
        n_units`` (and, for ``"overall"``, ``n_datasets`` and the rank's stability:
        ``rank_low``/``rank_high``, the ``ci`` interval of the entry's rank when cases and the
        user's noise (one seed per target) are redrawn, and ``rank_stable``, true when that
        interval is the rank alone: :mod:`radioactive.report.stability`); sorted by (dataset,)
        rank, then entry.
        ``rank`` is 1 for the best (ties share the lowest rank; NaN means get no rank and come
        last). ``overlap`` says whether the model's weights saw the dataset's images
        (:mod:`radioactive.report.overlap`: ``known``, ``possible``, ``unknown`` or ``none``; for
        ``"overall"`` the most serious over the datasets); it changes no number.
        ``n_cases`` counts cases with a value, ``n_units`` scored units (targets × seeds).
        See the module docstring for how cases, datasets and intervals are computed.
    """
    _check(n_boot, ci, level)
    higher = metric_higher_is_better(metric) if higher_is_better is None else higher_is_better
    view = as_view(steps)
    long = _final_long(view, metric)
    entries = _entries(long)
    draws = view.draws(n_boot, seed)
    per_case, tables = _case_tables(long, entries, draws)
    datasets = list(tables)
    boot = {d: _resampled_means(draws.counts[d], t.values) for d, t in tables.items()}

    per_dataset = dataset_means(per_case, by=list(ENTRY))  # mean over cases of case values
    index = pd.MultiIndex.from_frame(entries)

    if level == "dataset":
        frames = []
        for dataset, table in tables.items():
            cases_with_value = (~np.isnan(table.values)).sum(axis=0)
            low, high = percentile_interval(boot[dataset], ci, cases_with_value >= 2)
            means = per_dataset[per_dataset["dataset"] == dataset].set_index(list(ENTRY))
            frame = entries.assign(
                dataset=dataset,
                mean=means["mean"].reindex(index).to_numpy(dtype=np.float64),
                ci_low=low,
                ci_high=high,
                n_cases=cases_with_value,
                n_units=table.n_units,
            )[table.present]
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        out["rank"] = _rank(out, ["dataset"], higher)
        order = {d: i for i, d in enumerate(datasets)}
        out = out.assign(_d=out["dataset"].map(order))
        out = out.sort_values(["_d", "rank", *ENTRY], na_position="last", kind="stable").drop(
            columns="_d"
        )
        table = overlap_table(view)
        status = table.set_index(["model", "dataset"])["overlap"]
        keys = pd.MultiIndex.from_arrays([out["model"].astype(str), out["dataset"].astype(str)])
        out["overlap"] = status.reindex(keys).fillna("unknown").to_numpy()
        columns = ["dataset", "rank", *ENTRY, "mean", "ci_low", "ci_high", "n_cases", "n_units",
                   "overlap"]  # fmt: skip
        return out[columns].reset_index(drop=True)

    present = np.stack([tables[d].present for d in datasets])  # (n_datasets, n_entries)
    complete = present.all(axis=0)
    overall = overall_means(per_dataset, by=list(ENTRY)).set_index(list(ENTRY))
    means = overall["mean"].reindex(index).to_numpy(dtype=np.float64)
    boot_overall = nanmean(np.stack([boot[d] for d in datasets]), axis=0)
    cases_with_value = np.stack([(~np.isnan(tables[d].values)).sum(axis=0) for d in datasets])
    low, high = percentile_interval(
        boot_overall, ci, np.asarray((cases_with_value >= 2).any(axis=0))
    )
    out = entries.assign(
        mean=np.where(complete, means, np.nan),
        ci_low=np.where(complete, low, np.nan),
        ci_high=np.where(complete, high, np.nan),
        n_datasets=present.sum(axis=0),
        n_cases=cases_with_value.sum(axis=0),
        n_units=np.sum([tables[d].n_units for d in datasets], axis=0),
    )
    out["rank"] = _rank(out, [], higher)
    scores = resample_scores(view, metric, n_boot=n_boot, seed=seed, weighting="cases",
                             higher_is_better=higher)  # fmt: skip
    ranks = rank_intervals(scores, by=(), ci=ci)
    ranks["user"] = ranks["user"].replace("", MISSING)
    out = out.merge(ranks[[*ENTRY, "rank_low", "rank_high", "stable"]], on=list(ENTRY), how="left")
    out = out.rename(columns={"stable": "rank_stable"})
    out["rank_stable"] = out["rank_stable"].fillna(False).astype(bool)
    out = out.sort_values(["rank", *ENTRY], na_position="last", kind="stable")
    table = overlap_table(view)
    out["overlap"] = [entry_overlap(table, str(m), datasets) for m in out["model"]]
    columns = [
        "rank", *ENTRY, "mean", "ci_low", "ci_high", "rank_low", "rank_high", "rank_stable",
        "n_datasets", "n_cases", "n_units", "overlap",
    ]  # fmt: skip
    return out[columns].reset_index(drop=True)


def paired_comparisons(
    steps: pd.DataFrame | ResultsView,
    metric: str = "dice",
    n_boot: int = 1000,
    seed: int = 0,
    level: str = "overall",
    *,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Mean paired difference ``a − b`` of ``metric`` for every pair of entries, with intervals.

    Entries are only compared on the targets both were evaluated on: the difference is taken per
    scored unit (same dataset, case, target and seed) where both have a value, so two entries are
    always compared on the same targets; pairs that share no such unit are left out. A case's
    difference is the mean over its shared targets and seeds; a dataset's, the mean over cases;
    the overall one, the unweighted mean over the datasets the pair shares. The interval
    resamples cases within each dataset with the same draws as :func:`leaderboard` (same seed,
    same resamples), and ``distinguishable`` is true when it excludes 0. The sign is that of
    ``a − b`` whatever the metric's direction.

    Args:
        steps: a :class:`ResultsView` or the per-step results table (:meth:`ResultStore.steps`).
        metric: a score column.
        n_boot: bootstrap resamples.
        seed: seed of ``numpy.random.default_rng``; same input and seed, same result.
        level: ``"overall"`` — one row per pair; ``"dataset"`` — one row per (dataset, pair).
        ci: coverage of the percentile interval.

    Returns:
        Columns ``[dataset,] model_a, prompter_a, user_a, model_b, prompter_b, user_b,
        mean_diff, ci_low, ci_high, distinguishable, [n_datasets,] n_cases, n_targets``; pairs in
        entry order (``a`` before ``b``). ``n_targets`` counts the shared scored units.
    """
    _check(n_boot, ci, level)
    view = as_view(steps)
    long = _final_long(view, metric)
    entries = _entries(long)
    n_entries = len(entries)
    first, second = np.triu_indices(n_entries, k=1)
    entry_code = pd.MultiIndex.from_frame(entries)
    long = long.assign(_e=entry_code.get_indexer(pd.MultiIndex.from_frame(long[list(ENTRY)])))
    draws = view.draws(n_boot, seed)
    datasets = list(draws.cases)
    unit_keys = ["dataset", "case", "target", "seed"]
    wide_all = (
        long.set_index([*unit_keys, "_e"])["value"]
        .unstack("_e")
        .reindex(columns=range(n_entries))
        .sort_index()
    )
    cases_per_dataset = {d: list(draws.cases[d]) for d in datasets}

    n_pairs = len(first)
    point = np.full((len(datasets), n_pairs), np.nan)
    boots = np.full((len(datasets), n_boot, n_pairs), np.nan)
    n_cases = np.zeros((len(datasets), n_pairs), dtype=np.int64)
    n_targets = np.zeros((len(datasets), n_pairs), dtype=np.int64)
    for k, dataset in enumerate(datasets):
        block = wide_all.xs(dataset, level="dataset")
        values = block.to_numpy(dtype=np.float64)  # (units, entries), sorted by case
        diff = values[:, first] - values[:, second]  # NaN unless both have a value
        valid = ~np.isnan(diff)
        case_codes = pd.Index(cases_per_dataset[dataset]).get_indexer(
            block.index.get_level_values("case").astype(str)
        )
        n_c = len(cases_per_dataset[dataset])
        sums = np.zeros((n_c, n_pairs))
        counts = np.zeros((n_c, n_pairs))
        np.add.at(sums, case_codes, np.where(valid, diff, 0.0))
        np.add.at(counts, case_codes, valid.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            case_diff = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)
        point[k] = nanmean(case_diff, axis=0)
        boots[k] = _resampled_means(draws.counts[dataset], case_diff)
        n_cases[k] = (counts > 0).sum(axis=0)
        n_targets[k] = valid.sum(axis=0)

    a = entries.iloc[first].reset_index(drop=True).add_suffix("_a")
    b = entries.iloc[second].reset_index(drop=True).add_suffix("_b")
    pair_columns = [*a.columns, *b.columns]
    pairs = pd.concat([a, b], axis=1)
    tail = ["mean_diff", "ci_low", "ci_high", "distinguishable"]

    if level == "dataset":
        frames = []
        for k, dataset in enumerate(datasets):
            low, high = percentile_interval(boots[k], ci, n_cases[k] >= 2)
            frame = pairs.assign(
                dataset=dataset,
                mean_diff=point[k],
                ci_low=low,
                ci_high=high,
                distinguishable=(low > 0) | (high < 0),
                n_cases=n_cases[k],
                n_targets=n_targets[k],
            )[n_targets[k] > 0]
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        return out[["dataset", *pair_columns, *tail, "n_cases", "n_targets"]]

    shared = n_targets > 0  # (datasets, pairs)
    boot_overall = nanmean(np.where(shared[:, None, :], boots, np.nan), axis=0)
    low, high = percentile_interval(boot_overall, ci, np.asarray((n_cases >= 2).any(axis=0)))
    out = pairs.assign(
        mean_diff=nanmean(np.where(shared, point, np.nan), axis=0),
        ci_low=low,
        ci_high=high,
        distinguishable=(low > 0) | (high < 0),
        n_datasets=shared.sum(axis=0),
        n_cases=n_cases.sum(axis=0),
        n_targets=n_targets.sum(axis=0),
    )[shared.any(axis=0)]
    return out[[*pair_columns, *tail, "n_datasets", "n_cases", "n_targets"]].reset_index(drop=True)
