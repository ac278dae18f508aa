"""Metric metadata (radioactive.metrics.meta) and its use for display and ranking."""

from __future__ import annotations

import pandas as pd
import pytest

from radioactive.metrics.meta import (
    METRICS,
    display_scale,
    higher_is_better,
    lower_is_better,
    meta,
)
from radioactive.records import STEP_COLUMNS
from radioactive.report.html import _display


def test_every_metric_is_a_step_column_and_scores_are_directed() -> None:
    assert set(METRICS) <= set(STEP_COLUMNS)
    assert meta("dice").scale == meta("nsd").scale == 100.0
    assert meta("hd95_mm").scale == 1.0 and meta("hd95_mm").unit == "mm"
    assert higher_is_better("dice") and higher_is_better("nsd")
    assert lower_is_better() >= {"hd95_mm", "assd_mm", "dof", "seconds", "cum_dof", "cum_seconds"}
    assert display_scale("not_a_metric") == 1.0
    assert meta("dice").axis_label("mean final") == "mean final Dice (×100)"
    assert meta("cum_seconds").axis_label("mean") == "mean user time (s)"
    with pytest.raises(KeyError, match="known metric columns"):
        meta("hd95")


def test_display_scales_by_the_metric_not_by_the_column_name() -> None:
    board = pd.DataFrame(
        {"model": ["m"], "mean": [0.5], "ci_low": [0.4], "ci_high": [0.6], "n_dice_cases": [3.0]}
    )
    shown = _display(board, "dice")
    assert shown[["mean", "ci_low", "ci_high"]].iloc[0].tolist() == [50.0, 40.0, 60.0]
    assert shown["n_dice_cases"].iloc[0] == 3.0  # a count, even if its name says "dice"
    distances = _display(board, "hd95_mm")
    assert distances["mean"].iloc[0] == 0.5  # mm are shown as they are
