"""Each kind of bad input gives its own error naming the file and a fix; no traceback in the CLI."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.data import Case, TargetSpec, load_label, load_volume, open_dataset
from radioactive.data.summary import summarize_dataset
from radioactive.errors import (
    CorruptFileError,
    DatasetError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    NonFiniteError,
)
from tests.conftest import affine_from, write_nifti

SHAPE = (8, 6, 5)


def _assert_actionable(exc: pytest.ExceptionInfo, path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message
    assert "Fix:" in message


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.nii.gz"
    with pytest.raises(MissingFileError) as exc:
        load_volume(p)
    _assert_actionable(exc, p)


def test_truncated_nifti(tmp_path: Path) -> None:
    p = write_nifti(tmp_path / "t.nii.gz", np.ones((40, 40, 40), np.float32))
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptFileError) as exc:
        load_volume(p)
    _assert_actionable(exc, p)
    assert "truncated" in str(exc.value)


def test_garbage_file(tmp_path: Path) -> None:
    for name, blob in (("g.nii", b"not an image" * 10), ("g.nii.gz", gzip.compress(b"x" * 500))):
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(CorruptFileError) as exc:
            load_volume(p)
        _assert_actionable(exc, p)
    p = tmp_path / "g.nrrd"
    p.write_bytes(b"NRRD0004\ntype: nonsense\n\n")
    with pytest.raises(CorruptFileError) as exc:
        load_volume(p)
    _assert_actionable(exc, p)


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_label_stored_flipped_on_the_same_grid_is_accepted(tmp_path: Path) -> None:
    # same voxels in the world, i axis stored in the opposite direction
    flipped = affine_from(rotation=np.diag([-1.0, 1.0, 1.0]), origin=(SHAPE[0] - 1, 0, 0))
    img = write_nifti(tmp_path / "img.nii.gz", np.zeros(SHAPE, np.int16), affine_from())
    lab_arr = np.zeros(SHAPE, np.uint8)
    lab_arr[0, 1, 1] = 1  # file voxel i=0 of the flipped label lies at world x = 7
    lab = write_nifti(tmp_path / "lab.nii.gz", lab_arr, flipped)
    case = Case("c", img, lab, labels={"x": 1}, spec=TargetSpec())
    (target,) = case.targets
    assert target.bbox_lo == (1, 1, SHAPE[0] - 1)


def _pair(tmp_path: Path, img_aff, lab_aff, lab_shape=SHAPE) -> Case:
    img = write_nifti(tmp_path / "img.nii.gz", np.zeros(SHAPE, np.int16), img_aff)
    lab_arr = np.zeros(lab_shape, np.uint8)
    lab_arr[1:3, 1:3, 1:3] = 1
    lab = write_nifti(tmp_path / "lab.nii.gz", lab_arr, lab_aff)
    return Case("c", img, lab, labels={"x": 1}, spec=TargetSpec())


@pytest.mark.parametrize(
    ("lab_aff", "lab_shape", "word"),
    [
        (affine_from(), (8, 6, 4), "shape"),
        (affine_from((1.0, 1.0, 2.0)), SHAPE, "spacing"),
        (affine_from(rotation=_rot_z(20)), SHAPE, "orientation"),
        (affine_from(origin=(0.0, 0.0, 10.0)), SHAPE, "origin"),
    ],
)
def test_image_label_grid_mismatch(tmp_path: Path, lab_aff, lab_shape, word: str) -> None:
    case = _pair(tmp_path, affine_from(), lab_aff, lab_shape)
    with pytest.raises(GridMismatchError) as exc:
        _ = case.targets
    _assert_actionable(exc, case.label_path)
    assert word in str(exc.value)
    assert str(case.image_path) in str(exc.value)


def test_label_with_fractional_values(tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, np.float32)
    arr[0, 0, 0] = 0.5
    p = write_nifti(tmp_path / "frac.nii.gz", arr)
    with pytest.raises(LabelError) as exc:
        load_label(p)
    _assert_actionable(exc, p)
    assert "non-integer" in str(exc.value)


def test_label_with_negative_values(tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, np.int16)
    arr[1, 1, 1] = -3
    p = write_nifti(tmp_path / "neg.nii.gz", arr)
    with pytest.raises(LabelError) as exc:
        load_label(p)
    _assert_actionable(exc, p)
    assert "negative" in str(exc.value)


def test_integer_valued_float_label_is_accepted(tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, np.float32)
    arr[1, 1, 1] = 2.0
    vol = load_label(write_nifti(tmp_path / "ok.nii.gz", arr))
    assert vol.array.dtype == np.uint8 and vol.array.max() == 2


def test_4d_image(tmp_path: Path) -> None:
    p = write_nifti(tmp_path / "four.nii.gz", np.zeros((*SHAPE, 3), np.float32))
    with pytest.raises(DimensionError) as exc:
        load_volume(p)
    _assert_actionable(exc, p)
    assert "3 channels" in str(exc.value)
    with pytest.raises(DimensionError):
        load_volume(p, channel=5)


def test_nonfinite_intensities_fill_policy(tmp_path: Path, caplog) -> None:
    arr = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    arr[0, 0, 0], arr[1, 1, 1], arr[2, 2, 2] = np.nan, np.inf, -np.inf
    p = write_nifti(tmp_path / "nan.nii.gz", arr)
    with caplog.at_level(logging.WARNING):
        vol = load_volume(p)
    assert vol.nonfinite_count == 3
    assert "3 NaN/infinite voxels replaced" in caplog.text and str(p) in caplog.text
    back = vol.to_file_space(vol.array)
    finite_max = float(np.nanmax(np.where(np.isinf(arr), np.nan, arr)))
    assert back[0, 0, 0] == 1.0  # lowest finite value (0 sits at [0,0,0], replaced itself)
    assert back[1, 1, 1] == finite_max and back[2, 2, 2] == 1.0
    assert np.all(np.isfinite(vol.array))


def test_nonfinite_intensities_raise_policy(tmp_path: Path) -> None:
    arr = np.ones(SHAPE, np.float32)
    arr[0, 0, 0] = np.nan
    p = write_nifti(tmp_path / "nan.nii.gz", arr)
    with pytest.raises(NonFiniteError) as exc:
        load_volume(p, nonfinite="raise")
    _assert_actionable(exc, p)
    all_nan = write_nifti(tmp_path / "allnan.nii.gz", np.full(SHAPE, np.nan, np.float32))
    with pytest.raises(NonFiniteError):
        load_volume(all_nan)


def _nnunet(root: Path, labels: dict[str, int]) -> Path:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case in ("a", "b"):
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", np.zeros(SHAPE, np.int16))
        lab = np.zeros(SHAPE, np.uint8)
        lab[1:3, 1:3, 1:3] = 1
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab)
    doc = {
        "channel_names": {"0": "CT"},
        "labels": labels,
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_dataset_json_names_labels_absent_from_every_case(tmp_path: Path) -> None:
    root = _nnunet(tmp_path / "ds", {"background": 0, "liver": 1, "ghost": 2})
    ds = open_dataset(root)
    summary = summarize_dataset(ds)
    assert len(summary["errors"]) == 1
    message = summary["errors"][0]["error"]
    assert "ghost (2)" in message and str(root / "dataset.json") in message and "Fix:" in message
    with pytest.raises(DatasetError):
        ds.check_labels({c.case_id: c.present_label_values for c in ds})


def test_dataset_with_missing_image(tmp_path: Path) -> None:
    root = _nnunet(tmp_path / "ds", {"background": 0, "liver": 1})
    (root / "imagesTr" / "b_0000.nii.gz").unlink()
    with pytest.raises(MissingFileError) as exc:
        open_dataset(root)
    _assert_actionable(exc, root / "imagesTr" / "b_0000.nii.gz")


def test_invalid_dataset_json(tmp_path: Path) -> None:
    root = _nnunet(tmp_path / "ds", {"background": 0, "liver": 1})
    (root / "dataset.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        open_dataset(root)
    _assert_actionable(exc, root / "dataset.json")
    (root / "dataset.json").write_text(
        json.dumps(
            {"labels": {"background": 0, "x": 1}, "radioactive": {"targets": {"tpye": "organ"}}}
        ),
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as exc:
        open_dataset(root)
    assert "tpye" in str(exc.value)


runner = CliRunner()


@pytest.mark.parametrize("kind", ["missing", "ghost_label", "grid", "unknown"])
def test_cli_reports_errors_without_traceback(tmp_path: Path, kind: str) -> None:
    root = _nnunet(tmp_path / "ds", {"background": 0, "liver": 1, "ghost": 2})
    if kind == "missing":
        arg = str(tmp_path / "does-not-exist")
    elif kind == "unknown":
        arg = "no-such-dataset"
    else:
        arg = str(root)
        if kind == "grid":
            (root / "dataset.json").write_text(
                json.dumps({"labels": {"background": 0, "liver": 1}, "file_ending": ".nii.gz"}),
                encoding="utf-8",
            )
            write_nifti(root / "labelsTr" / "b.nii.gz", np.zeros((3, 3, 3), np.uint8))
    result = runner.invoke(app, ["datasets", "info", arg])
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code != 0
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Error" in text
    expected = {"missing": "Fix:", "unknown": "Fix:", "ghost_label": "ghost", "grid": "shape"}[kind]
    assert expected in text
