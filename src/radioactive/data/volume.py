"""Volumes in the canonical array layout, with an exact way back to the file's own grid.

The *canonical array* of a volume is the file's voxel array reoriented to the closest canonical
RAS orientation (axis i runs to the patient's Right, j to Anterior, k to Superior) and then
transposed to (z, y, x) = (k, j, i). Axis 0 therefore indexes axial slices from inferior to
superior, and every axial slice ``array[z]`` is a C-contiguous (y, x) plane.

Reorientation only permutes and flips axes: no interpolation, so the way back
(:meth:`Volume.to_file_space`) is exact. An oblique affine stays oblique; the canonical
orientation is the closest one and ``spacing_mm`` is read from the affine's column norms (never
from its diagonal, which is wrong for rotated or permuted affines).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from radioactive.errors import (
    CorruptFileError,
    DimensionError,
    LabelError,
    MissingFileError,
    NonFiniteError,
)

log = logging.getLogger(__name__)

NonFinitePolicy = Literal["fill", "raise"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Files read with SimpleITK (NIfTI is read with nibabel; a folder is read as a DICOM series).
SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")

# (x, y, z) index order <-> (z, y, x) index order, as a homogeneous 4x4 permutation.
_XYZ_FROM_ZYX = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image in canonical (z, y, x) layout.

    Attributes:
        array: canonical voxel array, shape (Z, Y, X), C-contiguous.
        affine: 4x4 matrix mapping canonical indices (z, y, x, 1) to RAS+ world millimetres.
        path: the file (or DICOM folder) it was read from, if any.
        file_shape: the voxel array's shape in the file's own index order (i, j, k).
        file_affine: 4x4 matrix mapping the file's indices (i, j, k, 1) to RAS+ world millimetres.
        ornt: the nibabel orientation transform applied to reach canonical RAS (per file axis:
            target axis, flip).
        nonfinite_count: number of NaN / infinite values found (and replaced) when loading.
    """

    array: npt.NDArray
    affine: npt.NDArray[np.float64]
    path: Path | None = None
    file_shape: tuple[int, ...] = ()
    file_affine: npt.NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    ornt: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    )
    nonfinite_count: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """Canonical shape (Z, Y, X)."""
        z, y, x = self.array.shape
        return int(z), int(y), int(x)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size in millimetres along (z, y, x): the norms of the affine's columns."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(norms[0]), float(norms[1]), float(norms[2])

    @property
    def file_orientation(self) -> str:
        """Axis codes of the file's own voxel axes, e.g. ``"LPS"`` or ``"RAS"``."""
        import nibabel as nib

        return "".join(nib.orientations.aff2axcodes(self.file_affine))

    def to_file_space(self, array: npt.ArrayLike) -> npt.NDArray:
        """Map an array in this volume's canonical (z, y, x) layout back to the file's voxel grid.

        The result is indexed like the file's own array (i, j, k) and can be saved with
        :attr:`file_affine`. The mapping is exact (only axis permutations and flips).
        """
        arr = np.asarray(array)
        if arr.shape[:3] != self.array.shape:
            raise ValueError(
                f"array of shape {arr.shape} does not match the canonical shape {self.array.shape}"
                + (f" of {self.path}" if self.path else "")
            )
        import nibabel as nib

        ras_xyz = arr.swapaxes(0, 2)
        back = nib.orientations.ornt_transform(
            np.array([[0, 1], [1, 1], [2, 1]], dtype=float), self.ornt
        )
        return np.ascontiguousarray(nib.orientations.apply_orientation(ras_xyz, back))

    def save(self, array: npt.ArrayLike, path: str | Path) -> Path:
        """Write a canonical array to ``path`` (NIfTI) on this volume's original file grid."""
        import nibabel as nib

        out = Path(path)
        data = self.to_file_space(array)
        if data.dtype == bool:
            data = data.astype(np.uint8)
        out.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, self.file_affine), str(out))
        return out

    def world_to_index(self, xyz_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Continuous canonical (z, y, x) indices of RAS world points (..., 3) in millimetres."""
        pts = np.asarray(xyz_mm, dtype=float)
        inv = np.linalg.inv(self.affine)
        return pts @ inv[:3, :3].T + inv[:3, 3]


def canonicalize(
    array_ijk: npt.NDArray,
    file_affine: npt.ArrayLike,
    *,
    path: Path | None = None,
    nonfinite_count: int = 0,
) -> Volume:
    """Build a :class:`Volume` from an array in file index order (i, j, k) and its RAS affine."""
    import nibabel as nib

    aff = np.asarray(file_affine, dtype=float)
    if array_ijk.ndim != 3:
        raise DimensionError(
            f"expected a 3D array, got shape {array_ijk.shape}",
            path=path,
            fix="pass a single 3D volume (select one channel or time point first)",
        )
    if not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-12:
        raise CorruptFileError(
            "the voxel-to-world affine is singular or not finite",
            path=path,
            fix="repair the header's spatial transform (sform/qform, or spacing and direction)",
        )
    ornt = nib.orientations.io_orientation(aff)
    ras = nib.orientations.apply_orientation(array_ijk, ornt)
    ras_affine = aff @ nib.orientations.inv_ornt_aff(ornt, array_ijk.shape)
    canonical = np.ascontiguousarray(ras.transpose(2, 1, 0))
    return Volume(
        array=canonical,
        affine=ras_affine @ _XYZ_FROM_ZYX,
        path=path,
        file_shape=tuple(int(s) for s in array_ijk.shape),
        file_affine=aff,
        ornt=ornt,
        nonfinite_count=nonfinite_count,
    )


def _read_nifti(path: Path) -> tuple[npt.NDArray, npt.NDArray]:
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise CorruptFileError(
            f"cannot read the NIfTI file ({type(exc).__name__}: {exc})",
            path=path,
            fix="the file is truncated or not a NIfTI image; download or export it again",
        ) from exc
    return np.asarray(data), np.asarray(img.affine, dtype=float)


def _sitk_affine(img: Any) -> npt.NDArray[np.float64]:
    """RAS+ affine of a SimpleITK image (ITK works in LPS+)."""
    dim = img.GetDimension()
    direction = np.asarray(img.GetDirection(), dtype=float).reshape(dim, dim)[:3, :3]
    spacing = np.asarray(img.GetSpacing(), dtype=float)[:3]
    origin = np.asarray(img.GetOrigin(), dtype=float)[:3]
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _read_sitk(path: Path) -> tuple[npt.NDArray, npt.NDArray]:
    import SimpleITK as sitk

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise MissingFileError(
                    "no DICOM series found in this folder",
                    path=path,
                    fix="point to a folder that holds the .dcm files of one series",
                )
            if len(series) > 1:
                log.warning("%s holds %d DICOM series; reading the first", path, len(series))
            from radioactive.data.dicom_io import read_image_series

            # sorted and spaced by the slices' own positions; a gap is an error
            files = reader.GetGDCMSeriesFileNames(str(path), series[0])
            img = read_image_series([Path(f) for f in files])
        else:
            img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise CorruptFileError(
            f"cannot read the image ({str(exc).strip().splitlines()[-1]})",
            path=path,
            fix="the file is truncated or not a supported image format; export it again",
        ) from exc
    if img.GetDimension() < 3:
        raise DimensionError(
            f"expected a 3D image, got a {img.GetDimension()}D image of size {img.GetSize()}",
            path=path,
            fix="pass a 3D volume (a 2D slice cannot be benchmarked as a volume)",
        )
    arr = sitk.GetArrayFromImage(img)
    # SimpleITK indexes (k, j, i), (k, j, i, component) or (t, k, j, i): move to (i, j, k, ...).
    if img.GetNumberOfComponentsPerPixel() > 1 and arr.ndim == 4:
        arr = arr.transpose(2, 1, 0, 3)
    else:
        arr = arr.transpose(tuple(reversed(range(arr.ndim))))
    return arr, _sitk_affine(img)


def _to_3d(arr: npt.NDArray, path: Path, channel: int | None) -> npt.NDArray:
    """Accept (i, j, k), (i, j, k, 1) and, with ``channel``, (i, j, k, c)."""
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and channel is not None:
        if not 0 <= channel < arr.shape[3]:
            raise DimensionError(
                f"channel {channel} requested but the image has {arr.shape[3]} channels",
                path=path,
                fix=f"choose a channel between 0 and {arr.shape[3] - 1}",
            )
        return arr[..., channel]
    if arr.ndim != 3:
        extra = f" with {arr.shape[3]} channels / time points" if arr.ndim == 4 else ""
        raise DimensionError(
            f"expected a 3D image, got {arr.ndim}D shape {tuple(arr.shape)}{extra}",
            path=path,
            fix="split the image into 3D volumes, or pass channel=N to select one (for nnU-Net "
            "data each channel is its own file _0000, _0001, ...)",
        )
    return arr


def _handle_nonfinite(
    arr: npt.NDArray, path: Path, policy: NonFinitePolicy
) -> tuple[npt.NDArray, int]:
    if not np.issubdtype(arr.dtype, np.floating):
        return arr, 0
    finite = np.isfinite(arr)
    n_bad = int(finite.size - np.count_nonzero(finite))
    if n_bad == 0:
        return arr, 0
    if policy == "raise" or n_bad == finite.size:
        raise NonFiniteError(
            f"{n_bad} of {finite.size} voxels are NaN or infinite",
            path=path,
            fix="clean the image, or load it with nonfinite='fill' to replace NaN and -inf by the "
            "lowest finite intensity and +inf by the highest",
        )
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    log.warning(
        "%s: %d NaN/infinite voxels replaced (NaN and -inf -> %g, +inf -> %g)", path, n_bad, lo, hi
    )
    arr = np.nan_to_num(arr, nan=lo, neginf=lo, posinf=hi)
    return arr, n_bad


def _read_any(path: str | Path, channel: int | None) -> tuple[npt.NDArray, npt.NDArray, Path]:
    p = Path(path)
    if not p.exists():
        raise MissingFileError(
            "file not found",
            path=p,
            fix="check the path; for a prepared dataset run `radioactive datasets prepare NAME`",
        )
    if _suffix(p) in NIFTI_SUFFIXES:
        arr, aff = _read_nifti(p)
    else:
        arr, aff = _read_sitk(p)
    return _to_3d(arr, p, channel), aff, p


def load_volume(
    path: str | Path, *, channel: int | None = None, nonfinite: NonFinitePolicy = "fill"
) -> Volume:
    """Read an image file into the canonical (z, y, x) layout.

    NIfTI (``.nii``, ``.nii.gz``) is read with nibabel; NRRD, MHA/MHD and a folder holding a
    DICOM series with SimpleITK. A trailing singleton dimension is dropped; a 4D image needs
    ``channel``.

    NaN / infinite intensities: with ``nonfinite="fill"`` (default) they are replaced by the
    lowest (NaN, -inf) or highest (+inf) finite intensity, a warning is logged and the count is
    kept in :attr:`Volume.nonfinite_count`; with ``nonfinite="raise"`` a
    :class:`~radioactive.errors.NonFiniteError` is raised. A volume with no finite voxel always
    raises.
    """
    arr, aff, p = _read_any(path, channel)
    arr, n_bad = _handle_nonfinite(arr, p, nonfinite)
    return canonicalize(arr, aff, path=p, nonfinite_count=n_bad)


def _smallest_uint(max_value: int) -> type[np.unsignedinteger]:
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return dt
    return np.uint64


def load_label(path: str | Path) -> Volume:
    """Read a label map: non-negative integer values, stored in the smallest unsigned dtype.

    Raises :class:`~radioactive.errors.LabelError` for fractional, NaN / infinite or negative
    values.
    """
    arr, aff, p = _read_any(path, None)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise LabelError(
                "the label map holds NaN or infinite values",
                path=p,
                fix="a label map must hold integer class ids; re-export it as an integer image",
            )
        frac = arr != np.round(arr)
        if frac.any():
            bad = np.unique(arr[frac])[:5]
            raise LabelError(
                f"the label map holds non-integer values (e.g. {', '.join(f'{v:g}' for v in bad)})",
                path=p,
                fix="this looks like an intensity image or a resampled (interpolated) mask; "
                "resample labels with nearest-neighbour interpolation and store integers",
            )
    elif not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise LabelError(
            f"the label map has dtype {arr.dtype}; integer class ids are expected",
            path=p,
            fix="re-export the label map as an integer image",
        )
    lo = arr.min() if arr.size else 0
    if lo < 0:
        raise LabelError(
            f"the label map holds negative values (minimum {lo:g})",
            path=p,
            fix="class ids must be >= 0 (0 = background); relabel the map",
        )
    hi = int(arr.max()) if arr.size else 0
    arr = arr.astype(_smallest_uint(hi), copy=False)
    return canonicalize(arr, aff, path=p)
