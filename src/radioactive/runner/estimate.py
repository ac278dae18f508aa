"""What a grid will cost before it runs: model calls counted from the data, times from measured
per-call costs.

:func:`count_calls` plans the experiment as :func:`~radioactive.runner.run.run_experiment`
would (the same case jobs, targets, pairs and seeds; units already in the results folder are
not counted) and counts, per model:

* for a slice-wise model (a 2D backend in the engine), the **slices encoded**: per case, the
  union of the slices any unit decodes (the engine encodes each slice of a prepared case once),
  and the **decoder calls**: one per slice a step sends prompts to;
* for a 3D model, its **steps** (one model call each).

A static prompter that does not consult the model is run on each target (it is fast and
deterministic given the unit's generator), so its slices are **exact**. A prompter that
propagates with the model, and every correction of a simulated user, count as many slices as the
target's z extent: an **upper bound** (a propagation stops at the extent; a correction touches
at most every slice of it). Counts of such models are marked ``upper bound``.

:func:`project` turns counts into seconds with :class:`CallCosts` per model (seconds per slice
encoded, per decoder call, per 3D step, and per unit step for everything else: prompting,
metrics, storage), read from a file (:func:`load_costs`: this module's JSON or the output of
``benchmarks/gpu.py --json``) or measured on this machine (:func:`probe_costs`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CallCosts", "CallCounts", "count_calls", "load_costs", "probe_costs", "project"]


@dataclass
class CallCounts:
    """The model calls of one model's units (see the module docstring)."""

    model: str
    slice_wise: bool
    units: int = 0
    steps: int = 0
    encoder_slices: int = 0
    decoder_calls: int = 0
    exact: bool = True
    #: (dataset, y, x): the slice shape of each dataset, for probing the decoder
    slice_shapes: set[tuple[str, int, int]] = field(default_factory=set)
    #: seconds spent loading this model's cases while counting (a run loads them too)
    load_s: float = 0.0
    #: per target, the median (height, width) of its per-slice bounding boxes
    boxes: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class CallCosts:
    """Seconds per call of one model on one machine."""

    encoder_s_per_slice: float = 0.0
    decoder_s_per_call: float = 0.0
    step_s_3d: float = 0.0
    #: everything a unit step costs besides the model: prompting, metrics, storage
    harness_s_per_step: float = 0.0
    source: str = ""


def _z_extent(mask: np.ndarray) -> list[int]:
    zs = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    return list(range(int(zs[0]), int(zs[-1]) + 1)) if zs.size else []


def _per_correction(spec: str | None) -> int | None:
    """The most slices one correction of user ``spec`` touches (a wrapper's: its base's)."""
    from radioactive.prompts import get_user

    if spec is None:
        return None
    user = get_user(spec)
    bound = user.slices_per_correction
    base = getattr(user, "base", None)
    return _per_correction(base) if bound is None and isinstance(base, str) else bound


def _median_box(mask: np.ndarray, extent: list[int]) -> tuple[int, int]:
    """The median height and width of a target's per-slice bounding boxes."""
    sizes = []
    for z in extent:
        ys = np.flatnonzero(mask[z].any(axis=1))
        xs = np.flatnonzero(mask[z].any(axis=0))
        if ys.size:
            sizes.append((int(ys[-1] - ys[0] + 1), int(xs[-1] - xs[0] + 1)))
    if not sizes:
        return (1, 1)
    hs, ws = zip(*sizes, strict=True)
    return int(np.median(hs)), int(np.median(ws))


def _static_slices(prompter: Any, target: np.ndarray, rng: np.random.Generator,
                   spacing: tuple[float, float, float]) -> list[int]:  # fmt: skip
    from radioactive.models.slicewise import prompts_by_slice

    if getattr(prompter, "wants_spacing", False):
        inter = prompter.initial(target, rng, spacing_mm=spacing)
    else:
        inter = prompter.initial(target, rng)
    return sorted(prompts_by_slice(list(inter.prompts), target.shape[0]))


