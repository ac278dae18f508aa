"""Fixtures of the metric tests: DeepMind's ``surface-distance`` as the reference implementation."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def reference() -> Callable[..., dict[str, Any]]:
    """``reference(pred, gt, spacing_mm, tolerance_mm)`` → the reference package's results.

    Returns its raw surface distances (``raw``) and ``nsd``, ``hd95``, ``hausdorff``, the directed
    average distances (``average``) and ``assd`` — the area-weighted mean over both surfaces, which
    the package does not define as one number but gives the parts of.
    """
    surface_distance = pytest.importorskip("surface_distance")

    def run(pred: np.ndarray, gt: np.ndarray, spacing_mm, tolerance_mm: float = 2.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.filters etc.
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of empty surfaces
            raw = surface_distance.compute_surface_distances(
                np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool), list(spacing_mm)
            )
            average = surface_distance.compute_average_surface_distance(raw)
            area_gt = np.sum(raw["surfel_areas_gt"])
            area_pred = np.sum(raw["surfel_areas_pred"])
            assd = (average[0] * area_gt + average[1] * area_pred) / (area_gt + area_pred)
            return {
                "raw": raw,
                "nsd": surface_distance.compute_surface_dice_at_tolerance(raw, tolerance_mm),
                "hd95": surface_distance.compute_robust_hausdorff(raw, 95),
                "hausdorff": surface_distance.compute_robust_hausdorff(raw, 100),
                "average": average,
                "assd": assd,
                "dice": surface_distance.compute_dice_coefficient(
                    np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
                ),
            }

    return run
