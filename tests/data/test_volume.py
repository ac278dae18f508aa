"""Canonical orientation and the exact way back to the file grid."""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from radioactive.data import load_volume
from tests.conftest import affine_from, write_nifti

SHAPE = (7, 5, 4)  # file (i, j, k): all different so permutations show


def _rotation(deg_z: float, deg_x: float) -> np.ndarray:
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _perm_flip(perm, flips) -> np.ndarray:
    m = np.zeros((3, 3))
    for col, (row, f) in enumerate(zip(perm, flips, strict=True)):
        m[row, col] = f
    return m


AFFINES = {
    "identity": affine_from(),
    "anisotropic": affine_from((0.7, 0.7, 5.0), origin=(-100, 20, 3)),
    "lps": affine_from((0.8, 0.8, 2.5), _perm_flip((0, 1, 2), (-1, -1, 1)), (90, 120, -50)),
    "permuted": affine_from((1.0, 2.0, 3.0), _perm_flip((2, 0, 1), (1, 1, 1))),
    "permuted_flipped": affine_from((0.5, 1.5, 4.0), _perm_flip((1, 2, 0), (-1, 1, -1)), (5, 6, 7)),
    "oblique": affine_from((0.9, 1.1, 3.0), _rotation(25, 10), (12, -7, 30)),
    "oblique_permuted": affine_from(
        (2.0, 0.6, 0.6), _rotation(-15, 20) @ _perm_flip((2, 1, 0), (1, -1, 1))
    ),
}


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(0).integers(-1000, 3000, size=SHAPE).astype(np.int16)


def _world(affine: np.ndarray, idx) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(idx, dtype=float) + affine[:3, 3]


@pytest.mark.parametrize("name", AFFINES)
def test_nifti_round_trip_is_exact(tmp_path: Path, data: np.ndarray, name: str) -> None:
    aff = AFFINES[name]
    vol = load_volume(write_nifti(tmp_path / "img.nii.gz", data, aff))

    # canonical layout: (z, y, x) with axis 0 closest to +S, 1 to +A, 2 to +R
    dominant = np.argmax(np.abs(vol.affine[:3, :3]), axis=0)
    assert dominant.tolist() == [2, 1, 0]
    assert np.all(np.diag(vol.affine[:3, :3][[2, 1, 0]]) > 0)
    assert vol.array.flags.c_contiguous
    assert sorted(vol.array.shape) == sorted(SHAPE)

    # spacing from column norms, permuted into (z, y, x)
    expected = np.linalg.norm(aff[:3, :3], axis=0)
    assert sorted(vol.spacing_mm) == pytest.approx(sorted(expected))

    # every canonical voxel sits where its file voxel sits in the world
    for file_idx in itertools.product(*(range(0, s, 2) for s in SHAPE)):
        world = _world(aff, file_idx)
        can = np.linalg.solve(vol.affine[:3, :3], world - vol.affine[:3, 3])
        can_idx = tuple(round(float(c)) for c in can)
        assert np.allclose(can, can_idx, atol=1e-6)
        assert vol.array[can_idx] == data[file_idx]

    # exact inverse, in memory and through a file
    back = vol.to_file_space(vol.array)
    assert back.shape == SHAPE and back.dtype == data.dtype
    assert np.array_equal(back, data)
    out = vol.save(vol.array, tmp_path / "out.nii.gz")
    reread = nib.load(str(out))
    assert np.array_equal(np.asarray(reread.dataobj), data)
    assert np.allclose(reread.affine, aff, atol=1e-5)


def test_known_answer_for_lps_file(tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, dtype=np.uint8)
    arr[1, 2, 3] = 1  # file voxel (i, j, k)
    vol = load_volume(write_nifti(tmp_path / "lps.nii", arr, AFFINES["lps"]))
    # i runs to Left (flipped for R), j to Posterior (flipped for A), k to Superior
    assert vol.file_orientation == "LPS"
    assert vol.shape == (SHAPE[2], SHAPE[1], SHAPE[0])
    z, y, x = np.argwhere(vol.array)[0]
    assert (z, y, x) == (3, SHAPE[1] - 1 - 2, SHAPE[0] - 1 - 1)
    assert vol.spacing_mm == pytest.approx((2.5, 0.8, 0.8))


def test_spacing_uses_column_norms_not_diagonal(tmp_path: Path) -> None:
    aff = affine_from((2.0, 2.0, 4.0), _rotation(40, 0))
    vol = load_volume(write_nifti(tmp_path / "rot.nii.gz", np.zeros(SHAPE, np.float32), aff))
    assert vol.spacing_mm == pytest.approx((4.0, 2.0, 2.0))
    assert abs(aff[0, 0]) < 1.6  # the diagonal would have said ~1.53 mm


def _sitk_image(data: np.ndarray, aff_ras: np.ndarray) -> sitk.Image:
    """A SimpleITK image with the geometry of a RAS affine (ITK works in LPS)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff_ras
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    img = sitk.GetImageFromArray(data.transpose(2, 1, 0))  # (k, j, i)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    return img


@pytest.mark.parametrize("name", ["anisotropic", "lps", "permuted_flipped", "oblique"])
@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_sitk_formats_match_nifti(tmp_path: Path, data: np.ndarray, name: str, suffix: str) -> None:
    aff = AFFINES[name]
    nii = load_volume(write_nifti(tmp_path / "img.nii.gz", data, aff))
    path = tmp_path / f"img{suffix}"
    sitk.WriteImage(_sitk_image(data, aff), str(path))
    other = load_volume(path)
    assert np.array_equal(other.array, nii.array)
    assert np.allclose(other.affine, nii.affine, atol=1e-6)
    assert np.array_equal(other.to_file_space(other.array), data)
    assert other.file_orientation == nii.file_orientation


def test_dicom_series(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 2000, size=(6, 5, 4)).astype(np.int16)
    aff = AFFINES["lps"]
    img = _sitk_image(data, aff)
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = img.GetDirection()
    orientation = "\\".join(str(v) for v in (*direction[0::3], *direction[1::3]))
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        sl.SetMetaData("0008|0060", "CT")
        sl.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1")
        sl.SetMetaData("0020|000d", "1.2.826.0.1.3680043.2.1125.2")
        sl.SetMetaData("0020|0037", orientation)
        sl.SetMetaData(
            "0020|0032", "\\".join(map(str, img.TransformIndexToPhysicalPoint((0, 0, k))))
        )
        sl.SetMetaData("0020|0013", str(k))
        sl.SetMetaData("0018|0050", str(img.GetSpacing()[2]))
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(sl)
    vol = load_volume(folder)
    ref = load_volume(write_nifti(tmp_path / "ref.nii.gz", data, aff))
    assert np.array_equal(vol.array, ref.array)
    assert np.allclose(vol.affine, ref.affine, atol=1e-4)


def test_trailing_singleton_and_channel(tmp_path: Path, data: np.ndarray) -> None:
    vol = load_volume(write_nifti(tmp_path / "s.nii.gz", data[..., None]))
    assert vol.shape == (SHAPE[2], SHAPE[1], SHAPE[0])
    four = np.stack([data, data + 1], axis=-1)
    second = load_volume(write_nifti(tmp_path / "c.nii.gz", four), channel=1)
    assert np.array_equal(second.to_file_space(second.array), data + 1)
