"""ResultStore: schema, round trips, resume semantics, summary and crash safety."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from radioactive.errors import RadioactiveError
from radioactive.runner import store as store_module
from radioactive.runner.store import (
    DB_FILENAME,
    SCHEMA_VERSION,
    STEP_COLUMNS,
    ResultStore,
    StoreError,
)

MANIFEST = {
    "config": {"models": ["sam"], "seeds": [0, 1]},
    "package_version": "0.1.0",
    "git_commit": "abc123",
    "environment": {"python": "3.11", "cuda": None},
    "dataset_checksums": {"demo": "sha256:00"},
    "checkpoint_hashes": {},
}


def make_unit(
    unit_id: str, *, status: str = "ok", model: str = "sam", prompter: str = "p", user: str = "u"
) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "run_id": "r1",
        "dataset": "demo",
        "case_id": f"case_{unit_id}",
        "target": "liver",
        "model": model,
        "prompter": prompter,
        "user": user,
        "seed": 7,
        "status": status,
        "error": "boom" if status == "error" else None,
        "wall_s": 1.5,
    }


def make_steps(n: int, *, dice: list[float] | None = None, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "step": k,
            "status": "ok",
            "dice": dice[k] if dice else 0.5 + 0.1 * k,
            "dof": 2,
            "cum_dof": 2 * (k + 1),
            "seconds": 1.0,
            "cum_seconds": float(k + 1),
            **extra,
        }
        for k in range(n)
    ]


@pytest.fixture(params=["appender", "insert"])
def step_insert(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with DuckDB's appender (>= 2.0) and with the INSERT ... VALUES fallback."""
    if request.param == "insert":
        monkeypatch.setattr(store_module, "_HAS_APPENDER", False)
    elif not store_module._HAS_APPENDER:
        pytest.skip("this DuckDB has no appender")
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path):
    with ResultStore(tmp_path / "run") as s:
        yield s


# -- schema ------------------------------------------------------------------------------------


def test_creates_directory_file_and_schema(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    with ResultStore(directory) as s:
        assert s.path == directory / DB_FILENAME and s.path.is_file()
    con = duckdb.connect(str(directory / DB_FILENAME), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert {"meta", "runs", "units", "step_rows", "steps"} <= tables
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        described = con.execute("DESCRIBE step_rows").fetchall()
        assert {r[0]: r[1] for r in described} == STEP_COLUMNS
        assert [r[0] for r in described] == list(STEP_COLUMNS)
        view_columns = [r[0] for r in con.execute("DESCRIBE steps").fetchall()]
        assert set(view_columns) == {*STEP_COLUMNS, "case"}
    finally:
        con.close()


def test_reopening_keeps_data(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.write_unit(make_unit("u1"), make_steps(2))
    with ResultStore(tmp_path) as s:
        assert s.finished_units() == {"u1"}
    with ResultStore(tmp_path, read_only=True) as s:
        assert len(s.steps()) == 2


@pytest.mark.parametrize("read_only", [False, True])
def test_other_schema_version_is_refused(tmp_path: Path, read_only: bool) -> None:
    ResultStore(tmp_path).close()
    con = duckdb.connect(str(tmp_path / DB_FILENAME))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError) as info:
        ResultStore(tmp_path, read_only=read_only)
    message = str(info.value)
    assert isinstance(info.value, RadioactiveError)
    assert str(tmp_path / DB_FILENAME) in message
    assert "version 99" in message and f"version {SCHEMA_VERSION}" in message
    assert "Fix:" in message and "another output directory" in message
    # the failed open released the file: a plain connection can write again
    duckdb.connect(str(tmp_path / DB_FILENAME)).close()


def test_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / DB_FILENAME))
    con.execute("CREATE TABLE something (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a radioactive results database"):
        ResultStore(tmp_path)


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError) as info:
        ResultStore(tmp_path)
    assert str(tmp_path / DB_FILENAME) in str(info.value) and "Fix:" in str(info.value)


def test_read_only_on_missing_store_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreError) as info:
        ResultStore(missing, read_only=True)
    assert str(missing / DB_FILENAME) in str(info.value)
    assert "radioactive run" in str(info.value)
    assert not missing.exists()


