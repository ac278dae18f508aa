"""Figures of a results store: accuracy against effort, refinement, box jitter and timing.

:func:`make_figures` takes the ``steps`` DataFrame of a :class:`~radioactive.runner.store.
ResultStore` and writes each figure as ``<name>.png`` (120 dpi) and ``<name>.svg``:

``dice_vs_interactions`` / ``dice_vs_seconds``
    One marker per entry (model × prompter × user): mean final-step Dice (×100) against the mean
    total degrees of freedom (``cum_dof``) / estimated human seconds (``cum_seconds``) of a
    trajectory, log-scaled x axis; colour per model, marker per prompter family.
``refinement_curves``
    Interactive entries (those with a simulated user): mean Dice per step with a 95 % confidence
    band over units (cases × targets × seeds) from the normal approximation
    (mean ± 1.96 · sd / √n). A unit that stopped early (Dice target reached) keeps its last Dice
    for the later steps, so every step averages over the same units.
``box_jitter``
    Static ``box_interpolation(k=K, jitter=J)`` entries of a model with several jitter values:
    mean final Dice against J (error bars: normal-approximation 95 % CI), one line per model × K.
``timing``
    Encoder and decoder wall time per model, stacked: totals over all steps, and means per
    inferred slice (total time / total ``slices_inferred``).

A figure without data is skipped (no file). Figures are built on :class:`matplotlib.figure.
Figure` with the Agg canvas: no pyplot, no global state; SVG output carries no date and a fixed
hash salt, so rerunning on the same store gives the same files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CONFIDENCE_Z",
    "DPI",
    "FIGURE_NAMES",
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
    "refinement_curves",
    "box_jitter",
    "timing",
)

_FAMILY_MARKERS = {"points": "o", "boxes": "s", "interactive": "^"}
_IDENTITY = ("dataset", "case_id", "target", "model", "prompter", "user", "seed")

# Figure is imported lazily (keeps `import radioactive` fast); typed loosely here.
_Figure = Any


# --------------------------------------------------------------------------------------------
# data helpers (pure)
# --------------------------------------------------------------------------------------------


def _normalised(steps: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``user`` as "" for none and a ``unit_id`` (built from the identity if absent)."""
    df = steps.copy()
    if "user" not in df.columns:
        df["user"] = ""
    df["user"] = df["user"].fillna("").astype(str)
    if "unit_id" not in df.columns:
        present = [c for c in _IDENTITY if c in df.columns]
        df["unit_id"] = df[present].astype(str).agg("|".join, axis=1)
    if "status" not in df.columns:
        df["status"] = "ok"
    return df


def final_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The last step of every unit that has no ``'error'`` step (one row per unit)."""
    df = _normalised(steps)
    if df.empty or "step" not in df.columns:
        return df.iloc[0:0]
    failed = set(df.loc[df["status"] == "error", "unit_id"])
    ok = df[~df["unit_id"].isin(failed)]
    return ok.sort_values(["unit_id", "step"]).groupby("unit_id", sort=False).tail(1)


def prompter_family(prompter: str, user: str | None = None) -> str:
    """``"interactive"`` when a simulated user corrects, else ``"boxes"`` or ``"points"``."""
    if user:
        return "interactive"
    name = str(prompter).split("(", 1)[0]
    return "boxes" if "box" in name else "points"


def jitter_params(prompter: str) -> tuple[int, int] | None:
    """``(k, jitter)`` of a ``box_interpolation`` spec (defaults k=3, jitter=0), else ``None``."""
    from radioactive.errors import RadioactiveError
    from radioactive.prompts.base import parse_spec

    try:
        name, params = parse_spec(str(prompter))
    except RadioactiveError:
        return None
    if name != "box_interpolation":
        return None
    try:
        return int(params.get("k", 3)), int(params.get("jitter", 0))
    except (TypeError, ValueError):
        return None


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


def _entry_label(prompter: str, user: str) -> str:
    return f"{prompter} + {user}" if user else str(prompter)


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def _entry_means(finals: pd.DataFrame, x_column: str) -> pd.DataFrame:
    """Per (model, prompter, user): mean Dice ×100 and mean of ``x_column`` (NaN skipped)."""
    df = finals.assign(_dice=_numeric(finals, "dice") * 100.0, _x=_numeric(finals, x_column))
    grouped = df.groupby(["model", "prompter", "user"], sort=True, dropna=False)
    out = grouped.agg(dice=("_dice", "mean"), x=("_x", "mean")).reset_index()
    return out[np.isfinite(out["dice"]) & np.isfinite(out["x"]) & (out["x"] > 0)]


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> _Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _model_colours(models: Iterable[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(models)))}


def _dice_vs_effort(finals: pd.DataFrame, x_column: str, x_label: str, what: str) -> _Figure:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogFormatter

    entries = _entry_means(finals, x_column)
    if entries.empty:
        return None
    colours = _model_colours(entries["model"])
    fig = _new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    families: set[str] = set()
    for row in entries.itertuples(index=False):
        family = prompter_family(row.prompter, row.user)
        families.add(family)
        ax.scatter(
            [row.x],
            [row.dice],
            color=colours[row.model],
            marker=_FAMILY_MARKERS[family],
            s=48,
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
        )
        ax.annotate(
            _entry_label(row.prompter, row.user),
            (row.x, row.dice),
            xytext=(5, 3),
            textcoords="offset points",
            fontsize=7,
            color=colours[row.model],
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter())  # plain numbers, not 6×10⁰
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel(x_label)
    ax.set_ylabel("mean final Dice (×100)")
    ax.set_title(f"Dice vs {what} (mean over targets, final step)")
    ax.grid(True, which="both", alpha=0.3)
    handles = [
        Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in colours.items()
    ]
    handles += [
        Line2D([], [], color="grey", marker=_FAMILY_MARKERS[f], linestyle="", label=f)
        for f in _FAMILY_MARKERS
        if f in families
    ]
    ax.margins(x=0.15, y=0.08)  # room for the labels
    fig.legend(
        handles=handles,
        fontsize=8,
        loc="outside right upper",
        title="model / family",
        frameon=False,
    )
    return fig


def _unit_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Dice per unit (rows) and step (columns), carried forward past a unit's last step."""
    wide = df.pivot_table(index="unit_id", columns="step", values="_dice", aggfunc="last")
    wide = wide.reindex(columns=range(int(df["step"].max()) + 1))
    return wide.ffill(axis=1)


