"""Input contracts: what each model's authors feed their network, per modality, with the source.

A :class:`InputContract` states, for one model and one modality, how a volume becomes the
network's input: the intensity rule (window, percentiles and over which voxels, z-score and over
which voxels, clamp), the resampling, the crop rule, the channel layout, and where each fact was
taken from (repository and file of the authors' preprocessing). Every adapter lists its contracts
on its class (``contracts``); ``radioactive models info NAME`` prints them, and a run records the
contract each model used for each dataset.

The adapter's default (``intensity="auto"``) is its authors' contract for the dataset's modality;
the earlier behaviours stay available as named intensity presets
(:data:`radioactive.models.intensity.PRESETS`).

The modality comes from the dataset (``dataset.json`` ``channel_names`` or ``modality``, or the
``modality`` field of a dataset entry of the experiment) and is reduced to ``"CT"`` or ``"MR"``
by :func:`modality_key`. A model whose contract depends on the modality refuses a volume whose
modality is unknown (:class:`UnknownModalityError`), instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from radioactive.errors import RadioactiveError

#: the modalities a contract can be stated for; ``"any"`` applies to every modality
MODALITIES = ("CT", "MR")
AUTO = "auto"

_CT_NAMES = {"ct", "cta", "ct angiography", "computed tomography", "pet/ct", "cbct"}
_MR_PREFIXES = ("mr", "t1", "t2", "flair", "dwi", "adc", "pd", "swi", "dce", "bold")


class UnknownModalityError(RadioactiveError):
    """A model's input contract depends on the modality, and the volume's modality is unknown."""


@dataclass(frozen=True)
class InputContract:
    """How one model's authors prepare one modality (see the module docstring).

    Attributes:
        name: identity of the contract (recorded with every run; changes when a number would).
        modality: ``"CT"``, ``"MR"`` or ``"any"``.
        intensity: the intensity rule in words.
        preset: the intensity preset that implements it
            (:data:`radioactive.models.intensity.PRESETS`, or an adapter-specific rule name).
        resampling: how the volume or slice is resampled to the network's grid.
        crop: what part of the volume the network sees.
        channels: the channel layout and dtype of the network's input.
        source: repository and file(s) of the authors' preprocessing this was taken from.
    """

    name: str
    modality: str
    intensity: str
    preset: str
    resampling: str
    crop: str
    channels: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def modality_key(modality: str | None) -> str | None:
    """``"CT"`` or ``"MR"`` for a modality as datasets write it (``"CT"``, ``"MRI T2"``,
    ``"FLAIR"``, ``"t1"``…), ``None`` when it is neither or unknown."""
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


def depends_on_modality(contracts: Iterable[InputContract]) -> bool:
    """Whether a model needs the modality to pick its contract."""
    return not any(c.modality == "any" for c in contracts)


def select_contract(
    model: str,
    contracts: Iterable[InputContract],
    modality: str | None,
    *,
    where: str | None = None,
) -> InputContract:
    """The contract of ``model`` for ``modality`` (``"any"`` matches every modality).

    Raises :class:`UnknownModalityError` when the contract depends on the modality and
    ``modality`` is unknown or has no contract; ``where`` names the dataset file concerned.
    """
    items = list(contracts)
    if not items:
        raise ValueError(f"model {model!r} states no input contract")
    for c in items:
        if c.modality == "any":
            return c
    key = modality_key(modality)
    for c in items:
        if c.modality == key:
            return c
    stated = ", ".join(c.modality for c in items)
    shown = "no modality" if modality in (None, "", "unknown") else f"modality {modality!r}"
    raise UnknownModalityError(
        f"model {model!r} prepares {stated} differently, and the volume has {shown}",
        path=where,
        fix='name the modality in the dataset\'s dataset.json (`channel_names`: {"0": "CT"} '
        'or "MR"), or set `modality: CT` / `modality: MR` on the dataset entry of the '
        "experiment, or pass the model option `intensity` with a preset "
        "(`radioactive models info " + model + "` lists them)",
    )


def contracts_table(contracts: Iterable[InputContract]) -> list[dict[str, str]]:
    return [c.to_dict() for c in contracts]


def resolved(
    model: str, contracts: Iterable[InputContract], modality: str | None, intensity: str
) -> dict[str, Any]:
    """What a run records about the contract a model used: the authors' contract for the
    modality (``intensity="auto"``), or the named preset that overrides its intensity rule."""
    items = list(contracts)
    if intensity == AUTO:
        c = select_contract(model, items, modality)
        return {"contract": c.name, "intensity": c.preset, "modality": modality_key(modality)}
    return {"contract": f"preset:{intensity}", "intensity": intensity,
            "modality": modality_key(modality)}  # fmt: skip


def as_mapping(contracts: Iterable[InputContract]) -> Mapping[str, InputContract]:
    return {c.modality: c for c in contracts}
