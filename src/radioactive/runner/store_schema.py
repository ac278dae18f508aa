"""The table layout of the results database, its creation and the migration of older layouts.

The columns come from :mod:`radioactive.records`. :data:`SCHEMA_VERSION` is recorded in the
``meta`` table; a store of an older version is refused until :func:`migrate_store` (CLI
``radioactive migrate DIR``) converts it in place.

Schema history:

1. the first layout (``hd95``/``assd`` without unit in early files);
2. ``hd95_mm``/``assd_mm``; ``units`` gains ``dataset_root``, ``label_value``, ``reason``,
   ``versions`` (the unit's identity as JSON) and ``slot_id``; skipped units are written.
3. ``units`` gains the propagation diagnostics ``propagates``, ``overprop_below``,
   ``overprop_above``, ``overprop_slices``, ``overprop_voxels``, ``overprop_mm`` and
   ``propagation`` (JSON), appended at the end. Only columns are added, so a schema-2 store is
   read as it is (the new columns are absent) and upgraded in place, with NULL for the units
   already there, when a run opens it for writing (:func:`upgrade_from_2`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import duckdb

from radioactive.errors import RadioactiveError
from radioactive.records import STEP_COLUMNS, UNIT_COLUMNS, UNIT_STATUSES

logger = logging.getLogger(__name__)

__all__ = [
    "DB_FILENAME",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "StoreError",
    "create_store_file",
    "migrate_store",
    "upgrade_from_2",
]

SCHEMA_VERSION = 3
"""Version of the table layout; bump it whenever a column is added, removed or changes."""

DB_FILENAME = "results.duckdb"

#: versions read as they are: older ones whose layout differs only by columns added since
READABLE_VERSIONS = (str(SCHEMA_VERSION), "2")

#: step columns renamed since schema 1 (old name → new name)
_RENAMED_STEP_COLUMNS = {"hd95": "hd95_mm", "assd": "assd_mm"}

_RUNS_SQL = (
    "CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, "
    "finished_at TIMESTAMP, config VARCHAR, package_version VARCHAR, git_commit VARCHAR, "
    "environment VARCHAR, dataset_checksums VARCHAR, checkpoint_hashes VARCHAR, "
    "schema_version INTEGER NOT NULL, input_contracts VARCHAR)"
)


class StoreError(RadioactiveError):
    """The results database cannot be opened or used as asked."""


def q(name: str) -> str:
    """Quote an identifier (``user`` and ``case`` are SQL keywords)."""
    return '"' + name.replace('"', '""') + '"'


def _columns_sql(columns: Mapping[str, str]) -> str:
    return ", ".join(f"{q(name)} {sql_type}" for name, sql_type in columns.items())


def _data_tables_sql() -> list[str]:
    """``units``, ``step_rows`` and the ``steps`` view of the current schema."""
    statuses = ", ".join(f"'{s.value}'" for s in UNIT_STATUSES)
    unit_columns = dict(UNIT_COLUMNS, status=f"VARCHAR NOT NULL CHECK (status IN ({statuses}))")
    view_columns: list[str] = []
    for name in STEP_COLUMNS:
        view_columns.append(q(name))
        if name == "case_id":
            view_columns.append('case_id AS "case"')
    return [
        f"CREATE TABLE units ({_columns_sql(unit_columns)}, PRIMARY KEY (unit_id))",
        f"CREATE TABLE step_rows ({_columns_sql(STEP_COLUMNS)}, PRIMARY KEY (unit_id, step))",
        f"CREATE VIEW steps AS SELECT {', '.join(view_columns)} FROM step_rows",
    ]


def schema_sql() -> list[str]:
    """Every statement that creates an empty store of :data:`SCHEMA_VERSION`."""
    return [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        _RUNS_SQL,
        *_data_tables_sql(),
        f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
    ]


def _in_transaction(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    con.begin()
    try:
        for statement in statements:
            con.execute(statement)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def create_store_file(path: Path) -> None:
    """Create an empty store at ``path`` atomically: under a temporary name, then renamed.

    A process killed while creating leaves at most a ``.creating-*`` file beside it, never a
    ``results.duckdb`` that does not open. Raises :class:`StoreError` when the folder is not
    writable (read-only, full disk).
    """
    tmp = path.with_name(f"{path.name}.creating-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        con = duckdb.connect(str(tmp))
        try:
            _in_transaction(con, schema_sql())
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if path.exists():  # another process created it meanwhile: keep theirs
            return
        os.replace(tmp, path)
    except (OSError, duckdb.Error) as error:
        raise StoreError(
            f"cannot create the results database ({' '.join(str(error).split())})",
            path=path,
            fix="choose an output directory you can write to (is it read-only or the disk full?)",
        ) from error
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def schema_version_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ``schema_version`` of an open store (``None`` when not recorded)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[1] for row in con.execute(f"PRAGMA table_info({q(table)})").fetchall()]


def _copy_sql(table: str, old: str, old_columns: list[str], new_columns: Mapping[str, str]) -> str:
    renamed = {new: old_name for old_name, new in _RENAMED_STEP_COLUMNS.items()}
    chosen = []
    for name in new_columns:
        if name in old_columns:
            chosen.append(q(name))
        elif renamed.get(name) in old_columns:
            chosen.append(q(renamed[name]))
        else:
            chosen.append("NULL")
    return f"INSERT INTO {q(table)} SELECT {', '.join(chosen)} FROM {q(old)}"


def _added_unit_columns_sql(old_units: list[str]) -> list[str]:
    """``ALTER TABLE`` statements adding the unit columns a schema-2 store lacks, in record
    order (they are the last ones, so the table's column order stays the record's)."""
    return [
        f"ALTER TABLE units ADD COLUMN {q(name)} {sql_type}"
        for name, sql_type in UNIT_COLUMNS.items()
        if name not in old_units
    ]


def upgrade_from_2(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Upgrade an open schema-2 store to :data:`SCHEMA_VERSION` in one transaction (the unit
    columns added since, NULL for the units there); the names of the columns added."""
    old_units = _table_columns(con, "units")
    added = [name for name in UNIT_COLUMNS if name not in old_units]
    _in_transaction(
        con,
        [
            *_added_unit_columns_sql(old_units),
            f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'",
        ],
    )
    logger.info("results store upgraded from schema 2 to %s (new unit columns %s)",
                SCHEMA_VERSION, ", ".join(added))  # fmt: skip
    return added


