"""Shared helpers for torch-based adapters (imported only by them)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


def pick_device(device: str | None) -> Any:
    """``device`` if given, else CUDA when available, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def quiet_imports() -> Iterator[None]:
    """Silence the deprecation chatter of timm-based model packages while importing them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def load_state_dict(path: str, device: Any) -> dict[str, Any]:
    """A checkpoint's state dict (plain, or under "model" / "state_dict")."""
    import torch

    state = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def tensor_nbytes(tensor: Any) -> int:
    """Memory held by a tensor (for the embedding cache budget)."""
    return int(tensor.element_size() * tensor.nelement())


#: the modules of a backend's network (``backend.net``) that the engine's ``compile`` option
#: compiles, when present: the image encoder, which runs on one fixed input size; the decoders
#: see a new shape for every prompt count and would recompile
COMPILED_MODULES = ("image_encoder",)


def compile_backend(backend: Any) -> list[str]:
    """Compile the backend's heavy modules in place (``torch.nn.Module.compile``; the module
    objects and their state-dict keys stay as they are) and return their names.

    Raises:
        ValueError: the backend is not a torch model, or has none of the modules.
    """
    import torch

    net = getattr(backend, "net", None)
    name = backend.card.name
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"compile needs a torch model; {name!r} has no torch network (`net`)")
    names = [
        n
        for n in getattr(backend, "compiled_modules", COMPILED_MODULES)
        if isinstance(getattr(net, n, None), torch.nn.Module)
    ]
    if not names:
        raise ValueError(f"compile: {name!r} has none of the modules {COMPILED_MODULES} to compile")
    for n in names:
        getattr(net, n).compile()
    return names
