"""Builders of small synthetic releases in the raw layout of file-based sources (NIfTI, NRRD, MHA,
zip archives, XLSX workbooks)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import SimpleITK as sitk


def sitk_image(
    arr_zyx: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
) -> Any:
    img = sitk.GetImageFromArray(arr_zyx)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in origin))
    return img


def write_image(
    path: Path,
    arr_zyx: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
) -> Path:
    """Write ``arr_zyx`` with SimpleITK (format by suffix: .nii, .nii.gz, .nrrd, .mha)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk_image(arr_zyx, spacing, origin), str(path))
    return path


def zip_tree(folder: Path, archive: Path, *, root: str | None = None) -> Path:
    """Zip the files under ``folder`` into ``archive``; member names are relative to ``folder``
    (prefixed with ``root/`` when given)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                zf.write(p, f"{root}/{rel}" if root else rel)
    return archive


def write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """A one-sheet .xlsx workbook written with openpyxl (empty strings and ``None`` left blank)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is None or value == "":
                continue
            ws.cell(row=r, column=c, value=value)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def ball(
    shape_zyx: Sequence[int],
    spacing_xyz: Sequence[float],
    origin_xyz: Sequence[float],
    center_xyz: Sequence[float],
    radius_xyz: float | Sequence[float],
) -> np.ndarray:
    """Boolean (z, y, x) mask of an ellipsoid given in world coordinates (identity direction)."""
    radii = np.broadcast_to(np.asarray(radius_xyz, dtype=float), (3,))
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape_zyx), indexing="ij")
    world = [origin_xyz[a] + spacing_xyz[a] * idx for a, idx in enumerate((xx, yy, zz))]
    d = sum(((world[a] - center_xyz[a]) / radii[a]) ** 2 for a in range(3))
    return np.asarray(d <= 1.0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2 * np.logical_and(a, b).sum() / denom)
