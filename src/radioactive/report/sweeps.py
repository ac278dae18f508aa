"""Figures of parameter sweeps: Dice against box jitter and against human-like prompt noise."""

from __future__ import annotations

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


def jitter_params(prompter: str) -> tuple[int, int] | None:
    """``(k, jitter)`` of a ``box_interpolation`` spec (the prompter's own defaults for the
    parameters the spec leaves out), else ``None``."""
    from radioactive.prompts import get_prompter

    try:
        obj = get_prompter(str(prompter))
    except Exception:  # not a spec of a registered prompter
        return None
    if obj.name != "box_interpolation":
        return None
    params = obj.params()
    return int(params["k"]), int(params["jitter"])


def box_jitter_figure(data: pd.DataFrame | ResultsView) -> Figure:
    view = as_view(data)
    static = view.finals[view.finals["user"] == ""]
    params = {p: jitter_params(p) for p in static["prompter"].unique()}
    rows = static[static["prompter"].map(lambda p: params[p] is not None)]
    if rows.empty:
        return None
    stats = view.entry_stats("dice", rows)
    stats = stats.assign(
        k=stats["prompter"].map(lambda p: params[p][0]),  # type: ignore[index]
        jitter=stats["prompter"].map(lambda p: params[p][1]),  # type: ignore[index]
    )
    groups = [
        (key, sub.sort_values("jitter"))
        for key, sub in stats.groupby(["model", "k"], sort=True)
        if sub["jitter"].nunique() >= 2 and np.isfinite(sub["mean"].astype(float)).any()
    ]
    if not groups:
        return None
    scale = meta("dice").scale
    colours = model_colours(str(key[0]) for key, _ in groups)
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for (model, k), sub in groups:
        x = sub["jitter"].to_numpy(dtype=float)
        mean = sub["mean"].to_numpy(dtype=float) * scale
        low = sub["ci_low"].to_numpy(dtype=float) * scale
        high = sub["ci_high"].to_numpy(dtype=float) * scale
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.errorbar(
            x, mean, yerr=yerr, color=colours[str(model)], marker="s", capsize=3,
            label=f"{model}, k={k}",
        )  # fmt: skip
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
    from radioactive.prompts import get_prompter

    try:
        obj = get_prompter(str(prompter))
    except Exception:  # not a spec of a registered prompter
        return None
    if obj.name != "noisy":
        return None
    params = obj.params()
    return str(params["base"]), float(max(params["point_sd_mm"], params["box_sd_mm"]))


def robustness_figure(view: ResultsView) -> Figure:
    static = view.finals[view.finals["user"] == ""]
    params = {p: noise_params(p) for p in static["prompter"].unique()}
    rows = static[static["prompter"].map(lambda p: params[p] is not None)]
    if rows.empty:
        return None
    stats = view.entry_stats("dice", rows)
    stats = stats.assign(
        base=stats["prompter"].map(lambda p: params[p][0]),  # type: ignore[index]
        noise=stats["prompter"].map(lambda p: params[p][1]),  # type: ignore[index]
    )
    groups = [
        (key, sub.sort_values("noise"))
        for key, sub in stats.groupby(["model", "base"], sort=True)
        if sub["noise"].nunique() >= 2 and np.isfinite(sub["mean"].astype(float)).any()
    ]
    if not groups:
        return None
    scale = meta("dice").scale
    colours = model_colours(str(key[0]) for key, _ in groups)
    markers = {b: MARKERS[i % len(MARKERS)]
               for i, b in enumerate(sorted({str(k[1]) for k, _ in groups}))}  # fmt: skip
    fig = new_figure(8.0, 4.8)
    ax = fig.add_subplot()
    for (model, base), sub in groups:
        x = sub["noise"].to_numpy(dtype=float)
        mean = sub["mean"].to_numpy(dtype=float) * scale
        low = sub["ci_low"].to_numpy(dtype=float) * scale
        high = sub["ci_high"].to_numpy(dtype=float) * scale
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.errorbar(x, mean, yerr=yerr, color=colours[str(model)], marker=markers[str(base)],
                    capsize=3)  # fmt: skip
    ax.set_xlabel("noise of the clicks or box corners (mm, standard deviation per axis)")
    ax.set_ylabel(meta("dice").axis_label("mean final"))
    ax.set_title("Robustness to human-like prompts (95 % bootstrap CI)")
    ax.grid(True, alpha=0.3)
    model_strategy_legend(fig, colours, markers, line=True)
    return fig
