"""D6: colorectal liver metastases on portal-venous CT (PROTOCOL §7).

Source (IDC, fetched with idc-index; also on TCIA): the collection "Colorectal-Liver-Metastases"
(Simpson et al. 2023/2024; DOI 10.7937/QXK2-QG03; Sci Data 11:172,
https://doi.org/10.1038/s41597-024-02981-2), CC BY 4.0, 197 patients ``CRLM-CT-1001`` ...
``CRLM-CT-1197``, each with one pre-operative CT series and one DICOM-SEG. The SEG's segments
are labelled ``Liver``, ``Liver Remnant``, ``Hepatic``, ``Portal`` and one segment per tumour,
``Tumor_1``, ``Tumor_2``, ... About 11 GB. IDC publishes per-file CRC32C/MD5 in its index, not
a checksum of the collection; none is checked here.

Conversion rules:

* only the tumour segments (label ``Tumor...``) are kept; their union, resampled onto the CT
  with nearest neighbour, is the label ``metastasis``, split into 26-connected components (one
  target per metastasis; tumours drawn as separate segments that touch become one target);
* the paper excludes 26 of the 197 patients: 25 whose tumour segments overlap and
  ``CRLM-CT-1183``, which was missing from the reference's download. They are listed in
  :data:`EXCLUDED` and recorded as dropped with that reason;
* beyond that list, the same rule is applied to what the download holds: a patient whose
  tumour segments overlap each other (a voxel claimed by two ``Tumor_k``) is dropped, as is one
  without any tumour voxel or whose CT cannot be read.

The CT series of some patients hold several acquisitions at the same positions; the one the
SEG references is kept. Case ids are the PatientIDs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.dicom import DicomSegRecipe, Segment, SegPair, case_id_from
from radioactive.data.recipes.public import CaseWriter, ConvertResult

_OVERLAP = "tumour segments overlap each other (excluded by the paper's reference)"

#: the patients the paper leaves out, with the reason its reference code gives
_OVERLAPPING = (
    1020, 1026, 1027, 1031, 1037, 1049, 1053, 1057, 1070, 1078, 1080, 1081, 1083,
    1088, 1112, 1122, 1127, 1133, 1139, 1145, 1155, 1168, 1173, 1186, 1190,
)  # fmt: skip
EXCLUDED: dict[str, str] = {
    **{f"CRLM-CT-{n}": _OVERLAP for n in _OVERLAPPING},
    "CRLM-CT-1183": "data missing from the paper's download (excluded by the paper's reference)",
}

TUMOUR = re.compile(r"^\s*tumou?r", re.IGNORECASE)


class ColorectalLiverMets(DicomSegRecipe):
    name = "colorectal_liver_mets"
    paper_id = "D6"
    folder = "Dataset912_ColorectalLiverMetastases"
    title = "Colorectal-Liver-Metastases"
    description = (
        "Colorectal liver metastases on pre-operative portal-venous CT (TCIA/IDC "
        "Colorectal-Liver-Metastases); tumour segments only, one target per metastasis; 26 "
        "patients excluded as in the paper."
    )
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="components", connectivity=26)
    licence = "CC BY 4.0"
    citation = (
        "Simpson AL, Peoples J, Creasy JM, Fichtinger G, Gangai N, Lasso A, Keshava Murthy KN, "
        "Shia J, D'Angelica MI, Do RKG (2023). Preoperative CT and Survival Data for Patients "
        "Undergoing Resection of Colorectal Liver Metastases (Colorectal-Liver-Metastases) "
        "(Version 2) [Data set]. The Cancer Imaging Archive. https://doi.org/10.7937/QXK2-QG03"
    )
    homepage = "https://www.cancerimagingarchive.net/collection/colorectal-liver-metastases/"
    collections = ("Colorectal-Liver-Metastases",)
    download_size = "about 11 GB"
    version = "1"
    access = "idc"
    idc_collection = "colorectal_liver_metastases"
    excluded = EXCLUDED

    LABELS: ClassVar[dict[str, int]] = {"background": 0, "metastasis": 1}

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        dropped: dict[str, str] = {}
        seen = {s.patient_id for s in self.scan(raw).values()}
        for pid, why in EXCLUDED.items():
            if pid in seen:
                dropped[case_id_from(pid)] = why
        cases, dropped = self.convert_first_scans(raw, writer, reporter, dropped=dropped)
        return ConvertResult(labels=dict(self.LABELS), cases=cases, dropped=dropped)

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        tumours = [s for s in segments if TUMOUR.match(s.label)]
        if not tumours:
            return (
                f"SEG {pair.seg.uid} has no tumour segment "
                f"(segments: {[s.label for s in segments]})"
            )
        count = np.zeros(tumours[0].array().shape, dtype=np.uint16)
        for t in tumours:
            count += t.array()
        if count.max() > 1:
            return (
                f"tumour segments overlap each other ({int(np.count_nonzero(count > 1))} "
                "voxels claimed by two tumours)"
            )
        if not count.any():
            return f"SEG {pair.seg.uid}: the tumour segments are empty"
        return count > 0, {"tumour_segments": [t.label for t in tumours]}
