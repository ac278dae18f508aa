"""The experiment schema: the typed entries of an experiment file and the whole grid.

See :mod:`radioactive.runner.config` for the overview; the paper's prompting groups and the
expansion of an experiment into pairs are in :mod:`radioactive.runner.catalogue`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from radioactive.data.case import TargetSpec
from radioactive.errors import RadioactiveError
from radioactive.prompts.presets import PRESETS

__all__ = [
    "MAX_STEPS",
    "ConfigError",
    "DatasetSpec",
    "ExecutorSpec",
    "ExperimentConfig",
    "Family",
    "InteractiveSpec",
    "MetricsSpec",
    "ModelSpec",
    "PairSpec",
    "StoppingSpec",
]

MAX_STEPS = 50


class ConfigError(RadioactiveError):
    """An experiment configuration is malformed, misspelt or names something unknown."""


_STRICT = ConfigDict(extra="forbid")


class DatasetSpec(BaseModel):
    """One dataset entry: a recipe name or the path of a dataset folder or suite folder."""

    model_config = _STRICT

    #: recipe name (e.g. ``"demo"``) or a path to a dataset or suite folder
    name: str = Field(min_length=1)
    #: subset of case ids (default: all)
    cases: list[str] | None = Field(default=None, min_length=1)
    #: for suites: subset of dataset names (``dataset.json`` "name", e.g. "DemoLungLesionsCT")
    datasets: list[str] | None = Field(default=None, min_length=1)
    #: overrides the target rules recorded in the dataset's ``dataset.json``
    targets: TargetSpec | None = None
    #: at most this many targets per case (the first ones, in label / component order)
    max_targets_per_case: int | None = Field(default=None, ge=1)
    #: the modality of the dataset's images ("CT", "MR", …), when its dataset.json does not say
    #: it (``channel_names`` / ``modality``) or says it differently; it selects each model's
    #: input contract
    modality: str | None = Field(default=None, min_length=1)
    #: identifiers of the public collections the dataset's images come from (``LiTS``,
    #: ``HCC-TACE-Seg``…), when its recipe or dataset.json does not say; compared with each
    #: model's training sets (:mod:`radioactive.models.training_data`), never part of a unit's
    #: identity or the configuration hash
    collections: list[str] | None = Field(default=None, min_length=1)


class ModelSpec(BaseModel):
    """One model: a registry name (``radioactive models list``), its options and a label."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    #: passed to ``get_model(name, **options)`` (``checkpoint``, ``device``, ``batch_size``, ...)
    options: dict[str, Any] = Field(default_factory=dict)
    #: distinguishes two entries of one model with different options; defaults to ``name``
    label: str | None = None

    @model_validator(mode="after")
    def _default_label(self) -> ModelSpec:
        if self.label is None:
            self.label = self.name
        return self

    @property
    def key(self) -> str:
        """The label (always set after validation)."""
        return self.label or self.name


def _check_rules(rules: dict[str, float | None]) -> dict[str, float | None]:
    """``rules`` if every name is a scoring rule and every value ``None`` or a number ≥ 0."""
    from radioactive.registry import did_you_mean
    from radioactive.session import SCORING_RULES

    for name, value in rules.items():
        if name not in SCORING_RULES:
            hint = did_you_mean(name, SCORING_RULES)
            raise ValueError(
                f"unknown scoring rule {name!r}{hint}; the rules are {', '.join(SCORING_RULES)}"
            )
        if value is not None and not value >= 0:
            raise ValueError(f"scoring rule {name} must be >= 0 or null, got {value}")
    return rules


