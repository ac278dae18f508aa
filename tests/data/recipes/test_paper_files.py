"""The recipes of the file-based sources (D1 MS FLAIR, D2 HaN-Seg, D3 HNTS-MRG, D9 PENGWIN,
D10 SegRap) on small synthetic releases built in each source's raw layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from radioactive.data.case import Case
from radioactive.data.recipes import get_recipe
from radioactive.data.recipes.paper.hanseg import OARS as HANSEG_OARS
from radioactive.data.recipes.paper.hanseg import HaNSeg
from radioactive.data.recipes.paper.hnts_mrg import HNTSMRG
from radioactive.data.recipes.paper.ms_flair import (
    MSFlair,
    flair_spacing_from_rows,
    read_xlsx_rows,
)
from radioactive.data.recipes.paper.pengwin import PENGWIN
from radioactive.data.recipes.paper.segrap import OARS as SEGRAP_OARS
from radioactive.data.recipes.paper.segrap import SegRap, overlap_groups
from radioactive.data.recipes.public import PublicRecipe
from radioactive.errors import RecipeError
from tests.data.recipes.file_fixtures import ball, dice, write_image, write_xlsx, zip_tree

MS_TITLE = (
    "Brain MRI Dataset of Multiple Sclerosis with Consensus Manual Lesion Segmentation and "
    "Patient Meta Information"
)


def _meta(root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    return doc


def _case(root: Path, recipe: PublicRecipe, case_id: str) -> Case:
    meta = _meta(root)
    return Case(
        case_id,
        root / "imagesTr" / f"{case_id}_0000.nii.gz",
        root / "labelsTr" / f"{case_id}.nii.gz",
        labels=meta["labels"],
        spec=recipe.targets,
    )


def _label(root: Path, case_id: str) -> np.ndarray:
    img = sitk.ReadImage(str(root / "labelsTr" / f"{case_id}.nii.gz"))
    return sitk.GetArrayFromImage(img)


def _layout(root: Path) -> tuple[list[str], list[str]]:
    images = sorted(p.name for p in (root / "imagesTr").iterdir())
    labels = sorted(p.name for p in (root / "labelsTr").iterdir())
    return images, labels


# ------------------------------------------------------------------------------------- D1


SHEET_HEADER: list[list[object]] = [
    ["", "T1", "", "FLAIR", "", ""],
    ["ID", "Spacing Between Slices", "Slice Thickness", "Spacing Between Slices",
     "Slice Thickness", "TR"],
]  # fmt: skip


def _ms_release(base: Path, sheet: str) -> Path:
    """Mendeley layout: title folder with Patient-<n>/ folders and the metadata sheet."""
    top = base / MS_TITLE
    rng = np.random.default_rng(0)
    for pid, centres in {1: [(2, 4, 4), (3, 14, 14), (4, 4, 15)], 2: [(2, 10, 10), (4, 3, 3)],
                         3: [(3, 8, 8)]}.items():  # fmt: skip
        img = rng.normal(100, 5, (6, 20, 20)).astype(np.float32)
        seg = np.zeros((6, 20, 20), np.uint8)
        for z, y, x in centres:
            seg[z - 1 : z + 1, y - 1 : y + 2, x - 1 : x + 2] = 1
        folder = top / f"Patient-{pid}"
        write_image(folder / f"{pid}-Flair.nii", img, spacing=(0.5, 0.5, 1.0))
        write_image(folder / f"{pid}-LesionSeg-Flair.nii", seg, spacing=(0.5, 0.5, 1.0))
        write_image(folder / f"{pid}-T1.nii", img, spacing=(0.9, 0.9, 1.0))
    rows: list[list[object]] = [
        *SHEET_HEADER,
        [1, 1.0, 1.0, 5.5, 5.0, 9000],
        [2, 1.0, 1.0, 6.0, 5.0, 9000],
    ]
    if sheet == "xlsx":
        write_xlsx(top / "Supplementary Table 2 for  sequence parameters .xlsx", rows)
    else:
        text = "\n".join(",".join(str(c) for c in r) for r in rows) + "\n"
        (top / "Supplementary Table 2 for  sequence parameters .csv").write_text(
            text, encoding="utf-8"
        )
    return top


@pytest.mark.parametrize("sheet", ["xlsx", "csv"])
def test_ms_flair_spacing_from_sheet_and_lesion_instances(tmp_path: Path, sheet: str) -> None:
    src = tmp_path / "src"
    top = _ms_release(tmp_path / "extracted", sheet)
    if sheet == "xlsx":  # the release as downloaded: one archive, read in place
        zip_tree(top.parent, src / "8bctsm8jz7-1.zip")
    else:
        top.rename(src)
    recipe = MSFlair()
    report = recipe.prepare(tmp_path / "cache", source_dir=src)
    root = report.root
    assert root == tmp_path / "cache" / "datasets" / "Dataset201_MSFLAIR"
    assert _layout(root) == (
        ["ms_001_0000.nii.gz", "ms_002_0000.nii.gz"],
        ["ms_001.nii.gz", "ms_002.nii.gz"],
    )
    meta = _meta(root)
    assert meta["labels"] == {"background": 0, "lesion": 1}
    assert "ms_003" in meta["radioactive"]["dropped"]
    assert "metadata sheet" in meta["radioactive"]["dropped"]["ms_003"]
    for case_id, z, lesions in [("ms_001", 5.5, 3), ("ms_002", 6.0, 2)]:
        img = sitk.ReadImage(str(root / "imagesTr" / f"{case_id}_0000.nii.gz"))
        assert img.GetSpacing() == pytest.approx((0.5, 0.5, z))
        lab = sitk.ReadImage(str(root / "labelsTr" / f"{case_id}.nii.gz"))
        assert lab.GetSpacing() == pytest.approx((0.5, 0.5, z))
        case = _case(root, recipe, case_id)
        assert sorted(case.image.spacing_mm) == pytest.approx(sorted((0.5, 0.5, z)))
        assert [t.name for t in case.targets] == [f"lesion#{k}" for k in range(1, lesions + 1)]
        src_meta = meta["radioactive"]["cases"][case_id]
        assert src_meta["sheet_spacing_between_slices"] == z
        assert src_meta["header_spacing_xyz"] == [0.5, 0.5, 1.0]
    # the source folder is left as it was
    assert not any(p.name.startswith(".") for p in src.rglob("*"))


def test_ms_flair_sheet_reader_takes_the_flair_column(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        *SHEET_HEADER,
        [7, 1.0, 1.0, 4.4, 5.0, 9000],
        ["", "", "", "", "", ""],
    ]
    path = write_xlsx(tmp_path / "sheet.xlsx", rows)
    parsed = read_xlsx_rows(path)
    assert parsed[1][3] == "Spacing Between Slices"
    assert flair_spacing_from_rows(parsed, str(path)) == {7: 4.4}
    with pytest.raises(RecipeError, match="Spacing Between Slices"):
        flair_spacing_from_rows([["ID", "TR"], ["1", "9000"]], "x.csv")


def test_ms_flair_unreadable_workbook_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(RecipeError, match="cannot read the workbook") as info:
        read_xlsx_rows(path)
    assert info.value.path == path
    assert info.value.fix is not None and "CSV" in info.value.fix


# ------------------------------------------------------------------------------------- D2

MR_SPACING, MR_ORIGIN, MR_SHAPE = (1.5, 1.5, 2.0), (0.0, 0.0, 0.0), (40, 48, 48)
CT_SPACING, CT_ORIGIN, CT_SHAPE = (1.2, 1.2, 2.5), (-8.0, -8.0, -6.0), (44, 70, 70)
SHIFT = np.array([5.0, -4.0, 6.0])  # CT world = MR world + SHIFT
BODY = ((36.0, 36.0, 40.0), (26.0, 22.0, 30.0))
HANSEG_ORGANS = {  # name: (centre, radius) in MR world coordinates (mm)
    "Parotid_L": ((28.0, 30.0, 34.0), 8.0),
    "Brainstem": ((46.0, 42.0, 50.0), 6.0),
    "Cochlea_L": ((32.0, 30.0, 34.0), 4.5),  # overlaps Parotid_L, smaller
}


def _phantom(shape, spacing, origin, shift, values: dict[str, float], background: float):
    arr = np.full(shape, background, np.float32)
    body = ball(shape, spacing, origin, np.add(BODY[0], shift), BODY[1])
    arr[body] = values["body"]
    masks = {}
    for name, (centre, radius) in HANSEG_ORGANS.items():
        m = ball(shape, spacing, origin, np.add(centre, shift), radius)
        arr[m] = values[name]
        masks[name] = m
    img = sitk.SmoothingRecursiveGaussian(
        sitk.GetImageFromArray(arr), 1.0
    )  # blur in index space before setting the geometry
    out = sitk.GetArrayFromImage(img)
    return out, masks


def test_hanseg_registers_ct_labels_onto_the_mr(tmp_path: Path) -> None:
    case_dir = tmp_path / "tree" / "HaN-Seg" / "set_1" / "case_01"
    mr, mr_masks = _phantom(MR_SHAPE, MR_SPACING, MR_ORIGIN, (0, 0, 0),
                            {"body": 100, "Parotid_L": 180, "Brainstem": 40, "Cochlea_L": 250},
                            0.0)  # fmt: skip
    ct, ct_masks = _phantom(CT_SHAPE, CT_SPACING, CT_ORIGIN, SHIFT,
                            {"body": 40, "Parotid_L": 90, "Brainstem": 30, "Cochlea_L": 700},
                            -1000.0)  # fmt: skip
    # the CT also shows the shoulders, which the MR does not: the centroid start is ~16 mm off
    shoulders = ball(CT_SHAPE, CT_SPACING, CT_ORIGIN, (41.0, 32.0, 90.0), (30.0, 25.0, 14.0))
    ct[shoulders & (ct < 0)] = 40
    write_image(case_dir / "case_01_IMG_MR_T1.nrrd", mr, MR_SPACING, MR_ORIGIN)
    write_image(case_dir / "case_01_IMG_CT.nrrd", ct, CT_SPACING, CT_ORIGIN)
    for name, m in ct_masks.items():
        write_image(case_dir / f"case_01_OAR_{name}.seg.nrrd", m.astype(np.uint8),
                    CT_SPACING, CT_ORIGIN)  # fmt: skip
    src = tmp_path / "src"
    zip_tree(tmp_path / "tree", src / "HaN-Seg.zip")

    recipe = HaNSeg()
    recipe.registration_iterations = 60
    recipe.registration_sampling = 0.5
    root = recipe.prepare(tmp_path / "cache", source_dir=src).root
    assert root.name == "Dataset209_HaNSeg"
    assert _layout(root) == (["case_01_0000.nii.gz"], ["case_01.nii.gz"])
    meta = _meta(root)
    assert meta["labels"] == {"background": 0, **HANSEG_OARS}
    assert len(HANSEG_OARS) == 30 and meta["channel_names"] == {"0": "MRI T1"}
    # the image is the MR, on its own grid
    img = sitk.ReadImage(str(root / "imagesTr" / "case_01_0000.nii.gz"))
    assert img.GetSize() == MR_SHAPE[::-1] and img.GetSpacing() == pytest.approx(MR_SPACING)
    label = _label(root, "case_01")
    expected = np.zeros(MR_SHAPE, np.uint8)
    for name in ("Parotid_L", "Brainstem", "Cochlea_L"):  # smaller organ written last
        expected[mr_masks[name]] = HANSEG_OARS[name]
    for name in HANSEG_ORGANS:
        v = HANSEG_OARS[name]
        assert dice(label == v, expected == v) > 0.8, name
    src_meta = meta["radioactive"]["cases"]["case_01"]
    # the recovered translation (MR -> CT point mapping) is the known shift
    assert src_meta["registration"]["parameters"][3:] == pytest.approx(SHIFT.tolist(), abs=1.0)
    assert src_meta["overlap_voxels"] > 0
    assert set(src_meta["voxels_lost_to_smaller_organs"]) == {"Parotid_L"}
    case = _case(root, recipe, "case_01")
    assert [t.name for t in case.targets] == ["Brainstem", "Cochlea_L", "Parotid_L"]
    assert len(case.skipped) == 27


# ------------------------------------------------------------------------------------- D3


def test_hnts_mrg_keeps_pre_rt_gtvp_and_drops_cases_without_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shape = (8, 16, 16)
    for pid, (gtvp, gtvn) in {2: (True, True), 5: (False, True), 7: (True, False)}.items():
        mask = np.zeros(shape, np.uint8)
        if gtvp:
            mask[2:4, 2:6, 2:6] = 1
            mask[5:7, 10:12, 10:12] = 1  # a second piece of the same primary tumour
        if gtvn:
            mask[2:5, 10:14, 2:5] = 2
        pre = tree / str(pid) / "preRT"
        write_image(pre / f"{pid}_preRT_T2.nii.gz", np.full(shape, 50, np.int16), (0.5, 0.5, 2.0))
        write_image(pre / f"{pid}_preRT_mask.nii.gz", mask, (0.5, 0.5, 2.0))
        mid = tree / str(pid) / "midRT"
        write_image(mid / f"{pid}_midRT_T2.nii.gz", np.zeros(shape, np.int16))
        write_image(mid / f"{pid}_midRT_mask.nii.gz", np.ones(shape, np.uint8))
    src = tmp_path / "src"
    zip_tree(tree, src / "HNTSMRG24_train.zip", root="HNTSMRG24_train")

    recipe = HNTSMRG()
    root = recipe.prepare(tmp_path / "cache", source_dir=src).root
    assert root.name == "Dataset501_HNTSMRG"
    assert _layout(root) == (
        ["hntsmrg_002_0000.nii.gz", "hntsmrg_007_0000.nii.gz"],
        ["hntsmrg_002.nii.gz", "hntsmrg_007.nii.gz"],
    )
    meta = _meta(root)
    assert meta["labels"] == {"background": 0, "GTVp": 1}
    assert list(meta["radioactive"]["dropped"]) == ["hntsmrg_005"]
    assert "GTVp" in meta["radioactive"]["dropped"]["hntsmrg_005"]
    lab = _label(root, "hntsmrg_002")
    assert set(np.unique(lab).tolist()) == {0, 1}
    assert np.count_nonzero(lab) == 2 * 4 * 4 + 2 * 2 * 2
    assert meta["radioactive"]["cases"]["hntsmrg_002"]["gtvn_voxels_removed"] == 3 * 4 * 3
    assert meta["radioactive"]["cases"]["hntsmrg_002"]["timepoint"] == "preRT"
    for case_id in ("hntsmrg_002", "hntsmrg_007"):
        case = _case(root, recipe, case_id)
        assert [t.name for t in case.targets] == ["GTVp#1"]  # one instance per patient
        assert case.image.spacing_mm == pytest.approx((2.0, 0.5, 0.5))


# ------------------------------------------------------------------------------------- D9


def test_pengwin_renumbers_fragments_consecutively(tmp_path: Path) -> None:
    shape = (6, 12, 12)
    labels = {
        "001": [1, 2, 11, 21, 22],  # sacrum (main + 1), left hip main, right hip main + 1
        "002": [1, 11],
    }
    src = tmp_path / "src"
    for k, (stem, values) in enumerate(labels.items()):
        lab = np.zeros(shape, np.uint8)
        for j, v in enumerate(values):
            lab[1:5, 2 * j : 2 * j + 2, 1:4] = v
        part = tmp_path / f"images{k}"
        write_image(part / f"{stem}.mha", np.full(shape, 300, np.int16), (0.8, 0.8, 1.5))
        zip_tree(part, src / f"PENGWIN_CT_train_images_part{k + 1}.zip")
        write_image(tmp_path / "labels" / f"{stem}.mha", lab, (0.8, 0.8, 1.5))
    zip_tree(tmp_path / "labels", src / "PENGWIN_CT_train_labels.zip")

    recipe = PENGWIN()
    root = recipe.prepare(tmp_path / "cache", source_dir=src).root
    assert root.name == "Dataset600_PENGWIN"
    assert _layout(root) == (
        ["pengwin_001_0000.nii.gz", "pengwin_002_0000.nii.gz"],
        ["pengwin_001.nii.gz", "pengwin_002.nii.gz"],
    )
    meta = _meta(root)
    assert meta["labels"] == {"background": 0, **{f"fragment_{k}": k for k in range(1, 6)}}
    lab = _label(root, "pengwin_001")
    assert sorted(np.unique(lab).tolist()) == [0, 1, 2, 3, 4, 5]
    assert lab[2, 4, 2] == 3  # source value 11 (third fragment in value order)
    mapping = meta["radioactive"]["cases"]["pengwin_001"]["fragments"]
    assert mapping["3"] == {"source_value": 11, "bone": "left_hip", "fragment": 1}
    assert mapping["5"] == {"source_value": 22, "bone": "right_hip", "fragment": 2}
    assert meta["radioactive"]["cases"]["pengwin_002"]["fragments"]["2"]["source_value"] == 11
    case = _case(root, recipe, "pengwin_001")
    assert [t.name for t in case.targets] == [f"fragment_{k}#1" for k in range(1, 6)]
    assert all(t.voxels == 4 * 2 * 3 for t in case.targets)
    case2 = _case(root, recipe, "pengwin_002")
    assert len(case2.targets) == 2 and len(case2.skipped) == 3
    assert case2.image.spacing_mm == pytest.approx((1.5, 0.8, 0.8))


# ------------------------------------------------------------------------------------ D10

SEGRAP_SHAPE = (10, 20, 20)


def _segrap_masks(variant: int) -> dict[str, np.ndarray]:
    def box(z0, z1, y0, y1, x0, x1):
        m = np.zeros(SEGRAP_SHAPE, bool)
        m[z0:z1, y0:y1, x0:x1] = True
        return m

    return {
        "Brain": box(1, 9, 1, 12, 1, 12),
        "BrainStem": box(3, 6, 4, 7, 4, 7),  # inside the brain
        "TemporalLobe_L": box(2, 5, 8, 11, 8, 11),  # inside the brain
        "Hippocampus_L": box(3, 5, 9, 14, 9, 14),  # overlaps brain and temporal lobe
        "Eye_L": box(1, 3, 15, 18, 15, 18) if variant == 0 else box(6, 8, 15, 18, 15, 18),
        "Lens_L": box(1, 2, 16, 17, 16, 17) if variant == 0 else box(6, 7, 16, 17, 16, 17),
    }


def test_segrap_splits_overlapping_organs_without_loss(tmp_path: Path) -> None:
    tree = tmp_path / "train" / "SegRap2023_Training_Set_120cases"
    for pid in ("segrap_0000", "segrap_0001"):
        folder = tree / pid
        write_image(folder / "image.nii.gz", np.full(SEGRAP_SHAPE, -100, np.int16), (1, 1, 3))
        write_image(folder / "image_contrast.nii.gz", np.zeros(SEGRAP_SHAPE, np.int16))
        for organ, m in _segrap_masks(0).items():
            write_image(folder / f"{organ}.nii.gz", m.astype(np.uint8), (1, 1, 3))
        write_image(folder / "GTVp.nii.gz", np.ones(SEGRAP_SHAPE, np.uint8), (1, 1, 3))
    upd = tmp_path / "update" / "SegRap2023_Training_Set_120cases_Update_Labels" / "segrap_0001"
    for organ, m in _segrap_masks(1).items():
        write_image(upd / f"{organ}.nii.gz", m.astype(np.uint8), (1, 1, 3))
    src = tmp_path / "src"
    zip_tree(tmp_path / "train", src / "SegRap2023_Training_Set_120cases.zip")
    zip_tree(
        tmp_path / "update", src / "SegRap2023_Training_Set_120cases_Update_Labels(Task001).zip"
    )

    recipe = SegRap()
    assert recipe.access == "manual"
    root = recipe.prepare(tmp_path / "cache", source_dir=src).root
    assert root.name == "Dataset651_SegRap"
    meta = _meta(root)
    assert meta["labels"] == {"background": 0, **SEGRAP_OARS} and len(SEGRAP_OARS) == 45
    cases = meta["radioactive"]["cases"]
    # brain, temporal lobe and hippocampus overlap pairwise: three groups are needed
    assert sorted(cases) == [f"segrap_000{p}_g{k}" for p in (0, 1) for k in (1, 2, 3)]
    for pid, variant in (("segrap_0000", 0), ("segrap_0001", 1)):
        masks = _segrap_masks(variant)
        found: dict[str, int] = {}
        for k in (1, 2, 3):
            case_id = f"{pid}_g{k}"
            lab = _label(root, case_id)
            for organ, m in masks.items():
                got = lab == SEGRAP_OARS[organ]
                if got.any():
                    assert np.array_equal(got, m), (case_id, organ)  # voxel for voxel
                    found[organ] = found.get(organ, 0) + 1
            assert sorted(cases[case_id]["structures"]) == sorted(
                o for o in masks if (lab == SEGRAP_OARS[o]).any()
            )
        assert found == dict.fromkeys(masks, 1)  # every organ in exactly one case
        first = root / "imagesTr" / f"{pid}_g1_0000.nii.gz"
        for k in (2, 3):
            other = root / "imagesTr" / f"{pid}_g{k}_0000.nii.gz"
            assert other.read_bytes() == first.read_bytes()
            if cases[f"{pid}_g{k}"]["image_file"].startswith("hard link"):
                assert os.path.samefile(first, other)
    assert cases["segrap_0001_g1"]["organ_masks_from"] == "updated task 1 labels"
    assert cases["segrap_0000_g1"]["organ_masks_from"] == "training set"
    case = _case(root, recipe, "segrap_0000_g1")
    assert {t.kind for t in case.targets} == {"organ"}
    assert case.image.spacing_mm == pytest.approx((3.0, 1.0, 1.0))


def test_overlap_groups_are_colourings() -> None:
    flat = {"Brain": np.arange(0, 50), "BrainStem": np.arange(10, 20),
            "Eye_L": np.arange(60, 70), "Lens_L": np.arange(62, 64)}  # fmt: skip
    groups = overlap_groups(flat)
    assert len(groups) == 2
    for g in groups:
        idx = np.concatenate([flat[o] for o in g])
        assert len(np.unique(idx)) == len(idx)


# --------------------------------------------------------------------------------- common


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("d1", "Supplementary Table 2 for  sequence parameters .xlsx"),
        ("d2", "HaN-Seg.zip"),
        ("d3", "HNTSMRG24_train.zip"),
        ("d9", "PENGWIN_CT_train_labels.zip"),
        ("d10", "SegRap2023_Training_Set_120cases.zip"),
    ],
)
def test_missing_source_files_are_listed(tmp_path: Path, name: str, expected: str) -> None:
    recipe = get_recipe(name)
    assert isinstance(recipe, PublicRecipe)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecipeError) as err:
        recipe.prepare(tmp_path / "cache", source_dir=tmp_path / "empty")
    assert expected in str(err.value)
    assert recipe.homepage in str(err.value)
    assert not (tmp_path / "cache" / "datasets" / recipe.folder).exists()


def test_extracted_release_is_accepted_instead_of_the_archive(tmp_path: Path) -> None:
    pre = tmp_path / "src" / "HNTSMRG24_train" / "3" / "preRT"
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1:3, 2:4, 2:4] = 1
    write_image(pre / "3_preRT_T2.nii.gz", np.ones((4, 8, 8), np.int16))
    write_image(pre / "3_preRT_mask.nii.gz", mask)
    recipe = HNTSMRG()
    assert recipe.missing(tmp_path / "src") == []
    report = recipe.prepare(tmp_path / "cache", source_dir=tmp_path / "src")
    assert report.built == ["Dataset501_HNTSMRG"]
    again = recipe.prepare(tmp_path / "cache", source_dir=tmp_path / "src")
    assert again.reused == ["Dataset501_HNTSMRG"] and not again.built


def test_recipe_attributes_are_complete() -> None:
    for name in ("d1", "d2", "d3", "d9", "d10"):
        recipe = get_recipe(name)
        assert isinstance(recipe, PublicRecipe)
        for attr in ("name", "paper_id", "folder", "title", "description", "modality",
                     "category", "licence", "citation", "homepage", "download_size"):  # fmt: skip
            assert getattr(recipe, attr), (name, attr)
        assert recipe.paper_id.lower() == name
        for f in recipe.files:
            assert f.url is None or f.url.startswith("https://zenodo.org/records/")
            assert f.url is not None or recipe.access == "manual"
