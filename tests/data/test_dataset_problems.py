"""What a dataset folder holds but cannot use is reported, never dropped without a word."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from radioactive.data import open_dataset
from radioactive.data.summary import summarize_dataset
from tests.conftest import affine_from, write_nifti

SHAPE = (6, 5, 4)
AFF = affine_from((1.0, 1.0, 2.0))
STANDARD = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "liver": 1, "spleen": 2},
    "numTraining": 2,
    "file_ending": ".nii.gz",
}


def _label(*values: int) -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    for i, v in enumerate(values):
        lab[i + 1, 1:3, 1:3] = v
    return lab


def _dataset(root: Path, cases: dict[str, np.ndarray], doc: dict | None = None) -> Path:
    for case_id, lab in cases.items():
        write_nifti(root / "imagesTr" / f"{case_id}_0000.nii.gz", np.zeros(SHAPE, np.int16), AFF)
        write_nifti(root / "labelsTr" / f"{case_id}.nii.gz", lab, AFF)
    (root / "dataset.json").write_text(json.dumps(doc or STANDARD), encoding="utf-8")
    return root


def test_image_without_label_is_listed_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _dataset(tmp_path / "ds", {"a": _label(1, 2), "b": _label(1, 2)})
    write_nifti(root / "imagesTr" / "c_0000.nii.gz", np.zeros(SHAPE, np.int16), AFF)
    with caplog.at_level(logging.WARNING, logger="radioactive.data.formats"):
        ds = open_dataset(root)
    assert ds.case_ids == ["a", "b"]
    assert len(ds.problems) == 1
    assert "imagesTr/c_0000.nii.gz" in ds.problems[0] and "'c'" in ds.problems[0]
    assert "no label" in ds.problems[0]
    assert any("c_0000.nii.gz" in r.getMessage() for r in caplog.records)
    assert summarize_dataset(ds)["problems"] == ds.problems


def test_complete_dataset_has_no_problems(tmp_path: Path) -> None:
    ds = open_dataset(_dataset(tmp_path / "ds", {"a": _label(1, 2)}))
    assert ds.problems == []


@pytest.mark.parametrize("folder", ["labelsTr", "imagesTr"])
def test_appledouble_and_ds_store_are_ignored(tmp_path: Path, folder: str) -> None:
    root = _dataset(tmp_path / "ds", {"a": _label(1, 2), "b": _label(1, 2)})
    name = "._a.nii.gz" if folder == "labelsTr" else "._a_0000.nii.gz"
    (root / folder / name).write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)  # AppleDouble magic
    (root / folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ds = open_dataset(root)
    assert ds.case_ids == ["a", "b"]
    assert sorted(ds.problems) == sorted(
        [f"{folder}/{name}: hidden file ignored (not a case)",
         f"{folder}/.DS_Store: hidden file ignored (not a case)"]
    )  # fmt: skip
    assert [t.name for t in ds.case("a").targets] == ["liver", "spleen"]


def test_appledouble_in_plain_folder_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "pairs"
    write_nifti(root / "a_image.nii.gz", np.zeros(SHAPE, np.int16), AFF)
    write_nifti(root / "a_label.nii.gz", _label(1), AFF)
    (root / "._a_label.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    ds = open_dataset(root)
    assert ds.case_ids == ["a"]
    assert ds.problems == ["._a_label.nii.gz: hidden file ignored (not a case)"]


def test_empty_and_undeclared_labels_are_skipped_targets(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", {"a": _label(1, 7), "b": _label(1, 2)})
    ds = open_dataset(root)
    a = ds.case("a")
    assert [t.name for t in a.targets] == ["liver"]
    assert [name for name, _ in a.skipped_targets] == ["spleen", "label_7"]
    reasons = dict(a.skipped_targets)
    assert reasons["spleen"].startswith("empty")
    assert "label value 7" in reasons["label_7"] and "dataset.json" in reasons["label_7"]
    assert ds.case("b").skipped_targets == []
    info = summarize_dataset(ds)
    assert info["n_skipped"] == 2
    assert [s["name"] for s in info["cases"][0]["skipped"]] == ["spleen", "label_7"]


def test_excluded_value_is_not_undeclared(tmp_path: Path) -> None:
    doc = {**STANDARD, "radioactive": {"targets": {"exclude": [7]}}}
    root = _dataset(tmp_path / "ds", {"a": _label(1, 2, 7)}, doc)
    assert open_dataset(root).case("a").skipped_targets == []


def test_standard_nnunet_keys_only(tmp_path: Path) -> None:
    ds = open_dataset(_dataset(tmp_path / "Dataset009_Plain", {"a": _label(1, 2)}))
    assert ds.format == "nnunet" and ds.name == "Dataset009_Plain"
    assert ds.meta.category is None and ds.meta.recipe is None and ds.meta.licence is None
    assert ds.modality == "CT" and ds.modality_group == "CT"
    assert ds.labels == {"background": 0, "liver": 1, "spleen": 2}
    assert [t.name for t in ds.case("a").targets] == ["liver", "spleen"]
    assert summarize_dataset(ds)["category"] is None
