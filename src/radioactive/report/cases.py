"""Finding a unit's case again for the report: its dataset folder and target rules.

A unit records its dataset folder (``units.dataset_root``) and its target's label value; the run
manifest holds the experiment configuration, whose ``targets:`` rules (connectivity, instance
mode) are needed to rebuild the same targets. :class:`DatasetFolders` opens each folder once with
the rules of the configuration entry that covers it, resolved as the runner resolves dataset
entries. Stores written before units recorded their folder fall back to the dataset folders of
the run manifest (the keys of ``runs.dataset_checksums``), matched by dataset name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from radioactive.data import Dataset

__all__ = ["DatasetFolders", "dataset_roots", "recorded", "run_configs"]

log = logging.getLogger(__name__)


def dataset_roots(runs: pd.DataFrame) -> list[Path]:
    """The dataset folders of all runs: the keys of ``runs.dataset_checksums`` (JSON text)."""
    roots: list[Path] = []
    if runs is None or runs.empty or "dataset_checksums" not in runs.columns:
        return roots
    for text in runs["dataset_checksums"]:
        if not isinstance(text, str) or not text:
            continue
        try:
            keys = json.loads(text)
        except ValueError:
            log.warning("unreadable dataset_checksums in the runs table: %.80s", text)
            continue
        for key in keys if isinstance(keys, Mapping) else []:
            if Path(key) not in roots:
                roots.append(Path(key))
    return roots


@dataclass
class DatasetFolders:
    """Dataset folders, opened on first use with the run configuration's ``targets:`` rules."""

    roots: list[Path]
    configs: list[Mapping[str, Any]] = field(default_factory=list)
    _opened: dict[Path, Dataset | None] = field(default_factory=dict)
    _specs: dict[Path, Any] | None = None

    def _target_specs(self) -> dict[Path, Any]:
        """Folder → the ``targets:`` override of the run config entry that covers it, resolved
        as the runner resolves dataset entries (recipe name or path, ``datasets:`` subset)."""
        if self._specs is None:
            from radioactive.data import TargetSpec, open_dataset
            from radioactive.data.registry import dataset_roots as resolve

            self._specs = {}
            for config in self.configs:
                for entry in config.get("datasets") or []:
                    if not isinstance(entry, Mapping) or not entry.get("targets"):
                        continue
                    try:
                        folders = resolve(entry.get("name", ""), config.get("cache_dir"))
                    except Exception as error:
                        log.warning("dataset entry %s cannot be resolved: %s", entry, error)
                        continue
                    names = entry.get("datasets") or []
                    for folder in folders:
                        if names and open_dataset(folder).name not in names:
                            continue
                        self._specs[folder.resolve()] = TargetSpec(**entry["targets"])
        return self._specs

    def open(self, root: Path) -> Dataset | None:
        if root not in self._opened:
            from radioactive.data import open_dataset

            try:
                spec = self._target_specs().get(root.resolve())
                self._opened[root] = open_dataset(root, targets=spec)
            except Exception as error:
                log.warning("dataset folder %s cannot be opened: %s", root, error)
                self._opened[root] = None
        return self._opened[root]

    def find(self, name: str, root: str | None = None) -> Dataset:
        """The dataset of a unit: its recorded folder, else the run folder named ``name``."""
        if root:
            ds = self.open(Path(root))
            if ds is None:
                raise LookupError(f"its dataset folder {root} cannot be opened; was it moved?")
            return ds
        for folder in self.roots:
            ds = self.open(folder)
            if ds is not None and ds.name == name:
                return ds
        raise LookupError(
            f"dataset {name!r} is in none of the run's dataset folders "
            f"({', '.join(map(str, self.roots)) or 'none recorded'}); was it moved?"
        )


def run_configs(runs: pd.DataFrame) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    if runs is None or "config" not in runs.columns:
        return out
    for text in runs["config"]:
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        if isinstance(value, Mapping):
            out.append(value)
    return out


def recorded(units: pd.DataFrame, unit_id: str) -> tuple[str | None, int | None]:
    """The dataset folder and label value a unit recorded (``None`` where it did not)."""
    if units.empty or "unit_id" not in units.columns:
        return None, None
    row = units[units["unit_id"] == unit_id]
    if row.empty:
        return None, None
    root = row.iloc[0].get("dataset_root")
    value = row.iloc[0].get("label_value")
    return (
        str(root) if isinstance(root, str) and root else None,
        int(value) if value is not None and not pd.isna(value) else None,
    )
