"""Propagation diagnostics of stored units: the prompted slices, which units are propagated, what
a run stores, and stores of schema 2 (read as they are, upgraded to write, migrated)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pytest

from radioactive.models.base import Capabilities
from radioactive.prompts import get_prompter
from radioactive.prompts.types import Box2D, Box3D, Point, ZLimit
from radioactive.records import UNIT_COLUMNS
from radioactive.runner.config import config_from_dict
from radioactive.runner.diagnostics import (
    DIAGNOSTIC_COLUMNS,
    prompted_slices,
    propagates,
    unit_diagnostics,
)
from radioactive.runner.run import run_experiment
from radioactive.runner.store import SCHEMA_VERSION, ResultStore, migrate_store
from tests.runner.tiny_dataset import config, write_dataset


def _target() -> np.ndarray:
    target = np.zeros((16, 20, 20), dtype=bool)
    target[3:12, 5:15, 4:14] = True
    return target


def _oracle(target: np.ndarray):
    return lambda z, prompts: target[z]


def test_propagated_prompts_are_not_prompted_slices() -> None:
    target = _target()
    inter = get_prompter("box_propagation").initial(
        target, np.random.default_rng(0), _oracle(target)
    )
    assert set(inter.slices) == set(range(3, 12))  # the model got a box on every slice
    assert prompted_slices([inter]) == (7,)  # the user drew one, on the median slice
    assert prompted_slices([inter.to_dict(), None]) == (7,)
    assert prompted_slices([json.dumps(inter.to_dict())]) == (7,)


def test_a_3d_box_counts_its_middle_slice_and_z_limits_none() -> None:
    target = _target()
    (box,) = get_prompter("box_3d").initial(target, np.random.default_rng(0)).user_prompts
    assert isinstance(box, Box3D) and (box.lo[0], box.hi[0]) == (3, 12)
    assert prompted_slices([{"user_prompts": [box.to_dict()]}]) == (7,)  # floor((3 + 11) / 2)
    user = [Point((2, 1, 1), True), Box2D(9, (0, 0), (2, 2)), ZLimit(0, False), ZLimit(15, True)]
    assert prompted_slices([{"user_prompts": [p.to_dict() for p in user]}]) == (2, 9)


def test_which_units_are_propagated() -> None:
    slicewise = SimpleNamespace(capabilities=Capabilities(2, frozenset({"box2d"}),
                                                          slice_predictor=True))  # fmt: skip
    plain3d = SimpleNamespace(capabilities=Capabilities(3, frozenset({"point"})))
    video = SimpleNamespace(capabilities=Capabilities(3, frozenset({"box2d"}), propagates=True))
    assert propagates(get_prompter("box_propagation"), slicewise)
    assert not propagates(get_prompter("box_per_slice"), slicewise)
    assert propagates(get_prompter("cvpr25_box"), slicewise)  # it propagates with a predictor
    assert not propagates(get_prompter("cvpr25_box"), plain3d)
    assert not propagates(get_prompter("cvpr25_box"), slicewise, slice_predictor_given=False)
    assert propagates(get_prompter("box_3d"), video)
    from radioactive.models.sam2_video import SAM2VideoModel

    assert SAM2VideoModel.capabilities.propagates


def test_unit_diagnostics_need_a_prediction_and_a_prompted_slice() -> None:
    target = _target()
    inter = get_prompter("box_3d").initial(target, np.random.default_rng(0))
    assert unit_diagnostics(None, target, [inter], (1.0, 1.0, 1.0), propagated=True) == {
        "propagates": True
    }
    assert unit_diagnostics(target, target, [None], (1.0, 1.0, 1.0), propagated=False) == {
        "propagates": False
    }
    pred = target.copy()
    pred[12:14] = True
    out = unit_diagnostics(pred, target, [inter], (2.0, 1.0, 1.0), propagated=True)
    assert set(out) == set(DIAGNOSTIC_COLUMNS)
    assert (out["overprop_below"], out["overprop_above"], out["overprop_slices"]) == (0, 2, 2)
    assert out["overprop_voxels"] == 2 * 400 and out["overprop_mm"] == 4.0
    assert out["propagation"]["key_slices"] == [7]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "Dataset001_Tiny", cases=("c1",))


def _units(out: Path) -> dict[tuple[str, str], dict]:
    with ResultStore(out, read_only=True) as store:
        units, steps = store.units(), store.steps()
    rows = {}
    for unit in units.to_dict("records"):
        prompts = steps.loc[steps["unit_id"] == unit["unit_id"], "prompts"]
        rows[(unit["target"], unit["prompter"])] = {**unit, "stored_prompts": list(prompts)}
    return rows


def test_a_run_stores_the_diagnostics_of_every_unit(dataset: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(config(dataset, "box_propagation", "box_per_slice"))
    out = tmp_path / "out"
    run_experiment(cfg, out)
    units = _units(out)
    assert len(units) == 4
    for (_target, prompter), unit in units.items():
        data = json.loads(unit["propagation"])
        # the prompted slices are those of the stored interactions
        assert data["key_slices"] == list(prompted_slices(unit["stored_prompts"]))
        assert unit["propagates"] == (prompter == "box_propagation")
        # the z-limits the user gives stop the propagation at the target's ends
        assert unit["overprop_slices"] == unit["overprop_voxels"] == unit["overprop_mm"] == 0
        assert data["bins"]["0"] is not None
        if prompter.startswith("box_per_slice"):  # every target slice prompted: distance 0
            assert [d for d, _, _ in data["dice_by_distance"]] == [0]
        else:
            assert len(data["key_slices"]) == 1 and len(data["dice_by_distance"]) > 1
    ball = json.loads(units[("ball", "box_propagation")]["propagation"])
    assert ball["slope"] < 0  # the median slice's box fits the ball worse away from it
    # the unit's identity does not hold the diagnostics
    versions = json.loads(units[("ball", "box_propagation")]["versions"])
    assert "propagation" not in json.dumps(versions).replace("box_propagation", "")


def _make_schema_2(out: Path) -> None:
    """Turn a store into the layout schema 2 had: no diagnostic columns, version 2."""
    old = [c for c in UNIT_COLUMNS if c not in DIAGNOSTIC_COLUMNS]
    con = duckdb.connect(str(out / "results.duckdb"))
    quoted = ", ".join(f'"{c}"' for c in old)
    con.execute(f"CREATE TABLE units_2 AS SELECT {quoted} FROM units")
    con.execute("DROP TABLE units")
    con.execute("ALTER TABLE units_2 RENAME TO units")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()


def test_a_schema_2_store_is_read_as_is_and_upgraded_to_resume(
    dataset: Path, tmp_path: Path
) -> None:
    from radioactive.report.propagation import propagation_table
    from radioactive.report.view import ResultsView

    cfg = config_from_dict(config(dataset, "box_propagation"))
    out = tmp_path / "out"
    run_experiment(cfg, out)
    _make_schema_2(out)
    with ResultStore(out, read_only=True) as store:
        assert "propagates" not in store.units().columns and len(store.units()) == 2
    assert propagation_table(ResultsView.from_store(out, n_boot=10)).empty
    report = run_experiment(cfg, out)  # resumes: same unit ids, nothing computed again
    assert report.units_written == 0 and report.units_already_done == 2
    with ResultStore(out, read_only=True) as store:
        units = store.units()
        version = store._con.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone() == (str(SCHEMA_VERSION),)
    assert list(units.columns) == list(UNIT_COLUMNS)
    assert units["propagation"].isna().all()  # not computed for units already there


def test_migrate_converts_a_schema_2_store(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment(config_from_dict(config(dataset, "box_propagation")), out)
    _make_schema_2(out)
    line = migrate_store(out)
    assert f"migrated from schema 2 to {SCHEMA_VERSION}" in line and "propagates" in line
    assert "nothing to do" in migrate_store(out)
    with ResultStore(out) as store:
        assert list(store.units().columns) == list(UNIT_COLUMNS)
