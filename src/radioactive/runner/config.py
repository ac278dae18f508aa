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

>>> cfg = quick_config("demo", "filled_box", "box_3d")
>>> [p.prompter for p in cfg.pairs()]
['box_3d']
>>> len(cfg.config_hash())
16
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from radioactive.data.case import TargetSpec
from radioactive.errors import RadioactiveError
from radioactive.prompts.presets import PRESETS, get_preset

__all__ = [
    "FAMILIES",
    "CheckpointCheck",
    "ComboCheck",
    "ConfigError",
    "DatasetCheck",
    "DatasetSpec",
    "ExecutorSpec",
    "ExperimentConfig",
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

#: the most corrective steps one trajectory may have
MAX_STEPS = 50

FIX_HINT = (
    "correct the entries listed above; every key of the file is one of ExperimentConfig's "
    "fields (radioactive.runner.config), and the files in configs/ are complete examples"
)


class ConfigError(RadioactiveError):
    """An experiment configuration is malformed, misspelt or names something unknown."""


_STRICT = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# the schema
# --------------------------------------------------------------------------------------------


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


Family = Literal["static_2d", "static_3d", "refinement", "cvpr25"]


def _static(*specs: str) -> list[PairSpec]:
    return [PairSpec(prompter=s) for s in specs]


def _from_preset(name: str) -> PairSpec:
    p = PRESETS[name]
    return PairSpec(
        prompter=p.prompter, user=p.user, steps=p.steps, keep_initial=p.keep_initial, preset=name
    )


#: The prompting groups of the RadioActive paper (arXiv 2411.07885) and of CVPR 2025:
#:
#: * ``static_2d``: the static prompters of 2D models (PROTOCOL §2): n points per slice
#:   (n = 1, 2, 3, 5, 10), alternating ± points (n = 2, 4), the centre point per slice, point
#:   interpolation (k = 3, 5, 10), point propagation, a box per slice, per-slice boxes from the
#:   3D box, box interpolation (k = 3, 5, 10; k = 3 with 3 and 5 px jitter) and box propagation;
#: * ``static_3d``: the static prompters of 3D models (§3): n random points, n centre points
#:   (n = 1, 2, 3, 5, 10) and the 3D box;
#: * ``refinement``: the reference's interactive presets (§4): every preset but ``cvpr25``;
#: * ``cvpr25``: the CVPR 2025 challenge protocol (3D box + 5 clicks at the largest error).
FAMILIES: dict[str, list[PairSpec]] = {
    "static_2d": _static(
        *(f"points_per_slice(n={n})" for n in (1, 2, 3, 5, 10)),
        *(f"alternating_points_per_slice(n={n})" for n in (2, 4)),
        "center_point_per_slice",
        *(f"point_interpolation(k={k})" for k in (3, 5, 10)),
        "point_propagation(seeds=5)",
        "box_per_slice",
        "box_per_slice_from_3d_box",
        *(f"box_interpolation(k={k})" for k in (3, 5, 10)),
        "box_interpolation(k=3, jitter=3)",
        "box_interpolation(k=3, jitter=5)",
        "box_propagation",
    ),
    "static_3d": _static(
        *(f"points_3d(n={n})" for n in (1, 2, 3, 5, 10)),
        *(f"center_points_3d(n={n})" for n in (1, 2, 3, 5, 10)),
        "box_3d",
    ),
    "refinement": [_from_preset(name) for name in PRESETS if name != "cvpr25"],
    "cvpr25": [_from_preset("cvpr25")],
}


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
    #: write each final prediction as NIfTI next to the results
    save_predictions: bool = False
    #: where datasets and checkpoints are cached (default: ``$RADIOACTIVE_CACHE_DIR`` or the user
    #: cache)
    cache_dir: Path | None = None

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
        from radioactive.prompts.base import get_prompter, get_user

        candidates: list[tuple[str, PairSpec]] = []
        problems: list[str] = []
        for i, spec in enumerate(self.prompters):
            candidates.append((f"prompters.{i}", PairSpec(prompter=spec)))
        for fam in self.families:
            candidates.extend((f"families ({fam})", p) for p in FAMILIES[fam])
        for i, entry in enumerate(self.interactive):
            where = f"interactive.{i}"
            try:
                candidates.append((where, self._interactive_pair(entry)))
            except RadioactiveError as exc:
                problems.append(f"{where}: {_one_line(exc)}")

        out: list[PairSpec] = []
        seen: set[tuple[str, str | None, int, bool]] = set()
        for where, pair in candidates:
            try:
                prompter = get_prompter(pair.prompter).spec
            except RadioactiveError as exc:
                problems.append(f"{where}: {_one_line(exc)}")
                continue
            user = None
            if pair.user is not None:
                try:
                    user = get_user(pair.user).spec
                except RadioactiveError as exc:
                    problems.append(f"{where}: {_one_line(exc)}")
                    continue
            key = (prompter, user, pair.steps, pair.keep_initial if user else True)
            if key not in seen:
                seen.add(key)
                out.append(pair)
        return out, problems

    def _interactive_pair(self, entry: InteractiveSpec) -> PairSpec:
        preset = get_preset(entry.preset) if entry.preset is not None else None
        prompter = entry.prompter or (preset.prompter if preset else None)
        user = entry.user or (preset.user if preset else None)
        assert prompter is not None and user is not None  # InteractiveSpec's validator
        steps = entry.steps
        if steps is None:
            steps = preset.steps if preset else self.stopping.max_steps
        keep = entry.keep_initial
        if keep is None:
            keep = preset.keep_initial if preset else True
        return PairSpec(
            prompter=prompter, user=user, steps=steps, keep_initial=keep, preset=entry.preset
        )

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

        Canonical: keys sorted, no whitespace. ``output``, ``cache_dir`` and ``executor`` are
        left out: where results are written and how the work is spread do not change a number,
        so a run resumed elsewhere or on another executor keeps its hash.
        """
        data = self.model_dump(mode="json", exclude={"output", "cache_dir", "executor"})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def with_base_dir(self, base: str | Path) -> ExperimentConfig:
        """A copy whose relative paths (``output``, ``cache_dir``, dataset paths that are not
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


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (a silent overwrite
    otherwise)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _schema_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for listing its valid keys)."""
    cls: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(part)
        if field is None:
            return None
        cls = _unwrap(field.annotation)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """``list[X] | None`` -> ``X``: the model class inside an annotation, if any."""
    for _ in range(4):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) is dict or not args:
            return None
        tp = args[0]
    return None


def _format_error(err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "(top level)"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    msg = msg[:1].lower() + msg[1:]
    if err.get("type") == "extra_forbidden" and loc:
        schema = _schema_at(loc)
        if schema is not None:
            valid = list(schema.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg += f" ({hint}valid keys: {', '.join(valid)})"
    elif loc and err.get("type") != "missing" and "input" in err:
        shown = repr(err["input"])
        msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return f"{where}: {msg}"


def _validation_problem(exc: ValidationError) -> str:
    lines = [_format_error(e) for e in exc.errors()]
    n = len(lines)
    head = f"{n} problem{'s' if n != 1 else ''} in the experiment configuration:"
    return "\n".join([head, *(f"  {line}" for line in lines)])


def config_from_dict(data: Any, *, source: str | Path | None = None) -> ExperimentConfig:
    """Validate a mapping (e.g. parsed YAML) as an :class:`ExperimentConfig`.

    Raises:
        ConfigError: listing every problem as ``location: message``; ``source`` names the file.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of settings at the top level, got {type(data).__name__}",
            path=source,
            fix="start the file with keys such as `datasets:`, `models:` and `prompters:`",
        )
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_problem(exc), path=source, fix=FIX_HINT) from None
    except ConfigError as exc:
        raise ConfigError(exc.problem, path=source, fix=exc.fix) from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file.

    Relative paths in the file (``output``, ``cache_dir``, dataset paths that are not recipe
    names, a model's ``checkpoint`` option) are relative to the file's folder.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML (the message gives line
            and column), or does not validate (every problem listed as ``location: message``).
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "experiment file not found",
            path=file,
            fix="check the path (the files in configs/ are examples to copy)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the experiment file ({exc})", path=file) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(
            f"invalid YAML at {where}{problem}",
            path=file,
            fix="repair the YAML syntax there (indentation, a missing ':' or an unclosed quote "
            "or bracket are the usual causes)",
        ) from None
    if data is None:
        raise ConfigError(
            "the experiment file is empty",
            path=file,
            fix="give at least `datasets:`, `models:` and `prompters:` (see configs/)",
        )
    return config_from_dict(data, source=file).with_base_dir(file.parent.resolve())


