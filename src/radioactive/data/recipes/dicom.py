"""The base of the recipes whose release is DICOM image series with DICOM-SEG labels (TCIA, IDC).

Reading DICOM lives in :mod:`radioactive.data.dicom_io` (series discovery, image series) and
:mod:`radioactive.data.dicom_seg` (segmentations); their public names are re-exported here. This
module pairs each SEG with the image series it references, orders a patient's scans and holds
:class:`DicomSegRecipe`, which fetches a collection and converts its scans.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radioactive.data.dicom_io import DicomSeriesError, SeriesInfo, find_series, read_image_series
from radioactive.data.dicom_seg import Segment, read_seg
from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, ConvertedCase, PublicRecipe, SourceFile
from radioactive.errors import RecipeError

__all__ = [
    "DicomSegRecipe",
    "DicomSeriesError",
    "Scan",
    "SegPair",
    "Segment",
    "SeriesInfo",
    "case_id_from",
    "find_series",
    "first_scans",
    "pair_segs",
    "read_image_series",
    "read_seg",
    "scan_order",
    "seg_file",
    "union",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class SegPair:
    """A SEG series and the image series it references (when present)."""

    seg: SeriesInfo
    image: SeriesInfo | None


def pair_segs(series: dict[str, SeriesInfo], image_modality: str = "CT") -> list[SegPair]:
    """Every SEG series with the image series it references (``None`` when absent)."""
    out = []
    for s in sorted(series.values(), key=lambda x: (x.patient_id, x.study_date, x.uid)):
        if s.modality != "SEG":
            continue
        image = next(
            (
                series[u]
                for u in s.referenced_series
                if u in series and series[u].modality == image_modality
            ),
            None,
        )
        out.append(SegPair(s, image))
    return out


def scan_order(pair: SegPair) -> tuple[str, str, int, str]:
    """Sort key of a patient's scans: study date and time, then series number."""
    im = pair.image
    if im is None:
        return ("", "", 0, pair.seg.uid)
    return (im.study_date, im.study_time, im.series_number or 0, pair.seg.uid)


@dataclass(frozen=True)
class Scan:
    """One case to convert from a SEG and its image series.

    Attributes:
        case_id: the case's id.
        pair: the SEG series and the image series it references.
        extra: what the case's source records after the fields of
            :meth:`DicomSegRecipe.source_of` and of :meth:`DicomSegRecipe.label`.
    """

    case_id: str
    pair: SegPair
    extra: Mapping[str, Any] = field(default_factory=dict)


def first_scans(by_patient: Mapping[str, Sequence[SegPair]]) -> list[Scan]:
    """One scan per case id: the patient's first in :func:`scan_order` (``by_patient`` as
    :meth:`DicomSegRecipe.patient_scans` gives it); the SEG series of the others are recorded
    as ``unused_seg_series``."""
    kept: dict[str, tuple[SegPair, list[str]]] = {}
    for pid, ordered in by_patient.items():
        case_id = case_id_from(pid)
        for pair in ordered:
            if case_id in kept:
                kept[case_id][1].append(pair.seg.uid)
            else:
                kept[case_id] = (pair, [])
    return [
        Scan(case_id, pair, {"unused_seg_series": unused} if unused else {})
        for case_id, (pair, unused) in kept.items()
    ]


def seg_file(seg: SeriesInfo) -> Path:
    """The file of a single-file SEG series (the largest when a release splits one)."""
    if seg.n_files == 1:
        return seg.files[0]
    log.warning("SEG series %s has %d files; using the largest", seg.uid, seg.n_files)
    return max(seg.files, key=lambda p: p.stat().st_size)


# ---------------------------------------------------------------------------------- recipes


def case_id_from(patient_id: str) -> str:
    """A file-name-safe case id from a DICOM PatientID (other characters become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", patient_id.strip()).strip("._")
    return safe or "case"


def union(segments: Iterable[Segment]) -> np.ndarray | None:
    """The union of the segments' masks as a boolean (z, y, x) array (``None`` for none)."""
    out: np.ndarray | None = None
    for s in segments:
        arr = s.array()
        out = arr if out is None else (out | arr)
    return out


