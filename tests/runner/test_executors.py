"""The process executor with small fake jobs: results stream back, a failing or dying worker is
reported, Ctrl-C cancels queued work at once and keeps what finished, and workers die with their
parent (even when it is killed with SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from radioactive.errors import RadioactiveError
from radioactive.runner.executors import run_inline, run_process_pool
from radioactive.runner.plan import UnitResult

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


# -- fake jobs (module level, so spawned workers can unpickle them by name) ---------------------


def three_units(job: dict) -> list[UnitResult]:
    if job.get("fail"):
        raise ValueError(f"job {job['i']} cannot load")
    if job.get("die"):
        os._exit(7)
    return [UnitResult({"unit_id": f"{job['i']}-{u}", "pid": os.getpid()}, []) for u in range(3)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as dead)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and sys.platform.startswith("linux"):
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- normal operation ---------------------------------------------------------------------------


def test_process_pool_streams_every_unit_and_one_marker_per_job() -> None:
    jobs = [{"i": i} for i in range(5)]
    events = list(run_process_pool(jobs, 2, run_job=three_units))
    units = [e.unit["unit_id"] for e in events if e is not None]
    assert sorted(units) == sorted(f"{i}-{u}" for i in range(5) for u in range(3))
    assert events.count(None) == 5
    # a job's marker comes after all its units
    counts: dict[str, int] = {}
    markers = 0
    for event in events:
        if event is None:
            markers += 1
            assert markers <= sum(1 for n in counts.values() if n == 3)
        else:
            job = event.unit["unit_id"].split("-")[0]
            counts[job] = counts.get(job, 0) + 1
    pids = {e.unit["pid"] for e in events if e is not None}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert _wait_until(lambda: not any(_alive(p) for p in pids), 5)  # the pool is closed


def test_inline_gives_the_same_events_in_order() -> None:
    from radioactive.runner import executors

    jobs = [{"i": i} for i in range(3)]
    original = executors.iter_case_job
    executors.iter_case_job = three_units
    try:
        events = list(run_inline(jobs))
    finally:
        executors.iter_case_job = original
    assert [e.unit["unit_id"] if e else None for e in events] == [
        "0-0", "0-1", "0-2", None, "1-0", "1-1", "1-2", None, "2-0", "2-1", "2-2", None,
    ]  # fmt: skip


def test_a_failing_job_is_reported_with_its_error() -> None:
    jobs = [{"i": 0}, {"i": 1, "fail": True}]
    with pytest.raises(RadioactiveError, match="job 1 cannot load") as info:
        list(run_process_pool(jobs, 1, run_job=three_units))
    assert "rerun the same command" in str(info.value)


def test_a_worker_that_dies_is_reported_not_waited_for() -> None:
    t0 = time.monotonic()
    with pytest.raises(RadioactiveError, match="exit code 7"):
        list(run_process_pool([{"i": 0, "die": True}, {"i": 1}], 2, run_job=three_units))
    assert time.monotonic() - t0 < 30


# -- Ctrl-C and a killed parent (the run is a separate process, as on the command line) ---------

SCRIPT = textwrap.dedent(
    """
    import faulthandler, os, signal, sys, time
    from pathlib import Path
    from radioactive.runner.executors import run_process_pool
    from radioactive.runner.plan import UnitResult

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks, should a test time out

    def slow_job(job):
        out = Path(job["dir"])
        (out / f"pid-{os.getpid()}").touch()
        for u in range(3):
            time.sleep(job["sleep"])
            yield UnitResult({"unit_id": f"{job['i']}-{u}"}, [])
            (out / f"sent-{job['i']}-{u}").touch()  # the parent has it in its pipe now

    if __name__ == "__main__":
        out, n, sleep = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
        jobs = [{"i": i, "dir": str(out), "sleep": sleep} for i in range(n)]
        got = (out / "got.txt").open("a")
        try:
            for event in run_process_pool(jobs, 2, run_job=slow_job):
                if event is not None:
                    got.write(event.unit["unit_id"] + "\\n")
                    got.flush()
        except KeyboardInterrupt:
            got.write("INTERRUPTED\\n")
            got.close()
            sys.exit(130)
        got.write("FINISHED\\n")
    """
)


def _start(tmp_path: Path, n_jobs: int, sleep_s: float) -> subprocess.Popen:
    script = tmp_path / "pool_run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(n_jobs), str(sleep_s)],
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stderr=subprocess.PIPE,
    )


def _got(tmp_path: Path) -> list[str]:
    path = tmp_path / "got.txt"
    return path.read_text().split() if path.exists() else []


def _worker_pids(tmp_path: Path) -> set[int]:
    return {int(p.name.split("-")[1]) for p in tmp_path.glob("pid-*")}


@posix_only
@pytest.mark.parametrize("to_group", [False, True], ids=["parent", "terminal-group"])
def test_ctrl_c_cancels_queued_jobs_at_once_and_keeps_what_finished(
    tmp_path: Path, to_group: bool
) -> None:
    # 60 jobs x 3 units x 0.5 s on 2 workers: about 45 s of queued work
    proc = _start(tmp_path, 60, 0.5)
    try:
        assert _wait_until(lambda: len(_got(tmp_path)) >= 4, 60), proc.stderr
        t0 = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # say where the run and its workers hang
            for pid in [proc.pid, *_worker_pids(tmp_path)]:
                if _alive(pid):
                    os.kill(pid, signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"the run did not stop within 20 s of Ctrl-C; stacks:\n{err[-6000:]}")
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 130, stderr
    assert elapsed < 5, f"interrupt took {elapsed:.1f} s"
    got = _got(tmp_path)
    assert got[-1] == "INTERRUPTED" and "FINISHED" not in got
    units = set(got[:-1])
    assert len(units) < 60 * 3  # the queued jobs did not run
    sent = {p.name.removeprefix("sent-") for p in tmp_path.glob("sent-*")}
    assert sent <= units, f"finished units lost: {sorted(sent - units)}"
    assert "Traceback" not in stderr  # workers do not print KeyboardInterrupt tracebacks
    pids = _worker_pids(tmp_path)
    assert pids and _wait_until(lambda: not any(_alive(p) for p in pids), 5)


@posix_only
def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    # the workers are deep in a long computation (60 s a unit) when the parent is killed
    proc = _start(tmp_path, 20, 60.0)
    try:
        assert _wait_until(lambda: len(_worker_pids(tmp_path)) >= 2, 60)
        pids = _worker_pids(tmp_path)
        assert all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone = _wait_until(lambda: not any(_alive(p) for p in pids), 10)
    finally:
        for pid in _worker_pids(tmp_path):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert gone, "workers outlived their killed parent"


WATCHDOG_SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os, sys, time
    from pathlib import Path

    def child(parent_pid, out):
        from radioactive.runner.executors import _die_with_parent
        _die_with_parent(parent_pid, prctl=False, interval_s=0.1)
        Path(out, "child.pid").write_text(str(os.getpid()))
        time.sleep(120)

    if __name__ == "__main__":
        p = mp.get_context("spawn").Process(target=child, args=(os.getpid(), sys.argv[1]))
        p.start()
        time.sleep(120)
    """
)


