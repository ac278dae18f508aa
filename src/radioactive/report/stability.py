"""How sure is a ranking: resampled cases, effort models and user noise.

A ranking of entries by a mean score rests on choices that could have gone otherwise: which cases
were in the dataset, how many seconds each human action takes, where the simulated user's noise
happened to land. :func:`resample_scores` redraws all three ``n_boot`` times:

* **cases** — the view's shared bootstrap draws (:meth:`ResultsView.draws`): the cases of every
  dataset drawn with replacement, as for every interval of the report;
* **the effort model** — every constant of :class:`~radioactive.prompts.EffortModel` drawn
  uniformly from its range (:data:`~radioactive.prompts.EFFORT_RANGES`); each step's human
  seconds are recomputed from the counts stored with its interaction
  (:func:`~radioactive.prompts.effort_components`; a step without stored prompts keeps its
  seconds). Only time metrics (``dice_at_<T>s``, ``auc_time_<T>s``) depend on it;
* **user noise** — per target (dataset, case, target), one of the seeds the run has for it, drawn
  uniformly and shared by all entries (the same seed gives every model the same human). With one
  seed per target this draws nothing.

The score of an entry under a draw is the report's statistic: a dataset's mean over its targets
(``weighting="targets"``, as the tables) or over its case means (``"cases"``, as the leaderboard),
then the unweighted mean over datasets, NaN unless the entry has results in every dataset. The
nominal score uses every case once, every seed, and the seconds stored with the run.

From these, :func:`rank_intervals` gives each entry's rank, its 95 % rank interval over the draws
and whether the rank is **stable** (the interval is that one rank); :func:`flip_probabilities` the
probability that two entries swap order; :func:`kendall_taus` Kendall's τ between each draw's
ranking and the nominal one. Rankings are made within groups (``by``; by default the protocol,
prompter × user, so models are compared under the same prompts and user).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from radioactive.metrics.timing import TIME_BUDGETS_S
from radioactive.prompts.cost import DEFAULT_EFFORT, EFFORT_RANGES, EffortModel, effort_components
from radioactive.report.bootstrap import nanmean
from radioactive.report.view import ENTRY, ResultsView

__all__ = ["PROTOCOL", "RANK_METRIC", "STABILITY_VERSION", "ResampledScores", "flip_probabilities",
           "is_time_metric", "kendall_taus", "rank_intervals", "resample_scores",
           "stability_tables"]  # fmt: skip

STABILITY_VERSION = "1"
"""Version of the resampling scheme (what is redrawn and how)."""

#: the score the report's stability section ranks by: the mean Dice a user sees over the longest
#: time budget (time to result, so human seconds and the model's wait both count)
RANK_METRIC = f"auc_time_{max(TIME_BUDGETS_S):g}s"

#: rankings are made within a protocol: the same prompter and user
PROTOCOL = ("prompter", "user")

_Array = npt.NDArray[np.float64]
_TIME_METRIC = re.compile(r"^(dice_at|nsd_at|auc_time)_(\d+(?:\.\d+)?)s$")
_CONSTANTS = list(EFFORT_RANGES)


def is_time_metric(metric: str) -> bool:
    """Whether ``metric`` is one of the report's time metrics (``dice_at_<T>s``,
    ``nsd_at_<T>s``, ``auc_time_<T>s``), scored on the time to result rather than read from a
    step."""
    return _TIME_METRIC.match(metric) is not None


@dataclass(frozen=True)
class ResampledScores:
    """Entries (``model, prompter, user``), their nominal scores (n_entries,) and their scores
    under each draw (n_boot, n_entries); NaN where an entry has no score."""

    metric: str
    entries: pd.DataFrame
    nominal: _Array
    draws: _Array
    higher_is_better: bool = True


def _effort_draws(rng: np.random.Generator, n_boot: int, vary: bool) -> _Array:
    typical = np.asarray([getattr(DEFAULT_EFFORT, c) for c in _CONSTANTS], dtype=np.float64)
    if not vary:
        return np.tile(typical, (n_boot, 1))
    rows = [EffortModel.sample(rng) for _ in range(n_boot)]
    return np.asarray([[getattr(m, c) for c in _CONSTANTS] for m in rows], dtype=np.float64)


def _components(prompts: object) -> tuple[float, ...] | None:
    """The effort counts of a step's stored interaction (JSON text), or None without one."""
    if not isinstance(prompts, str) or not prompts:
        return None
    return _parsed_components(prompts)


