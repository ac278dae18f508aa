"""Cases (an image with its label map) and the binary targets they hold.

Organ datasets give one target per label value (minus excluded labels). Instance datasets give one
target per lesion: either one per distinct label id (``instance_mode="ids"``, for maps that already
number their instances) or one per connected component of each label (``instance_mode=
"components"``, with 6-, 18- or 26-connectivity). A target that is empty (or smaller than
``min_voxels``) is reported as skipped, never scored.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from radioactive.data.volume import Volume, load_label, load_volume
from radioactive.errors import GridMismatchError, LabelError

TargetKind = Literal["organ", "instance"]

#: Absolute tolerance (mm) when comparing image and label geometry.
GEOMETRY_ATOL_MM = 1e-3
#: Relative tolerance when comparing spacings.
SPACING_RTOL = 1e-4


class TargetSpec(BaseModel):
    """How a dataset's label maps turn into binary targets (stored in ``dataset.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: TargetKind = "organ"
    #: for instance targets: "components" (connected components per label) or "ids" (one per value)
    instance_mode: Literal["components", "ids"] = "components"
    connectivity: Literal[6, 18, 26] = 26
    #: instances smaller than this many voxels are skipped
    min_voxels: int = Field(default=1, ge=1)
    #: label values that never become targets (background 0 is always excluded)
    exclude: tuple[int, ...] = ()
    #: per-label-name override of ``type`` for datasets with both organs and lesions
    label_types: dict[str, TargetKind] = Field(default_factory=dict)
    #: organ name -> labels whose voxels the organ target also covers (e.g. a liver that contains
    #: its tumours: ``{"liver": ["hcc"]}``); a label map holds one value per voxel, so an organ
    #: that encloses lesions labelled separately is their union
    includes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("exclude")
    @classmethod
    def _non_negative(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(x < 0 for x in v):
            raise ValueError("excluded label values must be >= 0")
        return v

    def kind_of(self, label_name: str) -> TargetKind:
        return self.label_types.get(label_name, self.type)


@dataclass(frozen=True, eq=False)
class Target:
    """One binary target of a case.

    Attributes:
        case_id: the case it belongs to.
        name: unique within the case: the label name for organs, ``"<label>#<k>"`` for instances.
        label_name, label_value: the class it comes from.
        kind: ``"organ"`` or ``"instance"``.
        voxels: number of foreground voxels.
        bbox_lo, bbox_hi: half-open bounding box in canonical (z, y, x) indices.
    """

    case_id: str
    name: str
    label_name: str
    label_value: int
    kind: TargetKind
    voxels: int
    bbox_lo: tuple[int, ...]
    bbox_hi: tuple[int, ...]
    _source: npt.NDArray = field(repr=False)
    _value: int = field(repr=False)

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """The target as a boolean canonical (z, y, x) array (computed on access)."""
        return self._source == self._value

    @property
    def slices_with_target(self) -> int:
        """Number of axial slices that contain the target ("X" of the protocol's cost table)."""
        lo, hi = self.bbox_lo[0], self.bbox_hi[0]
        return int(np.count_nonzero((self._source[lo:hi] == self._value).any(axis=(1, 2))))


@dataclass(frozen=True)
class SkippedTarget:
    """A target that exists by declaration but cannot be evaluated, and why."""

    case_id: str
    name: str
    reason: str


def _bboxes(
    labelled: npt.NDArray, values: npt.NDArray
) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Half-open bounding boxes of the given label values, from one pass of scipy's find_objects."""
    from scipy import ndimage

    if labelled.size == 0 or not len(values):
        return {}
    slices = ndimage.find_objects(labelled, max_label=int(values.max()))
    out = {}
    for v in values:
        sl = slices[int(v) - 1]
        if sl is not None:
            out[int(v)] = (tuple(s.start for s in sl), tuple(s.stop for s in sl))
    return out


def extract_targets(
    case_id: str,
    label: npt.NDArray,
    labels: Mapping[str, int],
    spec: TargetSpec,
) -> tuple[list[Target], list[SkippedTarget]]:
    """Split a canonical label map into binary targets.

    Args:
        case_id: identifier recorded on every target.
        label: integer label map in canonical (z, y, x) layout.
        labels: label name -> value (as in ``dataset.json``); background 0 is ignored.
        spec: organ / instance rules.

    Returns:
        The targets in label order (instances in component order) and the skipped ones.
    """
    import cc3d

    targets: list[Target] = []
    skipped: list[SkippedTarget] = []
    present = np.bincount(label.ravel()) if label.size else np.zeros(1, dtype=np.int64)
    wanted = {
        name: int(v) for name, v in labels.items() if int(v) != 0 and int(v) not in spec.exclude
    }
    organ_values = [v for n, v in wanted.items() if spec.kind_of(n) == "organ"]
    organ_boxes = _bboxes(label, np.asarray(organ_values, dtype=np.int64))

    for name, value in sorted(wanted.items(), key=lambda kv: kv[1]):
        count = int(present[value]) if value < len(present) else 0
        if count == 0:
            skipped.append(SkippedTarget(case_id, name, "empty: label absent from this case"))
            continue
        if spec.kind_of(name) == "organ":
            if spec.includes.get(name):
                union = np.isin(label, [value, *_values(spec.includes[name], labels)])
                source = union.astype(np.uint8)
                (lo, hi), total = _bboxes(source, np.array([1]))[1], int(np.count_nonzero(union))
                targets.append(
                    Target(case_id, name, name, value, "organ", total, lo, hi, source, 1)
                )
                continue
            lo, hi = organ_boxes[value]
            targets.append(Target(case_id, name, name, value, "organ", count, lo, hi, label, value))
            continue
        binary = label == value
        if spec.instance_mode == "ids":
            components, n = binary.astype(np.uint8), 1
        else:
            components, n = cc3d.connected_components(
                binary, connectivity=spec.connectivity, return_N=True
            )
        sizes = np.bincount(components.ravel(), minlength=n + 1)
        boxes = _bboxes(components, np.arange(1, n + 1))
        for k in range(1, n + 1):
            tname = f"{name}#{k}"
            if sizes[k] < spec.min_voxels:
                skipped.append(
                    SkippedTarget(
                        case_id, tname, f"{sizes[k]} voxels < min_voxels={spec.min_voxels}"
                    )
                )
                continue
            lo, hi = boxes[k]
            targets.append(
                Target(
                    case_id, tname, name, value, "instance", int(sizes[k]), lo, hi, components, k
                )
            )
    return targets, skipped


def _values(names: Iterable[str], labels: Mapping[str, int]) -> list[int]:
    """The values of label ``names``; a name the dataset does not define is an error."""
    unknown = [n for n in names if n not in labels]
    if unknown:
        raise LabelError(
            f"target rule 'includes' names labels the dataset does not define: {unknown}",
            fix=f"use label names of dataset.json: {', '.join(labels)}",
        )
    return [int(labels[n]) for n in names]


def check_same_grid(image: Volume, label: Volume) -> None:
    """Raise :class:`GridMismatchError` unless image and label share one canonical voxel grid.

    The comparison is made after reorientation to the canonical layout: a label stored with
    another axis order or flipped axes (e.g. LAS next to an LPS DICOM series) is accepted when it
    covers the very same voxels in the world. Shapes must match exactly; spacing, direction
    cosines and origin up to ``SPACING_RTOL`` / ``GEOMETRY_ATOL_MM``.
    """
    img_p, lab_p = image.path, label.path
    names = f"image {img_p} and label {lab_p}" if img_p and lab_p else "image and label"
    fix = (
        "resample the label onto the image grid with nearest-neighbour interpolation "
        "(e.g. SimpleITK.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor)) "
        "or pair the label with the image it was drawn on"
    )
    if image.shape != label.shape:
        raise GridMismatchError(
            f"{names} differ in shape (z, y, x): {image.shape} vs {label.shape}",
            path=lab_p,
            fix=fix,
        )
    if not np.allclose(image.spacing_mm, label.spacing_mm, rtol=SPACING_RTOL, atol=1e-6):
        raise GridMismatchError(
            f"{names} differ in voxel spacing (z, y, x mm): "
            f"{_fmt(image.spacing_mm)} vs {_fmt(label.spacing_mm)}",
            path=lab_p,
            fix=fix,
        )
    img_dir = image.affine[:3, :3] / np.asarray(image.spacing_mm)
    lab_dir = label.affine[:3, :3] / np.asarray(label.spacing_mm)
    if not np.allclose(img_dir, lab_dir, atol=1e-4):
        raise GridMismatchError(
            f"{names} differ in orientation (direction cosines; file axes "
            f"{image.file_orientation} vs {label.file_orientation})",
            path=lab_p,
            fix=fix,
        )
    if not np.allclose(image.affine[:3, 3], label.affine[:3, 3], atol=GEOMETRY_ATOL_MM):
        raise GridMismatchError(
            f"{names} differ in origin (mm): {_fmt(image.affine[:3, 3])} vs "
            f"{_fmt(label.affine[:3, 3])}",
            path=lab_p,
            fix=fix,
        )


def _fmt(values: npt.ArrayLike) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in np.asarray(values)) + ")"


