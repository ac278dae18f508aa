"""Reading DICOM releases: series discovery, CT series as images, DICOM-SEG as masks.

Everything here is pure Python (pydicom for headers and SEG frames, SimpleITK for image series);
no external converter is needed.

* :func:`find_series` walks a folder, reads headers only and groups the files by
  SeriesInstanceUID, whatever the folder layout (TCIA's ``<series uid>/`` folders, the NBIA Data
  Retriever's ``Collection/Patient/Study/Series`` tree, IDC's ``collection/patient/study/series``).
* :func:`read_image_series` reads the files of one series as a ``SimpleITK.Image``, sorted by
  position along the slice normal; a series with mixed orientations, uneven or duplicate slice
  positions raises :class:`~radioactive.errors.RecipeError` naming the folder.
* :func:`read_seg` reads a DICOM Segmentation into one binary mask per segment. The mask is first
  built on the SEG's own geometry (its frames' positions and orientation) and then resampled onto
  the referenced image's grid with nearest neighbour where the two grids differ.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import (
    CaseWriter,
    ConvertedCase,
    PublicRecipe,
    SourceFile,
    resample_nearest,
    same_grid,
)
from radioactive.errors import RecipeError

log = logging.getLogger(__name__)

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
            raise RecipeError(
                f"DICOM file {f.name} has no usable position or orientation ({exc})",
                path=folder,
                fix="re-download this series; the file may be truncated or not an image slice",
            ) from exc
        if pos.shape != (3,) or ori.shape != (6,):
            raise RecipeError(
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
        raise RecipeError("empty DICOM series", fix="check the download of this series")
    folder = files.folder if isinstance(files, SeriesInfo) else paths[0].parent
    if len(paths) == 1:
        try:
            return sitk.ReadImage(str(paths[0]))
        except RuntimeError as exc:
            raise RecipeError(
                f"cannot read the DICOM image {paths[0].name}: {exc}",
                path=folder,
                fix="re-download this series",
            ) from exc
    slices = _slices(paths, folder)
    ori0 = slices[0].orientation
    if any(not np.allclose(s.orientation, ori0, atol=1e-3) for s in slices):
        raise RecipeError(
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
    pos = np.asarray([key[i] for i in order])
    gaps = np.diff(pos)
    if len(gaps):
        median = float(np.median(gaps))
        if median <= 0 or np.any(np.abs(gaps - median) > uneven_tolerance * median):
            worst = int(np.argmax(np.abs(gaps - median)))
            raise RecipeError(
                f"uneven slice positions: gap of {gaps[worst]:.3f} mm between slices "
                f"{worst} and {worst + 1} where the median gap is {median:.3f} mm "
                "(missing or extra slices)",
                path=folder,
                fix="re-download this series; a complete series has evenly spaced slices",
            )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(s.path) for s in slices])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise RecipeError(
            f"SimpleITK cannot read this DICOM series: {exc}",
            path=folder,
            fix="re-download this series; one of its files may be damaged",
        ) from exc
    return image


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
    raise RecipeError(
        f"the series holds several slices at the same position ({len(key)} files, "
        f"{len(set(key))} distinct positions, {len(by_acq)} acquisition(s))",
        path=folder,
        fix="keep only the files of one acquisition in this series folder, or re-download it",
    )


# ---------------------------------------------------------------------------------- DICOM-SEG


@dataclass
class Segment:
    """One segment of a DICOM-SEG.

    Attributes:
        number: its SegmentNumber (1-based).
        label: its SegmentLabel.
        description: SegmentDescription, or "".
        property_type: the code meaning of SegmentedPropertyTypeCodeSequence, or "".
        algorithm: SegmentAlgorithmType (MANUAL, SEMIAUTOMATIC, AUTOMATIC), or "".
        mask: a ``SimpleITK.Image`` of 0/1 (uint8) on the reference grid (or the SEG's own
            grid when no reference was given).
    """

    number: int
    label: str
    description: str
    property_type: str
    algorithm: str
    mask: Any

    @property
    def voxels(self) -> int:
        import SimpleITK as sitk

        return int(np.count_nonzero(sitk.GetArrayViewFromImage(self.mask)))

    def array(self) -> np.ndarray:
        """The mask as a boolean (z, y, x) array."""
        import SimpleITK as sitk

        return sitk.GetArrayFromImage(self.mask).astype(bool)


def _seq_item(ds: Any, name: str) -> Any | None:
    seq = ds.get(name, None)
    return seq[0] if seq else None


def _frame_attr(shared: Any | None, frame: Any | None, seq: str, attr: str) -> Any | None:
    for group in (frame, shared):
        if group is None:
            continue
        item = _seq_item(group, seq)
        if item is not None and attr in item:
            return item.get(attr)
    return None


def read_seg(path: Path, reference: Any | None = None) -> list[Segment]:
    """The segments of the DICOM-SEG ``path``, each as a binary mask.

    Each mask is built on the SEG's own geometry from its frames' ImagePositionPatient,
    ImageOrientationPatient and PixelSpacing, then resampled onto ``reference`` (a
    ``SimpleITK.Image``, normally the CT the SEG references) with nearest neighbour when the
    grids differ. FRACTIONAL segmentations are thresholded at half their maximum value.
    Segments without any frame come back as empty masks.
    """
    import pydicom
    import SimpleITK as sitk

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise RecipeError(
            f"cannot read the DICOM-SEG: {exc}", path=path, fix="re-download this SEG series"
        ) from exc
    if _str(ds, "Modality") != "SEG" or "SegmentSequence" not in ds:
        raise RecipeError(
            "this file is not a DICOM Segmentation (no SegmentSequence)",
            path=path,
            fix="pass the file of the SEG series",
        )
    try:
        frames = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise RecipeError(
            f"cannot decode the SEG's pixel data: {exc}",
            path=path,
            fix="re-download this SEG series; if it is compressed, install pylibjpeg",
        ) from exc
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.shape[0] != n_frames:
        raise RecipeError(
            f"the SEG declares {n_frames} frames but holds {frames.shape[0]}",
            path=path,
            fix="re-download this SEG series",
        )
    if _str(ds, "SegmentationType") == "FRACTIONAL":
        maxval = float(ds.get("MaximumFractionalValue", 255) or 255)
        frames = frames > maxval / 2
    else:
        frames = frames > 0

    segments_meta = {}
    for item in ds.SegmentSequence:
        ptype = _seq_item(item, "SegmentedPropertyTypeCodeSequence")
        segments_meta[int(item.SegmentNumber)] = (
            _str(item, "SegmentLabel"),
            _str(item, "SegmentDescription"),
            _str(ptype, "CodeMeaning") if ptype is not None else "",
            _str(item, "SegmentAlgorithmType"),
        )

    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", None) or [None] * n_frames
    orientation: np.ndarray | None = None
    positions: list[np.ndarray] = []
    seg_numbers: list[int] = []
    for k in range(n_frames):
        fg = per_frame[k]
        ori = _frame_attr(shared, fg, "PlaneOrientationSequence", "ImageOrientationPatient")
        pos = _frame_attr(shared, fg, "PlanePositionSequence", "ImagePositionPatient")
        num = _frame_attr(None, fg, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        if num is None and len(segments_meta) == 1:
            num = next(iter(segments_meta))
        if ori is None or pos is None or num is None:
            raise RecipeError(
                f"frame {k + 1} of the SEG lacks its position, orientation or segment number",
                path=path,
                fix="this SEG cannot be placed in space; re-download it or report the case",
            )
        o = np.asarray([float(v) for v in ori], dtype=float)
        if orientation is None:
            orientation = o
        elif not np.allclose(o, orientation, atol=1e-3):
            raise RecipeError(
                "the SEG's frames have different orientations",
                path=path,
                fix="report this case; such SEGs are not supported",
            )
        positions.append(np.asarray([float(v) for v in pos], dtype=float))
        seg_numbers.append(int(num))

    pixel_spacing = _frame_attr(shared, per_frame[0], "PixelMeasuresSequence", "PixelSpacing")
    between = _frame_attr(shared, per_frame[0], "PixelMeasuresSequence", "SpacingBetweenSlices")
    thickness = _frame_attr(shared, per_frame[0], "PixelMeasuresSequence", "SliceThickness")
    if pixel_spacing is None:
        raise RecipeError(
            "the SEG has no PixelSpacing", path=path, fix="re-download this SEG series"
        )
    rows, cols = int(ds.Rows), int(ds.Columns)
    empty = {
        num: Segment(num, *meta, mask=_empty_mask(reference, rows, cols))
        for num, meta in segments_meta.items()
    }
    if orientation is None:  # no frame at all: every segment is empty
        return [empty[n] for n in sorted(empty)]

    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    proj = np.asarray([float(np.dot(p, normal)) for p in positions])
    distinct = np.unique(np.round(proj, 3))
    dz = _slice_spacing(distinct, between, thickness, reference, normal)
    z0 = float(distinct.min())
    index = np.rint((proj - z0) / dz).astype(int)
    if np.any(np.abs((proj - z0) / dz - index) > 0.25):
        raise RecipeError(
            f"the SEG's frames do not lie on a regular grid of {dz:.3f} mm slices",
            path=path,
            fix="report this case; the SEG cannot be rasterised without a slice grid",
        )
    nz = int(index.max()) + 1
    origin = positions[int(np.argmin(proj))]
    direction = np.stack([row_dir, col_dir, normal], axis=1)
    spacing = (float(pixel_spacing[1]), float(pixel_spacing[0]), float(dz))

    volumes: dict[int, np.ndarray] = {}
    for k, num in enumerate(seg_numbers):
        vol = volumes.setdefault(num, np.zeros((nz, rows, cols), dtype=np.uint8))
        vol[index[k]] |= frames[k].astype(np.uint8)

    out = []
    for num in sorted(segments_meta):
        if num not in volumes:
            out.append(empty[num])
            continue
        img = sitk.GetImageFromArray(volumes[num])
        img.SetSpacing(spacing)
        img.SetOrigin(tuple(float(v) for v in origin))
        img.SetDirection(tuple(float(v) for v in direction.ravel()))
        if reference is not None and not same_grid(img, reference):
            img = resample_nearest(img, reference)
        out.append(Segment(num, *segments_meta[num], mask=img))
    unknown = set(volumes) - set(segments_meta)
    if unknown:
        raise RecipeError(
            f"the SEG's frames refer to segment numbers {sorted(unknown)} that its "
            "SegmentSequence does not define",
            path=path,
            fix="re-download this SEG series",
        )
    return out


def _empty_mask(reference: Any | None, rows: int, cols: int) -> Any:
    import SimpleITK as sitk

    if reference is None:
        return sitk.Image([cols, rows, 1], sitk.sitkUInt8)
    img = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    img.CopyInformation(reference)
    return img


def _slice_spacing(
    distinct: np.ndarray,
    between: Any | None,
    thickness: Any | None,
    reference: Any | None,
    normal: np.ndarray,
) -> float:
    """The SEG's slice spacing.

    Declared SpacingBetweenSlices first. Otherwise the frames (which may be sparse: empty
    frames are usually omitted) give the smallest gap between them; where that gap is a whole
    multiple of the reference image's spacing along the same normal, the reference spacing is
    taken (the SEG then lies on the image's slices). A single frame takes the reference spacing,
    else its slice thickness.
    """
    if between is not None and float(between) > 0:
        return float(between)
    ref_dz = None
    if reference is not None and reference.GetDimension() == 3:
        ref_dir = np.asarray(reference.GetDirection(), dtype=float).reshape(3, 3)
        if np.allclose(np.abs(ref_dir[:, 2]), np.abs(normal), atol=1e-3):
            ref_dz = float(reference.GetSpacing()[2])
    if len(distinct) > 1:
        gap = float(np.min(np.diff(distinct)))
        if ref_dz:
            ratio = gap / ref_dz
            if round(ratio) >= 1 and abs(ratio - round(ratio)) < 0.05:
                return ref_dz
        return gap
    if ref_dz:
        return ref_dz
    if thickness is not None and float(thickness) > 0:
        return float(thickness)
    return 1.0


# ---------------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class SegPair:
    """A SEG series and the image series it references (when present)."""

    seg: SeriesInfo
    image: SeriesInfo | None


def pair_segs(series: dict[str, SeriesInfo], image_modality: str = "CT") -> list[SegPair]:
    """Every SEG series with the image series it references (``None`` when absent)."""
    out = []
    for s in sorted(series.values(), key=lambda x: (x.patient_id, x.study_date, x.uid)):
        if s.modality != "SEG":
            continue
        image = next(
            (
                series[u]
                for u in s.referenced_series
                if u in series and series[u].modality == image_modality
            ),
            None,
        )
        out.append(SegPair(s, image))
    return out


def scan_order(pair: SegPair) -> tuple[str, str, int, str]:
    """Sort key of a patient's scans: study date and time, then series number."""
    im = pair.image
    if im is None:
        return ("", "", 0, pair.seg.uid)
    return (im.study_date, im.study_time, im.series_number or 0, pair.seg.uid)


@dataclass(frozen=True)
class Scan:
    """One case to convert from a SEG and its image series.

    Attributes:
        case_id: the case's id.
        pair: the SEG series and the image series it references.
        extra: what the case's source records after the fields of
            :meth:`DicomSegRecipe.source_of` and of :meth:`DicomSegRecipe.label`.
    """

    case_id: str
    pair: SegPair
    extra: Mapping[str, Any] = field(default_factory=dict)


def first_scans(by_patient: Mapping[str, Sequence[SegPair]]) -> list[Scan]:
    """One scan per case id: the patient's first in :func:`scan_order` (``by_patient`` as
    :meth:`DicomSegRecipe.patient_scans` gives it); the SEG series of the others are recorded
    as ``unused_seg_series``."""
    kept: dict[str, tuple[SegPair, list[str]]] = {}
    for pid, ordered in by_patient.items():
        case_id = case_id_from(pid)
        for pair in ordered:
            if case_id in kept:
                kept[case_id][1].append(pair.seg.uid)
            else:
                kept[case_id] = (pair, [])
    return [
        Scan(case_id, pair, {"unused_seg_series": unused} if unused else {})
        for case_id, (pair, unused) in kept.items()
    ]


def seg_file(seg: SeriesInfo) -> Path:
    """The file of a single-file SEG series (the largest when a release splits one)."""
    if seg.n_files == 1:
        return seg.files[0]
    log.warning("SEG series %s has %d files; using the largest", seg.uid, seg.n_files)
    return max(seg.files, key=lambda p: p.stat().st_size)


# ---------------------------------------------------------------------------------- recipes


def case_id_from(patient_id: str) -> str:
    """A file-name-safe case id from a DICOM PatientID (other characters become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", patient_id.strip()).strip("._")
    return safe or "case"


def union(segments: Iterable[Segment]) -> np.ndarray | None:
    """The union of the segments' masks as a boolean (z, y, x) array (``None`` for none)."""
    out: np.ndarray | None = None
    for s in segments:
        arr = s.array()
        out = arr if out is None else (out | arr)
    return out


class DicomSegRecipe(PublicRecipe):
    """Base of the recipes whose release is CT series with DICOM-SEG labels (TCIA, IDC).

    Subclasses set ``tcia_collection`` (fetched with the TCIA helpers: every SEG series of the
    collection, then the image series each SEG references) or ``idc_collection`` (fetched with
    idc-index), ``excluded`` (patients the paper's rules leave out, with the reason) and
    implement :meth:`convert`, usually as :meth:`convert_scans` over the cases they choose from
    :meth:`patient_scans` (or :meth:`convert_first_scans`) with their rules in :meth:`label`. The
    raw folder may have any layout; series are found by their headers. :meth:`missing` reports
    patients with images but no SEG and SEGs whose image series is absent.
    """

    image_modality: ClassVar[str] = "CT"
    tcia_collection: ClassVar[str | None] = None
    idc_collection: ClassVar[str | None] = None
    #: PatientID -> why the paper's protocol leaves this patient out
    excluded: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self._scans: dict[Path, tuple[tuple[Any, ...], dict[str, SeriesInfo]]] = {}

    # ------------------------------------------------------------------ raw folder

    def wanted(self, patient_id: str) -> bool:
        """Whether this patient belongs to the dataset (default: not in ``excluded``)."""
        return patient_id not in self.excluded

    def scan(self, raw: Path) -> dict[str, SeriesInfo]:
        """The CT and SEG series under ``raw`` (cached while the folder is unchanged)."""
        raw = Path(raw).resolve()
        stamp = tuple(
            (str(p), st.st_size, st.st_mtime_ns)
            for p in sorted(raw.rglob("*"))
            if p.is_file() and (st := p.stat())
        )
        hit = self._scans.get(raw)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        series = find_series(raw, modalities={self.image_modality, "SEG"})
        self._scans[raw] = (stamp, series)
        return series

    def pairs(self, raw: Path) -> list[SegPair]:
        """SEG series of wanted patients with their image series."""
        return [
            p
            for p in pair_segs(self.scan(raw), self.image_modality)
            if self.wanted(p.seg.patient_id)
        ]

    def patient_scans(self, raw: Path) -> dict[str, list[SegPair]]:
        """The pairs of :meth:`pairs` by PatientID (in sorted order), each patient's sorted by
        :func:`scan_order`."""
        by_patient: dict[str, list[SegPair]] = defaultdict(list)
        for p in self.pairs(raw):
            by_patient[p.seg.patient_id].append(p)
        return {pid: sorted(by_patient[pid], key=scan_order) for pid in sorted(by_patient)}

    def missing(self, raw: Path) -> list[SourceFile]:
        where = self._where()
        series = self.scan(raw)
        segs = [s for s in series.values() if s.modality == "SEG" and self.wanted(s.patient_id)]
        images = [
            s
            for s in series.values()
            if s.modality == self.image_modality and self.wanted(s.patient_id)
        ]
        out: list[SourceFile] = []
        if not segs and not images:
            return [
                SourceFile(
                    f"{self.image_modality} and SEG series of the collection",
                    how=f"no DICOM series were found under {raw}; {where}",
                )
            ]
        if not segs:
            out.append(SourceFile("SEG series", how=f"no DICOM-SEG found; {where}"))
        seg_patients = {s.patient_id for s in segs}
        for pid in sorted({s.patient_id for s in images} - seg_patients):
            out.append(
                SourceFile(
                    f"SEG series of patient {pid}",
                    how=f"its {self.image_modality} series are present but no SEG; {where}",
                )
            )
        for pair in pair_segs(series, self.image_modality):
            if pair.image is None and self.wanted(pair.seg.patient_id):
                ref = ", ".join(pair.seg.referenced_series) or "(the SEG names none)"
                out.append(
                    SourceFile(
                        f"{self.image_modality} series {ref} of patient {pair.seg.patient_id}",
                        how=f"referenced by SEG series {pair.seg.uid} at {pair.seg.folder}; "
                        f"{where}",
                    )
                )
        return out

    def _where(self) -> str:
        if self.tcia_collection:
            return (
                f"download the collection {self.tcia_collection!r} from TCIA ({self.homepage}) "
                "with the NBIA Data Retriever, or let `radioactive datasets prepare` fetch it"
            )
        if self.idc_collection:
            return (
                f"download the IDC collection {self.idc_collection!r} (`idc download "
                f"{self.idc_collection}` from the idc-index package; {self.homepage})"
            )
        return f"download the release from {self.homepage}"

    # ------------------------------------------------------------------ fetching

    def fetch(self, dest: Path, reporter: Reporter) -> None:
        if self.tcia_collection:
            self._fetch_tcia(dest, reporter)
        elif self.idc_collection:
            from radioactive.data.recipes.download import idc_download

            reporter.step(f"downloading IDC collection {self.idc_collection}")
            idc_download(self.idc_collection, dest)
        else:
            super().fetch(dest, reporter)

    def _fetch_tcia(self, dest: Path, reporter: Reporter) -> None:
        from radioactive.data.recipes.download import tcia_download_series, tcia_list_series

        assert self.tcia_collection is not None
        listed = tcia_list_series(self.tcia_collection, modality="SEG")
        seg_uids = [str(s["SeriesInstanceUID"]) for s in listed if s.get("SeriesInstanceUID")]
        if not seg_uids:
            raise RecipeError(
                f"TCIA lists no SEG series in the collection {self.tcia_collection!r}",
                fix=f"check the collection at {self.homepage}; download it by hand and pass "
                "--source-dir",
            )
        present = set(self.scan(dest))
        todo = [u for u in seg_uids if u not in present]
        reporter.begin(len(todo))
        for uid in todo:
            reporter.step(f"downloading SEG series {uid}")
            tcia_download_series(uid, dest)
        series = self.scan(dest)
        needed = sorted(
            {
                ref
                for s in series.values()
                if s.modality == "SEG" and s.uid in set(seg_uids) and self.wanted(s.patient_id)
                for ref in s.referenced_series
            }
            - set(series)
        )
        reporter.begin(len(needed))
        for uid in needed:
            reporter.step(f"downloading {self.image_modality} series {uid}")
            tcia_download_series(uid, dest)

    # ------------------------------------------------------------------ converting

    def load(self, pair: SegPair) -> tuple[Any, list[Segment]]:
        """The image of a pair and its SEG's segments on the image grid."""
        if pair.image is None:
            raise RecipeError(
                f"the {self.image_modality} series referenced by SEG {pair.seg.uid} is absent",
                path=pair.seg.folder,
                fix="download the referenced series",
            )
        image = read_image_series(pair.image, prefer_instances=pair.seg.referenced_instances)
        return image, read_seg(seg_file(pair.seg), image)

    @staticmethod
    def source_of(pair: SegPair, segments: Sequence[Segment], **extra: Any) -> dict[str, Any]:
        """What a converted case records about where it came from."""
        assert pair.image is not None
        return {
            "patient_id": pair.seg.patient_id,
            "image_series": pair.image.summary(),
            "seg_series": pair.seg.summary(),
            "segments": {str(s.number): s.label for s in segments},
            **extra,
        }

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        """The label of a pair, a (z, y, x) mask on its image's grid (written as uint8), with
        what its case records beyond :meth:`source_of`'s fields; or why the pair is dropped.

        Recipes that convert with :meth:`convert_scans` implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement label()")

    def convert_scan(
        self, scan: Scan, writer: CaseWriter, reporter: Reporter
    ) -> ConvertedCase | str:
        """Load a scan, label it with :meth:`label` and write it: the converted case, or why
        it is dropped."""
        reporter.step(scan.case_id)
        try:
            image, segments = self.load(scan.pair)
        except RecipeError as exc:
            return f"unreadable: {exc.problem} ({exc.path})"
        labelled = self.label(scan.pair, segments)
        if isinstance(labelled, str):
            return labelled
        mask, fields = labelled
        writer.write(scan.case_id, image, mask.astype(np.uint8))
        return ConvertedCase(
            scan.case_id, self.source_of(scan.pair, segments, **fields, **scan.extra)
        )

    def convert_scans(
        self,
        scans: Sequence[Scan],
        writer: CaseWriter,
        reporter: Reporter,
        *,
        total: int | None = None,
        dropped: dict[str, str] | None = None,
    ) -> tuple[list[ConvertedCase], dict[str, str]]:
        """Convert each scan with :meth:`convert_scan`: the cases written and the dropped ones
        (added to ``dropped`` when given). ``total`` is the progress count (default: the
        number of scans)."""
        reporter.begin(len(scans) if total is None else total)
        cases: list[ConvertedCase] = []
        dropped = {} if dropped is None else dropped
        for scan in scans:
            out = self.convert_scan(scan, writer, reporter)
            if isinstance(out, str):
                dropped[scan.case_id] = out
            else:
                cases.append(out)
        return cases, dropped

    def convert_first_scans(
        self,
        raw: Path,
        writer: CaseWriter,
        reporter: Reporter,
        *,
        dropped: dict[str, str] | None = None,
    ) -> tuple[list[ConvertedCase], dict[str, str]]:
        """:meth:`convert_scans` of each patient's first scan (:func:`first_scans`)."""
        by_patient = self.patient_scans(raw)
        return self.convert_scans(
            first_scans(by_patient),
            writer,
            reporter,
            total=sum(len(p) for p in by_patient.values()),
            dropped=dropped,
        )
