"""A CVPR 2025 challenge submission as a model: the folder contract seen from inside a small
local submission, the organisers' Docker call, and error rows for submissions that misbehave."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from radioactive.models import get_model
from radioactive.models.cvpr25_container import (
    Cvpr25ContainerModel,
    SubmissionError,
    docker_command,
    image_tag,
)
from radioactive.prompts import cvpr25, get_prompter, get_user
from radioactive.runner.config import config_from_dict
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore
from radioactive.session import Scoring, run_trajectory
from tests.runner.tiny_dataset import write_dataset

SUBMISSION = Path(__file__).parent / "fixtures" / "cvpr25_submission.py"
COMMAND = f"{sys.executable} {SUBMISSION}"


def _target() -> np.ndarray:
    target = np.zeros((10, 32, 28), dtype=bool)
    target[2:8, 6:20, 5:18] = True
    target[4:6, 12:16, 9:13] = False  # a hole: clicks have something to fix
    return target


def _model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "", **options):
    monkeypatch.setenv("SUBMISSION_LOG", str(tmp_path / "log.jsonl"))
    monkeypatch.setenv("SUBMISSION_MODE", mode)
    return get_model("cvpr25_container", command=COMMAND, workdir=str(tmp_path), **options)


def _log(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_the_submission_receives_the_organisers_keys_and_clicks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _target()
    image = np.where(target, 300.0, -50.0).astype(np.float32)
    model = _model(tmp_path, monkeypatch)
    model.prepare(image, (2.5, 0.8, 0.7), "CT")
    steps = run_trajectory(model, target, (2.5, 0.8, 0.7), get_prompter("cvpr25_box"),
                           np.random.default_rng(4), user=get_user(
                               "center_of_largest_error(mode='cvpr25')"),
                           steps=5, scoring=Scoring(nsd_min_dice=0.2),
                           keep_predictions=True)  # fmt: skip
    log = _log(tmp_path)
    assert len(log) == 6 and [s.status for s in steps] == ["ok"] * 6  # one run per step
    first = log[0]
    assert first["case"].startswith("CT_") and first["keys"] == ["boxes", "imgs", "spacing"]
    assert first["dtypes"]["imgs"] == "uint8" and first["shapes"]["imgs"] == [10, 32, 28]
    assert first["dtypes"]["spacing"] == "float64" and first["spacing"] == [2.5, 0.8, 0.7]
    shift = int(np.random.default_rng(4).integers(0, 6))
    assert first["box"] == cvpr25.organisers_box(target, shift)
    assert first["box_types"] == ["int64"]
    expected_keys = ["boxes", "clicks", "clicks_order", "imgs", "prev_pred", "spacing"]
    clicks = []
    for i, record in enumerate(log[1:], start=1):
        assert record["keys"] == expected_keys
        assert record["dtypes"]["prev_pred"] == "uint8"
        # the previous step's segmentation comes back as prev_pred
        assert record["prev_pred_sum"] == int(steps[i - 1].prediction.sum())
        point = steps[i].interaction.prompts[0] if steps[i].interaction else None
        if point is not None:
            clicks.append((list(point.zyx), "fg" if point.positive else "bg"))
        assert record["fg"] == [c for c, kind in clicks if kind == "fg"]  # [z, y, x], all so far
        assert record["bg"] == [c for c, kind in clicks if kind == "bg"]
        assert record["clicks_order"] == [kind for _, kind in clicks]
        assert not record["fg"] or record["click_types"] == ["int64"]
    assert len(clicks) >= 1
    assert steps[-1].dice > steps[0].dice  # the submission's clicks rule fixes the hole
    assert all(s.timings.decoder_s > 0 for s in steps)  # the wall time of each call


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "the submission failed"),
        ("silent", "wrote no"),
        ("wrong_shape", "'segs' has shape"),
        ("slow", "ran longer than"),
    ],
)
def test_a_misbehaving_submission_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    target = _target()
    model = _model(tmp_path, monkeypatch, mode, timeout_s=3)
    model.prepare(target.astype(np.float32), (1.0, 1.0, 1.0), "CT")
    with pytest.raises(SubmissionError, match=message):
        run_trajectory(model, target, (1, 1, 1), get_prompter("cvpr25_box"),
                       np.random.default_rng(0))  # fmt: skip


def test_a_silent_submission_scores_zero_with_the_organisers_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _target()
    model = _model(tmp_path, monkeypatch, "silent", on_missing="zeros")
    model.prepare(target.astype(np.float32), (1.0, 1.0, 1.0), "CT")
    (step,) = run_trajectory(model, target, (1, 1, 1), get_prompter("cvpr25_box"),
                             np.random.default_rng(0))  # fmt: skip
    assert step.dice == 0.0


def test_misbehaving_submissions_are_error_rows_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_dataset(tmp_path / "Dataset001_Tiny", cases=("c1",))
    monkeypatch.setenv("SUBMISSION_LOG", str(tmp_path / "log.jsonl"))
    models = [
        {"name": "cvpr25_container", "label": "good", "options": {"command": COMMAND}},
        {"name": "cvpr25_container", "label": "crash",
         "options": {"command": f"SUBMISSION_MODE=crash {COMMAND}"}},
        {"name": "cvpr25_container", "label": "silent",
         "options": {"command": f"SUBMISSION_MODE=silent {COMMAND}"}},
    ]  # fmt: skip
    data = {"datasets": [{"name": str(root)}], "models": models, "prompters": [],
            "interactive": [{"preset": "cvpr25", "steps": 2}]}  # fmt: skip
    report = run_experiment(config_from_dict(data), tmp_path / "out")
    with ResultStore(tmp_path / "out", read_only=True) as store:
        units = store.units()
    status = units.groupby("model")["status"].agg(set).to_dict()
    assert status == {"good": {"ok"}, "crash": {"error"}, "silent": {"error"}}
    assert report.units_failed == 4  # 2 targets × 2 broken submissions
    errors = units.set_index("model")["error"]
    assert "boom: the model failed" in errors["crash"].iloc[0]
    assert "wrote no" in errors["silent"].iloc[0]


def test_the_organisers_docker_call() -> None:
    assert image_tag("/subs/teamx_final.tar.gz") == "teamx:latest"
    assert image_tag("ghcr.io/lab/model") == "ghcr.io/lab/model:latest"
    assert image_tag("lab/model:v2") == "lab/model:v2"
    argv = docker_command("docker", "teamx:latest", "n1", Path("/w/in"), Path("/w/out"), "32G",
                          "device=0")  # fmt: skip
    assert argv == [
        "docker", "container", "run", "--gpus", "device=0", "-m", "32G", "--name", "n1", "--rm",
        "-v", "/w/in/:/workspace/inputs/", "-v", "/w/out/:/workspace/outputs/", "teamx:latest",
        "/bin/bash", "-c", "sh predict.sh",
    ]  # fmt: skip


def test_docker_missing_or_a_bad_image_is_a_clear_error(tmp_path: Path) -> None:
    target = _target()
    model = Cvpr25ContainerModel(image="team.tar.gz", docker="no-such-docker-client",
                                 workdir=str(tmp_path))  # fmt: skip
    model.prepare(target.astype(np.float32), (1.0, 1.0, 1.0), "CT")
    with pytest.raises(SubmissionError, match="is not on the PATH"):
        run_trajectory(model, target, (1, 1, 1), get_prompter("cvpr25_box"),
                       np.random.default_rng(0))  # fmt: skip
    with pytest.raises(ValueError, match="exactly one of image"):
        Cvpr25ContainerModel()


@pytest.mark.skipif(shutil.which("docker") is None, reason="Docker is not installed here")
def test_a_real_container(tmp_path: Path) -> None:  # pragma: no cover - needs Docker
    import subprocess

    probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the Docker daemon is not reachable")
    context = tmp_path / "image"
    context.mkdir()
    shutil.copy(SUBMISSION, context / "submission.py")
    (context / "predict.sh").write_text(
        "cd /workspace && INPUTS=inputs OUTPUTS=outputs SUBMISSION_LOG=/tmp/log "
        "python submission.py\n"
    )
    (context / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN pip install numpy\nWORKDIR /workspace\n"
        "COPY submission.py predict.sh /workspace/\n"
    )
    built = subprocess.run(["docker", "build", "-t", "radioactive-test-sub", str(context)],
                           capture_output=True, check=False)  # fmt: skip
    if built.returncode != 0:
        pytest.skip("the test image cannot be built here (no registry access)")
    target = _target()
    model = Cvpr25ContainerModel(image="radioactive-test-sub", gpus=None, workdir=str(tmp_path))
    model.prepare(target.astype(np.float32), (1.0, 1.0, 1.0), "CT")
    (step,) = run_trajectory(model, target, (1, 1, 1), get_prompter("cvpr25_box(max_shift=0)"),
                             np.random.default_rng(0))  # fmt: skip
    assert step.dice > 0.8


def test_multi_class_mode_sends_every_target_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radioactive.session import run_joint_trajectories

    first = _target()
    second = np.zeros_like(first)
    second[3:9, 22:30, 20:27] = True
    model = _model(tmp_path, monkeypatch)
    model.prepare(np.where(first | second, 300.0, -50.0).astype(np.float32), (1.0, 1.0, 1.0), "CT")
    runs = run_joint_trajectories(
        model, [first, second], (1.0, 1.0, 1.0), get_prompter("cvpr25_box"),
        [np.random.default_rng(1), np.random.default_rng(2)],
        user=get_user("center_of_largest_error(mode='cvpr25')"), steps=3,
        scoring=Scoring(nsd_min_dice=0.2, time_budget_s=90.0),
    )  # fmt: skip
    log = _log(tmp_path)
    assert len(log) == 4 and all(r["n_classes"] == 2 for r in log)  # one run per step
    boxes = log[0]["boxes"]
    assert boxes[0] == cvpr25.organisers_box(first, int(np.random.default_rng(1).integers(0, 6)))
    assert boxes[1] == cvpr25.organisers_box(second, int(np.random.default_rng(2).integers(0, 6)))
    assert log[1]["prev_pred_labels"] == [0, 1, 2]  # the previous masks as one label map
    assert [len(r) for r in runs] == [4, 4]
    assert runs[1][0].dice > 0.9 and runs[0][-1].dice > runs[0][0].dice
    # the call's time is shared between the targets' rows
    assert runs[0][2].timings.decoder_s == runs[1][2].timings.decoder_s > 0


def test_multi_class_entries_through_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_dataset(tmp_path / "Dataset001_Tiny", cases=("c1",))
    monkeypatch.setenv("SUBMISSION_LOG", str(tmp_path / "log.jsonl"))
    data = {"datasets": [{"name": str(root)}], "prompters": [],
            "models": [{"name": "cvpr25_container", "options": {"command": COMMAND}},
                       {"name": "random_walker"}],
            "interactive": [{"preset": "cvpr25", "steps": 2, "multi_class": True}]}  # fmt: skip
    report = run_experiment(config_from_dict(data), tmp_path / "out")
    assert report.units_failed == 0, report.errors
    assert any("random_walker" in line and "multi_class" in line for line in report.skipped_combos)
    with ResultStore(tmp_path / "out", read_only=True) as store:
        units = store.units()
    ok = units[units["status"] == "ok"]
    assert sorted(ok["target"]) == ["ball", "cube"] and set(ok["model"]) == {"cvpr25_container"}
    assert json.loads(ok["versions"].iloc[0])["settings"]["multi_class"] is True
    assert [r["n_classes"] for r in _log(tmp_path)] == [2, 2, 2]  # 3 steps, both targets each
    again = run_experiment(config_from_dict(data), tmp_path / "out")
    assert again.units_written == 0  # resumed: nothing twice


def test_boxes_on_many_slices_become_the_challenges_one_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _target()
    model = _model(tmp_path, monkeypatch)
    model.prepare(target.astype(np.float32), (1.0, 1.0, 1.0), "CT")
    (step,) = run_trajectory(model, target, (1, 1, 1), get_prompter("box_per_slice"),
                             np.random.default_rng(0))  # fmt: skip
    (record,) = _log(tmp_path)
    zs = sorted(b.z for b in step.interaction.prompts)
    assert record["box"] == cvpr25.organisers_box(target, 0)  # tight boxes: the same box
    assert (record["box"]["z_min"], record["box"]["z_max"]) == (zs[0], zs[-1])
    (point,) = run_trajectory(model, target, (1, 1, 1), get_prompter("center_point_per_slice"),
                              np.random.default_rng(0))  # fmt: skip
    last = _log(tmp_path)[-1]
    assert "boxes" not in last["keys"] and len(last["fg"]) == len(point.interaction.prompts)
