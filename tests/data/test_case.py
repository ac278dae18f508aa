"""Targets from organ and instance label maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radioactive.data import Case, TargetSpec, extract_targets
from radioactive.errors import LabelError
from tests.conftest import affine_from, write_nifti


def _organ_map() -> np.ndarray:
    lab = np.zeros((6, 8, 10), dtype=np.uint8)
    lab[1:3, 2:5, 3:7] = 1  # 2*3*4 = 24 voxels
    lab[4, 0:2, 0:2] = 2  # 4 voxels, one slice
    lab[0:6, 7, 9] = 3  # 6 voxels, all slices
    return lab


def test_organ_targets_one_per_label_with_skips_and_exclusions() -> None:
    labels = {"background": 0, "liver": 1, "spleen": 2, "aorta": 3, "absent": 4}
    spec = TargetSpec(type="organ", exclude=(3,))
    targets, skipped = extract_targets("c1", _organ_map(), labels, spec)
    assert [t.name for t in targets] == ["liver", "spleen"]
    liver, spleen = targets
    assert (liver.voxels, liver.bbox_lo, liver.bbox_hi) == (24, (1, 2, 3), (3, 5, 7))
    assert liver.slices_with_target == 2 and spleen.slices_with_target == 1
    assert liver.mask.sum() == 24 and liver.mask.dtype == bool
    assert np.array_equal(spleen.mask, _organ_map() == 2)
    assert all(t.kind == "organ" and t.case_id == "c1" for t in targets)
    assert [(s.name, s.reason.split(":")[0]) for s in skipped] == [("absent", "empty")]


def _two_diagonal_blobs() -> np.ndarray:
    lab = np.zeros((5, 5, 5), dtype=np.uint8)
    lab[1, 1, 1] = 1
    lab[2, 2, 2] = 1  # touches the first only at a corner (26-connectivity)
    lab[1, 2, 1] = 0
    lab[4, 4, 0] = 1  # isolated
    lab[3, 4, 0] = 1  # face neighbour of the isolated one
    return lab


@pytest.mark.parametrize(("connectivity", "expected"), [(6, 3), (18, 3), (26, 2)])
def test_instance_components_follow_connectivity(connectivity: int, expected: int) -> None:
    spec = TargetSpec(type="instance", connectivity=connectivity)  # type: ignore[arg-type]
    targets, skipped = extract_targets("c", _two_diagonal_blobs(), {"lesion": 1}, spec)
    assert len(targets) == expected and not skipped
    assert sum(t.voxels for t in targets) == 4
    assert [t.name for t in targets] == [f"lesion#{k}" for k in range(1, expected + 1)]
    union = np.zeros((5, 5, 5), dtype=int)
    for t in targets:
        union += t.mask
    assert np.array_equal(union > 0, _two_diagonal_blobs() > 0) and union.max() == 1


def test_edge_neighbours_split_at_6_join_at_18() -> None:
    lab = np.zeros((3, 3, 3), dtype=np.uint8)
    lab[0, 0, 1] = lab[0, 1, 0] = 1  # share an edge, not a face
    for conn, n in ((6, 2), (18, 1), (26, 1)):
        targets, _ = extract_targets(
            "c", lab, {"l": 1}, TargetSpec(type="instance", connectivity=conn)
        )  # type: ignore[arg-type]
        assert len(targets) == n


def test_small_instances_are_skipped_with_reason() -> None:
    lab = np.zeros((4, 10, 10), dtype=np.uint8)
    lab[0:2, 0:3, 0:3] = 1  # 18 voxels
    lab[3, 8, 8] = 1  # 1 voxel
    targets, skipped = extract_targets(
        "c", lab, {"lesion": 1}, TargetSpec(type="instance", min_voxels=5)
    )
    assert [t.voxels for t in targets] == [18]
    assert len(skipped) == 1 and "1 voxels < min_voxels=5" in skipped[0].reason


def test_instance_ids_mode_and_mixed_label_types() -> None:
    lab = np.zeros((4, 6, 6), dtype=np.uint8)
    lab[0:4, 0:6, 0:3] = 1  # organ
    lab[1, 1, 4] = 2  # two separate lesion voxels of label 2
    lab[3, 4, 4] = 2
    labels = {"liver": 1, "tumour": 2}
    spec = TargetSpec(type="organ", label_types={"tumour": "instance"})
    targets, _ = extract_targets("c", lab, labels, spec)
    assert [(t.name, t.kind, t.voxels) for t in targets] == [
        ("liver", "organ", 72),
        ("tumour#1", "instance", 1),
        ("tumour#2", "instance", 1),
    ]
    ids = TargetSpec(type="instance", instance_mode="ids")
    targets, _ = extract_targets("c", lab, labels, ids)
    assert [(t.name, t.voxels) for t in targets] == [("liver#1", 72), ("tumour#1", 2)]


def test_organ_that_includes_its_lesions() -> None:
    lab = np.zeros((4, 6, 6), dtype=np.uint8)
    lab[0:4, 0:6, 0:3] = 1  # liver parenchyma, 72 voxels
    lab[1, 1, 1] = 2  # a lesion inside the liver (stored over it)
    lab[3, 4, 5] = 2  # a lesion outside the parenchyma's box
    labels = {"liver": 1, "tumour": 2}
    spec = TargetSpec(
        type="organ", label_types={"tumour": "instance"}, includes={"liver": ("tumour",)}
    )
    targets, _ = extract_targets("c", lab, labels, spec)
    liver, t1, t2 = targets
    assert (liver.name, liver.voxels) == ("liver", 73)  # 71 parenchyma + 2 lesion voxels
    assert np.array_equal(liver.mask, lab > 0)
    assert (liver.bbox_lo, liver.bbox_hi) == ((0, 0, 0), (4, 6, 6))
    assert liver.slices_with_target == 4
    assert (t1.voxels, t2.voxels) == (1, 1) and not t1.mask[0, 0, 0]
    bad = TargetSpec(type="organ", includes={"liver": ("vessel",)})
    with pytest.raises(LabelError, match="vessel"):
        extract_targets("c", lab, labels, bad)


def test_case_loads_lazily_and_releases(tmp_path: Path) -> None:
    aff = affine_from((1.0, 1.0, 2.0))
    img = write_nifti(tmp_path / "i.nii.gz", np.ones((10, 8, 6), np.float32), aff)
    lab_arr = np.zeros((10, 8, 6), np.uint8)
    lab_arr[2:4, 2:4, 1:3] = 1
    lab = write_nifti(tmp_path / "l.nii.gz", lab_arr, aff)
    case = Case("c", img, lab, labels={"x": 1}, spec=TargetSpec())
    assert "image" not in case.__dict__  # nothing read yet
    assert [t.name for t in case.targets] == ["x"]
    assert case.targets[0].voxels == 8
    assert case.present_label_values == {0, 1}
    case.release()
    assert "image" not in case.__dict__ and "label" not in case.__dict__
