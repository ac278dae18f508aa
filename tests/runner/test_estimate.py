"""The cost estimator: exact counts for static prompters (equal to what a run then does), upper
bounds for propagation and corrections, costs from files, the projection by hand, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radioactive.runner.config import config_from_dict
from radioactive.runner.estimate import (
    CallCosts,
    CallCounts,
    count_calls,
    load_costs,
    project,
)
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore
from tests.runner.tiny_dataset import config, write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "Dataset001_Tiny")


def _measured(out: Path):
    with ResultStore(out, read_only=True) as store:
        steps = store.steps()
    return int(steps["slices_inferred"].sum()), int(steps["encoder_calls"].sum()), len(steps)


def test_static_counts_are_what_the_run_does(dataset: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(config(dataset, "box_per_slice", "center_point_per_slice",
                                  "box_interpolation(k=2)", models=[{"name": "random_walker"}],
                                  seeds=[0, 1]))  # fmt: skip
    (counts,) = count_calls(cfg)
    assert counts.exact and counts.slice_wise and counts.model == "random_walker"
    out = tmp_path / "out"
    run_experiment(cfg, out)
    decoded, encoded, steps = _measured(out)
    assert (counts.decoder_calls, counts.steps) == (decoded, steps)
    assert counts.encoder_slices == encoded  # each slice of a case once
    # a finished grid has nothing left to count
    (done,) = count_calls(cfg, out)
    assert (done.units, done.decoder_calls, done.encoder_slices) == (0, 0, 0)


def test_propagation_and_corrections_are_upper_bounds(dataset: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(config(
        dataset, "box_propagation", models=[{"name": "random_walker"}],
        interactive=[{"prompter": "box_per_slice", "user": "center_of_largest_error",
                      "steps": 2},
                     {"prompter": "box_per_slice", "user": "random_error_per_slice",
                      "steps": 2}]))  # fmt: skip
    (counts,) = count_calls(cfg)
    assert not counts.exact
    out = tmp_path / "out"
    run_experiment(cfg, out)
    decoded, encoded, steps = _measured(out)
    assert counts.decoder_calls >= decoded and counts.encoder_slices >= encoded
    assert counts.steps >= steps  # a trajectory may stop early
    # one click per correction: a wrapper counts as its base
    from radioactive.runner.estimate import _per_correction

    assert _per_correction("center_of_largest_error") == 1
    assert _per_correction("lazy(base='center_of_largest_error')") == 1
    assert _per_correction("random_error_per_slice") is None


def test_projection_by_hand() -> None:
    counts = [CallCounts("a", True, units=2, steps=3, encoder_slices=10, decoder_calls=20,
                         load_s=1.0),
              CallCounts("b", False, units=1, steps=4)]  # fmt: skip
    costs = {"a": CallCosts(encoder_s_per_slice=0.5, decoder_s_per_call=0.1,
                            harness_s_per_step=0.01, source="t"),
             "b": CallCosts(step_s_3d=2.0, source="t")}  # fmt: skip
    rows = project(counts, costs, workers=2)
    assert rows[0]["seconds"] == pytest.approx(10 * 0.5 + 20 * 0.1 + 3 * 0.01 + 1.0)
    assert rows[1]["seconds"] == pytest.approx(4 * 2.0)
    assert rows[-1]["seconds"] == pytest.approx(8.03 + 8.0)
    assert rows[-1]["wall seconds"] == pytest.approx((8.03 + 8.0) / 2)
    missing = project(counts, {"a": costs["a"]})
    assert missing[1]["seconds"] is None and missing[-1]["seconds"] is None


def test_costs_from_our_file_and_from_the_gpu_benchmark(tmp_path: Path) -> None:
    ours = tmp_path / "costs.json"
    ours.write_text(json.dumps({"models": {"m": {"encoder_s_per_slice": 0.2,
                                                 "decoder_s_per_call": 0.01}}}))  # fmt: skip
    assert load_costs(ours)["m"].encoder_s_per_slice == 0.2
    gpu = tmp_path / "gpu.json"
    gpu.write_text(json.dumps({
        "models": [{"model": "sam", "status": "ok", "dtype": "bf16",
                    "encoder_ms_per_slice_b1": 1.0, "decoder_ms_box": 1.0},
                   {"model": "sam", "status": "ok", "dtype": "fp32",
                    "encoder_ms_per_slice_b1": 50.0, "decoder_ms_box": 5.5}],
        "models_3d": [{"model": "nninteractive", "status": "ok", "dtype": "fp32",
                       "refine_step_ms": 400.0}]}))  # fmt: skip
    costs = load_costs(gpu)
    assert costs["sam"].encoder_s_per_slice == pytest.approx(0.05)
    assert costs["sam"].decoder_s_per_call == pytest.approx(0.0055)
    assert costs["nninteractive"].step_s_3d == pytest.approx(0.4)
    from radioactive.errors import RadioactiveError

    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RadioactiveError, match="cannot read the costs file"):
        load_costs(tmp_path / "bad.json")


def test_the_command_prints_the_projection_and_saves_the_costs(dataset: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    import yaml
    from typer.testing import CliRunner

    from radioactive.cli import app

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(config(dataset, "box_per_slice",
                                         models=[{"name": "random_walker"}])))  # fmt: skip
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"models": {"random_walker": {
        "encoder_s_per_slice": 0.0, "decoder_s_per_call": 0.5}}}))  # fmt: skip
    result = CliRunner().invoke(app, ["estimate", str(cfg), "--costs", str(costs), "--json"])
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)["rows"]
    spec = config(dataset, "box_per_slice", models=[{"name": "random_walker"}])
    (counts,) = count_calls(config_from_dict(spec))
    assert rows[0]["decoder calls"] == counts.decoder_calls
    # decoder calls at 0.5 s, plus the cases' loading time measured while counting
    assert 0.5 * counts.decoder_calls <= rows[0]["seconds"] <= 0.5 * counts.decoder_calls + 5
    saved = tmp_path / "saved.json"
    shown = CliRunner().invoke(app, ["estimate", str(cfg), "--costs", str(costs), "--workers",
                                     "2", "--save-costs", str(saved)])  # fmt: skip
    assert shown.exit_code == 0 and "worker(s) about" in shown.stdout
    assert load_costs(saved)["random_walker"].decoder_s_per_call == 0.5
