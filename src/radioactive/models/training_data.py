"""What each model's weights were trained on, and whether that overlaps an evaluation dataset.

:data:`TRAINING_DATA` records, per model name, the collections its weights saw (identifiers in
the vocabulary of :mod:`radioactive.data.collections`), where each claim comes from, and how
complete the published list is:

* ``complete`` — the authors publish the full list, and every set of it is here;
* ``partial`` — some sets are named (by the authors, or here: a published list not yet
  transcribed counts as partial);
* ``unknown`` — the training data are not published;
* ``none`` — a weight-free method.

A model fine-tuned or distilled from another (``based_on``) also saw that model's data:
:func:`training_data` merges them. A model name missing from the table (a plugin) is
``unknown``.

:func:`overlap` compares a model with a dataset's collections:

* ``known`` — a training set is, contains or is contained in one of the dataset's collections;
* ``possible`` — nothing matches, but the model's list is partial or unknown;
* ``none`` — the model's list is complete (or the model is weight-free) and nothing matches;
* ``unknown`` — the dataset's collections are not known (never shown as clean).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from radioactive.data.collections import shares_images

__all__ = [
    "OVERLAP_ORDER",
    "TRAINING_DATA",
    "Overlap",
    "Source",
    "TrainingData",
    "overlap",
    "training_data",
    "worst",
]

Completeness = Literal["complete", "partial", "unknown", "none"]
OverlapStatus = Literal["known", "possible", "unknown", "none"]
SourceKind = Literal["paper", "supplement", "model card", "repository", "issue", "code"]

#: overlap statuses from the most to the least serious
OVERLAP_ORDER: tuple[OverlapStatus, ...] = ("known", "possible", "unknown", "none")


@dataclass(frozen=True)
class Source:
    """Where a claim about training data comes from."""

    citation: str
    kind: SourceKind

    def __str__(self) -> str:
        return f"{self.citation} [{self.kind}]"


@dataclass(frozen=True)
class TrainingData:
    """What a model's weights were trained on.

    Attributes:
        model: registry name.
        status: how complete ``sets`` is (see the module docstring).
        sets: collection identifiers.
        sources: where the claims come from (at least one).
        based_on: models whose weights these were fine-tuned or distilled from.
        note: what the list lacks, in a sentence.
    """

    model: str
    status: Completeness
    sets: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    based_on: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "sets": list(self.sets),
            "sources": [{"citation": s.citation, "kind": s.kind} for s in self.sources],
            "based_on": list(self.based_on),
            "note": self.note,
        }


_SAM = Source(
    "Kirillov et al., Segment Anything, ICCV 2023: the model is trained on SA-1B (11M "
    "licensed natural images, 1.1B masks)",
    "paper",
)
_SAM2 = Source(
    "Ravi et al., SAM 2: Segment Anything in Images and Videos, arXiv:2408.00714 (2024): "
    "trained on SA-1B, SA-V and an internal licensed video set that is not published",
    "paper",
)
_SAM3 = Source(
    "Carion et al., SAM 3: Segment Anything with Concepts (Meta, November 2025): trained on "
    "the SA-Co data its data engine produced from images and videos of several sources; no "
    "list of the underlying collections is published",
    "paper",
)
_MEDSAM = Source(
    "Ma et al., Segment anything in medical images, Nat. Commun. 15:654 (2024): 1,570,263 "
    "image-mask pairs from public datasets, listed in its Supplementary Table 1 (the "
    "maintainers point there in bowang-lab/MedSAM issue #375)",
    "supplement",
)
_SAMMED3D_LIST = (
    "AMOS22", "ATM22", "AbdomenCT-1K", "BTCV-Cervix", "BraTS2020", "BraTS2021",
    "MSD-Task01-BrainTumour", "Brain-PTM", "CAUSE07", "CHAOS", "COSMOS2022",
    "COVID-19-CT-Scans", "CTPelvic1K", "CT-ORG", "FLARE21", "FLARE22", "Heart-Seg-MRI",
    "ISLES2015-SISS", "ISLES2015-SPES", "KiPA22", "KiTS19", "KiTS21", "LAScarQS22", "LiTS",
    "MM-WHS", "MSD-Task10-Colon", "MSD-Task08-HepaticVessel", "MSD-Task03-Liver",
    "MSD-Task07-Pancreas", "MSD-Task05-Prostate", "MSD-Task09-Spleen", "PROMISE12", "PARSE22",
    "PROMISE09", "Prostate-MRI-Segmentation", "SLIVER07", "STACOM-SLAWT", "SegTHOR",
    "TotalSegmentator", "VESSEL12", "VerSe19", "VerSe20", "WORD",
)  # fmt: skip

_ENTRIES: tuple[TrainingData, ...] = (
    TrainingData("sam", "complete", ("SA-1B",), (_SAM,)),
    TrainingData(
        "mobilesam",
        "complete",
        ("SA-1B",),
        (
            Source(
                "Zhang et al., Faster Segment Anything: Towards Lightweight SAM for Mobile "
                "Applications, arXiv:2306.14289 (2023): image encoder distilled from SAM ViT-H "
                "on 1% of SA-1B; prompt encoder and mask decoder are SAM's",
                "paper",
            ),
        ),
        based_on=("sam",),
    ),
    TrainingData(
        "sam2",
        "partial",
        ("SA-1B", "SA-V"),
        (_SAM2,),
        note="SAM 2's internal video data are not published",
    ),
    TrainingData(
        "medsam",
        "partial",
        (),
        (_MEDSAM,),
        based_on=("sam",),
        note="the paper's full dataset list (Supplementary Table 1) is not transcribed here",
    ),
    TrainingData(
        "litemedsam",
        "partial",
        (),
        (
            Source(
                "bowang-lab/MedSAM, branch LiteMedSAM, README: a TinyViT encoder distilled from "
                "MedSAM, the baseline of the CVPR 2024 'MedSAM on Laptop' challenge, whose "
                "training set gathers public datasets of 11 modalities",
                "repository",
            ),
        ),
        based_on=("medsam",),
        note="the challenge's training datasets are not listed here",
    ),
    TrainingData(
        "sammed3d",
        "partial",
        ("SA-Med3D-140K", *_SAMMED3D_LIST, "ISLES2022"),
        (
            Source(
                "Wang et al., SAM-Med3D, arXiv:2310.15161: trained on SA-Med3D-140K (datasets "
                "in the ECCV supplementary, uni-medical/SAM-Med3D paper/)",
                "paper",
            ),
            Source(
                "uni-medical/SAM-Med3D issue #2, maintainer comment of 2023-12-10 (repeated in "
                "issue #39): 'some important training datasets', the 44 datasets SAM-Med3D-turbo "
                "was fine-tuned on, with the authors' own splits",
                "issue",
            ),
            Source(
                "uni-medical/SAM-Med3D issue #14, maintainer comment of 2023-11-24: the training "
                "data include ISLES 2022",
                "issue",
            ),
        ),
        note="'some important' datasets: the list is not said to be complete, and the authors "
        "used their own train/validation splits of each",
    ),
    TrainingData(
        "nninteractive",
        "partial",
        (),
        (
            Source(
                "Isensee et al., nnInteractive: Redefining 3D Promptable Segmentation, "
                "arXiv:2503.08373 (2025): trained on over 120 public 3D datasets (CT, MR, PET, "
                "3D microscopy) listed in the paper's appendix",
                "paper",
            ),
        ),
        note="the paper's dataset list is not transcribed here",
    ),
    TrainingData(
        "filled_box",
        "none",
        (),
        (Source("radioactive.models.classical: no trained parameters", "code"),),
    ),
    TrainingData(
        "random_walker",
        "none",
        (),
        (Source("radioactive.models.classical: no trained parameters", "code"),),
    ),
    TrainingData(
        "cvpr25_container",
        "unknown",
        (),
        (
            Source(
                "CVPR 2025 interactive 3D segmentation challenge: each submission ships its own "
                "weights, trained on data of its authors' choosing",
                "model card",
            ),
        ),
    ),
    TrainingData(
        "sam3",
        "partial",
        ("SA-Co",),
        (
            _SAM3,
            Source(
                "facebookresearch/sam3 issue #566 (2026-05-31): users ask whether medical "
                "images were used in training; neither the paper nor the repository says",
                "issue",
            ),
        ),
        note="the collections behind SA-Co are not published as a list; medical data unknown",
    ),
    TrainingData(
        "sammed2d",
        "partial",
        ("SA-Med2D-20M", "M&Ms"),
        (
            Source(
                "Cheng et al., SAM-Med2D, arXiv:2308.16184: fine-tuned from SAM on "
                "SA-Med2D-20M, whose datasets Ye et al. list in arXiv:2311.11969",
                "paper",
            ),
            Source(
                "HiLab-git/IPLC issue #2 (2024-10-05): M&Ms is among SA-Med2D-20M's datasets "
                "(arXiv:2311.11969, its dataset table)",
                "issue",
            ),
        ),
        based_on=("sam",),
        note="SA-Med2D-20M's dataset list is not transcribed here",
    ),
    TrainingData(
        "medsam2",
        "partial",
        ("DeepLesion", "LLD-MMRI", "LIDC-IDRI"),
        (
            Source(
                "Ma et al., MedSAM2: Segment Anything in 3D Medical Images and Videos, "
                "arXiv:2504.03600 (2025): SAM 2.1 fine-tuned on over 455,000 3D image-mask "
                "pairs and 76,000 video frames, listed in its Supplementary Table 1",
                "paper",
            ),
            Source(
                "bowang-lab/MedSAM2 issue #5 (2025-04-13): the authors state that all the LIDC "
                "nodule data were used in training, test scans included",
                "issue",
            ),
            Source(
                "bowang-lab/MedSAM2 README: the CT lesion (DeepLesion) and liver MRI lesion "
                "(LLD-MMRI) annotations made for it; the dataset list at "
                "medsam-datasetlist.github.io",
                "repository",
            ),
        ),
        based_on=("sam2",),
        note="the full dataset list is not transcribed here",
    ),
)


def _table() -> dict[str, TrainingData]:
    table = {e.model: e for e in _ENTRIES}
    same = {"sam2_video": "sam2", "sam3_video": "sam3"}  # the same weights, another predictor
    for alias, model in same.items():
        table[alias] = dataclasses.replace(
            table[model], model=alias, note=f"the weights of {model}. {table[model].note}".strip()
        )
    return table


#: model name → what its own weights were trained on (before merging ``based_on``)
TRAINING_DATA: dict[str, TrainingData] = _table()


def _merge_status(a: Completeness, b: Completeness, named: bool) -> Completeness:
    if a == "none":
        return b
    if b == "none":
        return a
    if a == b == "complete":
        return "complete"
    return "partial" if named else "unknown"


def training_data(model: str) -> TrainingData:
    """What ``model``'s weights saw, with the data of the models it is based on merged in;
    a name missing from :data:`TRAINING_DATA` is ``unknown``."""
    own = TRAINING_DATA.get(model)
    if own is None:
        return TrainingData(model, "unknown", (), (Source(
            f"no training-data record for model {model!r} (a plugin, or not yet described)",
            "code",
        ),))  # fmt: skip
    merged = own
    for base in own.based_on:
        other = training_data(base)
        sets = tuple(dict.fromkeys((*merged.sets, *other.sets)))
        merged = dataclasses.replace(
            merged,
            status=_merge_status(merged.status, other.status, bool(sets)),
            sets=sets,
            sources=tuple(dict.fromkeys((*merged.sources, *other.sources))),
        )
    return merged


@dataclass(frozen=True)
class Overlap:
    """Whether a model's training data overlap an evaluation dataset.

    Attributes:
        status: ``known``, ``possible``, ``none`` or ``unknown`` (see the module docstring).
        matched: ``training set ~ dataset collection`` for each match.
        sources: where the model's training sets and the matches come from.
        reason: the status in a sentence.
    """

    model: str
    status: OverlapStatus
    matched: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    reason: str = ""

    @property
    def flagged(self) -> bool:
        """Whether the pair must carry a warning (a known or a possible overlap)."""
        return self.status in ("known", "possible")

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "status": self.status,
            "matched": list(self.matched),
            "sources": list(self.sources),
            "reason": self.reason,
        }


def overlap(model: str | TrainingData, dataset: Iterable[str]) -> Overlap:
    """Compare the training data of ``model`` (a name, or a record) with the collections of an
    evaluation dataset (``dataset``: its identifiers; empty means unknown)."""
    data = training_data(model) if isinstance(model, str) else model
    collections = tuple(dataset)
    cited = tuple(str(s) for s in data.sources)
    matched: list[str] = []
    why: list[str] = []
    for trained in data.sets:
        for collection in collections:
            reasons = shares_images(trained, collection)
            if reasons:
                same = reasons == ["same collection"]
                matched.append(trained if same else f"{trained} ~ {collection}")
                why += [r for r in reasons if r != "same collection"]
    if matched:
        return Overlap(
            data.model, "known", tuple(matched), tuple(dict.fromkeys((*cited, *why))),
            f"trained on {', '.join(matched)}",
        )  # fmt: skip
    if data.status == "none":
        return Overlap(data.model, "none", (), cited, "weight-free method")
    if not collections:
        return Overlap(data.model, "unknown", (), cited,
                       "the dataset's source collections are not known")  # fmt: skip
    if data.status == "complete":
        return Overlap(data.model, "none", (), cited,
                       "the full training list is published and nothing matches")  # fmt: skip
    detail = "only partly published" if data.status == "partial" else "not published"
    return Overlap(data.model, "possible", (), cited,
                   f"no match, but the training data are {detail}")  # fmt: skip


def worst(statuses: Iterable[str]) -> OverlapStatus:
    """The most serious of ``statuses`` (``OVERLAP_ORDER``); ``unknown`` for none at all."""
    present = set(statuses)
    return next((s for s in OVERLAP_ORDER if s in present), "unknown")
