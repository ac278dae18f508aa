"""Prompts derived from the ones a user placed: points interpolated along z between placed ones,
and prompts propagated slice by slice by the model's own predictions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from radioactive.prompts import geometry as geo
from radioactive.prompts.base import BoolArray, SlicePredictor
from radioactive.prompts.types import Point, Prompt

__all__ = ["interpolate_points", "propagate"]


def propagate(
    predict: SlicePredictor,
    z0: int,
    start: list[Prompt],
    z_range: tuple[int, int],
    next_prompt: Callable[[int, BoolArray], Prompt],
) -> dict[int, list[Prompt]]:
    """Prompt slice ``z0``, then walk upwards and downwards separately: the model predicts the
    current slice and ``next_prompt(next_z, prediction)`` prompts the next one, until a
    prediction is empty or the next slice leaves ``z_range`` (inclusive). The prediction of
    ``z0`` is made once and serves both directions."""
    by_slice: dict[int, list[Prompt]] = {z0: list(start)}
    first = np.asarray(predict(z0, by_slice[z0]), dtype=bool)
    for step in (1, -1):
        pred, z = first, z0
        while pred.any():
            nz = z + step
            if nz < z_range[0] or nz > z_range[1]:
                break
            by_slice[nz] = [next_prompt(nz, pred)]
            pred, z = np.asarray(predict(nz, by_slice[nz]), dtype=bool), nz
    return by_slice


def interpolate_points(placed: list[Prompt]) -> list[Prompt]:
    """The points interpolated between the positive points placed (one per slice, the first on
    a slice kept when two land on one), plus the negative ones placed."""
    positive = sorted((p for p in placed if isinstance(p, Point) and p.positive),
                      key=lambda p: p.zyx[0])  # fmt: skip
    keys = {p.zyx[0]: p for p in reversed(positive)}
    negative = [p for p in placed if not (isinstance(p, Point) and p.positive)]
    if not keys:
        return negative
    kz = np.asarray(sorted(keys), dtype=np.int64)
    zs, yx = geo.interpolate_along_z(kz, np.asarray([keys[z].zyx[1:] for z in kz], dtype=float))
    yx = np.rint(yx).astype(np.int64)
    return [*(Point((int(z), int(y), int(x)), True) for z, (y, x) in zip(zs, yx, strict=True)),
            *negative]  # fmt: skip
