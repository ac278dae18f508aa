"""The example experiments shipped in configs/ and the package load and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from radioactive.experiments import experiment_path
from radioactive.runner.config import load_config

ROOT = Path(__file__).resolve().parents[2]
FILES = [*sorted((ROOT / "configs").glob("*.yaml")), experiment_path("demo")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_experiments_load(path: Path) -> None:
    config = load_config(path)
    assert config.pairs() and config.models and config.datasets
