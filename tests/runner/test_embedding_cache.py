"""A rerun of a grid with new prompters on the same data, with the persistent embedding cache,
runs no encoder, gives the numbers of a run without it, and changes no unit's identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from radioactive.models.checkpoints import fetch_checkpoint
from radioactive.runner.config import load_config
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore

pytestmark = pytest.mark.registry

CONFIG = """
datasets:
  - name: {suite}
    datasets: [DemoBrainTumoursMR]
    cases: [brain2]
models:
  - name: mobilesam
prompters: [{prompters}]
{extra}
"""


def _run(tmp: Path, suite: Path, name: str, prompters: str, extra: str = "") -> Path:
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(CONFIG.format(suite=suite, prompters=prompters, extra=extra), encoding="utf-8")
    out = tmp / name
    run_experiment(load_config(cfg), out)
    return out


def _steps(out: Path):
    with ResultStore(out, read_only=True) as store:
        return store.steps().set_index(["prompter", "target"]).sort_index()


def test_a_warm_cache_runs_no_encoder(demo_suite: Path, demo_cache: Path, tmp_path: Path) -> None:
    fetch_checkpoint("mobilesam", demo_cache)
    cache = f"embedding_cache: {tmp_path / 'embeddings'}"
    cold = _steps(_run(tmp_path, demo_suite, "cold", "box_per_slice", cache))
    assert cold["encoder_calls"].sum() > 0
    # the grid again with a new prompter, in another results folder: every slice is loaded
    warm = _steps(_run(tmp_path, demo_suite, "warm", "box_per_slice, center_point_per_slice",
                       cache))  # fmt: skip
    assert warm["encoder_calls"].sum() == 0 and warm["cache_hits"].sum() > 0
    plain = _steps(_run(tmp_path, demo_suite, "plain", "box_per_slice"))
    assert (warm.loc["box_per_slice(jitter=0)", "dice"]
            == plain.loc["box_per_slice(jitter=0)", "dice"]).all()  # fmt: skip
    assert set(warm["unit_id"]) >= set(plain["unit_id"])  # the cache is not in the identity
