"""`radioactive datasets list / prepare` for public-dataset recipes, end to end against a local
HTTP server (a small recipe defined here stands in for the paper's datasets)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

import radioactive.data.recipes as recipes
from radioactive.cli import app
from radioactive.data.case import TargetSpec
from radioactive.data.recipes.public import (
    CaseWriter,
    ConvertedCase,
    ConvertResult,
    PublicRecipe,
    SourceFile,
)
from radioactive.data.registry import dataset_roots
from radioactive.errors import DatasetError
from tests.data.test_download import FakeServer

MODULE = __name__


class ToyRecipe(PublicRecipe):
    """Two lesions on a small CT, from two files served over HTTP."""

    name = "toy"
    paper_id = "D99"
    folder = "Dataset999_ToyLesions"
    title = "Toy lesions"
    description = "Two spheres on a synthetic CT."
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="components", connectivity=26)
    licence = "CC BY 4.0"
    citation = "Toy et al. (2024)"
    homepage = "https://example.org/toy"
    download_size = "12 kB"
    access = "http"
    files: Any = ()  # set by the fixture (the server's port is known only then)

    def convert(self, raw: Path, writer: CaseWriter, reporter: Any) -> ConvertResult:
        reporter.begin(1)
        reporter.step("converting toy_001")
        image = sitk.ReadImage(str(raw / "image.nii.gz"))
        label = sitk.ReadImage(str(raw / "label.nii.gz"))
        writer.write("toy_001", image, label)
        return ConvertResult(
            labels={"background": 0, "lesion": 1},
            cases=[ConvertedCase("toy_001", {"image": "image.nii.gz"})],
        )


class OtherToyRecipe(ToyRecipe):
    name = "toy2"
    paper_id = "D98"
    folder = "Dataset998_OtherToy"
    title = "Other toy"


def _volumes(tmp: Path) -> dict[str, bytes]:
    arr = np.zeros((8, 16, 16), dtype=np.int16)
    image = sitk.GetImageFromArray(arr + 40)
    image.SetSpacing((0.8, 0.8, 2.5))
    image.SetOrigin((10.0, -5.0, 30.0))
    lab = np.zeros((8, 16, 16), dtype=np.uint8)
    lab[1:3, 2:5, 2:5] = 1
    lab[5:7, 10:14, 10:14] = 1
    label = sitk.GetImageFromArray(lab)
    label.CopyInformation(image)
    out = {}
    for name, img in (("image.nii.gz", image), ("label.nii.gz", label)):
        sitk.WriteImage(img, str(tmp / name), True)
        out[name] = (tmp / name).read_bytes()
    return out


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    server = FakeServer().start()
    src = tmp_path / "served"
    src.mkdir()
    payload = _volumes(src)
    for cls, prefix in ((ToyRecipe, "/toy/"), (OtherToyRecipe, "/toy2/")):
        files = []
        for name, data in payload.items():
            server.files[prefix + name] = data
            files.append(
                SourceFile(
                    name,
                    url=f"{server.url}{prefix}{name}",
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    how=f"get it from {server.url}{prefix}",
                )
            )
        files.append(SourceFile("README.txt", how="optional notes", optional=True))
        monkeypatch.setattr(cls, "files", tuple(files))
    monkeypatch.setattr(
        recipes,
        "RECIPES",
        {
            "demo": "radioactive.data.recipes.demo:DemoRecipe",
            "toy": f"{MODULE}:ToyRecipe",
            "toy2": f"{MODULE}:OtherToyRecipe",
        },
    )
    monkeypatch.setitem(recipes.ALIASES, "d99", "toy")
    monkeypatch.setenv("RADIOACTIVE_CACHE_DIR", str(tmp_path / "env-cache"))
    # wide consoles: table cells and messages stay on one line
    yield server
    server.stop()


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _rows(table: str) -> dict[str, list[str]]:
    """The body rows of a printed rich table, by their first cell."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines()]
    return {r[0]: r for r in rows if r}


def test_prepare_downloads_converts_and_then_reuses(toy: FakeServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = _run("datasets", "prepare", "D99", "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    folder = cache / "datasets" / "Dataset999_ToyLesions"
    assert _rows(result.stdout)["D99 toy"][1] == "built"
    assert _rows(result.stdout)["D99 toy"][3] == str(folder)
    # raw files where the docs say, complete and verified, no part files left
    downloads = cache / "downloads" / "toy"
    assert sorted(p.name for p in downloads.iterdir()) == ["image.nii.gz", "label.nii.gz"]
    assert (downloads / "label.nii.gz").read_bytes() == toy.files["/toy/label.nii.gz"]
    # the nnU-Net dataset
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]
    assert [p.name for p in (folder / "imagesTr").iterdir()] == ["toy_001_0000.nii.gz"]
    doc = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert doc["labels"] == {"background": 0, "lesion": 1} and doc["numTraining"] == 1
    meta = doc["radioactive"]
    assert meta["paper_id"] == "D99" and meta["licence"] == "CC BY 4.0"
    case = meta["cases"]["toy_001"]
    assert case["targets"] == ["lesion#1", "lesion#2"]  # two components, two instances
    assert case["spacing_mm_zyx"] == pytest.approx([2.5, 0.8, 0.8])
    served = {f["name"]: f for f in meta["source"]["files"]}
    assert (
        served["image.nii.gz"]["sha256"]
        == hashlib.sha256(toy.files["/toy/image.nii.gz"]).hexdigest()
    )
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / "toy_001.nii.gz")))
    assert set(np.unique(label)) == {0, 1} and int(label.sum()) == 2 * 9 + 2 * 16
    # a second run verifies and does nothing else
    n = len(toy.log)
    again = _run("datasets", "prepare", "toy", "--cache-dir", str(cache))
    assert again.exit_code == 0, again.output
    assert _rows(again.stdout)["D99 toy"][1] == "reused"
    assert len(toy.log) == n


