"""Leaderboard and paired comparisons against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radioactive.report.leaderboard import leaderboard, paired_comparisons
from tests.report.test_tables import (
    DATASETS,
    E1,
    E2,
    E3,
    assert_close,
    independent_final,
    make_steps,
    select,
    shown,
)


@pytest.fixture(scope="module")
def steps() -> pd.DataFrame:
    return make_steps()


def case_level_means(final: pd.DataFrame, entry: tuple[str, str, str]) -> dict[str, float]:
    """Per dataset: mean over cases of (mean over the case's targets and seeds), NaN left out."""
    out = {}
    for dataset in DATASETS:
        rows = select(final, entry, dataset=dataset)
        if rows.empty:
            continue
        case_values = [
            float(np.mean(v)) for _, g in rows.groupby("case") if len(v := g["dice"].dropna())
        ]
        out[dataset] = float(np.mean(case_values))
    return out


def synthetic(n_cases: int, offsets: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """Final-step-only rows: 2 datasets × ``n_cases`` cases × 2 targets; every entry gets the
    same per-target base value plus its offset (so offset 0 entries are identical)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, modality in (("DA", "MR"), ("DB", "CT")):
        for c in range(n_cases):
            for target in ("t1", "t2"):
                base = rng.uniform(0.3, 0.7)
                for model, offset in offsets.items():
                    noise = rng.normal(0, 0.02) if offset else 0.0
                    case = f"c{c:03d}"
                    row: dict[str, object] = dict(unit_id=f"{dataset}{c}{target}{model}")
                    row |= dict(dataset=dataset, case=case)
                    row |= dict(case_id=case, target=target, modality=modality, category="organ")
                    row |= dict(model=model, prompter="p", user="", seed=0, step=0, status="ok")
                    row |= dict(dice=base + offset + noise, nsd=base, cum_dof=1, cum_seconds=1.0)
                    rows.append(row)
    return pd.DataFrame(rows)


def test_overall_means_and_ranks(steps: pd.DataFrame) -> None:
    board = leaderboard(steps, n_boot=200, seed=1)
    final = independent_final(steps)
    expected = {}
    for entry in (E1, E2, E3):
        per_dataset = case_level_means(final, entry)
        complete = len(per_dataset) == len(DATASETS)
        expected[shown(entry)] = (
            float(np.mean(list(per_dataset.values()))) if complete else math.nan
        )
    by_entry = board.set_index(["model", "prompter", "user"])
    for entry, mean in expected.items():
        assert_close(by_entry.loc[entry, "mean"], mean)
    # E1 (base 0.8) > E2 (0.5); E3 skipped a dataset: no overall mean, no rank, last
    assert [tuple(r) for r in board[["model", "prompter", "user"]].to_numpy()] == [
        shown(E1), shown(E2), shown(E3),
    ]  # fmt: skip
    assert board["rank"].iloc[:2].tolist() == [1, 2]
    assert pd.isna(board["rank"].iloc[2])
    assert by_entry.loc[shown(E3), "n_datasets"] == 2
    ok = board.dropna(subset=["mean"])
    assert ((ok["ci_low"] <= ok["mean"]) & (ok["mean"] <= ok["ci_high"])).all()


def test_dataset_level_means_and_ranks(steps: pd.DataFrame) -> None:
    board = leaderboard(steps, n_boot=200, seed=1, level="dataset")
    final = independent_final(steps)
    assert list(dict.fromkeys(board["dataset"])) == ["BrainMR", "AbdoCT", "LungCT"]
    for dataset, rows in board.groupby("dataset", sort=False):
        expected = {}
        for entry in (E1, E2, E3):
            means = case_level_means(final, entry)
            if dataset in means:
                expected[shown(entry)] = means[dataset]
        got = rows.set_index(["model", "prompter", "user"])
        assert set(got.index) == set(expected)
        for entry, mean in expected.items():
            assert_close(got.loc[entry, "mean"], mean)
        order = sorted(expected, key=lambda e: -expected[e])
        assert [tuple(r) for r in rows[["model", "prompter", "user"]].to_numpy()] == order
        assert rows["rank"].tolist() == list(range(1, len(order) + 1))
        inside = (rows["ci_low"] <= rows["mean"]) & (rows["mean"] <= rows["ci_high"])
        assert inside.all()
    brain = board[(board["dataset"] == "BrainMR")].set_index(["model", "prompter", "user"])
    assert brain.loc[shown(E2), "n_cases"] == 2  # c3 has only NaN Dice (both masks empty)
    assert brain.loc[shown(E2), "n_units"] == 8  # 4 targets × 2 seeds


def test_lower_is_better_metric_ranks_ascending() -> None:
    df = synthetic(5, {"a": 0.0, "b": 0.3}).assign(hd95_mm=lambda d: d["dice"])
    board = leaderboard(df, metric="hd95_mm", n_boot=50)
    assert board["model"].tolist() == ["a", "b"]


def test_a_rank_that_resampling_moves_is_flagged() -> None:
    # "c" is far ahead; "a" and "b" differ by a hair under 0.02 noise per target
    df = synthetic(20, {"a": 0.001, "b": 0.0015, "c": 0.3})
    board = leaderboard(df, n_boot=400, seed=0).set_index("model")
    assert board.loc["c", "rank"] == 1 and board.loc["c", "rank_stable"]
    assert (board.loc["c", "rank_low"], board.loc["c", "rank_high"]) == (1, 1)
    for model in ("a", "b"):
        assert not board.loc[model, "rank_stable"]
        assert (board.loc[model, "rank_low"], board.loc[model, "rank_high"]) == (2, 3)
    assert board.loc["a", "rank_low"] <= board.loc["a", "rank"] <= board.loc["a", "rank_high"]


def test_reproducible_for_a_seed() -> None:
    df = synthetic(15, {"a": 0.0, "b": 0.05})
    first = leaderboard(df, n_boot=300, seed=5)
    pd.testing.assert_frame_equal(
        first, leaderboard(df.sample(frac=1.0, random_state=2), n_boot=300, seed=5)
    )
    other = leaderboard(df, n_boot=300, seed=6)
    assert not np.allclose(first["ci_low"], other["ci_low"])
    pairs = paired_comparisons(df, n_boot=300, seed=5)
    pd.testing.assert_frame_equal(pairs, paired_comparisons(df, n_boot=300, seed=5))


def test_intervals_contain_the_mean_and_shrink_with_more_cases() -> None:
    few = leaderboard(synthetic(8, {"a": 0.0}), n_boot=500, seed=0)
    many = leaderboard(synthetic(200, {"a": 0.0}), n_boot=500, seed=0)
    for board in (few, many):
        assert (board["ci_low"] < board["mean"]).all() and (board["mean"] < board["ci_high"]).all()
    width_few = float((few["ci_high"] - few["ci_low"]).iloc[0])
    width_many = float((many["ci_high"] - many["ci_low"]).iloc[0])
    assert width_many < width_few / 2  # ≈ 1/sqrt(25) of it


def test_interval_matches_a_plain_bootstrap_loop() -> None:
    df = synthetic(30, {"a": 0.0})
    board = leaderboard(df, n_boot=2000, seed=0).iloc[0]
    rng = np.random.default_rng(123)  # a different generator: agreement is statistical
    cases = df.groupby(["dataset", "case"])["dice"].mean()
    per_dataset = [cases.loc[d].to_numpy() for d in ("DA", "DB")]
    boot = [
        np.mean([v[rng.integers(0, len(v), len(v))].mean() for v in per_dataset])
        for _ in range(2000)
    ]
    low, high = np.percentile(boot, [2.5, 97.5])
    assert board["mean"] == pytest.approx(np.mean([v.mean() for v in per_dataset]), abs=1e-12)
    width = high - low
    assert board["ci_low"] == pytest.approx(low, abs=0.15 * width)
    assert board["ci_high"] == pytest.approx(high, abs=0.15 * width)


def test_paired_comparisons_distinguish_only_real_differences() -> None:
    df = synthetic(20, {"a": 0.0, "b": 0.0, "c": 0.1})
    pairs = paired_comparisons(df, n_boot=500, seed=0).set_index(["model_a", "model_b"])
    assert list(pairs.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    same = pairs.loc[("a", "b")]
    assert same["mean_diff"] == 0.0 and not same["distinguishable"]
    better = pairs.loc[("a", "c")]
    assert better["distinguishable"] and better["ci_high"] < 0
    assert better["ci_low"] <= better["mean_diff"] <= better["ci_high"]
    final = df.set_index(["dataset", "case", "target"])
    diff = final[final["model"] == "a"]["dice"] - final[final["model"] == "c"]["dice"]
    expected = diff.groupby(["dataset", "case"]).mean().groupby("dataset").mean().mean()
    assert better["mean_diff"] == pytest.approx(expected, abs=1e-12)
    assert (better["n_datasets"], better["n_cases"], better["n_targets"]) == (2, 40, 80)


def test_paired_comparisons_use_shared_targets_only(steps: pd.DataFrame) -> None:
    pairs = paired_comparisons(steps, n_boot=200, seed=0, level="dataset")
    final = independent_final(steps).assign(user=lambda d: d["user"].replace("", "–"))
    for row in pairs.itertuples(index=False):
        a = (row.model_a, row.prompter_a, row.user_a)
        b = (row.model_b, row.prompter_b, row.user_b)
        keys = ["case", "target", "seed"]
        left = select(final, a, dataset=row.dataset).set_index(keys)["dice"]
        right = select(final, b, dataset=row.dataset).set_index(keys)["dice"]
        diff = (left - right).dropna()  # only units both have a value for
        expected = diff.groupby("case").mean().mean()
        assert_close(row.mean_diff, expected)
        assert row.n_targets == len(diff)
    # E3 never ran AbdoCT, E1 errored on one AbdoCT target: neither pair is compared there
    abdo = pairs[pairs["dataset"] == "AbdoCT"]
    assert len(abdo) == 1 and abdo["n_targets"].iloc[0] == 4  # E1 vs E2 on 4 shared targets
    overall = paired_comparisons(steps, n_boot=200, seed=0)
    assert len(overall) == 3
    e1e3 = overall[(overall["model_a"] == "rw") | (overall["model_b"] == "rw")]
    assert set(e1e3["n_datasets"]) == {2}


def test_single_case_gives_no_interval() -> None:
    df = synthetic(1, {"a": 0.0, "b": 0.1})
    board = leaderboard(df, n_boot=50, level="dataset")
    assert board["ci_low"].isna().all() and board["ci_high"].isna().all()
    pairs = paired_comparisons(df, n_boot=50)
    assert not pairs["distinguishable"].any()


def test_bad_arguments() -> None:
    df = synthetic(2, {"a": 0.0})
    with pytest.raises(ValueError, match="level"):
        leaderboard(df, level="case")
    with pytest.raises(ValueError, match="n_boot"):
        paired_comparisons(df, n_boot=0)
    with pytest.raises(ValueError, match="column"):
        leaderboard(df, metric="nope")
    with pytest.raises(ValueError, match="nothing to aggregate"):
        leaderboard(df.assign(status="error"))
