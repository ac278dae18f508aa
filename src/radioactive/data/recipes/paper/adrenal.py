"""D7: adrenocortical carcinoma on contrast CT (PROTOCOL §7).

Source (IDC, fetched with idc-index; also on TCIA): the collection "Adrenal-ACC-Ki67-Seg"
(Moawad et al. 2023; DOI 10.7937/1FPG-VM46), CC BY 4.0: 53 patients
(``Adrenal_Ki67_Seg_001`` ...), 65 studies, 177 series, about 9.9 GB; each annotated study holds
several CT series and one DICOM-SEG of the tumour on one of them. No collection checksum is
published.

Conversion rules:

* the CT is the series the SEG references; a patient with several SEGs keeps the earliest
  (by study date, then series number) and records the others as unused;
* every segment of the SEG is taken as tumour (their names are recorded per case, which lets a
  user check this; the segment names of this release could not be established here);
* the union is split into 26-connected components and components smaller than 30 voxels are
  removed from the label (the paper's rule; the removed count is recorded per case). A patient
  with nothing left is dropped.

Case ids are the PatientIDs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.dicom import DicomSegRecipe, Segment, SegPair, union
from radioactive.data.recipes.public import CaseWriter, ConvertResult

#: components smaller than this (in voxels, on the CT grid) are removed (PROTOCOL §7)
MIN_COMPONENT_VOXELS = 30


def drop_small_components(mask: np.ndarray, min_voxels: int) -> tuple[np.ndarray, int, int]:
    """``mask`` without its 26-connected components of fewer than ``min_voxels`` voxels, the
    number of components removed and the number kept."""
    import cc3d

    labels, n = cc3d.connected_components(mask.astype(np.uint8), connectivity=26, return_N=True)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= min_voxels)
    keep = keep[keep > 0]
    return np.isin(labels, keep), int(n - len(keep)), len(keep)


class AdrenalACC(DicomSegRecipe):
    name = "adrenal_acc"
    paper_id = "D7"
    folder = "Dataset913_AdrenalACCKi67"
    title = "Adrenal-ACC-Ki67-Seg"
    description = (
        "Adrenocortical carcinoma on contrast-enhanced CT (TCIA/IDC Adrenal-ACC-Ki67-Seg); "
        "components under 30 voxels removed; one target per tumour component."
    )
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(
        type="instance",
        instance_mode="components",
        connectivity=26,
        min_voxels=MIN_COMPONENT_VOXELS,
    )
    licence = "CC BY 4.0"
    citation = (
        "Moawad AW, Ahmed AA, ElMohr M, Eltaher M, Habra MA, Fisher S, Perrier N, Zhang M, "
        "Fuentes D, Elsayes K (2023). Voxel-level segmentation of pathologically-proven "
        "Adrenocortical carcinoma with Ki-67 expression (Adrenal-ACC-Ki67-Seg) [Data set]. The "
        "Cancer Imaging Archive. https://doi.org/10.7937/1FPG-VM46"
    )
    homepage = "https://www.cancerimagingarchive.net/collection/adrenal-acc-ki67-seg/"
    collections = ("Adrenal-ACC-Ki67-Seg",)
    download_size = "about 9.9 GB"
    version = "1"
    access = "idc"
    idc_collection = "adrenal_acc_ki67_seg"

    LABELS: ClassVar[dict[str, int]] = {"background": 0, "carcinoma": 1}

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        cases, dropped = self.convert_first_scans(raw, writer, reporter)
        return ConvertResult(labels=dict(self.LABELS), cases=cases, dropped=dropped)

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        mask = union(segments)
        if mask is None or not mask.any():
            return f"SEG {pair.seg.uid} holds no tumour voxel"
        kept, removed, n_kept = drop_small_components(mask, MIN_COMPONENT_VOXELS)
        if not n_kept:
            return (
                f"every tumour component is smaller than {MIN_COMPONENT_VOXELS} voxels "
                f"({removed} removed)"
            )
        return kept, {"small_components_removed": removed, "components_kept": n_kept}
