"""Case overlays: slice choice, prompt extraction by hand, and a real run drawn from its store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from radioactive.prompts.types import Box2D, Box3D, Lasso, Point, Scribble
from radioactive.report import overlays
from radioactive.report.overlays import (
    choose_units,
    dataset_roots,
    key_slices,
    make_overlays,
    prompts_on_slice,
    unit_prompts,
    view_window,
)

# --------------------------------------------------------------------------------------------
# helpers, by hand
# --------------------------------------------------------------------------------------------


def test_key_slices_largest_target_then_largest_error() -> None:
    target = np.zeros((6, 8, 8), dtype=bool)
    target[1, :2, :2] = True  # area 4
    target[2, :3, :3] = True  # area 9: the largest
    target[4, :2, :3] = True  # area 6
    prediction = target.copy()
    prediction[4] = False  # error 6 on z = 4
    prediction[1, 5:, 5:] = True  # error 9 on z = 1: the largest
    assert key_slices(target, prediction, 2) == [1, 2]
    assert key_slices(target, prediction, 3) == [1, 2, 4]
    assert key_slices(target, prediction, 1) == [2]
    # perfect prediction: slices by target area
    assert key_slices(target, target, 2) == [2, 4]
    # nothing anywhere: the middle slice
    empty = np.zeros((5, 4, 4), dtype=bool)
    assert key_slices(empty, empty, 3) == [2]
    # ties go to the lower z
    tie = np.zeros((4, 4, 4), dtype=bool)
    tie[1, 0, 0] = tie[3, 0, 0] = True
    assert key_slices(tie, tie, 1) == [1]
    with pytest.raises(ValueError, match="equal 3D shapes"):
        key_slices(empty, tie, 1)


def _unit_steps(*interactions: list[dict], unit: str = "u1") -> pd.DataFrame:
    rows = []
    for step, prompts in enumerate(interactions):
        rows.append(
            {
                "unit_id": unit,
                "step": step,
                "prompts": json.dumps({"prompts": prompts, "user_prompts": [], "dof": 1}),
            }
        )
    return pd.DataFrame(rows[::-1])  # out of order on purpose


def test_unit_prompts_accumulate_all_steps_once_each() -> None:
    point = {"type": "point", "zyx": [3, 4, 5], "positive": True}
    negative = {"type": "point", "zyx": [2, 1, 1], "positive": False}
    box = {"type": "box2d", "z": 3, "lo": [1, 2], "hi": [5, 7]}
    box3d = {"type": "box3d", "lo": [1, 0, 0], "hi": [3, 4, 4]}
    scribble = {"type": "scribble", "voxels": [[2, 0, 0], [3, 0, 1]], "positive": False}
    lasso = {"type": "lasso", "z": 0, "polygon": [[0, 0], [0, 3], [3, 0]], "positive": True}
    mask = {"type": "mask", "shape": [1, 256, 256]}
    steps = _unit_steps([point, box], [point, negative, mask], [box3d, scribble, lasso])
    found = unit_prompts(steps)
    assert [s for s, _ in found] == [0, 0, 1, 2, 2, 2]
    kinds = [type(p) for _, p in found]
    assert kinds == [Point, Box2D, Point, Box3D, Scribble, Lasso]

    def on(z: int) -> list[str]:
        return [p.to_dict()["type"] for p in prompts_on_slice(found, z)]

    assert on(3) == ["point", "box2d", "scribble"]  # box3d is half-open: z = 3 is outside
    assert on(2) == ["point", "box3d", "scribble"]  # the negative point
    assert on(1) == ["box3d"]
    assert on(0) == ["lasso"]
    assert on(4) == []
    assert unit_prompts(pd.DataFrame({"unit_id": ["u"], "step": [0], "prompts": [None]})) == []


def test_choose_units_worst_then_best_with_a_saved_prediction() -> None:
    rows = []
    for unit, dice, path, status in [
        ("a", 0.9, "a.nii.gz", "ok"),
        ("b", 0.2, "b.nii.gz", "ok"),
        ("c", 0.1, None, "ok"),  # no saved prediction
        ("d", 0.3, "d.nii.gz", "stopped"),
        ("e", 0.0, "e.nii.gz", "error"),  # failed unit
        ("f", 0.5, "f.nii.gz", "ok"),
        ("g", float("nan"), "g.nii.gz", "ok"),  # no Dice
    ]:
        rows.append(
            {"unit_id": unit, "step": 0, "dice": 1.0, "status": "ok", "prediction_path": None}
        )
        rows.append(
            {"unit_id": unit, "step": 1, "dice": dice, "status": status, "prediction_path": path}
        )
    steps = pd.DataFrame(rows)
    assert choose_units(steps, n_worst=2) == ["b", "d", "a"]
    assert choose_units(steps, n_worst=3) == ["b", "d", "f", "a"]
    assert choose_units(steps, n_worst=10) == ["b", "d", "f", "a"]
    assert choose_units(steps, n_worst=0) == ["a"]
    assert choose_units(steps.drop(columns="prediction_path")) == []


def test_dataset_roots_and_view_window() -> None:
    runs = pd.DataFrame(
        {"dataset_checksums": ['{"/d/A": "x", "/d/B": null}', None, '{"/d/A": "y"}', "oops"]}
    )
    assert dataset_roots(runs) == [Path("/d/A"), Path("/d/B")]
    assert dataset_roots(pd.DataFrame()) == []

    target = np.zeros((3, 100, 80), dtype=bool)
    target[1, 40:50, 30:36] = True
    window = view_window(target, target, [1], margin=0.5, min_margin=4)
    assert window == (35, 55, 26, 40)  # margins: max(4, 5) rows, max(4, 3) columns
    point = [(0, Point((1, 90, 10)))]
    assert view_window(target, target, [1], point, margin=0, min_margin=0) == (40, 91, 10, 36)
    assert view_window(target, target, [0], point) == (0, 100, 0, 80)  # nothing on z = 0


# --------------------------------------------------------------------------------------------
# a real run
# --------------------------------------------------------------------------------------------


def _read(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from radioactive.runner.store import ResultStore

    with ResultStore(directory, read_only=True) as store:
        return store.steps(), store.runs()


@pytest.mark.registry
def test_overlay_of_a_real_run(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radioactive.data import open_dataset

    steps, runs = _read(saved_run)
    (unit_id,) = steps["unit_id"].unique()
    drawn: list[tuple[int, list]] = []
    real = overlays._draw_prompts

    def spy(ax, prompts, z):
        drawn.append((z, list(prompts)))
        real(ax, prompts, z)

    monkeypatch.setattr(overlays, "_draw_prompts", spy)
    (path,) = make_overlays(steps, runs, tmp_path / "overlays", max_slices=3)
    assert path == tmp_path / "overlays" / f"overlay_{unit_id}.png"
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    height, width = image.shape[:2]
    assert 400 <= height <= 800 and 3 * 200 <= width <= 3 * 1000  # 3 panels side by side
    assert image[..., :3].std() > 0.05  # not blank

    # the prompts drawn on each panel are the boxes of that slice, and they frame the target
    (root,) = json.loads(runs["dataset_checksums"].iloc[0])
    case = open_dataset(root).case("brain2")
    target = next(t for t in case.targets if t.name == steps["target"].iloc[0]).mask
    assert len(drawn) == 3
    for z, prompts in drawn:
        assert target[z].any()  # key slices of this small lesion all hold target
        (box,) = prompts  # box_per_slice: exactly one box on every target slice
        assert isinstance(box, Box2D) and box.z == z
        ys, xs = np.nonzero(target[z])
        assert box.lo == (ys.min(), xs.min()) and box.hi == (ys.max() + 1, xs.max() + 1)


@pytest.mark.registry
def test_one_broken_unit_does_not_stop_the_others(
    saved_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    steps, runs = _read(saved_run)
    (unit_id,) = steps["unit_id"].unique()
    gone = steps.assign(unit_id="gone", prediction_path=str(tmp_path / "missing.nii.gz"))
    both = pd.concat([gone, steps], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="radioactive.report.overlays"):
        paths = make_overlays(both, runs, tmp_path / "o", units=["nope", "gone", unit_id])
    assert [p.name for p in paths] == [f"overlay_{unit_id}.png"]
    assert "unit nope skipped" in caplog.text and "unit gone skipped" in caplog.text

    moved = runs.assign(dataset_checksums=json.dumps({str(tmp_path / "moved"): None}))
    with caplog.at_level(logging.WARNING, logger="radioactive.report.overlays"):
        assert make_overlays(steps, moved, tmp_path / "m") == []
    assert "was it moved" in caplog.text


@pytest.mark.registry
def test_overlay_finds_the_case_from_what_the_unit_recorded(
    saved_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The unit's dataset folder and label value find its case: no folder-name search."""
    from radioactive.report.view import ResultsView

    view = ResultsView.from_store(saved_run)
    (unit_id,) = view.finals["unit_id"]
    (root,) = view.units["dataset_root"]
    assert (Path(root) / "dataset.json").is_file() and view.units["label_value"].notna().all()
    nowhere = view.runs.assign(dataset_checksums=json.dumps({str(tmp_path / "moved"): None}))
    (path,) = make_overlays(view, nowhere, tmp_path / "o")
    assert path.name == f"overlay_{unit_id}.png"

    # a unit whose recorded label value is no longer its target's is refused, not misdrawn
    view.units["label_value"] = view.units["label_value"] + 100
    with caplog.at_level(logging.WARNING, logger="radioactive.report.overlays"):
        assert make_overlays(view, None, tmp_path / "p") == []
    assert "of label value" in caplog.text
