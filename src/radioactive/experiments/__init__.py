"""Experiment files shipped with the package (``radioactive demo`` runs ``demo.yaml``)."""

from pathlib import Path

EXPERIMENTS_DIR = Path(__file__).resolve().parent


def experiment_path(name: str) -> Path:
    """Path of a bundled experiment file, e.g. ``experiment_path("demo")``."""
    return EXPERIMENTS_DIR / f"{name}.yaml"
