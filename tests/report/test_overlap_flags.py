"""Training-data overlap where users read results: validate, leaderboard, HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from radioactive.models import training_data as td
from radioactive.report.html import build_report
from radioactive.report.leaderboard import leaderboard
from radioactive.report.overlap import overlap_table
from radioactive.runner.config import config_from_dict, validate
from radioactive.runner.run import run_experiment
from tests.runner.tiny_dataset import write_dataset


@pytest.fixture
def trained_on_lits(monkeypatch: pytest.MonkeyPatch) -> None:
    """``filled_box`` pretends to have weights trained on LiTS (and more, unpublished)."""
    record = td.TrainingData("filled_box", "partial", ("LiTS",), (td.Source("a test", "paper"),))
    monkeypatch.setitem(td.TRAINING_DATA, "filled_box", record)


def _config(tmp_path: Path) -> dict[str, object]:
    liver = write_dataset(tmp_path / "liver", cases=("c1", "c2"), name="Liver")
    other = write_dataset(tmp_path / "other", cases=("c1", "c2"), name="Other")
    return {
        "name": "overlap",
        "datasets": [
            {"name": str(liver), "collections": ["MSD-Task03-Liver"]},  # declared here
            {"name": str(other)},  # a plain nnU-Net dataset: unknown
        ],
        "models": [{"name": "filled_box", "label": "boxer"}, {"name": "random_walker"}],
        "prompters": ["box_per_slice"],
    }


def test_declared_collections_are_not_part_of_the_hash(tmp_path: Path) -> None:
    data = _config(tmp_path)
    plain = {**data, "datasets": [{"name": d["name"]} for d in data["datasets"]]}  # type: ignore[attr-defined]
    assert config_from_dict(data).config_hash() == config_from_dict(plain).config_hash()


def test_validate_warns_per_model_and_dataset(tmp_path: Path, trained_on_lits: None) -> None:
    report = validate(config_from_dict(_config(tmp_path)))
    assert report.ok  # a flag, not an error
    status = {(o.model, o.dataset): o.overlap.status for o in report.overlaps}
    assert status == {
        ("boxer", "Liver"): "known",
        ("boxer", "Other"): "unknown",
        ("random_walker", "Liver"): "none",
        ("random_walker", "Other"): "none",  # weight-free: clean whatever the data
    }
    text = "\n".join(report.lines())
    warn = [line for line in report.lines() if line.startswith("  WARN   boxer × Liver")]
    assert len(warn) == 1 and "known training-data overlap" in warn[0]
    assert "LiTS ~ MSD-Task03-Liver" in warn[0] and "a test [paper]" in warn[0]
    assert "unknown for boxer × Other" in text and text.endswith("OK")
    dumped = json.loads(json.dumps(report.to_dict()))
    assert {o["status"] for o in dumped["overlaps"]} == {"known", "unknown", "none"}


def test_validate_possible_overlap_names_its_source(tmp_path: Path) -> None:
    data = _config(tmp_path)
    data["models"] = [{"name": "filled_box"}, {"name": "not_a_model"}]
    report = validate(config_from_dict(data))
    flagged = [o for o in report.overlaps if o.overlap.flagged]
    assert [(o.model, o.dataset, o.overlap.status) for o in flagged] == [
        ("not_a_model", "Liver", "possible")
    ]
    assert "no training-data record" in flagged[0].line


def test_leaderboard_and_report_carry_the_flag(
    tmp_path: Path, trained_on_lits: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from radioactive.cli.run import print_results

    results = tmp_path / "results"
    run_experiment(config_from_dict(_config(tmp_path)), results)
    out = build_report(results, tmp_path / "report")
    print_results(results)
    printed = capsys.readouterr().out
    assert "overlap" in printed and "known" in printed

    board = pd.read_csv(tmp_path / "report" / "leaderboard" / "per_dataset.csv")
    flags = {(r.model, r.dataset): r.overlap for r in board.itertuples()}
    assert flags[("boxer", "Liver")] == "known" and flags[("boxer", "Other")] == "unknown"
    assert flags[("random_walker", "Liver")] == "none"
    overall = pd.read_csv(tmp_path / "report" / "leaderboard" / "overall.csv")
    by_model = dict(zip(overall["model"], overall["overlap"], strict=True))
    assert by_model == {"boxer": "known", "random_walker": "none"}

    page = out.html.read_text(encoding="utf-8")
    section = page.split("<h2>Training-data overlap</h2>")[1].split("<h2>")[0]
    assert "LiTS ~ MSD-Task03-Liver" in section and "a test [paper]" in section
    assert "random_walker" not in section  # only flagged or unknown pairs are listed
    dice = page.split("<h2>Dice per dataset</h2>")[1].split("<h2>")[0]
    boxer_row = next(r for r in dice.split("<tr>") if "<td>boxer</td>" in r)
    assert "‡" in boxer_row and "?" in boxer_row
    walker_row = next(r for r in dice.split("<tr>") if "<td>random_walker</td>" in r)
    assert "‡" not in walker_row and "?" not in walker_row and "†" not in walker_row


def test_overlap_table_of_a_bare_steps_table() -> None:
    from radioactive.report.view import ResultsView

    rows = [
        dict(dataset=d, case="c", case_id="c", target="t", model=m, prompter="p", user="",
             seed=0, step=0, status="ok", dice=0.5, nsd=0.5, cum_dof=1, cum_seconds=1.0)
        for d in ("HCCTACE", "Mine") for m in ("sam", "sammed3d")
    ]  # fmt: skip
    table = overlap_table(ResultsView.from_frames(pd.DataFrame(rows)))
    got = {(r.model, r.dataset): r.overlap for r in table.itertuples()}
    assert got == {
        ("sam", "HCCTACE"): "none",  # complete list (SA-1B), collection known from the recipe
        ("sam", "Mine"): "unknown",
        ("sammed3d", "HCCTACE"): "possible",
        ("sammed3d", "Mine"): "unknown",
    }
    board = leaderboard(pd.DataFrame(rows), n_boot=10, level="dataset")
    assert set(board["overlap"]) == {"none", "unknown", "possible"}
