"""D8: HCC-TACE-Seg, liver (organ) and hepatocellular carcinoma (instances) on CT (PROTOCOL §7).

Source (IDC, fetched with idc-index; also on TCIA): the collection "HCC-TACE-Seg" (Moawad et al.
2021; DOI 10.7937/TCIA.5FNA-0924; Sci Data 10:33, https://doi.org/10.1038/s41597-023-01928-3),
CC BY 4.0: 105 patients ``HCC_001`` ... ``HCC_105`` with multiphase liver CT at one or more
timepoints, about 29 GB. Annotated studies hold a DICOM-SEG with the segments ``Liver``,
``Mass``, ``Portal vein`` and ``Abdominal aorta`` (some also ``Necrosis``) drawn on one of the
study's CT series. No collection checksum is published.

One dataset holds both targets: label 1 ``liver`` is an organ target, label 2 ``hcc`` holds the
lesions (26-connected components, one target each), via ``TargetSpec.label_types``.

Selection rules (the paper: 66 patients, the "Recon 3" series, one timepoint each):

* only the 66 patients of :data:`INCLUDED` (the list of the paper's reference code) are used;
  the others present in the download are recorded as dropped;
* a patient's studies are visited by study date and time; a study qualifies when exactly one
  of its CT series has "Recon 3" in its SeriesDescription and exactly one SEG references that
  series (where several do, the one described "Segmentation"); the earliest qualifying study is
  used and the choice, with the reasons the other studies were passed over, is recorded per
  case. (The reference code kept whichever qualifying study its directory listing gave last,
  an order the file system decides; the earliest study is the reproducible choice.)

Label rules: ``hcc`` = ``Mass`` ∪ ``Necrosis``; ``liver`` = ``Liver`` ∪ ``Mass`` ∪ ``Necrosis`` ∪
``Portal vein`` as in the paper's reference. The label map stores ``hcc`` over ``liver`` (one
value per voxel); the target rule ``includes={"liver": ["hcc"]}`` makes the liver organ target
the union of both again, so it contains its tumours as in the paper. ``Abdominal aorta`` is
not used. Both are resampled onto the CT with nearest neighbour. Case ids are the
PatientIDs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.dicom import (
    DicomSegRecipe,
    SegPair,
    SeriesInfo,
    case_id_from,
    union,
)
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, ConvertResult
from radioactive.errors import RecipeError

#: the paper's 66 patients (its reference code's list)
INCLUDED: frozenset[str] = frozenset(
    f"HCC_{n:03d}"
    for n in (
        4, 12, 13, 17, 20, 22, 23, 25, 26, 28, 29, 31, 32, 33, 34, 35, 36, 37, 38, 40, 41, 42,
        43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 66,
        67, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 86, 87, 88, 90, 98,
    )
)  # fmt: skip

RECON3 = re.compile(r"\brecon\s*3\b", re.IGNORECASE)
LIVER_PARTS = ("liver", "mass", "necrosis", "portal vein")
LESION_PARTS = ("mass", "necrosis")


def _norm(label: str) -> str:
    return re.sub(r"\s+", " ", label.strip().lower())


def select_timepoint(
    series: list[SeriesInfo],
) -> tuple[SegPair | None, dict[str, str]]:
    """The (CT "Recon 3", SEG) pair of a patient's earliest qualifying study, and why each
    other study did not qualify (study uid -> reason)."""
    by_study: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in series:
        by_study[s.study_uid].append(s)
    passed: dict[str, str] = {}
    order = sorted(
        by_study, key=lambda u: (by_study[u][0].study_date, by_study[u][0].study_time, u)
    )
    for study in order:
        members = by_study[study]
        recon3 = [s for s in members if s.modality == "CT" and RECON3.search(s.description)]
        if len(recon3) != 1:
            passed[study] = f"{len(recon3)} CT series described 'Recon 3'"
            continue
        ct = recon3[0]
        segs = [s for s in members if s.modality == "SEG" and ct.uid in s.referenced_series]
        if len(segs) > 1:
            named = [s for s in segs if s.description.strip().lower() == "segmentation"]
            segs = named if named else segs
        if len(segs) != 1:
            passed[study] = f"{len(segs)} SEG series reference its 'Recon 3' CT"
            continue
        return SegPair(segs[0], ct), passed
    return None, passed


class HCCTACE(DicomSegRecipe):
    name = "hcc_tace"
    paper_id = "D8"
    folder = "Dataset920_HCCTACE"
    title = "HCC-TACE-Seg"
    description = (
        "Liver (organ) and hepatocellular carcinoma (instances) on multiphase liver CT "
        "(TCIA/IDC HCC-TACE-Seg); the paper's 66 patients, the 'Recon 3' series, one timepoint "
        "each."
    )
    modality = "CT"
    category = "mixed"
    targets = TargetSpec(
        type="instance",
        instance_mode="components",
        connectivity=26,
        label_types={"liver": "organ", "hcc": "instance"},
        includes={"liver": ("hcc",)},
    )
    licence = "CC BY 4.0"
    citation = (
        "Moawad AW, Fuentes D, Morshid A, Khalaf AM, Elmohr MM, Abusaif A, Hazle JD, Kaseb AO, "
        "Hassan M, Mahvash A, Szklaruk J, Qayyom A, Elsayes K (2021). Multimodality annotated "
        "HCC cases with and without advanced imaging segmentation (HCC-TACE-Seg) [Data set]. "
        "The Cancer Imaging Archive. https://doi.org/10.7937/TCIA.5FNA-0924"
    )
    homepage = "https://www.cancerimagingarchive.net/collection/hcc-tace-seg/"
    collections = ("HCC-TACE-Seg",)
    download_size = "about 29 GB"
    version = "2"
    access = "idc"
    idc_collection = "hcc_tace_seg"

    LABELS: ClassVar[dict[str, int]] = {"background": 0, "liver": 1, "hcc": 2}

    def wanted(self, patient_id: str) -> bool:
        return patient_id in INCLUDED

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        series = self.scan(raw)
        by_patient: dict[str, list[SeriesInfo]] = defaultdict(list)
        for s in series.values():
            by_patient[s.patient_id].append(s)
        dropped: dict[str, str] = {}
        for pid in sorted(by_patient):
            if not self.wanted(pid):
                dropped[case_id_from(pid)] = "not among the paper's 66 patients"
        wanted = sorted(p for p in by_patient if self.wanted(p))
        reporter.begin(len(wanted))
        cases: list[ConvertedCase] = []
        for pid in wanted:
            case_id = case_id_from(pid)
            reporter.step(case_id)
            pair, passed = select_timepoint(by_patient[pid])
            if pair is None:
                dropped[case_id] = "no study with one 'Recon 3' CT and its SEG: " + "; ".join(
                    f"{u}: {why}" for u, why in passed.items()
                )
                continue
            try:
                image, segments = self.load(pair)
            except RecipeError as exc:
                dropped[case_id] = f"unreadable: {exc.problem} ({exc.path})"
                continue
            by_name = {_norm(s.label): s for s in segments}
            liver = union(by_name[n] for n in LIVER_PARTS if n in by_name)
            lesion = union(by_name[n] for n in LESION_PARTS if n in by_name)
            if liver is None or not liver.any():
                dropped[case_id] = (
                    f"SEG {pair.seg.uid} has no liver voxel "
                    f"(segments: {[s.label for s in segments]})"
                )
                continue
            label = np.zeros(liver.shape, dtype=np.uint8)
            label[liver] = 1
            if lesion is not None:
                label[lesion] = 2
            assert pair.image is not None
            extra: dict[str, Any] = {
                "timepoint": {
                    "study_uid": pair.image.study_uid,
                    "study_date": pair.image.study_date,
                    "ct_description": pair.image.description,
                },
                "studies_passed_over": passed,
                "liver_segments": [by_name[n].label for n in LIVER_PARTS if n in by_name],
                "hcc_segments": [by_name[n].label for n in LESION_PARTS if n in by_name],
            }
            writer.write(case_id, image, label)
            cases.append(ConvertedCase(case_id, self.source_of(pair, segments, **extra)))
        return ConvertResult(labels=dict(self.LABELS), cases=cases, dropped=dropped)