class PairSpec(BaseModel):
    """One prompting strategy: an initial prompter and, for interactive runs, a simulated user.

    ``steps`` corrective steps follow the initial prompt (0 for a static prompter: one scored
    step). ``keep_initial`` re-sends the initial prompts with every correction.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompter: str
    user: str | None = None
    steps: int = Field(default=0, ge=0, le=MAX_STEPS)
    keep_initial: bool = True
    #: the preset it came from, for display
    preset: str | None = None
    #: scoring rules as sorted (name, value) pairs (``nsd_min_dice``, ``time_budget_s``;
    #: ``None`` switches one off); a mapping is accepted
    scoring: tuple[tuple[str, float | None], ...] = ()
    #: all targets of a case in one model call per step (models with ``multi_class``)
    multi_class: bool = False

    @field_validator("scoring", mode="before")
    @classmethod
    def _known_rules(cls, v: Any) -> Any:
        items = dict(v.items() if hasattr(v, "items") else v or ())
        return tuple(sorted(_check_rules(items).items()))

    @property
    def label(self) -> str:
        """A short display name: the preset (with the fields that differ from it, e.g.
        ``cvpr25 (steps=3)``), ``prompter + user``, or the prompter."""
        if self.preset:
            base = PRESETS.get(self.preset)
            changed = [
                f"{k}={getattr(self, k)}"
                for k in ("prompter", "user", "steps", "keep_initial")
                if base is not None and getattr(self, k) != getattr(base, k)
            ]
            rules = dict(base.scoring) if base is not None else {}
            changed += [f"{k}={v}" for k, v in self.scoring if rules.get(k) != v]
            changed += ["multi_class"] if self.multi_class else []
            return f"{self.preset} ({', '.join(changed)})" if changed else self.preset
        return f"{self.prompter} + {self.user}" if self.user else self.prompter


class InteractiveSpec(BaseModel):
    """An interactive entry: a ``preset``, or a ``prompter`` and a ``user``.

    Fields given next to a preset override the preset's. ``steps`` defaults to the preset's, and
    without a preset to ``stopping.max_steps``; ``keep_initial`` to the preset's, else true.
    """

    model_config = _STRICT

    preset: str | None = None
    prompter: str | None = None
    user: str | None = None
    steps: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    keep_initial: bool | None = None
    #: scoring rules over the preset's (``nsd_min_dice``, ``time_budget_s``; ``None``: off)
    scoring: dict[str, float | None] | None = None
    #: all targets of a case in one model call per step, for models that declare
    #: ``multi_class`` (the CVPR 2025 challenge's way)
    multi_class: bool = False

    @field_validator("scoring")
    @classmethod
    def _known_rules(cls, v: dict[str, float | None] | None) -> dict[str, float | None] | None:
        return None if v is None else _check_rules(v)

    @model_validator(mode="after")
    def _preset_or_pair(self) -> InteractiveSpec:
        if self.preset is None and (self.prompter is None or self.user is None):
            raise ValueError(
                f"give a preset, or both a prompter and a user (presets: {', '.join(PRESETS)})"
            )
        return self


class StoppingSpec(BaseModel):
    """When a trajectory stops before its last step (it is then padded with its last result)."""

    model_config = _STRICT

    #: corrective steps of interactive entries that give neither ``steps`` nor a preset
    max_steps: int = Field(default=5, ge=0, le=MAX_STEPS)
    #: stop once Dice reaches this value
    dice_target: float | None = Field(default=None, gt=0.0, le=1.0)
    #: stop once the estimated human effort exceeds this many seconds
    effort_budget_s: float | None = Field(default=None, gt=0.0)


class MetricsSpec(BaseModel):
    model_config = _STRICT

    #: NSD tolerance in mm (CVPR 2025: 2 mm)
    nsd_tolerance_mm: float = Field(default=2.0, gt=0.0)
    #: per-label-name tolerance overriding ``nsd_tolerance_mm``
    tolerance_mm_by_label: dict[str, float] = Field(default_factory=dict)
    #: compute surface metrics (NSD, HD95, ASSD); Dice is always computed
    surface: bool = True

    @field_validator("tolerance_mm_by_label")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, t in v.items() if not t > 0)
        if bad:
            raise ValueError(f"tolerances must be > 0 mm (not for: {', '.join(bad)})")
        return v


class ReportSpec(BaseModel):
    """Settings that only the report reads (not part of any unit's identity)."""

    model_config = _STRICT

    #: per dataset name: the Dice two human raters reach against each other; the report gives
    #: the seconds to reach it beside those to Dice 0.8 and 0.9
    inter_rater_dice: dict[str, float] = Field(default_factory=dict)

    @field_validator("inter_rater_dice")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, d in v.items() if not 0.0 < d <= 1.0)
        if bad:
            raise ValueError(f"inter-rater Dice must be in (0, 1] (not for: {', '.join(bad)})")
        return v


class ExecutorSpec(BaseModel):
    model_config = _STRICT

    kind: Literal["inline", "process", "ray"] = "inline"
    workers: int = Field(default=1, ge=1)
    #: for ``kind: ray``: the cluster address (default: start a local one)
    ray_address: str | None = None
    #: model label -> GPUs one worker of that model takes (Ray), e.g. ``{mobilesam: 0.5}``
    gpus_per_model: dict[str, float] = Field(default_factory=dict)

    @field_validator("gpus_per_model")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, g in v.items() if g < 0)
        if bad:
            raise ValueError(f"GPU shares must be >= 0 (not for: {', '.join(bad)})")
        return v


Family = Literal["static_2d", "static_3d", "refinement", "cvpr25", "robustness"]


