"""Rows of the results database: unit and step records checked and converted for DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from radioactive.records import STEP_COLUMNS, UNIT_COLUMNS, UNIT_STATUSES, Status

__all__ = ["new_run_id", "step_rows", "unit_row"]

_JSON_STEP_COLUMNS = ("realism", "prompts", "versions")
_JSON_UNIT_COLUMNS = ("versions", "propagation")
JSON_RUN_COLUMNS = (
    "config", "environment", "dataset_checksums", "checkpoint_hashes", "input_contracts"
)  # fmt: skip
# Step columns that identify the unit; a step that leaves them out inherits the unit's value.
_IDENTITY_COLUMNS = ("run_id", "unit_id", "dataset", "case_id", "target", "model", "prompter")
_IDENTITY_COLUMNS_ALL = (*_IDENTITY_COLUMNS, "user", "seed")
UNIT_STATUS_VALUES = tuple(s.value for s in UNIT_STATUSES)


def utcnow() -> dt.datetime:
    """Current UTC time as a naive datetime (the store's TIMESTAMP columns are UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A short unique id that sorts by time: ``20250101T120000-3fa2c1``."""
    return f"{(now or utcnow()):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def plain(value: Any) -> Any:
    """NumPy scalars → Python scalars (DuckDB binds the latter)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Status):
        return value.value
    return value


def json_text(value: Any, *, column: str) -> str | None:
    """Store dicts and lists as JSON text; strings are taken to be JSON already."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"column {column!r}: value is not JSON-serialisable ({error})") from error


def check_keys(given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}; allowed keys: {sorted(allowed)}")


def unit_row(unit: Mapping[str, Any], n_steps: int) -> list[Any]:
    check_keys(unit, UNIT_COLUMNS, "unit")
    if not unit.get("unit_id"):
        raise ValueError("unit has no 'unit_id'")
    status = unit.get("status")
    if status not in UNIT_STATUS_VALUES:
        raise ValueError(
            f"unit {unit['unit_id']!r}: status {status!r} is not one of {UNIT_STATUS_VALUES}"
        )
    row = {name: plain(unit.get(name)) for name in UNIT_COLUMNS}
    for name in _JSON_UNIT_COLUMNS:
        row[name] = json_text(row[name], column=name)
    if row["n_steps"] is None:
        row["n_steps"] = n_steps
    if row["finished_at"] is None:
        row["finished_at"] = utcnow()
    return list(row.values())


def step_rows(unit: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    unit_id = unit["unit_id"]
    rows: list[list[Any]] = []
    for index, step in enumerate(steps):
        check_keys(step, STEP_COLUMNS, f"unit {unit_id!r} step #{index}")
        row = {name: plain(step.get(name)) for name in STEP_COLUMNS}
        for name in _IDENTITY_COLUMNS_ALL:
            if name not in step:
                row[name] = plain(unit.get(name))
            elif name == "unit_id" and row[name] != unit_id:
                raise ValueError(f"step #{index} has unit_id {row[name]!r}, unit is {unit_id!r}")
        if row["step"] is None:
            raise ValueError(f"unit {unit_id!r} step #{index} has no 'step' number")
        for name in _JSON_STEP_COLUMNS:
            row[name] = json_text(row[name], column=name)
        rows.append(list(row.values()))
    return rows
