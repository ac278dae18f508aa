"""Figures from a hand-made steps table: files written, empty figures skipped, helpers by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from radioactive.report.plots import (
    CONFIDENCE_Z,
    _box_jitter,
    final_steps,
    jitter_params,
    make_figures,
    mean_ci,
    prompter_family,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(unit: str, model: str, prompter: str, user: str | None, step: int, dice: float, **extra):
    case, seed = unit.split("/")[-2:]
    row = {
        "unit_id": unit,
        "dataset": "DemoSet",
        "case_id": case,
        "target": "lesion#1",
        "target_kind": "instance",
        "modality": "CT",
        "category": "pathology",
        "model": model,
        "prompter": prompter,
        "user": user,
        "seed": int(seed),
        "step": step,
        "status": "ok",
        "dice": dice,
        "nsd": dice,
        "hd95_mm": 2.0,
        "dof": 6,
        "seconds": 24.0,
        "cum_dof": 6 * (step + 1),
        "cum_seconds": 24.0 * (step + 1),
        "encoder_s": 0.5 if step == 0 else 0.0,
        "decoder_s": 0.01,
        "encoder_calls": 3,
        "slices_inferred": 3,
        "prompts": '{"prompts": []}',
        "prediction_path": None,
    }
    row.update(extra)
    return row


def _steps(static: list[str], interactive: bool = True) -> pd.DataFrame:
    """Two models × the given static prompters (+ one interactive entry) × 2 cases × 2 seeds."""
    rows = []
    for mi, model in enumerate(["sam", "medsam"]):
        for pi, prompter in enumerate(static):
            for case in ("c1", "c2"):
                for seed in (0, 1):
                    unit = f"{model}/{prompter}/{case}/{seed}"
                    dice = 0.5 + 0.1 * mi + 0.02 * pi + 0.01 * seed
                    rows.append(_row(unit, model, prompter, "", 0, dice))
        if interactive:
            for case in ("c1", "c2"):
                for seed in (0, 1):
                    unit = f"{model}/inter/{case}/{seed}"
                    last = 2 if seed == 0 else 1  # seed 1 stops early (Dice target reached)
                    for step in range(last + 1):
                        dice = 0.4 + 0.1 * step + 0.05 * mi
                        status = "stopped" if step == last and seed == 1 else "ok"
                        rows.append(
                            _row(
                                unit,
                                model,
                                "points_per_slice(n=1)",
                                "random_error_per_slice",
                                step,
                                dice,
                                status=status,
                            )
                        )
    return pd.DataFrame(rows)


def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


def _check_files(paths: list[Path]) -> None:
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0, p
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC
            image = imread(p)
            assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
        else:
            assert p.suffix == ".svg"
            text = p.read_text(encoding="utf-8")
            assert "<svg" in text and text.rstrip().endswith("</svg>")


JITTER = ["box_per_slice", "box_interpolation(k=3)", "box_interpolation(k=3, jitter=4)"]


def test_all_figures_are_written_as_png_and_svg(tmp_path: Path) -> None:
    steps = _steps([*JITTER, "center_point_per_slice"])
    paths = make_figures(steps, tmp_path / "figs")
    expected = {
        f"{n}.{ext}"
        for n in (
            "dice_vs_interactions",
            "dice_vs_seconds",
            "dice_vs_time",
            "refinement_curves",
            "box_jitter",
            "timing",
        )
        for ext in ("png", "svg")
    }
    assert _names(paths) == expected
    assert all(p.parent == tmp_path / "figs" for p in paths)
    _check_files(paths)
    # the dice-vs-DoF figure: 9 × 5.5 inches at 120 dpi
    assert imread(tmp_path / "figs" / "dice_vs_interactions.png").shape[:2] == (660, 1080)
    svg = (tmp_path / "figs" / "dice_vs_interactions.svg").read_text(encoding="utf-8")
    assert "mean final Dice (×100)" in svg and "degrees of freedom" in svg


def test_box_jitter_only_with_several_jitter_values(tmp_path: Path) -> None:
    def drawn(prompters: list[str]) -> bool:
        return _box_jitter(final_steps(_steps(prompters, interactive=False))) is not None

    assert drawn(JITTER)
    assert not drawn(["box_per_slice", "box_interpolation(k=3)"])
    assert not drawn(["box_interpolation(k=3, jitter=2)"])  # one jitter value
    assert not drawn(["box_interpolation(k=2)", "box_interpolation(k=3, jitter=2)"])  # other k
    no_jitter = make_figures(_steps(["box_per_slice"], interactive=False), tmp_path / "a")
    assert "box_jitter.png" not in _names(no_jitter)
    assert "dice_vs_interactions.png" in _names(no_jitter)
    assert "refinement_curves.png" not in _names(no_jitter)  # no simulated user


def test_figures_without_data_are_skipped(tmp_path: Path) -> None:
    assert make_figures(pd.DataFrame(), tmp_path / "empty") == []
    assert not (tmp_path / "empty").exists()

    steps = _steps(["box_per_slice"])
    steps[["encoder_s", "decoder_s"]] = np.nan
    steps["dice"] = np.nan
    assert make_figures(steps, tmp_path / "nan") == []

    errors = _steps(["box_per_slice"]).assign(status="error")
    names = _names(make_figures(errors, tmp_path / "errors"))
    assert names == {"timing.png", "timing.svg"}  # failed units are not scored

    no_timing = _steps(["box_per_slice"]).drop(columns=["encoder_s", "decoder_s"])
    assert "timing.png" not in _names(make_figures(no_timing, tmp_path / "no_timing"))


def test_svg_output_is_reproducible(tmp_path: Path) -> None:
    steps = _steps(["box_per_slice"], interactive=False).assign(dice=np.nan)  # timing only
    (a,) = (p for p in make_figures(steps, tmp_path / "a") if p.name == "timing.svg")
    (b,) = (p for p in make_figures(steps, tmp_path / "b") if p.name == "timing.svg")
    assert a.read_bytes() == b.read_bytes()


def test_final_steps_take_the_last_step_of_units_without_errors() -> None:
    steps = pd.DataFrame(
        [
            _row("m/p/c1/0", "m", "p", "u", 0, 0.1),
            _row("m/p/c1/0", "m", "p", "u", 1, 0.3),
            _row("m/p/c2/0", "m", "p", "u", 0, 0.2),
            _row("m/p/c2/0", "m", "p", "u", 1, np.nan, status="error"),
            _row("m/q/c1/0", "m", "q", None, 0, 0.9),
        ]
    )
    finals = final_steps(steps)
    assert sorted(finals["unit_id"]) == ["m/p/c1/0", "m/q/c1/0"]
    assert finals.set_index("unit_id").loc["m/p/c1/0", "dice"] == 0.3
    assert finals.set_index("unit_id").loc["m/q/c1/0", "user"] == ""  # None read as no user


def test_helpers_by_hand() -> None:
    assert jitter_params("box_interpolation(k=5, jitter=3)") == (5, 3)
    assert jitter_params("box_interpolation(k=2)") == (2, 0)
    assert jitter_params("box_interpolation") == (3, 0)
    assert jitter_params("box_per_slice") is None
    assert jitter_params("not a spec((") is None

    assert prompter_family("box_per_slice_from_3d_box") == "boxes"
    assert prompter_family("box_3d", "") == "boxes"
    assert prompter_family("points_per_slice(n=3)") == "points"
    assert prompter_family("box_per_slice", "scribble") == "interactive"

    mean, half, n = mean_ci([1.0, 3.0, math.nan])  # sd = √2, n = 2: half = z · √2 / √2
    assert (mean, n) == (2.0, 2)
    assert half == pytest.approx(CONFIDENCE_Z)
    assert math.isnan(mean_ci([4.0])[1]) and mean_ci([4.0])[0] == 4.0
    assert mean_ci([])[2] == 0
