"""Per-case summaries of a dataset (what ``radioactive datasets info`` prints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from radioactive.data.formats import Dataset
from radioactive.errors import RadioactiveError


def summarize_dataset(ds: Dataset, on_case: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load every case once (one at a time) and describe shapes, spacing and targets.

    Case errors do not stop the scan: each is recorded under ``"errors"`` with its message.
    When every case loads, labels that ``dataset.json`` names but no case holds are reported as
    an error too.
    """
    cases: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    present: dict[str, set[int]] = {}
    for case in ds:
        if on_case is not None:
            on_case(case.case_id)
        try:
            img = case.image
            targets, skipped = case.targets, case.skipped_targets
            present[case.case_id] = case.present_label_values
            cases.append(
                {
                    "case": case.case_id,
                    "image": str(case.image_path),
                    "label": str(case.label_path),
                    "shape_zyx": list(img.shape),
                    "spacing_mm_zyx": [round(s, 4) for s in img.spacing_mm],
                    "file_orientation": img.file_orientation,
                    "dtype": str(img.array.dtype),
                    "nonfinite_voxels": img.nonfinite_count,
                    "targets": [
                        {
                            "name": t.name,
                            "kind": t.kind,
                            "voxels": t.voxels,
                            "slices": t.slices_with_target,
                        }
                        for t in targets
                    ],
                    "skipped": [{"name": name, "reason": why} for name, why in skipped],
                }
            )
        except RadioactiveError as exc:
            errors.append({"case": case.case_id, "error": str(exc)})
        finally:
            case.release()
    if not errors:
        try:
            ds.check_labels(present)
        except RadioactiveError as exc:
            errors.append({"case": "*", "error": str(exc)})
    return {
        "name": ds.name,
        "problems": list(ds.problems),
        "root": str(ds.root),
        "format": ds.format,
        "modality": ds.modality,
        "modality_group": ds.modality_group,
        "category": ds.meta.category,
        "target_type": ds.meta.targets.type,
        "labels": ds.labels,
        "licence": ds.meta.licence,
        "source": ds.meta.source,
        "n_cases": len(ds),
        "n_targets": sum(len(c["targets"]) for c in cases),
        "n_skipped": sum(len(c["skipped"]) for c in cases),
        "cases": cases,
        "errors": errors,
    }
