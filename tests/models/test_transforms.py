"""Slice ↔ model-frame mapping of SAM-family models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radioactive.models.transforms import LongestSideResize


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((512, 512), (1024, 1024)), ((256, 200), (1024, 800)), ((101, 122), (848, 1024))],
)
def test_resized_shape_uses_sam_rounding(shape, expected) -> None:
    assert LongestSideResize(1024).resized_shape(shape) == expected


@given(
    h=st.integers(1, 700), w=st.integers(1, 700), size=st.sampled_from([256, 1024]),
    fy=st.floats(0, 1), fx=st.floats(0, 1),
)  # fmt: skip
def test_points_round_trip(h, w, size, fy, fx) -> None:
    t = LongestSideResize(size)
    yx = np.array([[fy * (h - 1), fx * (w - 1)]])
    xy = t.points(yx, (h, w))
    nh, nw = t.resized_shape((h, w))
    assert 0 <= xy[0, 0] <= nw and 0 <= xy[0, 1] <= nh  # x first, inside the resized frame
    assert np.allclose(t.points_back(xy, (h, w)), yx, atol=1e-9)


def test_box_holds_extreme_pixels_in_x_y_order() -> None:
    t = LongestSideResize(1024)
    box = t.box((10, 20, 30, 60), (512, 256))  # half-open y0, x0, y1, x1
    assert box.tolist() == [40.0, 20.0, 118.0, 58.0]


def test_logits_map_back_onto_the_slice() -> None:
    torch = pytest.importorskip("torch")
    t = LongestSideResize(64)
    shape = (40, 80)  # resized to 32×64, padded to 64×64
    low = torch.full((16, 16), -5.0)
    low[0:4, 8:16] = 5.0  # rows 0-31 of 64 hold the slice: this is its top-right quarter
    full = t.logits_to_slice(low, shape)
    assert full.shape == shape
    mask = full > 0
    assert mask[:18, 42:].all()  # top half, right half of the slice
    assert not mask[:, :38].any() and not mask[22:].any()
