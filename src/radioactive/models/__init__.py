"""Promptable models behind one protocol, and the slice-wise engine for 2D models.

``get_model(name, **options)`` builds a model ready for ``prepare`` / ``predict``. Importing this
package does not import torch; an adapter loads its framework when it is built.

>>> from radioactive.models import model_names
>>> model_names()  # doctest: +NORMALIZE_WHITESPACE
['cvpr25_container', 'filled_box', 'litemedsam', 'medsam', 'medsam2', 'mobilesam', 'nninteractive',
 'random_walker', 'sam', 'sam2', 'sam2_video', 'sam3', 'sam3_video', 'sammed2d', 'sammed3d']
"""

from __future__ import annotations

from typing import Any, cast

from radioactive.models.base import (
    Capabilities,
    CheckpointError,
    Model,
    ModelCard,
    Prediction,
    StepTimings,
    UnsupportedPrompt,
)
from radioactive.models.plugins import ENTRY_POINT_GROUP, load_plugin
from radioactive.registry import Registry, UnknownNameError

#: name -> "module:Backend"; modules load only when a model is built or described
MODELS: dict[str, str] = {
    "litemedsam": "radioactive.models.litemedsam:LiteMedSAMBackend",
    "mobilesam": "radioactive.models.mobilesam:MobileSAMBackend",
    "filled_box": "radioactive.models.classical:FilledBoxBackend",
    "random_walker": "radioactive.models.classical:RandomWalkerBackend",
    "sam": "radioactive.models.sam:SAMBackend",
    "sam2": "radioactive.models.sam2:SAM2Backend",
    "sam2_video": "radioactive.models.sam2_video:SAM2VideoModel",
    "sam3": "radioactive.models.sam3:SAM3Backend",
    "sam3_video": "radioactive.models.sam3_video:SAM3VideoModel",
    "medsam": "radioactive.models.sam:MedSAMBackend",
    "sammed3d": "radioactive.models.sammed3d:SAMMed3DModel",
    "sammed2d": "radioactive.models.sammed2d:SAMMed2DBackend",
    "medsam2": "radioactive.models.medsam2:MedSAM2Model",
    "nninteractive": "radioactive.models.nninteractive:NNInteractiveModel",
    "cvpr25_container": "radioactive.models.cvpr25_container:Cvpr25ContainerModel",
}

ENGINE_OPTIONS = (
    "cache_bytes", "batch_size", "use_mask_prompt", "decode_batch_size", "precision", "compile",
)  # fmt: skip

#: the built-in models and the plugins of the ``radioactive.models`` entry-point group; a plugin
#: is checked against the backend contract when it is loaded
REGISTRY: Registry[Any] = Registry(
    "model",
    MODELS,
    group=ENTRY_POINT_GROUP,
    hint=" (or install a plugin package)",
    plugin_loader=lambda entry: load_plugin(entry.name, MODELS),
)


def model_names() -> list[str]:
    """Built-in models and the plugins installed under the ``radioactive.models`` entry point."""
    return sorted(REGISTRY.names())


def backend_class(name: str) -> Any:
    """The class registered as model ``name`` (imported now); an unknown name is an
    :class:`~radioactive.registry.UnknownNameError` with the closest name."""
    return REGISTRY[name]


def checkpoint_for(name: str) -> str:
    """The checkpoint registry name behind ``name``: a checkpoint name itself, or a model name
    (its default checkpoint).

    Raises:
        UnknownNameError: neither names a checkpoint (with the closest name).
    """
    from radioactive.models.checkpoints import CHECKPOINTS
    from radioactive.registry import did_you_mean

    if name not in CHECKPOINTS and name in REGISTRY:  # a model name: its default checkpoint
        name = getattr(backend_class(name), "checkpoint_name", name)
    if name not in CHECKPOINTS:
        raise UnknownNameError(
            f"no checkpoint to fetch for {name!r}{did_you_mean(name, CHECKPOINTS)}",
            fix=f"models with checkpoints: {', '.join(sorted(CHECKPOINTS))}",
        )
    return name


