"""One view of a results store, built once, that every part of the report reads.

:class:`ResultsView` holds the store's rows in one normalised form and the facts derived from
them that tables, figures, leaderboard, overlays, the HTML page and the command line share:

* ``steps`` — every step row, normalised: ``case`` next to ``case_id``, ``user`` as text (``""``
  for none), ``status`` as text, a ``unit_id`` (made from the identity columns when the input
  has none), and ``modality`` / ``category`` as text with :data:`UNKNOWN` where a dataset does
  not say (a plain nnU-Net ``dataset.json`` has no category);
* ``finals`` — the last step of every scored unit (:func:`radioactive.records.final_steps`:
  units with an ``error`` or ``skipped`` row are left out), sorted by unit identity;
* ``errors`` / ``skipped`` — one row per failed unit (with its message) and per skipped unit
  (with its reason; from the ``units`` table, where skipped units live);
* ``datasets`` — the table order (MRI first, then CT, then others; by name within each);
* ``entries`` — every model × prompter × user with a scored unit, sorted;
* :meth:`draws` — the one set of bootstrap draws (cases resampled per dataset) behind every
  interval of the report.

Every mean of a metric is the same **dataset-weighted** mean (PROTOCOL §6): the mean over the
targets (and seeds) of a dataset, then the unweighted mean over datasets, given only when the
entry has results in every dataset of the rows it is computed on (else NaN), so entries are never
compared over different dataset subsets. :meth:`entry_stats` computes it, with a percentile
bootstrap interval from :meth:`draws`, for final steps or for any other rows (the refinement
curve is :meth:`refinement`). Effort (:meth:`effort`) is the mean over an entry's scored units
of ``cum_dof`` and ``cum_seconds`` at the final step: the effort of one trajectory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radioactive.metrics.aggregate import dataset_means, modality_group, overall_means
from radioactive.records import Status
from radioactive.records import final_steps as _final_steps
from radioactive.report.bootstrap import Draws, nanmean, percentile_interval, ratio_means

__all__ = [
    "ENTRY",
    "UNIT",
    "UNKNOWN",
    "ResultsView",
    "as_view",
    "dataset_order",
    "normalise_steps",
]

ENTRY = ("model", "prompter", "user")
"""Columns that identify an entry of the tables, figures and leaderboard."""

UNIT = ("dataset", "case", "target", "model", "prompter", "user", "seed")
"""Columns that identify a work unit (besides its ``unit_id``)."""

UNKNOWN = "unknown"
"""The modality or category of a dataset that does not state it."""

_MODALITY_ORDER = ("MRI", "CT")
_GROUPING = ("modality", "category")


def _text(values: pd.Series, missing: str) -> pd.Series:
    """``values`` as text, ``missing`` for None, NaN and empty strings."""
    out = values.astype(object).where(values.notna(), missing).astype(str)
    return out.where(out.str.strip() != "", missing)


def normalise_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """A normalised copy of a steps table (see the module docstring); ``ValueError`` naming
    the missing columns when it lacks the unit identity, ``step`` or a metric."""
    df = steps.copy()
    if "case" not in df.columns and "case_id" in df.columns:
        df["case"] = df["case_id"]
    if "case_id" not in df.columns and "case" in df.columns:
        df["case_id"] = df["case"]
    missing = [c for c in (*UNIT, "step") if c not in df.columns]
    if missing:
        raise ValueError(f"the steps table lacks column(s) {missing}; it has {list(df.columns)}")
    df["user"] = _text(df["user"], "")
    df["case"] = df["case"].astype(str)
    df["status"] = _text(df["status"], Status.OK.value) if "status" in df else Status.OK.value
    for column in _GROUPING:
        if column in df.columns:
            df[column] = _text(df[column], UNKNOWN)
    if "unit_id" not in df.columns:
        df["unit_id"] = df[list(UNIT)].astype(str).agg("|".join, axis=1)
    return df


def dataset_order(frame: pd.DataFrame) -> list[str]:
    """Datasets in table order: MRI first, then CT, then others; by name within each group."""
    if frame.empty:
        return []
    if "modality" not in frame.columns:
        return sorted(str(d) for d in frame["dataset"].dropna().unique())
    pairs = frame[["dataset", "modality"]].drop_duplicates()
    rank = {group: i for i, group in enumerate(_MODALITY_ORDER)}
    keyed: dict[str, tuple[int, str]] = {}
    for d, m in pairs.itertuples(index=False):
        key = (rank.get(modality_group(m), len(rank)), str(d))
        keyed[str(d)] = min(key, keyed.get(str(d), key))
    return sorted(keyed, key=lambda d: keyed[d])


def _identity_frame(units: pd.DataFrame, message: str) -> pd.DataFrame:
    """``unit_id``, the unit identity and ``message`` of some unit or step rows, sorted."""
    out = units.copy()
    if "case" not in out.columns:
        out = out.rename(columns={"case_id": "case"})
    out["user"] = _text(out["user"], "") if "user" in out.columns else ""
    columns = ["unit_id", *UNIT, message]
    for c in columns:
        if c not in out.columns:
            out[c] = None
    return out.sort_values(list(UNIT), kind="stable")[columns].reset_index(drop=True)


@dataclass
class ResultsView:
    """The normalised rows of a results store and what the report derives from them.

    Build it with :meth:`from_store` (a results directory) or :meth:`from_frames` (a steps
    DataFrame, and optionally the ``units`` and ``runs`` tables); see the module docstring.
    ``n_boot`` and ``seed`` are those of the shared bootstrap draws.
    """

    steps: pd.DataFrame
    units: pd.DataFrame
    runs: pd.DataFrame
    finals: pd.DataFrame
    errors: pd.DataFrame
    skipped: pd.DataFrame
    datasets: tuple[str, ...]
    entries: pd.DataFrame
    n_boot: int = 1000
    seed: int = 0
    _draws: dict[tuple[int, int], Draws] = field(default_factory=dict, repr=False)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_frames(
        cls,
        steps: pd.DataFrame,
        units: pd.DataFrame | None = None,
        runs: pd.DataFrame | None = None,
        *,
        n_boot: int = 1000,
        seed: int = 0,
    ) -> ResultsView:
        """The view of a steps table (and the store's ``units`` and ``runs`` tables, if given)."""
        df = normalise_steps(steps)
        units = units.copy() if units is not None else pd.DataFrame()
        finals = _final_steps(df)
        failed = df[df["status"] == Status.ERROR.value]
        failed = failed.sort_values(["unit_id", "step"], kind="stable")
        errors = _identity_frame(failed.drop_duplicates("unit_id"), "error")
        skipped = _identity_frame(pd.DataFrame(columns=[*UNIT, "reason"]), "reason")
        if not units.empty and {"unit_id", "status"} <= set(units.columns):
            # the units table is the record of how each unit ended
            status = units["status"].astype(str)
            finals = finals[~finals["unit_id"].isin(set(units.loc[status != "ok", "unit_id"]))]
            errors = _identity_frame(units[status == Status.ERROR.value], "error")
            skipped = _identity_frame(units[status == Status.SKIPPED.value], "reason")
        finals = finals.sort_values([*UNIT, "unit_id"], kind="stable").reset_index(drop=True)
        entries = finals[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY), kind="stable")
        return cls(
            steps=df,
            units=units,
            runs=runs.copy() if runs is not None else pd.DataFrame(),
            finals=finals,
            errors=errors,
            skipped=skipped,
            datasets=tuple(dataset_order(finals)),
            entries=entries.reset_index(drop=True),
            n_boot=n_boot,
            seed=seed,
        )

    @classmethod
    def from_store(
        cls, results_dir: str | Path, *, n_boot: int = 1000, seed: int = 0
    ) -> ResultsView:
        """The view of the store in ``results_dir`` (opened read-only, closed on return)."""
        from radioactive.runner.store import ResultStore

        with ResultStore(results_dir, read_only=True) as store:
            steps, units, runs = store.steps(), store.units(), store.runs()
        return cls.from_frames(steps, units, runs, n_boot=n_boot, seed=seed)

    # -- shared facts -----------------------------------------------------------------------

    @property
    def scored(self) -> pd.DataFrame:
        """Every step row of the scored units (those in :attr:`finals`)."""
        return self.steps[self.steps["unit_id"].isin(set(self.finals["unit_id"]))]

    def inter_rater_dice(self) -> dict[str, float]:
        """Per dataset, the inter-rater Dice the experiment states (its ``report`` block, the
        latest run's value where runs differ); empty when none does."""
        levels: dict[str, float] = {}
        if "config" not in self.runs.columns:
            return levels
        runs = self.runs.sort_values("started_at") if "started_at" in self.runs else self.runs
        for text in runs["config"].dropna():
            try:
                config = json.loads(text) if isinstance(text, str) else dict(text)
            except (TypeError, ValueError):
                continue
            block = (config.get("report") or {}).get("inter_rater_dice") or {}
            levels.update({str(k): float(v) for k, v in block.items()})
        return levels

    def unit_counts(self) -> dict[str, int]:
        """Units per status (``ok``, ``error``, ``skipped``): from the ``units`` table when the
        view has it, else from the steps."""
        if not self.units.empty and "status" in self.units.columns:
            counts = self.units["status"].astype(str).value_counts()
            return {s.value: int(counts.get(s.value, 0)) for s in Status if s != Status.STOPPED}
        return {
            Status.OK.value: len(self.finals),
            Status.ERROR.value: len(self.errors),
            Status.SKIPPED.value: 0,
        }

    def draws(self, n_boot: int | None = None, seed: int | None = None) -> Draws:
        """The bootstrap draws over the cases of the final steps (made once per n_boot, seed)."""
        key = (self.n_boot if n_boot is None else n_boot, self.seed if seed is None else seed)
        if key not in self._draws:
            cases = {
                d: sorted(self.finals.loc[self.finals["dataset"] == d, "case"].unique())
                for d in self.datasets
            }
            self._draws[key] = Draws.make(cases, n_boot=key[0], seed=key[1])
        return self._draws[key]

    # -- statistics -------------------------------------------------------------------------

    def entry_stats(
        self,
        metric: str,
        rows: pd.DataFrame | None = None,
        *,
        by: Sequence[str] = (),
        ci: float = 0.95,
    ) -> pd.DataFrame:
        """The dataset-weighted mean of ``metric`` per entry (and ``by`` group) with its interval.

        ``rows`` default to :attr:`finals`. A group's mean is NaN unless it has rows in every
        dataset of ``rows``. The interval resamples the cases of every dataset with
        :meth:`draws` (a case adds its targets' values and counts, so a resample gives the mean
        over the drawn targets) and takes the percentiles of the resampled dataset-weighted
        means; it is NaN where no dataset has two cases with a value.

        Returns one row per group: ``model, prompter, user, *by, mean, ci_low, ci_high,
        n_datasets, n_units`` (sorted by group), values in the metric's unit.
        """
        rows = self.finals if rows is None else rows
        keys = [*ENTRY, *by]
        columns = [*keys, "mean", "ci_low", "ci_high", "n_datasets", "n_units"]
        if rows.empty:
            return pd.DataFrame(columns=columns)
        if metric not in rows.columns:
            raise ValueError(f"the steps table has no column {metric!r}")
        long = rows[[*keys, "dataset", "case", "target", "unit_id"]].copy()
        long["value"] = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=np.float64)
        groups = long[keys].drop_duplicates().sort_values(keys, kind="stable")
        index = pd.MultiIndex.from_frame(groups.reset_index(drop=True))
        datasets = [d for d in self.datasets if d in set(long["dataset"])]
        datasets += sorted(set(long["dataset"].astype(str)) - set(datasets))

        per_dataset = dataset_means(long, by=keys)
        overall = overall_means(per_dataset, by=keys).set_index(keys).reindex(index)
        complete = (overall["n"] >= len(datasets)).to_numpy()
        mean = np.where(complete, overall["mean"].to_numpy(dtype=np.float64), np.nan)

        draws = self.draws()
        code = index.get_indexer(pd.MultiIndex.from_frame(long[keys]))
        boots, usable = [], np.zeros(len(index), dtype=bool)
        for dataset in datasets:
            sub = long[long["dataset"] == dataset]
            if dataset not in draws.cases:
                continue
            case_pos = draws.case_index(dataset, sub["case"].tolist())
            valid = ~np.isnan(sub["value"].to_numpy())
            n_cases = len(draws.cases[dataset])
            sums = np.zeros((n_cases, len(index)))
            counts = np.zeros((n_cases, len(index)))
            g = code[long["dataset"].to_numpy() == dataset]
            np.add.at(sums, (case_pos, g), np.where(valid, sub["value"].to_numpy(), 0.0))
            np.add.at(counts, (case_pos, g), valid.astype(np.float64))
            boots.append(ratio_means(draws.counts[dataset], sums, counts))
            usable |= (counts > 0).sum(axis=0) >= 2
        if boots:
            low, high = percentile_interval(nanmean(np.stack(boots), axis=0), ci, usable)
        else:
            low = high = np.full(len(index), np.nan)
        n_units = long.groupby(keys)["unit_id"].nunique().reindex(index).fillna(0)
        out = groups.reset_index(drop=True).assign(
            mean=mean,
            ci_low=np.where(complete, low, np.nan),
            ci_high=np.where(complete, high, np.nan),
            n_datasets=overall["n"].fillna(0).astype(int).to_numpy(),
            n_units=n_units.astype(int).to_numpy(),
        )
        return out[columns]

    def effort(self) -> pd.DataFrame:
        """Per entry: ``dof`` and ``seconds`` (means over its scored units of ``cum_dof`` and
        ``cum_seconds`` at the final step), ``n_targets`` (distinct dataset/case/target),
        ``n_units``, ``n_errors`` and ``n_skipped``; sorted by entry, ``user`` ``""`` for none."""
        f = self.finals
        grouped = f.groupby(list(ENTRY), sort=True)
        out = pd.DataFrame(index=pd.MultiIndex.from_frame(self.entries))
        out["dof"] = grouped["cum_dof"].mean().astype(float).reindex(out.index)
        out["seconds"] = grouped["cum_seconds"].mean().astype(float).reindex(out.index)
        targets = f.drop_duplicates([*ENTRY, "dataset", "case", "target"])
        out["n_targets"] = targets.groupby(list(ENTRY)).size().reindex(out.index).astype(int)
        out["n_units"] = grouped.size().reindex(out.index).astype(int)
        for name, frame in (("n_errors", self.errors), ("n_skipped", self.skipped)):
            counts = frame.groupby(list(ENTRY)).size() if len(frame) else pd.Series(dtype=int)
            out[name] = counts.reindex(out.index).fillna(0).astype(int)
        return out.reset_index()

    def refinement(self, metric: str = "dice", *, ci: float = 0.95) -> pd.DataFrame:
        """Per interactive entry (one with a simulated user) and step: :meth:`entry_stats` of
        ``metric`` over the scored units' rows at that step (``step`` column added).

        A unit whose trajectory has fewer steps than its entry's longest keeps its last row's
        value for the later steps, so every step averages over the same units; a NaN value
        (both masks empty) stays NaN.
        """
        rows = self.scored
        rows = rows[rows["user"] != ""]
        if rows.empty:
            return self.entry_stats(metric, rows.iloc[0:0], by=("step",), ci=ci)
        rows = rows.assign(step=rows["step"].astype(int)).sort_values(["unit_id", "step"])
        longest = rows.groupby(list(ENTRY))["step"].transform("max")
        last = rows.groupby("unit_id")["step"].transform("max")
        tails = rows[(rows["step"] == last) & (last < longest)]
        padded = [rows]
        for row_index, row in tails.iterrows():
            target_last = int(longest.loc[row_index])
            extra = pd.DataFrame([row] * (target_last - int(row["step"])))
            extra["step"] = range(int(row["step"]) + 1, target_last + 1)
            padded.append(extra)
        rows = pd.concat(padded, ignore_index=True) if len(padded) > 1 else rows
        return self.entry_stats(metric, rows, by=("step",), ci=ci)


def as_view(data: pd.DataFrame | ResultsView) -> ResultsView:
    """``data`` if it is a view, else the view of a steps DataFrame."""
    return data if isinstance(data, ResultsView) else ResultsView.from_frames(data)
