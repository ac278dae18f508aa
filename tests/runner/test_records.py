"""The one record schema: statuses, step/unit columns, final steps; schema 1 → 2 migration."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from radioactive.records import STEP_COLUMNS, UNIT_COLUMNS, Status, final_steps
from radioactive.runner import store as store_module
from radioactive.runner.store import SCHEMA_VERSION, ResultStore, StoreError, migrate_store


def test_status_is_a_string_enum() -> None:
    assert Status.OK == "ok" and Status("skipped") is Status.SKIPPED
    assert f"{Status.STOPPED}" == "stopped" and str(Status.ERROR) == "error"
    assert {s.value for s in Status} == {"ok", "stopped", "error", "skipped"}


def test_store_columns_derive_from_the_records() -> None:
    assert store_module.STEP_COLUMNS is STEP_COLUMNS
    assert store_module.UNIT_COLUMNS is UNIT_COLUMNS
    assert STEP_COLUMNS["hd95_mm"] == "DOUBLE" and "hd95" not in STEP_COLUMNS
    for name in ("dataset_root", "label_value", "reason", "versions"):
        assert name in UNIT_COLUMNS


def _steps() -> pd.DataFrame:
    rows = []
    for unit, statuses in {"a": ["ok", "ok", "stopped"], "b": ["ok", "error"], "c": ["ok"],
                           "d": ["skipped"]}.items():  # fmt: skip
        for k, status in enumerate(statuses):
            rows.append({"unit_id": unit, "dataset": "D", "case_id": unit, "target": "t",
                         "model": "m", "prompter": "p", "user": None, "seed": 0, "step": k,
                         "status": status, "dice": 0.1 * (k + 1)})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3)  # shuffled


def test_final_steps_takes_the_last_step_of_scored_units() -> None:
    steps = _steps()
    before = steps.copy()
    final = final_steps(steps)
    assert list(final["unit_id"]) == ["a", "c"]
    assert list(final["step"]) == [2, 0]
    assert final.loc[0, "dice"] == pytest.approx(0.3)
    pd.testing.assert_frame_equal(steps, before)  # input untouched
    assert list(final.index) == [0, 1]


def test_final_steps_without_unit_id_groups_by_identity() -> None:
    steps = _steps().drop(columns="unit_id")
    final = final_steps(steps)
    assert list(final["case_id"]) == ["a", "c"]
    assert final_steps(steps.iloc[0:0]).empty


def _schema_1_store(directory: Path, *, old_names: bool) -> None:
    """A store as schema 1 wrote it (with hd95/assd in the first files)."""
    directory.mkdir(parents=True)
    con = duckdb.connect(str(directory / "results.duckdb"))
    hd, assd = ("hd95", "assd") if old_names else ("hd95_mm", "assd_mm")
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, "
                "finished_at TIMESTAMP, config VARCHAR, package_version VARCHAR, git_commit "
                "VARCHAR, environment VARCHAR, dataset_checksums VARCHAR, checkpoint_hashes "
                "VARCHAR, schema_version INTEGER NOT NULL)")  # fmt: skip
    con.execute("CREATE TABLE units (unit_id VARCHAR, run_id VARCHAR, dataset VARCHAR, case_id "
                "VARCHAR, target VARCHAR, model VARCHAR, prompter VARCHAR, \"user\" VARCHAR, "
                "seed BIGINT, status VARCHAR NOT NULL CHECK (status IN ('ok', 'error', "
                "'skipped')), error VARCHAR, n_steps INTEGER, wall_s DOUBLE, finished_at "
                "TIMESTAMP, PRIMARY KEY (unit_id))")  # fmt: skip
    con.execute(f"CREATE TABLE step_rows (unit_id VARCHAR, step INTEGER, dice DOUBLE, {hd} "
                f"DOUBLE, {assd} DOUBLE, PRIMARY KEY (unit_id, step))")  # fmt: skip
    con.execute('CREATE VIEW steps AS SELECT *, unit_id AS "case" FROM step_rows')
    con.execute("INSERT INTO units VALUES ('u1', 'r', 'D', 'c', 't', 'm', 'p', '', 0, 'ok', "
                "NULL, 2, 1.0, NULL)")  # fmt: skip
    con.execute("INSERT INTO step_rows VALUES ('u1', 0, 0.5, 3.0, 1.0), ('u1', 1, 0.7, 2.0, 0.5)")
    con.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_schema_1_store_is_refused_naming_migrate(tmp_path: Path, read_only: bool) -> None:
    _schema_1_store(tmp_path / "old", old_names=True)
    with pytest.raises(StoreError) as info:
        ResultStore(tmp_path / "old", read_only=read_only)
    assert f"radioactive migrate {tmp_path / 'old'}" in str(info.value)


@pytest.mark.parametrize("old_names", [True, False])
def test_migrate_store_converts_schema_1_in_place(tmp_path: Path, old_names: bool) -> None:
    _schema_1_store(tmp_path / "old", old_names=old_names)
    line = migrate_store(tmp_path / "old")
    assert f"migrated from schema 1 to {SCHEMA_VERSION}" in line and "1 units, 2 steps" in line
    assert ("hd95 → hd95_mm" in line) is old_names
    with ResultStore(tmp_path / "old") as store:
        steps = store.steps()
        assert list(steps["hd95_mm"]) == [3.0, 2.0]
        assert list(steps["assd_mm"]) == [1.0, 0.5]
        assert np.isnan(steps["nsd"]).all()
        units = store.units()
        assert list(units["unit_id"]) == ["u1"]
        assert units["versions"].isna().all() and units["reason"].isna().all()
        store.start_run({})  # the runs table has every column of schema 2
    assert "nothing to do" in migrate_store(tmp_path / "old")


def test_migrate_store_without_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no results database"):
        migrate_store(tmp_path)