def quick_config(
    dataset: str,
    model: str,
    prompter: str,
    *,
    user: str | None = None,
    steps: int = 0,
    seed: int = 0,
    output: str | Path | None = None,
    model_options: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """The one-line form of the CLI: one dataset, one model, one prompting strategy, one seed.

    ``prompter`` may also name a preset (e.g. ``"cvpr25"``). With a ``user``, ``steps=0`` means
    the default number of corrections (``stopping.max_steps``). Paths stay relative to the
    current directory.

    Raises:
        ConfigError: as :func:`load_config`.
    """
    data: dict[str, Any] = {
        "name": "quick",
        "datasets": [{"name": str(dataset)}],
        "models": [{"name": model, "options": dict(model_options or {})}],
        "seeds": [seed],
    }
    if output is not None:
        data["output"] = str(output)
    if user is None and prompter in PRESETS:
        entry: dict[str, Any] = {"preset": prompter}
        if steps:
            entry["steps"] = steps
        data["interactive"] = [entry]
    elif user is None:
        data["prompters"] = [prompter]
    else:
        entry = {"prompter": prompter, "user": user}
        if steps:
            entry["steps"] = steps
        data["interactive"] = [entry]
    return config_from_dict(data)


# --------------------------------------------------------------------------------------------
# validation without running
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DatasetCheck:
    """Whether a dataset entry resolves, and what it holds."""

    name: str
    ok: bool
    error: str | None = None
    roots: list[str] = dataclasses.field(default_factory=list)
    #: the dataset names selected (after ``datasets:``)
    datasets: list[str] = dataclasses.field(default_factory=list)
    #: number of cases selected (after ``cases:``)
    cases: int = 0


@dataclasses.dataclass
class ComboCheck:
    """Whether a model can run a pair, and why not."""

    model: str
    pair: PairSpec
    runs: bool
    reason: str | None = None

    @property
    def label(self) -> str:
        """The pair's display name."""
        return self.pair.label


@dataclasses.dataclass
class CheckpointCheck:
    """A model's checkpoint: ``present``, ``missing``, ``corrupt``, ``not needed`` or
    ``unknown`` (the model is unknown); missing and corrupt come with a warning and a fix."""

    model: str
    status: str
    warning: str | None = None
    fix: str | None = None


@dataclasses.dataclass
class ValidationReport:
    """What :func:`validate` found; ``ok`` when every dataset resolves and a combination runs."""

    datasets: list[DatasetCheck]
    combos: list[ComboCheck]
    checkpoints: list[CheckpointCheck]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.datasets) and any(c.runs for c in self.combos)

    @property
    def warnings(self) -> list[str]:
        return [f"{c.warning} Fix: {c.fix}" for c in self.checkpoints if c.warning]

    def to_dict(self) -> dict[str, Any]:
        def combo(c: ComboCheck) -> dict[str, Any]:
            return {
                "model": c.model,
                "pair": c.pair.model_dump(mode="json"),
                "label": c.pair.label,
                "runs": c.runs,
                "reason": c.reason,
            }

        return {
            "ok": self.ok,
            "datasets": [dataclasses.asdict(d) for d in self.datasets],
            "combos": [combo(c) for c in self.combos],
            "checkpoints": [dataclasses.asdict(c) for c in self.checkpoints],
        }

    def lines(self) -> list[str]:
        """The report as human-readable lines (no markup)."""
        out = ["Datasets:"]
        for d in self.datasets:
            if d.ok:
                out.append(
                    f"  ok     {d.name}: {len(d.datasets)} dataset(s) "
                    f"({', '.join(d.datasets)}), {d.cases} case(s)"
                )
            else:
                out.append(f"  ERROR  {d.name}: {' '.join((d.error or '').split())}")
        out.append("Checkpoints:")
        for ck in self.checkpoints:
            tag = "WARN " if ck.warning else "?    " if ck.status == "unknown" else "ok   "
            line = f"  {tag}  {ck.model}: {ck.status}"
            if ck.fix:
                line += f" (fix: {ck.fix})"
            out.append(line)
        runs = sum(c.runs for c in self.combos)
        out.append(f"Model × prompting combinations: {runs} of {len(self.combos)} run")
        for c in self.combos:
            if c.runs:
                out.append(f"  run    {c.model} × {c.pair.label}")
            else:
                out.append(f"  skip   {c.model} × {c.pair.label}: {c.reason}")
        out.append("OK" if self.ok else "NOT OK: " + self._why_not())
        return out

    def _why_not(self) -> str:
        bad = [d.name for d in self.datasets if not d.ok]
        if bad:
            return f"dataset(s) not usable: {', '.join(bad)}"
        return "no model accepts the prompts of any prompting strategy"


