"""Aggregations of PROTOCOL §6 on a small hand-made results table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import radioactive.metrics as metrics
from radioactive.metrics import aggregate
from radioactive.metrics.aggregate import (
    case_means,
    dataset_means,
    format_percent,
    modality_group,
    overall_means,
    summary,
)


@pytest.fixture
def results() -> pd.DataFrame:
    rows = [
        # dataset, case, target, modality, target_type, value
        ("A", "a1", "liver", "CT", "organ", 0.9),
        ("A", "a1", "tumour", "CT", "pathology", 0.5),
        ("A", "a2", "liver", "CT", "organ", 0.7),
        ("A", "a2", "tumour", "CT", "pathology", math.nan),  # both empty: excluded, counted
        ("B", "b1", "lesion1", "MRI T2", "pathology", 0.2),
        ("B", "b1", "lesion2", "MRI T2", "pathology", 0.4),
        ("B", "b1", "lesion3", "MRI T2", "pathology", 0.6),
        ("B", "b2", "lesion1", "MRI T2", "pathology", 1.0),
        ("C", "c1", "brain", "MR", "organ", 0.8),
    ]
    return pd.DataFrame(
        rows, columns=["dataset", "case", "target", "modality", "target_type", "value"]
    )


def test_mean_over_targets_within_dataset(results):
    out = dataset_means(results).set_index("dataset")
    assert out.loc["A", "mean"] == pytest.approx((0.9 + 0.5 + 0.7) / 3)
    assert out.loc["A", "n"] == 4 and out.loc["A", "n_nan"] == 1
    assert out.loc["B", "mean"] == pytest.approx((0.2 + 0.4 + 0.6 + 1.0) / 4)
    assert out.loc["C", "modality"] == "MRI" and out.loc["B", "modality"] == "MRI"


def test_lesion_wise_mean_over_cases(results):
    # case b1: mean 0.4 over its 3 lesions; case b2: 1.0 → dataset 0.7 (target-level: 0.55)
    cases = case_means(results[results.dataset == "B"]).set_index("case")
    assert cases.loc["b1", "value"] == pytest.approx(0.4)
    out = dataset_means(results, level="case").set_index("dataset")
    assert out.loc["B", "mean"] == pytest.approx(0.7)
    assert out.loc["B", "n"] == 2
    assert out.loc["A", "mean"] == pytest.approx(((0.9 + 0.5) / 2 + 0.7) / 2)


def test_unweighted_mean_over_datasets_and_sub_averages(results):
    a, b, c = (0.9 + 0.5 + 0.7) / 3, 0.55, 0.8
    overall = overall_means(dataset_means(results))
    assert overall.loc[0, "mean"] == pytest.approx((a + b + c) / 3)
    assert overall.loc[0, "n"] == 3

    table = summary(results).set_index(["group", "name"])
    assert table.loc[("all", "all"), "mean"] == pytest.approx((a + b + c) / 3)
    assert table.loc[("modality", "CT"), "mean"] == pytest.approx(a)
    assert table.loc[("modality", "MRI"), "mean"] == pytest.approx((b + c) / 2)
    assert table.loc[("modality", "MRI"), "n"] == 2
    # organ: A's organs (0.9, 0.7) → 0.8 and C → 0.8; pathology: A 0.5 (one NaN dropped), B 0.55
    assert table.loc[("target_type", "organ"), "mean"] == pytest.approx(0.8)
    assert table.loc[("target_type", "pathology"), "mean"] == pytest.approx((0.5 + 0.55) / 2)
    assert table.loc[("dataset", "A"), "n_nan"] == 1


def test_grouping_by_extra_columns(results):
    two_models = pd.concat(
        [results.assign(model="m1"), results.assign(model="m2", value=results.value / 2)]
    )
    table = summary(two_models, by=["model"]).set_index(["model", "group", "name"])
    assert table.loc[("m2", "all", "all"), "mean"] == pytest.approx(
        table.loc[("m1", "all", "all"), "mean"] / 2
    )


def test_nan_and_inf_are_counted():
    df = pd.DataFrame(
        {
            "dataset": ["D"] * 4,
            "case": ["c1", "c2", "c3", "c4"],
            "target": ["t"] * 4,
            "value": [2.0, math.nan, math.inf, 4.0],
        }
    )
    row = dataset_means(df, value="value").iloc[0]
    assert row["mean"] == math.inf and row["n_nan"] == 1 and row["n_inf"] == 1
    only_nan = df.assign(value=math.nan)
    row = dataset_means(only_nan).iloc[0]
    assert math.isnan(row["mean"]) and row["n_nan"] == 4
    overall = overall_means(dataset_means(only_nan))
    assert math.isnan(overall.loc[0, "mean"]) and overall.loc[0, "n_nan"] == 1


def test_input_checks(results):
    with pytest.raises(ValueError, match="lacks column"):
        dataset_means(results.drop(columns=["dataset"]))
    with pytest.raises(ValueError, match="one modality"):
        dataset_means(results.assign(modality=["CT"] * 8 + ["MRI"]).replace({"C": "A"}))
    with pytest.raises(ValueError, match="level"):
        dataset_means(results, level="lesion")


def test_display_formatting_only_scales_for_display():
    assert format_percent(0.8534) == "85.3"
    assert format_percent(0.8534, digits=2) == "85.34"
    assert format_percent(math.nan) == "n/a"
    assert modality_group("MRI FLAIR") == "MRI" and modality_group("ct") == "CT"


def test_versions_are_recorded():
    versions = metrics.versions()
    assert set(versions) == {"metrics", "dice", "surface", "curves", "instances", "aggregate"}
    assert versions["aggregate"] == aggregate.AGGREGATE_VERSION
    assert all(isinstance(v, str) and v for v in versions.values())
