"""D5: LNQ, mediastinal lymph nodes on chest CT (PROTOCOL §7).

Source (TCIA, fetched by series through the TCIA API): the collection
"Mediastinal-Lymph-Node-SEG", the data of the MICCAI 2023 LNQ challenge (Idris et al. 2024;
DOI 10.7937/QVAZ-JA09), CC BY 4.0. It holds 513 patients, each with one CT series and one
DICOM-SEG of (some of) the mediastinal lymph nodes larger than 1 cm; about 35 GB. No checksums
are published for TCIA series. The challenge's training cases are only partially annotated,
so unlabelled nodes can exist in a case; this recipe does not try to tell them apart.

Conversion: every segment of a SEG is a lymph-node segment; their union, resampled onto the CT
with nearest neighbour, is split into 26-connected components, one target per node. One case
per patient, named by its PatientID (``<PatientID>_<n>`` when a patient had several SEGs).
"""

from __future__ import annotations

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


class LNQ(DicomSegRecipe):
    name = "lnq"
    paper_id = "D5"
    folder = "Dataset911_LNQ"
    title = "LNQ 2023 (Mediastinal-Lymph-Node-SEG)"
    description = (
        "Mediastinal lymph nodes on chest CT (LNQ 2023 challenge data, TCIA "
        "Mediastinal-Lymph-Node-SEG); one target per connected node."
    )
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="components", connectivity=26)
    licence = "CC BY 4.0"
    citation = (
        "Idris T, Somarouthu S, Jacene H, LaCasce A, Ziegler E, Pieper S, Khajavi R, Dorent R, "
        "Pujol S, Kikinis R, Harris G (2024). Mediastinal Lymph Node Quantification (LNQ): "
        "Segmentation of Heterogeneous CT Data (Mediastinal-Lymph-Node-SEG) (Version 1) "
        "[Data set]. The Cancer Imaging Archive. https://doi.org/10.7937/QVAZ-JA09"
    )
    homepage = "https://www.cancerimagingarchive.net/collection/mediastinal-lymph-node-seg/"
    collections = ("Mediastinal-Lymph-Node-SEG", "LNQ2023")
    download_size = "about 35 GB"
    version = "1"
    access = "tcia"
    tcia_collection = "Mediastinal-Lymph-Node-SEG"

    LABELS: ClassVar[dict[str, int]] = {"background": 0, "lymph_node": 1}

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        scans = [
            Scan(case_id_from(pid) if len(ordered) == 1 else f"{case_id_from(pid)}_{n}", pair)
            for pid, ordered in self.patient_scans(raw).items()
            for n, pair in enumerate(ordered, start=1)
        ]
        cases, dropped = self.convert_scans(scans, writer, reporter)
        return ConvertResult(labels=dict(self.LABELS), cases=cases, dropped=dropped)

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        mask = union(segments)
        if mask is None or not mask.any():
            return f"SEG {pair.seg.uid} holds no lymph-node voxel"
        return mask, {}
