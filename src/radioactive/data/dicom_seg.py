"""Reading DICOM Segmentations (DICOM-SEG) into one binary mask per segment.

A mask is first built on the SEG's own geometry (its frames' positions and orientation) and then
resampled onto the referenced image's grid with nearest neighbour where the two grids differ.
The steps of :func:`read_seg`: open the file and decode its frames (:func:`_open_seg`), read the
segments' descriptions (:func:`_segment_meta`), place each frame in space (:func:`_frame_geometry`),
work out the SEG's slice grid (:func:`_slice_grid`) and rasterise each segment on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radioactive.data.dicom_io import _str
from radioactive.errors import RecipeError


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


#: (label, description, property type, algorithm) of a segment, by SegmentNumber
_Meta = dict[int, tuple[str, str, str, str]]


@dataclass(frozen=True)
class _Frames:
    """Where the SEG's frames lie: one orientation, a position and a segment number each."""

    orientation: np.ndarray
    positions: list[np.ndarray]
    segments: list[int]


@dataclass(frozen=True)
class _Grid:
    """The SEG's own slice grid: frame k lies on slice ``index[k]`` of ``nz``."""

    index: np.ndarray
    nz: int
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    spacing: tuple[float, float, float]


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
    path = Path(path)
    ds, frames = _open_seg(path)
    meta = _segment_meta(ds)
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", None) or [None] * len(frames)
    placed = _frame_geometry(path, shared, per_frame, meta, len(frames))
    pixel_spacing = _frame_attr(shared, per_frame[0], "PixelMeasuresSequence", "PixelSpacing")
    if pixel_spacing is None:
        raise RecipeError(
            "the SEG has no PixelSpacing", path=path, fix="re-download this SEG series"
        )
    rows, cols = int(ds.Rows), int(ds.Columns)
    if placed is None:  # no frame at all: every segment is empty
        return [Segment(n, *meta[n], mask=_empty_mask(reference, rows, cols)) for n in sorted(meta)]
    grid = _slice_grid(path, placed, shared, per_frame[0], pixel_spacing, reference)
    volumes: dict[int, np.ndarray] = {}
    for k, num in enumerate(placed.segments):
        vol = volumes.setdefault(num, np.zeros((grid.nz, rows, cols), dtype=np.uint8))
        vol[grid.index[k]] |= frames[k].astype(np.uint8)
    unknown = set(volumes) - set(meta)
    if unknown:
        raise RecipeError(
            f"the SEG's frames refer to segment numbers {sorted(unknown)} that its "
            "SegmentSequence does not define",
            path=path,
            fix="re-download this SEG series",
        )
    return [
        Segment(
            num,
            *meta[num],
            mask=(
                _mask_image(volumes[num], grid, reference)
                if num in volumes
                else _empty_mask(reference, rows, cols)
            ),
        )
        for num in sorted(meta)
    ]


def _open_seg(path: Path) -> tuple[Any, np.ndarray]:
    """The SEG's dataset and its frames as booleans (frame, row, column)."""
    import pydicom

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
        return ds, frames > maxval / 2
    return ds, frames > 0


def _segment_meta(ds: Any) -> _Meta:
    out: _Meta = {}
    for item in ds.SegmentSequence:
        ptype = _seq_item(item, "SegmentedPropertyTypeCodeSequence")
        out[int(item.SegmentNumber)] = (
            _str(item, "SegmentLabel"),
            _str(item, "SegmentDescription"),
            _str(ptype, "CodeMeaning") if ptype is not None else "",
            _str(item, "SegmentAlgorithmType"),
        )
    return out


def _frame_geometry(
    path: Path, shared: Any | None, per_frame: Any, meta: _Meta, n_frames: int
) -> _Frames | None:
    """Each frame's position and segment number, and their one orientation (``None``: no
    frames)."""
    orientation: np.ndarray | None = None
    positions: list[np.ndarray] = []
    numbers: list[int] = []
    for k in range(n_frames):
        fg = per_frame[k]
        ori = _frame_attr(shared, fg, "PlaneOrientationSequence", "ImageOrientationPatient")
        pos = _frame_attr(shared, fg, "PlanePositionSequence", "ImagePositionPatient")
        num = _frame_attr(None, fg, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        if num is None and len(meta) == 1:
            num = next(iter(meta))
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
        numbers.append(int(num))
    return None if orientation is None else _Frames(orientation, positions, numbers)


def _slice_grid(
    path: Path,
    placed: _Frames,
    shared: Any | None,
    first: Any | None,
    pixel_spacing: Any,
    reference: Any | None,
) -> _Grid:
    """The regular slice grid the frames lie on; an error when they lie on none."""
    between = _frame_attr(shared, first, "PixelMeasuresSequence", "SpacingBetweenSlices")
    thickness = _frame_attr(shared, first, "PixelMeasuresSequence", "SliceThickness")
    row_dir, col_dir = placed.orientation[:3], placed.orientation[3:]
    normal = np.cross(row_dir, col_dir)
    proj = np.asarray([float(np.dot(p, normal)) for p in placed.positions])
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
    return _Grid(
        index=index,
        nz=int(index.max()) + 1,
        origin=tuple(float(v) for v in placed.positions[int(np.argmin(proj))]),
        direction=tuple(float(v) for v in np.stack([row_dir, col_dir, normal], axis=1).ravel()),
        spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), float(dz)),
    )


def _mask_image(volume: np.ndarray, grid: _Grid, reference: Any | None) -> Any:
    """A segment's (z, y, x) mask as an image on the SEG's grid, resampled onto ``reference``
    when the grids differ."""
    import SimpleITK as sitk

    from radioactive.data.recipes.public import resample_nearest, same_grid

    img = sitk.GetImageFromArray(volume)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection(grid.direction)
    if reference is not None and not same_grid(img, reference):
        img = resample_nearest(img, reference)
    return img


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
