"""Builders of small synthetic DICOM releases for the recipe tests.

CT series are written slice by slice with pydicom (CT Image Storage, int16, rescale -1024);
DICOM-SEG objects are written with highdicom, either on the CT's own grid or on a grid of their
own (finer in-plane and through-plane) to exercise the nearest-neighbour resampling. The folder
helpers reproduce the layouts the sources deliver: TCIA's ``<series uid>/1-001.dcm`` (the
benchmark's own TCIA download), the NBIA Data Retriever's
``Collection/Patient/Study/Series/1-01.dcm`` and IDC's
``collection/patient/study uid/<Modality>_<series uid>/<uuid>.dcm``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SHAPE = (8, 32, 32)  # z, y, x
SPACING = (0.8, 0.8, 2.5)  # x, y, z in mm
ORIGIN = (-12.8, -12.8, 100.0)


@dataclass
class CTSeries:
    """A written CT series: its datasets (with pixels, for highdicom) and where they are."""

    datasets: list[pydicom.Dataset]
    files: list[Path]
    series_uid: str
    study_uid: str
    patient_id: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def sop_uids(self) -> list[str]:
        return [str(ds.SOPInstanceUID) for ds in self.datasets]


@dataclass
class Study:
    patient_id: str
    study_uid: str = field(default_factory=lambda: str(generate_uid()))
    study_date: str = "20200101"
    study_time: str = "120000"
    frame_of_reference: str = field(default_factory=lambda: str(generate_uid()))


def ct_datasets(
    study: Study,
    *,
    shape: tuple[int, int, int] = SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    origin: tuple[float, float, float] = ORIGIN,
    description: str = "CT",
    series_number: int = 2,
    series_uid: str | None = None,
    acquisition: int = 1,
) -> list[pydicom.Dataset]:
    """The slices of one axial CT series (not yet written)."""
    series_uid = series_uid or str(generate_uid())
    nz, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    out = []
    for k in range(nz):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.Modality = "CT"
        ds.PatientID = study.patient_id
        ds.PatientName = f"{study.patient_id}^"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study.study_uid
        ds.StudyDate = study.study_date
        ds.StudyTime = study.study_time
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = acquisition
        ds.FrameOfReferenceUID = study.frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "synthetic"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.SliceLocation = origin[2] + k * spacing[2]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        pixels = (1024 + 10 * k + xx + 2 * yy).astype(np.int16)  # HU = 10 k + x + 2 y
        ds.PixelData = pixels.tobytes()
        out.append(ds)
    return out


def write_ct(
    folder: Path, datasets: list[pydicom.Dataset], *, name: str = "1-{i:03d}.dcm"
) -> CTSeries:
    """Write the slices into ``folder`` (created) and describe the series."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, ds in enumerate(datasets):
        p = folder / name.format(i=i + 1, uuid=uuid.uuid4())
        ds.save_as(p, enforce_file_format=True)
        files.append(p)
    d0 = datasets[0]
    spacing = (float(d0.PixelSpacing[1]), float(d0.PixelSpacing[0]), float(d0.SliceThickness))
    return CTSeries(
        datasets=datasets,
        files=files,
        series_uid=str(d0.SeriesInstanceUID),
        study_uid=str(d0.StudyInstanceUID),
        patient_id=str(d0.PatientID),
        shape=(len(datasets), int(d0.Rows), int(d0.Columns)),
        spacing=spacing,
        origin=tuple(float(v) for v in d0.ImagePositionPatient),  # type: ignore[arg-type]
    )


