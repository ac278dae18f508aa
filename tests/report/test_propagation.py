"""The report's propagation diagnostics: the table's means by hand, and the table, figure and HTML
section of a small run with a propagating prompter (and none without one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radioactive.report.plots import draw_figures
from radioactive.report.propagation import (
    PROPAGATION_COLUMNS,
    dice_by_distance,
    propagation_table,
)
from radioactive.report.tables import build_tables
from radioactive.report.view import ResultsView
from radioactive.runner.config import config_from_dict
from radioactive.runner.run import run_experiment
from tests.runner.tiny_dataset import config, write_dataset


def _unit(uid: str, dataset: str, slices: int, mm: float, curve: list, propagates: bool = True):
    bins = {"0": curve[0][1], "1-5": None, "6-10": None, ">10": None}
    near = [v for d, v, _ in curve if 1 <= d <= 5]
    if near:
        bins["1-5"] = float(np.mean(near))
    data = {"dice_by_distance": curve, "bins": bins, "slope": -0.1}
    unit = {
        "unit_id": uid,
        "status": "ok",
        "propagates": propagates,
        "overprop_slices": slices,
        "overprop_mm": mm,
        "overprop_voxels": 10 * slices,
        "propagation": json.dumps(data),
    }
    step = {
        "unit_id": uid,
        "dataset": dataset,
        "case": uid,
        "target": "t",
        "model": "video",
        "prompter": "box_3d",
        "user": "",
        "seed": 0,
        "step": 0,
        "status": "ok",
        "dice": 0.8,
    }
    return unit, step


def _view() -> ResultsView:
    made = [
        _unit("a", "D1", 0, 0.0, [[0, 1.0, 1], [1, 0.8, 2]]),
        _unit("b", "D1", 2, 5.0, [[0, 0.6, 1], [1, 0.4, 2]]),
        _unit("c", "D2", 1, 3.0, [[0, 0.9, 1], [2, 0.5, 2]]),
        _unit("d", "D2", 4, 8.0, [[0, 0.0, 1]], propagates=False),  # not a propagation unit
    ]
    units = pd.DataFrame([u for u, _ in made])
    steps = pd.DataFrame([s for _, s in made])
    return ResultsView.from_frames(steps, units, n_boot=10)


def test_table_means_over_units_then_datasets() -> None:
    table = propagation_table(_view())
    assert list(table.columns) == list(PROPAGATION_COLUMNS)
    row = table.loc[("video", "box_3d", "–")]
    assert row["n units"] == 3
    assert row["over-propagated slices"] == pytest.approx((1.0 + 1.0) / 2)  # D1 (0+2)/2, D2 1
    assert row["units over-propagating (%)"] == pytest.approx((50.0 + 100.0) / 2)
    assert row["over-propagation (mm)"] == pytest.approx((2.5 + 3.0) / 2)
    assert row["Dice d=0"] == pytest.approx((80.0 + 90.0) / 2)
    assert row["Dice d=1-5"] == pytest.approx((60.0 + 50.0) / 2)
    assert np.isnan(row["Dice d=6-10"]) and np.isnan(row["Dice d>10"])
    assert row["Dice slope per slice"] == pytest.approx(-10.0)


def test_curve_per_distance() -> None:
    curve = dice_by_distance(_view()).set_index("distance")
    assert curve.loc[0, "mean"] == pytest.approx((0.8 + 0.9) / 2)
    assert curve.loc[1, "mean"] == pytest.approx(0.6) and curve.loc[1, "n_units"] == 2
    assert curve.loc[2, "mean"] == pytest.approx(0.5) and curve.loc[2, "n_units"] == 1


def test_no_propagation_units_no_table() -> None:
    view = _view()
    view.units["propagates"] = False
    assert propagation_table(view).empty and dice_by_distance(view).empty
    assert propagation_table(ResultsView.from_frames(view.steps)).empty  # no units table


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("propagation_report")
    dataset = write_dataset(tmp / "Dataset001_Tiny", cases=("c1",))
    out = {}
    for name, prompters in (("with", ("box_propagation", "box_per_slice")),
                            ("without", ("box_per_slice",))):  # fmt: skip
        out[name] = tmp / name
        run_experiment(config_from_dict(config(dataset, *prompters)), out[name])
    return out


def test_a_run_with_a_propagating_prompter_has_the_table_and_figure(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    from radioactive.report.html import build_report

    view = ResultsView.from_store(runs["with"], n_boot=10)
    table = build_tables(view)["propagation"]
    assert list(table.index) == [("filled_box", "box_propagation", "–")]  # not box_per_slice
    assert table.iloc[0]["n units"] == 2 and table.iloc[0]["over-propagated slices"] == 0
    assert "dice_vs_distance" in draw_figures(view)
    report = build_report(runs["with"], tmp_path / "report")
    assert (tmp_path / "report" / "tables" / "propagation.csv").is_file()
    assert any(p.name == "dice_vs_distance.png" for p in report.figures)
    page = report.html.read_text(encoding="utf-8")
    assert "Propagation diagnostics" in page and "dice vs distance" in page


def test_a_run_without_propagation_has_neither(runs: dict[str, Path], tmp_path: Path) -> None:
    from radioactive.report.html import build_report

    view = ResultsView.from_store(runs["without"], n_boot=10)
    assert "propagation" not in build_tables(view)
    assert "dice_vs_distance" not in draw_figures(view)
    report = build_report(runs["without"], tmp_path / "report")
    assert not (tmp_path / "report" / "tables" / "propagation.csv").exists()
    assert "Propagation diagnostics" not in report.html.read_text(encoding="utf-8")
