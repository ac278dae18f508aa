"""The recipes D4-D8 (TCIA and IDC sources) on synthetic releases laid out like the sources."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from radioactive.data import Case
from radioactive.data.recipes import get_recipe
from radioactive.data.recipes.public import PublicRecipe
from radioactive.data.volume import load_volume
from radioactive.errors import RecipeError
from tests.data.recipes.dicom_fixtures import (
    SHAPE,
    SPACING,
    SegSpec,
    Study,
    box,
    ct_datasets,
    idc_case,
    nbia_folder,
    seg_dataset,
    tcia_case,
    write_ct,
    write_seg,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

A = box(SHAPE, (1, 2, 2), (4, 8, 8))  # 3 x 6 x 6 = 108 voxels
B = box(SHAPE, (4, 18, 18), (7, 26, 26))  # apart from A
SMALL = box(SHAPE, (6, 2, 28), (8, 4, 30))  # 8 voxels
LIVER = box(SHAPE, (0, 0, 0), (8, 16, 32))
EMPTY = np.zeros(SHAPE, dtype=bool)


def recipe_of(name: str) -> PublicRecipe:
    recipe = get_recipe(name)
    assert isinstance(recipe, PublicRecipe)
    return recipe


def load(root: Path, case_id: str) -> Case:
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    from radioactive.data.case import TargetSpec

    return Case(
        case_id,
        root / "imagesTr" / f"{case_id}_0000.nii.gz",
        root / "labelsTr" / f"{case_id}.nii.gz",
        labels=meta["labels"],
        spec=TargetSpec(**meta["radioactive"]["targets"]),
    )


def label_of(root: Path, case_id: str) -> np.ndarray:
    """The written label in the CT's DICOM index order (z, y, x)."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(root / "labelsTr" / f"{case_id}.nii.gz"))
    assert np.allclose(img.GetSpacing(), SPACING)
    return sitk.GetArrayFromImage(img)


def check_dataset(root: Path, recipe: PublicRecipe, cases: set[str]) -> dict:
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    assert root.name == recipe.folder
    assert {p.name for p in (root / "imagesTr").iterdir()} == {f"{c}_0000.nii.gz" for c in cases}
    assert {p.name for p in (root / "labelsTr").iterdir()} == {f"{c}.nii.gz" for c in cases}
    assert meta["numTraining"] == len(cases) and meta["channel_names"] == {"0": "CT"}
    assert meta["licence"] == recipe.licence and meta["citation"] == recipe.citation
    ra = meta["radioactive"]
    assert ra["paper_id"] == recipe.paper_id and ra["source"]["access"] == recipe.access
    assert set(ra["cases"]) == cases
    for c in cases:
        src = ra["cases"][c]
        assert src["image_series"]["modality"] == "CT" and src["seg_series"]["modality"] == "SEG"
        assert src["seg_series"]["series_uid"] and src["image_series"]["series_uid"]
        img = load_volume(root / "imagesTr" / f"{c}_0000.nii.gz")
        assert img.shape == SHAPE
        assert np.allclose(img.spacing_mm, SPACING[::-1])
    return meta


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("RADIOACTIVE_CACHE_DIR", str(c))
    return c


# ---------------------------------------------------------------------------------- D4


def rider_release(root: Path) -> dict[str, str]:
    """Patient R1 with a test and a retest scan (SEG on a finer grid for the retest), R2 with
    one scan; manual and automatic delineations in each SEG."""
    uids = {}
    test = Study("RIDER-1", study_time="100000")
    retest = Study("RIDER-1", study_time="101500")
    ct, _ = tcia_case(
        root,
        "RIDER-1",
        [SegSpec("GTVp_test_auto", LIVER, automatic=True), SegSpec("GTVp_test_man", A | B)],
        study=test,
    )
    uids["RIDER-1_1"] = ct.series_uid
    ct, _ = tcia_case(
        root,
        "RIDER-1",
        [SegSpec("GTVp_retest_man", A), SegSpec("GTVp_retest_auto", B, automatic=True)],
        study=retest,
        fine_grid=True,
    )
    uids["RIDER-1_2"] = ct.series_uid
    ct, _ = tcia_case(root, "RIDER-2", [SegSpec("Neoplasm, Primary", B)])
    uids["RIDER-2_1"] = ct.series_uid
    return uids


