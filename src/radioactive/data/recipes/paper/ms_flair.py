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
* The workbook is read with ``openpyxl``; a CSV export of the sheet with the same header rows is
  accepted as well.

The release folder (loose files and zip archives alike) is read with
:class:`~radioactive.data.recipes.release.Release`.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import ClassVar

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, ConvertResult, SourceFile
from radioactive.data.recipes.release import (
    Entry,
    Release,
    ReleaseRecipe,
    labelled,
    to_uint8_mask,
)
from radioactive.errors import RecipeError

# ---------------------------------------------------------------------------------------------
# the metadata workbook


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def read_xlsx_rows(path: Path) -> list[list[str]]:
    """The cells of the first worksheet of an .xlsx workbook as text, row by row.

    Numbers are written as Python writes them (``7``, ``5.5``); formulas give their cached value;
    empty cells at the end of a row are left out.
    """
    rows: list[list[str]] = []
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for values in wb.worksheets[0].iter_rows(values_only=True):
                row = [_cell_text(v) for v in values]
                while row and not row[-1]:
                    row.pop()
                rows.append(row)
        finally:
            wb.close()
    except (
        OSError,
        KeyError,
        IndexError,
        ValueError,
        SyntaxError,
        zipfile.BadZipFile,
        InvalidFileException,
    ) as exc:
        raise RecipeError(
            f"cannot read the workbook: {exc}",
            path=path,
            fix="download the metadata workbook again, or save its first sheet as CSV next to it",
        ) from exc
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


class MSFlair(ReleaseRecipe):
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
    collections = ("Mendeley-8bctsm8jz7",)
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

        with self.release(raw, writer) as rel:
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
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            for pid, case_id, flair_entry, seg_entry in labelled(
                flairs,
                segs,
                lambda pid: f"ms_{pid:03d}",
                reporter,
                dropped,
                "no lesion mask (<n>-LesionSeg-Flair.nii) in the release",
            ):
                if pid not in spacing:
                    dropped[case_id] = (
                        f"no FLAIR 'Spacing Between Slices' for ID {pid} in the metadata sheet"
                    )
                    continue
                image = rel.read_image(flair_entry)
                label = rel.read_image(seg_entry)
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
                            "image": flair_entry.where(raw),
                            "label": seg_entry.where(raw),
                            "patient_id": pid,
                            "header_spacing_xyz": [round(s, 6) for s in header_spacing],
                            "sheet_spacing_between_slices": spacing[pid],
                            "metadata_sheet": sheet.where(raw),
                        },
                    )
                )
        return ConvertResult(labels={"background": 0, "lesion": 1}, cases=cases, dropped=dropped)
