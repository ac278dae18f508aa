"""Shared parts of the report's figures: new figures, colours per model, markers per strategy,
and legends beside the axes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = [
    "FEW_ENTRIES",
    "MARKERS",
    "entry_label",
    "legend_beside",
    "model_colours",
    "model_strategy_legend",
    "new_figure",
    "short_spec",
    "strategy_markers",
]

#: up to this many curves, a figure's legend names each; above, it names colours and markers
FEW_ENTRIES = 6

#: one marker per prompting strategy, in entry order (cycled past the last)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p", "8", "H", "d")

# Figure is imported lazily (keeps `import radioactive` fast); typed loosely here.
Figure = Any


@functools.lru_cache(maxsize=4096)
def short_spec(spec: str) -> str:
    """A prompter's or user's spec as people read it: the name and the parameters that differ
    from their defaults (a wrapper's ``base`` always, itself shortened), e.g.
    ``noisy(base='box_per_slice', box_sd_mm=4.0)`` for the canonical spec with every parameter.
    A spec of no registered prompter or user is returned as it is."""
    from radioactive.prompts import get_prompter, get_user

    for get in (get_prompter, get_user):
        try:
            obj = get(str(spec))
        except Exception:  # not a spec of this registry
            continue
        defaults = {
            f.name: f.default for f in dataclasses.fields(obj) if f.init and f.name != "effort"
        }
        parts: list[str] = []
        for key, value in obj.params().items():
            if key == "base":
                parts.insert(0, f"base={short_spec(str(value))!r}")
            elif value != defaults.get(key, dataclasses.MISSING):
                parts.append(f"{key}={value!r}")
        return f"{obj.name}({', '.join(parts)})" if parts else str(obj.name)
    return str(spec)


def entry_label(prompter: str, user: str) -> str:
    """The legend label of a strategy: the short prompter spec, ``+`` the short user spec."""
    return f"{short_spec(prompter)} + {short_spec(user)}" if user else short_spec(prompter)


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def model_colours(models: Iterable[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(models)))}


def strategy_markers(entries: pd.DataFrame) -> dict[str, str]:
    labels = sorted(
        {entry_label(p, u) for p, u in zip(entries["prompter"], entries["user"], strict=False)}
    )
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(labels)}


#: legend labels are wrapped at this many characters, so a legend beside the axes stays narrow
LEGEND_WIDTH = 38


def legend_beside(fig: Figure, handles: list[Any], title: str) -> None:
    """One legend outside the axes, on the right, its labels wrapped (the figure keeps its
    size; the axes give up what the legend needs)."""
    import textwrap

    for handle in handles:
        label = str(handle.get_label())
        handle.set_label(textwrap.fill(label, LEGEND_WIDTH, subsequent_indent="  "))
    fig.legend(
        handles=handles, fontsize=7, loc="outside right upper", title=title,
        title_fontsize=8, frameon=False, labelspacing=0.8,
    )  # fmt: skip


def model_strategy_legend(
    fig: Figure, colours: dict[str, Any], markers: dict[str, str], line: bool = False
) -> None:
    """One legend beside the axes naming the colours (models) and the markers (strategies)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=c, marker="o" if not line else None, linestyle="-" if line else "",
               label=m)
        for m, c in colours.items()
    ]  # fmt: skip
    handles += [
        Line2D([], [], color="grey", marker=mk, markeredgecolor="black", linestyle="", label=lb)
        for lb, mk in markers.items()
    ]
    legend_beside(fig, handles, "model (colour) / strategy (marker)")
