"""Volumes, cases, targets and datasets.

>>> from radioactive.data import load_volume  # doctest: +SKIP
>>> vol = load_volume("ct.nii.gz")            # doctest: +SKIP
>>> vol.array.shape, vol.spacing_mm           # doctest: +SKIP
((112, 101, 122), (3.0, 3.0, 3.0))
"""

from radioactive.data.case import Case, SkippedTarget, Target, TargetSpec, extract_targets
from radioactive.data.formats import Dataset, open_dataset
from radioactive.data.registry import resolve_datasets
from radioactive.data.volume import Volume, load_label, load_volume

__all__ = [
    "Case",
    "Dataset",
    "SkippedTarget",
    "Target",
    "TargetSpec",
    "Volume",
    "extract_targets",
    "load_label",
    "load_volume",
    "open_dataset",
    "resolve_datasets",
]