@functools.lru_cache(maxsize=65536)
def _parsed_components(prompts: str) -> tuple[float, ...]:
    """The counts of one stored interaction, parsed once however many scores read it."""
    from radioactive.prompts.types import prompt_from_dict

    data = json.loads(prompts)
    user = [prompt_from_dict(p) for p in data.get("user_prompts", ())]
    counts = effort_components(user, int(data.get("review_slices", 0)))
    return tuple(counts[c] for c in _CONSTANTS)


def _unit_scores(
    unit: pd.DataFrame, metric: str, theta: _Array
) -> tuple[float, npt.NDArray[np.float64]]:
    """One unit's ``metric``: nominal (stored seconds) and under each effort draw (n_boot,)."""
    match = _TIME_METRIC.match(metric)
    if match is None:
        value = float(pd.to_numeric(unit[metric], errors="coerce").iloc[-1])
        return value, np.full(len(theta), value)
    kind, budget = match.group(1), float(match.group(2))
    column = "nsd" if kind == "nsd_at" else "dice"
    dice = pd.to_numeric(unit[column], errors="coerce").to_numpy(dtype=np.float64)
    model_s = np.cumsum(unit["model_s"].to_numpy(dtype=np.float64))
    stored = pd.to_numeric(unit["seconds"], errors="coerce").fillna(0.0).to_numpy(np.float64)
    comps = [_components(p) for p in unit["prompts"]] if "prompts" in unit else [None] * len(dice)
    known = np.asarray([c is not None for c in comps])
    matrix = np.asarray([c if c is not None else (0.0,) * len(_CONSTANTS) for c in comps])
    per_step = matrix @ theta.T + np.where(known, 0.0, stored)[:, None]  # (steps, n_boot)
    times = np.cumsum(per_step, axis=0).T + model_s  # (n_boot, steps)
    nominal_times = (np.nan_to_num(unit["cum_seconds"].to_numpy(dtype=np.float64)) + model_s)[None]
    both = np.vstack([nominal_times, times])
    if kind in ("dice_at", "nsd_at"):
        last = (both <= budget).sum(axis=1) - 1
        scores = np.where(last >= 0, dice[np.maximum(last, 0)], 0.0)
    else:
        edges = np.minimum(both, budget)
        widths = np.diff(np.hstack([edges, np.full((len(both), 1), budget)]), axis=1)
        shown = widths > 0
        scores = (widths * np.nan_to_num(dice)).sum(axis=1) / budget
        scores = np.where((shown & np.isnan(dice)[None]).any(axis=1), np.nan, scores)
    return float(scores[0]), scores[1:]


