"""Replay of a static run onto another model: the same prompts row for row, a rerun resumes,
interactive and model-dependent units are left out with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radioactive.errors import RadioactiveError
from radioactive.runner.config import config_from_dict
from radioactive.runner.replay import default_output, replay_run, replayable
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore
from tests.conftest import write_nifti

pytestmark = pytest.mark.registry

KEY = ["dataset", "case_id", "target", "prompter", "seed"]
VOLATILE = ["run_id", "unit_id", "wall_s", "encoder_s", "decoder_s", "peak_mem_mb", "versions"]
#: which unit of a case fills the embedding cache first depends on the order units run in
ORDER_DEPENDENT = ["encoder_calls", "cache_hits", "cache_misses"]


def _dataset(root: Path) -> Path:
    """A tiny nnU-Net dataset: two cases, two labels each (a ball and an L, so that a box is not
    the answer), bright on a noisy background."""
    rng = np.random.default_rng(0)
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    i_, j_, k_ = np.indices((16, 14, 6))
    for i, case in enumerate(("case_001", "case_002")):
        lab = np.zeros((16, 14, 6), np.uint8)
        lab[(i_ - 5) ** 2 + (j_ - 5) ** 2 + (2 * (k_ - 2)) ** 2 <= 10 + 3 * i] = 1
        lab[10:14, 3:12, 1:5] = 2
        lab[10 : 12 - i, 3:9, 1:5] = 0  # cut out a corner: an L
        img = (lab > 0) * 200.0 + rng.normal(0, 10, lab.shape)
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", img.astype(np.int16), aff)
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab, aff)
    doc = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "lesion": 1, "cyst": 2},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def _source_run(tmp_path: Path, **extra: object) -> Path:
    data = {
        "datasets": [{"name": str(_dataset(tmp_path / "Dataset001_Tiny"))}],
        "models": [{"name": "random_walker"}],
        "prompters": ["box_per_slice", "points_per_slice(n=1)"],
        "interactive": [
            {"prompter": "points_per_slice(n=1)", "user": "random_error_per_slice", "steps": 1}
        ],
        "seeds": [0, 1],
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }
    out = tmp_path / "results"
    report = run_experiment(config_from_dict(data), out)
    assert report.units_failed == 0, report.errors
    return out


def _steps(directory: Path) -> pd.DataFrame:
    with ResultStore(directory, read_only=True) as store:
        return store.steps()


def test_replay_sends_the_same_prompts_row_for_row(tmp_path: Path) -> None:
    source = _source_run(tmp_path)
    report = replay_run(source, "filled_box")
    out = default_output(source, "filled_box", None)
    assert report.output == out == source / "replay-filled_box"
    assert report.units_failed == 0, report.errors

    src = _steps(source)
    # the stores hold canonical specs: every parameter spelt out
    box = "box_per_slice(jitter=0)"
    src = src[(src["user"].fillna("") == "") & (src["prompter"] == box)]
    new = _steps(out)
    assert set(new["model"]) == {"filled_box"} and set(new["prompter"]) == {box}
    # 2 cases x 2 targets x 2 seeds of box_per_slice, one step each
    assert len(new) == len(src) == 8 and report.units_written == 8
    pairs = src.merge(new, on=[*KEY, "step"], suffixes=("_src", "_new"), validate="one_to_one")
    assert len(pairs) == 8
    for column in ("prompts", "realism", "dof", "seconds", "cum_dof", "cum_seconds"):
        assert (pairs[f"{column}_src"] == pairs[f"{column}_new"]).all(), column
    # the replayed units name their source unit
    for _, row in pairs.iterrows():
        assert json.loads(row["versions_new"])["replay"]["unit"] == row["unit_id_src"]
    # filled_box fills each box: its Dice differs from the random walker's on some target
    assert not np.allclose(pairs["dice_src"], pairs["dice_new"])

    # point prompts do not suit filled_box, interactive units are not replayed: both said why
    lines = "\n".join(report.skipped_combos)
    assert "filled_box does not accept point prompts (from points_per_slice(n=1))" in lines
    assert (
        "points_per_slice(n=1) + random_error_per_slice(keep_previous=True): interactive" in lines
    )

    again = replay_run(source, "filled_box")
    assert again.units_written == 0 and again.units_already_done == 8
    assert len(_steps(out)) == 8


def test_replay_onto_the_same_model_gives_the_same_numbers(tmp_path: Path) -> None:
    # another label: a fresh run would draw other random points (the label is in each unit's
    # seed), a replay sends the stored ones
    source = _source_run(tmp_path, models=[{"name": "random_walker", "label": "rw_source"}])
    out = tmp_path / "same"
    report = replay_run(source, "random_walker", out=out)
    assert report.units_written == 16 and report.units_failed == 0  # box and point units
    src = _steps(source)
    src = src[src["user"].fillna("") == ""]
    new = _steps(out)
    assert set(new["model"]) == {"random_walker"}
    keep = [c for c in src.columns if c not in [*VOLATILE, *ORDER_DEPENDENT, "model"]]
    pd.testing.assert_frame_equal(
        src[keep].sort_values(KEY).reset_index(drop=True),
        new[keep].sort_values(KEY).reset_index(drop=True),
    )


def test_a_run_with_nothing_static_is_refused(tmp_path: Path) -> None:
    source = _source_run(tmp_path, prompters=[])
    with pytest.raises(RadioactiveError, match="nothing to replay") as info:
        replay_run(source, "filled_box")
    assert "random_error_per_slice(keep_previous=True): interactive" in str(info.value)
    assert not (source / "replay-filled_box").exists()
    with pytest.raises(RadioactiveError, match="its own store"):
        replay_run(source, "filled_box", out=source)
    with pytest.raises(RadioactiveError, match="no results store"):
        replay_run(tmp_path / "nowhere", "filled_box")


def test_which_prompters_replay() -> None:
    assert replayable("box_per_slice", None) is None
    assert replayable("box_per_slice", "") is None
    assert "depend on the model" in (replayable("point_propagation", None) or "")
    assert "interactive" in (replayable("box_per_slice", "random_error_per_slice") or "")
    assert default_output("r", "sam", {"checkpoint": "b"}).name.startswith("replay-sam-")


def test_an_interrupted_replay_resumes_without_duplicates(tmp_path: Path) -> None:
    source = _source_run(tmp_path)
    seen: list[object] = []

    def stop_after_three(event: object, total: int) -> None:
        seen.append(event)
        if sum(e is not None for e in seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replay_run(source, "filled_box", on_event=stop_after_three)
    out = source / "replay-filled_box"
    assert _steps(out)["unit_id"].nunique() == 3  # each unit was stored as it finished
    events: list[object] = []
    report = replay_run(source, "filled_box", on_event=lambda e, total: events.append(e))
    assert report.units_already_done == 3 and report.units_written == 5
    assert sum(e is not None for e in events) == 5
    assert events.count(None) == report.jobs == 2  # one marker per case job
    steps = _steps(out)
    assert len(steps) == 8 and not steps.duplicated(["unit_id", "step"]).any()
