"""Intensity presets: percentiles over all voxels (negative CT values included), CT windows."""

from __future__ import annotations

import numpy as np
import pytest

from radioactive.models.intensity import clip_range, normalize


def test_percentiles_use_every_voxel_of_a_ct() -> None:
    ct = np.full((4, 20, 20), -1000.0, np.float32)  # air
    ct[:, 5:15, 5:15] = 40.0  # soft tissue
    ct[0, 0, 0] = 3000.0  # one metal voxel
    lo, hi = clip_range(ct, "percentile")
    assert lo == -1000.0 and hi == pytest.approx(40.0)
    # clipping over positive voxels only (a known defect) would give a range of 40..3000
    out = normalize(ct)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert np.allclose(out[1, 10, 10], 1.0) and np.allclose(out[1, 0, 0], 0.0)


def test_ct_window_and_per_slice_scaling() -> None:
    ct = np.linspace(-500, 500, 2 * 10 * 10, dtype=np.float32).reshape(2, 10, 10)
    assert clip_range(ct, "ct_soft_tissue") == (-160.0, 240.0)
    out = normalize(ct, "ct_soft_tissue", out_max=255.0)
    assert out.min() == 0.0 and out.max() == 255.0
    assert np.all(out[0][ct[0] <= -160] == 0.0)  # slice 0 holds -500..0: window low end is 0


def test_constant_slices_and_unknown_presets() -> None:
    flat = np.zeros((2, 4, 4), np.float32)
    assert not normalize(flat).any()
    with pytest.raises(ValueError, match="unknown intensity preset"):
        normalize(flat, "ct_brian")