def test_d4_rider_lung_keeps_the_manual_delineation(tmp_path: Path, cache: Path) -> None:
    raw = tmp_path / "raw"
    uids = rider_release(raw)
    recipe = recipe_of("d4")
    report = recipe.prepare(cache, source_dir=raw)
    root = report.root
    meta = check_dataset(root, recipe, set(uids))
    assert meta["labels"] == {"background": 0, "lesion": 1}
    for case_id, ct_uid in uids.items():
        assert meta["radioactive"]["cases"][case_id]["image_series"]["series_uid"] == ct_uid
    assert np.array_equal(label_of(root, "RIDER-1_1"), (A | B).astype(np.uint8))
    assert np.array_equal(label_of(root, "RIDER-1_2"), A.astype(np.uint8))  # from the fine grid
    assert [t.name for t in load(root, "RIDER-1_1").targets] == ["lesion#1", "lesion#2"]
    assert len(load(root, "RIDER-2_1").targets) == 1
    assert meta["radioactive"]["cases"]["RIDER-1_1"]["used_segments"] == ["GTVp_test_man"]
    # a second prepare reuses the verified dataset
    assert recipe.prepare(cache, source_dir=raw).reused == [recipe.folder]


def test_tcia_fetch_lists_the_segs_then_downloads_their_cts(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tmp_path / "server"
    uids = rider_release(server)
    on_server = {p.name: p for p in server.iterdir()}
    seg_uids = sorted(set(on_server) - set(uids.values()))
    calls: list[tuple] = []

    def tcia_list_series(collection, *, modality=None, patient=None):
        calls.append(("list", collection, modality))
        return [{"SeriesInstanceUID": u, "Modality": "SEG"} for u in seg_uids]

    def tcia_download_series(series_uid, dest, progress=None):
        calls.append(("get", series_uid))
        shutil.copytree(on_server[series_uid], Path(dest) / series_uid)
        return Path(dest) / series_uid

    fake = types.ModuleType("radioactive.data.recipes.download")
    fake.tcia_list_series = tcia_list_series  # type: ignore[attr-defined]
    fake.tcia_download_series = tcia_download_series  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "radioactive.data.recipes.download", fake)

    recipe = recipe_of("rider_lung")
    report = recipe.prepare(cache)
    assert calls[0] == ("list", "RIDER Lung CT", "SEG")
    got = [c[1] for c in calls[1:]]
    assert got[: len(seg_uids)] == seg_uids  # the SEGs first
    assert sorted(got[len(seg_uids) :]) == sorted(uids.values())  # then the CTs they reference
    assert set(
        json.loads((report.root / "dataset.json").read_text())["radioactive"]["cases"]
    ) == set(uids)
    calls.clear()
    recipe.prepare(cache, force=True)  # everything present: nothing is downloaded again
    assert calls == [("list", "RIDER Lung CT", "SEG")]


# ---------------------------------------------------------------------------------- D5


def lnq_release(root: Path) -> None:
    """Two patients in the NBIA Data Retriever's layout; one node pair and one single node."""
    for pid, mask in (("lnq2023-0001", A | B), ("lnq2023-0002", B)):
        study = Study(pid)
        ds = ct_datasets(study, description="CHEST W CONTRAST")
        ct = write_ct(nbia_folder(root, "Mediastinal-Lymph-Node-SEG", study, 2, "CHEST"), ds)
        seg = seg_dataset(ct, [SegSpec("lymph node", mask)])
        write_seg(
            nbia_folder(root, "Mediastinal-Lymph-Node-SEG", study, 300, "Seg") / "1-1.dcm", seg
        )


def test_d5_lnq_splits_nodes_into_instances(tmp_path: Path, cache: Path) -> None:
    raw = tmp_path / "raw"
    lnq_release(raw)
    recipe = recipe_of("lnq")
    root = recipe.prepare(cache, source_dir=raw).root
    meta = check_dataset(root, recipe, {"lnq2023-0001", "lnq2023-0002"})
    assert meta["labels"] == {"background": 0, "lymph_node": 1}
    assert len(load(root, "lnq2023-0001").targets) == 2
    assert len(load(root, "lnq2023-0002").targets) == 1
    assert meta["radioactive"]["dropped"] == {}


def test_missing_seg_is_reported_with_what_is_missing(tmp_path: Path, cache: Path) -> None:
    raw = tmp_path / "raw"
    lnq_release(raw)
    for f in raw.rglob("*.dcm"):
        if f.parent.name.startswith("300.") and "lnq2023-0002" in str(f):
            f.unlink()
    with pytest.raises(RecipeError) as err:
        recipe_of("lnq").prepare(cache, source_dir=raw)
    msg = str(err.value)
    assert "SEG series of patient lnq2023-0002" in msg and "lnq2023-0001" not in msg
    assert err.value.path == raw and "Mediastinal-Lymph-Node-SEG" in msg
    assert not (cache / "datasets" / "Dataset911_LNQ").exists()


