"""The one record schema of a benchmark result: unit statuses, step and unit columns, final steps.

Every layer that writes or reads results uses these definitions: the session
(:class:`Status` of a step), the runner's plan and result store (the DuckDB columns derive from
:data:`STEP_RECORD` and :data:`UNIT_RECORD`) and the report (:func:`final_steps`).

This module depends only on the standard library, NumPy and pandas.

>>> Status.OK == "ok", Status("skipped") is Status.SKIPPED
(True, True)
>>> STEP_COLUMNS["hd95_mm"]
'DOUBLE'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pandas as pd

__all__ = [
    "FINAL_STATUSES",
    "STEP_COLUMNS",
    "STEP_RECORD",
    "UNIT_COLUMNS",
    "UNIT_IDENTITY",
    "UNIT_RECORD",
    "UNIT_STATUSES",
    "Column",
    "Status",
    "final_steps",
]


class Status(str, enum.Enum):
    """The status of a step or a unit.

    A *step* is ``OK`` (scored), ``STOPPED`` (the trajectory stopped early; the step repeats the
    last result at no cost) or ``ERROR``. A *unit* is ``OK``, ``ERROR`` (it failed; the message is
    in ``error``) or ``SKIPPED`` (it cannot run, e.g. the model does not accept the prompter's
    prompts or the target is empty; the reason is in ``reason``).
    """

    OK = "ok"
    STOPPED = "stopped"
    ERROR = "error"
    SKIPPED = "skipped"

    def __str__(self) -> str:  # "ok", not "Status.OK", in f-strings and str()
        return self.value


#: the statuses a unit row may have
UNIT_STATUSES: tuple[Status, ...] = (Status.OK, Status.ERROR, Status.SKIPPED)

#: the step statuses whose rows are scored results (the units of :func:`final_steps`)
FINAL_STATUSES: tuple[Status, ...] = (Status.OK, Status.STOPPED)


@dataclass(frozen=True)
class Column:
    """One column of a record: its name, DuckDB type and meaning (with the unit, if any)."""

    name: str
    sql_type: str
    doc: str


def _columns(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


_IDENTITY = (
    ("run_id", "VARCHAR", "the run that wrote the row"),
    ("unit_id", "VARCHAR", "the unit's id (a hash of its identity, see docs/runner.md)"),
    ("dataset", "VARCHAR", "dataset name (dataset.json 'name')"),
    ("case_id", "VARCHAR", "case id"),
    ("target", "VARCHAR", "target name (label name, or label name + component)"),
)

#: The step record: one row per interaction step (table ``step_rows`` of the result store).
STEP_RECORD: tuple[Column, ...] = _columns(
    *_IDENTITY,
    ("target_kind", "VARCHAR", "'label' or 'component'"),
    ("modality", "VARCHAR", "the modality group the model's input contract was chosen for"),
    ("category", "VARCHAR", "the dataset's category (dataset.json), e.g. 'lesion'"),
    ("model", "VARCHAR", "model label"),
    ("prompter", "VARCHAR", "canonical spec of the initial prompter"),
    ("user", "VARCHAR", "canonical spec of the simulated user ('' for none)"),
    ("seed", "BIGINT", "seed of the unit's generator"),
    ("step", "INTEGER", "0 = initial prompt, then one per correction"),
    ("status", "VARCHAR", "Status of the step: ok, stopped or error"),
    ("error", "VARCHAR", "error message of an error step"),
    ("dice", "DOUBLE", "Dice coefficient, 0..1"),
    ("nsd", "DOUBLE", "normalised surface Dice at the tolerance, 0..1"),
    ("hd95_mm", "DOUBLE", "95th-percentile Hausdorff distance, mm"),
    ("assd_mm", "DOUBLE", "average symmetric surface distance, mm"),
    ("dof", "INTEGER", "degrees of freedom of the step's prompts"),
    ("seconds", "DOUBLE", "estimated human effort of the step, s"),
    ("cum_dof", "INTEGER", "dof summed up to this step"),
    ("cum_seconds", "DOUBLE", "seconds summed up to this step"),
    ("encoder_s", "DOUBLE", "model encoder time of the step, s"),
    ("decoder_s", "DOUBLE", "model decoder time of the step, s"),
    ("encoder_calls", "INTEGER", "encoder calls of the step"),
    ("cache_hits", "INTEGER", "embedding cache hits of the step"),
    ("cache_misses", "INTEGER", "embedding cache misses of the step"),
    ("slices_inferred", "INTEGER", "slices decoded in the step"),
    ("wall_s", "DOUBLE", "wall time of the step, s"),
    ("peak_mem_mb", "DOUBLE", "peak resident memory of the worker so far, MiB"),
    ("realism", "VARCHAR", "JSON text: the realism checks of the step's prompts"),
    ("prompts", "VARCHAR", "JSON text: the step's interaction (prompts)"),
    ("versions", "VARCHAR", "JSON text: versions of the code that made the numbers"),
    ("prediction_path", "VARCHAR", "NIfTI of the final prediction, if saved"),
)

#: The unit record: one row per unit (table ``units``), written with all its steps at once.
UNIT_RECORD: tuple[Column, ...] = _columns(
    ("unit_id", "VARCHAR", "the unit's id"),
    ("run_id", "VARCHAR", "the run that wrote the unit"),
    ("dataset", "VARCHAR", "dataset name"),
    ("case_id", "VARCHAR", "case id"),
    ("target", "VARCHAR", "target name ('*' for a case that did not load)"),
    ("model", "VARCHAR", "model label"),
    ("prompter", "VARCHAR", "canonical prompter spec ('*' for a case that did not load)"),
    ("user", "VARCHAR", "canonical user spec ('' for none)"),
    ("seed", "BIGINT", "seed"),
    ("status", "VARCHAR", "Status of the unit: ok, error or skipped"),
    ("error", "VARCHAR", "error message of an error unit"),
    ("n_steps", "INTEGER", "number of step rows"),
    ("wall_s", "DOUBLE", "wall time of the unit, s"),
    ("finished_at", "TIMESTAMP", "when the unit was written, UTC"),
    ("dataset_root", "VARCHAR", "folder of the dataset (its dataset.json)"),
    ("label_value", "INTEGER", "the target's label value (NULL if not one label value)"),
    ("reason", "VARCHAR", "why a skipped unit did not run"),
    ("versions", "VARCHAR", "JSON text: the unit's identity (specs@versions, settings, data)"),
    ("slot_id", "VARCHAR", "hash of the unit's place in the grid, without settings and data"),
    # propagation diagnostics of the final prediction (radioactive.runner.diagnostics); NULL
    # for units without them (no prompted slice, not scored, or written before schema 3)
    ("propagates", "BOOLEAN", "whether the prediction was propagated from the prompted slices"),
    ("overprop_below", "INTEGER", "predicted slices below the target's first slice"),
    ("overprop_above", "INTEGER", "predicted slices above the target's last slice"),
    ("overprop_slices", "INTEGER", "overprop_below + overprop_above"),
    ("overprop_voxels", "BIGINT", "predicted voxels on the over-propagated slices"),
    ("overprop_mm", "DOUBLE", "overprop_slices × the z spacing, mm"),
    ("propagation", "VARCHAR", "JSON text: prompted slices, Dice per distance from them, bins"),
)

STEP_COLUMNS: dict[str, str] = {c.name: c.sql_type for c in STEP_RECORD}
"""Step columns, name → DuckDB type, in table order."""

UNIT_COLUMNS: dict[str, str] = {c.name: c.sql_type for c in UNIT_RECORD}
"""Unit columns, name → DuckDB type, in table order."""

#: the columns that tell one unit from another (besides its ``unit_id``)
UNIT_IDENTITY = ("dataset", "case_id", "target", "model", "prompter", "user", "seed")


def _unit_key_columns(df: pd.DataFrame) -> list[str]:
    if "unit_id" in df.columns:
        return ["unit_id"]
    keys = [c for c in UNIT_IDENTITY if c in df.columns]
    if "case_id" not in df.columns and "case" in df.columns:
        keys.insert(1, "case")
    if not keys:
        raise ValueError(
            "the steps table has neither 'unit_id' nor any unit identity column "
            f"({', '.join(UNIT_IDENTITY)})"
        )
    return keys


def final_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The last step (highest ``step``) of every scored unit: one row per unit.

    A unit is scored when none of its rows has status ``error`` or ``skipped``. Units are told
    apart by ``unit_id`` when the table has it, else by the identity columns
    (:data:`UNIT_IDENTITY`, ``case`` for ``case_id``). A missing ``status`` column counts as
    ``ok``. The columns are those of ``steps``; rows are sorted by unit identity (then
    ``unit_id``) and the index is reset. ``steps`` is not modified.
    """
    if steps.empty or "step" not in steps.columns:
        return steps.iloc[0:0].reset_index(drop=True)
    keys = _unit_key_columns(steps)
    df = steps
    if "status" in df.columns:
        bad = df["status"].isin([Status.ERROR.value, Status.SKIPPED.value])
        if bad.any():
            failed = df.loc[bad, keys].drop_duplicates().assign(_failed=True)
            marked = df[keys].merge(failed, how="left", on=keys)["_failed"]
            df = df[~marked.fillna(False).astype(bool).to_numpy()]
    last = df.sort_values("step", kind="stable").groupby(keys, sort=False, dropna=False).tail(1)
    sort_by = [c for c in (*UNIT_IDENTITY, "case", "unit_id") if c in last.columns]
    return last.sort_values(sort_by, kind="stable", na_position="first").reset_index(drop=True)
