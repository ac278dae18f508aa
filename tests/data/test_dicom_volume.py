"""A DICOM series folder read as a volume: spacing from the slices' true positions, and a gap
(a missing slice) refused with the folder and the gap named, never averaged away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radioactive.data import load_volume
from radioactive.errors import DataError, RecipeError
from tests.data.recipes.dicom_fixtures import SPACING, Study, ct_datasets, write_ct


def _series(folder: Path, n: int = 8):
    return write_ct(folder, ct_datasets(Study("P1"), shape=(n, 16, 12)))


def test_complete_series_reads_with_its_spacing(tmp_path: Path) -> None:
    _series(tmp_path / "ct")
    vol = load_volume(tmp_path / "ct")
    assert vol.shape == (8, 16, 12)
    assert vol.spacing_mm == pytest.approx((SPACING[2], SPACING[1], SPACING[0]))
    # slice k holds HU 10 k + x + 2 y: the slices are in position order
    column = vol.array[:, 0, 0].astype(int)
    assert list(column - column[0]) == [10 * k for k in range(8)]


def test_missing_slice_is_refused_naming_the_folder_and_the_gap(tmp_path: Path) -> None:
    ct = _series(tmp_path / "ct")
    ct.files[4].unlink()  # the slice at z = 110 mm: a 5 mm gap between 107.5 and 112.5
    with pytest.raises(DataError) as exc:
        load_volume(tmp_path / "ct")
    assert isinstance(exc.value, RecipeError)  # the recipes' readers raise the same error
    message = str(exc.value)
    assert str(tmp_path / "ct") in message
    assert "5.000 mm" in message and "2.500 mm" in message
    assert "107.5" in message and "112.5" in message
    assert "Fix:" in message


def test_shuffled_file_names_are_placed_by_position(tmp_path: Path) -> None:
    ct = _series(tmp_path / "ct")
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    renamed = [f.with_name(f"x{order[i]:02d}.dcm") for i, f in enumerate(ct.files)]
    for src, dst in zip(ct.files, renamed, strict=True):
        src.rename(dst)
    vol = load_volume(tmp_path / "ct")
    column = vol.array[:, 0, 0].astype(int)
    assert np.array_equal(column - column[0], 10 * np.arange(8))
