"""Shared helpers for torch-based adapters (imported only by them)."""

from __future__ import annotations

import warnings
from typing import Any


def pick_device(device: str | None) -> Any:
    """``device`` if given, else CUDA when available, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quiet_imports() -> warnings.catch_warnings:  # type: ignore[type-arg]
    """Silence the deprecation chatter of timm-based model packages while importing them."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", UserWarning)
    return ctx


def load_state_dict(path: str, device: Any) -> dict[str, Any]:
    """A checkpoint's state dict (plain, or under "model" / "state_dict")."""
    import torch

    state = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state
