"""D2: 30 head-and-neck organs at risk on T1 MR, registered from CT (HaN-Seg, Zenodo 7442914).

Source facts:

* Release: Zenodo record 7442914, one archive ``HaN-Seg.zip`` (about 4.9 GB), direct address
  https://zenodo.org/records/7442914/files/HaN-Seg.zip?download=1. Its sha256
  ``20226dd7…0bbfa5f`` is the one the torch-em project verifies downloads of this record against
  (Zenodo itself publishes an md5, which was not found here).
* Layout: ``HaN-Seg/set_1/case_XX/`` with ``case_XX_IMG_CT.nrrd`` (contrast-enhanced CT),
  ``case_XX_IMG_MR_T1.nrrd`` (T1 MR of the same patient, not registered to the CT) and one mask per
  organ, ``case_XX_OAR_<organ>.seg.nrrd``, drawn on the CT. 42 cases, up to 30 organs each.
* Licence: CC BY-NC-ND 4.0. Citation: Podobnik et al., Medical Physics 2023, doi:10.1002/mp.16197.
  Challenge: https://han-seg2023.grand-challenge.org/.
* One of the paper's reference scripts extracts the archive with a password; whether the Zenodo
  archive is encrypted was not established. Set ``$RADIOACTIVE_HANSEG_ZIP_PASSWORD`` if it is, or
  extract it yourself.

Conversion (PROTOCOL §7: CT-space labels rigidly registered onto the MR):

* The MR is the image, unchanged. The CT is registered onto it with SimpleITK: rigid (Euler) 3D
  transform, Mattes mutual information (random sampling), regular-step gradient descent with
  physical-shift scales, three resolution levels (shrink 4/2/1, smoothing 2/1/0 mm). It starts
  from the translation that aligns the centroids of the two body masks (Otsu threshold).
* Every organ mask is mapped through that transform onto the MR grid with nearest neighbour.
* The organs are merged into one label map with the values of :data:`OARS` (names as in the
  release's file names, in alphabetical order). Where organs overlap after the mapping, the
  smaller organ keeps the voxel (so small structures are not erased by large ones); the number of
  overlapping voxels and the voxels each organ lost are recorded per case in ``dataset.json``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.case import TargetSpec
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, ConvertResult, SourceFile
from radioactive.data.recipes.release import Entry, Release, ReleaseRecipe
from radioactive.errors import RecipeError

_OAR_NAMES = (
    "A_Carotid_L", "A_Carotid_R", "Arytenoid", "Bone_Mandible", "Brainstem",
    "BuccalMucosa", "Cavity_Oral", "Cochlea_L", "Cochlea_R", "Cricopharyngeus",
    "Esophagus_S", "Eye_AL", "Eye_AR", "Eye_PL", "Eye_PR", "Glnd_Lacrimal_L",
    "Glnd_Lacrimal_R", "Glnd_Submand_L", "Glnd_Submand_R", "Glnd_Thyroid", "Glottis",
    "Larynx_SG", "Lips", "OpticChiasm", "OpticNrv_L", "OpticNrv_R", "Parotid_L",
    "Parotid_R", "Pituitary", "SpinalCord",
)  # fmt: skip
#: organ name -> label value
OARS: dict[str, int] = {name: i for i, name in enumerate(_OAR_NAMES, start=1)}

PASSWORD_ENV = "RADIOACTIVE_HANSEG_ZIP_PASSWORD"
_CT_RE = re.compile(r"(?:^|/)(case_\d+)/\1_IMG_CT\.nrrd$")
_MR_RE = re.compile(r"(?:^|/)(case_\d+)/\1_IMG_MR_T1\.nrrd$")
_OAR_RE = re.compile(r"(?:^|/)(case_\d+)/\1_OAR_(.+?)\.seg\.nrrd$")


def _body_centroid(image: Any) -> tuple[float, ...] | None:
    """Physical centroid of the Otsu foreground of ``image`` (``None`` when there is none)."""
    import SimpleITK as sitk

    mask = sitk.OtsuThreshold(sitk.Cast(image, sitk.sitkFloat32), 0, 1)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    if 1 not in stats.GetLabels():
        return None
    return tuple(stats.GetCentroid(1))


def register_rigid(
    fixed: Any,
    moving: Any,
    *,
    iterations: int = 200,
    sampling: float = 0.05,
    seed: int = 12345,
) -> tuple[Any, float]:
    """Rigid transform mapping points of ``fixed`` onto ``moving`` (Mattes MI, 3 levels).

    Returns the transform (as SimpleITK's ``Resample`` expects it: fixed-grid points to moving
    points) and the final metric value.
    """
    import SimpleITK as sitk

    f = sitk.Cast(fixed, sitk.sitkFloat32)
    m = sitk.Cast(moving, sitk.sitkFloat32)
    cf, cm = _body_centroid(f), _body_centroid(m)
    if cf is not None and cm is not None:
        init = sitk.Euler3DTransform()
        init.SetCenter(cf)
        init.SetTranslation(tuple(b - a for a, b in zip(cf, cm, strict=True)))
    else:
        init = sitk.CenteredTransformInitializer(
            f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=iterations, relaxationFactor=0.5
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    transform = reg.Execute(f, m)
    return transform, float(reg.GetMetricValue())


class HaNSeg(ReleaseRecipe):
    """D2 HaN-Seg: 30 organs at risk, CT labels registered onto the T1 MR."""

    name = "hanseg"
    paper_id = "D2"
    folder = "Dataset209_HaNSeg"
    title = "HaN-Seg"
    description = (
        "30 head-and-neck organs at risk on T1 MR (HaN-Seg, Zenodo 7442914); the CT-space organ "
        "masks are rigidly registered onto the MR (SimpleITK, Mattes MI); overlaps: the smaller "
        "organ keeps the voxel."
    )
    modality = "MRI T1"
    category = "organ"
    targets = TargetSpec(type="organ")
    licence = "CC BY-NC-ND 4.0"
    citation = (
        "Podobnik G, Strojan P, Peterlin P, Ibragimov B, Vrtovec T. HaN-Seg: The head and neck "
        "organ-at-risk CT & MR segmentation dataset. Medical Physics 50(3):1917-1927, 2023. "
        "doi:10.1002/mp.16197"
    )
    homepage = "https://zenodo.org/records/7442914"
    collections = ("HaN-Seg",)
    download_size = "4.9 GB"
    access = "http"
    files: ClassVar[tuple[SourceFile, ...]] = (
        SourceFile(
            name="HaN-Seg.zip",
            url="https://zenodo.org/records/7442914/files/HaN-Seg.zip?download=1",
            sha256="20226dd717f334dc1b1afe961b3375f946fa56b64a80bf5349128f90c0bbfa5f",
            how="https://zenodo.org/records/7442914 (the archive, or its extracted HaN-Seg folder)",
        ),
    )
    #: extracted copies the source folder may hold instead of the archive
    markers: ClassVar[dict[str, str]] = {"HaN-Seg.zip": _MR_RE.pattern}
    password_env = PASSWORD_ENV
    #: optimizer iterations per resolution level of the CT -> MR registration
    registration_iterations: int = 200
    #: fraction of voxels the metric samples
    registration_sampling: float = 0.05

    def convert(self, raw: Path, writer: CaseWriter, reporter: Reporter) -> ConvertResult:
        with self.release(raw, writer) as rel:
            cts = {m.group(1): e for e, m in reversed(rel.find(_CT_RE))}
            mrs = {m.group(1): e for e, m in reversed(rel.find(_MR_RE))}
            oars: dict[str, dict[str, Entry]] = {}
            unknown: dict[str, list[str]] = {}
            for e, m in reversed(rel.find(_OAR_RE)):
                case, organ = m.group(1), m.group(2)
                if organ in OARS:
                    oars.setdefault(case, {})[organ] = e
                else:
                    unknown.setdefault(case, []).append(organ)
            names = sorted(set(cts) | set(mrs))
            reporter.begin(len(names))
            cases: list[ConvertedCase] = []
            dropped: dict[str, str] = {}
            for case_id in names:
                reporter.step(f"registering {case_id}")
                if case_id not in mrs or case_id not in cts:
                    dropped[case_id] = "the release lacks its " + (
                        "T1 MR" if case_id not in mrs else "CT"
                    )
                    continue
                if not oars.get(case_id):
                    dropped[case_id] = "no organ mask (case_XX_OAR_<organ>.seg.nrrd)"
                    continue
                source = self._convert_case(rel, case_id, cts[case_id], mrs[case_id],
                                            oars[case_id], writer)  # fmt: skip
                if unknown.get(case_id):
                    source["ignored_masks"] = sorted(unknown[case_id])
                cases.append(ConvertedCase(case_id, source))
        return ConvertResult(labels={"background": 0, **OARS}, cases=cases, dropped=dropped)

    def _convert_case(
        self,
        rel: Release,
        case_id: str,
        ct_entry: Entry,
        mr_entry: Entry,
        organs: dict[str, Entry],
        writer: CaseWriter,
    ) -> dict[str, Any]:
        import SimpleITK as sitk

        mr = rel.read_image(mr_entry)
        ct = rel.read_image(ct_entry)
        transform, metric = register_rigid(
            mr,
            ct,
            iterations=self.registration_iterations,
            sampling=self.registration_sampling,
        )
        size = int(np.prod(mr.GetSize()))
        flat: dict[str, np.ndarray] = {}
        for organ, entry in sorted(organs.items()):
            mask = rel.read_image(entry)
            if mask.GetDimension() != 3:
                raise RecipeError(
                    f"{case_id}: the organ mask {entry.where(rel.raw)} is not a 3D image",
                    path=rel.raw,
                    fix="check that the release is complete and unmodified",
                )
            mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
            moved = sitk.Resample(mask, mr, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            flat[organ] = np.flatnonzero(sitk.GetArrayViewFromImage(moved))
        counts = np.bincount(np.concatenate(list(flat.values())), minlength=size)
        overlap = int(np.count_nonzero(counts > 1))
        label = np.zeros(size, dtype=np.uint8)
        lost: dict[str, int] = {}
        # largest first, so that a smaller organ overwrites a larger one where they overlap
        for organ in sorted(flat, key=lambda o: (-len(flat[o]), OARS[o])):
            idx = flat[organ]
            prev = label[idx]
            for value, n in zip(*np.unique(prev[prev > 0], return_counts=True), strict=True):
                loser = next(o for o, v in OARS.items() if v == int(value))
                lost[loser] = lost.get(loser, 0) + int(n)
            label[idx] = OARS[organ]
        shape_zyx = tuple(reversed(mr.GetSize()))
        writer.write(case_id, mr, label.reshape(shape_zyx))
        params = [round(float(p), 6) for p in transform.GetParameters()]
        return {
            "image": mr_entry.where(rel.raw),
            "ct": ct_entry.where(rel.raw),
            "organ_masks": {o: e.where(rel.raw) for o, e in sorted(organs.items())},
            "registration": {
                "transform": "rigid (Euler3D), CT -> MR, parameters: angles (rad) then "
                "translation (mm) of the MR-to-CT point mapping",
                "parameters": params,
                "mattes_mi": round(metric, 6),
            },
            "organ_voxels_on_mr": {o: len(flat[o]) for o in sorted(flat)},
            "overlap_voxels": overlap,
            "overlap_rule": "smaller organ keeps the voxel",
            "voxels_lost_to_smaller_organs": dict(sorted(lost.items())),
        }
