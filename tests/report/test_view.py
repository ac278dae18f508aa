"""One results view: the figures draw the tables' numbers, a plain nnU-Net dataset reports,
skipped units are shown, figure texts never overlap, the HTML tables have no stray index."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from radioactive.report.bootstrap import Draws
from radioactive.report.html import _table
from radioactive.report.leaderboard import leaderboard
from radioactive.report.plots import _refinement_curves, draw_figures
from radioactive.report.tables import MEAN_COLUMN, build_tables
from radioactive.report.view import UNKNOWN, ResultsView
from tests.report.test_tables import E2, E3, make_steps, shown


@pytest.fixture(scope="module")
def view() -> ResultsView:
    return ResultsView.from_frames(make_steps())


def test_refinement_figure_draws_the_refinement_table(view: ResultsView) -> None:
    # make_steps has datasets of unequal size (2, 5 and 3 scored targets for E2, two seeds on
    # one of them): a pooled mean over units differs from the dataset-weighted one
    table = build_tables(view)["refinement"]
    (line,) = _refinement_curves(view).axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), table.loc[shown(E2)].to_numpy(), rtol=1e-12)
    pooled = view.scored[view.scored["user"] != ""].groupby("step")["dice"].mean() * 100
    assert not np.allclose(pooled.to_numpy(), table.loc[shown(E2)].to_numpy())


def test_effort_figure_draws_the_tables_means(view: ResultsView) -> None:
    tables = build_tables(view)
    figure = draw_figures(view)["dice_vs_interactions"]
    drawn = sorted(
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]))
        for line in figure.axes[0].get_lines()
        if len(line.get_xdata()) == 1 and line.get_marker() not in ("None", "_")
    )
    complete = tables["dice"][MEAN_COLUMN].dropna()  # E3 misses a dataset: not drawn
    expected = sorted(
        (float(tables["effort"].loc[e, "DoF"]), float(complete.loc[e])) for e in complete.index
    )
    np.testing.assert_allclose(drawn, expected, rtol=1e-12)
    assert shown(E3) not in complete.index and len(drawn) == 2


def test_refinement_carries_a_stopped_unit_forward_but_not_a_nan() -> None:
    rows = []
    for case, values in (("c1", [0.2, 0.5, 0.7]), ("c2", [0.4, math.nan])):
        for step, dice in enumerate(values):
            rows.append(
                dict(unit_id=case, dataset="D", case_id=case, target="t", model="m",
                     prompter="p", user="u", seed=0, step=step, status="ok", dice=dice,
                     nsd=dice, cum_dof=step, cum_seconds=step)
            )  # fmt: skip
    curves = ResultsView.from_frames(pd.DataFrame(rows)).refinement().set_index("step")
    # c2 ends at step 1 with a NaN (both masks empty): it stays NaN at step 2, not 0.4
    assert curves["mean"].tolist() == pytest.approx([0.3, 0.5, 0.7])
    assert curves["n_units"].tolist() == [2, 2, 2]


def test_plain_nnunet_dataset_groups_as_unknown() -> None:
    steps = make_steps().assign(category=None)
    steps.loc[steps["dataset"] == "LungCT", "modality"] = None
    tables = build_tables(steps)
    assert "Dice unknown" in tables["groups"].columns
    assert not tables["groups"]["Dice unknown"].isna().all()
    assert "Dice pathology" not in tables["groups"].columns
    assert UNKNOWN in set(ResultsView.from_frames(steps).finals["modality"])


def test_skipped_units_reach_the_tables() -> None:
    units = pd.DataFrame(
        [dict(unit_id="s1", dataset="AbdoCT", case_id="*", target="*", model="rw",
              prompter="scribble_per_slice", user=None, seed=0, status="skipped",
              reason="rw does not accept scribble prompts")]
    )  # fmt: skip
    view = ResultsView.from_frames(make_steps(), units)
    tables = build_tables(view)
    skipped = tables["skipped"].reset_index()
    assert skipped[["model", "user", "reason", "datasets", "n units"]].values.tolist() == [
        ["rw", "–", "rw does not accept scribble prompts", "AbdoCT", 1]
    ]
    assert view.unit_counts()["skipped"] == 1
    assert build_tables(make_steps())["skipped"].empty


def test_one_set_of_draws_behind_every_interval(view: ResultsView) -> None:
    first = view.draws()
    assert view.draws() is first and view.draws(50, 1) is not first
    cases = {d: sorted(view.finals.loc[view.finals["dataset"] == d, "case"].unique())
             for d in view.datasets}  # fmt: skip
    again = Draws.make(cases, n_boot=first.n_boot, seed=first.seed)
    for d in view.datasets:
        np.testing.assert_array_equal(again.counts[d], first.counts[d])
    # the leaderboard of the view equals the leaderboard of the steps
    pd.testing.assert_frame_equal(leaderboard(view), leaderboard(make_steps()))


def _texts(figure) -> list:
    """(text, window box) of every text the figure draws: tick labels inside the view limits,
    titles, axis labels, legend entries and any annotation."""
    from matplotlib.axis import Tick
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts: list[Text] = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    texts.append(tick.label1)
    ticks = {id(t) for t in figure.findobj(Tick)}
    tick_labels = {id(t.label1) for t in figure.findobj(Tick)} | {
        id(t.label2) for t in figure.findobj(Tick)
    }
    texts += [t for t in figure.findobj(Text) if id(t) not in tick_labels and id(t) not in ticks]
    out = []
    for text in texts:
        if not text.get_visible() or not str(text.get_text()).strip():
            continue
        box = text.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            out.append((text.get_text(), box))
    return out


def test_figure_texts_do_not_overlap() -> None:
    # many entries with long canonical specs, as on the demo, and a refinement entry
    models = ["mobilesam", "litemedsam", "filled_box", "random_walker"]
    prompters = [
        "box_per_slice(jitter=0)", "box_interpolation(k=3, jitter=0, key_rounding='floor')",
        "box_interpolation(k=3, jitter=4, key_rounding='floor')", "points_per_slice(n=3)",
        "center_point_per_slice", "point_propagation(n=1)",
    ]  # fmt: skip
    rng = np.random.default_rng(1)
    rows = []
    for model, prompter, case, seed in itertools.product(models, prompters, "abc", (0,)):
        for dataset in ("D1", "D2"):
            dice = float(rng.uniform(0.3, 0.9))
            rows.append(
                dict(unit_id=f"{model}{prompter}{case}{dataset}", dataset=dataset, case_id=case,
                     target="t", model=model, prompter=prompter, user="", seed=seed, step=0,
                     status="ok", dice=dice, nsd=dice, cum_dof=float(rng.integers(1, 60)),
                     cum_seconds=float(rng.uniform(1, 300)), encoder_s=0.1, decoder_s=0.01,
                     slices_inferred=3, modality="CT", category="organ")
            )  # fmt: skip
    users = [
        "scribble(keep_previous=True, max_points=None)",
        "random_error_per_slice",
        "center_of_largest_error(keep_previous=True, spacing_mm=None, mode='cvpr25')",
    ]
    for model, user, case, step in itertools.product(models, users, "abc", range(4)):
        rows.append(
            dict(unit_id=f"{model}{user}{case}i", dataset="D1", case_id=case, target="t",
                 model=model, prompter="point_interpolation(k=5, key_rounding='floor')",
                 user=user, seed=0, step=step, status="ok", dice=0.2 + 0.1 * step, nsd=0.5,
                 cum_dof=step + 5, cum_seconds=10.0 * step + 5, modality="CT",
                 category="organ")
        )  # fmt: skip
    figures = draw_figures(pd.DataFrame(rows))
    assert {"dice_vs_interactions", "dice_vs_seconds", "box_jitter", "timing"} <= set(figures)
    assert {"refinement_curves", "dice_vs_time"} <= set(figures)  # 12 refinement curves
    for name, figure in figures.items():
        texts = _texts(figure)
        width, height = figure.canvas.get_width_height()
        for text, box in texts:  # nothing cut off at the figure's edge
            assert box.x0 >= -1 and box.y0 >= -1, f"{name}: {text!r} cut off"
            assert box.x1 <= width + 1 and box.y1 <= height + 1, f"{name}: {text!r} cut off"
        for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
            assert not box_a.overlaps(box_b), f"{name}: {a!r} overlaps {b!r}"
        assert not [t for t in figure.axes[0].texts], f"{name}: text inside the axes"


def test_html_tables_have_no_stray_index(view: ResultsView) -> None:
    board = _table(leaderboard(view))
    header = board.split("</thead>")[0]
    assert "<th>rank</th>" in header and "<th></th>" not in header
    dice = _table(build_tables(view)["dice"])
    assert dice.split("</thead>")[0].count("<tr") == 1  # one header row, entry columns named
    assert "<th>model</th>" in dice


def test_the_units_table_says_how_a_unit_ended() -> None:
    steps = make_steps()
    ok_unit = steps.loc[steps["status"] == "ok", "unit_id"].iloc[0]
    units = (
        steps.drop_duplicates("unit_id")[["unit_id", "dataset", "case_id", "target", "model",
                                          "prompter", "user", "seed"]]
        .assign(status="ok", error=None)
        .reset_index(drop=True)
    )  # fmt: skip
    units.loc[units["unit_id"] == ok_unit, ["status", "error"]] = ["error", "killed"]
    failed = set(steps.loc[steps["status"] == "error", "unit_id"])
    units.loc[units["unit_id"].isin(failed), ["status", "error"]] = ["error", "boom"]
    view = ResultsView.from_frames(steps, units)
    assert ok_unit not in set(view.finals["unit_id"])  # its rows are ok, the unit is not
    assert set(view.errors["unit_id"]) == failed | {ok_unit}
    assert view.unit_counts()["error"] == len(failed) + 1


def test_time_table_and_figure_agree_by_hand() -> None:
    from radioactive.report.timing import dice_over_time, time_table, unit_times

    rows = []
    # two datasets of unequal size; human seconds + model seconds make the time to result
    plan = {("D1", "a"): ([0.5, 0.9], [10.0, 30.0], [2.0, 3.0]),
            ("D1", "b"): ([0.7, 0.7], [50.0, 70.0], [0.0, 0.0]),
            ("D2", "c"): ([0.2, 0.95], [5.0, 100.0], [1.0, 1.0])}  # fmt: skip
    for (dataset, case), (dice, human, model_s) in plan.items():
        for step in range(2):
            rows.append(
                dict(unit_id=case, dataset=dataset, case_id=case, target="t", model="m",
                     prompter="p", user="u", seed=0, step=step, status="ok", dice=dice[step],
                     nsd=dice[step], cum_dof=step + 1, cum_seconds=human[step],
                     encoder_s=0.0, decoder_s=model_s[step])
            )  # fmt: skip
    view = ResultsView.from_frames(pd.DataFrame(rows))
    units = unit_times(view).set_index("unit_id")
    # a: results at 12 s (0.5) and 35 s (0.9); b: at 50 s and 70 s; c: at 6 s and 102 s
    assert units.loc["a", "dice_at_30s"] == 0.5 and units.loc["b", "dice_at_30s"] == 0.0
    assert units.loc["a", "s_to_dice_0.8"] == 35.0 and units.loc["c", "s_to_dice_0.9"] == 102.0
    assert units.loc["b", "fails_dice_0.8"] == 1.0 and math.isnan(units.loc["b", "s_to_dice_0.8"])
    # the degrees of freedom spent by then: one per step here
    assert units.loc["a", "dof_to_dice_0.8"] == 2 and math.isnan(units.loc["b", "dof_to_dice_0.8"])
    table = time_table(view).iloc[0]
    assert table["DoF to Dice 0.8"] == 2.0
    # Dice @ 60 s: D1 mean(0.9, 0.7) = 0.8, D2 0.2 -> (0.8 + 0.2) / 2
    assert table["Dice @ 60s"] == pytest.approx(50.0)
    assert table["NSD @ 60s"] == pytest.approx(50.0)  # NSD equals Dice in these rows
    assert table["% never Dice 0.8"] == pytest.approx(100 * (0.5 + 0.0) / 2)
    curve = dice_over_time(view).set_index("t")["mean"]
    assert curve.loc[60.0] * 100 == pytest.approx(table["Dice @ 60s"])  # the figure's number
    assert curve.loc[0.0] == 0.0


def test_seconds_to_a_datasets_inter_rater_dice() -> None:
    import json

    from radioactive.report.timing import time_table, unit_times

    rows = []
    plan = {("D1", "a"): ([0.5, 0.9], [12.0, 35.0]), ("D1", "b"): ([0.7, 0.7], [50.0, 70.0]),
            ("D2", "c"): ([0.2, 0.95], [6.0, 102.0])}  # fmt: skip
    for (dataset, case), (dice, human) in plan.items():
        for step in range(2):
            rows.append(dict(unit_id=case, dataset=dataset, case_id=case, target="t", model="m",
                             prompter="p", user="u", seed=0, step=step, status="ok",
                             dice=dice[step], nsd=dice[step], cum_dof=step + 1,
                             cum_seconds=human[step]))  # fmt: skip
    assert "s_to_dice_rater" not in unit_times(ResultsView.from_frames(pd.DataFrame(rows)))
    config = {"name": "x", "report": {"inter_rater_dice": {"D1": 0.7}}}
    runs = pd.DataFrame({"run_id": ["r"], "config": [json.dumps(config)]})
    view = ResultsView.from_frames(pd.DataFrame(rows), runs=runs)
    assert view.inter_rater_dice() == {"D1": 0.7}
    units = unit_times(view).set_index("unit_id")
    assert units.loc["a", "s_to_dice_rater"] == 35.0 and units.loc["b", "s_to_dice_rater"] == 50.0
    assert math.isnan(units.loc["c", "s_to_dice_rater"])  # D2 states no level
    assert math.isnan(units.loc["c", "fails_dice_rater"])
    table = time_table(view).iloc[0]
    assert table["s to inter-rater Dice"] == pytest.approx((35.0 + 50.0) / 2)  # over D1 only
    assert table["% never inter-rater Dice"] == 0.0


@pytest.mark.parametrize("oracle", ["noisy(base='box_per_slice', box_sd_mm=0.0)",
                                    "box_per_slice"])  # fmt: skip
def test_robustness_figure_draws_dice_against_noise(oracle: str) -> None:
    from radioactive.prompts import get_prompter

    rows = []
    for sd, level in ((0.0, 0.9), (2.0, 0.8), (4.0, 0.6)):
        # at 0 mm: the wrapper without noise, or the wrapped prompter itself
        text = oracle if sd == 0.0 else f"noisy(base='box_per_slice', box_sd_mm={sd})"
        spec = get_prompter(text).spec
        for dataset, case in (("D1", "a"), ("D1", "b"), ("D2", "c")):
            dice = level - (0.1 if dataset == "D2" else 0.0)
            rows.append(
                dict(unit_id=f"{sd}{case}", dataset=dataset, case_id=case, target="t",
                     model="m", prompter=spec, user="", seed=0, step=0, status="ok", dice=dice,
                     nsd=dice, cum_dof=2, cum_seconds=8.0)
            )  # fmt: skip
    figure = draw_figures(pd.DataFrame(rows))["robustness"]
    (line,) = [ln for ln in figure.axes[0].get_lines() if ln.get_linestyle() not in ("None", "")]
    assert line.get_xdata().tolist() == [0.0, 2.0, 4.0]
    # the dataset-weighted means: (level + level - 0.1) / 2
    np.testing.assert_allclose(line.get_ydata(), [85.0, 75.0, 55.0])
