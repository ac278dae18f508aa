"""Tables of the report: every cell against an independent plain pandas/numpy computation."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radioactive.report.tables import (
    MEAN_COLUMN,
    build_tables,
    errors,
    final_steps,
    load_steps,
    to_latex,
    write_tables,
)

# entries: (model, prompter, user, steps, seeds on BrainMR, datasets it was run on)
E1 = ("sam_med", "box#3d", "")
E2 = ("sam_med", "point", "clicker")
E3 = ("rw", "point", "")
DATASETS = {
    # name: (modality, {case: [(target, category, target_kind)]})
    "BrainMR": (
        "MR",
        {
            "c1": [("tumour", "pathology", "instance")],
            "c2": [("lesion_1", "pathology", "instance"), ("lesion_2", "pathology", "instance")],
            "c3": [("tumour", "pathology", "instance")],
        },
    ),
    "AbdoCT": (
        "CT",
        {
            "a1": [
                ("liver", "organ", "organ"),
                ("kidney", "organ", "organ"),
                ("lesion", "pathology", "instance"),
            ],
            "a2": [("liver", "organ", "organ"), ("kidney", "organ", "organ")],
        },
    ),
    "LungCT": (
        "CT",
        {
            "l1": [("nodule_1", "pathology", "instance")],
            "l2": [("nodule_1", "pathology", "instance"), ("nodule_2", "pathology", "instance")],
        },
    ),
}
BASE = {E1: 0.8, E2: 0.5, E3: 0.4}


def make_steps(seed: int = 7) -> pd.DataFrame:
    """Synthetic ``ResultStore.steps()`` rows: 3 datasets (MR; CT with organs and a lesion; CT),
    3 entries (E2 with a user and 3 steps, 2 seeds on BrainMR; E3 skipped AbdoCT), one error unit
    (E1, AbdoCT a2 kidney), a NaN Dice (E2, BrainMR c3, both masks empty), shuffled rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for entry in (E1, E2, E3):
        model, prompter, user = entry
        n_steps = 3 if user else 1
        for dataset, (modality, cases) in DATASETS.items():
            if entry == E3 and dataset == "AbdoCT":
                continue
            seeds = [0, 1] if (entry == E2 and dataset == "BrainMR") else [0]
            for case, targets in cases.items():
                for target, category, kind in targets:
                    for s in seeds:
                        uid = f"{dataset}/{case}/{target}/{model}/{prompter}/{user}/{s}"
                        common = dict(
                            unit_id=uid, dataset=dataset, case_id=case, case=case,
                            target=target, target_kind=kind, modality=modality,
                            category=category, model=model, prompter=prompter, user=user,
                            seed=s,
                        )  # fmt: skip
                        if entry == E1 and case == "a2" and target == "kidney":
                            nan = np.nan
                            failed = dict(step=0, status="error", error="boom", dice=nan, nsd=nan)
                            failed |= dict(dof=nan, seconds=nan, cum_dof=nan, cum_seconds=nan)
                            rows.append(common | failed)
                            continue
                        dice = BASE[entry] + rng.uniform(-0.15, 0.15)
                        cum_dof, cum_seconds = 0, 0.0
                        for step in range(n_steps):
                            dof = int(rng.integers(1, 6))
                            seconds = float(rng.uniform(1.0, 9.0))
                            cum_dof += dof
                            cum_seconds += seconds
                            dice = min(1.0, dice + step * rng.uniform(0.0, 0.1))
                            value = dice
                            if entry == E2 and case == "c3" and step == n_steps - 1:
                                value = np.nan  # both masks empty
                            status = "stopped" if step == 2 and case == "a1" else "ok"
                            scores = dict(dice=value, nsd=value * 0.9, dof=dof, seconds=seconds)
                            scores |= dict(cum_dof=cum_dof, cum_seconds=cum_seconds)
                            rows.append(
                                common | dict(step=step, status=status, error=None) | scores
                            )
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)


# -- independent computation -----------------------------------------------------------------


def independent_final(df: pd.DataFrame) -> pd.DataFrame:
    bad = set(df.loc[df["status"] == "error", "unit_id"])
    ok = df[~df["unit_id"].isin(bad)]
    return ok.loc[ok.groupby("unit_id")["step"].idxmax()]


def select(df: pd.DataFrame, entry: tuple[str, str, str], **where: str) -> pd.DataFrame:
    mask = (df["model"] == entry[0]) & (df["prompter"] == entry[1]) & (df["user"] == entry[2])
    for column, value in where.items():
        mask &= df[column] == value
    return df[mask]