def count_calls(
    config: Any, results_dir: str | Path | None = None, *,
    progress: Callable[[str], None] | None = None,
) -> list[CallCounts]:  # fmt: skip
    """The model calls of the units of ``config`` not yet in ``results_dir``, per model label."""
    from radioactive.data.case import TargetSpec
    from radioactive.data.formats import open_dataset
    from radioactive.models import backend_class
    from radioactive.prompts import get_prompter
    from radioactive.runner.config import validate
    from radioactive.runner.identity import data_fingerprint
    from radioactive.runner.plan import data_context, unit_id, unit_key, unit_rng
    from radioactive.runner.run import plan_experiment
    from radioactive.runner.store import ResultStore
    from radioactive.runner.store_schema import DB_FILENAME

    stored: list[Any] = []
    out_dir = Path(results_dir) if results_dir is not None else Path(".")
    if results_dir is not None and (out_dir / DB_FILENAME).is_file():
        with ResultStore(out_dir, read_only=True) as store:
            stored = list(store.stored_units())
    plan = plan_experiment(config, validate(config), out_dir, stored=stored)
    counts: dict[str, CallCounts] = {}
    for job in plan.jobs:
        cls = backend_class(job.model_name)
        slice_wise = not callable(getattr(cls, "predict", None))
        c = counts.setdefault(job.model_label, CallCounts(job.model_label, slice_wise))
        if progress is not None:
            progress(f"{job.model_label} · {job.dataset} · {job.case_id}")
        spec = TargetSpec(**job.target_spec) if job.target_spec else None
        t0 = time.perf_counter()
        case = open_dataset(job.dataset_root, targets=spec).case(job.case_id)
        targets = case.targets[: job.max_targets] if job.max_targets else case.targets
        spacing = tuple(case.image.spacing_mm)
        shape = case.image.array.shape
        c.load_s += time.perf_counter() - t0
        context = data_context(job, data_fingerprint(case)) if job.finished else ""
        encoded: set[int] = set()
        for t in targets:
            extent = _z_extent(t.mask)
            c.boxes.append(_median_box(t.mask, extent))
            for pair in job.pairs:
                prompter = get_prompter(pair.prompter)
                for seed in job.seeds:
                    key = unit_key(job, t.name, pair, seed)
                    if job.finished and unit_id(key, pair, context) in job.finished:
                        continue
                    c.units += 1
                    c.steps += 1 + pair.steps
                    if not slice_wise:
                        continue
                    if getattr(prompter, "needs_model", False) or getattr(
                        prompter, "uses_model", False
                    ):
                        first, c.exact = extent, False
                    else:
                        rng = unit_rng(key)
                        first = _static_slices(prompter, t.mask, rng, spacing)  # type: ignore[arg-type]
                    per_step = len(extent)
                    bound = _per_correction(pair.user)
                    if bound is not None:
                        per_step = min(per_step, bound)
                    c.decoder_calls += len(first) + pair.steps * per_step
                    encoded.update(first)
                    if pair.steps:
                        c.exact = False
                        encoded.update(extent)
        c.encoder_slices += len(encoded)
        if slice_wise and targets:
            c.slice_shapes.add((job.dataset, int(shape[1]), int(shape[2])))
        case.release()
    return list(counts.values())


def load_costs(path: str | Path) -> dict[str, CallCosts]:
    """Per-call costs per model from a JSON file: this module's format
    (``{"models": {NAME: {"encoder_s_per_slice": …, "decoder_s_per_call": …, "step_s_3d": …,
    "harness_s_per_step": …}}}``) or the output of ``benchmarks/gpu.py --json`` (its fp32
    rows: encoder ms per slice at batch 1, decoder ms per box; 3D models' refinement step)."""
    from radioactive.errors import RadioactiveError

    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RadioactiveError(f"cannot read the costs file {file}: {exc}",
                               fix="give a JSON file written by `radioactive estimate --save-costs`"
                               " or `benchmarks/gpu.py --json`") from exc  # fmt: skip
    out: dict[str, CallCosts] = {}
    models = data.get("models")
    if isinstance(models, dict):
        for name, row in models.items():
            out[name] = CallCosts(**{k: float(v) for k, v in row.items() if k != "source"},
                                  source=str(row.get("source", file)))  # fmt: skip
        return out
    for row in models or []:
        if row.get("status") == "ok" and row.get("dtype", "fp32") == "fp32":
            encoder = float(row["encoder_ms_per_slice_b1"]) / 1e3
            decoder = float(row["decoder_ms_box"]) / 1e3
            out.setdefault(str(row["model"]), CallCosts(encoder_s_per_slice=encoder,
                                                        decoder_s_per_call=decoder,
                                                        source=str(file)))  # fmt: skip
    for row in data.get("models_3d") or []:
        if row.get("status") == "ok" and row.get("dtype", "fp32") == "fp32":
            out.setdefault(str(row["model"]), CallCosts(
                step_s_3d=float(row["refine_step_ms"]) / 1e3, source=str(file)))  # fmt: skip
    if not out:
        raise RadioactiveError(f"the costs file {file} holds no model's costs",
                               fix="measure them with `radioactive estimate --probe`")  # fmt: skip
    return out


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _probe_backend(
    backend: Any, h: int, w: int, box_hw: tuple[int, int], repeats: int
) -> tuple[float, float]:
    """Median seconds of one slice's encoding and of one box's decoding (a box of the targets'
    median size, centred), on a random slice."""
    from radioactive.models.slicewise import SlicePrompts, takes_modality

    volume = np.random.default_rng(0).normal(100.0, 50.0, size=(1, h, w)).astype(np.float32)
    if takes_modality(backend.normalize_volume):
        norm = backend.normalize_volume(volume, "CT")
    else:
        norm = backend.normalize_volume(volume)
    encode = _median_s(lambda: backend.encode(norm[:1]), repeats)
    embedding = backend.encode(norm[:1])[0]
    y0, x0 = (h - box_hw[0]) // 2, (w - box_hw[1]) // 2
    box = SlicePrompts(box=(y0, x0, y0 + max(1, box_hw[0]), x0 + max(1, box_hw[1])))
    decode = _median_s(lambda: backend.decode(embedding, box, (h, w)), repeats)
    return encode, decode


