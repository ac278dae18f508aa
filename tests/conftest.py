"""Shared fixtures: small phantoms written to disk, and the real demo suite."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Save ``array`` (file index order i, j, k) as NIfTI with ``affine`` (default identity)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return path


def affine_from(spacing=(1.0, 1.0, 1.0), rotation=None, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 affine = [R @ diag(spacing) | origin]."""
    aff = np.eye(4)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)
    aff[:3, :3] = rot @ np.diag(spacing)
    aff[:3, 3] = origin
    return aff


@pytest.fixture(scope="session")
def demo_cache() -> Path:
    """The cache directory the real demo suite is prepared in (``$RADIOACTIVE_CACHE_DIR`` or the
    user cache), shared with ``radioactive demo`` so the data is fetched once per machine."""
    from radioactive.data.cache import cache_dir

    return cache_dir(os.environ.get("RADIOACTIVE_CACHE_DIR"))


@pytest.fixture(scope="session")
def demo_suite(demo_cache: Path) -> Path:
    """Root of the prepared demo suite (a folder of nnU-Net raw datasets); prepares it if needed."""
    from radioactive.data.recipes import get_recipe

    report = get_recipe("demo").prepare(demo_cache)
    return report.root


@pytest.fixture(scope="session")
def saved_run(demo_suite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results directory of a small real run that saved its predictions (filled box, box per
    slice, on the demo's brain2)."""
    from radioactive.runner.config import load_config
    from radioactive.runner.run import run_experiment

    tmp = tmp_path_factory.mktemp("saved_run")
    cfg = tmp / "save.yaml"
    cfg.write_text(
        f"""
datasets:
  - name: {demo_suite}
    datasets: [DemoBrainTumoursMR]
    cases: [brain2]
models:
  - name: filled_box
prompters: [box_per_slice]
save_predictions: true
""",
        encoding="utf-8",
    )
    out = tmp / "results"
    run_experiment(load_config(cfg), out)
    return out


@pytest.fixture(scope="module")
def restore_torch_threads():
    """Give torch back its process-wide thread count after a module that changes it (nnInteractive's
    session sets it)."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
