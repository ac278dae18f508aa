"""The runner end to end: real model, kill and resume, determinism across executors, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.runner.config import ExperimentConfig, load_config
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore

pytestmark = pytest.mark.registry

#: columns that measure time or memory, or name the run: everything else must be reproducible
VOLATILE = ["run_id", "wall_s", "encoder_s", "decoder_s", "peak_mem_mb", "created_at"]

FAST_YAML = """
name: fast
datasets:
  - name: {suite}
    datasets: [DemoLungLesionsCT, DemoBrainTumoursMR]
models:
  - name: filled_box
  - name: random_walker
prompters: [box_per_slice, box_interpolation(k=3), center_point_per_slice]
interactive:
  - prompter: points_per_slice(n=1)
    user: random_error_per_slice
    steps: 3
seeds: [0, 1]
"""


def _fast_config(tmp_path: Path, suite: Path, **extra: str) -> Path:
    text = FAST_YAML.format(suite=suite)
    for key, value in extra.items():
        text += f"{key}:\n{value}\n"
    path = tmp_path / "fast.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _steps(directory: Path) -> pd.DataFrame:
    with ResultStore(directory, read_only=True) as store:
        df = store.steps()
    keep = [c for c in df.columns if c not in VOLATILE]
    return df[keep].sort_values(["unit_id", "step"]).reset_index(drop=True)


def test_end_to_end_with_a_real_model(demo_suite: Path, demo_cache: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from radioactive.models.checkpoints import fetch_checkpoint

    fetch_checkpoint("litemedsam", demo_cache)
    cfg = tmp_path / "e2e.yaml"
    cfg.write_text(
        f"""
name: e2e
datasets:
  - name: {demo_suite}
    datasets: [DemoLungLesionsCT]
    cases: [lung1]
models:
  - name: litemedsam
  - name: filled_box
prompters: [box_per_slice, center_point_per_slice]
cache_dir: {demo_cache}
""",
        encoding="utf-8",
    )
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output  # point prompts on box-only models are skipped, with why
    df = _steps(out)
    assert len(df) == 2 and set(df["model"]) == {"litemedsam", "filled_box"}
    by_model = df.set_index("model")
    # LiteMedSAM's authors' contract (CT window 40 / 400, INTER_AREA resize) on this small lesion:
    # Dice 0.50, NSD 0.83 (docs/models.md, "What the contracts change")
    assert by_model.loc["litemedsam", "dice"] > 0.45
    assert by_model.loc["litemedsam", "dof"] == 2 * 3  # a box on each of the 3 lesion slices
    assert by_model.loc["litemedsam", "nsd"] > 0.75
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    cases = con.execute('SELECT DISTINCT "case" FROM steps').fetchall()
    runs = con.execute("SELECT package_version, git_commit FROM runs").fetchall()
    con.close()
    assert cases == [("lung1",)] and runs[0][0]
    listing = CliRunner().invoke(app, ["ls", "results", str(out)])
    assert listing.exit_code == 0 and "litemedsam" in listing.output


def test_kill_and_resume_equals_an_uninterrupted_run(demo_suite: Path, tmp_path: Path) -> None:
    cfg = _fast_config(tmp_path, demo_suite)
    reference = tmp_path / "reference"
    run_experiment(load_config(cfg), reference)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "radioactive.cli", "run", str(cfg), "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = killed / "run.log"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and log.read_text(encoding="utf-8").count(" unit ") >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _steps(killed)
    full = _steps(reference)
    assert 0 < partial["unit_id"].nunique() < full["unit_id"].nunique()

    report = run_experiment(load_config(cfg), killed)
    assert report.units_already_done == partial["unit_id"].nunique()
    resumed = _steps(killed)
    assert not resumed.duplicated(["unit_id", "step"]).any()
    pd.testing.assert_frame_equal(resumed, full)
    again = run_experiment(load_config(cfg), killed)
    assert again.units_written == 0


def test_identical_results_inline_process_and_twice(demo_suite: Path, tmp_path: Path) -> None:
    cfg = _fast_config(tmp_path, demo_suite)
    config = load_config(cfg)
    run_experiment(config, tmp_path / "a")
    run_experiment(config, tmp_path / "b")
    pooled = config.model_copy(
        update={"executor": config.executor.model_copy(update={"kind": "process", "workers": 2})}
    )
    run_experiment(pooled, tmp_path / "c")
    a, b, c = (_steps(tmp_path / d) for d in "abc")
    assert len(a) > 50
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # different seeds give different random prompts
    seeds = a[(a["prompter"] == "points_per_slice(n=1)") & (a["step"] == 0)]
    assert seeds.groupby(["case_id", "target", "model"])["prompts"].nunique().max() == 2


def test_ray_executor_gives_the_same_results(demo_suite: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cfg = _fast_config(tmp_path, demo_suite)
    config = load_config(cfg)
    config = config.model_copy(update={"seeds": [0], "prompters": ["box_per_slice"]})
    run_experiment(config, tmp_path / "inline")
    on_ray = config.model_copy(
        update={"executor": config.executor.model_copy(update={"kind": "ray"})}
    )
    run_experiment(on_ray, tmp_path / "ray")
    pd.testing.assert_frame_equal(_steps(tmp_path / "inline"), _steps(tmp_path / "ray"))


class ExplodingBackend:
    """Works like the filled box but fails on the 61-slice volume (lung2)."""

    from radioactive.models.classical import FilledBoxBackend as _Base

    card = _Base.card
    capabilities = _Base.capabilities

    def __init__(self) -> None:
        self.base = self._Base()

    def normalize_volume(self, image: np.ndarray) -> np.ndarray:
        if image.shape[0] == 61:
            raise RuntimeError("simulated model failure")
        return self.base.normalize_volume(image)

    def __getattr__(self, name: str):  # encode, decode, embedding_nbytes
        return getattr(self.base, name)


def test_a_failing_case_becomes_error_rows_and_the_run_goes_on(
    demo_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import radioactive.models as models

    monkeypatch.setitem(models.MODELS, "exploding", f"{__name__}:ExplodingBackend")
    cfg = tmp_path / "boom.yaml"
    cfg.write_text(
        f"""
