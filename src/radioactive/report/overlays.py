"""Case overlays: key axial slices of a unit with its target, its prediction and its prompts.

:func:`make_overlays` draws, for a few units of a results store (default: the ``n_worst`` by final
Dice plus the best, among ok units with a saved prediction), one PNG ``overlay_<unit_id>.png``
with up to ``max_slices`` axial slices side by side:

* the image in grey, windowed to the 1st–99th percentile of the slice;
* the target contour in green and the prediction contour in magenta;
* the prompts of every step of the unit that touch the slice: points as ``+`` (positive) or
  ``x`` (negative), 2D boxes and the cross-section of 3D boxes as rectangles, scribble voxels as
  dots (yellow positive, cyan negative), lassos as polygons.

Each slice is zoomed to the target, the prediction and the prompts (``crop=False`` shows the
whole slice), in the radiological convention (anterior up, the patient's right on the left of the
picture) and with the aspect ratio of the voxel spacing. The case is found again from what the
unit recorded: its dataset folder (``units.dataset_root``), case id, target name and label value,
with the ``targets:`` rules of the run's configuration for that folder (resolved as the runner
resolves it). Stores written before units recorded their folder fall back to the dataset folders
of the run manifest (the keys of ``runs.dataset_checksums``), matched by dataset name. The
prediction is the NIfTI saved with ``save_predictions: true`` (on the image's file grid; read back
to the canonical grid with :func:`~radioactive.data.load_label`). A unit that cannot be drawn
(missing file, moved dataset, unknown target) is logged as a warning and skipped.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from radioactive.prompts.types import (
    Box2D,
    Box3D,
    Lasso,
    Point,
    Prompt,
    Scribble,
    prompt_from_dict,
)
from radioactive.records import final_steps
from radioactive.report.cases import DatasetFolders, dataset_roots, recorded, run_configs
from radioactive.report.view import ResultsView, as_view

if TYPE_CHECKING:
    pass

__all__ = [
    "DPI",
    "choose_units",
    "dataset_roots",
    "key_slices",
    "make_overlays",
    "prompts_on_slice",
    "unit_prompts",
    "view_window",
]

log = logging.getLogger(__name__)

DPI = 120
TARGET_COLOUR = "lime"
PREDICTION_COLOUR = "magenta"
POSITIVE_COLOUR = "yellow"
NEGATIVE_COLOUR = "cyan"


# --------------------------------------------------------------------------------------------
# selection (pure)
# --------------------------------------------------------------------------------------------


def _user(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def choose_units(steps: pd.DataFrame | ResultsView, n_worst: int = 3, n_best: int = 1) -> list[str]:
    """Unit ids to draw: the ``n_worst`` lowest final Dice, then the ``n_best`` highest.

    Only scored units whose final step has a ``prediction_path`` and a finite Dice count; ties
    are broken by ``unit_id`` so the choice is deterministic.
    """
    if isinstance(steps, pd.DataFrame) and (steps.empty or "unit_id" not in steps.columns):
        return []
    finals = steps.finals if isinstance(steps, ResultsView) else final_steps(steps)
    if finals.empty or "prediction_path" not in finals.columns:
        return []
    dice = pd.to_numeric(finals["dice"], errors="coerce")
    has_path = finals["prediction_path"].notna() & (finals["prediction_path"].astype(str) != "")
    ranked = (
        pd.DataFrame({"unit_id": finals["unit_id"], "dice": dice})[has_path]
        .dropna(subset=["dice"])
        .sort_values(["dice", "unit_id"], kind="stable")
    )
    ids = list(ranked["unit_id"])
    chosen = ids[: max(n_worst, 0)]
    best = [u for u in reversed(ids) if u not in chosen][: max(n_best, 0)]
    return chosen + best


def key_slices(
    target: npt.NDArray[np.bool_], prediction: npt.NDArray[np.bool_], max_slices: int = 3
) -> list[int]:
    """Axial slices worth showing, in increasing z (at most ``max_slices``, at least one).

    First the slice with the largest target area, then the one with the largest prediction error
    (voxels in exactly one of target and prediction); the rest by decreasing error, then by
    decreasing target area. Ties go to the lower z. Without target and error: the middle slice.
    """
    target = np.asarray(target, dtype=bool)
    prediction = np.asarray(prediction, dtype=bool)
    if target.shape != prediction.shape or target.ndim != 3:
        raise ValueError(
            f"target {target.shape} and prediction {prediction.shape} must be equal 3D shapes"
        )
    area = target.sum(axis=(1, 2))
    error = (target ^ prediction).sum(axis=(1, 2))
    order: list[int] = []
    if area.max(initial=0) > 0:
        order.append(int(np.argmax(area)))
    if error.max(initial=0) > 0:
        order.append(int(np.argmax(error)))
    by_error = [int(z) for z in np.argsort(-error, kind="stable") if error[z] > 0]
    by_area = [int(z) for z in np.argsort(-area, kind="stable") if area[z] > 0]
    chosen: list[int] = []
    for z in [*order, *by_error, *by_area]:
        if z not in chosen:
            chosen.append(z)
    if not chosen:
        chosen = [target.shape[0] // 2]
    return sorted(chosen[: max(max_slices, 1)])


def unit_prompts(unit_steps: pd.DataFrame) -> list[tuple[int, Prompt]]:
    """All prompts sent to the model over the steps of one unit, as ``(step, prompt)``.

    Reads the ``prompts`` JSON of every step (in step order); mask prompts carry no geometry and
    are left out; a prompt re-sent at a later step is listed once, at its first step.
    """
    out: list[tuple[int, Prompt]] = []
    seen: set[str] = set()
    if unit_steps.empty or "prompts" not in unit_steps.columns:
        return out
    for row in unit_steps.sort_values("step").itertuples(index=False):
        text = row.prompts
        if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
            continue
        data = json.loads(text) if isinstance(text, str) else text
        items = data.get("prompts", []) if isinstance(data, Mapping) else data
        for item in items or []:
            if not isinstance(item, Mapping) or item.get("type") in ("mask", "zlimit"):
                continue
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            try:
                out.append((int(row.step), prompt_from_dict(item)))
            except (KeyError, TypeError, ValueError) as error:
                log.warning("unreadable prompt %s at step %s: %s", item, row.step, error)
    return out


def prompts_on_slice(prompts: Iterable[tuple[int, Prompt]], z: int) -> list[Prompt]:
    """The prompts that touch axial slice ``z`` (the prompt's own geometry: a 3D box if ``z``
    lies in its half-open range, a scribble if one of its voxels lies on ``z``)."""
    return [p for _, p in prompts if p.touches(z)]


def _prompt_yx(p: Prompt, z: int) -> list[tuple[float, float]]:
    """(y, x) extent points of a prompt on slice ``z`` (for the view window)."""
    if isinstance(p, Point):
        return [(p.zyx[1], p.zyx[2])]
    if isinstance(p, Box2D):
        return [(p.lo[0], p.lo[1]), (p.hi[0] - 1, p.hi[1] - 1)]
    if isinstance(p, Box3D):
        return [(p.lo[1], p.lo[2]), (p.hi[1] - 1, p.hi[2] - 1)]
    if isinstance(p, Scribble):
        return [(v[1], v[2]) for v in p.voxels if v[0] == z]
    if isinstance(p, Lasso):
        return list(p.polygon)
    return []


def view_window(
    target: npt.NDArray[np.bool_],
    prediction: npt.NDArray[np.bool_],
    slices: Sequence[int],
    prompts: Iterable[tuple[int, Prompt]] = (),
    *,
    margin: float = 0.5,
    min_margin: int = 16,
) -> tuple[int, int, int, int]:
    """Half-open in-plane window ``(y0, y1, x0, x1)`` shared by all shown slices.

    The bounding box of target, prediction and the prompts on ``slices``, widened on each side
    by ``max(min_margin, margin × its size)`` voxels and clipped to the image; the whole slice
    when there is nothing to frame.
    """
    _, ny, nx = target.shape
    zs = list(slices)
    fg = (np.asarray(target, dtype=bool)[zs] | np.asarray(prediction, dtype=bool)[zs]).any(axis=0)
    ys, xs = np.nonzero(fg)
    pts = [yx for z in zs for p in prompts_on_slice(list(prompts), z) for yx in _prompt_yx(p, z)]
    all_y = [*ys.tolist(), *(float(y) for y, _ in pts)]
    all_x = [*xs.tolist(), *(float(x) for _, x in pts)]
    if not all_y:
        return 0, ny, 0, nx
    y0, y1 = math.floor(min(all_y)), math.floor(max(all_y)) + 1
    x0, x1 = math.floor(min(all_x)), math.floor(max(all_x)) + 1
    my = max(min_margin, math.ceil(margin * (y1 - y0)))
    mx = max(min_margin, math.ceil(margin * (x1 - x0)))
    return max(0, y0 - my), min(ny, y1 + my), max(0, x0 - mx), min(nx, x1 + mx)


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


def _window(image: npt.NDArray) -> tuple[float, float]:
    values = np.asarray(image, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _contours(mask: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Iso-0.5 contours of a 2D mask as (row, col) arrays, closed at the image border."""
    from skimage.measure import find_contours

    if not mask.any():
        return []
    padded = np.pad(mask.astype(float), 1)
    return [c - 1.0 for c in find_contours(padded, 0.5)]


