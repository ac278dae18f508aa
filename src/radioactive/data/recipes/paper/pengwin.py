"""D9: pelvic bone fragments on CT (PENGWIN 2024 task 1 training set, Zenodo 10927452).

Source facts:

* Release: Zenodo record 10927452 (doi:10.5281/zenodo.10927452), three archives:
  ``PENGWIN_CT_train_images_part1.zip``, ``PENGWIN_CT_train_images_part2.zip`` (the CTs) and
  ``PENGWIN_CT_train_labels.zip`` (the label maps), about 7.5 GB together; 100 training CTs as
  ``<case>.mha`` (e.g. ``001.mha``), the label map of a case under the same file name in the
  labels archive. The sha256 values below are the ones the torch-em project verifies downloads of
  this record against; Zenodo's own md5 values were not found.
* Label values: fragments are numbered per bone, sacrum 1-10, left hip bone 11-20, right hip bone
  21-30 (the first value of each range is the bone's main fragment), as read by several public
  loaders of this release.
* Licence: CC BY-NC-SA 4.0, as stated for the PENGWIN records on Zenodo (seen on a mirror of the
  task 2 record; confirm on the record page). Challenge: https://pengwin.grand-challenge.org/.
  Citation: Liu et al., MICCAI 2023 (doi:10.1007/978-3-031-43996-4_30) and the challenge summary
  (Sang et al., arXiv:2504.02382).

Conversion (PROTOCOL §7): the fragments of a case are renumbered 1..n in the order of their
source values (sacrum first, then left, then right hip bone). Every value is one instance target
(``instance_mode="ids"``); the labels are ``fragment_1`` … ``fragment_N`` with N the largest
fragment count of any case. The mapping new value -> source value, bone and fragment index is
recorded per case in ``dataset.json``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, ConvertResult, SourceFile
from radioactive.data.recipes.release import Entry, ReleaseRecipe, label_like, labelled
from radioactive.errors import RecipeError

#: bone -> (first, last) source value of its fragments
BONES: dict[str, tuple[int, int]] = {
    "sacrum": (1, 10),
    "left_hip": (11, 20),
    "right_hip": (21, 30),
}
_ZENODO = "https://zenodo.org/records/10927452/files/"
_MHA_RE = re.compile(r"(?:^|/)([^/]+)\.mha$")
_LABEL_HINT = re.compile(r"(?i)label")


def fragment_of(value: int) -> dict[str, Any]:
    """Bone and fragment index (1 = main fragment) of a source label value."""
    for bone, (lo, hi) in BONES.items():
        if lo <= value <= hi:
            return {"bone": bone, "fragment": value - lo + 1}
    return {"bone": "unknown", "fragment": None}


class PENGWIN(ReleaseRecipe):
    """D9 PENGWIN task 1: pelvic fragments renumbered 1..n per case, one instance per value."""

    name = "pengwin"
    paper_id = "D9"
    folder = "Dataset600_PENGWIN"
    title = "PENGWIN"
    description = (
        "Pelvic bone fragments on CT (PENGWIN 2024 task 1, Zenodo 10927452); fragments "
        "renumbered 1..n per case, each value one instance."
    )
    modality = "CT"
    category = "pathology"
    targets = TargetSpec(type="instance", instance_mode="ids")
    licence = "CC BY-NC-SA 4.0 (confirm on the Zenodo record)"
    citation = (
        "Liu Y, Yibulayimu S, Sang Y, et al. Pelvic fracture segmentation using a multi-scale "
        "distance-weighted neural network. MICCAI 2023, doi:10.1007/978-3-031-43996-4_30. "
        "Sang Y, Liu Y, et al. Benchmark of segmentation techniques for pelvic fracture in CT and "
        "X-ray: summary of the PENGWIN 2024 challenge. arXiv:2504.02382. "
        "Data: doi:10.5281/zenodo.10927452"
    )
    homepage = "https://zenodo.org/records/10927452"
    collections = ("PENGWIN",)
    download_size = "7.5 GB"
    access = "http"
    files: ClassVar[tuple[SourceFile, ...]] = (
        SourceFile(
            name="PENGWIN_CT_train_images_part1.zip",
            url=_ZENODO + "PENGWIN_CT_train_images_part1.zip?download=1",
            sha256="e2e9f99798960607ffced1fbdeee75a626c41bf859eaf4125029a38fac6b7609",
            how="https://zenodo.org/records/10927452",
        ),
        SourceFile(
            name="PENGWIN_CT_train_images_part2.zip",
            url=_ZENODO + "PENGWIN_CT_train_images_part2.zip?download=1",
            sha256="19f3cdc5edd1daf9324c70f8ba683eed054f6ed8f2b1cc59dbd80724f8f0bbb2",
            how="https://zenodo.org/records/10927452",
        ),
        SourceFile(
            name="PENGWIN_CT_train_labels.zip",
            url=_ZENODO + "PENGWIN_CT_train_labels.zip?download=1",
            sha256="c4d3857e02d3ee5d0df6c8c918dd3cf5a7c9419135f1ec089b78215f37c6665c",
            how="https://zenodo.org/records/10927452",
        ),
    )
    #: extracted copies the source folder may hold instead of the archives
    markers: ClassVar[dict[str, str]] = {
        "PENGWIN_CT_train_images_part1.zip": r"(?i)^(?:(?!label).)*\.mha$",
        "PENGWIN_CT_train_images_part2.zip": r"(?i)^(?:(?!label).)*\.mha$",
        "PENGWIN_CT_train_labels.zip": r"(?i)label.*\.mha$",
    }

    @staticmethod
    def _is_label(raw: Path, entry: Entry) -> bool:
        return bool(_LABEL_HINT.search(entry.where(raw)))

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        import SimpleITK as sitk

        with self.release(raw, writer) as rel:
            images: dict[str, Entry] = {}
            labels: dict[str, Entry] = {}
            for e, m in rel.find(_MHA_RE):
                (labels if self._is_label(raw, e) else images).setdefault(m.group(1), e)
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            most = 0
            for _, case_id, image_entry, label_entry in labelled(
                images,
                labels,
                lambda stem: f"pengwin_{stem}",
                reporter,
                dropped,
                "no label map of that name in the labels archive",
            ):
                image = rel.read_image(image_entry)
                source = rel.read_image(label_entry)
                arr = np.asarray(sitk.GetArrayViewFromImage(source))
                if arr.size and (arr.min() < 0 or not np.all(np.mod(arr, 1) == 0)):
                    raise RecipeError(
                        f"{label_entry.where(raw)} holds values that are not fragment numbers",
                        path=raw,
                        fix="check that the labels archive is the release's",
                    )
                values = [int(v) for v in np.unique(arr) if v != 0]
                if not values:
                    dropped[case_id] = "the label map holds no fragment"
                    continue
                lut = np.zeros(int(max(values)) + 1, dtype=np.uint8)
                mapping: dict[str, dict[str, Any]] = {}
                for new, old in enumerate(values, start=1):
                    lut[old] = new
                    mapping[str(new)] = {"source_value": old, **fragment_of(old)}
                writer.write(case_id, image, label_like(lut[arr.astype(np.int64)], source))
                most = max(most, len(values))
                cases.append(
                    ConvertedCase(
                        case_id,
                        {
                            "image": image_entry.where(raw),
                            "label": label_entry.where(raw),
                            "fragments": mapping,
                        },
                    )
                )
        names = {"background": 0, **{f"fragment_{k}": k for k in range(1, most + 1)}}
        return ConvertResult(labels=names, cases=cases, dropped=dropped)
