"""The typed unit identity: canonical specs, settings in the id, per-job stored units, skipped
units and what units record."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from radioactive.metrics import versions as metric_versions
from radioactive.prompts.cost import COST_VERSION
from radioactive.runner.config import config_from_dict, validate
from radioactive.runner.run import plan_experiment, run_experiment
from radioactive.runner.store import ResultStore
from tests.runner.tiny_dataset import config, write_dataset

CANONICAL = "box_interpolation(k=3, jitter=0, key_rounding='floor')"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "Dataset001_Tiny")


def _units(out: Path):
    with ResultStore(out, read_only=True) as store:
        return store.units()


def test_two_spellings_of_one_prompter_are_one_unit(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    both = config_from_dict(config(dataset, "box_interpolation", "box_interpolation(k=3)"))
    report = run_experiment(both, out)
    assert report.units_written == 4  # 2 cases × 2 targets, not 8
    units = _units(out)
    assert set(units["prompter"]) == {CANONICAL}
    # resuming with the other spelling writes nothing
    again = run_experiment(config_from_dict(config(dataset, "box_interpolation(k=3)")), out)
    assert again.units_written == 0 and again.units_already_done == 4
    assert again.units_replaced == 0
    other = run_experiment(config_from_dict(config(dataset, "box_interpolation")), out)
    assert other.units_written == 0
    assert sorted(_units(out)["unit_id"]) == sorted(units["unit_id"])


def test_units_record_root_label_value_and_versions(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    units = _units(out).set_index("target")
    assert set(units["dataset_root"]) == {str(dataset)}
    assert units.loc["ball", "label_value"].tolist() == [1, 1]
    assert units.loc["cube", "label_value"].tolist() == [2, 2]
    versions = json.loads(units["versions"].iloc[0])
    settings = versions["settings"]
    assert settings["prompter"] == "box_per_slice(jitter=0)@1" and settings["user"] is None
    assert settings["metric_versions"] == metric_versions()
    assert settings["effort"]["cost_version"] == COST_VERSION
    assert settings["effort"]["model"]["point_s"] == 1.75
    assert settings["effort"]["model"]["review_slice_s"] == 0.25
    assert settings["metrics"]["nsd_tolerance_mm"] == 2.0
    assert settings["model"] == {"name": "filled_box", "options": {}}
    assert "contract" in settings and settings["stopping"]["dice_target"] is None
    assert set(versions["data"]) == {"image", "label", "target_rules"}
    assert units["slot_id"].notna().all()


def test_the_settings_are_in_the_unit_id(dataset: Path) -> None:
    def ids(**extra: object) -> set[str]:
        cfg = config_from_dict(config(dataset, "box_per_slice", **extra))
        plan = plan_experiment(cfg, validate(cfg), Path("unused"))
        return {job.context for job in plan.jobs}

    base = ids()
    assert ids(metrics={"nsd_tolerance_mm": 3.0}) != base
    assert ids(stopping={"dice_target": 0.9}) != base
    assert ids(output="elsewhere") == base
    assert ids(report={"inter_rater_dice": {"Tiny": 0.8}}) == base  # read by the report only


def test_case_jobs_carry_only_their_own_stored_units(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = config_from_dict(config(dataset, "box_per_slice"))
    run_experiment(cfg, out)
    with ResultStore(out, read_only=True) as store:
        stored = store.stored_units()
    plan = plan_experiment(cfg, validate(cfg), out, stored=stored)
    by_case = {j.case_id: j for j in plan.jobs}
    units = _units(out)
    for case_id, job in by_case.items():
        assert job.finished == set(units.loc[units["case_id"] == case_id, "unit_id"])
        assert {u.unit_id for u in job.stored} == job.finished
        assert pickle.loads(pickle.dumps(job)) == job  # frozen and picklable
        with pytest.raises(AttributeError):
            job.case_id = "other"  # type: ignore[misc]


def test_pairs_that_cannot_run_are_skipped_units(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = config_from_dict(config(dataset, "box_per_slice", "center_point_per_slice"))
    report = run_experiment(cfg, out)
    assert report.units_skipped == 1
    units = _units(out)
    skipped = units[units["status"] == "skipped"]
    assert len(skipped) == 1
    row = skipped.iloc[0]
    assert (row["case_id"], row["target"], row["prompter"]) == ("*", "*", "center_point_per_slice")
    assert "does not accept point prompts" in row["reason"] and row["n_steps"] == 0
    with ResultStore(out, read_only=True) as store:
        assert store.steps("unit_id = ?", [row["unit_id"]]).empty
    # a rerun with only the runnable prompter keeps it; the same config does not duplicate it
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    run_experiment(cfg, out)
    assert (_units(out)["status"] == "skipped").sum() == 1


def test_skipped_targets_and_dataset_problems_are_reported(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "Dataset002_Tiny")
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"]["cyst"] = 3  # declared, in no label map
    (root / "dataset.json").write_text(json.dumps(meta))
    (root / "imagesTr" / "orphan_0000.nii.gz").write_bytes(
        (root / "imagesTr" / "c1_0000.nii.gz").read_bytes()
    )  # an image without its label
    out = tmp_path / "out"
    report = run_experiment(config_from_dict(config(root, "box_per_slice")), out)
    assert report.units_written == 4 and report.units_skipped == 2
    assert any("orphan" in w for w in report.warnings), report.warnings
    assert "orphan" in (out / "run.log").read_text()
    units = _units(out)
    cyst = units[units["target"] == "cyst"]
    assert list(cyst["status"]) == ["skipped", "skipped"] and cyst["reason"].notna().all()
    assert set(cyst["prompter"]) == {"*"}
    assert any("cyst" in line for line in report.skipped_combos)
    # a rerun does not write them again
    assert run_experiment(config_from_dict(config(root, "box_per_slice")), out).units_skipped == 0


def test_run_refuses_a_misspelt_model_next_to_a_valid_one(dataset: Path, tmp_path: Path) -> None:
    from radioactive.errors import RadioactiveError

    data = config(dataset, "box_per_slice")
    data["models"] = [{"name": "filled_box"}, {"name": "random_walkr"}]
    with pytest.raises(RadioactiveError, match="did you mean 'random_walker'"):
        run_experiment(config_from_dict(data), tmp_path / "out")
    assert not (tmp_path / "out" / "results.duckdb").exists()


def test_a_new_prompter_version_is_a_new_unit(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompter whose version changes makes other numbers: its units are stale, not reused."""
    from radioactive.prompts.static import BoxPerSlice
    from radioactive.runner.stale import StaleResultsError

    out = tmp_path / "out"
    run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    before = set(_units(out)["unit_id"])
    monkeypatch.setattr(BoxPerSlice, "version", "99")
    with pytest.raises(StaleResultsError, match="prompter"):
        run_experiment(config_from_dict(config(dataset, "box_per_slice")), out)
    report = run_experiment(config_from_dict(config(dataset, "box_per_slice")), out,
                            replace_stale=True)  # fmt: skip
    assert report.units_written == 4 and report.units_replaced == 4
    assert set(_units(out)["unit_id"]).isdisjoint(before)