def _draw_prompts(ax: Any, prompts: Sequence[Prompt], z: int) -> None:
    from matplotlib.patches import Polygon, Rectangle

    for p in prompts:
        if isinstance(p, Point):
            colour = POSITIVE_COLOUR if p.positive else NEGATIVE_COLOUR
            marker = "+" if p.positive else "x"
            ax.plot(p.zyx[2], p.zyx[1], marker=marker, color=colour, ms=9, mew=2, ls="", zorder=4)
        elif isinstance(p, Box2D | Box3D):
            lo, hi = (p.lo, p.hi) if isinstance(p, Box2D) else (p.lo[1:], p.hi[1:])
            ax.add_patch(
                Rectangle(
                    (lo[1] - 0.5, lo[0] - 0.5),
                    hi[1] - lo[1],
                    hi[0] - lo[0],
                    fill=False,
                    edgecolor=POSITIVE_COLOUR,
                    linewidth=1.2,
                    linestyle="-" if isinstance(p, Box2D) else "--",
                    zorder=3,
                )
            )
        elif isinstance(p, Scribble):
            vox = p.array()
            vox = vox[vox[:, 0] == z]
            colour = POSITIVE_COLOUR if p.positive else NEGATIVE_COLOUR
            ax.plot(vox[:, 2], vox[:, 1], ".", color=colour, ms=3, zorder=4)
        elif isinstance(p, Lasso):
            xy = [(x, y) for y, x in p.polygon]
            colour = POSITIVE_COLOUR if p.positive else NEGATIVE_COLOUR
            ax.add_patch(
                Polygon(xy, closed=True, fill=False, edgecolor=colour, linewidth=1.2, zorder=3)
            )


