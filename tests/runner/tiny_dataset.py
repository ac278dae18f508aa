"""A tiny nnU-Net raw dataset on disk, for runner tests that must run in seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import write_nifti

LABELS = {"background": 0, "ball": 1, "cube": 2}


def label_map(shift: int = 0) -> np.ndarray:
    """Two targets in a 24³ volume: a ball (1) and a cube (2); ``shift`` moves the cube."""
    z, y, x = np.mgrid[:24, :24, :24]
    lab = np.zeros((24, 24, 24), dtype=np.uint8)
    lab[(z - 8) ** 2 + (y - 8) ** 2 + (x - 8) ** 2 <= 16] = 1
    lab[14 + shift : 20 + shift, 12:20, 12:20] = 2
    return lab


def write_dataset(root: Path, *, cases: tuple[str, ...] = ("c1", "c2"), **extra: Any) -> Path:
    """An nnU-Net dataset with only the four standard dataset.json keys (plus ``extra``)."""
    rng = np.random.default_rng(0)
    for case in cases:
        lab = label_map()
        image = (lab * 100.0 + rng.normal(0.0, 5.0, lab.shape)).astype(np.float32)
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", image)
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab)
    meta = {"channel_names": {"0": "CT"}, "labels": dict(LABELS), "numTraining": len(cases),
            "file_ending": ".nii.gz", **extra}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def config(root: Path, *prompters: str, **extra: Any) -> dict[str, Any]:
    """An experiment of ``filled_box`` with ``prompters`` on the dataset at ``root``."""
    return {"name": "tiny", "datasets": [{"name": str(root)}],
            "models": [{"name": "filled_box"}], "prompters": list(prompters) or ["box_per_slice"],
            **extra}  # fmt: skip
