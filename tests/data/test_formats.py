"""Dataset layouts: nnU-Net raw, Decathlon, plain folders; nothing is read until a case is used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import radioactive.data.case as case_module
from radioactive.data import TargetSpec, open_dataset, resolve_datasets
from tests.conftest import affine_from, write_nifti

SHAPE = (9, 7, 5)
AFF = affine_from((0.8, 0.8, 3.0))


def _label(value: int = 1, offset: int = 0) -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    lab[1 + offset : 4 + offset, 1:4, 1:3] = value
    return lab


def _nnunet(root: Path, *, radioactive: dict | None = None) -> Path:
    for case in ("case_001", "case_002"):
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", np.zeros(SHAPE, np.int16), AFF)
        write_nifti(root / "imagesTr" / f"{case}_0001.nii.gz", np.ones(SHAPE, np.int16), AFF)
        lab = _label(1)
        lab[6:8, 5:7, 3:5] = 2
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab, AFF)
    doc = {
        "channel_names": {"0": "T2", "1": "ADC"},
        "labels": {"background": 0, "prostate": 1, "lesion": 2},
        "numTraining": 2,
        "file_ending": ".nii.gz",
        "name": "Prostate",
    }
    if radioactive is not None:
        doc["radioactive"] = radioactive
    (root / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_nnunet_raw(tmp_path: Path) -> None:
    ds = open_dataset(_nnunet(tmp_path / "Dataset001_Prostate"))
    assert ds.format == "nnunet" and ds.name == "Prostate"
    assert ds.case_ids == ["case_001", "case_002"]
    assert ds.labels == {"background": 0, "prostate": 1, "lesion": 2}
    assert ds.modality == "T2" and ds.modality_group == "MR"
    case = ds.case("case_002")
    assert case.image_path.name == "case_002_0000.nii.gz"
    assert [t.name for t in case.targets] == ["prostate", "lesion"]
    assert case.image.spacing_mm == pytest.approx((3.0, 0.8, 0.8))


def test_nnunet_radioactive_block_sets_targets_and_channel(tmp_path: Path) -> None:
    meta = {
        "modality": "MR",
        "category": "mixed",
        "channel": 1,
        "targets": {"type": "organ", "label_types": {"lesion": "instance"}},
    }
    ds = open_dataset(_nnunet(tmp_path / "ds", radioactive=meta))
    case = next(iter(ds))
    assert case.image_path.name == "case_001_0001.nii.gz"
    assert float(case.image.array.max()) == 1.0
    assert [(t.name, t.kind) for t in case.targets] == [
        ("prostate", "organ"),
        ("lesion#1", "instance"),
    ]
    override = open_dataset(ds.root, targets=TargetSpec(type="instance"), modality="CT")
    assert override.modality_group == "CT"
    assert [t.name for t in next(iter(override)).targets] == ["prostate#1", "lesion#1"]


def test_decathlon_with_4d_images(tmp_path: Path) -> None:
    root = tmp_path / "Task01_BrainTumour"
    training = []
    for i in range(3):
        img = np.stack([np.full(SHAPE, c, np.float32) for c in range(4)], axis=-1)
        write_nifti(root / "imagesTr" / f"BRATS_{i:03d}.nii.gz", img, AFF)
        write_nifti(root / "labelsTr" / f"BRATS_{i:03d}.nii.gz", _label(i % 3 + 1), AFF)
        training.append(
            {
                "image": f"./imagesTr/BRATS_{i:03d}.nii.gz",
                "label": f"./labelsTr/BRATS_{i:03d}.nii.gz",
            }
        )
    doc = {
        "name": "BRATS",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {
            "0": "background",
            "1": "edema",
            "2": "non-enhancing tumor",
            "3": "enhancing tumour",
        },
        "training": training,
        "radioactive": {"channel": 2, "targets": {"type": "instance"}},
    }
    (root / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    ds = open_dataset(root)
    assert ds.format == "decathlon" and len(ds) == 3
    assert ds.labels["enhancing tumour"] == 3 and ds.modality == "t1gd"
    cases = list(ds)
    assert [c.case_id for c in cases] == ["BRATS_000", "BRATS_001", "BRATS_002"]
    assert float(cases[0].image.array.mean()) == 2.0  # channel 2 selected
    assert [t.name for t in cases[1].targets] == ["non-enhancing tumor#1"]


def test_plain_folder_images_and_labels(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    for name in ("p1", "p2"):
        write_nifti(root / "images" / f"{name}.nii.gz", np.zeros(SHAPE, np.int16), AFF)
        write_nifti(root / "labels" / f"{name}.nii.gz", _label(3), AFF)
    ds = open_dataset(root)
    assert ds.format == "folder" and ds.case_ids == ["p1", "p2"]
    assert ds.labels == {"label_3": 3}
    assert [t.name for t in ds.case("p1").targets] == ["label_3"]


def test_plain_folder_of_suffixed_pairs(tmp_path: Path) -> None:
    root = tmp_path / "pairs"
    write_nifti(root / "a_image.nii.gz", np.zeros(SHAPE, np.int16), AFF)
    write_nifti(root / "a_seg.nii.gz", _label(1), AFF)
    write_nifti(root / "b_img.nii", np.zeros(SHAPE, np.int16), AFF)
    write_nifti(root / "b_label.nii", _label(1, offset=3), AFF)
    ds = open_dataset(root, labels={"tumour": 1})
    assert ds.case_ids == ["a", "b"]
    assert [t.name for t in ds.case("b").targets] == ["tumour"]


def test_opening_reads_no_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _nnunet(tmp_path / "ds")

    def forbidden(*args, **kwargs):
        raise AssertionError("a volume was read")

    monkeypatch.setattr(case_module, "load_volume", forbidden)
    monkeypatch.setattr(case_module, "load_label", forbidden)
    ds = open_dataset(root)
    cases = list(ds)
    assert len(cases) == 2
    with pytest.raises(AssertionError, match="a volume was read"):
        _ = cases[0].image


def test_resolve_suite_folder(tmp_path: Path) -> None:
    _nnunet(tmp_path / "suite" / "Dataset001_A")
    _nnunet(tmp_path / "suite" / "Dataset002_B")
    (tmp_path / "suite" / ".staging-x").mkdir()
    names = [d.root.name for d in resolve_datasets(tmp_path / "suite")]
    assert names == ["Dataset001_A", "Dataset002_B"]
