"""The shared machinery of the recipes for the paper's public datasets (PROTOCOL §7).

A :class:`PublicRecipe` describes one dataset: where its files come from (:class:`SourceFile`
entries fetched over HTTP, or a collection on TCIA / IDC, or files a user downloads by hand),
its licence and citation, and a :meth:`PublicRecipe.convert` method that turns the raw files into
cases. The base class does everything else the same way for every dataset:

* gets the raw files: from ``--source-dir`` when given (checked, never modified), otherwise from
  ``<cache>/downloads/<name>/`` where they are downloaded (resumable, verified) when missing;
* reports precisely what is missing and how to obtain it when it cannot get it;
* converts in a staging folder next to the final one, writes ``dataset.json`` (labels, target
  rules, modality, licence, citation, source files and their sha256, the sha256 of every produced
  file) and renames the folder into place, so an interrupted run leaves no half-written dataset;
* does no work when the prepared dataset is complete and its checksums match.

Prepared datasets live in ``<cache>/datasets/<folder>`` (nnU-Net raw layout).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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
from radioactive.errors import RecipeError

#: Bump when the shared output format changes; every public dataset is then rebuilt.
BASE_VERSION = "1"


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset's release.

    Attributes:
        name: its path relative to the source folder (``--source-dir`` or the download folder).
        url: a direct HTTP(S) address, or ``None`` when the file cannot be fetched without a
            login or an API client (the user then downloads it by hand; see ``how``).
        sha256, size: what the file must be, where the publisher states it (``None``: unknown;
            the file is then checked for presence only and its sha256 is recorded).
        how: how a user obtains the file by hand (shown when it is missing).
        optional: a file whose absence is reported but does not stop the preparation.
    """

    name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    how: str = ""
    optional: bool = False


@dataclass
class ConvertedCase:
    """What :meth:`PublicRecipe.convert` reports for one case it wrote."""

    case_id: str
    source: dict[str, Any] = field(default_factory=dict)  # which raw files, series UIDs, notes


@dataclass
class ConvertResult:
    """What :meth:`PublicRecipe.convert` produced."""

    labels: dict[str, int]  # label name -> value, "background": 0 included
    cases: list[ConvertedCase]
    #: case id -> why it was dropped (the conversion rules of PROTOCOL §7)
    dropped: dict[str, str] = field(default_factory=dict)


class CaseWriter:
    """Writes cases into the nnU-Net layout of a staging folder.

    Images and labels are written with SimpleITK so their geometry is kept exactly; a label on
    another grid than its image is resampled onto the image grid with nearest neighbour.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
        (folder / "labelsTr").mkdir(parents=True, exist_ok=True)

    def image_path(self, case_id: str) -> Path:
        return self.folder / "imagesTr" / f"{case_id}_0000.nii.gz"

    def label_path(self, case_id: str) -> Path:
        return self.folder / "labelsTr" / f"{case_id}.nii.gz"

    def write(self, case_id: str, image: Any, label: Any) -> None:
        """Write one case. ``image`` and ``label`` are ``SimpleITK.Image`` objects.

        ``label`` may also be a numpy array in SimpleITK's (z, y, x) index order on the image's
        grid. Label values must be non-negative integers; they are stored as uint8 (uint16 when
        a value exceeds 255).
        """
        import SimpleITK as sitk

        if isinstance(label, np.ndarray):
            arr = label
            label = sitk.GetImageFromArray(arr)
            label.CopyInformation(image)
        if not same_grid(image, label):
            label = resample_nearest(label, image)
        arr = sitk.GetArrayViewFromImage(label)
        if arr.size and (arr.min() < 0 or not np.all(np.mod(arr, 1) == 0)):
            raise RecipeError(
                f"case {case_id}: the label holds values that are not non-negative integers",
                fix="report this as a bug of the recipe",
            )
        pixel = sitk.sitkUInt8 if (arr.max() if arr.size else 0) <= 255 else sitk.sitkUInt16
        sitk.WriteImage(sitk.Cast(label, pixel), str(self.label_path(case_id)), True)
        sitk.WriteImage(image, str(self.image_path(case_id)), True)


def same_grid(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """Whether two SimpleITK images share size, spacing, origin and direction."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol * 10)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    )


