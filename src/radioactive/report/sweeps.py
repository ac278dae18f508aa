"""Figures of parameter sweeps: Dice against box jitter and against human-like prompt noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from radioactive.metrics.meta import meta
from radioactive.report.figure_kit import (
    MARKERS,
    Figure,
    legend_beside,
    model_colours,
    model_strategy_legend,
    new_figure,
)
from radioactive.report.view import ResultsView, as_view

__all__ = ["box_jitter_figure", "jitter_params", "noise_params", "robustness_figure"]


def _params_of(prompter: str, name: str) -> dict[str, Any] | None:
    """The parameters (the prompter's defaults for those the spec leaves out) of a spec of the
    registered prompter ``name``, else ``None``."""
    from radioactive.prompts import get_prompter

    try:
        obj = get_prompter(str(prompter))
    except Exception:  # not a spec of a registered prompter
        return None
    return obj.params() if obj.name == name else None


def jitter_params(prompter: str) -> tuple[int, int] | None:
    """``(k, jitter)`` of a ``box_interpolation`` spec, else ``None``."""
    params = _params_of(prompter, "box_interpolation")
    return None if params is None else (int(params["k"]), int(params["jitter"]))


def _sweep(
    data: pd.DataFrame | ResultsView, parse: Callable[[str], tuple[Any, float] | None]
) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """The static entries whose prompter ``parse`` reads as ``(group, x)``: per (model, group)
    with at least two values of ``x``, the view's dataset-weighted final Dice per ``x``
    (:meth:`ResultsView.entry_stats`, with ``x`` and ``group`` columns), sorted by ``x``."""
    view = as_view(data)
    static = view.finals[view.finals["user"] == ""]
    params = {p: parse(p) for p in static["prompter"].unique()}
    rows = static[static["prompter"].map(lambda p: params[p] is not None)]
    if rows.empty:
        return []
    stats = view.entry_stats("dice", rows)
    stats = stats.assign(
        group=stats["prompter"].map(lambda p: str(params[p][0])),  # type: ignore[index]
        x=stats["prompter"].map(lambda p: float(params[p][1])),  # type: ignore[index]
    )
    return [
        ((str(model), str(group)), sub.sort_values("x"))
        for (model, group), sub in stats.groupby(["model", "group"], sort=True)
        if sub["x"].nunique() >= 2 and np.isfinite(sub["mean"].astype(float)).any()
    ]


def _errorbars(ax: Any, sub: pd.DataFrame, **style: Any) -> None:
    scale = meta("dice").scale
    mean = sub["mean"].to_numpy(dtype=float) * scale
    low = sub["ci_low"].to_numpy(dtype=float) * scale
    high = sub["ci_high"].to_numpy(dtype=float) * scale
    yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    ax.errorbar(sub["x"].to_numpy(dtype=float), mean, yerr=yerr, capsize=3, **style)


def box_jitter_figure(data: pd.DataFrame | ResultsView) -> Figure:
    def parse(prompter: str) -> tuple[int, float] | None:
        found = jitter_params(prompter)
        return None if found is None else (found[0], float(found[1]))

    groups = _sweep(data, parse)
    if not groups:
        return None
    colours = model_colours(model for (model, _), _ in groups)
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for (model, k), sub in groups:
        _errorbars(ax, sub, color=colours[model], marker="s", label=f"{model}, k={k}")
    ax.set_xlabel("box jitter J (voxels, uniform in [−J, J] per coordinate)")
    ax.set_ylabel(meta("dice").axis_label("mean final"))
    ax.set_title("Box interpolation: Dice vs jitter (95 % bootstrap CI)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    legend_beside(fig, handles, "model, key slices")
    return fig


def noise_params(prompter: str) -> tuple[str, float] | None:
    """``(base, noise in mm)`` of a ``noisy`` spec (the larger of its click and box-corner
    noise), else ``None``."""
    params = _params_of(prompter, "noisy")
    if params is None:
        return None
    return str(params["base"]), float(max(params["point_sd_mm"], params["box_sd_mm"]))


def robustness_figure(data: pd.DataFrame | ResultsView) -> Figure:
    """Dice against the noise of human-like prompts, per model and wrapped prompter. The
    wrapped prompter run as it is (the oracle) is the 0 mm point when the run has no
    ``noisy(..., 0)`` of it."""
    view = as_view(data)
    static = view.finals.loc[view.finals["user"] == "", "prompter"].unique()
    noise = {str(p): noise_params(str(p)) for p in static}
    wrapped = {found[0] for found in noise.values() if found is not None}
    at_zero = {found[0] for found in noise.values() if found is not None and found[1] == 0.0}

    def parse(prompter: str) -> tuple[str, float] | None:
        found = noise.get(prompter)
        if found is not None:
            return found
        return (prompter, 0.0) if prompter in wrapped - at_zero else None

    groups = _sweep(view, parse)
    if not groups:
        return None
    colours = model_colours(model for (model, _), _ in groups)
    bases = sorted({base for (_, base), _ in groups})
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(bases)}
    fig = new_figure(8.0, 4.8)
    ax = fig.add_subplot()
    for (model, base), sub in groups:
        _errorbars(ax, sub, color=colours[model], marker=markers[base])
    ax.set_xlabel("noise of the clicks or box corners (mm, standard deviation per axis)")
    ax.set_ylabel(meta("dice").axis_label("mean final"))
    ax.set_title("Robustness to human-like prompts (95 % bootstrap CI)")
    ax.grid(True, alpha=0.3)
    model_strategy_legend(fig, colours, markers, line=True)
    return fig
