"""The command line: readable tables in logs, "did you mean" for every kind of name, options that
would be ignored are usage errors, and integer parameters stay integers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.cli.run import check_executor_options, check_quick_form
from radioactive.registry import did_you_mean
from tests.runner.tiny_dataset import config, write_dataset


def _cli(*args: str) -> tuple[int, str, str]:
    """Run ``radioactive ARGS`` in a fresh process with stdout and stderr piped (not a TTY),
    as a log or CI would."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run(
        [sys.executable, "-m", "radioactive.cli", *args],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _flat(text: str) -> str:
    """The words of ``text`` on one line (rich panels' borders left out)."""
    return " ".join(w for w in text.split() if w.strip("│╭╮╰╯─"))


# -- tables in logs ----------------------------------------------------------------------------


def test_ls_prompters_piped_keeps_one_row_per_line() -> None:
    """Piped, rich used to wrap at 80 columns, one word per line; each row is one line now."""
    code, stdout, _ = _cli("ls", "prompters")
    assert code == 0, stdout
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    by_name = {r.split("│")[1].strip(): r for r in rows}
    interp = next(r for n, r in by_name.items() if n.startswith("box_interpolation@"))
    assert "k=3, jitter=0, key_rounding='floor'" in interp and "kB Inter" in interp
    assert len(rows) == len(by_name) >= 12  # no continuation lines


def test_models_list_piped_keeps_one_row_per_line() -> None:
    code, stdout, _ = _cli("models", "list")
    assert code == 0, stdout
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    names = [r.split("│")[1].strip() for r in rows]
    assert all(names), rows  # a wrapped row would leave an empty name cell
    walker = next(r for r in rows if "random_walker@" in r)
    assert "box2d, box3d, point, scribble" in walker and "not needed" in walker


def test_columns_still_sets_the_width() -> None:
    env = {**os.environ, "COLUMNS": "60"}
    done = subprocess.run(
        [sys.executable, "-m", "radioactive.cli", "ls", "presets"],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=True,
    )  # fmt: skip
    assert max(len(line) for line in done.stdout.splitlines()) <= 60


# -- did you mean ------------------------------------------------------------------------------


def test_did_you_mean() -> None:
    assert did_you_mean("mobilesm", ["mobilesam", "medsam"]) == " (did you mean 'mobilesam'?)"
    assert did_you_mean("MobileSAM", ["mobilesam"]) == " (did you mean 'mobilesam'?)"
    assert did_you_mean("zzzz", ["mobilesam", "medsam"]) == ""
    assert did_you_mean("medsam", ["mobilesam", "medsam"]) == ""
    assert did_you_mean("x", []) == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("models", "info", "mobilesm"), "unknown model 'mobilesm' (did you mean 'mobilesam'?)"),
        (("models", "fetch", "litemedsm"), "(did you mean 'litemedsam'?)"),
        (("ls", "preset"), "cannot list 'preset' (did you mean 'presets'?)"),
        (("datasets", "prepare", "dmeo"), "unknown dataset 'dmeo' (did you mean 'demo'?)"),
        (("datasets", "prepare", "ms_flar"), "(did you mean 'ms_flair'?)"),
    ],
)
def test_name_typos_get_a_suggestion(args: tuple[str, ...], expected: str) -> None:
    code, _, stderr = _invoke(*args)
    assert code == 2
    assert expected in _flat(stderr)
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("prompters", ["box_interpolaton(k=3)"], "(did you mean 'box_interpolation'?)"),
        ("interactive", [{"prompter": "box_3d", "user": "scribbel"}], "(did you mean 'scribble'?)"),
        ("interactive", [{"preset": "cvpr52"}], "(did you mean 'cvpr25'?)"),
    ],
)
def test_typos_in_an_experiment_get_a_suggestion(
    tmp_path: Path, field: str, value: object, expected: str
) -> None:
    root = write_dataset(tmp_path / "tiny")
    cfg = config(root)
    cfg.pop("prompters")
    cfg[field] = value
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    code, _, stderr = _invoke("run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and expected in _flat(stderr), stderr
    assert not (tmp_path / "out").exists()


# -- options that would be ignored -------------------------------------------------------------


def test_quick_form_options_with_a_config_file_are_a_usage_error(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config(root)), encoding="utf-8")
    out = tmp_path / "out"
    code, _, stderr = _invoke("run", str(path), "--model", "random_walker", "--seed", "3",
                              "--out", str(out))  # fmt: skip
    text = _flat(stderr)
    assert code == 2 and "--model and --seed cannot be combined with an experiment file" in text
    assert "Usage:" in stderr and not out.exists()