def test_missing_referenced_ct_is_reported(tmp_path: Path, cache: Path) -> None:
    raw = tmp_path / "raw"
    uids = rider_release(raw)
    shutil.rmtree(raw / uids["RIDER-2_1"])
    with pytest.raises(RecipeError, match=f"CT series {uids['RIDER-2_1']} of patient RIDER-2"):
        recipe_of("d4").prepare(cache, source_dir=raw)


# ---------------------------------------------------------------------------------- D6

IDC = "colorectal_liver_metastases"


def crlm_release(root: Path) -> None:
    anatomy = [SegSpec("Liver", LIVER, False), SegSpec("Hepatic", SMALL, False)]
    idc_case(
        root, IDC, Study("CRLM-CT-1001"), [*anatomy, SegSpec("Tumor_1", A), SegSpec("Tumor_2", B)]
    )
    idc_case(
        root, IDC, Study("CRLM-CT-1002"), [*anatomy, SegSpec("Tumor_1", A), SegSpec("Tumor_2", A)]
    )
    idc_case(root, IDC, Study("CRLM-CT-1020"), [*anatomy, SegSpec("Tumor_1", B)])  # listed
    idc_case(
        root,
        IDC,
        Study("CRLM-CT-1003"),
        [SegSpec("Portal", SMALL, False), SegSpec("Tumor_1", B)],
        fine_grid=True,
    )


def test_d6_colorectal_keeps_tumours_and_drops_overlapping_cases(
    tmp_path: Path, cache: Path
) -> None:
    raw = tmp_path / "raw"
    crlm_release(raw)
    recipe = recipe_of("d6")
    root = recipe.prepare(cache, source_dir=raw).root
    meta = check_dataset(root, recipe, {"CRLM-CT-1001", "CRLM-CT-1003"})
    assert meta["labels"] == {"background": 0, "metastasis": 1}
    assert np.array_equal(label_of(root, "CRLM-CT-1001"), (A | B).astype(np.uint8))  # no liver
    assert len(load(root, "CRLM-CT-1001").targets) == 2
    assert np.array_equal(label_of(root, "CRLM-CT-1003"), B.astype(np.uint8))
    dropped = meta["radioactive"]["dropped"]
    assert set(dropped) == {"CRLM-CT-1002", "CRLM-CT-1020"}
    assert "overlap" in dropped["CRLM-CT-1002"] and "paper" in dropped["CRLM-CT-1020"]
    src = meta["radioactive"]["cases"]["CRLM-CT-1001"]
    assert src["tumour_segments"] == ["Tumor_1", "Tumor_2"]


def test_d6_exclusion_list_has_the_papers_26_cases() -> None:
    from radioactive.data.recipes.paper.colorectal import EXCLUDED

    assert len(EXCLUDED) == 26 and 197 - len(EXCLUDED) == 171


def test_idc_fetch_downloads_the_collection(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def idc_download(collection_id, dest, *, series_uids=None):
        calls.append((collection_id, Path(dest), series_uids))
        crlm_release(Path(dest))
        return Path(dest)

    fake = types.ModuleType("radioactive.data.recipes.download")
    fake.idc_download = idc_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "radioactive.data.recipes.download", fake)
    recipe = recipe_of("colorectal_liver_mets")
    report = recipe.prepare(cache)
    assert calls == [(IDC, cache / "downloads" / "colorectal_liver_mets", None)]
    assert (report.root / "labelsTr" / "CRLM-CT-1001.nii.gz").is_file()


# ---------------------------------------------------------------------------------- D7


def test_d7_adrenal_removes_components_under_30_voxels(tmp_path: Path, cache: Path) -> None:
    raw = tmp_path / "raw"
    idc_case(
        raw, "adrenal_acc_ki67_seg", Study("Adrenal_Ki67_Seg_001"), [SegSpec("Tumor", A | SMALL)]
    )
    idc_case(raw, "adrenal_acc_ki67_seg", Study("Adrenal_Ki67_Seg_002"), [SegSpec("Tumor", SMALL)])
    recipe = recipe_of("d7")
    root = recipe.prepare(cache, source_dir=raw).root
    meta = check_dataset(root, recipe, {"Adrenal_Ki67_Seg_001"})
    assert np.array_equal(label_of(root, "Adrenal_Ki67_Seg_001"), A.astype(np.uint8))
    assert len(load(root, "Adrenal_Ki67_Seg_001").targets) == 1
    src = meta["radioactive"]["cases"]["Adrenal_Ki67_Seg_001"]
    assert src["small_components_removed"] == 1 and src["components_kept"] == 1
    assert "smaller than 30" in meta["radioactive"]["dropped"]["Adrenal_Ki67_Seg_002"]
    assert meta["radioactive"]["targets"]["min_voxels"] == 30


