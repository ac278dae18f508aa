"""The model protocol: what the benchmark asks of every promptable model.

A model declares a :class:`ModelCard` (what it is, which weights, under which licence) and its
:class:`Capabilities` (2D or 3D, prompt types, whether it takes a mask prompt). The runner calls
``prepare(volume)`` once per volume, ``reset()`` before each new target, and ``predict(interaction,
previous)`` at every step. Asking for a prompt type the model does not support raises
:class:`UnsupportedPrompt` before any compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from radioactive.errors import RadioactiveError
from radioactive.prompts.base import SlicePredictor
from radioactive.prompts.types import Interaction, Prompt, PromptKind


class UnsupportedPrompt(RadioactiveError):
    """The model cannot take a prompt type it was given."""


class CheckpointError(RadioactiveError):
    """A model checkpoint is missing, corrupt or cannot be obtained."""


@dataclass(frozen=True)
class ModelCard:
    """What a model is.

    Attributes:
        name: registry name (``get_model(name)``).
        version: adapter version; bump when the adapter changes a number.
        checkpoint: checkpoint file name (``None`` for weight-free methods).
        checkpoint_sha256: the sha256 the checkpoint must have.
        licence: licence of code and weights.
        training_data: what the weights were trained on, in a sentence.
        reference: paper or homepage.
    """

    name: str
    version: str
    checkpoint: str | None
    checkpoint_sha256: str | None
    licence: str
    training_data: str
    reference: str


@dataclass(frozen=True)
class Capabilities:
    """What a model can take."""

    dim: Literal[2, 3]
    prompt_types: frozenset[str]
    accepts_mask: bool = False
    #: whether the model can be run on any slice with a "predict this slice" callback
    slice_predictor: bool = False
    #: whether ``predict_classes`` segments several targets of a case in one call
    multi_class: bool = False
    #: whether the model is a propagation engine: it segments the slices it was not prompted on
    #: by tracking the object from the prompted ones (a video model over the axial slices); the
    #: runner then stores propagation diagnostics of its units as propagated
    propagates: bool = False

    def unsupported(self, prompts: tuple[Prompt, ...] | list[Prompt]) -> list[str]:
        """Prompt kinds among ``prompts`` that this model cannot take (z-limits are never sent to
        a model; they only bound propagation)."""
        kinds = {p.kind for p in prompts} - {PromptKind.ZLIMIT, PromptKind.MASK}
        return sorted(kinds - self.prompt_types)


@dataclass
class StepTimings:
    """Where the time of one prediction went."""

    encoder_s: float = 0.0
    decoder_s: float = 0.0
    encoder_calls: int = 0  # slices encoded (not batches)
    cache_hits: int = 0
    cache_misses: int = 0
    slices_inferred: int = 0

    def add(self, other: StepTimings) -> None:
        """Add ``other``'s seconds and counts to these."""
        for name in _TIMING_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def cache_hit_rate(self) -> float:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {
            "encoder_s": self.encoder_s,
            "decoder_s": self.decoder_s,
            "encoder_calls": self.encoder_calls,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "slices_inferred": self.slices_inferred,
        }


_TIMING_FIELDS = tuple(f.name for f in fields(StepTimings))


@dataclass
class Prediction:
    """A model's answer for one target at one step.

    Attributes:
        mask: boolean canonical (z, y, x) array.
        logits: low-resolution logits to feed back as a mask prompt (per axial slice for 2D
            models, one array for 3D models); never probabilities.
        timings: encoder / decoder time and cache use of this step.
    """

    mask: npt.NDArray[np.bool_]
    logits: dict[int, Any] = field(default_factory=dict)
    timings: StepTimings = field(default_factory=StepTimings)


class ModelSlicePredictor(SlicePredictor, Protocol):
    """A model's "predict this slice" for the propagation prompters, which remembers what it
    decoded. After the prompter is done, :meth:`predict` predicts the prompter's interaction:
    each slice the prompter already had decoded with the same prompts is reused, not decoded
    again, and the encoder / decoder time and calls of the prompter's slice predictions are
    counted in that prediction's :class:`StepTimings` (so in the step's row)."""

    def predict(self, interaction: Interaction, previous: Prediction | None = None) -> Prediction:
        """The model's prediction for ``interaction``, reusing the recorded slices."""


@runtime_checkable
class Model(Protocol):
    """What the benchmark asks of every promptable 3D model (see the module docstring)."""

    card: ModelCard
    capabilities: Capabilities

    def prepare(self, image: npt.NDArray[Any], spacing_mm: tuple[float, float, float]) -> None:
        """Take a new canonical (z, y, x) image (normalise, reset caches). A model whose input
        contract depends on the modality also takes ``modality`` (``"CT"``, ``"MR"`` or the
        dataset's word for it); :func:`prepare_model` passes it when the model takes it."""

    def reset(self) -> None:
        """Forget the prompts of the previous target (caches of the image are kept)."""

    def predict(self, interaction: Interaction, previous: Prediction | None) -> Prediction:
        """Predict the target from this interaction (and the previous step's prediction)."""

    def slice_predictor(self) -> ModelSlicePredictor:
        """ "Predict this slice" for the propagation prompters (``capabilities.slice_predictor``
        says whether the model has one; a model without raises :class:`UnsupportedPrompt`, see
        :class:`NoSlicePredictor`)."""


class NoSlicePredictor:
    """For a model that cannot predict one slice at a time: its ``slice_predictor`` refuses with
    a clear error (``capabilities.slice_predictor`` is false)."""

    card: ModelCard

    def slice_predictor(self) -> ModelSlicePredictor:
        raise UnsupportedPrompt(
            f"model {self.card.name!r} cannot predict single slices, which the propagation "
            "prompters (point_propagation, box_propagation) need",
            fix="pair it with a prompter that does not propagate, or use a slice-wise model",
        )


def check_supported(model_name: str, capabilities: Capabilities, interaction: Interaction) -> None:
    """Raise :class:`UnsupportedPrompt` if the interaction holds prompts the model cannot take."""
    bad = capabilities.unsupported(list(interaction.prompts))
    if bad:
        raise UnsupportedPrompt(
            f"model {model_name!r} does not accept {', '.join(bad)} prompts "
            f"(it accepts: {', '.join(sorted(capabilities.prompt_types))})",
            fix="pair it with a prompter / simulated user that uses those prompt types "
            "(`radioactive models list` shows each model's prompt types)",
        )


def prepare_model(
    model: Any,
    image: npt.NDArray,
    spacing_mm: tuple[float, float, float],
    modality: str | None = None,
) -> None:
    """``model.prepare(image, spacing_mm)``, with ``modality`` when the model takes it (a plugin
    written before modalities reached models keeps working)."""
    from radioactive.models.slicewise import takes_modality

    if takes_modality(model.prepare):
        model.prepare(image, spacing_mm, modality=modality)
    else:
        model.prepare(image, spacing_mm)


def contract_of(model: Any) -> dict[str, Any] | None:
    """What a prepared model recorded about the input contract it used (``None`` if nothing)."""
    used = getattr(model, "contract_used", None)
    return dict(used) if isinstance(used, dict) else None