def test_the_cvpr25_preset_runs_with_its_scoring_rules(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = config(dataset, "box_per_slice")
    data["models"] = [{"name": "random_walker"}]
    data["interactive"] = [{"preset": "cvpr25"}, {"preset": "cvpr25_no_box"}]
    report = run_experiment(config_from_dict(data), out)
    assert report.units_failed == 0, report.errors
    units = _units(out)
    cvpr = units[units["prompter"] == "cvpr25_box(max_shift=5)"]
    assert len(cvpr) == 4
    settings = json.loads(cvpr["versions"].iloc[0])["settings"]
    assert settings["scoring"] == {"nsd_min_dice": 0.2, "time_budget_s": 90.0}
    with ResultStore(out, read_only=True) as store:
        steps = store.steps()
    interactive = steps[steps["user"] != ""]
    assert set(interactive.groupby("unit_id")["step"].max()) == {5}
    assert (interactive.loc[interactive["dice"] <= 0.2, "nsd"] == 0).all()
    no_box = steps[steps["prompter"] == "no_prompt"]
    assert (no_box.loc[no_box["step"] == 0, ["dice", "nsd", "dof"]] == 0).all().all()
    # switching a rule off is another setting: the units are stale, not mixed
    data["interactive"] = [{"preset": "cvpr25", "scoring": {"time_budget_s": None}}]
    from radioactive.runner.stale import StaleResultsError

    with pytest.raises(StaleResultsError, match="scoring"):
        run_experiment(config_from_dict(data), out)