def test_steps_without_user_is_a_usage_error(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    code, _, stderr = _invoke("run", "--dataset", str(root), "--model", "filled_box",
                              "--prompter", "box_3d", "--steps", "3",
                              "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 2 and "'--steps'" in stderr and "no --user is given" in _flat(stderr)
    assert not (tmp_path / "out").exists()
    # a preset brings its user: --steps applies
    check_quick_form(None, {"prompter": "cvpr25", "steps": 3, "user": None})
    check_quick_form(None, {"prompter": "box_3d", "steps": 3, "user": "scribble"})


def test_workers_without_the_process_executor_is_a_usage_error(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    quick = ["run", "--dataset", str(root), "--model", "filled_box", "--prompter", "box_3d",
             "--out", str(tmp_path / "out")]  # fmt: skip
    code, _, stderr = _invoke(*quick, "--workers", "4")
    assert code == 2 and "'--workers'" in stderr and "--executor process" in _flat(stderr)
    code, _, stderr = _invoke(*quick, "--executor", "inline", "--workers", "4")
    assert code == 2 and "the executor is 'inline'" in _flat(stderr)
    code, _, stderr = _invoke(*quick, "--ray-address", "ray://x:1")
    assert code == 2 and "'--ray-address'" in stderr
    assert not (tmp_path / "out").exists()
    # an experiment file that chooses the process executor takes --workers
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config(root, executor={"kind": "inline"})), encoding="utf-8")
    code, _, stderr = _invoke("run", str(path), "--workers", "2", "--out", str(tmp_path / "o"))
    assert code == 2 and "the executor is 'inline'" in _flat(stderr)
    check_executor_options(None, 2, None, "process")
    check_executor_options("process", 2, None, "inline")


def test_partial_quick_form_names_what_is_missing(tmp_path: Path) -> None:
    code, _, stderr = _invoke("run", "--model", "filled_box", "--out", str(tmp_path / "o"))
    assert code == 2 and "missing: --dataset, --prompter" in _flat(stderr)


# -- integer parameters ------------------------------------------------------------------------


def test_a_non_integer_for_an_integer_parameter_is_refused(tmp_path: Path) -> None:
    """``k=3.5`` used to run as k=3 and be stored as "k=3.5"."""
    root = write_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    spec = "box_interpolation(k=3.5)"
    code, _, stderr = _invoke("run", "--dataset", str(root), "--model", "filled_box",
                              "--prompter", spec, "--out", str(out))  # fmt: skip
    text = _flat(stderr)
    assert code == 2, stderr
    assert "parameter k must be an integer, got 3.5" in text and "k=4" in text
    assert not (out / "results.duckdb").exists()


def test_the_quick_form_runs_and_resumes(tmp_path: Path) -> None:
    """The happy path through the package's entry point: a run, then a resume doing nothing."""
    root = write_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    args = ("run", "--dataset", str(root), "--model", "filled_box", "--prompter",
            "box_interpolation(k=3)", "--out", str(out))  # fmt: skip
    code, stdout, stderr = _invoke(*args)
    assert code == 0, stderr
    assert "4 units written (0 already done)" in _flat(stdout)
    code, stdout, _ = _invoke(*args)
    assert code == 0 and "0 units written (4 already done)" in _flat(stdout)
    code, stdout, _ = _invoke("ls", "results", str(out))
    assert code == 0 and "box_interpolation" in stdout