datasets:
  - name: {demo_suite}
    datasets: [DemoLungLesionsCT]
models:
  - name: exploding
prompters: [box_per_slice]
""",
        encoding="utf-8",
    )
    out = tmp_path / "boom"
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)])
    assert result.exit_code == 1  # something failed
    assert "simulated model failure" in result.output
    df = _steps(out)
    status = dict(zip(df["case_id"], df["status"], strict=True))
    assert status == {"lung1": "ok", "lung2": "error"}


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("datasets: [{name: demo}]\nmodels: [{name: sam9}]\nprompters: [box_per_slice]\n", "sam9"),
        ("datasets: [{name: demo}]\nmodels: [{name: filled_box}]\nprompters: [boxes]\n", "boxes"),
        ("datasets: [{name: /no/such/dir}]\nmodels: [{name: filled_box}]\nprompters: [box_3d]\n",
         "/no/such/dir"),
        ("datasets: [{name: demo}\nmodels: nope\n", "line"),
    ],
)  # fmt: skip
def test_bad_experiments_are_reported_without_a_traceback(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert expected in result.output
    assert not (tmp_path / "o" / "results.duckdb").exists() or expected == "/no/such/dir"


def test_quick_form_and_validate(demo_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "quick"
    result = CliRunner().invoke(
        app,
        ["run", "--dataset", str(demo_suite / "Dataset902_DemoBrainTumoursMR"),
         "--model", "random_walker", "--prompter", "center_point_per_slice",
         "--user", "center_of_largest_error", "--steps", "2", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    df = _steps(out)
    assert sorted(set(df["step"])) == [0, 1, 2] and df["unit_id"].nunique() == 3
    cfg = _fast_config(tmp_path, demo_suite)
    check = CliRunner().invoke(app, ["validate", str(cfg)])
    assert check.exit_code == 0, check.output
    assert "filled_box" in check.output and "point" in check.output  # the skipped pairs, with why
    assert isinstance(load_config(cfg), ExperimentConfig)


def test_predictions_are_saved_on_the_file_grid(saved_run: Path, demo_suite: Path) -> None:
    import nibabel as nib

    from radioactive.data import resolve_datasets

    out = saved_run
    df = _steps(out)
    (path,) = df["prediction_path"].dropna()
    saved = nib.load(path)
    ds = next(d for d in resolve_datasets(demo_suite) if d.name == "DemoBrainTumoursMR")
    case = ds.case("brain2")
    assert saved.shape == case.image.file_shape
    assert np.allclose(saved.affine, case.image.file_affine, atol=1e-4)
    target = case.targets[0].mask
    back = case.image.to_file_space(target)
    box_mask = np.asarray(saved.dataobj).astype(bool)
    assert (box_mask & back).sum() == back.sum()  # the filled boxes cover the whole lesion
