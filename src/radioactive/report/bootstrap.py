"""The report's bootstrap: one set of case resamples per dataset, shared by every statistic.

Cases are the unit of resampling (PROTOCOL §6). ``n_boot`` times, the cases of every dataset are
drawn with replacement, independently per dataset; a draw is stored as how often each case was
drawn (a multinomial count vector), so a resampled mean is a matrix product and every entry,
pair of entries and step is resampled with the *same* draws — which is what makes paired
comparisons paired and the report's intervals agree with one another.

The draws come from ``numpy.random.default_rng(seed)``, one dataset after the other in the
report's dataset order, so the same input and seed give the same intervals bit for bit.

>>> draws = Draws.make({"A": ["c1", "c2", "c3"]}, n_boot=4, seed=0)
>>> draws.counts["A"].shape, draws.counts["A"].sum(axis=1).tolist()
((4, 3), [3.0, 3.0, 3.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Draws", "nanmean", "percentile_interval", "ratio_means"]

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Draws:
    """Per dataset, the case ids (sorted) and an ``(n_boot, n_cases)`` matrix of draw counts."""

    seed: int
    n_boot: int
    cases: Mapping[str, tuple[str, ...]]
    counts: Mapping[str, _Array]

    @classmethod
    def make(cls, cases: Mapping[str, Sequence[str]], n_boot: int, seed: int) -> Draws:
        """Draw ``n_boot`` resamples of the cases of each dataset, in the mapping's order."""
        if n_boot < 1:
            raise ValueError(f"n_boot must be at least 1, got {n_boot}")
        rng = np.random.default_rng(seed)
        counts: dict[str, _Array] = {}
        for dataset, ids in cases.items():
            n = len(ids)
            drawn = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) if n else None
            counts[dataset] = (
                drawn.astype(np.float64) if drawn is not None else np.zeros((n_boot, 0))
            )
        frozen = {d: tuple(str(c) for c in ids) for d, ids in cases.items()}
        return cls(seed=seed, n_boot=n_boot, cases=frozen, counts=counts)

    def case_index(self, dataset: str, case_ids: Sequence[str]) -> npt.NDArray[np.intp]:
        """Positions of ``case_ids`` among the dataset's drawn cases (``KeyError`` if one is
        not there: every case of a statistic must be one of the draws' cases)."""
        position = {c: i for i, c in enumerate(self.cases[dataset])}
        try:
            return np.asarray([position[str(c)] for c in case_ids], dtype=np.intp)
        except KeyError as error:
            raise KeyError(f"case {error.args[0]!r} is not a case of dataset {dataset!r}") from None


def ratio_means(counts: _Array, sums: _Array, weights: _Array) -> _Array:
    """Resampled means ``(counts @ sums) / (counts @ weights)``: (n_boot, k); NaN where a
    resample holds no weight. ``sums``/``weights`` are (n_cases, k) per-case totals and counts."""
    total = counts @ sums
    weight = counts @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


def nanmean(stack: _Array, axis: int) -> _Array:
    """Mean along ``axis`` leaving NaN out (NaN where all are NaN), without warnings."""
    valid = ~np.isnan(stack)
    count = valid.sum(axis=axis)
    total = np.where(valid, stack, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def percentile_interval(
    boot: _Array, ci: float, usable: npt.NDArray[np.bool_] | None = None
) -> tuple[_Array, _Array]:
    """Percentile interval per column of ``boot`` (n_boot, k), NaN replicates left out; NaN for
    columns not ``usable`` (a single case cannot be resampled into an interval)."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    alpha = (1.0 - ci) / 2.0
    low = np.full(boot.shape[1], np.nan)
    high = np.full(boot.shape[1], np.nan)
    for j in range(boot.shape[1]):
        if usable is not None and not usable[j]:
            continue
        column = boot[:, j]
        column = column[~np.isnan(column)]
        if column.size:
            low[j], high[j] = np.quantile(column, [alpha, 1.0 - alpha])
    return low, high
