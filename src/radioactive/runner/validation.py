"""Checking an experiment without running it: datasets, models, checkpoints, combinations.

:func:`validate` reads no volume and loads no weights; it reports instead of raising.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radioactive.errors import RadioactiveError
from radioactive.registry import UnknownNameError
from radioactive.runner.schema import DatasetSpec, ExperimentConfig, ModelSpec, PairSpec, _one_line

if TYPE_CHECKING:
    from radioactive.models.training_data import Overlap

__all__ = [
    "CheckpointCheck",
    "ComboCheck",
    "DatasetCheck",
    "OverlapCheck",
    "ValidationReport",
    "validate",
]


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
    #: dataset name → the collections its images come from (empty: unknown)
    collections: dict[str, list[str]] = dataclasses.field(default_factory=dict)


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
class OverlapCheck:
    """Whether a model entry's training data overlap a dataset
    (:func:`radioactive.models.training_data.overlap`)."""

    model: str
    dataset: str
    overlap: Overlap

    @property
    def line(self) -> str:
        """The warning line of a known or possible overlap, with its sources."""
        o = self.overlap
        return (
            f"{self.model} × {self.dataset}: {o.status} training-data overlap, {o.reason} "
            f"(source: {'; '.join(o.sources)})"
        )


@dataclasses.dataclass
class ValidationReport:
    """What :func:`validate` found; ``ok`` when every dataset resolves and a combination runs."""

    datasets: list[DatasetCheck]
    combos: list[ComboCheck]
    checkpoints: list[CheckpointCheck]
    #: one line per model entry whose name is not registered (with "did you mean")
    unknown_models: list[str] = dataclasses.field(default_factory=list)
    #: every model entry × dataset, with its training-data overlap (never part of ``ok``)
    overlaps: list[OverlapCheck] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every dataset resolves, every model name is known and a combination runs."""
        return (
            all(d.ok for d in self.datasets)
            and any(c.runs for c in self.combos)
            and not self.unknown_models
        )

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
            "unknown_models": list(self.unknown_models),
            "overlaps": [
                {"model": o.model, "dataset": o.dataset, **o.overlap.to_dict()}
                for o in self.overlaps
            ],
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
        if self.unknown_models:
            out.append("Models:")
            out += [f"  ERROR  {line}" for line in self.unknown_models]
        out += self._overlap_lines()
        runs = sum(c.runs for c in self.combos)
        out.append(f"Model × prompting combinations: {runs} of {len(self.combos)} run")
        for c in self.combos:
            if c.runs:
                out.append(f"  run    {c.model} × {c.pair.label}")
            else:
                out.append(f"  skip   {c.model} × {c.pair.label}: {c.reason}")
        out.append("OK" if self.ok else "NOT OK: " + self._why_not())
        return out

    def _overlap_lines(self) -> list[str]:
        if not self.overlaps:
            return []
        out = ["Training-data overlap (models trained on the evaluation data):"]
        out += [f"  WARN   {o.line}" for o in self.overlaps if o.overlap.flagged]
        unknown = [f"{o.model} × {o.dataset}" for o in self.overlaps
                   if o.overlap.status == "unknown"]  # fmt: skip
        if unknown:
            out.append(
                f"  ?      unknown for {', '.join(unknown)}: the dataset's source collections are "
                "not known (add `collections:` to its entry in the experiment file)"
            )
        if len(out) == 1:
            out.append("  ok     none: complete training lists or weight-free models, no match")
        return out

    def _why_not(self) -> str:
        bad = [d.name for d in self.datasets if not d.ok]
        if bad:
            return f"dataset(s) not usable: {', '.join(bad)}"
        if not any(c.runs for c in self.combos):
            return "no model accepts the prompts of any prompting strategy"
        return f"unknown model name(s): {'; '.join(self.unknown_models)}"


def _check_dataset(spec: DatasetSpec, cache: Path | None) -> DatasetCheck:
    from radioactive.data.collections import dataset_collections
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
    check.collections = {
        d.name: list(dataset_collections(d.name, d.root, spec.collections)) for d in opened
    }
    if not ids:
        check.error = f"{spec.name} holds no case"
        return check
    check.ok = True
    return check


class _Unknown(str):
    """Why a model entry failed: its name is not registered."""


def _describe(model: ModelSpec, cache: Path | None) -> dict[str, Any] | str:
    """``describe_model`` of a model entry, or why it failed."""
    from radioactive.models import describe_model

    try:
        return describe_model(model.name, model.options.get("cache", cache))
    except UnknownNameError as exc:
        return _Unknown(_one_line(exc))
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
    if pair.multi_class and not info.get("multi_class", False):
        return ComboCheck(
            label, pair, False, f"{label} cannot segment several targets in one call (multi_class)"
        )
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
    from radioactive.models.training_data import overlap
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
    unknown: list[str] = []
    for m in config.models:
        info = _describe(m, cache)
        if isinstance(info, _Unknown):
            unknown.append(f"models ({m.key}): {info}")
        checkpoints.append(_checkpoint(m, info, cache))
        combos.extend(_check_combo(m, info, p, built) for p in pairs)
    overlaps = [
        OverlapCheck(m.key, name, overlap(m.name, collections))
        for m in config.models
        for d in datasets
        for name, collections in d.collections.items()
    ]
    return ValidationReport(
        datasets=datasets,
        combos=combos,
        checkpoints=checkpoints,
        unknown_models=unknown,
        overlaps=overlaps,
    )