def _title(final: Mapping[str, Any]) -> str:
    user = _user(final.get("user"))
    who = f"{final.get('model')}, {final.get('prompter')}" + (f", {user}" if user else "")
    dice = pd.to_numeric(pd.Series([final.get("dice")]), errors="coerce").iloc[0]
    dice_text = "n/a" if pd.isna(dice) else f"{dice:.2f}"
    return (
        f"{final.get('dataset')}/{final.get('case_id')} {final.get('target')} — {who} — "
        f"Dice {dice_text} (step {int(final.get('step', 0))})"
    )


def _draw(
    path: Path,
    image: npt.NDArray,
    target: npt.NDArray[np.bool_],
    prediction: npt.NDArray[np.bool_],
    spacing_mm: Sequence[float],
    slices: Sequence[int],
    prompts: Sequence[tuple[int, Prompt]],
    title: str,
    crop: bool = True,
) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    aspect = float(spacing_mm[1]) / float(spacing_mm[2])
    _, ny, nx = image.shape
    y0, y1, x0, x1 = view_window(target, prediction, slices, prompts) if crop else (0, ny, 0, nx)
    panel_h = 4.0
    panel_w = float(np.clip(panel_h * (x1 - x0) / ((y1 - y0) * aspect), 2.0, 8.0))
    fig = Figure(figsize=(panel_w * len(slices), panel_h + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(slices), squeeze=False)[0])
    for ax, z in zip(axes, slices, strict=True):
        plane = image[z]
        vmin, vmax = _window(plane)
        ax.imshow(
            plane,
            cmap="gray",
            vmin=vmin,
            vmax=vmax,
            aspect=aspect,
            interpolation="nearest",
            origin="lower",  # anterior (high y) up
        )
        for c in _contours(target[z]):
            ax.plot(c[:, 1], c[:, 0], color=TARGET_COLOUR, linewidth=1.2)
        for c in _contours(prediction[z]):
            ax.plot(c[:, 1], c[:, 0], color=PREDICTION_COLOUR, linewidth=1.0)
        on_slice = prompts_on_slice(prompts, z)
        _draw_prompts(ax, on_slice, z)
        ax.set_xlim(x1 - 0.5, x0 - 0.5)  # radiological: patient's right (high x) on the left
        ax.set_ylim(y0 - 0.5, y1 - 0.5)
        ax.set_title(f"z = {z} ({len(on_slice)} prompt{'s' if len(on_slice) != 1 else ''})")
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        Line2D([], [], color=TARGET_COLOUR, label="target"),
        Line2D([], [], color=PREDICTION_COLOUR, label="prediction"),
        Line2D([], [], color=POSITIVE_COLOUR, marker="+", ls="", label="positive prompt"),
        Line2D([], [], color=NEGATIVE_COLOUR, marker="x", ls="", label="negative prompt"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def _overlay_unit(
    unit_id: str,
    unit_steps: pd.DataFrame,
    datasets: DatasetFolders,
    where: tuple[str | None, int | None],
    out_dir: Path,
    max_slices: int,
    crop: bool,
) -> Path:
    from radioactive.data import load_label

    final = unit_steps.sort_values("step").iloc[-1].to_dict()
    path_text = final.get("prediction_path")
    if not isinstance(path_text, str) or not path_text:
        raise LookupError("its final step has no saved prediction (run with save_predictions)")
    root, label_value = where
    ds = datasets.find(str(final["dataset"]), root)
    case = ds.case(str(final["case_id"]))
    names = [t.name for t in case.targets]
    target = next((t for t in case.targets if t.name == final["target"]), None)
    if target is None or (label_value is not None and target.label_value != label_value):
        raise LookupError(
            f"case {final['case_id']} in {ds.root} has no target {final['target']!r}"
            + (f" of label value {label_value}" if label_value is not None else "")
            + f" (targets: {names}); were the labels or the target rules changed?"
        )
    image = case.image
    prediction = load_label(path_text).array.astype(bool)
    if prediction.shape != image.shape:
        raise ValueError(
            f"prediction {path_text} has canonical shape {prediction.shape}, "
            f"the image {image.shape}"
        )
    mask = target.mask
    slices = key_slices(mask, prediction, max_slices)
    prompts = unit_prompts(unit_steps)
    return _draw(
        out_dir / f"overlay_{unit_id}.png",
        image.array,
        mask,
        prediction,
        image.spacing_mm,
        slices,
        prompts,
        _title(final),
        crop,
    )


def make_overlays(
    steps: pd.DataFrame | ResultsView,
    runs: pd.DataFrame | None,
    out_dir: str | Path,
    *,
    n_worst: int = 3,
    units: list[str] | None = None,
    max_slices: int = 3,
    crop: bool = True,
) -> list[Path]:
    """Draw one ``overlay_<unit_id>.png`` per chosen unit into ``out_dir``; return the paths.

    Args:
        steps: a :class:`ResultsView` of the store (its ``units`` give each unit's dataset
            folder and label value), or the store's ``steps()`` DataFrame.
        runs: the store's ``runs()`` DataFrame (the run configuration's target rules; the
            dataset folders of stores whose units do not record theirs); ``None``: the view's.
        out_dir: where the PNGs go (created when something is drawn).
        n_worst: default choice: this many units with the lowest final Dice, plus the best one
            (among scored units with a saved prediction).
        units: draw these unit ids instead (in this order).
        max_slices: at most this many axial slices per unit.
        crop: zoom every slice to the target, prediction and prompts (with a margin); false
            shows whole slices.

    A unit that cannot be drawn is logged as a warning and skipped.
    """
    out = Path(out_dir)
    if steps is None or (isinstance(steps, pd.DataFrame) and "unit_id" not in steps.columns):
        return []
    if isinstance(steps, pd.DataFrame) and steps.empty:
        return []
    view = as_view(steps)
    runs = view.runs if runs is None else runs
    chosen = list(units) if units is not None else choose_units(view, n_worst)
    datasets = DatasetFolders(dataset_roots(runs), run_configs(runs))
    paths: list[Path] = []
    for unit_id in chosen:
        unit_steps = view.steps[view.steps["unit_id"] == unit_id]
        if unit_steps.empty:
            log.warning("overlay of unit %s skipped: no such unit in the results", unit_id)
            continue
        try:
            where = recorded(view.units, unit_id)
            paths.append(_overlay_unit(unit_id, unit_steps, datasets, where, out, max_slices, crop))
        except Exception as error:  # one unit must not stop the others
            log.warning("overlay of unit %s skipped: %s", unit_id, error)
    return paths
