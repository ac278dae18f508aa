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