def _check_dataset(spec: DatasetSpec, cache: Path | None) -> DatasetCheck:
    from radioactive.data.formats import open_dataset
    from radioactive.data.registry import dataset_roots

    check = DatasetCheck(name=spec.name, ok=False)
    try:
        roots = dataset_roots(spec.name, cache)
        check.roots = [str(r) for r in roots]
        opened = [open_dataset(r, targets=spec.targets) for r in roots]
    except RadioactiveError as exc:
        check.error = str(exc)
        return check
    if spec.datasets is not None:
        names = [d.name for d in opened]
        missing = [n for n in spec.datasets if n not in names]
        if missing:
            check.error = (
                f"no dataset named {', '.join(map(repr, missing))} in {spec.name}; "
                f"it holds: {', '.join(names)}"
            )
            return check
        opened = [d for d in opened if d.name in spec.datasets]
    ids = [c for d in opened for c in d.case_ids]
    if spec.cases is not None:
        missing = [c for c in spec.cases if c not in ids]
        if missing:
            listing = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            check.error = (
                f"no case {', '.join(map(repr, missing))} in {spec.name}; cases: {listing}"
            )
            return check
        wanted = set(spec.cases)
        ids = [c for c in ids if c in wanted]
    check.datasets = [d.name for d in opened]
    check.cases = len(ids)
    if not ids:
        check.error = f"{spec.name} holds no case"
        return check
    check.ok = True
    return check


