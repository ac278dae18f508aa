"""Figures of a results store: accuracy against effort, refinement, box jitter and timing.

:func:`make_figures` takes a :class:`~radioactive.report.view.ResultsView` (or the ``steps``
DataFrame of a :class:`~radioactive.runner.store.ResultStore`, of which the view is made) and
writes each figure as ``<name>.png`` (120 dpi) and ``<name>.svg``. Every number drawn is one of
the view's, the same as in the tables:

``dice_vs_interactions`` / ``dice_vs_seconds``
    One marker per entry (model × prompter × user): the dataset-weighted mean final-step Dice
    (×100, the Dice table's "mean (datasets)"; bars: its 95 % bootstrap interval) against the
    mean total degrees of freedom (``cum_dof``) / estimated human seconds (``cum_seconds``) of a
    trajectory (the effort table), log-scaled x axis; colour per model, marker per prompting
    strategy, both named in the legend beside the axes (no text inside them). Entries without
    results in every dataset have no mean and are not drawn.
``dice_vs_time``
    Per entry, the dataset-weighted mean Dice the user has after ``t`` seconds of time to result
    (estimated human seconds + the model's time; 0 before a unit's first result), 0 to 120 s,
    with a 95 % bootstrap band when there are few entries (:mod:`radioactive.report.timing`);
    dotted lines at the table's budgets (30, 60, 120 s).
``refinement_curves``
    Interactive entries (those with a simulated user): the dataset-weighted mean Dice per step
    (the refinement table) with a 95 % bootstrap band over cases. A unit that stopped early
    keeps its last Dice for the later steps, so every step averages over the same units.
``box_jitter``
    Static ``box_interpolation(k=K, jitter=J)`` entries of a model with several jitter values:
    the dataset-weighted mean final Dice against J (bars: 95 % bootstrap interval), one line per
    model × K.
``robustness``
    Static ``noisy(base=…)`` entries (human-like prompts, :mod:`radioactive.prompts.human`) of
    a model with several noise levels: the dataset-weighted mean final Dice against the noise
    (mm, standard deviation per axis, of the clicks or the box corners; bars: 95 % bootstrap
    interval), one line per model × base prompter.
``timing``
    Encoder and decoder wall time per model, stacked: totals over all steps, and means per
    inferred slice (total time / total ``slices_inferred``).
``dice_vs_distance``
    Only when the run has units whose prediction was propagated (a propagating prompter or a
    video model): per entry, the mean slice Dice against the distance in slices from the
    nearest prompted slice (:mod:`radioactive.report.propagation`).

A figure without data is skipped (no file). Figures are built on :class:`matplotlib.figure.
Figure` with the Agg canvas: no pyplot, no global state; SVG output carries no date and a fixed
hash salt, so rerunning on the same store gives the same files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radioactive.metrics.meta import meta
from radioactive.report.figure_kit import (
    FEW_ENTRIES,
    Figure,
    entry_label,
    legend_beside,
    model_colours,
    model_strategy_legend,
    new_figure,
    strategy_markers,
)
from radioactive.report.propagation import dice_vs_distance_figure
from radioactive.report.sweeps import box_jitter_figure, jitter_params, robustness_figure
from radioactive.report.view import ENTRY, ResultsView, as_view

_box_jitter = box_jitter_figure  # the name the tests and earlier callers use

__all__ = [
    "CONFIDENCE_Z",
    "DPI",
    "FIGURE_NAMES",
    "draw_figures",
    "final_steps",
    "jitter_params",
    "make_figures",
    "mean_ci",
    "prompter_family",
]

log = logging.getLogger(__name__)

DPI = 120
#: z quantile of the two-sided 95 % normal confidence interval
CONFIDENCE_Z = 1.959963984540054
FIGURE_NAMES = (
    "dice_vs_interactions",
    "dice_vs_seconds",
    "dice_vs_time",
    "refinement_curves",
    "box_jitter",
    "robustness",
    "timing",
    "dice_vs_distance",
)

# Figure is imported lazily (keeps `import radioactive` fast); typed loosely here.
_Figure = Figure


# --------------------------------------------------------------------------------------------
# data helpers (pure)
# --------------------------------------------------------------------------------------------


def final_steps(steps: pd.DataFrame | ResultsView) -> pd.DataFrame:
    """The last step of every scored unit (one row per unit): :attr:`ResultsView.finals`."""
    if isinstance(steps, pd.DataFrame) and (steps.empty or "step" not in steps.columns):
        return steps.iloc[0:0]
    return as_view(steps).finals


def prompter_family(prompter: str, user: str | None = None) -> str:
    """``"interactive"`` when a simulated user corrects, else ``"boxes"`` or ``"points"``."""
    if user:
        return "interactive"
    name = str(prompter).split("(", 1)[0]
    return "boxes" if "box" in name else "points"


def mean_ci(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, half-width of its 95 % normal-approximation CI (NaN for n < 2) and n; NaN dropped."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(arr.mean())
    if n < 2:
        return mean, math.nan, n
    return mean, float(CONFIDENCE_Z * arr.std(ddof=1) / math.sqrt(n)), n


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def _entry_points(view: ResultsView, metric: str = "dice") -> pd.DataFrame:
    """Per entry: the view's mean of ``metric`` and its interval (display units) beside the
    effort means ``dof`` and ``seconds``; entries without a mean left out."""
    scale = meta(metric).scale
    stats = view.entry_stats(metric)
    points = stats.merge(view.effort(), on=list(ENTRY), how="left")
    for column in ("mean", "ci_low", "ci_high"):
        points[column] = points[column].astype(float) * scale
    return points[np.isfinite(points["mean"].astype(float))].reset_index(drop=True)


def _dice_vs_effort(view: ResultsView, x_column: str, x_label: str, what: str) -> _Figure:
    from matplotlib.ticker import LogFormatter

    points = _entry_points(view)
    points = points[np.isfinite(points[x_column].astype(float)) & (points[x_column] > 0)]
    if points.empty:
        return None
    colours = model_colours(points["model"])
    markers = strategy_markers(points)
    fig = new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    for row in points.itertuples(index=False):
        x, y = float(getattr(row, x_column)), float(row.mean)
        low, high = float(row.ci_low), float(row.ci_high)
        yerr = [[y - low], [high - y]] if np.isfinite(low) and np.isfinite(high) else None
        ax.errorbar(
            [x], [y], yerr=yerr, color=colours[row.model],
            marker=markers[entry_label(row.prompter, row.user)], markersize=7,
            markeredgecolor="black", markeredgewidth=0.5, elinewidth=0.8, capsize=2,
            linestyle="", zorder=3,
        )  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter())  # plain numbers, not 10⁰
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel(x_label)
    ax.set_ylabel(meta("dice").axis_label("mean final"))
    ax.set_title(f"Dice vs {what} (mean over datasets, final step; bars: 95 % bootstrap CI)")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.1, y=0.08)
    model_strategy_legend(fig, colours, markers)
    return fig


def _refinement_curves(view: ResultsView) -> _Figure:
    curves = view.refinement("dice")
    curves = curves[np.isfinite(curves["mean"].astype(float))]
    if curves.empty:
        return None
    scale = meta("dice").scale
    entries = curves[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY))
    colours = model_colours(entries["model"])
    markers = strategy_markers(entries)
    few = len(entries) <= FEW_ENTRIES  # one legend line per entry; else colours and markers
    fig = new_figure(9.0, 5.0)
    ax = fig.add_subplot()
    for model, prompter, user in entries.itertuples(index=False):
        sub = curves[
            (curves["model"] == model) & (curves["prompter"] == prompter)
            & (curves["user"] == user)
        ].sort_values("step")  # fmt: skip
        x = sub["step"].to_numpy(dtype=float)
        mean = sub["mean"].to_numpy(dtype=float) * scale
        low = sub["ci_low"].to_numpy(dtype=float) * scale
        high = sub["ci_high"].to_numpy(dtype=float) * scale
        ax.plot(
            x, mean, color=colours[model], marker=markers[entry_label(prompter, user)],
            markersize=4,
            label=f"{model}: {entry_label(prompter, user)} (n={int(sub['n_units'].max())})",
        )  # fmt: skip
        band = np.isfinite(low) & np.isfinite(high)
        if band.any():
            ax.fill_between(x, low, high, where=band, color=colours[model], alpha=0.15, lw=0)
    ax.set_xlabel("interaction step (0 = initial prompt)")
    ax.set_ylabel(meta("dice").axis_label("mean"))
    ax.set_title("Refinement: mean Dice per step over datasets, 95 % bootstrap CI")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    if few:
        handles, _ = ax.get_legend_handles_labels()
        legend_beside(fig, handles, "model: strategy (units)")
    else:
        model_strategy_legend(fig, colours, markers, line=True)
    return fig


def _dice_vs_time(view: ResultsView) -> _Figure:
    from radioactive.metrics.timing import TIME_BUDGETS_S
    from radioactive.report.timing import dice_over_time

    if view.finals.empty or "cum_seconds" not in view.finals.columns:
        return None
    curves = dice_over_time(view)
    curves = curves[np.isfinite(curves["mean"].astype(float))]
    if curves.empty or not (curves["mean"] > 0).any():
        return None
    scale = meta("dice").scale
    entries = curves[list(ENTRY)].drop_duplicates().sort_values(list(ENTRY))
    colours = model_colours(entries["model"])
    markers = strategy_markers(entries)
    fig = new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    for model, prompter, user in entries.itertuples(index=False):
        sub = curves[
            (curves["model"] == model) & (curves["prompter"] == prompter)
            & (curves["user"] == user)
        ].sort_values("t")  # fmt: skip
        x = sub["t"].to_numpy(dtype=float)
        ax.step(x, sub["mean"].to_numpy(dtype=float) * scale, where="post", color=colours[model],
                marker=markers[entry_label(prompter, user)], markersize=4, markevery=4,
                linewidth=1.2)  # fmt: skip
        low = sub["ci_low"].to_numpy(dtype=float) * scale
        high = sub["ci_high"].to_numpy(dtype=float) * scale
        band = np.isfinite(low) & np.isfinite(high)
        if band.any() and len(entries) <= FEW_ENTRIES:  # many bands hide the curves
            ax.fill_between(x, low, high, where=band, step="post", color=colours[model],
                            alpha=0.1, lw=0)  # fmt: skip
    for budget in TIME_BUDGETS_S:
        ax.axvline(budget, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("time to result (s): estimated human seconds + model time")
    ax.set_ylabel(meta("dice").axis_label("mean"))
    ax.set_title(
        "Dice over time to result (mean over datasets"
        + (", 95 % bootstrap CI)" if len(entries) <= FEW_ENTRIES else ")")
    )
    ax.grid(True, alpha=0.3)
    model_strategy_legend(fig, colours, markers, line=True)
    return fig


def _timing(view: ResultsView) -> _Figure:
    df = view.steps
    if df.empty:
        return None
    df = df.assign(
        enc=_numeric(df, "encoder_s"),
        dec=_numeric(df, "decoder_s"),
        slices=_numeric(df, "slices_inferred"),
    )
    df = df[np.isfinite(df["enc"]) | np.isfinite(df["dec"])]
    if df.empty:
        return None
    sums = df.groupby("model", sort=True)[["enc", "dec", "slices"]].sum(min_count=1).fillna(0.0)
    models = list(sums.index.astype(str))
    x = np.arange(len(models))
    per_slice = sums[["enc", "dec"]].div(sums["slices"].where(sums["slices"] > 0), axis=0) * 1e3
    fig = new_figure(max(7.0, 1.2 * len(models) + 4.0), 4.5)
    left, right = fig.subplots(1, 2)
    panels = (
        (left, sums[["enc", "dec"]], "total time (s)", "Total over all steps"),
        (right, per_slice, "time per inferred slice (ms)", "Mean per inferred slice"),
    )
    for ax, values, ylabel, title in panels:
        enc = values["enc"].to_numpy(dtype=float)
        dec = values["dec"].to_numpy(dtype=float)
        ax.bar(x, enc, color="#4c72b0", label="encoder")
        ax.bar(x, dec, bottom=np.nan_to_num(enc), color="#dd8452", label="decoder")
        ax.set_xticks(x, models, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("Model wall time: encoder and decoder")
    return fig


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _save(fig: _Figure, out_dir: Path, name: str) -> list[Path]:
    import matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": "radioactive", "svg.fonttype": "none"}):
        fig.savefig(png, dpi=DPI, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return [png, svg]


def draw_figures(steps: pd.DataFrame | ResultsView) -> dict[str, _Figure]:
    """The figures of a view or a steps table (see the module doc), by name, unsaved; a
    figure without data is left out, one that fails to draw is logged and left out."""
    if steps is None or (isinstance(steps, pd.DataFrame) and steps.empty):
        return {}
    view = as_view(steps)
    builders: list[tuple[str, Callable[[], _Figure]]] = [
        (
            "dice_vs_interactions",
            lambda: _dice_vs_effort(
                view, "dof", "mean interactions (degrees of freedom, log scale)", "DoF"
            ),
        ),
        (
            "dice_vs_seconds",
            lambda: _dice_vs_effort(
                view, "seconds", "mean estimated user time (s, log scale)", "user time"
            ),
        ),
        ("dice_vs_time", lambda: _dice_vs_time(view)),
        ("refinement_curves", lambda: _refinement_curves(view)),
        ("box_jitter", lambda: box_jitter_figure(view)),
        ("robustness", lambda: robustness_figure(view)),
        ("timing", lambda: _timing(view)),
        ("dice_vs_distance", lambda: dice_vs_distance_figure(view)),
    ]
    figures: dict[str, _Figure] = {}
    for name, build in builders:
        try:
            fig = build()
        except Exception:  # one broken figure must not cost the whole report
            log.warning("figure %s could not be drawn", name, exc_info=True)
            continue
        if fig is None:
            log.info("figure %s skipped: no data", name)
            continue
        figures[name] = fig
    return figures


def make_figures(steps: pd.DataFrame | ResultsView, out_dir: str | Path) -> list[Path]:
    """Write the figures of a view or a steps table (see the module doc) into ``out_dir``;
    return their paths.

    Each figure is saved as ``<name>.png`` and ``<name>.svg`` (PNG first); a figure without
    data is skipped, so the list may be empty. A figure that fails to draw is logged and skipped.
    """
    out = Path(out_dir)
    paths: list[Path] = []
    for name, fig in draw_figures(steps).items():
        paths += _save(fig, out, name)
    return paths
