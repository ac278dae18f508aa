"""Dataset folders: nnU-Net raw, Medical Segmentation Decathlon and plain image/label pairs.

:func:`open_dataset` recognises the layout and lists the cases without reading any volume, so a
dataset of hundreds of CT scans costs nothing to open. Cases load one at a time on access.

Layouts:

* **nnU-Net raw (v2)**: ``dataset.json`` with ``channel_names``, ``labels`` (name -> value) and
  ``file_ending``; ``imagesTr/<case>_0000<ending>`` and ``labelsTr/<case><ending>``.
* **Decathlon**: ``dataset.json`` with ``modality``, ``labels`` (value -> name) and a
  ``training`` list of ``{"image": ..., "label": ...}``; 4D images need a channel.
* **Plain folder**: ``images/`` and ``labels/`` holding files with the same names, or one folder
  with ``<case>_image.<ext>`` and ``<case>_label.<ext>`` (also ``_seg``, ``_mask``). Label names
  default to ``label_<value>``.

Optional benchmark metadata lives under the key ``"radioactive"`` of ``dataset.json`` (see
:class:`DatasetMeta`); nnU-Net and Decathlon tools ignore it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radioactive.data.case import Case, TargetSpec
from radioactive.data.volume import NIFTI_SUFFIXES, SITK_SUFFIXES
from radioactive.errors import DatasetError, MissingFileError

Format = Literal["nnunet", "decathlon", "folder"]

_IMAGE_SUFFIXES = NIFTI_SUFFIXES + SITK_SUFFIXES
_PAIR_RE = re.compile(r"^(?P<case>.+?)_(?P<role>image|img|label|seg|mask)$", re.IGNORECASE)
_CT_NAMES = {"ct", "cect", "nect", "cta", "ct angiography", "computed tomography", "pet/ct", "cbct"}
_MR_PREFIXES = ("mr", "t1", "t2", "flair", "dwi", "adc", "pd", "swi", "dce", "bold")

log = logging.getLogger(__name__)


def modality_key(modality: str | None) -> str | None:
    """``"CT"`` or ``"MR"`` for a modality as datasets write it (``"CT"``, ``"MRI T2"``,
    ``"FLAIR"``, ``"t1"``…), ``None`` when it is neither or unknown: the one vocabulary of the
    paper's MRI / CT split and of the models' input contracts."""
    if modality is None:
        return None
    text = str(modality).strip().lower()
    if not text or text in ("unknown", "none", "nan"):
        return None
    if text in _CT_NAMES or text.startswith("ct"):
        return "CT"
    if text.startswith(_MR_PREFIXES) or "flair" in text or "mri" in text:
        return "MR"
    return None


class DatasetMeta(BaseModel):
    """The ``"radioactive"`` block of ``dataset.json``: what the benchmark needs beyond nnU-Net."""

    model_config = ConfigDict(extra="allow")

    modality: str | None = None
    #: "pathology" or "organ": the paper's sub-averages
    category: Literal["pathology", "organ", "mixed"] | None = None
    targets: TargetSpec = Field(default_factory=TargetSpec)
    channel: int = 0
    licence: str | None = None
    recipe: str | None = None
    recipe_version: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    #: relative path -> sha256 of every file of the dataset
    files: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class CaseRef:
    """Where a case's files are; nothing is read."""

    case_id: str
    image: Path
    label: Path


@dataclass
class Dataset:
    """A labelled dataset: its cases (loaded lazily), label names and target rules.

    ``problems`` lists what was found in the folder but left out, one readable line each (an
    image without its label, a hidden file such as an AppleDouble ``._case.nii.gz``); each was
    also logged as a warning when the dataset was opened.
    """

    name: str
    root: Path
    format: Format
    labels: dict[str, int]
    meta: DatasetMeta
    refs: list[CaseRef] = field(repr=False)
    problems: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.meta.modality or "unknown"

    @property
    def modality_group(self) -> str:
        """``"CT"``, ``"MR"`` or the modality as written: the paper's MRI / CT split
        (:func:`modality_key`)."""
        return modality_key(self.modality) or self.modality

    @property
    def case_ids(self) -> list[str]:
        return [r.case_id for r in self.refs]

    def __len__(self) -> int:
        return len(self.refs)

    def case(self, case_id: str) -> Case:
        for r in self.refs:
            if r.case_id == case_id:
                return self._make(r)
        raise DatasetError(
            f"no case {case_id!r} in dataset {self.name}",
            path=self.root,
            fix=f"choose one of: {', '.join(self.case_ids[:10])}"
            + (" ..." if len(self.refs) > 10 else ""),
        )

    def __iter__(self) -> Iterator[Case]:
        for r in self.refs:
            yield self._make(r)

    def _make(self, r: CaseRef) -> Case:
        return Case(
            r.case_id,
            r.image,
            r.label,
            labels=self.labels,
            spec=self.meta.targets,
            channel=self.meta.channel if self.format == "decathlon" else None,
            dataset=self.name,
        )

    def check_labels(self, present: Mapping[str, set[int]]) -> None:
        """Raise if ``dataset.json`` names labels that appear in no case.

        Args:
            present: case id -> label values found in that case (e.g. from
                :attr:`Case.present_label_values`), for every case of the dataset.
        """
        seen: set[int] = set().union(*present.values()) if present else set()
        excluded = set(self.meta.targets.exclude)
        missing = {
            n: v for n, v in self.labels.items() if v != 0 and v not in seen and v not in excluded
        }
        if missing:
            listing = ", ".join(
                f"{n} ({v})" for n, v in sorted(missing.items(), key=lambda x: x[1])
            )
            raise DatasetError(
                f"dataset.json names labels that appear in no case: {listing}",
                path=self.root / "dataset.json",
                fix="remove them from 'labels', or list their values under "
                "radioactive.targets.exclude",
            )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"invalid JSON ({exc})", path=path, fix="repair the file (it must be valid JSON)"
        ) from exc
    if not isinstance(data, dict):
        raise DatasetError("expected a JSON object at the top level", path=path)
    return data


