"""Rules of the authors' pipelines, re-expressed in the test suite (never imported by the package),
shared by the conformance tests of the models that use them."""

from __future__ import annotations

import numpy as np


def pre_ct_mr(image: np.ndarray, modality: str) -> np.ndarray:
    """MedSAM's ``pre_CT_MR.py`` intensity rule: the uint8 volume it saves (CT: window level 40 /
    width 400; MR: the 0.5 / 99.5 percentiles of the positive voxels, zeros kept)."""
    if modality == "CT":
        level, width = 40, 400
        clipped = np.clip(image, level - width / 2, level + width / 2)
    else:
        positive = image[image > 0]
        clipped = np.clip(image, np.percentile(positive, 0.5), np.percentile(positive, 99.5))
    scaled = (clipped - np.min(clipped)) / (np.max(clipped) - np.min(clipped)) * 255.0
    if modality != "CT":
        scaled[image == 0] = 0
    return np.uint8(scaled)
