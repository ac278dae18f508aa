"""D4: RIDER Lung CT, primary lung tumours on same-day test-retest CT (PROTOCOL §7).

Source (TCIA, fetched by series through the TCIA API):

* images: the "RIDER Lung CT" collection (Zhao et al.; DOI 10.7937/K9/TCIA.2015.U1X8A5NR),
  32 patients with two chest CTs taken minutes apart. TCIA's collection page gives CC BY 4.0 for
  the images.
* labels: the "RIDER-LungCT-Seg" analysis result (Wee et al. 2020; DOI
  10.7937/tcia.2020.jit9grk8), a primary tumour (GTVp) delineation per CT of 31 patients (59
  scans), released as RTSTRUCT and as DICOM-SEG. Its licence is given as CC BY 3.0 by secondary
  sources; TCIA's analysis-result page is the authority. Each delineation set holds a manual
  contour (``GTVp_<scan>_man``) and an in-house automatic one (``GTVp_<scan>_auto``).

The recipe downloads every SEG series TCIA lists for the collection and the CT series each SEG
references (not the collection's many other reconstructions). RTSTRUCT is not needed: the SEG
carries the same delineations. It is not established here whether TCIA's API lists the
analysis result's SEG series under the collection name "RIDER Lung CT"; when it does not,
download the analysis result's manifest with the NBIA Data Retriever and pass
``--source-dir``. No checksums are published for TCIA series.

Conversion: per SEG, the manual delineation is kept (segments whose label or description names
it manual, e.g. ``*_man``; where none does, every segment that is not automatic), resampled onto
its CT with nearest neighbour; lesions are the 26-connected components of that mask. Each CT
with its SEG is one case, ``<PatientID>_<n>`` with ``n`` numbering the patient's scans by study
date and time (1: test, 2: retest where both exist).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.dicom import (
    DicomSegRecipe,
    Scan,
    Segment,
    SegPair,
    case_id_from,
    union,
)
from radioactive.data.recipes.public import CaseWriter, ConvertResult

_MANUAL = re.compile(r"(^|[^a-z])(man|manual)([^a-z]|$)", re.IGNORECASE)
_AUTO = re.compile(r"auto", re.IGNORECASE)


def manual_segments(segments: list[Segment]) -> list[Segment]:
    """The manual delineation(s) among a SEG's segments."""
    named = [s for s in segments if _MANUAL.search(s.label) or _MANUAL.search(s.description)]
    if named:
        return named
    return [
        s
        for s in segments
        if s.algorithm != "AUTOMATIC"
        and not _AUTO.search(s.label)
        and not _AUTO.search(s.description)
    ]


class RiderLungCT(DicomSegRecipe):
    name = "rider_lung"
    paper_id = "D4"
    folder = "Dataset930_RIDERLungCT"
    title = "RIDER Lung CT"
    description = (
        "Primary non-small-cell lung tumours on same-day test-retest chest CT (RIDER Lung CT, "
        "delineations from RIDER-LungCT-Seg); one case per scan, lesions as instances."
    )
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="components", connectivity=26)
    licence = (
        "CC BY 4.0 (RIDER Lung CT images, per TCIA); RIDER-LungCT-Seg labels under TCIA's terms "
        "for that analysis result (reported as CC BY 3.0)"
    )
    citation = (
        "Zhao B, Schwartz LH, Kris MG, Riely GJ (2015). Coffee-break lung CT collection with scan "
        "images reconstructed at multiple imaging parameters (RIDER Lung CT) [Data set]. The "
        "Cancer Imaging Archive. https://doi.org/10.7937/K9/TCIA.2015.U1X8A5NR; Wee L, Aerts H, "
        "Kalendralis P, Dekker A (2020). RIDER Lung CT Segmentation Labels from: Decoding tumour "
        "phenotype by noninvasive imaging using a quantitative radiomics approach [Data set]. The "
        "Cancer Imaging Archive. https://doi.org/10.7937/tcia.2020.jit9grk8"
    )
    homepage = "https://www.cancerimagingarchive.net/analysis-result/rider-lungct-seg/"
    collections = ("RIDER-Lung-CT", "RIDER-LungCT-Seg")
    download_size = "about 8.5 GB (the CTs referenced by the SEGs)"
    version = "1"
    access = "tcia"
    tcia_collection = "RIDER Lung CT"

    LABELS: ClassVar[dict[str, int]] = {"background": 0, "lesion": 1}

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        scans = [
            Scan(f"{case_id_from(pid)}_{n}", pair, {"scan_index": n})
            for pid, ordered in self.patient_scans(raw).items()
            for n, pair in enumerate(ordered, start=1)
        ]
        cases, dropped = self.convert_scans(scans, writer, reporter)
        return ConvertResult(labels=dict(self.LABELS), cases=cases, dropped=dropped)

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        chosen = manual_segments(segments)
        mask = union(chosen)
        if mask is None or not mask.any():
            return (
                "no manual tumour delineation in SEG "
                f"{pair.seg.uid} (segments: {[s.label for s in segments]})"
            )
        return mask, {"used_segments": [s.label for s in chosen]}
