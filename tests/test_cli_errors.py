"""No raw traceback reaches a user from any command: one handler turns every exception into a
short message with the fix; ``--debug`` or ``RADIOACTIVE_DEBUG=1`` adds the traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

import radioactive.runner.run as run_module
from radioactive.cli import app
from radioactive.cli._ui import explain
from radioactive.errors import DatasetError
from tests.runner.tiny_dataset import write_dataset


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _flat(text: str) -> str:
    return " ".join(text.split())


def _quick(root: Path, out: Path) -> list[str]:
    return ["run", "--dataset", str(root), "--model", "filled_box", "--prompter", "box_3d",
            "--out", str(out)]  # fmt: skip


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def _raise(exc: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("exc", "problem", "fix"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/ro/out/results.duckdb"),
         "permission denied: Permission denied", "make the folder writable"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/out/results.duckdb"),
         "no space left on the device", "free disk space"),
        (OSError(errno.EROFS, "Read-only file system", "/ro"), "the file system is read-only",
         "write elsewhere"),
        (duckdb.IOException("Could not set lock on file"),
         "the results store could not be read or written (IOException: Could not set lock",
         "wait for it to finish"),
        (RuntimeError("boom"), "unexpected error: RuntimeError: boom", "RADIOACTIVE_DEBUG=1"),
    ],
)  # fmt: skip
def test_unexpected_errors_are_one_message_with_a_fix(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, problem: str,
    fix: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(run_module, "run_experiment", _raise(exc))
    monkeypatch.delenv("RADIOACTIVE_DEBUG", raising=False)
    code, _, stderr = _invoke(*_quick(tiny, tmp_path / "out"))
    text = _flat(stderr)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert f"Error: {problem}" in text and "Fix: " in text and fix in text
    if getattr(exc, "filename", None):
        assert f"File: {exc.filename}" in text  # type: ignore[attr-defined]


def test_debug_shows_the_traceback(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(run_module, "run_experiment", _raise(RuntimeError("boom")))
    code, _, stderr = _invoke("--debug", *_quick(tiny, tmp_path / "out"))
    assert code == 1 and "Traceback (most recent call last)" in stderr
    assert "RuntimeError: boom" in stderr and "Error: unexpected error" in _flat(stderr)
    code, _, stderr = _invoke(*_quick(tiny, tmp_path / "out"), env={"RADIOACTIVE_DEBUG": "1"})
    assert code == 1 and "Traceback (most recent call last)" in stderr


def test_our_errors_exit_2_with_problem_file_and_fix(tmp_path: Path) -> None:
    assert explain(DatasetError("bad", path=tmp_path, fix="do this")) == (
        "bad",
        tmp_path,
        "do this",
    )
    code, _, stderr = _invoke("datasets", "info", str(tmp_path / "nope"))
    assert code == 2 and "Traceback" not in stderr
    assert "Error: " in stderr and "Fix: " in stderr


def test_an_out_below_a_file_is_a_message_not_a_traceback(tiny: Path, tmp_path: Path) -> None:
    """A real OSError from the store layer: ``--out`` lies below a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, _, stderr = _invoke(*_quick(tiny, blocker / "out"))
    assert code in (1, 2) and "Traceback" not in stderr
    assert "Error" in stderr and "Fix: " in stderr and "a-file" in _flat(stderr)


def test_a_damaged_store_is_a_message_for_every_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.duckdb").write_bytes(os.urandom(4096))
    for args in (["ls", "results", str(bad)], ["report", str(bad)], ["migrate", str(bad)],
                 ["replay", str(bad), "--model", "filled_box"]):  # fmt: skip
        code, _, stderr = _invoke(*args)
        assert code != 0 and "Traceback" not in stderr, (args, stderr)
        assert "results.duckdb" in stderr and "Fix: " in stderr, (args, stderr)


def test_the_console_script_handles_errors_too(tmp_path: Path) -> None:
    """Through ``python -m radioactive.cli`` (the entry point's code path): no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "RADIOACTIVE_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-m", "radioactive.cli", "report", str(tmp_path / "none")],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Error: no results database here" in _flat(done.stderr)


def test_interrupt_keeps_work_and_exits_130(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "run_experiment", _raise(KeyboardInterrupt()))
    code, _, stderr = _invoke(*_quick(tiny, tmp_path / "out"))
    assert code == 130 and "Interrupted" in stderr and "Traceback" not in stderr
