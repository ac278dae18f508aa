"""The results database of a benchmark run directory: one DuckDB file, ``DIR/results.duckdb``.

Tables (schema version :data:`SCHEMA_VERSION`, recorded in ``meta``; a store of schema 1 is
refused until :func:`migrate_store` converts it; one of schema 2 is read as it is and upgraded
in place when opened for writing):

``meta``
    ``key``/``value`` pairs; ``schema_version`` is the version of this layout.
``runs``
    One row per ``radioactive run`` invocation: when it started and finished, and its provenance
    (config, package version, git commit, environment, dataset checksums, checkpoint hashes —
    dicts stored as JSON text).
``units``
    One row per finished work unit (dataset × case × target × model × prompter × user × seed) with
    its ``status`` (``'ok'``, ``'error'`` or ``'skipped'``), error message, step count and wall
    time, ``dataset_root``, ``label_value``, ``reason`` (of a skipped unit), ``versions`` (the
    unit's settings and data fingerprint, JSON), ``slot_id`` and the propagation diagnostics
    (:mod:`radioactive.runner.diagnostics`) (columns :data:`UNIT_COLUMNS`). A unit is written
    with all its steps in one transaction, so a unit row exists if and only if all its step rows
    exist — even when the writing process is killed. Skipped units have no step rows.
``step_rows``
    One row per interaction step, columns :data:`STEP_COLUMNS`, primary key ``(unit_id, step)``.
``steps`` (view)
    Every column of ``step_rows`` plus ``"case"`` (a copy of ``case_id``). This is the table to
    query: ``SELECT * FROM steps``. ``case`` is an SQL keyword, so quote it in conditions:
    ``WHERE "case" = 'liver_001'`` (or use ``case_id``).

Floating-point conventions: ``NaN`` is stored as ``NaN`` (Dice of an empty target and an empty
prediction is NaN by definition) and Python ``None`` as ``NULL`` (not measured). In SQL they are
told apart with ``isnan(dice)`` and ``dice IS NULL``; in the DataFrames returned by
:meth:`ResultStore.steps` both read as ``NaN`` (pandas has no NULL in a float64 column).

Writing is single-process and single-threaded (the runner's main process); reading from other
processes is fine while nothing writes. :meth:`ResultStore.close` releases the file lock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

from radioactive.records import STEP_COLUMNS, UNIT_COLUMNS, Status, final_steps
from radioactive.records import UNIT_STATUSES as _UNIT_STATUSES
from radioactive.runner.store_rows import (
    JSON_RUN_COLUMNS,
    check_keys,
    json_text,
    new_run_id,
    plain,
    step_rows,
    unit_row,
    utcnow,
)
from radioactive.runner.store_schema import (
    DB_FILENAME,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    StoreError,
    create_store_file,
    migrate_store,
    q,
    schema_sql,
    schema_version_of,
    upgrade_from_2,
)

__all__ = [
    "DB_FILENAME",
    "MANIFEST_KEYS",
    "SCHEMA_VERSION",
    "STEP_COLUMNS",
    "UNIT_COLUMNS",
    "UNIT_STATUSES",
    "ResultStore",
    "StoreError",
    "migrate_store",
    "new_run_id",
]

logger = logging.getLogger(__name__)

UNIT_STATUSES = tuple(s.value for s in _UNIT_STATUSES)

MANIFEST_KEYS = (
    "config",
    "package_version",
    "git_commit",
    "environment",
    "dataset_checksums",
    "checkpoint_hashes",
    "input_contracts",
)
"""Keys :meth:`ResultStore.start_run` accepts; dict values are stored as JSON text."""

_ORDER = ("dataset", "case_id", "target", "model", "prompter", "user", "seed")
_MAX_ROWS_PER_INSERT = 256
_HAS_APPENDER = hasattr(duckdb.DuckDBPyConnection, "appender")
_q = q
# faults of the disk or the file, not of the rows written
_DISK_ERRORS = (duckdb.IOException, duckdb.PermissionException, duckdb.FatalException, OSError)


class ResultStore:
    """The DuckDB results database of one run directory (``directory/results.duckdb``).

    Opening creates the directory, the file and the schema if missing (unless ``read_only``) and
    checks the schema version. One connection per store object; use it as a context manager or
    call :meth:`close` to release the file lock.
    """

    def __init__(self, directory: str | Path, *, read_only: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / DB_FILENAME
        self.read_only = read_only
        if read_only and not self.path.is_file():
            raise StoreError(
                "no results database here",
                path=self.path,
                fix="run `radioactive run` with this output directory first, or check the path",
            )
        if not read_only:
            self._create_if_missing()
        self._appender: Any = None  # duckdb.Appender (DuckDB >= 2.0), made on first write
        self._connection: duckdb.DuckDBPyConnection | None = self._connect()
        try:
            self._check_or_create_schema()
        except duckdb.Error as error:
            self.close()
            raise self._error("cannot read the results database", error) from error
        except BaseException:
            self.close()
            raise

    # -- connection and schema ------------------------------------------------------------------

    def _error(self, what: str, error: BaseException) -> StoreError:
        """A StoreError for a DuckDB or OS error, with the likely fix."""
        text = " ".join(str(error).split())
        low = text.lower()
        if "lock" in low:
            fix = (
                "another process has this results database open (a running `radioactive "
                "run`?); wait for it to finish or use another output directory"
            )
        elif any(w in low for w in ("read-only", "read only", "permission", "no space", "full")):
            fix = "choose an output directory you can write to (is it read-only or the disk full?)"
        else:
            fix = (
                "the file is not a readable DuckDB database (truncated or damaged?): move it "
                "away and run again, or write to another output directory"
            )
        return StoreError(f"{what} ({text})", path=self.path, fix=fix)

    def _create_if_missing(self) -> None:
        """Create the folder and an empty store (atomically) unless one is there; a 0-byte
        file (a kill before DuckDB wrote anything) is replaced."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and self.path.stat().st_size == 0:
                logger.warning("replacing the empty file %s by a new results database", self.path)
                self.path.unlink()
        except OSError as error:
            raise self._error("cannot create the output directory", error) from error
        if not self.path.exists():
            create_store_file(self.path)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as error:
            raise self._error("cannot open the results database", error) from error

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            raise StoreError("the result store is closed", path=self.path, fix="open a new one")
        return self._connection

    def _check_or_create_schema(self) -> None:
        tables = {row[0] for row in self._con.execute("SHOW TABLES").fetchall()}
        if not tables and not self.read_only:  # created empty by an older version
            self._con.begin()
            try:
                for statement in schema_sql():
                    self._con.execute(statement)
                self._con.commit()
            except BaseException:
                self._con.rollback()
                raise
            return
        if "meta" not in tables:
            raise StoreError(
                "this DuckDB file is not a radioactive results database (no `meta` table)",
                path=self.path,
                fix="choose another output directory, or move this file away",
            )
        found = schema_version_of(self._con)
        if found == "1":
            raise StoreError(
                f"results schema version 1 found, this radioactive reads version {SCHEMA_VERSION}",
                path=self.path,
                fix=f"convert it in place with `radioactive migrate {self.directory}` (or write "
                "new results to another output directory)",
            )
        if found == "2" and not self.read_only:  # only columns added since: read as it is
            upgrade_from_2(self._con)
        elif found not in READABLE_VERSIONS:
            raise StoreError(
                f"results schema version {found} found, this radioactive reads version "
                f"{SCHEMA_VERSION}",
                path=self.path,
                fix="open it with the radioactive version that wrote it (see the `runs` table's "
                "package_version), or write new results to another output directory",
            )

    def close(self) -> None:
        """Close the connection and release the file lock (idempotent)."""
        self._appender = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = (
            "closed" if self._connection is None else ("read-only" if self.read_only else "open")
        )
        return f"ResultStore({str(self.directory)!r}, {state})"

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, manifest: Mapping[str, Any]) -> str:
        """Record a new run with its provenance manifest (keys :data:`MANIFEST_KEYS`)."""
        check_keys(manifest, MANIFEST_KEYS, "manifest")
        now = utcnow()
        run_id = new_run_id(now)
        values = {key: plain(manifest.get(key)) for key in MANIFEST_KEYS}
        for key in JSON_RUN_COLUMNS:
            values[key] = json_text(values[key], column=key)
        self._con.execute(
            "INSERT INTO runs (run_id, started_at, finished_at, config, package_version, "
            "git_commit, environment, dataset_checksums, checkpoint_hashes, schema_version, "
            "input_contracts) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                now,
                values["config"],
                values["package_version"],
                values["git_commit"],
                values["environment"],
                values["dataset_checksums"],
                values["checkpoint_hashes"],
                SCHEMA_VERSION,
                values["input_contracts"],
            ],
        )
        logger.info("started run %s in %s", run_id, self.path)
        return run_id

    def finish_run(self, run_id: str) -> None:
        """Set the run's ``finished_at`` to now."""
        found = self._con.execute(
            "UPDATE runs SET finished_at = ? WHERE run_id = ? RETURNING run_id",
            [utcnow(), run_id],
        ).fetchall()
        if not found:
            raise StoreError(
                f"no run {run_id!r} in this results database",
                path=self.path,
                fix="pass the id that start_run returned",
            )

    # -- units and steps ------------------------------------------------------------------------

    def finished_units(self, *, include_errors: bool = True) -> set[str]:
        """Ids of units already written; without ``include_errors``, those with status error
        are left out (so that a resumed run retries them)."""
        sql = "SELECT unit_id FROM units"
        if not include_errors:
            sql += f" WHERE status <> '{Status.ERROR.value}'"
        return {row[0] for row in self._con.execute(sql).fetchall()}

    def stored_units(self) -> list[dict[str, Any]]:
        """The identity of every stored unit (``unit_id``, ``dataset``, ``case_id``,
        ``target``, ``model``, ``prompter``, ``user``, ``seed``, ``status``, ``slot_id`` and
        ``versions`` parsed from JSON, ``None`` for units written before schema 2)."""
        columns = ("unit_id", "dataset", "case_id", "target", "model", "prompter", "user",
                   "seed", "status", "slot_id", "versions")  # fmt: skip
        cursor = self._con.execute(f"SELECT {', '.join(_q(c) for c in columns)} FROM units")
        out = []
        for row in cursor.fetchall():
            unit = dict(zip(columns, row, strict=True))
            unit["versions"] = json.loads(unit["versions"]) if unit["versions"] else None
            out.append(unit)
        return out

    def delete_units(self, unit_ids: Iterable[str]) -> int:
        """Delete these units and their steps in one transaction; the number deleted."""
        ids = sorted(set(unit_ids))
        if not ids:
            return 0
        con = self._con
        con.begin()
        try:
            con.execute("CREATE TEMP TABLE IF NOT EXISTS _gone (unit_id VARCHAR)")
            con.execute("DELETE FROM _gone")
            con.executemany("INSERT INTO _gone VALUES (?)", [[i] for i in ids])
            found = con.execute(
                "SELECT count(*) FROM units WHERE unit_id IN (SELECT unit_id FROM _gone)"
            ).fetchone()
            con.execute("DELETE FROM step_rows WHERE unit_id IN (SELECT unit_id FROM _gone)")
            con.execute("DELETE FROM units WHERE unit_id IN (SELECT unit_id FROM _gone)")
            con.commit()
        except duckdb.Error as error:
            con.rollback()
            raise self._error("cannot delete units", error) from error
        except BaseException:
            con.rollback()
            raise
        return int(found[0]) if found else 0

    def write_unit(
        self,
        unit: Mapping[str, Any],
        steps: Sequence[Mapping[str, Any]],
        *,
        replace_errors: bool = False,
        replaces: Iterable[str] = (),
    ) -> bool:
        """Write one unit row and all its step rows in one transaction.

        ``unit`` has keys from :data:`UNIT_COLUMNS` (``unit_id`` and ``status`` required;
        ``n_steps`` defaults to ``len(steps)``, ``finished_at`` to now, UTC). Each step has keys
        from :data:`STEP_COLUMNS` (``step`` required); a missing key is NULL, except the identity
        columns (run_id, unit_id, dataset, case_id, target, model, prompter, user, seed), which
        default to the unit's. ``realism``/``prompts``/``versions`` may be JSON text or a
        JSON-serialisable object. Unknown keys raise ``ValueError`` naming them.

        Returns ``False`` and writes nothing if the unit is already stored — unless its status
        is ``'error'`` and ``replace_errors`` is true: then the old unit and its steps are
        deleted and the new ones written in the same transaction. Returns ``True`` if written.
        The units named in ``replaces`` (stale versions of this one) are deleted in the same
        transaction when it is written. A disk or permission fault is a :class:`StoreError`.
        """
        record = unit_row(unit, len(steps))
        rows = step_rows(unit, steps)
        unit_id = unit["unit_id"]
        con = self._con
        con.begin()
        try:
            existing = con.execute(
                "SELECT status FROM units WHERE unit_id = ?", [unit_id]
            ).fetchone()
            if existing is not None:
                if not (replace_errors and existing[0] == Status.ERROR.value):
                    con.rollback()
                    return False
            for gone in {unit_id, *replaces} if existing is not None else set(replaces):
                con.execute("DELETE FROM step_rows WHERE unit_id = ?", [gone])
                con.execute("DELETE FROM units WHERE unit_id = ?", [gone])
            self._insert_unit(record)
            self._insert_steps(rows)
            con.commit()
        except _DISK_ERRORS as error:
            con.rollback()
            raise self._error(f"cannot write unit {unit_id!r}", error) from error
        except BaseException:
            con.rollback()
            raise
        return True

    def _insert_unit(self, row: list[Any]) -> None:
        marks = ", ".join("?" * len(row))
        self._con.execute(f"INSERT INTO units VALUES ({marks})", row)

    def _insert_steps(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        if _HAS_APPENDER:
            # one buffered statement: ~1 ms for a few rows, where binding 35 parameters per row
            # in an INSERT ... VALUES costs ~0.2 ms a row
            if self._appender is None:
                self._appender = self._con.appender("step_rows")
            try:
                self._appender.append_rows(rows)
                self._appender.flush()
            except BaseException:
                self._appender.clear()
                raise
            return
        one = "(" + ", ".join("?" * len(STEP_COLUMNS)) + ")"
        for start in range(0, len(rows), _MAX_ROWS_PER_INSERT):
            chunk = rows[start : start + _MAX_ROWS_PER_INSERT]
            params = [value for row in chunk for value in row]
            self._con.execute(
                f"INSERT INTO step_rows VALUES {', '.join([one] * len(chunk))}", params
            )

    # -- reading --------------------------------------------------------------------------------

    def steps(self, where: str | None = None, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """``SELECT * FROM steps [WHERE where]`` in a stable order, as a DataFrame.

        ``where`` is an SQL condition with ``?`` placeholders bound from ``params``, e.g.
        ``store.steps("model = ? AND step = 0", ["sam"])``. NULL doubles read as NaN.
        """
        sql = "SELECT * FROM steps"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY " + ", ".join(_q(c) for c in (*_ORDER, "step"))
        return self._read(sql, params)

    def units(self) -> pd.DataFrame:
        """All unit rows, in a stable order."""
        order = ", ".join(_q(c) for c in _ORDER)
        return self._read(f"SELECT * FROM units ORDER BY {order}, unit_id")

    def runs(self) -> pd.DataFrame:
        """All run rows, oldest first."""
        return self._read("SELECT * FROM runs ORDER BY started_at, run_id")

    def _read(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """A query as a DataFrame; a damaged file is a :class:`StoreError`, bad SQL in a
        ``where`` condition stays a DuckDB error."""
        try:
            return self._con.execute(sql, list(params or [])).df()
        except (*_DISK_ERRORS, duckdb.SerializationException) as error:
            raise self._error("cannot read the results database", error) from error

    def summary(self) -> dict[str, Any]:
        """Counts and, per (model, prompter, user), plain means over the last step of each ok
        unit (:func:`radioactive.records.final_steps`, pooled over datasets: the report's
        dataset-weighted means are :class:`radioactive.report.view.ResultsView`'s).

        ``n_targets`` counts the ok units; ``mean_dice``/``mean_nsd`` leave out NaN (empty target
        and prediction) and NULL; ``mean_dof``/``mean_seconds`` are the means of ``cum_dof``/
        ``cum_seconds`` at the last step — the total interaction effort of a unit.
        """
        con = self._con
        n_runs = con.execute("SELECT count(*) FROM runs").fetchone()
        n_steps = con.execute("SELECT count(*) FROM step_rows").fetchone()
        by_status = dict.fromkeys(UNIT_STATUSES, 0)
        for status, count in con.execute(
            "SELECT status, count(*) FROM units GROUP BY status"
        ).fetchall():
            by_status[status] = count
        ok = self._read(
            "SELECT s.* FROM steps s JOIN units u USING (unit_id) WHERE u.status = ?",
            [Status.OK.value],
        )
        groups = _final_groups(final_steps(ok))
        return {
            "runs": n_runs[0] if n_runs else 0,
            "units": by_status,
            "steps": n_steps[0] if n_steps else 0,
            "final": groups,
        }


def _mean(values: pd.Series) -> float | None:
    """Mean leaving NaN out; ``None`` when nothing is left (as SQL's ``avg``)."""
    kept = pd.to_numeric(values, errors="coerce").dropna()
    return float(kept.mean()) if len(kept) else None


def _final_groups(last: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (model, prompter, user) of the final steps: count and plain means (see summary)."""
    if last.empty:
        return []
    keys = ["model", "prompter", "user"]
    out = []
    ordered = last.sort_values(keys, na_position="first", kind="stable")
    for key, group in ordered.groupby(keys, sort=False, dropna=False):
        model, prompter, user = (None if pd.isna(k) else k for k in key)
        out.append({
            "model": model, "prompter": prompter, "user": user, "n_targets": len(group),
            "mean_dice": _mean(group["dice"]), "mean_nsd": _mean(group["nsd"]),
            "mean_dof": _mean(group["cum_dof"]), "mean_seconds": _mean(group["cum_seconds"]),
        })  # fmt: skip
    return out