def probe_costs(
    config: Any, counts: Iterable[CallCounts], *, repeats: int = 3
) -> dict[str, CallCosts]:
    """Per-call costs of the slice-wise models of ``config`` measured on this machine: the
    median of ``repeats`` encodes of one slice and decodes of one box prompt, on a random slice
    of the shape of the experiment's largest dataset slices; and the harness per step, a
    filled-box unit on a synthetic target of that shape (prompting, metrics, no model)."""
    from radioactive.models import get_model
    from radioactive.models.slicewise import SliceWiseModel
    from radioactive.prompts import get_prompter
    from radioactive.runner.plan import build_model
    from radioactive.session import run_trajectory

    options = {m.key: (m.name, dict(m.options)) for m in config.models}
    out: dict[str, CallCosts] = {}
    for c in counts:
        if not c.slice_wise or not c.slice_shapes:
            continue
        _, h, w = max(c.slice_shapes, key=lambda s: s[1] * s[2])
        name, opts = options[c.model]
        model = build_model(name, opts, str(config.cache_dir) if config.cache_dir else None)
        assert isinstance(model, SliceWiseModel)
        bh, bw = (int(np.median(v)) for v in zip(*c.boxes, strict=True)) if c.boxes else (h, w)
        encode, decode = _probe_backend(model.backend, h, w, (min(bh, h), min(bw, w)), repeats)
        out[c.model] = CallCosts(encoder_s_per_slice=encode, decoder_s_per_call=decode,
                                 source="probe")  # fmt: skip
    shape = max((s for c in counts for s in c.slice_shapes), key=lambda s: s[1] * s[2],
                default=("", 256, 256))  # fmt: skip
    target = np.zeros((16, shape[1], shape[2]), dtype=bool)
    target[4:12, shape[1] // 3 : shape[1] // 2, shape[2] // 3 : shape[2] // 2] = True
    filled = get_model("filled_box")
    filled.prepare(np.zeros(target.shape, np.float32), (1.0, 1.0, 1.0))
    harness = _median_s(lambda: run_trajectory(filled, target, (1.0, 1.0, 1.0),
                                               get_prompter("box_per_slice"),
                                               np.random.default_rng(0)), repeats)  # fmt: skip
    return {k: CallCosts(**{**asdict(v), "harness_s_per_step": harness}) for k, v in out.items()}


def project(counts: Iterable[CallCounts], costs: dict[str, CallCosts],
            workers: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """Per model: its counts and projected seconds (encoder, decoder, 3D steps, harness, total;
    ``None`` where no cost is known); a last row ``total`` with the wall time on ``workers``
    workers (the sum divided among them: the ideal, which uneven case sizes only lengthen)."""
    rows = []
    total = 0.0
    complete = True
    for c in counts:
        cost = costs.get(c.model)
        row: dict[str, Any] = {"model": c.model, "units": c.units, "steps": c.steps,
                               "encoder slices": c.encoder_slices if c.slice_wise else None,
                               "decoder calls": c.decoder_calls if c.slice_wise else None,
                               "counts": "exact" if c.exact else "upper bound"}  # fmt: skip
        if cost is None:
            row.update({"seconds": None, "cost source": "none"})
            complete = False
        else:
            seconds = (c.encoder_slices * cost.encoder_s_per_slice
                       + c.decoder_calls * cost.decoder_s_per_call
                       + (0 if c.slice_wise else c.steps * cost.step_s_3d)
                       + c.steps * cost.harness_s_per_step + c.load_s)  # fmt: skip
            row.update({"seconds": seconds, "cost source": cost.source})
            total += seconds
        rows.append(row)
    rows.append({"model": "total", "units": sum(r["units"] for r in rows),
                 "steps": sum(r["steps"] for r in rows), "seconds": total if complete else None,
                 "wall seconds": total / max(1, workers) if complete else None})  # fmt: skip
    return rows
