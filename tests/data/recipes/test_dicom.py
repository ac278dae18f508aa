"""DICOM reading for the recipes: series discovery, CT series, DICOM-SEG masks."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radioactive.data.recipes.dicom import (
    case_id_from,
    find_series,
    pair_segs,
    read_image_series,
    read_seg,
    seg_file,
)
from radioactive.errors import RecipeError
from tests.data.recipes.dicom_fixtures import (
    ORIGIN,
    SHAPE,
    SPACING,
    SegSpec,
    Study,
    box,
    ct_datasets,
    seg_dataset,
    tcia_case,
    write_ct,
    write_seg,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TUMOUR = box(SHAPE, (2, 4, 4), (5, 10, 10))
OTHER = box(SHAPE, (1, 20, 20), (4, 26, 28))


def hu(k: int, y: int, x: int) -> int:
    return 10 * k + x + 2 * y


@pytest.fixture
def release(tmp_path: Path):
    root = tmp_path / "raw"
    ct, seg = tcia_case(root, "P1", [SegSpec("Tumor_1", TUMOUR), SegSpec("Liver", OTHER, False)])
    (root / "metadata.csv").write_text("Series UID,Modality\n", encoding="utf-8")
    (root / "LICENSE").write_text("CC BY 4.0\n", encoding="utf-8")
    stale = root / f".{ct.series_uid}.partial"  # an interrupted download's staging folder
    stale.mkdir()
    shutil.copy(ct.files[0], stale / "1-001.dcm")
    return root, ct, seg


def test_find_series_groups_files_by_series_from_headers(release) -> None:
    root, ct, seg = release
    series = find_series(root)
    assert set(series) == {ct.series_uid, str(seg.SeriesInstanceUID)}
    s_ct = series[ct.series_uid]
    assert (s_ct.modality, s_ct.patient_id, s_ct.n_files) == ("CT", "P1", SHAPE[0])
    assert s_ct.description == "CT" and s_ct.series_number == 2
    assert s_ct.folder == root / ct.series_uid
    s_seg = series[str(seg.SeriesInstanceUID)]
    assert s_seg.modality == "SEG" and s_seg.n_files == 1
    assert s_seg.referenced_series == (ct.series_uid,)
    assert set(s_seg.referenced_instances) == set(ct.sop_uids)
    assert set(find_series(root, modalities={"SEG"})) == {str(seg.SeriesInstanceUID)}
    (pair,) = pair_segs(series)
    assert pair.image is s_ct and seg_file(pair.seg).name == "1-1.dcm"


def test_ct_series_keeps_geometry_and_values_whatever_the_file_order(tmp_path: Path) -> None:
    ds = ct_datasets(Study("P"))
    ct = write_ct(tmp_path / "ct", ds[::-1])  # file 1-001.dcm is the top slice
    image = read_image_series(ct.files)
    assert image.GetSize() == (SHAPE[2], SHAPE[1], SHAPE[0])
    assert np.allclose(image.GetSpacing(), SPACING)
    assert np.allclose(image.GetOrigin(), ORIGIN)
    arr = sitk.GetArrayFromImage(image)
    assert arr[0, 0, 0] == hu(0, 0, 0) and arr[5, 3, 7] == hu(5, 3, 7)


def test_broken_series_raise_errors_naming_the_folder(tmp_path: Path) -> None:
    ds = ct_datasets(Study("P"))
    ct = write_ct(tmp_path / "gap", ds)
    ct.files[4].unlink()
    with pytest.raises(RecipeError, match="uneven slice positions") as err:
        read_image_series(ct.files[:4] + ct.files[5:])
    assert err.value.path == tmp_path / "gap" and err.value.fix

    mixed = ct_datasets(Study("P"))
    mixed[3].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    m = write_ct(tmp_path / "mixed", mixed)
    with pytest.raises(RecipeError, match="different orientations") as err:
        read_image_series(m.files)
    assert err.value.path == tmp_path / "mixed"


def test_two_acquisitions_in_one_series_keep_the_referenced_one(tmp_path: Path) -> None:
    study = Study("P")
    first = ct_datasets(study, series_uid="1.2.3.4", acquisition=1)
    second = ct_datasets(study, series_uid="1.2.3.4", acquisition=2)
    for d in second:  # another phase: brighter, same positions
        d.PixelData = (np.frombuffer(d.PixelData, np.int16) + 500).astype(np.int16).tobytes()
    ct = write_ct(tmp_path / "two", first + second)
    with pytest.raises(RecipeError, match="several slices at the same position"):
        read_image_series(ct.files)
    image = read_image_series(ct.files, prefer_instances=[str(d.SOPInstanceUID) for d in second])
    arr = sitk.GetArrayFromImage(image)
    assert arr.shape == SHAPE and arr[2, 1, 1] == hu(2, 1, 1) + 500


def test_seg_on_the_ct_grid_gives_each_segment_exactly(release) -> None:
    root, ct, seg = release
    image = read_image_series(ct.files)
    segments = read_seg(root / str(seg.SeriesInstanceUID) / "1-1.dcm", image)
    assert [(s.number, s.label) for s in segments] == [(1, "Tumor_1"), (2, "Liver")]
    assert segments[0].property_type == "Neoplasm" and segments[0].algorithm == "MANUAL"
    assert np.array_equal(segments[0].array(), TUMOUR)
    assert np.array_equal(segments[1].array(), OTHER)
    assert segments[0].voxels == int(TUMOUR.sum())


def test_seg_on_its_own_finer_grid_is_resampled_with_nearest_neighbour(tmp_path: Path) -> None:
    ct, seg = tcia_case(tmp_path, "P", [SegSpec("a", TUMOUR), SegSpec("b", OTHER)], fine_grid=True)
    path = tmp_path / str(seg.SeriesInstanceUID) / "1-1.dcm"
    header = pydicom.dcmread(path)
    assert header.Rows == 2 * SHAPE[1]  # really another grid
    own = read_seg(path)  # on the SEG's own geometry: fine slices 2..9 hold frames
    assert own[0].mask.GetSize() == (64, 64, 8)
    assert np.allclose(own[0].mask.GetSpacing(), [v / 2 for v in SPACING])
    assert np.allclose(own[0].mask.GetOrigin(), (ORIGIN[0], ORIGIN[1], ORIGIN[2] + 2 * 1.25))
    image = read_image_series(ct.files)
    on_ct = read_seg(path, image)
    assert on_ct[0].mask.GetSize() == image.GetSize()
    assert np.array_equal(on_ct[0].array(), TUMOUR)
    assert np.array_equal(on_ct[1].array(), OTHER)


def test_seg_with_sparse_frames_and_an_empty_segment(tmp_path: Path) -> None:
    # frames exist only where a segment is present; a segment without frames comes back empty
    ct, _ = tcia_case(tmp_path, "P", [SegSpec("a", TUMOUR)], write_seg_file=False)
    seg = seg_dataset(ct, [SegSpec("a", TUMOUR), SegSpec("none", np.zeros(SHAPE, bool))])
    assert int(seg.NumberOfFrames) == 3  # slices 2..4 of segment "a" only
    path = write_seg(tmp_path / "seg.dcm", seg)
    segments = read_seg(path, read_image_series(ct.files))
    assert np.array_equal(segments[0].array(), TUMOUR)
    assert segments[1].label == "none" and segments[1].voxels == 0


def test_read_seg_refuses_a_file_that_is_not_a_seg(release) -> None:
    _, ct, _ = release
    with pytest.raises(RecipeError, match="not a DICOM Segmentation") as err:
        read_seg(ct.files[0])
    assert err.value.path == ct.files[0]


def test_case_ids_are_file_name_safe() -> None:
    assert case_id_from("CRLM-CT-1001") == "CRLM-CT-1001"
    assert case_id_from(" lnq 2023/0001 ") == "lnq_2023_0001"


def test_fixture_ct_is_a_valid_highdicom_source() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = ct_datasets(Study("P"))
    assert ds[0].Modality == "CT" and len(ds) == SHAPE[0]