def resample_nearest(label: Any, reference: Any) -> Any:
    """``label`` resampled onto ``reference``'s grid with nearest neighbour (outside: 0)."""
    import SimpleITK as sitk

    return sitk.Resample(
        label, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, label.GetPixelID()
    )


class PublicRecipe:
    """Base class of the public dataset recipes; subclasses fill in the class attributes and
    implement :meth:`convert` (and, for TCIA / IDC sources, :meth:`fetch`)."""

    #: registry name (lower case, e.g. ``"ms_flair"``); also accepted: ``paper_id`` and ``folder``
    name: ClassVar[str]
    #: the paper's identifier, ``"D1"`` … ``"D10"``
    paper_id: ClassVar[str]
    #: nnU-Net folder name, e.g. ``"Dataset201_MSFLAIR"``
    folder: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    modality: ClassVar[str]  # "CT", "MRI FLAIR", "MRI T1", ...
    category: ClassVar[str]  # "pathology", "organ" or "mixed"
    targets: ClassVar[TargetSpec]
    licence: ClassVar[str]
    citation: ClassVar[str]
    homepage: ClassVar[str]
    #: approximate size of the download, for ``datasets list``
    download_size: ClassVar[str] = "unknown"
    #: bump when this recipe's output changes
    version: ClassVar[str] = "1"
    #: "http" (files in ``files``), "tcia", "idc" or "manual"
    access: ClassVar[str] = "http"
    files: ClassVar[tuple[SourceFile, ...]] = ()
    #: identifiers of the public collections the images come from (empty: unknown), compared
    #: with models' training sets (:mod:`radioactive.data.collections`); not part of any output
    collections: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ what subclasses write

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        """Convert the raw release in ``raw`` into cases written with ``writer``."""
        raise NotImplementedError

    def fetch(self, dest: Path, reporter: Reporter) -> None:
        """Download what ``files`` does not describe (TCIA / IDC collections) into ``dest``.

        The default downloads every :class:`SourceFile` with a URL (resumable, verified).
        """
        from radioactive.data.remote import download

        for f in self.files:
            if f.url is None or (dest / f.name).is_file():
                continue
            reporter.step(f"downloading {f.name}")
            download(f.url, dest / f.name, sha256=f.sha256, size=f.size)

    def missing(self, raw: Path) -> list[SourceFile]:
        """The required source files absent from ``raw`` (subclasses may check more)."""
        return [f for f in self.files if not f.optional and not (raw / f.name).exists()]

    # ------------------------------------------------------------------ shared machinery

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, self.paper_id.lower(), self.folder.lower())

    def location(self, cache: Path) -> Path:
        return cache / "datasets" / self.folder

    def download_dir(self, cache: Path) -> Path:
        return downloads_dir(cache) / self.name

    def is_prepared(self, cache: Path) -> bool:
        return self._valid(self.location(cache))

    def _valid(self, folder: Path) -> bool:
        return is_verified(folder, f"{BASE_VERSION}.{self.version}")

    def _missing_error(self, raw: Path, missing: Iterable[SourceFile], given: bool) -> RecipeError:
        lines = [f"  {f.name}" + (f": {f.how}" if f.how else "") for f in missing]
        where = "the source folder" if given else "the download folder"
        return RecipeError(
            f"{self.paper_id} {self.title}: {where} lacks these files:\n" + "\n".join(lines),
            path=raw,
            fix=f"download them from {self.homepage} (licence: {self.licence}) into one folder "
            f"and run `radioactive datasets prepare {self.name} --source-dir FOLDER`",
        )

    def prepare(
        self,
        cache: Path,
        reporter: Reporter = SILENT,
        *,
        force: bool = False,
        source_dir: Path | None = None,
    ) -> PrepareReport:
        """Get the raw files, convert them and write the dataset; reuse a verified one."""
        t0 = time.perf_counter()
        final = self.location(cache)
        report = PrepareReport(root=final)
        if not force and self._valid(final):
            report.reused.append(self.folder)
            return report
        if source_dir is not None:
            raw = Path(source_dir).expanduser()
            if not raw.is_dir():
                raise RecipeError(
                    "the source folder does not exist",
                    path=raw,
                    fix=f"pass the folder holding the files downloaded from {self.homepage}",
                )
        else:
            raw = self.download_dir(cache)
            raw.mkdir(parents=True, exist_ok=True)
            if self.access == "manual" and self.missing(raw):
                raise self._missing_error(raw, self.missing(raw), given=False)
            self.fetch(raw, reporter)
        missing = self.missing(raw)
        if missing:
            raise self._missing_error(raw, missing, given=source_dir is not None)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".staging-{self.folder}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with staged_dir(final, prefix=f".staging-{self.folder}-") as staging:
            result = self.convert(raw, CaseWriter(staging), reporter)
            if not result.cases:
                raise RecipeError(
                    f"{self.paper_id} {self.title}: no case could be converted",
                    path=raw,
                    fix="check that the source folder holds the dataset's release as downloaded",
                )
            cases_meta = self._check_cases(staging, result)
            self._write_dataset_json(staging, raw, result, cases_meta)
        report.built.append(self.folder)
        report.seconds = time.perf_counter() - t0
        return report

    def _check_cases(self, staging: Path, result: ConvertResult) -> dict[str, dict[str, Any]]:
        writer = CaseWriter(staging)
        out: dict[str, dict[str, Any]] = {}
        for c in result.cases:
            case = Case(
                c.case_id,
                writer.image_path(c.case_id),
                writer.label_path(c.case_id),
                labels=result.labels,
                spec=self.targets,
            )
            out[c.case_id] = {**c.source, **case_record(case, self.name)}
        return out

    def _source_record(self, raw: Path) -> list[dict[str, Any]]:
        record = []
        for f in self.files:
            p = raw / f.name
            entry: dict[str, Any] = {"name": f.name, "url": f.url}
            if p.is_file():
                entry["sha256"] = sha256_file(p)
                entry["size"] = p.stat().st_size
            record.append(entry)
        return record

    def _write_dataset_json(
        self,
        folder: Path,
        raw: Path,
        result: ConvertResult,
        cases: Mapping[str, dict[str, Any]],
    ) -> None:
        files = file_checksums(folder)
        doc = {
            "name": self.folder.split("_", 1)[-1],
            "description": self.description,
            "channel_names": {"0": self.modality},
            "labels": result.labels,
            "numTraining": len(result.cases),
            "file_ending": ".nii.gz",
            "licence": self.licence,
            "reference": self.homepage,
            "citation": self.citation,
            "radioactive": {
                "recipe": self.name,
                "recipe_version": f"{BASE_VERSION}.{self.version}",
                "paper_id": self.paper_id,
                "modality": self.modality,
                "category": self.category,
                "targets": self.targets.model_dump(mode="json"),
                "licence": self.licence,
                "citation": self.citation,
                "source": {
                    "access": self.access,
                    "homepage": self.homepage,
                    "files": self._source_record(raw),
                },
                "dropped": result.dropped,
                "cases": dict(cases),
                "files": files,
            },
        }
        (folder / "dataset.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def info(self) -> dict[str, Any]:
        """What ``datasets list`` shows."""
        return {
            "name": self.name,
            "paper_id": self.paper_id,
            "folder": self.folder,
            "title": self.title,
            "modality": self.modality,
            "category": self.category,
            "targets": self.targets.type
            if not self.targets.label_types
            else ", ".join(sorted(set(self.targets.label_types.values()) | {self.targets.type})),
            "licence": self.licence,
            "access": self.access,
            "download_size": self.download_size,
        }
