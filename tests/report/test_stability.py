"""Ranking stability: hand-computable draws, ranks, flips and Kendall's τ; the nominal scores are
the report's own numbers; cases, effort model and user noise are each redrawn as documented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from radioactive.prompts.cost import EFFORT_RANGES
from radioactive.prompts.types import Box2D, Point
from radioactive.report.leaderboard import leaderboard
from radioactive.report.stability import (
    ResampledScores,
    _unit_scores,
    flip_probabilities,
    kendall_taus,
    rank_intervals,
    resample_scores,
)
from radioactive.report.timing import time_table
from radioactive.report.view import ResultsView


def _prompts(user: list, review: int) -> str:
    return json.dumps({"prompts": [p.to_dict() for p in user],
                       "user_prompts": [p.to_dict() for p in user], "dof": 0, "seconds": 0.0,
                       "source": "test", "review_slices": review})  # fmt: skip


def _row(
    model: str, dataset: str, case: str, target: str, seed: int, step: int, dice: float,
    seconds: float, cum: float, model_s: float = 0.0, prompts: str | None = None,
) -> dict:  # fmt: skip
    return dict(unit_id=f"{model}|{dataset}|{case}|{target}|{seed}", dataset=dataset, case=case,
                case_id=case, target=target, modality="CT", category="organ", model=model,
                prompter="p", user="", seed=seed, step=step, status="ok", dice=dice, nsd=dice,
                dof=1, cum_dof=step + 1, seconds=seconds, cum_seconds=cum, encoder_s=model_s,
                decoder_s=0.0, prompts=prompts)  # fmt: skip


def test_one_units_time_scores_under_given_effort_models_by_hand() -> None:
    step0 = _prompts([Point((3, 1, 1), True), Point((3, 2, 2), True)], review=4)
    step1 = _prompts([Box2D(5, (0, 0), (2, 2))], review=4)
    unit = pd.DataFrame([
        _row("m", "D", "c", "t", 0, 0, 0.5, 9.0, 9.0, model_s=1.0, prompts=step0),
        _row("m", "D", "c", "t", 0, 1, 0.8, 10.0, 19.0, model_s=2.0, prompts=step1),
    ]).assign(model_s=[1.0, 2.0])  # fmt: skip
    order = list(EFFORT_RANGES)
    theta = np.zeros((2, len(order)))
    # draw 0: point 2 s, box 5 s, view 1 s, review 0.5 s/slice
    # step 0: 2·2 + 1 + 4·0.5 = 7 s (+1 s model) → result at 8 s
    # step 1: 5 + 1 + 2 = 8 s (+2 s model) → result at 8 + 10 = 18 s
    used = [order.index(k) for k in ("point_s", "box2d_s", "slice_visit_s", "review_slice_s")]
    theta[0, used] = (2.0, 5.0, 1.0, 0.5)
    # draw 1: everything twice as slow → results at 15 s and 33 s
    theta[1] = 2 * theta[0]
    nominal, drawn = _unit_scores(unit, "dice_at_20s", theta)
    # stored: results at 9 + 1 = 10 s and 19 + 3 = 22 s
    assert nominal == 0.5 and drawn.tolist() == [0.8, 0.5]
    unit.loc[1, "nsd"] = 0.6  # NSD at a budget reads the NSD column on the same clock
    assert _unit_scores(unit, "nsd_at_20s", theta)[1].tolist() == [0.6, 0.5]
    nominal, drawn = _unit_scores(unit, "auc_time_40s", theta)
    assert nominal == pytest.approx((0.5 * 12 + 0.8 * 18) / 40)
    assert drawn == pytest.approx([(0.5 * 10 + 0.8 * 22) / 40, (0.5 * 18 + 0.8 * 7) / 40])
    nominal, drawn = _unit_scores(unit, "dice", theta)  # the final step's, whatever the effort
    assert nominal == 0.8 and drawn.tolist() == [0.8, 0.8]


def _view(rows: list[dict]) -> ResultsView:
    return ResultsView.from_frames(pd.DataFrame(rows), n_boot=50, seed=0)


def _two_seed_rows(values: dict[str, tuple[float, float]], n_cases: int = 1) -> list[dict]:
    return [_row(m, "D", f"c{c}", "t", seed, 0, v[seed], 1.0, 1.0)
            for m, v in values.items() for c in range(n_cases) for seed in (0, 1)]  # fmt: skip


def test_user_noise_draws_one_seed_per_target_shared_by_all_models() -> None:
    # A ahead of B under either seed: the same human for both, so the order never flips
    view = _view(_two_seed_rows({"A": (1.0, 0.2), "B": (0.9, 0.1)}))
    scores = resample_scores(view, "dice", n_boot=400)
    assert scores.nominal.tolist() == pytest.approx([0.6, 0.5])  # every seed, averaged
    assert set(np.round(scores.draws[:, 0], 6)) == {1.0, 0.2}  # one seed per draw
    (flip,) = flip_probabilities(scores).itertuples()
    assert (flip.model_a, flip.model_b, flip.p_flip) == ("A", "B", 0.0)
    # B constant at 0.5: A (1.0 or 0.0 by seed) falls behind in about half the draws
    view = _view(_two_seed_rows({"A": (1.0, 0.0), "B": (0.4, 0.4)}))
    (flip,) = flip_probabilities(resample_scores(view, "dice", n_boot=400)).itertuples()
    assert flip.model_a == "A" and abs(flip.p_flip - 0.5) < 0.08


def test_effort_draws_move_time_scores_only_through_the_stored_counts() -> None:
    # A: one 2D box then Dice 1; B: one point then Dice 0.9. Dice at 10 s: B always reaches
    # its result (point 1-3 s + view 0.5-3.7 s); A only when box + view <= 10 s
    box, point = _prompts([Box2D(0, (0, 0), (2, 2))], 0), _prompts([Point((0, 1, 1), True)], 0)
    rows = [_row("A", "D", f"c{c}", "t", 0, 0, 1.0, 8.0, 8.0, prompts=box) for c in range(3)]
    rows += [_row("B", "D", f"c{c}", "t", 0, 0, 0.9, 2.75, 2.75, prompts=point) for c in range(3)]
    scores = resample_scores(_view(rows), "dice_at_10s", n_boot=2000, seed=1)
    assert scores.nominal.tolist() == [1.0, 0.9]  # stored seconds: both in time
    box_s, visit_s = EFFORT_RANGES["box2d_s"], EFFORT_RANGES["slice_visit_s"]
    rng = np.random.default_rng(0)
    total = rng.uniform(box_s.low, box_s.high, 10**6) + rng.uniform(
        visit_s.low, visit_s.high, 10**6
    )
    expected = float(np.mean(total > 10.0))  # A shows nothing yet: B ahead
    (flip,) = flip_probabilities(scores).itertuples()
    assert abs(flip.p_flip - expected) < 0.03
    assert (scores.draws[:, 1] == 0.9).all()
    fixed = resample_scores(_view(rows), "dice_at_10s", n_boot=200, vary_effort=False)
    assert (fixed.draws == fixed.nominal).all()


def test_nominal_scores_are_the_reports_numbers() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for dataset in ("D1", "D2"):
        for c in range(4):
            for target in ("t1", "t2") if c % 2 else ("t1",):
                for model in ("A", "B"):
                    d0, d1 = rng.uniform(0.2, 0.9, 2)
                    rows.append(_row(model, dataset, f"c{c}", target, 0, 0, d0, 20.0, 20.0, 3.0))
                    rows.append(_row(model, dataset, f"c{c}", target, 0, 1, d1, 30.0, 50.0, 3.0))
    view = _view(rows)
    table = time_table(view).set_index("model")
    scores = resample_scores(view, "auc_time_120s", n_boot=20)
    assert scores.nominal * 100 == pytest.approx(table["Dice AUC over 120s"].to_numpy())
    board = leaderboard(view, "dice").set_index("model")
    cases = resample_scores(view, "dice", n_boot=20, weighting="cases")
    assert cases.nominal == pytest.approx(board.loc[["A", "B"], "mean"].to_numpy())
    # the leaderboard ranks by a time metric too, with the same case-level statistic
    by_time = leaderboard(view, "auc_time_120s", n_boot=20).set_index("model")
    timed = resample_scores(view, "auc_time_120s", n_boot=20, weighting="cases")
    assert timed.nominal == pytest.approx(by_time.loc[["A", "B"], "mean"].to_numpy())
    assert by_time["rank"].tolist() == [1, 2] and set(by_time.columns) >= {"rank_stable"}
    with pytest.raises(ValueError, match="no time metric 'dice_at_45s'"):
        leaderboard(view, "dice_at_45s", n_boot=20)


def _fixed(nominal: list[float], draws: list[list[float]]) -> ResampledScores:
    entries = pd.DataFrame({"model": [f"m{i}" for i in range(len(nominal))], "prompter": "p",
                            "user": ""})  # fmt: skip
    return ResampledScores("dice", entries, np.asarray(nominal), np.asarray(draws))


def test_ranks_flips_and_kendall_by_hand() -> None:
    # 10 draws; in 3 of them m0 and m1 swap; m2 is always last
    draws = [[0.9, 0.8, 0.1]] * 7 + [[0.7, 0.8, 0.1]] * 3
    scores = _fixed([0.9, 0.8, 0.1], draws)
    ranks = rank_intervals(scores).set_index("model")
    assert ranks["rank"].tolist() == [1, 2, 3]
    assert ranks.loc["m0", "p_rank"] == pytest.approx(0.7)
    assert (ranks.loc["m0", "rank_low"], ranks.loc["m0", "rank_high"]) == (1, 2)
    assert ranks["stable"].tolist() == [False, False, True]
    flips = flip_probabilities(scores).set_index(["model_a", "model_b"])["p_flip"]
    assert flips.to_dict() == {("m0", "m1"): pytest.approx(0.3), ("m0", "m2"): 0.0,
                               ("m1", "m2"): 0.0}  # fmt: skip
    (tau,) = kendall_taus(scores).itertuples()
    # a swap of two neighbours out of three entries: τ = (2 - 1) / 3
    assert tau.n_entries == 3 and tau.tau_median == 1.0 and tau.p_same == pytest.approx(0.7)
    assert tau.tau_low == pytest.approx(1 / 3)


def test_groups_rank_separately_and_lower_is_better() -> None:
    entries = pd.DataFrame({"model": ["a", "b", "a", "b"], "prompter": ["p", "p", "q", "q"],
                            "user": ""})  # fmt: skip
    values = [1.0, 2.0, 5.0, 3.0]
    scores = ResampledScores("hd95_mm", entries, np.asarray(values), np.asarray([values] * 4),
                             higher_is_better=False)  # fmt: skip
    ranks = rank_intervals(scores)
    assert ranks["rank"].tolist() == [1, 2, 2, 1] and ranks["stable"].all()
    flips = flip_probabilities(scores)
    pairs = flips[["model_a", "prompter_a", "model_b"]].values.tolist()
    assert pairs == [["a", "p", "b"], ["b", "q", "a"]]
    assert (flips["p_flip"] == 0).all()
    with pytest.raises(ValueError, match="weighting"):
        resample_scores(_view(_two_seed_rows({"A": (1, 0)})), weighting="datasets")
    with pytest.raises(ValueError, match="unknown metric"):
        resample_scores(_view(_two_seed_rows({"A": (1, 0)})), "nonsense")