def _meta(raw: dict[str, Any], path: Path, **overrides: Any) -> DatasetMeta:
    block = dict(raw.get("radioactive") or {})
    block.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return DatasetMeta.model_validate(block)
    except ValidationError as exc:
        raise DatasetError(
            f"invalid 'radioactive' block:\n{exc}",
            path=path,
            fix="see the dataset format documentation (docs/datasets.md)",
        ) from exc


def _labels_from(raw: Any, path: Path, *, value_keys: bool) -> dict[str, int]:
    if not isinstance(raw, dict) or not raw:
        raise DatasetError("'labels' is missing or empty", path=path, fix="list the label names")
    out: dict[str, int] = {}
    try:
        if value_keys:  # Decathlon: {"0": "background", "1": "liver"}
            for k, v in raw.items():
                out[str(v)] = int(k)
        else:  # nnU-Net v2: {"background": 0, "liver": 1}; regions (lists) are not targets
            for k, v in raw.items():
                if isinstance(v, list):
                    raise DatasetError(
                        f"label {k!r} is a region (list of values); regions are not supported "
                        "as benchmark targets",
                        path=path,
                        fix="give each structure its own integer value",
                    )
                out[str(k)] = int(v)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"'labels' holds a non-integer value ({exc})", path=path) from exc
    return out


def _open_nnunet(root: Path, raw: dict[str, Any], **overrides: Any) -> Dataset:
    js = root / "dataset.json"
    ending = raw.get("file_ending", ".nii.gz")
    labels = _labels_from(raw.get("labels"), js, value_keys=False)
    meta = _meta(raw, js, **overrides)
    if meta.modality is None and isinstance(raw.get("channel_names"), dict):
        meta.modality = str(next(iter(raw["channel_names"].values())))
    lab_dir, img_dir = root / "labelsTr", root / "imagesTr"
    if not lab_dir.is_dir():
        raise MissingFileError(
            "labelsTr/ not found", path=lab_dir, fix="an nnU-Net raw dataset needs labelsTr/"
        )
    problems: list[str] = []
    labels_found = [
        p for p in _visible(sorted(lab_dir.iterdir()), root, problems) if p.name.endswith(ending)
    ]
    refs = []
    channel = meta.channel
    for lab in labels_found:
        case_id = lab.name[: -len(ending)]
        img = img_dir / f"{case_id}_{channel:04d}{ending}"
        if not img.exists():
            raise MissingFileError(
                f"image for case {case_id!r} not found",
                path=img,
                fix=f"add the image, or remove {lab.name} from labelsTr/",
            )
        refs.append(CaseRef(case_id, img, lab))
    if not refs:
        raise DatasetError(
            f"no label files ending in {ending!r} in labelsTr/",
            path=lab_dir,
            fix="check 'file_ending' in dataset.json",
        )
    labelled = {r.case_id for r in refs}
    suffix = f"_{channel:04d}{ending}"
    images = _visible(sorted(img_dir.iterdir()), root, problems) if img_dir.is_dir() else []
    for img in (p for p in images if p.name.endswith(suffix)):
        case_id = img.name[: -len(suffix)]
        if case_id not in labelled:
            problems.append(
                f"imagesTr/{img.name} has no label labelsTr/{case_id}{ending}: "
                f"case {case_id!r} left out"
            )
    _warn(root, problems)
    name = str(raw.get("name") or root.name)
    return Dataset(name, root, "nnunet", labels, meta, refs, problems)