def _seed_use(units: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> npt.NDArray[np.bool_]:
    """(n_units, n_boot): whether a unit is the one drawn for its entry and target."""
    slot = units.groupby(["dataset", "case", "target"], sort=True).ngroup().to_numpy()
    per_entry = units.groupby([*ENTRY, "dataset", "case", "target"], sort=False)["seed"]
    rank = per_entry.rank(method="first").to_numpy(dtype=np.int64) - 1
    count = per_entry.transform("size").to_numpy(dtype=np.int64)
    widest = pd.Series(count).groupby(slot).max().to_numpy()
    if widest.max(initial=1) <= 1:  # one seed per target: nothing to draw
        return np.ones((len(units), n_boot), dtype=bool)
    pick = rng.integers(0, widest[None, :], size=(n_boot, len(widest)))  # (n_boot, slots)
    return ((pick[:, slot] % count[None, :]) == rank[None, :]).T


def _aggregate(
    units: pd.DataFrame,
    values: _Array,
    use: npt.NDArray[np.bool_],
    weights: Mapping[str, _Array],
    cases: Mapping[str, Sequence[str]],
    n_entries: int,
    weighting: str,
) -> _Array:
    """(n_draws, n_entries): the dataset-weighted mean of ``values`` (n_units, n_draws) over the
    units in ``use``, cases weighted per draw by ``weights[dataset]`` (n_draws, n_cases)."""
    n_draws = values.shape[1]
    valid = use & ~np.isnan(values)
    x = np.where(valid, values, 0.0)
    per_dataset, present = [], []
    for dataset, ids in cases.items():
        rows = (units["dataset"] == dataset).to_numpy()
        position = {c: i for i, c in enumerate(ids)}
        c = np.asarray([position[str(v)] for v in units.loc[rows, "case"]], dtype=np.intp)
        e = units.loc[rows, "_entry"].to_numpy(dtype=np.intp)
        sums = np.zeros((len(ids), n_entries, n_draws))
        counts = np.zeros((len(ids), n_entries, n_draws))
        np.add.at(sums, (c, e), x[rows])
        np.add.at(counts, (c, e), valid[rows].astype(np.float64))
        w = weights[dataset]  # (n_draws, n_cases)
        if weighting == "cases":
            has = counts > 0
            means = np.where(has, sums / np.where(has, counts, 1.0), 0.0)
            total = np.einsum("dc,ced->de", w, means)
            weight = np.einsum("dc,ced->de", w, has.astype(np.float64))
        else:
            total = np.einsum("dc,ced->de", w, sums)
            weight = np.einsum("dc,ced->de", w, counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)
        per_dataset.append(mean)
        present.append(np.bincount(e, minlength=n_entries) > 0)
    if not per_dataset:
        return np.full((n_draws, n_entries), np.nan)
    stack = np.stack(per_dataset)  # (datasets, draws, entries)
    overall = nanmean(stack, axis=0)
    complete = np.asarray(np.stack(present).all(axis=0), dtype=bool)
    return np.where(complete[None, :], overall, np.nan)


def resample_scores(
    view: ResultsView,
    metric: str = RANK_METRIC,
    *,
    n_boot: int = 200,
    seed: int = 0,
    weighting: str = "targets",
    vary_effort: bool = True,
    higher_is_better: bool = True,
) -> ResampledScores:
    """Every entry's nominal score and its scores under ``n_boot`` joint draws of cases, effort
    model and user noise (see the module docstring). ``metric`` is a time metric
    (``dice_at_<T>s``, ``auc_time_<T>s``) or a score column of the final step (``dice``…)."""
    if weighting not in ("targets", "cases"):
        raise ValueError(f"weighting must be 'targets' or 'cases', got {weighting!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    from radioactive.report.timing import with_times

    entries = view.entries.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    theta = _effort_draws(rng, n_boot, vary_effort and _TIME_METRIC.match(metric) is not None)
    if _TIME_METRIC.match(metric) is not None:
        rows = with_times(view.scored)
    elif metric in view.scored.columns:
        rows = view.scored.sort_values(["unit_id", "step"], kind="stable")
    else:
        raise ValueError(f"unknown metric {metric!r}: a score column or dice_at_<T>s / "
                         "auc_time_<T>s")  # fmt: skip
    records, nominal, drawn = [], [], []
    for _, unit in rows.groupby("unit_id", sort=True):
        first = unit.iloc[0]
        records.append({k: first[k] for k in (*ENTRY, "dataset", "case", "target", "seed")})
        value, values = _unit_scores(unit, metric, theta)
        nominal.append(value)
        drawn.append(values)
    units = pd.DataFrame(records, columns=[*ENTRY, "dataset", "case", "target", "seed"])
    index = pd.MultiIndex.from_frame(entries[list(ENTRY)])
    units["_entry"] = index.get_indexer(pd.MultiIndex.from_frame(units[list(ENTRY)]))
    units["case"] = units["case"].astype(str)
    use = _seed_use(units, rng, n_boot)
    draws = view.draws(n_boot, seed)
    cases = {d: draws.cases[d] for d in view.datasets if d in draws.cases}
    once = {d: np.ones((1, len(ids))) for d, ids in cases.items()}
    values = np.asarray(drawn, dtype=np.float64).reshape(len(units), n_boot)
    everything = np.ones((len(units), 1), dtype=bool)
    nominal_values = np.asarray(nominal, dtype=np.float64)[:, None]
    point = _aggregate(units, nominal_values, everything, once, cases, len(entries), weighting)[0]
    boot = _aggregate(units, values, use, {d: draws.counts[d] for d in cases}, cases,
                      len(entries), weighting)  # fmt: skip
    return ResampledScores(metric, entries[list(ENTRY)], point, boot, higher_is_better)


def _ranks(values: _Array, higher: bool) -> _Array:
    """Ranks along the last axis (1 = best, ties share the lowest rank, NaN unranked)."""
    frame = pd.DataFrame(np.atleast_2d(values).T)
    ranked = frame.rank(method="min", ascending=not higher, na_option="keep")
    return ranked.to_numpy(dtype=np.float64).T


def _groups(scores: ResampledScores, by: Sequence[str]) -> list[npt.NDArray[np.intp]]:
    if not by:
        return [np.arange(len(scores.entries))]
    grouped = scores.entries.groupby(list(by), sort=False, dropna=False).indices
    return [np.asarray(v, dtype=np.intp) for v in grouped.values()]


def rank_intervals(
    scores: ResampledScores, by: Sequence[str] = PROTOCOL, *, ci: float = 0.95
) -> pd.DataFrame:
    """Per entry: ``mean`` (nominal), ``rank`` within its group, ``rank_low``/``rank_high`` (the
    ``ci`` percentile interval of its rank over the draws), ``p_rank`` (the share of draws that
    give it its nominal rank) and ``stable`` (the interval is the nominal rank alone)."""
    out = scores.entries.assign(mean=scores.nominal, rank=np.nan, rank_low=np.nan,
                                rank_high=np.nan, p_rank=np.nan)  # fmt: skip
    alpha = (1.0 - ci) / 2.0
    for members in _groups(scores, by):
        ok = members[~np.isnan(scores.nominal[members])]
        if ok.size == 0:
            continue
        nominal = _ranks(scores.nominal[ok], scores.higher_is_better)[0]
        drawn = _ranks(scores.draws[:, ok], scores.higher_is_better)  # (n_boot, k)
        for j, entry in enumerate(ok):
            column = drawn[:, j][~np.isnan(drawn[:, j])]
            out.loc[entry, "rank"] = nominal[j]
            if column.size:
                low, high = np.quantile(column, [alpha, 1.0 - alpha], method="inverted_cdf")
                out.loc[entry, ["rank_low", "rank_high"]] = [low, high]
                out.loc[entry, "p_rank"] = float(np.mean(column == nominal[j]))
    out["stable"] = (out["rank_low"] == out["rank"]) & (out["rank_high"] == out["rank"])
    for name in ("rank", "rank_low", "rank_high"):
        out[name] = out[name].astype("Int64")
    return out


def flip_probabilities(scores: ResampledScores, by: Sequence[str] = PROTOCOL) -> pd.DataFrame:
    """Per pair of entries in a group, ``a`` nominally ahead of ``b`` (the entry order breaks a
    tie): ``mean_a``, ``mean_b`` and ``p_flip``, the share of draws (where both have a score) in
    which ``b`` scores strictly better than ``a``."""
    rows = []
    sign = 1.0 if scores.higher_is_better else -1.0
    for members in _groups(scores, by):
        ok = members[~np.isnan(scores.nominal[members])]
        order = ok[np.argsort(-sign * scores.nominal[ok], kind="stable")]
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                da, db = scores.draws[:, a], scores.draws[:, b]
                both = ~np.isnan(da) & ~np.isnan(db)
                p = float(np.mean(sign * (db[both] - da[both]) > 0)) if both.any() else math.nan
                rows.append({**{f"{k}_a": scores.entries.iloc[a][k] for k in ENTRY},
                             **{f"{k}_b": scores.entries.iloc[b][k] for k in ENTRY},
                             "mean_a": scores.nominal[a], "mean_b": scores.nominal[b],
                             "p_flip": p})  # fmt: skip
    columns = [*(f"{k}_a" for k in ENTRY), *(f"{k}_b" for k in ENTRY), "mean_a", "mean_b",
               "p_flip"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def kendall_taus(
    scores: ResampledScores, by: Sequence[str] = PROTOCOL, *, ci: float = 0.95
) -> pd.DataFrame:
    """Per group of at least two ranked entries: ``n_entries``, Kendall's τ-b between each
    draw's scores and the nominal ones (``tau_median``, ``tau_low`` — the lower end of the
    ``ci`` interval) and ``p_same``, the share of draws that rank the group exactly as the
    nominal scores do."""
    from scipy.stats import kendalltau

    rows = []
    keys = list(by)
    for members in _groups(scores, by):
        ok = members[~np.isnan(scores.nominal[members])]
        if ok.size < 2:
            continue
        nominal_rank = _ranks(scores.nominal[ok], scores.higher_is_better)[0]
        taus, same = [], []
        for draw in scores.draws[:, ok]:
            if np.isnan(draw).any():
                continue
            tau = kendalltau(scores.nominal[ok], draw).statistic
            taus.append(tau if np.isfinite(tau) else 0.0)
            same.append(bool((_ranks(draw, scores.higher_is_better)[0] == nominal_rank).all()))
        first = scores.entries.iloc[ok[0]]
        rows.append({**{k: first[k] for k in keys}, "n_entries": int(ok.size),
                     "tau_median": float(np.median(taus)) if taus else math.nan,
                     "tau_low": float(np.quantile(taus, (1 - ci) / 2)) if taus else math.nan,
                     "p_same": float(np.mean(same)) if same else math.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=[*keys, "n_entries", "tau_median", "tau_low", "p_same"])


def stability_tables(
    view: ResultsView, metric: str = RANK_METRIC, *, n_boot: int = 200, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The report's ranking-stability tables for ``metric`` (values in percent):

    * ``stability``: per entry (model × prompter × user; no user ``"–"``), the nominal score,
      its rank among the models of its protocol (prompter × user) and among all entries, each
      with its 95 % interval over the draws and whether it is stable, and the share of draws
      that keep its rank in the protocol;
    * ``stability_pairs``: per pair of models of a protocol, the one ahead, the one behind and
      the probability (percent) that their order flips;
    * ``stability_tau``: per protocol with two models or more, and for all entries together
      (prompter ``"all entries"``), Kendall's τ (median and lower 95 % end over the draws) and
      the share of draws that keep the whole ranking.
    """
    scores = resample_scores(view, metric, n_boot=n_boot, seed=seed)
    label = _metric_label(metric)
    within = rank_intervals(scores)
    overall = rank_intervals(scores, by=())
    keep = within["rank"].notna().to_numpy()
    entry, every = within[keep], overall[keep]
    table = pd.DataFrame({
        "prompter": entry["prompter"], "user": entry["user"].replace("", "–"),
        "model": entry["model"], label: entry["mean"] * 100,
        "rank in protocol": entry["rank"], "95% interval": _interval(entry),
        "% draws same rank": entry["p_rank"] * 100, "stable": entry["stable"],
        "rank overall": every["rank"], "95% interval overall": _interval(every),
        "stable overall": every["stable"],
    }).sort_values(["prompter", "user", "rank in protocol", "model"], kind="stable")  # fmt: skip
    pairs = flip_probabilities(scores)
    pair_table = pd.DataFrame({
        "prompter": pairs["prompter_a"], "user": pairs["user_a"].replace("", "–"),
        "ahead": pairs["model_a"], "behind": pairs["model_b"],
        f"{label} ahead": pairs["mean_a"] * 100, f"{label} behind": pairs["mean_b"] * 100,
        "% draws flipped": pairs["p_flip"] * 100,
    }).astype({f"{label} ahead": float, f"{label} behind": float,
               "% draws flipped": float})  # fmt: skip
    taus = kendall_taus(scores)
    everything = kendall_taus(scores, by=()).assign(prompter="all entries", user="")
    taus = pd.concat([t for t in (taus, everything) if len(t)] or [taus], ignore_index=True)
    tau_table = pd.DataFrame({
        "prompter": taus["prompter"], "user": taus["user"].replace("", "–"),
        "entries": taus["n_entries"], "Kendall τ median": taus["tau_median"],
        "Kendall τ 2.5%": taus["tau_low"], "% draws same ranking": taus["p_same"] * 100,
    }).astype({"entries": int, "Kendall τ median": float, "Kendall τ 2.5%": float,
               "% draws same ranking": float})  # fmt: skip
    return {
        "stability": table.set_index(["prompter", "user", "model"]),
        "stability_pairs": pair_table.set_index(["prompter", "user"]),
        "stability_tau": tau_table.set_index(["prompter", "user"]),
    }


def _interval(ranks: pd.DataFrame) -> list[str]:
    return [f"{lo}–{hi}" if pd.notna(lo) else "–"
            for lo, hi in zip(ranks["rank_low"], ranks["rank_high"], strict=True)]  # fmt: skip


def _metric_label(metric: str) -> str:
    match = _TIME_METRIC.match(metric)
    if match is None:
        return metric
    kind, budget = match.groups()
    if kind == "auc_time":
        return f"Dice AUC over {budget}s"
    return f"{'NSD' if kind == 'nsd_at' else 'Dice'} @ {budget}s"