def test_closed_store_raises(tmp_path: Path) -> None:
    s = ResultStore(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.finished_units()


# -- runs --------------------------------------------------------------------------------------


def test_runs_record_the_manifest(store: ResultStore) -> None:
    first = store.start_run(MANIFEST)
    second = store.start_run({"config": {}})
    assert first != second and len(first) < 32
    runs = store.runs()
    assert set(runs["run_id"]) == {first, second}
    row = runs.set_index("run_id").loc[first]
    for key in ("config", "environment", "dataset_checksums", "checkpoint_hashes"):
        assert json.loads(row[key]) == MANIFEST[key]
    assert row["package_version"] == "0.1.0" and row["git_commit"] == "abc123"
    assert row["schema_version"] == SCHEMA_VERSION
    assert runs.set_index("run_id").loc[second, ["git_commit", "environment"]].isna().all()
    assert runs["finished_at"].isna().all()
    store.finish_run(first)
    runs = store.runs().set_index("run_id")
    assert runs.loc[first, "finished_at"] >= runs.loc[first, "started_at"]
    assert runs["finished_at"].isna().sum() == 1


def test_run_errors(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="gpu_count"):
        store.start_run({**MANIFEST, "gpu_count": 1})
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.finish_run("nope")


# -- units and steps ---------------------------------------------------------------------------


def test_round_trip_values_nan_null_and_json(tmp_path: Path, step_insert: str) -> None:
    prompts = '[{"kind": "point", "zyx": [1, 2, 3], "positive": true}]'
    steps = [
        {
            "step": 0,
            "status": "ok",
            "dice": float("nan"),  # empty target, empty prediction
            "nsd": None,  # not measured
            "hd95_mm": 2.25,
            "dof": np.int64(3),
            "seconds": np.float32(0.5),
            "target_kind": "organ",
            "modality": "CT",
            "prompts": prompts,
            "versions": {"prompter": "1", "metrics": "2"},
            "peak_mem_mb": 12.5,
        },
        {"step": 1, "status": "ok", "dice": 0.75, "nsd": 0.5, "prompts": "[]"},
    ]
    unit = make_unit("u1")
    with ResultStore(tmp_path) as s:
        assert s.write_unit(unit, steps) is True
        df = s.steps()
        units = s.units()
    assert len(df) == 2 and list(df["step"]) == [0, 1]
    first, second = df.iloc[0], df.iloc[1]
    # identity columns come from the unit
    for key in ("run_id", "unit_id", "dataset", "case_id", "target", "model", "prompter", "user"):
        assert first[key] == unit[key] and second[key] == unit[key]
    assert first["seed"] == 7 and first["case"] == "case_u1"
    assert math.isnan(first["dice"]) and second["dice"] == 0.75 and first["hd95_mm"] == 2.25
    assert first["dof"] == 3 and first["seconds"] == 0.5 and first["peak_mem_mb"] == 12.5
    assert first["prompts"] == prompts and second["prompts"] == "[]"
    assert json.loads(first["versions"]) == {"prompter": "1", "metrics": "2"}
    assert first["target_kind"] == "organ" and first["modality"] == "CT"
    assert units["n_steps"].tolist() == [2] and units["wall_s"].tolist() == [1.5]
    assert units["error"].isna().all() and not units["finished_at"].isna().any()

    # NaN and NULL stay distinct; `steps` (with "case") works from a plain connection after close
    con = duckdb.connect(str(tmp_path / DB_FILENAME), read_only=True)
    try:
        rows = con.execute(
            'SELECT step, isnan(dice), dice IS NULL, nsd IS NULL, category IS NULL, "case" '
            "FROM steps ORDER BY step"
        ).fetchall()
        assert rows == [
            (0, True, False, True, True, "case_u1"),
            (1, False, False, False, True, "case_u1"),
        ]
        assert con.execute("SELECT count(*) FROM steps WHERE \"case\" = 'case_u1'").fetchone() == (
            2,
        )
        star = con.execute("SELECT * FROM steps").df()
        assert "case" in star.columns and "case_id" in star.columns
    finally:
        con.close()


def test_steps_where_and_order(store: ResultStore) -> None:
    store.write_unit(make_unit("b", model="m2"), make_steps(2))
    store.write_unit(make_unit("a", model="m1"), make_steps(3))
    df = store.steps()
    assert list(zip(df["unit_id"], df["step"], strict=True)) == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1),
    ]  # fmt: skip
    only = store.steps("model = ? AND step >= ?", ["m1", 1])
    assert list(only["step"]) == [1, 2] and set(only["model"]) == {"m1"}