def _describe(model: ModelSpec, cache: Path | None) -> dict[str, Any] | str:
    """``describe_model`` of a model entry, or why it failed."""
    from radioactive.models import describe_model

    try:
        return describe_model(model.name, model.options.get("cache", cache))
    except RadioactiveError as exc:
        return _one_line(exc)
    except ImportError as exc:
        return f"model {model.name!r} cannot be imported ({exc})"


def _checkpoint(
    model: ModelSpec, info: dict[str, Any] | str, cache: Path | None
) -> CheckpointCheck:
    label = model.key
    if isinstance(info, str):
        return CheckpointCheck(label, "unknown")
    status = str(info["checkpoint_status"])
    own = model.options.get("checkpoint")
    if own is not None:
        from radioactive.models import backend_class
        from radioactive.models.checkpoints import CHECKPOINTS

        entry = CHECKPOINTS.get(getattr(backend_class(model.name), "checkpoint_name", model.name))
        folder = entry is not None and entry.folder  # a trained-model directory, not a file
        path = Path(str(own)).expanduser()
        if path.is_dir() if folder else path.is_file():
            return CheckpointCheck(label, "present")
        return CheckpointCheck(
            label,
            "missing",
            warning=f"{label}: the checkpoint {'folder' if folder else 'file'} {own} does not "
            "exist.",
            fix="check the `checkpoint` option of the model, or remove it to use the registry's",
        )
    fetch = f"radioactive models fetch {model.name}" + (
        f" --cache-dir {cache}" if cache is not None else ""
    )
    if status == "missing":
        return CheckpointCheck(
            label, status, warning=f"{label}: checkpoint not downloaded.", fix=f"`{fetch}`"
        )
    if status == "corrupt":
        return CheckpointCheck(
            label,
            status,
            warning=f"{label}: checkpoint file is corrupt (size or sha256 differ).",
            fix=f"`{fetch} --force`",
        )
    return CheckpointCheck(label, status)


def _check_combo(
    model: ModelSpec,
    info: dict[str, Any] | str,
    pair: PairSpec,
    built: dict[tuple[str, str], Any],
) -> ComboCheck:
    label = model.key
    if isinstance(info, str):
        return ComboCheck(label, pair, False, info)
    accepted = set(info["prompt_types"])
    parts = []
    for role, spec in (("prompter", pair.prompter), ("user", pair.user)):
        if spec is None:
            continue
        missing = sorted(set(built[role, spec].prompt_kinds()) - accepted)
        if missing:
            source = spec if role == "prompter" else f"user {spec}"
            parts.append(f"{', '.join(missing)} prompts (from {source})")
    if parts:
        return ComboCheck(label, pair, False, f"{label} does not accept {' or '.join(parts)}")
    prompter = built["prompter", pair.prompter]
    if getattr(prompter, "needs_model", False) and not info.get("slice_predictor", True):
        return ComboCheck(
            label,
            pair,
            False,
            f"{label} cannot predict single slices, which {pair.prompter} needs to propagate",
        )
    return ComboCheck(label, pair, True)


def validate(config: ExperimentConfig) -> ValidationReport:
    """Check an experiment without running it: datasets resolve (no volume is read), each model
    takes the prompt kinds of each pair, checkpoints are present.

    Problems are reported, not raised (see :class:`ValidationReport`); only unknown prompter,
    user or preset names raise :class:`ConfigError` (a validated config has none).
    """
    from radioactive.prompts.base import get_prompter, get_user

    cache = config.cache_dir
    datasets = [_check_dataset(d, cache) for d in config.datasets]
    pairs = config.pairs()
    built: dict[tuple[str, str], Any] = {}
    for p in pairs:
        built.setdefault(("prompter", p.prompter), get_prompter(p.prompter))
        if p.user is not None:
            built.setdefault(("user", p.user), get_user(p.user))
    combos: list[ComboCheck] = []
    checkpoints: list[CheckpointCheck] = []
    for m in config.models:
        info = _describe(m, cache)
        checkpoints.append(_checkpoint(m, info, cache))
        combos.extend(_check_combo(m, info, p, built) for p in pairs)
    return ValidationReport(datasets=datasets, combos=combos, checkpoints=checkpoints)
