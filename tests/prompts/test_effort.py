"""The calibrated effort model: every constant has a sourced range, the seconds are the sum of
counts × constants by hand, the result review scrolls the target's z extent, and the counts
stored with an interaction give its seconds under any other effort model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from radioactive.prompts import (
    DEFAULT_EFFORT,
    EFFORT_RANGES,
    EffortModel,
    effort_components,
    get_prompter,
)
from radioactive.prompts.cost import COST_VERSION, EffortRange, review_extent
from radioactive.prompts.types import Box2D, Box3D, Interaction, MaskPrompt, Point, Scribble

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prompts.md"


def test_every_constant_has_a_range_with_a_source_and_the_typical_value_is_the_default() -> None:
    assert set(EFFORT_RANGES) == set(EffortModel.model_fields)
    for name, r in EFFORT_RANGES.items():
        assert r.low <= r.typical <= r.high and r.source and r.basis
        assert getattr(DEFAULT_EFFORT, name) == r.typical
    # the published anchors: 7.0 s per extreme-click box, 34.5 s per drawn box, 3.7 s per read
    assert EFFORT_RANGES["box2d_s"].typical == 7.0 and EFFORT_RANGES["box2d_s"].high == 34.5
    assert EFFORT_RANGES["point_s"].typical == 7.0 / 4
    assert EFFORT_RANGES["slice_visit_s"].high == 3.7
    assert COST_VERSION == "2"
    with pytest.raises(ValueError, match="low <= typical <= high"):
        EffortRange(2.0, 1.0, 3.0, "s", "b", True)


def test_docs_give_every_constant_with_its_range_and_source() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, r in EFFORT_RANGES.items():
        row = re.search(rf"^\| `{name}` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", text, re.M)
        assert row is not None, f"docs/prompts.md has no row for {name}"
        low, typical, high, source = (c.strip() for c in row.groups())
        assert (float(low), float(typical), float(high)) == (r.low, r.typical, r.high)
        assert source == r.source


def test_seconds_by_hand() -> None:
    e = EffortModel(point_s=2.0, box2d_s=5.0, box3d_s=11.0, scribble_s=3.0, lasso_s=13.0,
                    zlimit_s=1.5, slice_visit_s=0.5, review_slice_s=0.25)  # fmt: skip
    prompts = [
        Point((3, 1, 1), True),
        Point((3, 2, 2), False),  # same slice: one view
        Box2D(4, (0, 0), (2, 2)),  # a second axial view
        Box3D((1, 0, 0), (6, 4, 4)),  # axial (z 3, seen) and coronal (y 1) through its centre
        MaskPrompt(np.zeros((1, 64, 64), np.float32)),  # fed back: free, no view
    ]
    counts = effort_components(prompts, review_slices=8)
    assert counts == {"point_s": 2, "box2d_s": 1, "box3d_s": 1, "scribble_s": 0, "lasso_s": 0,
                      "zlimit_s": 0, "slice_visit_s": 3, "review_slice_s": 8}  # fmt: skip
    expected = 2 * 2.0 + 5.0 + 11.0 + 3 * 0.5 + 8 * 0.25
    assert e.seconds(prompts, 8) == pytest.approx(expected) == e.seconds_of(counts)
    assert e.seconds([]) == 0.0


def test_review_scrolls_the_targets_z_extent_once_per_interaction_with_prompts() -> None:
    t = np.zeros((20, 8, 8), bool)
    t[4, 2, 2] = t[11, 3, 3] = True  # a gap between: the user scrolls 4..11 anyway
    assert review_extent(t) == 8 and review_extent(np.zeros_like(t)) == 0
    inter = get_prompter("center_point_per_slice").initial(t, np.random.default_rng(0))
    assert inter.review_slices == 8
    assert inter.seconds == pytest.approx(2 * DEFAULT_EFFORT.point_s
                                          + 2 * DEFAULT_EFFORT.slice_visit_s
                                          + 8 * DEFAULT_EFFORT.review_slice_s)  # fmt: skip
    none = get_prompter("noisy(base='center_point_per_slice', p_miss=1.0)").initial(
        t, np.random.default_rng(0)
    )
    assert none.review_slices == 0 and none.seconds == 0.0  # nothing placed, nothing to check


def test_the_stored_interaction_gives_its_seconds_under_another_model() -> None:
    t = np.zeros((10, 30, 30), bool)
    t[2:8, 5:20, 5:25] = True
    inter = get_prompter("box_interpolation(k=3)").initial(t, np.random.default_rng(0))
    again = Interaction.from_dict(inter.to_dict())
    assert again.review_slices == inter.review_slices == 6
    counts = effort_components(again.user_prompts, again.review_slices)
    assert DEFAULT_EFFORT.seconds_of(counts) == pytest.approx(inter.seconds)
    slow = DEFAULT_EFFORT.model_copy(update={"box2d_s": 30.0})
    assert slow.seconds_of(counts) == pytest.approx(inter.seconds + 3 * (30.0 - 7.0))
    # an older record without review_slices reads as no review
    old = {k: v for k, v in inter.to_dict().items() if k != "review_slices"}
    assert Interaction.from_dict(old).review_slices == 0


def test_sampled_models_stay_in_their_ranges_and_cover_them() -> None:
    rng = np.random.default_rng(1)
    draws = [EffortModel.sample(rng) for _ in range(400)]
    for name, r in EFFORT_RANGES.items():
        values = np.array([getattr(d, name) for d in draws])
        assert values.min() >= r.low and values.max() <= r.high
        # uniform: the mean is the middle of the range, the spread (high - low) / sqrt(12)
        assert values.mean() == pytest.approx((r.low + r.high) / 2, abs=0.1 * (r.high - r.low))
        assert values.std() == pytest.approx((r.high - r.low) / np.sqrt(12), rel=0.15)
    again = EffortModel.sample(np.random.default_rng(1))
    assert again == draws[0]


def test_a_scribble_on_one_plane_is_one_view() -> None:
    s = Scribble(((2, 7, 3), (3, 7, 4), (4, 7, 5)), positive=False)
    assert effort_components([s])["slice_visit_s"] == 1