# ---------------------------------------------------------------------------------- D8

HCC = "hcc_tace_seg"
HCC_SEGMENTS = [
    SegSpec("Liver", LIVER, False),
    SegSpec("Mass", A),
    SegSpec("Portal vein", SMALL, False),
    SegSpec("Abdominal aorta", box(SHAPE, (0, 28, 28), (8, 31, 31)), False),
]


def hcc_release(root: Path) -> dict[str, str]:
    """HCC_004: two qualifying timepoints (the earlier must win); HCC_012: no 'Recon 3' series;
    HCC_001: not among the paper's 66 patients."""
    early, late = Study("HCC_004", study_date="20100101"), Study("HCC_004", study_date="20100601")
    idc_case(root, HCC, early, None, description="Recon 2: LIVER 3 PHASE (AP)", series_number=3)
    ct, _ = idc_case(
        root, HCC, early, HCC_SEGMENTS, description="Recon 3: LIVER 3 PHASE (CAP)", series_number=4
    )
    idc_case(
        root,
        HCC,
        late,
        [SegSpec("Liver", LIVER, False), SegSpec("Mass", B)],
        description="Recon 3: LIVER",
    )
    idc_case(root, HCC, Study("HCC_012"), HCC_SEGMENTS, description="LIVER 3 PHASE (CAP)")
    idc_case(root, HCC, Study("HCC_001"), HCC_SEGMENTS, description="Recon 3: LIVER")
    return {"HCC_004": ct.series_uid}


def test_d8_hcc_tace_one_dataset_with_liver_organ_and_lesion_instances(
    tmp_path: Path, cache: Path
) -> None:
    raw = tmp_path / "raw"
    chosen = hcc_release(raw)
    recipe = recipe_of("d8")
    root = recipe.prepare(cache, source_dir=raw).root
    meta = check_dataset(root, recipe, {"HCC_004"})
    assert meta["labels"] == {"background": 0, "liver": 1, "hcc": 2}
    src = meta["radioactive"]["cases"]["HCC_004"]
    assert src["image_series"]["series_uid"] == chosen["HCC_004"]
    assert src["timepoint"]["study_date"] == "20100101"
    assert "Recon 3" in src["timepoint"]["ct_description"]
    lab = label_of(root, "HCC_004")
    expected = np.zeros(SHAPE, np.uint8)
    expected[LIVER | SMALL] = 1  # liver with the portal vein, as in the reference
    expected[A] = 2
    assert np.array_equal(lab, expected)
    case = load(root, "HCC_004")
    kinds = sorted((t.name, t.kind) for t in case.targets)
    assert kinds == [("hcc#1", "instance"), ("liver", "organ")]
    liver = next(t for t in case.targets if t.name == "liver")
    hcc = next(t for t in case.targets if t.name == "hcc#1")
    # the liver organ target contains its tumour (as in the paper), the lesion target does not
    # contain the liver
    canonical = case.label.array
    assert liver.voxels == int(np.count_nonzero(canonical > 0))
    assert np.array_equal(liver.mask, canonical > 0) and np.array_equal(hcc.mask, canonical == 2)
    dropped = meta["radioactive"]["dropped"]
    assert set(dropped) == {"HCC_001", "HCC_012"}
    assert "66" in dropped["HCC_001"] and "Recon 3" in dropped["HCC_012"]


# ---------------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("alias", "cls", "folder", "access"),
    [
        ("d4", "RiderLungCT", "Dataset930_RIDERLungCT", "tcia"),
        ("d5", "LNQ", "Dataset911_LNQ", "tcia"),
        ("d6", "ColorectalLiverMets", "Dataset912_ColorectalLiverMetastases", "idc"),
        ("d7", "AdrenalACC", "Dataset913_AdrenalACCKi67", "idc"),
        ("d8", "HCCTACE", "Dataset920_HCCTACE", "idc"),
    ],
)
def test_recipes_are_registered_with_their_source_facts(alias, cls, folder, access) -> None:
    recipe = recipe_of(alias)
    assert type(recipe).__name__ == cls and recipe.folder == folder
    assert isinstance(recipe, PublicRecipe)
    assert recipe.access == access and recipe.paper_id == alias.upper()
    for attr in ("title", "description", "licence", "citation", "homepage", "download_size"):
        assert getattr(recipe, attr) and getattr(recipe, attr) != "unknown", attr
    assert "doi.org/10.7937/" in recipe.citation
    assert recipe.info()["folder"] == folder
