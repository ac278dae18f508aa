"""D10: 45 head-and-neck organs at risk on CT, overlapping (SegRap2023 training set).

Source facts:

* Release: the SegRap2023 challenge (https://segrap2023.grand-challenge.org/) distributes its
  training set after registration and a signed end-user agreement; redistribution is not allowed,
  so access is "manual". Licence: CC BY-NC 4.0 as stated by redistributions of the data, under the
  terms of the challenge's agreement. Citation: Luo X et al., SegRap2023: a benchmark of
  organs-at-risk and gross tumor volume segmentation for radiotherapy planning of nasopharyngeal
  carcinoma, Medical Image Analysis 2025 (doi:10.1016/j.media.2024.103447, arXiv:2312.09576).
* Files (names as the paper's reference scripts and the challenge's description use them):
  ``SegRap2023_Training_Set_120cases.zip`` holds ``SegRap2023_Training_Set_120cases/segrap_XXXX/``
  with ``image.nii.gz`` (non-contrast CT), ``image_contrast.nii.gz``, one mask per organ
  (``Brain.nii.gz``, …, 45 organs) and the two tumour masks (``GTVp``, ``GTVnd``), 120 patients.
  ``SegRap2023_Training_Set_120cases_Update_Labels(Task001).zip`` holds updated organ masks in
  ``SegRap2023_Training_Set_120cases_Update_Labels/segrap_XXXX/<organ>.nii.gz``; the paper's
  reference reads the organs from there, and so does this recipe when the archive is present
  (otherwise from the training set's folders). The archives may be encrypted: the challenge gives
  the password to registered participants; set ``$RADIOACTIVE_SEGRAP_ZIP_PASSWORD`` or extract
  them yourself. Published checksums: none known.
* The organ names and their order are those of the challenge's task 1 (:data:`OARS`).

Conversion. Organs overlap (e.g. the brain contains the brainstem, the hippocampus overlaps the
temporal lobe), so one label map per patient cannot hold them all. Lossless scheme: per patient,
the organs are split into groups of mutually non-overlapping organs (graph colouring of the
overlap graph, DSatur, which gives the fewest groups for graphs like these), and one case is
written per group, ``<patient>_g1``, ``<patient>_g2``, …, each with the patient's CT (hard-linked
to the first group's image file where the file system allows, copied otherwise) and a label map
holding that group's organs with their dataset-wide values. Every organ voxel thus appears exactly
once, in exactly one case; the groups are recorded per case in ``dataset.json``. The image is the
non-contrast CT, as in the paper's reference.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import (
    CaseWriter,
    ConvertedCase,
    ConvertResult,
    SourceFile,
    resample_nearest,
    same_grid,
)
from radioactive.data.recipes.release import (
    Entry,
    Release,
    ReleaseRecipe,
    label_like,
    labelled,
)

_OAR_NAMES = (
    "Brain", "BrainStem", "Chiasm", "TemporalLobe_L", "TemporalLobe_R", "Hippocampus_L",
    "Hippocampus_R", "Eye_L", "Eye_R", "Lens_L", "Lens_R", "OpticNerve_L",
    "OpticNerve_R", "MiddleEar_L", "MiddleEar_R", "IAC_L", "IAC_R", "TympanicCavity_L",
    "TympanicCavity_R", "VestibulSemi_L", "VestibulSemi_R", "Cochlea_L", "Cochlea_R",
    "ETbone_L", "ETbone_R", "Pituitary", "OralCavity", "Mandible_L", "Mandible_R",
    "Submandibular_L", "Submandibular_R", "Parotid_L", "Parotid_R", "Mastoid_L",
    "Mastoid_R", "TMjoint_L", "TMjoint_R", "SpinalCord", "Esophagus", "Larynx",
    "Larynx_Glottic", "Larynx_Supraglot", "PharynxConst", "Thyroid", "Trachea",
)  # fmt: skip
#: organ name -> label value
OARS: dict[str, int] = {name: i for i, name in enumerate(_OAR_NAMES, start=1)}

PASSWORD_ENV = "RADIOACTIVE_SEGRAP_ZIP_PASSWORD"
TRAINING_ZIP = "SegRap2023_Training_Set_120cases.zip"
UPDATE_ZIP = "SegRap2023_Training_Set_120cases_Update_Labels(Task001).zip"
_IMG_RE = re.compile(r"(?:^|/)(segrap_\d+)/image\.nii\.gz$")
_ORGAN_RE = re.compile(r"(?:^|/)(segrap_\d+)/([A-Za-z_]+)\.nii\.gz$")
_HOW = (
    "register at https://segrap2023.grand-challenge.org/, sign the data agreement, download the "
    "file from the links on its dataset page and put it (or its extracted folder) into the "
    "source folder"
)


def overlap_groups(flat: dict[str, np.ndarray]) -> list[list[str]]:
    """Split organs into the fewest groups of mutually non-overlapping organs (DSatur colouring).

    ``flat`` maps organ -> its voxels as flat indices into one grid.
    """
    names = sorted(flat, key=lambda o: OARS.get(o, 0))
    if not names:
        return []
    allidx = np.concatenate([flat[o] for o in names])
    counts = np.bincount(allidx) if allidx.size else np.zeros(1, dtype=np.int64)
    shared = np.flatnonzero(counts > 1)
    neighbours: dict[str, set[str]] = {o: set() for o in names}
    if shared.size:
        bits = np.zeros(shared.size, dtype=np.uint64)
        for k, o in enumerate(names):
            idx = flat[o]
            pos = np.searchsorted(shared, idx[np.isin(idx, shared)])
            bits[pos] |= np.uint64(1) << np.uint64(k)
        for combo in np.unique(bits).tolist():
            members = [names[k] for k in range(len(names)) if int(combo) >> k & 1]
            for a in members:
                neighbours[a].update(m for m in members if m != a)
    colour: dict[str, int] = {}
    while len(colour) < len(names):
        todo = [o for o in names if o not in colour]
        pick = max(
            todo,
            key=lambda o: (
                len({colour[n] for n in neighbours[o] if n in colour}),
                len(neighbours[o]),
                -OARS.get(o, 0),
            ),
        )
        used = {colour[n] for n in neighbours[pick] if n in colour}
        colour[pick] = next(c for c in range(len(names)) if c not in used)
    groups: list[list[str]] = [[] for _ in range(max(colour.values()) + 1)]
    for o in names:
        groups[colour[o]].append(o)
    return groups


def _write_label(writer: CaseWriter, case_id: str, image: Any, arr: np.ndarray) -> None:
    import SimpleITK as sitk

    sitk.WriteImage(label_like(arr, image), str(writer.label_path(case_id)), True)


def _share_image(src: Path, dest: Path) -> str:
    try:
        os.link(src, dest)
        return "hard link"
    except OSError:
        shutil.copyfile(src, dest)
        return "copy"


class SegRap(ReleaseRecipe):
    """D10 SegRap2023: 45 overlapping organs, one case per group of non-overlapping organs."""

    name = "segrap"
    paper_id = "D10"
    folder = "Dataset651_SegRap"
    title = "SegRap2023"
    description = (
        "45 head-and-neck organs at risk on non-contrast CT (SegRap2023 training set); the "
        "overlapping organs of a patient are split into groups of non-overlapping ones, one case "
        "(<patient>_g<k>) per group, so that no organ voxel is lost."
    )
    modality = "CT"
    category = "organ"
    targets = TargetSpec(type="organ")
    licence = "CC BY-NC 4.0, under the SegRap2023 data agreement (no redistribution)"
    citation = (
        "Luo X, Fu J, Zhong Y, et al. SegRap2023: A benchmark of organs-at-risk and gross tumor "
        "volume segmentation for radiotherapy planning of nasopharyngeal carcinoma. Medical Image "
        "Analysis, 2025. doi:10.1016/j.media.2024.103447"
    )
    homepage = "https://segrap2023.grand-challenge.org/"
    collections = ("SegRap2023",)
    download_size = "20 GB"
    access = "manual"
    files: ClassVar[tuple[SourceFile, ...]] = (
        SourceFile(name=TRAINING_ZIP, url=None, how="images and organ masks; " + _HOW),
        SourceFile(
            name=UPDATE_ZIP,
            url=None,
            how="updated organ masks (used when present); " + _HOW,
            optional=True,
        ),
    )
    markers: ClassVar[dict[str, str]] = {TRAINING_ZIP: _IMG_RE.pattern}
    password_env = PASSWORD_ENV

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        with self.release(raw, writer) as rel:
            images = {
                m.group(1): e
                for e, m in reversed(rel.find(_IMG_RE))
                if "Update_Labels" not in e.where(raw)
            }
            organs: dict[str, dict[str, Entry]] = {}
            updated: dict[str, dict[str, Entry]] = {}
            for e, m in reversed(rel.find(_ORGAN_RE)):
                patient, organ = m.group(1), m.group(2)
                if organ not in OARS:
                    continue
                bucket = updated if "Update_Labels" in e.where(raw) else organs
                bucket.setdefault(patient, {})[organ] = e
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            for patient, _, image_entry, chosen in labelled(
                images,
                {**organs, **updated},
                str,
                reporter,
                dropped,
                "no organ mask in the release",
            ):
                origin = "updated task 1 labels" if patient in updated else "training set"
                cases.extend(
                    self._convert_patient(rel, patient, image_entry, chosen, origin, writer)
                )
        return ConvertResult(labels={"background": 0, **OARS}, cases=cases, dropped=dropped)

    def _convert_patient(
        self,
        rel: Release,
        patient: str,
        image_entry: Entry,
        organs: dict[str, Entry],
        origin: str,
        writer: CaseWriter,
    ) -> list[ConvertedCase]:
        import SimpleITK as sitk

        image = rel.read_image(image_entry)
        shape_zyx = tuple(reversed(image.GetSize()))
        flat: dict[str, np.ndarray] = {}
        for organ, entry in organs.items():
            mask = rel.read_image(entry)
            if not same_grid(mask, image):
                mask = resample_nearest(mask, image)
            flat[organ] = np.flatnonzero(np.asarray(sitk.GetArrayViewFromImage(mask)) > 0)
        groups = overlap_groups(flat)
        out: list[ConvertedCase] = []
        first: str | None = None
        for k, group in enumerate(groups, start=1):
            case_id = f"{patient}_g{k}"
            label = np.zeros(int(np.prod(shape_zyx)), dtype=np.uint8)
            for organ in group:
                label[flat[organ]] = OARS[organ]
            arr = label.reshape(shape_zyx)
            if first is None:
                writer.write(case_id, image, arr)
                first = case_id
                how = "written"
            else:
                _write_label(writer, case_id, image, arr)
                how = _share_image(writer.image_path(first), writer.image_path(case_id))
            out.append(
                ConvertedCase(
                    case_id,
                    {
                        "patient": patient,
                        "group": k,
                        "groups": len(groups),
                        "structures": group,
                        "image": image_entry.where(rel.raw),
                        "image_file": how if first == case_id else f"{how} of {first}",
                        "organ_masks": {o: organs[o].where(rel.raw) for o in group},
                        "organ_masks_from": origin,
                    },
                )
            )
        return out
