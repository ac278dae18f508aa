"""The typed experiment configuration: one YAML file describes a whole grid.

An experiment is datasets × models × (prompter, user) pairs × seeds. Pairs come from three places:

* ``prompters``: static prompters by spec string (``"box_interpolation(k=3, jitter=5)"``), one
  scored step each;
* ``families``: the groups of the RadioActive paper (:data:`FAMILIES`);
* ``interactive``: a preset (:mod:`radioactive.prompts.presets`) or an explicit prompter + user,
  any field of the preset overridden by the entry.

Everything is validated when the file is loaded (house rule 10): a misspelt key, a value of the
wrong type, an unknown prompter, user or preset name is a :class:`ConfigError` that lists every
problem as ``location: message``. What needs the disk or the model registry (dataset folders,
model names, prompt kinds a model accepts, checkpoints) is checked by :func:`validate`, which runs
nothing and reports instead of raising.

The modules, by concern: :mod:`~radioactive.runner.schema` (the typed entries),
:mod:`~radioactive.runner.catalogue` (the paper's groups, the expansion into pairs),
:mod:`~radioactive.runner.loading` (YAML, mappings, the quick form) and
:mod:`~radioactive.runner.validation` (checks without running). This module re-exports their
public names.

>>> cfg = quick_config("demo", "filled_box", "box_3d")
>>> [p.prompter for p in cfg.pairs()]
['box_3d']
>>> len(cfg.config_hash())
16
"""

from __future__ import annotations

from radioactive.runner.catalogue import FAMILIES
from radioactive.runner.loading import FIX_HINT, config_from_dict, load_config, quick_config
from radioactive.runner.schema import (
    MAX_STEPS,
    ConfigError,
    DatasetSpec,
    ExecutorSpec,
    ExperimentConfig,
    Family,
    InteractiveSpec,
    MetricsSpec,
    ModelSpec,
    PairSpec,
    StoppingSpec,
)
from radioactive.runner.validation import (
    CheckpointCheck,
    ComboCheck,
    DatasetCheck,
    ValidationReport,
    validate,
)

__all__ = [
    "FAMILIES",
    "FIX_HINT",
    "MAX_STEPS",
    "CheckpointCheck",
    "ComboCheck",
    "ConfigError",
    "DatasetCheck",
    "DatasetSpec",
    "ExecutorSpec",
    "ExperimentConfig",
    "Family",
    "InteractiveSpec",
    "MetricsSpec",
    "ModelSpec",
    "PairSpec",
    "StoppingSpec",
    "ValidationReport",
    "config_from_dict",
    "load_config",
    "quick_config",
    "validate",
]
