"""D1: multiple-sclerosis lesions on brain FLAIR MR (Mendeley Data ``8bctsm8jz7``, version 1).

Source facts:

* Release: "Brain MRI Dataset of Multiple Sclerosis with Consensus Manual Lesion Segmentation and
  Patient Meta Information", https://data.mendeley.com/datasets/8bctsm8jz7/1 (dataset DOI
  10.17632/8bctsm8jz7.1), described in a Data in Brief article (2022,
  https://www.sciencedirect.com/science/article/pii/S235234092200347X).
* Layout (as the paper's reference scripts read it): a top folder of that title holding one folder
  per patient, ``Patient-<n>/<n>-Flair.nii`` and ``Patient-<n>/<n>-LesionSeg-Flair.nii`` (other
  sequences sit next to them and are not used), and the metadata workbook
  ``Supplementary Table 2 for  sequence parameters .xlsx`` (two spaces after "for"). Its first
  sheet has a two-row header: a group row naming the sequence (``FLAIR``, ...) above a row of
  column names (``ID``, ``Spacing Between Slices``, ...).
* The FLAIR NIfTI headers carry a wrong through-plane spacing; the spacing of the third voxel axis
  (the slice axis of these axial series) is replaced by the workbook's FLAIR "Spacing Between
  Slices" of that patient (PROTOCOL §7). A patient without such a value is dropped.
* Lesions are instance targets: 26-connected components of the binarised lesion mask.
* Licence: Mendeley Data publishes its datasets under CC BY 4.0; the licence of this record was not
  confirmed here; check the record page.
* Access: Mendeley offers a "Download All" archive on the record page; no stable direct address
  for the archive or its files was established, so the files are obtained by hand ("manual").
  Any archive or extracted folder placed in the source folder is found (zip archives are read in
  place). Published checksums: none known.
* Without ``openpyxl`` (not a dependency) the workbook is read with the standard library; a CSV
  export of the sheet with the same header rows is accepted as well.

This module also holds :class:`Release`, the reader of a release folder (loose files and zip
archives alike) that the recipes of D1, D2, D3, D9 and D10 share.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from xml.etree import ElementTree

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import (
    CaseWriter,
    ConvertedCase,
    ConvertResult,
    PublicRecipe,
    SourceFile,
)
from radioactive.errors import RecipeError

# ---------------------------------------------------------------------------------------------
# reading a release folder: loose files and zip archives alike


@dataclass(frozen=True)
class Entry:
    """One file of a release: loose in the source folder or a member of a zip archive there.

    Attributes:
        path: POSIX path inside its container (relative to the source folder, or the member name).
        archive: the zip archive holding it, ``None`` for a loose file.
    """

    path: str
    archive: Path | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def where(self, raw: Path) -> str:
        """How the entry is named to a user (``archive.zip!/member`` for archive members)."""
        if self.archive is None:
            return self.path
        try:
            arch = self.archive.relative_to(raw).as_posix()
        except ValueError:
            arch = str(self.archive)
        return f"{arch}!/{self.path}"


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class Release:
    """The files of a release in a source folder, whether extracted or still in zip archives.

    Loose files come first in :meth:`find`, so an extracted copy wins over its archive. Archive
    members are extracted one at a time into a scratch folder when a reader needs a path
    (:meth:`local`) and deleted again afterwards; the source folder is never modified.

    Args:
        raw: the source folder.
        password_env: environment variable holding the password of encrypted archives.
        scratch_dir: where archive members are extracted (default: the system's temporary folder).
    """

    def __init__(self, raw: Path, password_env: str | None = None, scratch_dir: Path | None = None):
        self.raw = raw
        self.password_env = password_env
        self.scratch_dir = scratch_dir
        self.entries: list[Entry] = []
        self._zips: dict[Path, zipfile.ZipFile] = {}
        self._scratch: Path | None = None
        archives: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(raw):
            dirnames[:] = sorted(d for d in dirnames if not _skipped((d,)))
            here = Path(dirpath)
            for fname in sorted(filenames):
                if _skipped((fname,)):
                    continue
                p = here / fname
                if fname.lower().endswith(".zip"):
                    archives.append(p)
                else:
                    self.entries.append(Entry(p.relative_to(raw).as_posix()))
        for arch in archives:
            try:
                zf = zipfile.ZipFile(arch)
            except (OSError, zipfile.BadZipFile) as exc:
                raise RecipeError(
                    f"cannot read the zip archive: {exc}",
                    path=arch,
                    fix="download the archive again (it is probably incomplete)",
                ) from exc
            self._zips[arch] = zf
            for info in zf.infolist():
                if info.is_dir() or _skipped(PurePosixPath(info.filename).parts):
                    continue
                self.entries.append(Entry(info.filename, arch))

    def __enter__(self) -> Release:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def find(self, pattern: str | re.Pattern[str]) -> list[tuple[Entry, re.Match[str]]]:
        """Entries whose path matches ``pattern`` (``re.search``), loose files first."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        out = []
        for e in self.entries:
            m = rx.search(e.path)
            if m is not None:
                out.append((e, m))
        return out

    def _password(self) -> bytes | None:
        if self.password_env and os.environ.get(self.password_env):
            return os.environ[self.password_env].encode("utf-8")
        return None

    @contextmanager
    def local(self, entry: Entry) -> Iterator[Path]:
        """A filesystem path holding ``entry`` (an archive member is extracted for the duration)."""
        if entry.archive is None:
            yield self.raw / entry.path
            return
        if self._scratch is None:
            self._scratch = Path(
                tempfile.mkdtemp(prefix=".radioactive-release-", dir=self.scratch_dir)
            )
        name = entry.name
        dest = Path(tempfile.mkdtemp(dir=self._scratch)) / name
        zf = self._zips[entry.archive]
        try:
            with zf.open(entry.path, pwd=self._password()) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (RuntimeError, NotImplementedError) as exc:
            env = self.password_env
            raise RecipeError(
                f"cannot extract {entry.path}: {exc}",
                path=entry.archive,
                fix=(f"set ${env} to the archive's password, or " if env else "")
                + "extract the archive yourself (e.g. with 7-Zip) next to it and run again",
            ) from exc
        except (OSError, zipfile.BadZipFile) as exc:
            raise RecipeError(
                f"cannot extract {entry.path}: {exc}",
                path=entry.archive,
                fix="download the archive again (it is probably damaged)",
            ) from exc
        try:
            yield dest
        finally:
            shutil.rmtree(dest.parent, ignore_errors=True)

    def read_image(self, entry: Entry) -> Any:
        """The entry read with SimpleITK."""
        import SimpleITK as sitk

        with self.local(entry) as p:
            try:
                return sitk.ReadImage(str(p))
            except RuntimeError as exc:
                raise RecipeError(
                    f"cannot read {entry.where(self.raw)} as an image: {exc}",
                    path=self.raw,
                    fix="check that the file is complete (download or extract it again)",
                ) from exc


def missing_by_markers(
    raw: Path, files: tuple[SourceFile, ...], markers: Mapping[str, str], password_env: str | None
) -> list[SourceFile]:
    """The required ``files`` that are neither in ``raw`` nor extracted there.

    A file counts as present when it lies in ``raw`` or when some loose file matches its marker
    (a regular expression over the path relative to ``raw``): the user extracted it.
    """
    if not raw.is_dir():
        return [f for f in files if not f.optional]
    out = []
    release: Release | None = None
    try:
        for f in files:
            if f.optional or (raw / f.name).exists():
                continue
            marker = markers.get(f.name)
            if marker is not None:
                if release is None:
                    release = Release(raw, password_env)
                rx = re.compile(marker)
                if any(e.archive is None and rx.search(e.path) for e in release.entries):
                    continue
            out.append(f)
    finally:
        if release is not None:
            release.close()
    return out


def to_uint8_mask(arr: np.ndarray) -> np.ndarray:
    return (np.asarray(arr) > 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# the metadata workbook

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _col_index(ref: str) -> int:
    letters = "".join(ch for ch in ref if ch.isalpha())
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def read_xlsx_rows(path: Path) -> list[list[str]]:
    """The cells of the first worksheet of an .xlsx workbook as text, row by row.

    Shared strings, inline strings and numbers are read; formulas give their cached value.
    Standard library only (the workbook is a zip of XML parts).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                root = ElementTree.fromstring(zf.read("xl/sharedStrings.xml"))
                for si in root.iter(f"{_NS_MAIN}si"):
                    shared.append("".join(t.text or "" for t in si.iter(f"{_NS_MAIN}t")))
            wb = ElementTree.fromstring(zf.read("xl/workbook.xml"))
            sheet = next(wb.iter(f"{_NS_MAIN}sheet"))
            rid = sheet.get(f"{_NS_REL}id")
            target = "worksheets/sheet1.xml"
            if "xl/_rels/workbook.xml.rels" in names:
                rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
                for rel in rels.iter(f"{_NS_PKG_REL}Relationship"):
                    if rel.get("Id") == rid:
                        target = rel.get("Target", target)
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            ws = ElementTree.fromstring(zf.read(part))
    except (OSError, KeyError, StopIteration, zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise RecipeError(
            f"cannot read the workbook: {exc}",
            path=path,
            fix="download the metadata workbook again, or save its first sheet as CSV next to it",
        ) from exc
    rows: list[list[str]] = []
    for row in ws.iter(f"{_NS_MAIN}row"):
        cells: dict[int, str] = {}
        for k, c in enumerate(row.iter(f"{_NS_MAIN}c")):
            ref = c.get("r")
            col = _col_index(ref) if ref else k
            kind = c.get("t", "n")
            if kind == "inlineStr":
                text = "".join(t.text or "" for t in c.iter(f"{_NS_MAIN}t"))
            else:
                v = c.find(f"{_NS_MAIN}v")
                text = (v.text or "") if v is not None else ""
                if kind == "s" and text:
                    text = shared[int(text)]
            cells[col] = text
        width = max(cells) + 1 if cells else 0
        rows.append([cells.get(i, "") for i in range(width)])
    return rows


def read_csv_rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _norm(s: str) -> str:
    return " ".join(s.replace("\n", " ").split()).lower()


def flair_spacing_from_rows(rows: list[list[str]], source: str) -> dict[int, float]:
    """Patient id -> FLAIR "Spacing Between Slices" (mm) from the sheet's rows.

    The header row is the first holding a cell "ID"; the spacing column is the one named
    "Spacing Between Slices" that lies under the group "FLAIR" of the row above (group names are
    carried to the right over merged cells), or whose own name mentions FLAIR.
    """
    h = next((i for i, row in enumerate(rows) if any(_norm(c) == "id" for c in row)), None)
    if h is None:
        raise RecipeError(
            "the metadata sheet has no column named ID",
            path=Path(source),
            fix="use the release's 'Supplementary Table 2 for  sequence parameters .xlsx'",
        )
    header = rows[h]
    id_col = next(i for i, c in enumerate(header) if _norm(c) == "id")
    groups: list[str] = []
    above = rows[h - 1] if h > 0 else []
    current = ""
    for i in range(len(header)):
        cell = above[i] if i < len(above) else ""
        current = cell if cell.strip() else current
        groups.append(_norm(current))
    spacing_col = None
    for i, c in enumerate(header):
        name = _norm(c)
        if "spacing between slices" in name and ("flair" in name or "flair" in groups[i]):
            spacing_col = i
            break
    if spacing_col is None:
        raise RecipeError(
            "the metadata sheet has no FLAIR 'Spacing Between Slices' column",
            path=Path(source),
            fix="use the release's 'Supplementary Table 2 for  sequence parameters .xlsx'",
        )
    out: dict[int, float] = {}
    for row in rows[h + 1 :]:
        if max(id_col, spacing_col) >= len(row):
            continue
        try:
            pid = int(float(row[id_col]))
            value = float(row[spacing_col])
        except ValueError:
            continue
        if value > 0:
            out[pid] = value
    return out


# ---------------------------------------------------------------------------------------------
# the recipe

TITLE = (
    "Brain MRI Dataset of Multiple Sclerosis with Consensus Manual Lesion Segmentation and "
    "Patient Meta Information"
)
SHEET_NAME = "Supplementary Table 2 for  sequence parameters .xlsx"
_SHEET_RE = re.compile(r"(?i)(?:^|/)[^/]*sequence parameters[^/]*\.(?:xlsx|csv)$")
_FLAIR_RE = re.compile(r"(?:^|/)Patient-(\d+)/(\d+)-Flair\.nii(?:\.gz)?$")
_SEG_RE = re.compile(r"(?:^|/)Patient-(\d+)/(\d+)-LesionSeg-Flair\.nii(?:\.gz)?$")
_HOW = (
    "open https://data.mendeley.com/datasets/8bctsm8jz7/1, press 'Download All', and put the "
    "archive (or its extracted folder) into the source folder"
)


class MSFlair(PublicRecipe):
    """D1 MS FLAIR: lesion instances, slice spacing from the release's metadata workbook."""

    name = "ms_flair"
    paper_id = "D1"
    folder = "Dataset201_MSFLAIR"
    title = "MS FLAIR"
    description = (
        "Multiple-sclerosis lesions on brain FLAIR MR (Mendeley 8bctsm8jz7 v1); through-plane "
        "spacing from the release's metadata workbook; lesions as connected components."
    )
    modality = "MRI FLAIR"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="components", connectivity=26)
    licence = "CC BY 4.0 (Mendeley Data; confirm on the record page)"
    citation = (
        "Muslim AM, Mashohor S, Al Gawwam G, Mahmud R, et al. Brain MRI dataset of multiple "
        "sclerosis with consensus manual lesion segmentation and patient meta information. "
        "Data in Brief, 2022. Data: Mendeley Data, V1, doi:10.17632/8bctsm8jz7.1"
    )
    homepage = "https://data.mendeley.com/datasets/8bctsm8jz7/1"
    download_size = "0.7 GB"
    access = "manual"
    files: ClassVar[tuple[SourceFile, ...]] = (SourceFile(name=TITLE, url=None, how=_HOW),)

    def missing(self, raw: Path) -> list[SourceFile]:
        if not raw.is_dir():
            return list(self.files)
        out = []
        with Release(raw) as rel:
            if not rel.find(_SHEET_RE):
                out.append(SourceFile(SHEET_NAME, how="the metadata workbook; " + _HOW))
            if not rel.find(_FLAIR_RE):
                out.append(SourceFile("Patient-<n>/<n>-Flair.nii", how="the FLAIR images; " + _HOW))
        return out

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        import SimpleITK as sitk

        with Release(raw, scratch_dir=writer.folder.parent) as rel:
            sheets = rel.find(_SHEET_RE)
            sheets.sort(key=lambda em: (not em[0].name.lower().endswith(".xlsx"), em[0].path))
            sheet = sheets[0][0]
            with rel.local(sheet) as p:
                rows = read_xlsx_rows(p) if p.suffix.lower() == ".xlsx" else read_csv_rows(p)
            spacing = flair_spacing_from_rows(rows, sheet.where(raw))
            flairs: dict[int, Entry] = {}
            for e, m in rel.find(_FLAIR_RE):
                if m.group(1) == m.group(2):
                    flairs.setdefault(int(m.group(1)), e)
            segs: dict[int, Entry] = {}
            for e, m in rel.find(_SEG_RE):
                if m.group(1) == m.group(2):
                    segs.setdefault(int(m.group(1)), e)
            reporter.begin(len(flairs))
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            for pid in sorted(flairs):
                case_id = f"ms_{pid:03d}"
                reporter.step(f"converting {case_id}")
                if pid not in segs:
                    dropped[case_id] = "no lesion mask (<n>-LesionSeg-Flair.nii) in the release"
                    continue
                if pid not in spacing:
                    dropped[case_id] = (
                        f"no FLAIR 'Spacing Between Slices' for ID {pid} in the metadata sheet"
                    )
                    continue
                image = rel.read_image(flairs[pid])
                label = rel.read_image(segs[pid])
                if image.GetDimension() != 3 or image.GetSize() != label.GetSize():
                    raise RecipeError(
                        f"patient {pid}: FLAIR {image.GetSize()} and lesion mask "
                        f"{label.GetSize()} differ in size",
                        path=raw,
                        fix="check that the release is complete and unmodified",
                    )
                header_spacing = list(image.GetSpacing())
                new_spacing = [*header_spacing[:2], spacing[pid]]
                image.SetSpacing(new_spacing)
                lab = to_uint8_mask(sitk.GetArrayViewFromImage(label))
                writer.write(case_id, image, lab)
                cases.append(
                    ConvertedCase(
                        case_id,
                        {
                            "image": flairs[pid].where(raw),
                            "label": segs[pid].where(raw),
                            "patient_id": pid,
                            "header_spacing_xyz": [round(s, 6) for s in header_spacing],
                            "sheet_spacing_between_slices": spacing[pid],
                            "metadata_sheet": sheet.where(raw),
                        },
                    )
                )
        return ConvertResult(labels={"background": 0, "lesion": 1}, cases=cases, dropped=dropped)