@posix_only
def test_the_watchdog_alone_ends_an_orphaned_worker(tmp_path: Path) -> None:
    """Without prctl (not Linux), the watchdog thread notices that the parent is gone."""
    script = tmp_path / "watchdog.py"
    script.write_text(WATCHDOG_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    pid_file = tmp_path / "child.pid"
    child = None
    try:
        assert _wait_until(pid_file.exists, 60)
        time.sleep(0.1)
        child = int(pid_file.read_text())
        assert _alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone = _wait_until(lambda: not _alive(child), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
    assert gone, "the watchdog did not end the orphaned worker"


def test_real_case_jobs_give_the_same_rows_in_the_pool_as_inline(tmp_path: Path) -> None:
    from radioactive.runner.config import config_from_dict
    from radioactive.runner.run import run_experiment
    from radioactive.runner.store import ResultStore
    from tests.runner.test_replay import _dataset

    data = {
        "datasets": [{"name": str(_dataset(tmp_path / "Dataset001_Tiny"))}],
        "models": [{"name": "random_walker"}, {"name": "filled_box"}],
        "prompters": ["box_per_slice", "points_per_slice(n=1)"],
        "seeds": [0, 1],
        "cache_dir": str(tmp_path / "cache"),
    }
    frames = []
    for kind in ("inline", "process"):
        config = config_from_dict({**data, "executor": {"kind": kind, "workers": 2}})
        report = run_experiment(config, tmp_path / kind)
        assert report.units_failed == 0 and report.units_written == 24, report.errors
        with ResultStore(tmp_path / kind, read_only=True) as store:
            df = store.steps()
        volatile = ["run_id", "wall_s", "encoder_s", "decoder_s", "peak_mem_mb"]
        frames.append(df.drop(columns=volatile).sort_values(["unit_id", "step"]))
    inline, pooled = (f.reset_index(drop=True) for f in frames)
    pd.testing.assert_frame_equal(inline, pooled)