def _refinement_curves(steps: pd.DataFrame) -> _Figure:
    df = _normalised(steps)
    if df.empty or "step" not in df.columns:
        return None
    failed = set(df.loc[df["status"] == "error", "unit_id"])
    df = df[(df["user"] != "") & ~df["unit_id"].isin(failed)]
    df = df.assign(_dice=_numeric(df, "dice") * 100.0, step=_numeric(df, "step"))
    df = df[np.isfinite(df["step"])]
    if df.empty or not np.isfinite(df["_dice"]).any():
        return None
    df = df.assign(step=df["step"].astype(int))
    entries = sorted(df.groupby(["model", "prompter", "user"], sort=True).groups)
    colours = _model_colours(m for m, _, _ in entries)
    styles = ["-", "--", ":", "-."]
    fig = _new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    seen: dict[str, int] = {}
    for model, prompter, user in entries:
        sub = df[(df["model"] == model) & (df["prompter"] == prompter) & (df["user"] == user)]
        wide = _unit_curves(sub)
        stats = [mean_ci(wide[c]) for c in wide.columns]
        x = np.asarray(wide.columns, dtype=float)
        mean = np.array([s[0] for s in stats])
        half = np.array([s[1] for s in stats])
        style = styles[seen.get(model, 0) % len(styles)]
        seen[model] = seen.get(model, 0) + 1
        n_units = len(wide)
        ax.plot(
            x,
            mean,
            color=colours[model],
            linestyle=style,
            marker="o",
            markersize=3,
            label=f"{model}: {_entry_label(prompter, user)} (n={n_units})",
        )
        if np.isfinite(half).any():
            ax.fill_between(x, mean - half, mean + half, color=colours[model], alpha=0.15, lw=0)
    ax.set_xlabel("interaction step (0 = initial prompt)")
    ax.set_ylabel("mean Dice (×100)")
    ax.set_title("Refinement: mean Dice per step, 95 % CI over units (normal approximation)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _box_jitter(finals: pd.DataFrame) -> _Figure:
    static = finals[finals["user"] == ""]
    rows = []
    for row in static.itertuples(index=False):
        params = jitter_params(row.prompter)
        if params is not None:
            rows.append((row.model, params[0], params[1], row.dice))
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=["model", "k", "jitter", "dice"])
    df["dice"] = pd.to_numeric(df["dice"], errors="coerce") * 100.0
    groups = [
        (key, sub)
        for key, sub in df.groupby(["model", "k"], sort=True)
        if sub["jitter"].nunique() >= 2
    ]
    if not groups:
        return None
    colours = _model_colours(str(key[0]) for key, _ in groups)
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for (model, k), sub in groups:
        points = [(j, *mean_ci(g["dice"])) for j, g in sub.groupby("jitter", sort=True)]
        x = np.array([p[0] for p in points], dtype=float)
        mean = np.array([p[1] for p in points])
        half = np.array([p[2] for p in points])
        ax.errorbar(
            x,
            mean,
            yerr=np.where(np.isfinite(half), half, 0.0),
            color=colours[str(model)],
            marker="s",
            capsize=3,
            label=f"{model}, k={k}",
        )
    ax.set_xlabel("box jitter J (voxels, uniform in [−J, J] per coordinate)")
    ax.set_ylabel("mean final Dice (×100)")
    ax.set_title("Box interpolation: Dice vs jitter (95 % CI, normal approximation)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _timing(steps: pd.DataFrame) -> _Figure:
    df = _normalised(steps)
    if df.empty or "model" not in df.columns:
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
    fig = _new_figure(max(7.0, 1.2 * len(models) + 4.0), 4.5)
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


def make_figures(steps: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the figures of ``steps`` (see the module doc) into ``out_dir``; return their paths.

    Each figure is saved as ``<name>.png`` and ``<name>.svg`` (PNG first); a figure without
    data is skipped, so the list may be empty. A figure that fails to draw is logged and skipped.
    """
    out = Path(out_dir)
    if steps is None or steps.empty:
        return []
    finals = final_steps(steps)
    builders: list[tuple[str, Callable[[], _Figure]]] = [
        (
            "dice_vs_interactions",
            lambda: _dice_vs_effort(
                finals, "cum_dof", "mean interactions (degrees of freedom, log scale)", "DoF"
            ),
        ),
        (
            "dice_vs_seconds",
            lambda: _dice_vs_effort(
                finals, "cum_seconds", "mean estimated user time (s, log scale)", "user time"
            ),
        ),
        ("refinement_curves", lambda: _refinement_curves(steps)),
        ("box_jitter", lambda: _box_jitter(finals)),
        ("timing", lambda: _timing(steps)),
    ]
    paths: list[Path] = []
    for name, build in builders:
        try:
            fig = build()
        except Exception:  # one broken figure must not cost the whole report
            log.warning("figure %s could not be drawn", name, exc_info=True)
            continue
        if fig is None:
            log.info("figure %s skipped: no data", name)
            continue
        paths += _save(fig, out, name)
    return paths
