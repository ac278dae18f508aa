"""The example experiments shipped in configs/ and the package load and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from radioactive.experiments import experiment_path
from radioactive.runner.config import load_config

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    *sorted((ROOT / "configs").glob("*.yaml")),
    experiment_path("demo"),
    experiment_path("demo_human"),
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_experiments_load(path: Path) -> None:
    config = load_config(path)
    assert config.pairs() and config.models and config.datasets


def test_the_human_like_demo_puts_perfect_and_noisy_users_side_by_side() -> None:
    from radioactive.prompts import get_prompter, get_user
    from radioactive.prompts.human import NoisyPrompter, NoisyUser

    config = load_config(experiment_path("demo_human"))
    pairs = config.pairs()
    static = [get_prompter(p.prompter) for p in pairs if p.user is None]
    levels = {p.box_sd_mm for p in static if isinstance(p, NoisyPrompter)}
    assert {0.0, 2.0, 4.0, 8.0} <= levels  # a robustness curve from the oracle to 8 mm
    users = [get_user(p.user) for p in pairs if p.user is not None]
    assert any(isinstance(u, NoisyUser) for u in users)  # a human-like corrector ...
    assert any(not isinstance(u, NoisyUser) for u in users)  # ... beside the perfect one
    assert len(config.seeds) >= 2 and len(config.models) >= 2  # user noise and ranks to redraw
