"""Reading DICOM: series discovery and image series (CT, MR) as SimpleITK images.

Pure Python (pydicom for headers, SimpleITK for pixels); no external converter is needed.

* :func:`find_series` walks a folder, reads headers only and groups the files by
  SeriesInstanceUID, whatever the folder layout (TCIA's ``<series uid>/`` folders, the NBIA Data
  Retriever's ``Collection/Patient/Study/Series`` tree, IDC's ``collection/patient/study/series``).
* :func:`read_image_series` reads the files of one series as a ``SimpleITK.Image``, sorted by
  position along the slice normal, with the slice spacing those positions give. A series with
  mixed orientations, duplicate positions or uneven gaps (a missing slice) raises
  :class:`DicomSeriesError` naming the folder and the gap: the slices are never spread evenly
  over the stack (which would average the spacing and misplace every slice after a gap).

DICOM-SEG objects are read by :mod:`radioactive.data.dicom_seg`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radioactive.errors import DataError, RecipeError

log = logging.getLogger(__name__)


class DicomSeriesError(RecipeError, DataError):
    """A DICOM series cannot be read as one evenly spaced stack of slices."""


#: header fields read by :func:`find_series` (pixel data is never read there)
_HEADER_TAGS = (
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "PatientID",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "FrameOfReferenceUID",
    "ReferencedSeriesSequence",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "AcquisitionNumber",
    "NumberOfFrames",
)
#: file name suffixes never tried as DICOM
_NOT_DICOM = {".csv", ".json", ".txt", ".md", ".xlsx", ".xls", ".zip", ".gz", ".tcia", ".html"}


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found under a folder (from its files' headers)."""

    uid: str
    modality: str
    description: str
    patient_id: str
    study_uid: str
    study_date: str
    study_time: str
    series_number: int | None
    frame_of_reference: str
    files: tuple[Path, ...]
    #: for SEG (and other derived objects): the SeriesInstanceUIDs they reference
    referenced_series: tuple[str, ...] = ()
    #: for SEG: the SOPInstanceUIDs of the referenced images
    referenced_instances: tuple[str, ...] = field(default=(), repr=False)

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def folder(self) -> Path:
        """The deepest folder holding all of the series' files."""
        parents = [f.parent for f in self.files]
        common = parents[0]
        while not all(p == common or common in p.parents for p in parents):
            common = common.parent
        return common

    def summary(self) -> dict[str, Any]:
        """What a converted case records about its source series."""
        return {
            "series_uid": self.uid,
            "modality": self.modality,
            "description": self.description,
            "series_number": self.series_number,
            "study_uid": self.study_uid,
            "study_date": self.study_date,
            "files": self.n_files,
        }


def _str(ds: Any, name: str) -> str:
    value = ds.get(name, "")
    return "" if value is None else str(value).strip()


