"""Test helpers shared by the SAM-family adapter tests."""

from __future__ import annotations

from typing import Any


def spy_prompt_encoder(monkeypatch: Any, prompt_encoder: Any) -> list[dict[str, Any]]:
    """Record (copies of) the tensors a SAM-style prompt encoder receives, then run it."""
    calls: list[dict[str, Any]] = []
    original = prompt_encoder.forward

    def forward(points: Any, boxes: Any, masks: Any) -> Any:
        calls.append({
            "points": None if points is None else (points[0].clone(), points[1].clone()),
            "boxes": None if boxes is None else boxes.clone(),
            "masks": None if masks is None else masks.clone(),
        })  # fmt: skip
        return original(points, boxes, masks)

    monkeypatch.setattr(prompt_encoder, "forward", forward)
    return calls


def assert_box_mask(mask: Any, z: int, lo: tuple[int, int], hi: tuple[int, int]) -> None:
    """The predicted volume holds the half-open box ``lo``..``hi`` on slice ``z`` (±1 pixel at
    the edges, Dice > 0.93) and nothing else."""
    import numpy as np

    from radioactive.metrics import dice

    expected = np.zeros(mask.shape, bool)
    expected[z, lo[0] : hi[0], lo[1] : hi[1]] = True
    assert dice(mask, expected) > 0.93
    ys, xs = np.nonzero(mask[z])
    assert abs(ys.min() - lo[0]) <= 1 and abs(ys.max() - (hi[0] - 1)) <= 1
    assert abs(xs.min() - lo[1]) <= 1 and abs(xs.max() - (hi[1] - 1)) <= 1


class Spy:
    """Wraps a session method, records its calls and forwards them."""

    def __init__(self, session: Any, name: str):
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        original = getattr(session, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((args, kwargs))
            return original(*args, **kwargs)

        setattr(session, name, wrapper)