def box(shape: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
    """A boolean (z, y, x) array, true in the half-open box [lo, hi)."""
    m = np.zeros(tuple(shape), dtype=bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


@dataclass(frozen=True)
class SegSpec:
    """One segment to write: its label, its mask on the CT grid (z, y, x), and its kind."""

    label: str
    mask: np.ndarray
    lesion: bool = True
    automatic: bool = False


def seg_dataset(
    ct: CTSeries,
    segments: Sequence[SegSpec],
    *,
    fine_grid: bool = False,
    description: str = "Segmentation",
    series_number: int = 300,
) -> pydicom.Dataset:
    """A DICOM-SEG referencing ``ct``.

    With ``fine_grid`` the SEG is written on its own grid: half the CT's spacing in every
    direction, same origin and orientation, without SpacingBetweenSlices. Each CT voxel becomes a
    2x2x2 block there, so nearest-neighbour resampling back onto the CT grid must give the masks
    exactly.
    """
    import highdicom as hd

    descs = []
    for n, spec in enumerate(segments, start=1):
        category = codes.SCT.MorphologicallyAbnormalStructure if spec.lesion else codes.SCT.Organ
        ptype = codes.SCT.Neoplasm if spec.lesion else codes.SCT.Liver
        descs.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=spec.label,
                segmented_property_category=category,
                segmented_property_type=ptype,
                algorithm_type=(
                    hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
                    if spec.automatic
                    else hd.seg.SegmentAlgorithmTypeValues.MANUAL
                ),
                algorithm_identification=(
                    hd.AlgorithmIdentificationSequence(
                        name="auto", version="1", family=codes.DCM.ArtificialIntelligence
                    )
                    if spec.automatic
                    else None
                ),
            )
        )
    stack = np.stack([s.mask for s in segments], axis=-1).astype(np.uint8)  # z, y, x, seg
    kwargs: dict[str, Any] = {}
    if fine_grid:
        stack = stack.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
        sx, sy, sz = (v / 2 for v in ct.spacing)
        ox, oy, oz = ct.origin
        kwargs = {
            "pixel_measures": hd.PixelMeasuresSequence(pixel_spacing=[sy, sx], slice_thickness=sz),
            "plane_orientation": hd.PlaneOrientationSequence("PATIENT", [1, 0, 0, 0, 1, 0]),
            "plane_positions": [
                hd.PlanePositionSequence("PATIENT", [ox, oy, oz + k * sz])
                for k in range(stack.shape[0])
            ],
        }
    return hd.seg.Segmentation(
        source_images=ct.datasets,
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="synthetic",
        manufacturer_model_name="fixture",
        software_versions="1",
        device_serial_number="1",
        series_description=description,
        **kwargs,
    )


def write_seg(path: Path, seg: pydicom.Dataset) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


# ---------------------------------------------------------------------------------- layouts


def tcia_case(
    root: Path,
    patient_id: str,
    segments_on_ct: Sequence[SegSpec],
    *,
    study: Study | None = None,
    fine_grid: bool = False,
    write_seg_file: bool = True,
    ct_kwargs: dict | None = None,
) -> tuple[CTSeries, pydicom.Dataset]:
    """One CT + SEG pair in the layout of the benchmark's TCIA download:
    ``root/<series uid>/1-NNN.dcm`` for each series."""
    study = study or Study(patient_id)
    ds = ct_datasets(study, **(ct_kwargs or {}))
    ct = write_ct(root / str(ds[0].SeriesInstanceUID), ds)
    seg = seg_dataset(ct, segments_on_ct, fine_grid=fine_grid)
    if write_seg_file:
        write_seg(root / str(seg.SeriesInstanceUID) / "1-1.dcm", seg)
    return ct, seg


def nbia_folder(root: Path, collection: str, study: Study, series_number: int, desc: str) -> Path:
    """The NBIA Data Retriever's folder for one series."""
    d = study.study_date
    date = f"{d[4:6]}-{d[6:8]}-{d[0:4]}"
    return (
        root
        / collection
        / study.patient_id
        / f"{date}-NA-STUDY-{study.study_uid[-5:]}"
        / f"{series_number}.000000-{desc.replace('/', '')}-{uuid.uuid4().hex[:5]}"
    )


def idc_folder(root: Path, collection_id: str, patient_id: str, study_uid: str, modality: str,
               series_uid: str) -> Path:  # fmt: skip
    """idc-index's default folder for one series."""
    return root / collection_id / patient_id / study_uid / f"{modality}_{series_uid}"


def idc_case(
    root: Path,
    collection_id: str,
    study: Study,
    segments_on_ct: Sequence[SegSpec] | None,
    *,
    description: str = "CT",
    series_number: int = 2,
    fine_grid: bool = False,
    seg_description: str = "Segmentation",
    ct_kwargs: dict | None = None,
) -> tuple[CTSeries, pydicom.Dataset | None]:
    """One CT series (and, when ``segments_on_ct`` is given, a SEG on it) in IDC's layout."""
    ds = ct_datasets(
        study, description=description, series_number=series_number, **(ct_kwargs or {})
    )
    folder = idc_folder(
        root, collection_id, study.patient_id, study.study_uid, "CT", str(ds[0].SeriesInstanceUID)
    )
    ct = write_ct(folder, ds, name="{uuid}.dcm")
    if segments_on_ct is None:
        return ct, None
    seg = seg_dataset(ct, segments_on_ct, fine_grid=fine_grid, description=seg_description)
    sfolder = idc_folder(
        root, collection_id, study.patient_id, study.study_uid, "SEG", str(seg.SeriesInstanceUID)
    )
    write_seg(sfolder / f"{uuid.uuid4()}.dcm", seg)
    return ct, seg