def _read_header(path: Path) -> Any | None:
    """The header of ``path`` when it is a DICOM file, else ``None``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if path.suffix.lower() in _NOT_DICOM or path.name.startswith("."):
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_HEADER_TAGS))
    except InvalidDicomError:
        if path.suffix.lower() not in {".dcm", ""}:
            return None
        try:  # files written without the 128-byte preamble
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=list(_HEADER_TAGS), force=True
            )
        except Exception:
            return None
    except (OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    return ds if _str(ds, "SeriesInstanceUID") else None


def _referenced(ds: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    series: list[str] = []
    instances: list[str] = []
    for item in ds.get("ReferencedSeriesSequence", None) or []:
        uid = _str(item, "SeriesInstanceUID")
        if uid:
            series.append(uid)
        for inst in item.get("ReferencedInstanceSequence", None) or []:
            sop = _str(inst, "ReferencedSOPInstanceUID")
            if sop:
                instances.append(sop)
    return tuple(series), tuple(instances)


def find_series(root: Path, *, modalities: Collection[str] | None = None) -> dict[str, SeriesInfo]:
    """All DICOM series under ``root`` (recursively), keyed by SeriesInstanceUID.

    Only headers are read. Files that are not DICOM (CSV sheets, licences, manifests) are
    skipped, as is anything under a hidden folder (an interrupted download's staging folder).
    ``modalities`` keeps only series of those modalities (e.g. ``{"CT", "SEG"}``).
    """
    root = Path(root)
    groups: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # hidden: partial downloads, staging folders, OS metadata
        ds = _read_header(path)
        if ds is None:
            continue
        if modalities is not None and _str(ds, "Modality") not in modalities:
            continue
        groups[_str(ds, "SeriesInstanceUID")].append((path, ds))
    out: dict[str, SeriesInfo] = {}
    for uid, members in groups.items():
        first = members[0][1]
        ref_series: list[str] = []
        ref_instances: list[str] = []
        for _, ds in members:
            s, i = _referenced(ds)
            ref_series += [x for x in s if x not in ref_series]
            ref_instances += list(i)
        number = first.get("SeriesNumber", None)
        try:
            series_number = int(number) if number not in (None, "") else None
        except (TypeError, ValueError):
            series_number = None
        out[uid] = SeriesInfo(
            uid=uid,
            modality=_str(first, "Modality"),
            description=_str(first, "SeriesDescription"),
            patient_id=_str(first, "PatientID"),
            study_uid=_str(first, "StudyInstanceUID"),
            study_date=_str(first, "StudyDate"),
            study_time=_str(first, "StudyTime"),
            series_number=series_number,
            frame_of_reference=_str(first, "FrameOfReferenceUID"),
            files=tuple(p for p, _ in members),
            referenced_series=tuple(ref_series),
            referenced_instances=tuple(ref_instances),
        )
    return out


# ---------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class _Slice:
    path: Path
    sop: str
    position: np.ndarray
    orientation: np.ndarray
    acquisition: str


def _slices(files: Iterable[Path], folder: Path) -> list[_Slice]:
    import pydicom

    out = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
            pos = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float)
            ori = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        except Exception as exc:
            raise DicomSeriesError(
                f"DICOM file {f.name} has no usable position or orientation ({exc})",
                path=folder,
                fix="re-download this series; the file may be truncated or not an image slice",
            ) from exc
        if pos.shape != (3,) or ori.shape != (6,):
            raise DicomSeriesError(
                f"DICOM file {f.name} has a malformed ImagePositionPatient or "
                "ImageOrientationPatient",
                path=folder,
                fix="re-download this series",
            )
        out.append(_Slice(f, _str(ds, "SOPInstanceUID"), pos, ori, _str(ds, "AcquisitionNumber")))
    return out


def read_image_series(
    files: SeriesInfo | Sequence[Path],
    *,
    prefer_instances: Collection[str] = (),
    uneven_tolerance: float = 0.1,
) -> Any:
    """Read one image series (CT or MR slices) as a ``SimpleITK.Image``.

    The slices are sorted by their position along the slice normal. Where the series holds
    several slices at one position (several acquisitions in one series), the acquisition holding
    most of ``prefer_instances`` (e.g. the SOPInstanceUIDs a SEG references) is kept; without
    such a hint that is an error. Gaps between slices that differ by more than
    ``uneven_tolerance`` (relative) from the median are an error, as are mixed orientations.
    """
    import SimpleITK as sitk

    paths = list(files.files) if isinstance(files, SeriesInfo) else [Path(f) for f in files]
    if not paths:
        raise DicomSeriesError("empty DICOM series", fix="check the download of this series")
    folder = files.folder if isinstance(files, SeriesInfo) else paths[0].parent
    if len(paths) == 1:
        try:
            return sitk.ReadImage(str(paths[0]))
        except RuntimeError as exc:
            raise DicomSeriesError(
                f"cannot read the DICOM image {paths[0].name}: {exc}",
                path=folder,
                fix="re-download this series",
            ) from exc
    slices = _slices(paths, folder)
    ori0 = slices[0].orientation
    if any(not np.allclose(s.orientation, ori0, atol=1e-3) for s in slices):
        raise DicomSeriesError(
            "the series mixes slices of different orientations",
            path=folder,
            fix="this folder holds more than one image stack; keep only the files of one series",
        )
    normal = np.cross(ori0[:3], ori0[3:])
    key = [round(float(np.dot(s.position, normal)), 3) for s in slices]
    if len(set(key)) < len(key):
        slices, key = _resolve_duplicates(slices, key, set(prefer_instances), folder)
    order = np.argsort(key)
    slices = [slices[i] for i in order]
    check_even_spacing(np.asarray([key[i] for i in order]), folder, uneven_tolerance)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(s.path) for s in slices])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DicomSeriesError(
            f"SimpleITK cannot read this DICOM series: {exc}",
            path=folder,
            fix="re-download this series; one of its files may be damaged",
        ) from exc
    return image


def check_even_spacing(positions: np.ndarray, folder: Path, tolerance: float = 0.1) -> float:
    """The slice spacing of sorted slice ``positions`` (mm along the slice normal).

    Raises :class:`DicomSeriesError` naming ``folder`` when a gap differs from the median by
    more than ``tolerance`` (relative): a missing slice doubles one gap, an extra one halves it.
    SimpleITK would spread such a stack evenly (2.75 mm for a 2.5 mm series with one of ten
    slices missing) and misplace every slice after the gap.
    """
    gaps = np.diff(positions)
    if not len(gaps):
        return 0.0
    median = float(np.median(gaps))
    off = np.abs(gaps - median) > tolerance * abs(median)
    if median <= 0 or np.any(off):
        bad = [int(i) for i in np.flatnonzero(off)] or [0]
        where = "; ".join(
            f"{gaps[i]:.3f} mm between slices {i} and {i + 1} (at {positions[i]:.4g} and "
            f"{positions[i + 1]:.4g} mm)"
            for i in bad[:3]
        )
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise DicomSeriesError(
            f"uneven slice positions: gap of {where}{more}, where the median gap is "
            f"{median:.3f} mm ({len(positions)} slices; missing or extra slices)",
            path=folder,
            fix="re-download this series or restore its missing files; a complete series has "
            "evenly spaced slices",
        )
    return median


def _resolve_duplicates(
    slices: list[_Slice], key: list[float], prefer: set[str], folder: Path
) -> tuple[list[_Slice], list[float]]:
    by_acq: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(slices):
        by_acq[s.acquisition].append(i)
    if prefer and len(by_acq) > 1:
        hits = Counter({a: sum(slices[i].sop in prefer for i in idx) for a, idx in by_acq.items()})
        best, n = hits.most_common(1)[0]
        if n:
            keep = by_acq[best]
            kept = [slices[i] for i in keep]
            kept_key = [key[i] for i in keep]
            if len(set(kept_key)) == len(kept_key):
                return kept, kept_key
    raise DicomSeriesError(
        f"the series holds several slices at the same position ({len(key)} files, "
        f"{len(set(key))} distinct positions, {len(by_acq)} acquisition(s))",
        path=folder,
        fix="keep only the files of one acquisition in this series folder, or re-download it",
    )