def test_bad_input_raises_and_writes_nothing(store: ResultStore, step_insert: str) -> None:
    with pytest.raises(ValueError, match=r"\['colour', 'zz'\]"):
        store.write_unit(make_unit("u1"), make_steps(1, colour="red", zz=1))
    with pytest.raises(ValueError, match="shoe_size"):
        store.write_unit({**make_unit("u1"), "shoe_size": 42}, make_steps(1))
    with pytest.raises(ValueError, match="no 'step'"):
        store.write_unit(make_unit("u1"), [{"dice": 0.5}])
    with pytest.raises(ValueError, match="status"):
        store.write_unit(make_unit("u1", status="fine"), make_steps(1))
    with pytest.raises(ValueError, match="prompts"):
        store.write_unit(make_unit("u1"), make_steps(1, prompts={"a": object()}))
    # a failure inside the transaction (after the unit row went in) rolls everything back
    with pytest.raises(duckdb.Error):
        store.write_unit(make_unit("u1"), make_steps(2, dof="not a number"))
    assert store.finished_units() == set() and store.steps().empty
    assert store.write_unit(make_unit("u1"), make_steps(2)) is True


def test_duplicate_write_returns_false(store: ResultStore) -> None:
    assert store.write_unit(make_unit("u1"), make_steps(2)) is True
    assert store.write_unit(make_unit("u1"), make_steps(3)) is False
    assert store.write_unit(make_unit("u1"), make_steps(2), replace_errors=True) is False
    assert len(store.units()) == 1
    assert len(store.steps()) == 2


def test_skipped_unit_is_not_replaced(store: ResultStore) -> None:
    assert store.write_unit(make_unit("s", status="skipped"), []) is True
    assert store.write_unit(make_unit("s"), make_steps(1), replace_errors=True) is False
    assert store.units()["n_steps"].tolist() == [0]


def test_replace_errors(store: ResultStore) -> None:
    assert store.write_unit(make_unit("u1", status="error"), make_steps(1)) is True
    assert store.write_unit(make_unit("u1"), make_steps(3)) is False
    assert store.units()["status"].tolist() == ["error"]
    assert store.write_unit(make_unit("u1"), make_steps(3), replace_errors=True) is True
    units = store.units()
    assert units["status"].tolist() == ["ok"] and units["error"].isna().all()
    assert store.steps()["step"].tolist() == [0, 1, 2]
    assert store.write_unit(make_unit("u1"), make_steps(3), replace_errors=True) is False


def test_finished_units(store: ResultStore) -> None:
    assert store.finished_units() == set()
    store.write_unit(make_unit("ok"), make_steps(1))
    store.write_unit(make_unit("err", status="error"), [])
    store.write_unit(make_unit("skip", status="skipped"), [])
    assert store.finished_units() == {"ok", "err", "skip"}
    assert store.finished_units(include_errors=True) == {"ok", "err", "skip"}
    assert store.finished_units(include_errors=False) == {"ok", "skip"}


def test_summary(store: ResultStore) -> None:
    store.start_run(MANIFEST)
    nan = float("nan")
    # (unit, model, user, status, dice per step)
    plan = [
        ("a1", "m1", "u", "ok", [0.2, 0.6, 0.9]),
        ("a2", "m1", "u", "ok", [0.4, 0.7]),
        ("a3", "m1", "u", "ok", [nan]),  # both empty: excluded from the Dice mean
        ("a4", "m1", "u", "error", [0.1, 0.1]),  # errors are left out of "final"
        ("b1", "m2", "u", "ok", [0.3]),
        ("c1", "m1", "v", "ok", [0.5, 0.8]),
        ("s1", "m2", "u", "skipped", []),
    ]
    for unit_id, model, user, status, dice in plan:
        steps = make_steps(len(dice), dice=dice, nsd=0.25)
        store.write_unit(make_unit(unit_id, model=model, user=user, status=status), steps)

    summary = store.summary()
    assert summary["runs"] == 1
    assert summary["units"] == {"ok": 5, "error": 1, "skipped": 1}
    assert summary["steps"] == 3 + 2 + 1 + 2 + 1 + 2
    final = {(g["model"], g["prompter"], g["user"]): g for g in summary["final"]}
    assert list(final) == [("m1", "p", "u"), ("m1", "p", "v"), ("m2", "p", "u")]
    m1u = final[("m1", "p", "u")]
    assert m1u["n_targets"] == 3
    assert m1u["mean_dice"] == pytest.approx((0.9 + 0.7) / 2)
    assert m1u["mean_nsd"] == pytest.approx(0.25)
    # cum_dof at the last step is 2 * n_steps, cum_seconds is n_steps
    assert m1u["mean_dof"] == pytest.approx((6 + 4 + 2) / 3)
    assert m1u["mean_seconds"] == pytest.approx((3 + 2 + 1) / 3)
    assert final[("m1", "p", "v")]["mean_dice"] == pytest.approx(0.8)
    assert final[("m2", "p", "u")]["n_targets"] == 1
    assert final[("m2", "p", "u")]["mean_dof"] == pytest.approx(2.0)


