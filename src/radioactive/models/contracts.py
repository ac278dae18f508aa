"""Input contracts: what each model's authors feed their network, per modality, with the source.

A :class:`InputContract` states, for one model and one modality, how a volume becomes the
network's input: the intensity rule (window, percentiles and over which voxels, z-score and over
which voxels, clamp), the resampling, the crop rule, the channel layout, and where each fact was
taken from (repository and file of the authors' preprocessing). Every adapter lists its contracts
on its class (``contracts``); ``radioactive models info NAME`` prints them, and a run records the
contract each model used for each dataset.

The adapter's default (``intensity="auto"``) is its authors' contract for the dataset's modality;
the earlier behaviours stay available as named intensity presets
(:data:`radioactive.models.intensity.RULES`).

The modality comes from the dataset (``dataset.json`` ``channel_names`` or ``modality``, or the
``modality`` field of a dataset entry of the experiment) and is reduced to ``"CT"`` or ``"MR"``
by :func:`modality_key`. A model whose contract depends on the modality refuses a volume whose
modality is unknown (:class:`UnknownModalityError`), instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from radioactive.data.formats import modality_key
from radioactive.errors import RadioactiveError

__all__ = ["AUTO", "InputContract", "UnknownModalityError", "modality_key", "resolved",
           "select_contract"]  # fmt: skip

AUTO = "auto"


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
            (:data:`radioactive.models.intensity.RULES`, or an adapter-specific rule name).
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


def select_contract(
    model: str,
    contracts: Iterable[InputContract],
    modality: str | None,
    *,
    where: str | Path | None = None,
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


def resolved(
    model: str,
    contracts: Iterable[InputContract],
    modality: str | None,
    intensity: str,
    *,
    where: str | Path | None = None,
) -> dict[str, Any]:
    """What a run records about the contract a model used: the authors' contract for the
    modality (``intensity="auto"``; :func:`select_contract`, ``where`` naming the dataset file
    in its error), or the named preset that overrides its intensity rule."""
    items = list(contracts)
    if intensity == AUTO:
        c = select_contract(model, items, modality, where=where)
        return {"contract": c.name, "intensity": c.preset, "modality": modality_key(modality)}
    return {"contract": f"preset:{intensity}", "intensity": intensity,
            "modality": modality_key(modality)}  # fmt: skip