class DicomSegRecipe(PublicRecipe):
    """Base of the recipes whose release is CT series with DICOM-SEG labels (TCIA, IDC).

    Subclasses set ``tcia_collection`` (fetched with the TCIA helpers: every SEG series of the
    collection, then the image series each SEG references) or ``idc_collection`` (fetched with
    idc-index), ``excluded`` (patients the paper's rules leave out, with the reason) and
    implement :meth:`convert`, usually as :meth:`convert_scans` over the cases they choose from
    :meth:`patient_scans` (or :meth:`convert_first_scans`) with their rules in :meth:`label`. The
    raw folder may have any layout; series are found by their headers. :meth:`missing` reports
    patients with images but no SEG and SEGs whose image series is absent.
    """

    image_modality: ClassVar[str] = "CT"
    tcia_collection: ClassVar[str | None] = None
    idc_collection: ClassVar[str | None] = None
    #: PatientID -> why the paper's protocol leaves this patient out
    excluded: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self._scans: dict[Path, tuple[tuple[Any, ...], dict[str, SeriesInfo]]] = {}

    # ------------------------------------------------------------------ raw folder

    def wanted(self, patient_id: str) -> bool:
        """Whether this patient belongs to the dataset (default: not in ``excluded``)."""
        return patient_id not in self.excluded

    def scan(self, raw: Path) -> dict[str, SeriesInfo]:
        """The CT and SEG series under ``raw`` (cached while the folder is unchanged)."""
        raw = Path(raw).resolve()
        stamp = tuple(
            (str(p), st.st_size, st.st_mtime_ns)
            for p in sorted(raw.rglob("*"))
            if p.is_file() and (st := p.stat())
        )
        hit = self._scans.get(raw)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        series = find_series(raw, modalities={self.image_modality, "SEG"})
        self._scans[raw] = (stamp, series)
        return series

    def pairs(self, raw: Path) -> list[SegPair]:
        """SEG series of wanted patients with their image series."""
        return [
            p
            for p in pair_segs(self.scan(raw), self.image_modality)
            if self.wanted(p.seg.patient_id)
        ]

    def patient_scans(self, raw: Path) -> dict[str, list[SegPair]]:
        """The pairs of :meth:`pairs` by PatientID (in sorted order), each patient's sorted by
        :func:`scan_order`."""
        by_patient: dict[str, list[SegPair]] = defaultdict(list)
        for p in self.pairs(raw):
            by_patient[p.seg.patient_id].append(p)
        return {pid: sorted(by_patient[pid], key=scan_order) for pid in sorted(by_patient)}

    def missing(self, raw: Path) -> list[SourceFile]:
        where = self._where()
        series = self.scan(raw)
        segs = [s for s in series.values() if s.modality == "SEG" and self.wanted(s.patient_id)]
        images = [
            s
            for s in series.values()
            if s.modality == self.image_modality and self.wanted(s.patient_id)
        ]
        out: list[SourceFile] = []
        if not segs and not images:
            return [
                SourceFile(
                    f"{self.image_modality} and SEG series of the collection",
                    how=f"no DICOM series were found under {raw}; {where}",
                )
            ]
        if not segs:
            out.append(SourceFile("SEG series", how=f"no DICOM-SEG found; {where}"))
        seg_patients = {s.patient_id for s in segs}
        for pid in sorted({s.patient_id for s in images} - seg_patients):
            out.append(
                SourceFile(
                    f"SEG series of patient {pid}",
                    how=f"its {self.image_modality} series are present but no SEG; {where}",
                )
            )
        for pair in pair_segs(series, self.image_modality):
            if pair.image is None and self.wanted(pair.seg.patient_id):
                ref = ", ".join(pair.seg.referenced_series) or "(the SEG names none)"
                out.append(
                    SourceFile(
                        f"{self.image_modality} series {ref} of patient {pair.seg.patient_id}",
                        how=f"referenced by SEG series {pair.seg.uid} at {pair.seg.folder}; "
                        f"{where}",
                    )
                )
        return out

    def _where(self) -> str:
        if self.tcia_collection:
            return (
                f"download the collection {self.tcia_collection!r} from TCIA ({self.homepage}) "
                "with the NBIA Data Retriever, or let `radioactive datasets prepare` fetch it"
            )
        if self.idc_collection:
            return (
                f"download the IDC collection {self.idc_collection!r} (`idc download "
                f"{self.idc_collection}` from the idc-index package; {self.homepage})"
            )
        return f"download the release from {self.homepage}"

    # ------------------------------------------------------------------ fetching

    def fetch(self, dest: Path, reporter: Reporter) -> None:
        if self.tcia_collection:
            self._fetch_tcia(dest, reporter)
        elif self.idc_collection:
            from radioactive.data.recipes.download import idc_download

            reporter.step(f"downloading IDC collection {self.idc_collection}")
            idc_download(self.idc_collection, dest)
        else:
            super().fetch(dest, reporter)

    def _fetch_tcia(self, dest: Path, reporter: Reporter) -> None:
        from radioactive.data.recipes.download import tcia_download_series, tcia_list_series

        assert self.tcia_collection is not None
        listed = tcia_list_series(self.tcia_collection, modality="SEG")
        seg_uids = [str(s["SeriesInstanceUID"]) for s in listed if s.get("SeriesInstanceUID")]
        if not seg_uids:
            raise RecipeError(
                f"TCIA lists no SEG series in the collection {self.tcia_collection!r}",
                fix=f"check the collection at {self.homepage}; download it by hand and pass "
                "--source-dir",
            )
        present = set(self.scan(dest))
        todo = [u for u in seg_uids if u not in present]
        reporter.begin(len(todo))
        for uid in todo:
            reporter.step(f"downloading SEG series {uid}")
            tcia_download_series(uid, dest)
        series = self.scan(dest)
        needed = sorted(
            {
                ref
                for s in series.values()
                if s.modality == "SEG" and s.uid in set(seg_uids) and self.wanted(s.patient_id)
                for ref in s.referenced_series
            }
            - set(series)
        )
        reporter.begin(len(needed))
        for uid in needed:
            reporter.step(f"downloading {self.image_modality} series {uid}")
            tcia_download_series(uid, dest)

    # ------------------------------------------------------------------ converting

    def load(self, pair: SegPair) -> tuple[Any, list[Segment]]:
        """The image of a pair and its SEG's segments on the image grid."""
        if pair.image is None:
            raise RecipeError(
                f"the {self.image_modality} series referenced by SEG {pair.seg.uid} is absent",
                path=pair.seg.folder,
                fix="download the referenced series",
            )
        image = read_image_series(pair.image, prefer_instances=pair.seg.referenced_instances)
        return image, read_seg(seg_file(pair.seg), image)

    @staticmethod
    def source_of(pair: SegPair, segments: Sequence[Segment], **extra: Any) -> dict[str, Any]:
        """What a converted case records about where it came from."""
        assert pair.image is not None
        return {
            "patient_id": pair.seg.patient_id,
            "image_series": pair.image.summary(),
            "seg_series": pair.seg.summary(),
            "segments": {str(s.number): s.label for s in segments},
            **extra,
        }

    def label(
        self, pair: SegPair, segments: list[Segment]
    ) -> tuple[np.ndarray, dict[str, Any]] | str:
        """The label of a pair, a (z, y, x) mask on its image's grid (written as uint8), with
        what its case records beyond :meth:`source_of`'s fields; or why the pair is dropped.

        Recipes that convert with :meth:`convert_scans` implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement label()")

    def convert_scan(
        self, scan: Scan, writer: CaseWriter, reporter: Reporter
    ) -> ConvertedCase | str:
        """Load a scan, label it with :meth:`label` and write it: the converted case, or why
        it is dropped."""
        reporter.step(scan.case_id)
        try:
            image, segments = self.load(scan.pair)
        except RecipeError as exc:
            return f"unreadable: {exc.problem} ({exc.path})"
        labelled = self.label(scan.pair, segments)
        if isinstance(labelled, str):
            return labelled
        mask, fields = labelled
        writer.write(scan.case_id, image, mask.astype(np.uint8))
        return ConvertedCase(
            scan.case_id, self.source_of(scan.pair, segments, **fields, **scan.extra)
        )

    def convert_scans(
        self,
        scans: Sequence[Scan],
        writer: CaseWriter,
        reporter: Reporter,
        *,
        total: int | None = None,
        dropped: dict[str, str] | None = None,
    ) -> tuple[list[ConvertedCase], dict[str, str]]:
        """Convert each scan with :meth:`convert_scan`: the cases written and the dropped ones
        (added to ``dropped`` when given). ``total`` is the progress count (default: the
        number of scans)."""
        reporter.begin(len(scans) if total is None else total)
        cases: list[ConvertedCase] = []
        dropped = {} if dropped is None else dropped
        for scan in scans:
            out = self.convert_scan(scan, writer, reporter)
            if isinstance(out, str):
                dropped[scan.case_id] = out
            else:
                cases.append(out)
        return cases, dropped

    def convert_first_scans(
        self,
        raw: Path,
        writer: CaseWriter,
        reporter: Reporter,
        *,
        dropped: dict[str, str] | None = None,
    ) -> tuple[list[ConvertedCase], dict[str, str]]:
        """:meth:`convert_scans` of each patient's first scan (:func:`first_scans`)."""
        by_patient = self.patient_scans(raw)
        return self.convert_scans(
            first_scans(by_patient),
            writer,
            reporter,
            total=sum(len(p) for p in by_patient.values()),
            dropped=dropped,
        )