def test_summary_of_empty_store(store: ResultStore) -> None:
    assert store.summary() == {
        "runs": 0,
        "units": {"ok": 0, "error": 0, "skipped": 0},
        "steps": 0,
        "final": [],
    }


def test_write_unit_is_fast(store: ResultStore) -> None:
    steps = make_steps(6, nsd=0.5, prompts='[{"kind": "point"}]')
    times = []
    for i in range(50):
        start = time.perf_counter()
        store.write_unit(make_unit(f"u{i}"), steps)
        times.append(time.perf_counter() - start)
    # typically 1-3 ms; the bound only catches a gross regression on a loaded machine
    assert sorted(times)[len(times) // 2] < 0.05


# -- crash safety and locking ------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    from radioactive.runner.store import ResultStore

    directory, mode = sys.argv[1], sys.argv[2]
    store = None if mode == "open" else ResultStore(directory)

    def write(i):
        n = 1 + i % 7
        unit = {"unit_id": f"u{i:05d}", "run_id": "r", "status": "ok", "n_steps": n}
        steps = [{"step": k, "dice": k / n, "prompts": "[" + "1," * 200 + "1]"} for k in range(n)]
        store.write_unit(unit, steps)

    if mode == "loop":
        i = 0
        while True:
            write(i)
            print(i, flush=True)
            i += 1
            time.sleep(0.005)
    elif mode == "mid":
        for i in range(3):
            write(i)
        insert_steps = store._insert_steps

        def stall(rows):
            insert_steps(rows)  # the unit row and its steps are in, not committed
            print("mid", flush=True)
            time.sleep(60)

        store._insert_steps = stall
        write(3)
    elif mode == "open":
        try:
            ResultStore(directory).close()
            print("opened", flush=True)
        except Exception as error:
            print(type(error).__name__, str(error).replace("\\n", " "), flush=True)
    """
)


def _start_child(directory: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
    )


def _read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(10)
        assert child.stderr is not None
        pytest.fail(f"child exited early ({child.returncode}): {child.stderr.read()}")
    return line.strip()


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL


def _assert_consistent(directory: Path) -> set[str]:
    """The store opens (read-only and read-write) and holds only whole units."""
    with ResultStore(directory, read_only=True) as s:
        read_only_units = s.finished_units()
    with ResultStore(directory) as s:
        con = s._con
        assert s.finished_units() == read_only_units
        partial = con.execute(
            "SELECT u.unit_id, u.n_steps, count(s.step), min(s.step), max(s.step) FROM units u "
            "LEFT JOIN step_rows s USING (unit_id) GROUP BY u.unit_id, u.n_steps "
            "HAVING count(s.step) <> u.n_steps OR min(s.step) <> 0 OR max(s.step) <> u.n_steps - 1"
        ).fetchall()
        assert partial == []
        orphans = con.execute(
            "SELECT count(*) FROM step_rows WHERE unit_id NOT IN (SELECT unit_id FROM units)"
        ).fetchone()
        assert orphans == (0,)
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT unit_id, step FROM step_rows "
            "GROUP BY unit_id, step HAVING count(*) > 1)"
        ).fetchone()
        assert duplicates == (0,)
        # and it is writable again
        assert s.write_unit({"unit_id": "after", "status": "ok"}, [{"step": 0}]) is True
        return read_only_units


@pytest.mark.parametrize("delay_s", [0.05, 0.3])
def test_sigkill_in_a_write_loop_leaves_whole_units(tmp_path: Path, delay_s: float) -> None:
    ResultStore(tmp_path).close()  # created here, then opened by the child: close released it
    child = _start_child(tmp_path, "loop")
    try:
        written = [_read_line(child) for _ in range(10)]
        time.sleep(delay_s)
    finally:
        _kill(child)
    units = _assert_consistent(tmp_path)
    assert {f"u{int(i):05d}" for i in written} <= units  # committed units survive the kill


def test_sigkill_inside_the_transaction_leaves_no_trace(tmp_path: Path) -> None:
    child = _start_child(tmp_path, "mid")
    try:
        assert _read_line(child) == "mid"
    finally:
        _kill(child)
    units = _assert_consistent(tmp_path)
    assert units == {"u00000", "u00001", "u00002"}


def test_open_store_is_locked_against_other_processes(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.write_unit(make_unit("u1"), make_steps(2))  # the appender exists now
        child = _start_child(tmp_path, "open")
        out, err = child.communicate(timeout=30)
        assert out.startswith("StoreError"), err
        assert "another process" in out and str(tmp_path / DB_FILENAME) in out
    # close() released the lock
    child = _start_child(tmp_path, "open")
    out, err = child.communicate(timeout=30)
    assert out.strip() == "opened", err


# -- faults of the file and the folder ------------------------------------------------------------

_CREATING_CHILD = textwrap.dedent(
    """
    import sys, time
    from radioactive.runner import store_schema
    from radioactive.runner.store import ResultStore

    original = store_schema._in_transaction

    def slow(con, statements):  # killed after the first tables, before the commit
        con.execute(statements[0])
        print("mid", flush=True)
        time.sleep(60)

    store_schema._in_transaction = slow
    ResultStore(sys.argv[1])
    """
)


def test_sigkill_while_the_store_is_created_leaves_a_store_that_opens(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CREATING_CHILD, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace",
    )  # fmt: skip
    try:
        assert _read_line(child) == "mid"
    finally:
        _kill(child)
    assert not (tmp_path / DB_FILENAME).exists()  # only a temporary file was being written
    with ResultStore(tmp_path) as s:
        assert s.write_unit(make_unit("u1"), make_steps(1)) is True
    with ResultStore(tmp_path, read_only=True) as s:
        assert s.finished_units() == {"u1"}


def test_an_empty_or_tableless_store_file_is_recreated(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / DB_FILENAME).write_bytes(b"")  # killed before DuckDB wrote anything
    (tmp_path / "b").mkdir()
    duckdb.connect(str(tmp_path / "b" / DB_FILENAME)).close()  # a DuckDB file without tables
    for name in ("a", "b"):
        with ResultStore(tmp_path / name) as s:
            assert s.write_unit(make_unit("u1"), make_steps(1)) is True


def test_an_output_folder_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        ResultStore(blocker / "out")
    message = str(info.value)
    assert str(blocker / "out" / DB_FILENAME) in message and "Fix:" in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_folder_is_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError) as info:
            ResultStore(folder)
    finally:
        folder.chmod(0o700)
    assert str(folder / DB_FILENAME) in str(info.value) and "write to" in str(info.value)


def test_a_full_disk_while_writing_is_a_store_error(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(rows: list[Any]) -> None:
        raise duckdb.IOException("Could not write file: No space left on device")

    monkeypatch.setattr(store, "_insert_steps", full)
    with pytest.raises(StoreError) as info:
        store.write_unit(make_unit("u1"), make_steps(2))
    message = str(info.value)
    assert "No space left" in message and str(store.path) in message
    assert "disk full" in message
    monkeypatch.undo()
    assert store.finished_units() == set()  # rolled back, and the store still works
    assert store.write_unit(make_unit("u1"), make_steps(2)) is True


@pytest.mark.parametrize("read_only", [False, True])
def test_a_truncated_store_is_a_store_error(tmp_path: Path, read_only: bool) -> None:
    with ResultStore(tmp_path) as s:
        for i in range(50):
            s.write_unit(make_unit(f"u{i}"), make_steps(3))
    path = tmp_path / DB_FILENAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError) as info:
        with ResultStore(tmp_path, read_only=read_only) as s:
            s.steps()
    assert str(path) in str(info.value) and "Fix:" in str(info.value)
