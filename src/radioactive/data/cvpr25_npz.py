"""Datasets to and results from the CVPR 2025 interactive challenge's formats.

* :func:`export_cvpr25` writes every case of a dataset as the challenge's ``.npz`` — ``imgs``
  (uint8 ``(D, H, W)``, prepared as :mod:`radioactive.models.cvpr25_container` prepares them),
  ``gts`` (the declared labels renumbered 1…n in the order of their label values, as
  ``get_boxes.py`` relabels them), ``spacing`` (float64, ``(D, H, W)`` order) and ``boxes`` (one
  dictionary per class, :func:`radioactive.prompts.cvpr25.organisers_box`, its shift drawn from
  ``seed`` and the case id) — in the canonical (z, y, x) orientation, so the organisers' own
  ``CVPR25_iter_eval.py`` runs on our data (``--test_img_path DIR``; the ``gts`` stay in the
  files, which the script reads when no separate ground-truth folder is given). The folder holds
  nothing else (the script takes every file in it for a case): ``DIR.classes.json`` beside it
  maps each class number to its label name and value.
* :func:`import_cvpr25_metrics` reads the ``<team>_metrics.csv`` that the organisers' script
  writes and stores one unit per case in a results store: six steps (``DSC_1``…``DSC_6``,
  ``NSD_1``…``NSD_6``, ``RunningTime_1``…``RunningTime_6`` as the model time), prompter
  ``cvpr25_box`` (``no_prompt`` when the first step was skipped: DSC_1, NSD_1 and RunningTime_1
  all 0), user ``center_of_largest_error(mode='cvpr25')``, target ``all classes`` — their scores
  are means over the classes of a case, where ours are per target — so that their numbers and
  ours sit in one report.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radioactive.errors import RadioactiveError

__all__ = ["ALL_CLASSES", "classes_file", "export_cvpr25", "import_cvpr25_metrics"]

#: the target name of an imported case (the organisers score the mean over its classes)
ALL_CLASSES = "all classes"

_STEPS = 6


def _case_rng(seed: int, case_id: str) -> np.random.Generator:
    digest = hashlib.sha256(case_id.encode()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def export_cvpr25(
    dataset: Any,
    out_dir: str | Path,
    *,
    seed: int = 0,
    cases: Sequence[str] | None = None,
    intensity: str = "auto",
    progress: Any = None,
) -> list[Path]:
    """Write the cases of an opened dataset (:func:`radioactive.data.open_dataset`) as challenge
    ``.npz`` files into ``out_dir``; return their paths (see the module docstring).

    ``progress(done, total)`` is called after each case. A case without any declared label
    voxel is left out (the challenge has no such case).
    """
    from radioactive.models.contracts import resolved
    from radioactive.models.cvpr25_container import CONTRACTS
    from radioactive.models.intensity import normalize
    from radioactive.prompts.cvpr25 import MAX_SHIFT, organisers_box

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = list(cases) if cases is not None else list(dataset.case_ids)
    contract = resolved("cvpr25_container", CONTRACTS, dataset.modality_group, intensity,
                        where=Path(dataset.root) / "dataset.json")  # fmt: skip
    labels = sorted((int(v), str(k)) for k, v in dataset.labels.items() if int(v) != 0)
    written: list[Path] = []
    classes: dict[str, dict[str, dict[str, Any]]] = {}
    for done, case_id in enumerate(ids, start=1):
        case = dataset.case(case_id)
        image, label = case.image, case.label
        gts = np.zeros(label.array.shape, dtype=np.uint8 if len(labels) < 256 else np.uint16)
        present: dict[str, dict[str, Any]] = {}
        for value, name in labels:
            mask = label.array == value
            if mask.any():
                number = len(present) + 1
                gts[mask] = number
                present[str(number)] = {"name": name, "label_value": value}
        if present:
            rng = _case_rng(seed, case_id)
            shifts = [int(rng.integers(0, MAX_SHIFT + 1)) for _ in present]
            boxes = [
                {k: np.int64(v) for k, v in organisers_box(gts == int(n), shift).items()}
                for n, shift in zip(present, shifts, strict=True)
            ]
            levels = normalize(image.array, str(contract["intensity"]), out_max=255.0)
            holder = np.empty(len(boxes), dtype=object)
            holder[:] = boxes
            path = out / f"{_prefix(dataset)}{case_id}.npz"
            np.savez_compressed(
                path,
                imgs=np.clip(np.rint(levels), 0, 255).astype(np.uint8),
                gts=gts,
                spacing=np.asarray(image.spacing_mm, dtype=np.float64),
                boxes=holder,
            )
            written.append(path)
            classes[path.name] = present
        case.release()
        if progress is not None:
            progress(done, len(ids))
    # beside the folder, not in it: the organisers' script takes every file of it for a case
    classes_file(out).write_text(json.dumps(classes, indent=2), encoding="utf-8")
    return written


def classes_file(out_dir: str | Path) -> Path:
    """Where :func:`export_cvpr25` writes the class map of ``out_dir``: ``<out_dir>.classes.json``
    beside it."""
    out = Path(out_dir)
    return out.parent / f"{out.name}.classes.json"


def _prefix(dataset: Any) -> str:
    """``CT_`` / ``MR_`` (the challenge's case names carry the modality), else nothing."""
    group = str(getattr(dataset, "modality_group", "") or "")
    return f"{group}_" if group in ("CT", "MR") else ""


def _number(row: dict[str, str], key: str, where: Path) -> float:
    text = row.get(key)
    if text is None:
        raise RadioactiveError(
            f"column {key!r} is missing", path=where,
            fix="give the <team>_metrics.csv that CVPR25_iter_eval.py writes",
        )  # fmt: skip
    try:
        return float(text) if text.strip() else math.nan
    except ValueError:
        raise RadioactiveError(
            f"column {key!r} holds {text!r}, not a number", path=where,
            fix="give the metrics file as the organisers' script wrote it",
        ) from None  # fmt: skip


def import_cvpr25_metrics(
    csv_path: str | Path,
    results_dir: str | Path,
    *,
    model: str,
    dataset: str,
    modality: str | None = None,
) -> int:
    """Store the cases of an organisers' metrics CSV in the results store of ``results_dir``
    as units of ``model`` on ``dataset``; return how many units were written (a case already
    imported is not written again). The steps take the modality and category that the store
    already holds for ``dataset`` (``modality`` when it holds none), so one dataset keeps one
    modality."""
    import csv

    from radioactive import __version__
    from radioactive.prompts import get_prompter, get_user
    from radioactive.prompts.presets import CVPR25_USER
    from radioactive.runner.store import ResultStore

    where = Path(csv_path)
    if not where.is_file():
        raise RadioactiveError(
            "no such metrics file", path=where,
            fix="give the <team>_metrics.csv of CVPR25_iter_eval.py",
        )  # fmt: skip
    with where.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise RadioactiveError("the metrics file has no case", path=where,
                               fix="give the metrics file after the script has run")  # fmt: skip
    user = get_user(CVPR25_USER)
    manifest = {"config": {"import": "cvpr25_metrics", "csv": str(where.resolve()),
                           "model": model, "dataset": dataset},
                "package_version": __version__}  # fmt: skip
    written = 0
    with ResultStore(results_dir) as store:
        known = store.steps("dataset = ?", [dataset])
        grouping = {
            c: next((v for v in known[c] if isinstance(v, str) and v), None)
            for c in ("modality", "category")
        }
        if grouping["modality"] is None and modality is not None:
            grouping["modality"] = modality
        run_id = store.start_run(manifest)
        for row in rows:
            name = (row.get("CaseName") or "").strip()
            if not name:
                raise RadioactiveError("a row has no CaseName", path=where,
                                       fix="give the metrics file unchanged")  # fmt: skip
            case_id = name.removesuffix(".npz")
            dsc = [_number(row, f"DSC_{i}", where) for i in range(1, _STEPS + 1)]
            nsd = [_number(row, f"NSD_{i}", where) for i in range(1, _STEPS + 1)]
            secs = [_number(row, f"RunningTime_{i}", where) for i in range(1, _STEPS + 1)]
            no_box = dsc[0] == 0 and nsd[0] == 0 and secs[0] == 0
            prompter = get_prompter("no_prompt" if no_box else "cvpr25_box")
            key = {
                "dataset": dataset, "case_id": case_id, "target": ALL_CLASSES, "model": model,
                "prompter": prompter.spec, "user": user.spec, "seed": 0,
            }  # fmt: skip
            unit_id = hashlib.sha256(
                json.dumps({**key, "import": "cvpr25"}, sort_keys=True).encode()
            ).hexdigest()[:24]
            versions = {"import": {"csv": str(where.resolve()), "format": "CVPR25_iter_eval"},
                        "settings": {"prompter": prompter.source, "user": user.source}}  # fmt: skip
            unit = {**key, "unit_id": unit_id, "run_id": run_id, "status": "ok",
                    "wall_s": float(np.nansum(secs)), "versions": versions}  # fmt: skip
            steps = [
                {"step": i, "status": "ok", "dice": dsc[i], "nsd": nsd[i], "decoder_s": secs[i],
                 "encoder_s": 0.0, **grouping,
                 "versions": {"import": "cvpr25"}}
                for i in range(_STEPS)
            ]  # fmt: skip
            written += bool(store.write_unit(unit, steps))
        store.finish_run(run_id)
    return written