class ExperimentConfig(BaseModel):
    """A whole experiment grid. See the module docstring and ``configs/`` for examples."""

    model_config = _STRICT

    name: str = Field(default="experiment", min_length=1)
    #: results directory (the CLI may override it)
    output: Path | None = None
    datasets: list[DatasetSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    #: static prompters by spec string, one scored step each
    prompters: list[str] = Field(default_factory=list)
    families: list[Family] = Field(default_factory=list)
    interactive: list[InteractiveSpec] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    stopping: StoppingSpec = Field(default_factory=StoppingSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    #: write each final prediction as NIfTI next to the results
    save_predictions: bool = False
    #: where datasets and checkpoints are cached (default: ``$RADIOACTIVE_CACHE_DIR`` or the user
    #: cache)
    cache_dir: Path | None = None
    #: a folder of slice embeddings kept between runs and shared by processes (off by default;
    #: see radioactive.models.embedding_store); changes no number
    embedding_cache: Path | None = None
    #: the bound of that folder, GiB (least recently used entries go first)
    embedding_cache_gb: float = Field(default=20.0, gt=0.0)

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v):
            raise ValueError("seeds must be >= 0")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"seeds must be unique (repeated: {', '.join(map(str, dup))})")
        return v

    @model_validator(mode="after")
    def _check_grid(self) -> ExperimentConfig:
        labels = [m.key for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(
                f"model labels must be unique (repeated: {', '.join(dup)}); give entries of one "
                "model with different options a distinct `label`"
            )
        unknown = sorted(set(self.executor.gpus_per_model) - set(labels))
        if unknown:
            raise ValueError(
                f"executor.gpus_per_model names no model of this experiment: "
                f"{', '.join(unknown)} (model labels: {', '.join(labels)})"
            )
        if not (self.prompters or self.families or self.interactive):
            raise ValueError("nothing to run: give `prompters`, `families` or `interactive`")
        _pairs, problems = self._expand()
        if problems:
            # not a ValueError: pydantic lets it through unchanged, and load_config adds the file
            raise ConfigError(
                "unknown names in the configuration:\n" + "\n".join(f"  {p}" for p in problems),
                fix="use the names of `radioactive ls` (prompters, users, presets)",
            )
        return self

    # -- expansion --------------------------------------------------------------------------

    def _expand(self) -> tuple[list[PairSpec], list[str]]:
        """All pairs in order (de-duplicated) and the problems found building them."""
        from radioactive.runner.catalogue import expand_pairs

        return expand_pairs(self)

    def pairs(self) -> list[PairSpec]:
        """Every (prompter, user) pair to run, in order: static prompters (one step each), the
        families, then the interactive entries; duplicates (same prompter, user, steps and
        keep_initial once built) are dropped, the first kept.

        Raises:
            ConfigError: a prompter, user or preset is unknown or has a bad parameter; the
                message names the entry and lists the valid names.
        """
        pairs, problems = self._expand()
        if problems:
            raise ConfigError(
                "unknown names in the configuration:\n" + "\n".join(f"  {p}" for p in problems),
                fix="use the names of `radioactive ls` (prompters, users, presets)",
            )
        return pairs

    def config_hash(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON of the configuration.

        Canonical: keys sorted, no whitespace. ``output``, ``cache_dir``, the embedding cache
        and ``executor`` are left out: where results and caches are written and how the work is
        spread do not change a number, so a run resumed elsewhere or on another executor keeps
        its hash. So are the datasets' ``collections`` (where the images come from).
        """
        where: dict[str, Any] = dict.fromkeys(
            ("output", "cache_dir", "executor", "embedding_cache", "embedding_cache_gb"), True
        )
        where["datasets"] = {"__all__": {"collections"}}
        data = self.model_dump(mode="json", exclude=where)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def with_base_dir(self, base: str | Path) -> ExperimentConfig:
        """A copy whose relative paths (``output``, ``cache_dir``, ``embedding_cache``, dataset
        paths that are not
        recipe names, a model's ``checkpoint`` option) are taken relative to ``base``."""
        from radioactive.data.recipes import RECIPES

        root = Path(base)

        def rel(p: str | Path) -> Path:
            q = Path(p).expanduser()
            return q if q.is_absolute() else root / q

        datasets = [
            d if d.name in RECIPES else d.model_copy(update={"name": str(rel(d.name))})
            for d in self.datasets
        ]
        models = [
            m.model_copy(update={"options": {**m.options, "checkpoint": str(rel(ckpt))}})
            if isinstance(ckpt := m.options.get("checkpoint"), str)
            else m
            for m in self.models
        ]
        return self.model_copy(
            update={
                "output": rel(self.output) if self.output is not None else None,
                "cache_dir": rel(self.cache_dir) if self.cache_dir is not None else None,
                "embedding_cache": (
                    rel(self.embedding_cache) if self.embedding_cache is not None else None
                ),
                "datasets": datasets,
                "models": models,
            }
        )


def _one_line(exc: BaseException) -> str:
    """A RadioactiveError as ``problem (fix)`` on one line."""
    if isinstance(exc, RadioactiveError):
        text = f"{exc.problem} ({exc.fix})" if exc.fix else exc.problem
    else:
        text = str(exc)
    return " ".join(text.split())