def get_model(name: str, **options: Any) -> Model:
    """Build the model registered as ``name``.

    A 2D backend is wrapped in the slice-wise engine; a class that implements ``predict``
    itself (a 3D model) is returned as it is.

    Engine options (``cache_bytes``, ``batch_size``, ``use_mask_prompt``,
    ``decode_batch_size``, ``precision``, ``compile``) configure the
    slice-wise engine; every other option goes to the model adapter (e.g. ``checkpoint``,
    ``device``, ``intensity``).
    """
    from radioactive.models.slicewise import SliceWiseModel

    cls = backend_class(name)
    full_model = callable(getattr(cls, "predict", None))  # a 3D model: the Model protocol itself
    engine = {} if full_model else {k: options.pop(k) for k in ENGINE_OPTIONS if k in options}
    try:
        built = cls(**options)
    except TypeError as exc:
        raise UnknownNameError(f"invalid options for model {name!r}: {exc}") from exc
    return cast(Model, built if full_model else SliceWiseModel(built, **engine))


def describe_model(name: str, cache: Any = None) -> dict[str, Any]:
    """Card, capabilities (as the engine exposes them) and checkpoint status, without loading
    weights."""
    from radioactive.models.checkpoints import CHECKPOINTS, checkpoint_status
    from radioactive.models.slicewise import expanded_prompt_types
    from radioactive.models.training_data import training_data

    cls = backend_class(name)
    card: ModelCard = cls.card
    caps: Capabilities = cls.capabilities
    full_model = callable(getattr(cls, "predict", None))
    ck = getattr(cls, "checkpoint_name", name)
    status = checkpoint_status(ck, cache) if ck in CHECKPOINTS else "not needed"
    return {
        "name": card.name,
        "version": card.version,
        "dim": caps.dim,
        "prompt_types": sorted(
            caps.prompt_types if full_model else expanded_prompt_types(caps.prompt_types)
        ),
        "slice_predictor": (not full_model) or caps.slice_predictor,
        "accepts_mask": caps.accepts_mask,
        "multi_class": caps.multi_class,
        "licence": card.licence,
        "checkpoint": card.checkpoint,
        "checkpoint_sha256": card.checkpoint_sha256,
        "checkpoint_status": status,
        "training_data": card.training_data,
        "training_sets": training_data(name).to_dict(),
        "reference": card.reference,
        "contracts": [c.to_dict() for c in getattr(cls, "contracts", ())],
    }


def planned_contract(
    name: str, options: dict[str, Any], modality: str | None, where: Any = None
) -> dict[str, Any] | None:
    """The input contract model ``name`` built with ``options`` will use on a volume of
    ``modality``, without building it: ``{"contract", "intensity", "modality"}``; ``None`` when
    the model states no contracts (a plugin).

    Raises :class:`~radioactive.models.contracts.UnknownModalityError` (naming ``where``, the
    dataset file) when the contract depends on the modality and the modality is unknown.
    """
    from radioactive.models.contracts import AUTO, modality_key, resolved

    cls = backend_class(name)
    contracts = tuple(getattr(cls, "contracts", ()))
    if not contracts:
        return None
    if options.get("contract") not in (None, "authors"):
        return {"contract": f"{name}-{options['contract']}", "intensity": None,
                "modality": modality_key(modality)}  # fmt: skip
    intensity = str(options.get("intensity", AUTO))
    planned = resolved(name, contracts, modality, intensity, where=where)
    variant = getattr(cls, "contract_variant", None)  # e.g. SAM-Med3D's grid
    if callable(variant):
        planned["contract"] += variant(options)
    return planned


__all__ = [
    "MODELS",
    "REGISTRY",
    "Capabilities",
    "CheckpointError",
    "Model",
    "ModelCard",
    "Prediction",
    "StepTimings",
    "UnsupportedPrompt",
    "backend_class",
    "checkpoint_for",
    "describe_model",
    "get_model",
    "model_names",
    "planned_contract",
]