def test_source_dir_missing_files_are_listed_exactly(toy: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "by-hand"
    src.mkdir()
    (src / "image.nii.gz").write_bytes(toy.files["/toy/image.nii.gz"])
    cache = tmp_path / "cache"
    result = _run("datasets", "prepare", "toy", "--source-dir", str(src), "--cache-dir", str(cache))
    assert result.exit_code == 2
    text = _flat(result.stderr)
    listed = re.search(r"lacks these files: (.*?) File:", text)
    assert listed is not None, text
    assert listed.group(1) == f"label.nii.gz: get it from {toy.url}/toy/"
    assert str(src) in text and "--source-dir" in text
    assert _rows(result.stdout)["D99 toy"][1] == "failed"
    assert toy.log == []  # a source folder is never completed by downloading
    assert not (cache / "datasets" / "Dataset999_ToyLesions").exists()
    # with every file the dataset is built from the folder alone
    (src / "label.nii.gz").write_bytes(toy.files["/toy/label.nii.gz"])
    result = _run("datasets", "prepare", "toy", "--source-dir", str(src), "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    assert (cache / "datasets" / "Dataset999_ToyLesions" / "dataset.json").is_file()
    assert toy.log == [] and not (cache / "downloads").exists()
    assert sorted(p.name for p in src.iterdir()) == ["image.nii.gz", "label.nii.gz"]


def test_several_datasets_one_failure_keeps_the_others(toy: FakeServer, tmp_path: Path) -> None:
    toy.status["/toy/label.nii.gz"] = 404
    cache = tmp_path / "cache"
    result = _run("datasets", "prepare", "d99", "toy2", "D99", "--cache-dir", str(cache))
    assert result.exit_code == 2
    rows = _rows(result.stdout)
    assert list(rows) == ["D99 toy", "D98 toy2"]  # aliases of one recipe: prepared once
    assert rows["D99 toy"][1] == "failed" and rows["D98 toy2"][1] == "built"
    assert "does not exist (HTTP 404" in rows["D99 toy"][2]
    assert f"{toy.url}/toy/label.nii.gz does not exist (HTTP 404" in _flat(result.stderr)
    assert (cache / "datasets" / "Dataset998_OtherToy" / "dataset.json").is_file()
    assert not (cache / "datasets" / "Dataset999_ToyLesions").exists()
    # the file that did arrive is kept for the next run
    assert (cache / "downloads" / "toy" / "image.nii.gz").is_file()


def test_prepare_refuses_bad_arguments_before_any_work(toy: FakeServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = _run("datasets", "prepare", "toy", "nope", "--cache-dir", str(cache))
    assert result.exit_code == 2 and "unknown dataset 'nope'" in _flat(result.stderr)
    both = ["toy", "toy2", "--source-dir", str(tmp_path), "--cache-dir", str(cache)]
    result = _run("datasets", "prepare", *both)
    assert result.exit_code == 2
    assert "--source-dir holds the files of one dataset, but 2 were named" in _flat(result.stderr)
    result = _run("datasets", "prepare", "demo", "--source-dir", str(tmp_path))
    assert result.exit_code == 2 and "--source-dir does not apply" in _flat(result.stderr)
    assert toy.log == [] and not cache.exists()


def test_list_shows_every_recipe_and_whether_prepared(toy: FakeServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = _run("datasets", "list", "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    rows = {r[1]: r for r in _rows(result.stdout).values()}
    assert rows["toy"] == [
        "D99", "toy", "Toy lesions", "CT", "instance", "CC BY 4.0", "http", "12 kB", "no",
    ]  # fmt: skip
    assert list(rows) == ["toy2", "toy", "demo"]  # in paper order, then the others
    assert rows["demo"][0] == "-" and rows["demo"][2].startswith("Small real CT and MR volumes")
    assert _run("datasets", "prepare", "toy", "--cache-dir", str(cache)).exit_code == 0
    result = _run("datasets", "list", "--cache-dir", str(cache))
    assert _rows(result.stdout)["D99"][-1] == "yes"
    assert _rows(result.stdout)["D98"][-1] == "no"


def test_registry_finds_a_public_dataset_by_any_name(toy: FakeServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as exc:
        dataset_roots("D99", cache)
    assert "not prepared" in exc.value.problem
    assert exc.value.fix == f"run `radioactive datasets prepare toy --cache-dir {cache}`"
    with pytest.raises(DatasetError) as exc:
        dataset_roots("toy")  # the cache from $RADIOACTIVE_CACHE_DIR
    assert "radioactive datasets prepare toy`" in (exc.value.fix or "")
    assert _run("datasets", "prepare", "toy", "--cache-dir", str(cache)).exit_code == 0
    folder = cache / "datasets" / "Dataset999_ToyLesions"
    for name in ("D99", "d99", "toy", "TOY"):
        assert dataset_roots(name, cache) == [folder]
    info = _run("datasets", "info", "d99", "--json", "--cache-dir", str(cache))
    assert info.exit_code == 0, info.output
    summary = json.loads(info.stdout)
    assert summary["n_cases"] == 1 and summary["n_targets"] == 2