class Case:
    """An image and its label map, loaded on first access and checked to share one grid.

    Nothing is read at construction; ``image``, ``label`` and ``targets`` load on demand and
    :meth:`release` frees the arrays again, so iterating over a large dataset holds one case in
    memory at a time.
    """

    def __init__(
        self,
        case_id: str,
        image_path: Path,
        label_path: Path,
        *,
        labels: Mapping[str, int],
        spec: TargetSpec,
        channel: int | None = None,
        dataset: str = "",
    ):
        self.case_id = case_id
        self.image_path = Path(image_path)
        self.label_path = Path(label_path)
        self.labels = dict(labels)
        self.spec = spec
        self.channel = channel
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"Case({self.dataset + '/' if self.dataset else ''}{self.case_id})"

    @functools.cached_property
    def image(self) -> Volume:
        return load_volume(self.image_path, channel=self.channel)

    @functools.cached_property
    def label(self) -> Volume:
        lab = load_label(self.label_path)
        check_same_grid(self.image, lab)
        return lab

    @functools.cached_property
    def _extracted(self) -> tuple[list[Target], list[SkippedTarget]]:
        return extract_targets(self.case_id, self.label.array, self.labels, self.spec)

    @property
    def targets(self) -> list[Target]:
        """The evaluable targets of this case."""
        return self._extracted[0]

    @property
    def skipped(self) -> list[SkippedTarget]:
        """Declared targets that are empty (or too small) in this case."""
        return self._extracted[1]

    @property
    def skipped_targets(self) -> list[tuple[str, str]]:
        """(label name, reason) of every target of this case that is not scored: declared labels
        that are empty (or instances below ``min_voxels``), then label values that the label map
        holds but ``dataset.json`` does not declare (named ``label_<value>``)."""
        out = [(s.name, s.reason) for s in self.skipped]
        out += [
            (
                f"label_{v}",
                f"undeclared: label value {v} is in the label map but not in dataset.json 'labels'",
            )
            for v in self.undeclared_label_values
        ]
        return out

    @property
    def undeclared_label_values(self) -> list[int]:
        """Non-zero values of the label map that ``dataset.json`` neither declares nor excludes."""
        known = {int(v) for v in self.labels.values()} | set(self.spec.exclude) | {0}
        return sorted(self.present_label_values - known)

    @property
    def present_label_values(self) -> set[int]:
        return set(self._present)

    @functools.cached_property
    def _present(self) -> frozenset[int]:
        return frozenset(int(v) for v in np.unique(self.label.array))

    def release(self) -> None:
        """Drop the loaded arrays (they are read again on next access)."""
        for name in ("image", "label", "_extracted", "_present"):
            self.__dict__.pop(name, None)
