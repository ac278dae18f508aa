"""Geometric helpers of the prompt simulation."""

from __future__ import annotations

import numpy as np
import pytest

from radioactive.prompts import geometry as geo


def test_largest_cc_2d_on_c_contiguous_views() -> None:
    # a case cc3d 4.1 mislabels when given a C-contiguous 2D boolean array
    yy, xx = np.ogrid[:40, :40]
    stack = np.zeros((11, 40, 40), bool)
    for z in range(11):
        stack[z] = (yy - 10 - 2 * z) ** 2 + (xx - 10 - z) ** 2 <= 9
    sl = np.ascontiguousarray(stack[0:11, 7:34, 7:24][10])
    comp = geo.largest_cc_2d(sl)
    assert np.array_equal(comp, sl)


def test_largest_cc_point_picks_the_bigger_component() -> None:
    m = np.zeros((20, 20), bool)
    m[2:4, 2:4] = True
    m[10:17, 8:13] = True
    assert geo.largest_cc_point(m, "com") == (13, 10)
    assert geo.largest_cc_point(m, "bbox") == (13, 10)


def test_bbox_3d_and_slice_boxes() -> None:
    m = np.zeros((5, 6, 7), bool)
    m[1, 2, 3] = m[3, 4, 1] = True
    assert geo.bbox(m) == ((1, 2, 1), (4, 5, 4))
    assert geo.bbox(np.zeros((2, 2, 2), bool)) is None
    lo, hi = geo.slice_boxes(m)
    assert lo[1].tolist() == [2, 3] and hi[1].tolist() == [3, 4]
    assert lo[3].tolist() == [4, 1] and hi[3].tolist() == [5, 2]
    assert lo[0].tolist() == hi[0].tolist() == [0, 0]


def test_sample_foreground_is_uniform_without_replacement() -> None:
    m = np.zeros((30, 30), bool)
    m[5:9, 5:10] = True  # 20 pixels
    rng = np.random.default_rng(0)
    counts = np.zeros((30, 30), int)
    for _ in range(2000):
        pts = geo.sample_foreground(m, 3, rng)
        assert len({tuple(p) for p in pts}) == 3
        assert m[tuple(pts.T)].all()
        counts[tuple(pts.T)] += 1
    hits = counts[m]
    assert hits.sum() == 6000 and counts[~m].sum() == 0
    assert hits.min() > 220 and hits.max() < 380  # expected 300 each


def test_sample_foreground_with_too_few_pixels_repeats() -> None:
    m = np.zeros((4, 4, 4), bool)
    m[1, 1, 1] = m[2, 2, 2] = True
    pts = geo.sample_foreground(m, 5, np.random.default_rng(1))
    assert len(pts) == 5 and {tuple(p) for p in pts} == {(1, 1, 1), (2, 2, 2)}


def test_sample_ring_matches_the_materialised_ring() -> None:
    m = np.zeros((40, 40), bool)
    yy, xx = np.ogrid[:40, :40]
    m[(yy - 20) ** 2 + (xx - 18) ** 2 <= 25] = True
    ring = geo.ring(m)
    rng = np.random.default_rng(0)
    seen = np.zeros_like(m, dtype=int)
    for _ in range(300):
        pts = geo.sample_ring(m, 4, rng)
        assert len({tuple(p) for p in pts}) == 4
        assert ring[tuple(pts.T)].all()
        seen[tuple(pts.T)] += 1
    assert (seen[ring] > 0).mean() > 0.95  # the whole ring is reachable


def test_sample_ring_at_the_border_and_when_empty() -> None:
    full = np.ones((6, 6), bool)
    assert len(geo.sample_ring(full, 2, np.random.default_rng(0))) == 0
    corner = np.zeros((10, 10), bool)
    corner[0:2, 0:2] = True
    ring = geo.ring(corner)
    pts = geo.sample_ring(corner, 50, np.random.default_rng(0))
    assert len(pts) == 50 and ring[tuple(pts.T)].all()
    assert len({tuple(p) for p in pts}) == ring.sum()  # all of them, then repeats


@pytest.mark.parametrize(
    ("lo", "hi", "shape", "expected"),
    [
        ((2, 3), (5, 7), (10, 10), ((2, 3), (5, 7), False)),
        ((-2, 3), (5, 12), (10, 10), ((0, 3), (5, 10), True)),
        ((6, 3), (4, 7), (10, 10), ((4, 3), (6, 7), True)),
        ((4, 9), (4, 9), (10, 10), ((4, 9), (5, 10), True)),
        ((10, 0), (12, 1), (10, 10), ((9, 0), (10, 1), True)),
    ],
)
def test_clip_box_repairs(lo, hi, shape, expected) -> None:
    assert geo.clip_box(lo, hi, shape) == expected


def test_key_slices_snap_to_foreground() -> None:
    fg = np.array([0, 1, 2, 8, 9, 10])
    # linspace gives 0, 5, 10; 5 is as far from 2 as from 8: the lower slice wins
    assert geo.key_slices(fg, 3).tolist() == [0, 2, 10]
    assert geo.key_slices(fg, 2).tolist() == [0, 10]
    assert geo.key_slices(np.array([4]), 5).tolist() == [4]