def migrate_store(directory: str | Path) -> str:
    """Convert the store of ``directory`` in place to :data:`SCHEMA_VERSION`; one line on what
    was done (or that nothing was needed). All of it happens in one transaction.

    From schema 1: ``hd95``/``assd`` become ``hd95_mm``/``assd_mm``; ``units`` gains
    ``dataset_root``, ``label_value``, ``reason``, ``versions`` and ``slot_id`` (NULL for the
    units already stored: their settings were not recorded, so a run into this directory
    refuses to compute them again beside them unless told to replace them), and the columns
    of schema 3. From schema 2: the propagation diagnostics' columns (NULL for the units
    already stored; their numbers are kept, nothing is computed again).

    Raises:
        StoreError: no store there, it is open elsewhere, or its version is unknown.
    """
    path = Path(directory) / DB_FILENAME
    if not path.is_file():
        raise StoreError(
            "no results database here", path=path, fix="give the output directory of a run"
        )
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as error:
        raise StoreError(
            f"cannot open the results database ({' '.join(str(error).split())})",
            path=path,
            fix="close the program that has it open (a running `radioactive run`?) and retry",
        ) from error
    try:
        found = schema_version_of(con)
        if found == str(SCHEMA_VERSION):
            return f"{path}: already at schema version {SCHEMA_VERSION}, nothing to do"
        if found == "2":
            n_units = con.execute("SELECT count(*) FROM units").fetchone()
            added_2 = upgrade_from_2(con)
            con.execute("CHECKPOINT")
            return (
                f"{path}: migrated from schema 2 to {SCHEMA_VERSION} "
                f"({n_units[0] if n_units else 0} units; new unit columns {', '.join(added_2)})"
            )
        if found != "1":
            raise StoreError(
                f"results schema version {found} cannot be migrated (this radioactive knows 1, "
                f"2 and {SCHEMA_VERSION})",
                path=path,
                fix="open it with the radioactive version that wrote it",
            )
        old_steps = _table_columns(con, "step_rows")
        old_units = _table_columns(con, "units")
        renamed = [f"{a} → {b}" for a, b in _RENAMED_STEP_COLUMNS.items() if a in old_steps]
        n_units = con.execute("SELECT count(*) FROM units").fetchone()
        n_steps = con.execute("SELECT count(*) FROM step_rows").fetchone()
        statements = [
            "DROP VIEW IF EXISTS steps",
            "ALTER TABLE units RENAME TO units_v1",
            "ALTER TABLE step_rows RENAME TO step_rows_v1",
            *_data_tables_sql(),
            _copy_sql("units", "units_v1", old_units, UNIT_COLUMNS),
            _copy_sql("step_rows", "step_rows_v1", old_steps, STEP_COLUMNS),
            "DROP TABLE units_v1",
            "DROP TABLE step_rows_v1",
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS input_contracts VARCHAR",
            f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'",
        ]
        _in_transaction(con, statements)
        con.execute("CHECKPOINT")
    except duckdb.Error as error:
        raise StoreError(
            f"the migration failed and was rolled back ({' '.join(str(error).split())})",
            path=path,
            fix="check that the file is writable and not truncated",
        ) from error
    finally:
        con.close()
    added = [c for c in UNIT_COLUMNS if c not in old_units]
    return (
        f"{path}: migrated from schema 1 to {SCHEMA_VERSION} ({n_units[0] if n_units else 0} "
        f"units, {n_steps[0] if n_steps else 0} steps; "
        + (f"renamed {', '.join(renamed)}; " if renamed else "")
        + f"new unit columns {', '.join(added)})"
    )