def mean_or_nan(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def group_mean(
    final: pd.DataFrame, entry: tuple[str, str, str], metric: str, datasets: list[str],
    category: str | None = None,
) -> float:  # fmt: skip
    """Unweighted mean over ``datasets`` of per-dataset target means; NaN if one is missing."""
    means = []
    for dataset in datasets:
        where = {"dataset": dataset} | ({"category": category} if category else {})
        rows = select(final, entry, **where)
        if rows.empty:
            return math.nan
        means.append(mean_or_nan(rows[metric]))
    return float(np.nanmean(means))


def shown(entry: tuple[str, str, str]) -> tuple[str, str, str]:
    return (entry[0], entry[1], entry[2] or "–")


def assert_close(actual: float, expected: float) -> None:
    if math.isnan(expected):
        assert math.isnan(actual), (actual, expected)
    else:
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-12)


# -- tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steps() -> pd.DataFrame:
    return make_steps()


@pytest.fixture(scope="module")
def tables(steps: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return build_tables(steps)


def test_final_steps_and_errors(steps: pd.DataFrame) -> None:
    final = final_steps(steps)
    expected = independent_final(steps)
    assert len(final) == len(expected) == steps.loc[steps["status"] != "error", "unit_id"].nunique()
    merged = final.merge(expected, on="unit_id", suffixes=("", "_x"))
    assert len(merged) == len(final)
    assert (merged["step"] == merged["step_x"]).all()
    np.testing.assert_array_equal(merged["dice"], merged["dice_x"])
    assert "error" not in set(final["status"])
    errs = errors(steps)
    assert len(errs) == 1
    assert errs.loc[0, ["dataset", "case", "target", "model"]].tolist() == [
        "AbdoCT", "a2", "kidney", "sam_med",
    ]  # fmt: skip
    assert errs.loc[0, "error"] == "boom"


@pytest.mark.parametrize("metric", ["dice", "nsd"])
def test_metric_table_cells(
    steps: pd.DataFrame, tables: dict[str, pd.DataFrame], metric: str
) -> None:
    table = tables[metric]
    final = independent_final(steps)
    assert list(table.columns) == ["BrainMR", "AbdoCT", "LungCT", MEAN_COLUMN]  # MRI first
    assert list(table.index) == sorted(shown(e) for e in (E1, E2, E3))
    for entry in (E1, E2, E3):
        for dataset in DATASETS:
            rows = select(final, entry, dataset=dataset)
            expected = mean_or_nan(rows[metric]) if len(rows) else math.nan
            assert_close(table.loc[shown(entry), dataset], 100 * expected)
        expected = group_mean(final, entry, metric, list(DATASETS))
        assert_close(table.loc[shown(entry), MEAN_COLUMN], 100 * expected)
    # E3 skipped AbdoCT: its cell and its mean over datasets are missing
    assert math.isnan(table.loc[shown(E3), "AbdoCT"])
    assert math.isnan(table.loc[shown(E3), MEAN_COLUMN])
    assert not math.isnan(table.loc[shown(E2), "BrainMR"])  # NaN Dice left out, not propagated


def test_groups_cells(steps: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    table = tables["groups"]
    final = independent_final(steps)
    groups = {
        "MRI": (["BrainMR"], None),
        "CT": (["AbdoCT", "LungCT"], None),
        "pathology": (["BrainMR", "AbdoCT", "LungCT"], "pathology"),
        "organ": (["AbdoCT"], "organ"),
    }
    expected_columns = [f"{m} {g}" for m in ("Dice", "NSD") for g in groups]
    assert list(table.columns) == expected_columns
    for entry in (E1, E2, E3):
        for label, metric in (("Dice", "dice"), ("NSD", "nsd")):
            for name, (datasets, category) in groups.items():
                expected = group_mean(final, entry, metric, datasets, category)
                assert_close(table.loc[shown(entry), f"{label} {name}"], 100 * expected)
    assert not math.isnan(table.loc[shown(E3), "Dice MRI"])
    assert math.isnan(table.loc[shown(E3), "Dice CT"])


def test_effort_cells(steps: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    table = tables["effort"]
    final = independent_final(steps)
    for entry in (E1, E2, E3):
        rows = select(final, entry)
        row = table.loc[shown(entry)]
        assert_close(row["DoF"], rows["cum_dof"].mean())
        assert_close(row["seconds"], rows["cum_seconds"].mean())
        assert row["n targets"] == len(rows.drop_duplicates(["dataset", "case", "target"]))
        assert row["n units"] == len(rows)
        assert row["n errors"] == (1 if entry == E1 else 0)
    assert table.loc[shown(E2), "n units"] > table.loc[shown(E2), "n targets"]  # 2 seeds


def test_refinement_cells(steps: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    table = tables["refinement"]
    assert list(table.index) == [shown(E2)]
    assert list(table.columns) == [0, 1, 2]
    bad = set(steps.loc[steps["status"] == "error", "unit_id"])
    ok = steps[~steps["unit_id"].isin(bad)]
    for step in (0, 1, 2):
        expected = group_mean(ok[ok["step"] == step], E2, "dice", list(DATASETS))
        assert_close(table.loc[shown(E2), step], 100 * expected)
    assert_close(table.loc[shown(E2), 2], tables["dice"].loc[shown(E2), MEAN_COLUMN])


def test_input_order_does_not_matter(steps: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    again = build_tables(steps.sample(frac=1.0, random_state=11).drop(columns="case"))
    for name, table in tables.items():
        pd.testing.assert_frame_equal(again[name], table)


def test_write_tables_formats_agree(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = write_tables(tables, tmp_path / "a")
    assert len(paths) == 3 * len(tables)
    assert {p.suffix for p in paths} == {".md", ".csv", ".tex"}
    for name, table in tables.items():
        flat = table.reset_index()
        csv = pd.read_csv(tmp_path / "a" / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(csv.columns) == [str(c) for c in flat.columns]
        for column in flat.columns:
            if pd.api.types.is_numeric_dtype(flat[column]):
                np.testing.assert_array_equal(
                    csv[str(column)].to_numpy(float), flat[column].to_numpy(float)
                )  # full precision: exact round trip
            else:
                assert csv[str(column)].astype(str).tolist() == flat[column].tolist()
        md = (tmp_path / "a" / f"{name}.md").read_text(encoding="utf-8").splitlines()
        tex = (tmp_path / "a" / f"{name}.tex").read_text(encoding="utf-8")
        assert len(md) == 2 + len(table)
        body = [[c.strip() for c in line.strip("|").split("|")] for line in md[2:]]
        tex_rows = [
            [c.strip() for c in line.removesuffix("\\\\").split("&")]
            for line in tex.split("\\midrule\n")[1].split("\n\\bottomrule")[0].splitlines()
        ]
        for i, values in enumerate(flat.itertuples(index=False)):
            for j, value in enumerate(values):
                if isinstance(value, float | np.floating):
                    text = "–" if math.isnan(value) else f"{value:.1f}"
                    assert body[i][j] == text
                    assert tex_rows[i][j] == ("--" if text == "–" else text)
    again = write_tables(tables, tmp_path / "b")
    for first, second in zip(paths, again, strict=True):
        assert first.read_bytes() == second.read_bytes()  # deterministic


def test_markdown_shows_dash_for_missing(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    write_tables({"dice": tables["dice"]}, tmp_path)
    md = (tmp_path / "dice.md").read_text(encoding="utf-8")
    line = next(x for x in md.splitlines() if x.startswith("| rw |"))
    assert line.split("|")[3].strip() == "–"  # no user
    assert line.split("|")[5].strip() == "–"  # AbdoCT skipped


def test_latex_escapes(tables: dict[str, pd.DataFrame]) -> None:
    tex = to_latex(tables["dice"], caption="Dice_scores #1", label="tab:dice")
    assert "sam\\_med" in tex and "box\\#3d" in tex and "Dice\\_scores \\#1" in tex
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    stripped = tex.replace("\\_", "").replace("\\#", "").replace("tab:dice", "")
    assert "_" not in stripped and "#" not in stripped
    assert "–" not in tex  # the en dash is written as --


def test_store_steps_without_unit_id_or_user(steps: pd.DataFrame) -> None:
    plain = steps.drop(columns="unit_id").assign(
        user=steps["user"].replace("", None)  # NULL user reads as no user
    )
    expected = build_tables(steps)
    got = build_tables(plain)
    pd.testing.assert_frame_equal(got["dice"], expected["dice"])
    pd.testing.assert_frame_equal(got["effort"], expected["effort"])


def test_nothing_to_aggregate(steps: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nothing to aggregate"):
        build_tables(steps.iloc[:0])


@pytest.mark.registry
def test_demo_results_mean_over_datasets(tmp_path: Path) -> None:
    source = Path("/work/main/results/demo/results.duckdb")
    if not source.is_file():
        pytest.skip("no demo results (run `radioactive demo`)")
    shutil.copy(source, tmp_path / "results.duckdb")
    table = build_tables(load_steps(tmp_path))["dice"]

    import duckdb

    con = duckdb.connect(str(tmp_path / "results.duckdb"), read_only=True)
    try:
        rows = con.execute(
            """
            WITH last AS (
                SELECT s.* FROM step_rows s JOIN units u USING (unit_id)
                WHERE u.status = 'ok' AND s.step = (
                    SELECT max(step) FROM step_rows t WHERE t.unit_id = s.unit_id)
            ), per_dataset AS (
                SELECT model, prompter, "user", dataset,
                       avg(CASE WHEN isnan(dice) THEN NULL ELSE dice END) AS m
                FROM last GROUP BY ALL
            )
            SELECT model, prompter, "user", avg(m), count(*) FROM per_dataset GROUP BY ALL
            """
        ).fetchall()
        n_datasets = con.execute("SELECT count(DISTINCT dataset) FROM step_rows").fetchone()
    finally:
        con.close()
    assert n_datasets is not None
    assert len(rows) == len(table)
    for model, prompter, user, mean, count in rows:
        expected = 100 * mean if count == n_datasets[0] else math.nan
        assert_close(table.loc[(model, prompter, user or "–"), MEAN_COLUMN], expected)
