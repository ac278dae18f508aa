"""The commands wired to the runner: ``run --replace-stale``, ``replay`` and ``migrate``."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.cli.replay import parse_options
from tests.runner.tiny_dataset import config, write_dataset


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _flat(text: str) -> str:
    return " ".join(text.split())


def _experiment(tmp_path: Path, name: str, **extra: object) -> Path:
    root = tmp_path / "tiny"
    if not root.exists():
        write_dataset(root)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config(root, **extra)), encoding="utf-8")
    return path


def test_replace_stale_recomputes_units_of_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _experiment(tmp_path, "a.yaml")
    changed = _experiment(tmp_path, "b.yaml", metrics={"nsd_tolerance_mm": 3.0})
    assert _invoke("run", str(first), "--out", str(out))[0] == 0
    code, _, stderr = _invoke("run", str(changed), "--out", str(out))
    assert code == 2 and "nsd_tolerance_mm" in stderr and "--replace-stale" in _flat(stderr)
    code, stdout, stderr = _invoke("run", str(changed), "--out", str(out), "--replace-stale")
    assert code == 0, stderr
    assert "4 units written" in _flat(stdout) and "4 stale replaced" in _flat(stdout)
    with duckdb.connect(str(out / "results.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM units").fetchall() == [(4,)]


def test_replay_sends_the_stored_prompts_to_another_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _invoke("run", str(_experiment(tmp_path, "a.yaml")), "--out", str(out))[0] == 0
    code, stdout, stderr = _invoke("replay", str(out), "--model", "random_walker")
    assert code == 0, stderr
    replayed = out / "replay-random_walker"
    assert f"→ {replayed}" in _flat(stdout) and "4 units written" in _flat(stdout)
    query = "SELECT u.case_id, u.target, s.prompts FROM steps s JOIN units u USING (unit_id) ORDER BY 1, 2"  # noqa: E501
    with duckdb.connect(str(out / "results.duckdb"), read_only=True) as db:
        source = db.sql(query).fetchall()
    with duckdb.connect(str(replayed / "results.duckdb"), read_only=True) as db:
        assert db.sql(query).fetchall() == source
        assert {m for (m,) in db.sql("SELECT DISTINCT model FROM units").fetchall()} == {
            "random_walker"
        }


def test_replay_options_are_key_value_pairs(tmp_path: Path) -> None:
    assert parse_options(["beta=130", "mode=bf", "flag=true", "p=/a=b"]) == {
        "beta": 130, "mode": "bf", "flag": True, "p": "/a=b",
    }  # fmt: skip
    code, _, stderr = _invoke("replay", str(tmp_path), "--model", "filled_box", "--option", "x")
    assert code == 2 and "is not of the form KEY=VALUE" in stderr


def test_migrate_reports_what_it_did(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _invoke("run", str(_experiment(tmp_path, "a.yaml")), "--out", str(out))[0] == 0
    code, stdout, _ = _invoke("migrate", str(out))
    assert code == 0 and "nothing to do" in stdout
    code, _, stderr = _invoke("migrate", str(tmp_path / "none"))
    assert code == 2 and "Traceback" not in stderr and "Fix: " in stderr


def test_report_of_a_plain_nnunet_dataset_with_a_skipped_pair(tmp_path: Path) -> None:
    """Only the four standard dataset.json keys (no category): the report works, groups the
    dataset as "unknown", and lists the pair that cannot run as skipped; the run's printed
    table gives the report's numbers."""
    out = tmp_path / "out"
    experiment = _experiment(tmp_path, "a.yaml", prompters=["box_per_slice", "points_per_slice"])
    code, stdout_run, stderr = _invoke("run", str(experiment), "--out", str(out))
    assert code == 0, stderr
    code, _stdout, stderr = _invoke("report", str(out))
    assert code == 0, stderr
    page = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Skipped</h2>" in page and "does not accept point prompts" in page
    assert "Dice unknown" in page
    skipped = (out / "report" / "tables" / "skipped.csv").read_text(encoding="utf-8")
    assert "points_per_slice(n=1)" in skipped
    import pandas as pd

    dice = pd.read_csv(out / "report" / "tables" / "dice.csv")
    (mean,) = dice["mean (datasets)"]
    printed = _flat(stdout_run.replace("│", " "))
    assert f"box_per_slice - 4 {mean:.1f}" in printed  # named as people read it


def test_report_docs_example_runs(tmp_path: Path, monkeypatch) -> None:
    import re

    out = tmp_path / "results" / "demo"
    assert _invoke("run", str(_experiment(tmp_path, "a.yaml")), "--out", str(out))[0] == 0
    text = (Path(__file__).resolve().parents[1] / "docs" / "report.md").read_text("utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(block, "docs/report.md", "exec"), names)
    assert set(names["tables"]) >= {"dice", "nsd", "effort", "refinement", "skipped"}
