"""D3: primary head-and-neck tumour (GTVp) on T2 MR (HNTS-MRG 2024 training set, Zenodo 11199559).

Source facts:

* Release: Zenodo record 11199559 ("Training Dataset for HNTSMRG 2024 Challenge", Wahid, Dede,
  Naser, Fuller, 2024, doi:10.5281/zenodo.11199559), one archive ``HNTSMRG24_train.zip`` (about
  15 GB), direct address https://zenodo.org/records/11199559/files/HNTSMRG24_train.zip?download=1.
  No checksum was found (Zenodo publishes an md5 on the record page).
* Layout (record description and challenge page):
  ``HNTSMRG24_train/<id>/preRT/<id>_preRT_T2.nii.gz`` and ``<id>_preRT_mask.nii.gz``;
  ``<id>/midRT/`` holds the mid-RT scan, its mask and the pre-RT scan registered onto it.
  150 patients. Mask values: 0 background, 1 GTVp (primary tumour), 2 GTVn
  (metastatic lymph nodes, all nodes in one label).
* Licence: CC BY-NC 4.0 (as stated by users of the record; confirm on the record page).
* Timepoint: the paper's reference conversion reads the pre-RT images and masks only
  (``preRT/*_preRT_T2.nii.gz``); the recipe does the same. Mid-RT data are not used.

Conversion (PROTOCOL §7): the nodal label (2) is removed; a patient whose pre-RT mask holds no
GTVp voxel is dropped and recorded in ``dropped``. The release states at most one primary tumour
per patient, so the whole GTVp label is one instance (``instance_mode="ids"``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, ConvertResult, SourceFile
from radioactive.data.recipes.release import Entry, ReleaseRecipe, label_like, labelled

GTVP, GTVN = 1, 2
_IMG_RE = re.compile(r"(?:^|/)(\d+)/preRT/\1_preRT_T2\.nii\.gz$")
_MASK_RE = re.compile(r"(?:^|/)(\d+)/preRT/\1_preRT_mask\.nii\.gz$")


class HNTSMRG(ReleaseRecipe):
    """D3 HNTS-MRG 2024: pre-RT T2 MR, GTVp only, cases without GTVp dropped."""

    name = "hnts_mrg"
    paper_id = "D3"
    folder = "Dataset501_HNTSMRG"
    title = "HNTS-MRG 2024"
    description = (
        "Primary head-and-neck tumours (GTVp) on pre-radiotherapy T2 MR (HNTS-MRG 2024 training "
        "set, Zenodo 11199559); nodal label removed, patients without GTVp dropped."
    )
    modality = "MRI T2"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="ids")
    licence = "CC BY-NC 4.0"
    citation = (
        "Wahid K, Dede C, Naser M, Fuller C. Training Dataset for HNTSMRG 2024 Challenge. "
        "Zenodo, 2024. doi:10.5281/zenodo.11199559"
    )
    homepage = "https://zenodo.org/records/11199559"
    collections = ("HNTS-MRG2024",)
    download_size = "15 GB"
    access = "http"
    files: ClassVar[tuple[SourceFile, ...]] = (
        SourceFile(
            name="HNTSMRG24_train.zip",
            url="https://zenodo.org/records/11199559/files/HNTSMRG24_train.zip?download=1",
            how="https://zenodo.org/records/11199559 (the archive, or its extracted "
            "HNTSMRG24_train folder)",
        ),
    )
    markers: ClassVar[dict[str, str]] = {"HNTSMRG24_train.zip": _IMG_RE.pattern}

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        import SimpleITK as sitk

        with self.release(raw, writer) as rel:
            images: dict[int, Entry] = {int(m.group(1)): e for e, m in reversed(rel.find(_IMG_RE))}
            masks: dict[int, Entry] = {int(m.group(1)): e for e, m in reversed(rel.find(_MASK_RE))}
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            for pid, case_id, image_entry, mask_entry in labelled(
                images,
                masks,
                lambda pid: f"hntsmrg_{pid:03d}",
                reporter,
                dropped,
                "no pre-RT mask in the release",
            ):
                image = rel.read_image(image_entry)
                mask = rel.read_image(mask_entry)
                arr = np.asarray(sitk.GetArrayViewFromImage(mask))
                gtvp = arr == GTVP
                if not gtvp.any():
                    dropped[case_id] = "no primary tumour (GTVp, label 1) in the pre-RT mask"
                    continue
                writer.write(case_id, image, label_like(gtvp, mask))
                cases.append(
                    ConvertedCase(
                        case_id,
                        {
                            "image": image_entry.where(raw),
                            "label": mask_entry.where(raw),
                            "patient_id": pid,
                            "timepoint": "preRT",
                            "gtvn_voxels_removed": int(np.count_nonzero(arr == GTVN)),
                        },
                    )
                )
        return ConvertResult(labels={"background": 0, "GTVp": GTVP}, cases=cases, dropped=dropped)