def _open_decathlon(root: Path, raw: dict[str, Any], **overrides: Any) -> Dataset:
    js = root / "dataset.json"
    labels = _labels_from(raw.get("labels"), js, value_keys=True)
    meta = _meta(raw, js, **overrides)
    if meta.modality is None and isinstance(raw.get("modality"), dict):
        meta.modality = str(
            raw["modality"].get(str(meta.channel), next(iter(raw["modality"].values())))
        )
    refs = []
    for i, entry in enumerate(raw.get("training") or []):
        try:
            img, lab = root / entry["image"], root / entry["label"]
        except (KeyError, TypeError) as exc:
            raise DatasetError(
                f"training entry {i} lacks 'image' or 'label'", path=js, fix="repair the entry"
            ) from exc
        for p in (img, lab):
            if not p.exists():
                raise MissingFileError(
                    f"file of training entry {i} not found",
                    path=p,
                    fix="restore the file or remove the entry from dataset.json",
                )
        refs.append(CaseRef(_strip_suffix(lab.name), img, lab))
    if not refs:
        raise DatasetError("'training' is empty", path=js, fix="list the labelled cases")
    return Dataset(str(raw.get("name") or root.name), root, "decathlon", labels, meta, refs)


def _visible(paths: list[Path], root: Path, problems: list[str]) -> list[Path]:
    """``paths`` without hidden files (``.DS_Store``, AppleDouble ``._case.nii.gz`` written by
    macOS on foreign disks), each of which is listed in ``problems``."""
    kept = []
    for p in paths:
        if p.name.startswith("."):
            problems.append(f"{p.relative_to(root)}: hidden file ignored (not a case)")
        else:
            kept.append(p)
    return kept


def _warn(root: Path, problems: list[str]) -> None:
    for line in problems:
        log.warning("dataset %s: %s", root, line)


def _strip_suffix(name: str) -> str:
    low = name.lower()
    for s in _IMAGE_SUFFIXES:
        if low.endswith(s):
            return name[: -len(s)]
    return name


def _is_image(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(_IMAGE_SUFFIXES)


def _open_folder(root: Path, labels: Mapping[str, int] | None = None, **overrides: Any) -> Dataset:
    pairs: dict[str, dict[str, Path]] = {}
    problems: list[str] = []
    if (root / "images").is_dir() and (root / "labels").is_dir():
        for role, sub in (("image", "images"), ("label", "labels")):
            for p in _visible(sorted((root / sub).iterdir()), root, problems):
                if _is_image(p):
                    pairs.setdefault(_strip_suffix(p.name), {})[role] = p
    else:
        for p in _visible(sorted(root.iterdir()), root, problems):
            m = _PAIR_RE.match(_strip_suffix(p.name)) if _is_image(p) else None
            if m:
                role = "image" if m["role"].lower() in ("image", "img") else "label"
                pairs.setdefault(m["case"], {})[role] = p
    if not pairs:
        raise DatasetError(
            "not a dataset folder",
            path=root,
            fix="use an nnU-Net raw or Decathlon folder (with dataset.json), a folder with "
            "images/ and labels/, or files named <case>_image.nii.gz and <case>_label.nii.gz",
        )
    refs = []
    for case_id, roles in sorted(pairs.items()):
        for role in ("image", "label"):
            if role not in roles:
                other = next(iter(roles.values()))
                raise MissingFileError(
                    f"case {case_id!r} has no {role} file",
                    path=other,
                    fix=f"add the matching {role} or remove the file",
                )
        refs.append(CaseRef(case_id, roles["image"], roles["label"]))
    _warn(root, problems)
    meta = _meta({}, root, **overrides)
    if labels is None:
        from radioactive.data.volume import load_label

        values = sorted({int(v) for r in refs for v in _unique(load_label(r.label).array)} - {0})
        labels = {f"label_{v}": v for v in values}
    return Dataset(root.name, root, "folder", dict(labels), meta, refs, problems)


def _unique(arr: Any) -> Any:
    import numpy as np

    return np.flatnonzero(np.bincount(arr.ravel()))


def open_dataset(
    path: str | Path,
    *,
    labels: Mapping[str, int] | None = None,
    modality: str | None = None,
    targets: TargetSpec | None = None,
) -> Dataset:
    """Open a dataset folder, recognising its layout; no volume is read.

    Args:
        path: the dataset folder.
        labels: name -> value, for plain folders (default: every value found, ``label_<v>``).
        modality: overrides the modality recorded in ``dataset.json``.
        targets: overrides the target rules recorded in ``dataset.json``.
    """
    root = Path(path)
    if not root.exists():
        raise MissingFileError(
            "dataset folder not found",
            path=root,
            fix="check the path, or prepare a known dataset with "
            "`radioactive datasets prepare NAME`",
        )
    if not root.is_dir():
        raise DatasetError("a dataset is a folder, not a file", path=root)
    overrides = {"modality": modality, "targets": targets}
    js = root / "dataset.json"
    if js.exists():
        raw = _read_json(js)
        if isinstance(raw.get("training"), list):
            return _open_decathlon(root, raw, **overrides)
        return _open_nnunet(root, raw, **overrides)
    return _open_folder(root, labels, **overrides)


def is_dataset_dir(path: Path) -> bool:
    """Whether ``path`` looks like a dataset folder of a supported layout."""
    return (path / "dataset.json").is_file() or (
        (path / "images").is_dir() and (path / "labels").is_dir()
    )
