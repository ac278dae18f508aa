"""Reuse of an output folder never mixes or keeps stale numbers (issue: "Silent wrong numbers on
reuse of an output folder"), and a fixed load error is recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from radioactive.runner.config import config_from_dict
from radioactive.runner.run import run_experiment
from radioactive.runner.stale import StaleResultsError
from radioactive.runner.store import ResultStore, migrate_store
from tests.conftest import write_nifti
from tests.runner.tiny_dataset import config, label_map, write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "Dataset001_Tiny")


def _final(out: Path) -> pd.DataFrame:
    """(case, target) → the stored prompts (boxes around the label) and Dice."""
    with ResultStore(out, read_only=True) as store:
        return store.steps().set_index(["case_id", "target"])[["prompts", "dice"]]


def _units(out: Path) -> pd.DataFrame:
    with ResultStore(out, read_only=True) as store:
        return store.units()


def test_an_edited_label_file_recomputes_its_units(dataset: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(config(dataset, "box_per_slice"))
    out = tmp_path / "out"
    run_experiment(cfg, out)
    before = _final(out)
    # the annotator fixes c1's label: the cube moves, the ball stays
    write_nifti(dataset / "labelsTr" / "c1.nii.gz", label_map(shift=3))
    report = run_experiment(cfg, out)
    assert report.units_written == 2 and report.units_replaced == 2  # c1's two targets
    after = _final(out)
    assert len(after) == 4  # no duplicates
    fresh = tmp_path / "fresh"
    run_experiment(cfg, fresh)
    pd.testing.assert_frame_equal(after.sort_index(), _final(fresh).sort_index())
    assert after.loc[("c2", "cube"), "prompts"] == before.loc[("c2", "cube"), "prompts"]
    assert after.loc[("c1", "cube"), "prompts"] != before.loc[("c1", "cube"), "prompts"]


def test_changed_target_rules_drop_the_targets_gone(dataset: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(config(dataset, "box_per_slice"))
    out = tmp_path / "out"
    run_experiment(cfg, out)
    meta = json.loads((dataset / "dataset.json").read_text())
    meta["radioactive"] = {"targets": {"exclude": [2]}}  # the cube is no longer a target
    (dataset / "dataset.json").write_text(json.dumps(meta))
    report = run_experiment(cfg, out)
    units = _units(out)
    assert sorted(units["target"]) == ["ball", "ball"]  # the stale cube units are gone
    assert report.units_replaced == 4  # 2 ball units recomputed (new rules), 2 cube units gone
    fresh = tmp_path / "fresh"
    run_experiment(cfg, fresh)
    assert sorted(_units(fresh)["unit_id"]) == sorted(units["unit_id"])


@pytest.mark.parametrize(
    ("extra", "changed"),
    [
        ({"metrics": {"nsd_tolerance_mm": 3.0}}, "metrics.nsd_tolerance_mm (2.0 → 3.0)"),
        ({"stopping": {"dice_target": 0.9}}, "stopping.dice_target (None → 0.9)"),
    ],
)
def test_changed_settings_are_refused_or_replaced(
    dataset: Path, tmp_path: Path, extra: dict, changed: str
) -> None:
    out = tmp_path / "out"
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    before = _units(out)
    changed_cfg = config_from_dict(config(dataset, "box_per_slice", **extra))
    with pytest.raises(StaleResultsError) as info:
        run_experiment(changed_cfg, out)
    message = str(info.value)
    assert changed in message and "4 stored units" in message
    assert "--replace-stale" in message and "--out" in message
    pd.testing.assert_frame_equal(_units(out), before)  # nothing ran, nothing written
    report = run_experiment(changed_cfg, out, replace_stale=True)
    assert report.units_replaced == 4 and report.units_written == 4
    with ResultStore(out, read_only=True) as store:
        summary = store.summary()
    assert [g["n_targets"] for g in summary["final"]] == [4]  # not 8: one setting only
    assert set(_units(out)["unit_id"]).isdisjoint(before["unit_id"])


def test_a_changed_model_option_is_refused(dataset: Path, tmp_path: Path) -> None:
    data = config(dataset, "box_per_slice")
    data["models"] = [{"name": "random_walker", "options": {"beta": 5000.0}}]
    out = tmp_path / "out"
    assert run_experiment(config_from_dict(data), out).units_failed == 0
    data["models"] = [{"name": "random_walker", "options": {"beta": 100.0}}]
    with pytest.raises(StaleResultsError, match=r"model\.options\.beta \(5000\.0 → 100\.0\)"):
        run_experiment(config_from_dict(data), out)


def test_other_prompters_in_the_same_folder_are_kept(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    run_experiment(config_from_dict(config(dataset, "box_3d")), out)
    assert len(_units(out)) == 8
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    assert len(_units(out)) == 8


@pytest.mark.parametrize("retry_errors", [True, False])
def test_a_fixed_load_error_is_recomputed(
    dataset: Path, tmp_path: Path, retry_errors: bool
) -> None:
    cfg = config_from_dict(config(dataset, "box_per_slice"))
    out = tmp_path / "out"
    label = dataset / "labelsTr" / "c2.nii.gz"
    good = label.read_bytes()
    label.write_bytes(b"not a nifti file")
    report = run_experiment(cfg, out)
    assert report.units_failed == 1
    units = _units(out)
    assert units.loc[units["case_id"] == "c2", "prompter"].tolist() == ["*"]
    label.write_bytes(good)
    run_experiment(cfg, out, retry_errors=retry_errors)
    units = _units(out)
    assert set(units["status"]) == {"ok"} and len(units) == 4
    assert "*" not in set(units["prompter"])


def test_units_of_a_migrated_store_are_not_computed_beside(dataset: Path, tmp_path: Path) -> None:
    """Units written before schema 2 carry no settings: a run that would compute them again
    refuses, and --replace-stale replaces them."""
    cfg = config_from_dict(config(dataset, "box_per_slice"))
    out = tmp_path / "out"
    run_experiment(cfg, out)
    with ResultStore(out) as store:  # make it look like a migrated schema-1 store
        store._con.execute("UPDATE units SET versions = NULL, slot_id = NULL, unit_id = 'old-' "
                           "|| unit_id")  # fmt: skip
        store._con.execute("UPDATE step_rows SET unit_id = 'old-' || unit_id")
    assert "nothing to do" in migrate_store(out)
    with pytest.raises(StaleResultsError, match="written before results schema 2"):
        run_experiment(cfg, out)
    report = run_experiment(cfg, out, replace_stale=True)
    assert report.units_replaced == 4 and len(_units(out)) == 4
