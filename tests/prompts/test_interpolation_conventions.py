"""Integer conventions of ``point_interpolation`` and ``box_interpolation``.

``key_rounding="floor"`` (the default) must give exactly the prompts of the RadioActive reference
implementation. Its rules are re-expressed here independently with numpy, scipy and scikit-image
(``ref_*``); ``key_rounding="nearest"`` must give exactly the earlier rules (``earlier_*``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.spatial import cKDTree
from skimage.measure import label

from radioactive.prompts import UnknownNameError, get_prompter
from radioactive.prompts import geometry as geo

KS = (1, 2, 3, 5, 10)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------- the reference's rules, re-expressed


def ref_fg(target: np.ndarray) -> np.ndarray:
    return np.flatnonzero(target.any(axis=(1, 2)))


def ref_snap_z(fg: np.ndarray, z: int) -> int:
    """The foreground slice nearest to ``z`` (the first one on ties)."""
    return int(fg[np.argmin(np.abs(fg - z))])


def ref_key_slices(target: np.ndarray, k: int) -> list[int]:
    """min(k, X) positions evenly spread over the absolute z range, truncated to integers, each
    moved to the nearest foreground slice; duplicates are kept."""
    fg = ref_fg(target)
    spread = np.linspace(fg[0], fg[-1], num=min(k, fg.size))
    return [ref_snap_z(fg, int(v)) for v in spread]  # int(): truncation toward zero


def ref_median_slice(target: np.ndarray) -> int:
    fg = ref_fg(target)
    return ref_snap_z(fg, int(np.median(fg)))


def ref_key_point(slice2d: np.ndarray) -> tuple[int, int]:
    """Largest 8-connected component (the last of an argsort of the sizes), the centre of its
    inclusive bounding box rounded half to even, then its nearest pixel (k-d tree)."""
    labels = label(slice2d, connectivity=2)
    sizes = np.bincount(labels.ravel())[1:]
    comp = labels == int(np.argsort(sizes)[-1]) + 1
    pix = np.argwhere(comp)
    centre = np.round((pix.min(axis=0) + pix.max(axis=0)) / 2.0)
    _, i = cKDTree(pix).query(centre)
    return int(pix[i][0]), int(pix[i][1])


def ref_interpolate(keys: list[int], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation (sorted by z, duplicates allowed) on every integer z from the lowest
    to the highest key, rounded half to even."""
    order = np.argsort(keys, kind="stable")
    z = np.asarray(keys)[order]
    vals = np.asarray(values, dtype=float)[order]
    zs = np.arange(z.min(), z.max() + 1)
    if z.min() == z.max():
        return zs, np.round(vals[:1]).astype(int)
    cols = [interp1d(z, vals[:, j], kind="linear")(zs) for j in range(vals.shape[1])]
    return zs, np.round(np.column_stack(cols)).astype(int)


def ref_points(target: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    keys = ref_key_slices(target, k)
    zs, yx = ref_interpolate(keys, np.array([ref_key_point(target[z]) for z in keys]))
    return [(int(z), int(y), int(x)) for z, (y, x) in zip(zs, yx, strict=True)]


def ref_key_box(slice2d: np.ndarray) -> list[int]:
    """Half-open box of the whole slice: y_min, x_min, y_max + 1, x_max + 1."""
    pix = np.argwhere(slice2d)
    return [*pix.min(axis=0).tolist(), *(pix.max(axis=0) + 1).tolist()]


def ref_boxes(target: np.ndarray, k: int) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
    n = min(k, ref_fg(target).size)
    keys = [ref_median_slice(target)] if n == 1 else ref_key_slices(target, k)
    by_slice = {z: ref_key_box(target[z]) for z in keys}  # one box per slice
    z = list(by_slice)
    corners = np.array(list(by_slice.values()))
    zs, lo = ref_interpolate(z, corners[:, :2])  # minimum and maximum corners separately
    _, hi = ref_interpolate(z, corners[:, 2:])
    out = []
    for zz, a, b in zip(zs, lo, hi, strict=True):
        if np.any(a >= b):  # rounding emptied the box: ours repairs it (Box2D must be non-empty)
            a, b, _ = geo.clip_box(a, b, target.shape[1:])
        out.append((int(zz), (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))))
    return out


# ------------------------------------------------------------- the earlier rules, re-expressed


def earlier_points(target: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """``key_rounding="nearest"``: key positions rounded half to even on the target's crop; the
    lowest-labelled largest component; its bbox centre rounded in the frame of the slice's
    foreground box and kept if inside, else the pixel nearest to the unrounded centre (first in
    raster order); interpolation in crop coordinates."""
    nz = np.argwhere(target)
    off = nz.min(axis=0)
    sub = target[tuple(slice(a, b + 1) for a, b in zip(off, nz.max(axis=0), strict=True))]
    fg = ref_fg(sub)
    spread = np.rint(np.linspace(fg[0], fg[-1], num=min(k, fg.size)))
    keys = sorted({ref_snap_z(fg, v) for v in spread})
    centres = []
    for z in keys:
        s = sub[z]
        p = np.argwhere(s)
        y0, x0 = p.min(axis=0)
        labels = label(s, connectivity=2)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        comp = labels == int(np.argmax(sizes))
        q = np.argwhere(comp) - (y0, x0)
        c = (q.min(axis=0) + q.max(axis=0)) / 2.0
        r = np.rint(c).astype(int)
        if not (q == r).all(axis=1).any():
            r = q[np.argmin(((q - c) ** 2).sum(axis=1))]
        centres.append(r + np.array([y0, x0]))
    zs = np.arange(keys[0], keys[-1] + 1)
    cols = [np.interp(zs, keys, np.array(centres, float)[:, j]) for j in (0, 1)]
    yx = np.rint(np.column_stack(cols)).astype(int)
    zyx = np.column_stack([zs, yx]) + off
    return [(int(z), int(y), int(x)) for z, y, x in zyx]


# ------------------------------------------------------------------------------------ masks


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def slanted_tube(z0: int, z1: int, depth: int | None = None, r: float = 3.0) -> np.ndarray:
    """A tube on slices z0..z1 whose centre moves diagonally (so every key slice shows)."""
    t = np.zeros((depth or z1 + 3, 48, 56), bool)
    for z in range(z0, z1 + 1):
        f = (z - z0) / max(1, z1 - z0)
        t[z] = disk((48, 56), 9 + 27 * f, 11 + 33 * f**2, r)
    return t


def gappy() -> np.ndarray:
    """Foreground on slices 3-5, 12-13 and 21-24: key positions fall into gaps."""
    t = slanted_tube(3, 24, 28)
    t[6:12] = False
    t[14:21] = False
    return t


def ring() -> np.ndarray:
    """An annulus whose centre is a hole: every key point must be snapped."""
    t = np.zeros((15, 41, 41), bool)
    for z in range(2, 13):
        t[z] = disk((41, 41), 20 + 0.5 * z, 19, 10) & ~disk((41, 41), 20 + 0.5 * z, 19, 5)
    return t


def twins() -> np.ndarray:
    """Two disks of the same size on every slice: the component tie rule decides."""
    t = np.zeros((12, 40, 50), bool)
    for z in range(1, 11):
        t[z] = disk((40, 50), 10 + z, 10, 4) | disk((40, 50), 25, 30 + z, 4)
    return t


def blobs(seed: int) -> np.ndarray:
    """Seeded organ-like blobs: unions of ellipsoids, sometimes with missing slices."""
    g = np.random.default_rng(seed)
    shape = (int(g.integers(6, 50)), int(g.integers(24, 72)), int(g.integers(24, 72)))
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    t = np.zeros(shape, bool)
    while not t.any():
        for _ in range(int(g.integers(1, 5))):
            c = [g.uniform(0, s) for s in shape]
            r = [g.uniform(1.0, s / 2.5) for s in shape]
            d = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2
            t |= d <= 1
        if g.random() < 0.3:
            t[g.integers(0, shape[0], size=2)] = False
    return t


MASKS = {
    "gaps": gappy,
    "half_step": lambda: slanted_tube(0, 19),  # k=3: linspace gives 9.5
    "half_step_offset": lambda: slanted_tube(5, 14),  # k=3: 9.5 again, from an odd start
    "ring": ring,
    "twins": twins,
    "single_slice": lambda: slanted_tube(4, 4, 9),
    **{f"blobs{s}": (lambda s=s: blobs(s)) for s in range(12)},
}


def points(target: np.ndarray, k: int, mode: str = "floor") -> list[tuple[int, int, int]]:
    p = get_prompter("point_interpolation", k=k, key_rounding=mode)
    return [q.zyx for q in p.initial(target, rng()).prompts]


def boxes(target: np.ndarray, k: int, mode: str = "floor") -> list:
    p = get_prompter("box_interpolation", k=k, key_rounding=mode)
    return [(b.z, b.lo, b.hi) for b in p.initial(target, rng()).prompts]


# ------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", sorted(MASKS))
def test_floor_mode_matches_the_reference_rules(name: str) -> None:
    t = MASKS[name]()
    for k in KS:
        assert points(t, k) == ref_points(t, k), k
        assert boxes(t, k) == ref_boxes(t, k), k
        inter = get_prompter("point_interpolation", k=k).initial(t, rng())
        expected = sorted({(z, *ref_key_point(t[z])) for z in ref_key_slices(t, k)})
        assert [q.zyx for q in inter.user_prompts] == expected


@pytest.mark.parametrize("name", sorted(MASKS))
def test_nearest_mode_keeps_the_earlier_rules(name: str) -> None:
    t = MASKS[name]()
    for k in KS:
        assert points(t, k, "nearest") == earlier_points(t, k), k


def test_floor_is_the_default() -> None:
    t = MASKS["half_step"]()
    assert get_prompter("point_interpolation", k=3).key_rounding == "floor"
    assert get_prompter("box_interpolation").key_rounding == "floor"
    by_spec = get_prompter("point_interpolation(k=3)").initial(t, rng())
    assert points(t, 3) == [q.zyx for q in by_spec.prompts]


def test_half_step_key_slice_is_truncated_in_floor_mode_and_rounded_in_nearest_mode() -> None:
    t = MASKS["half_step"]()  # foreground on slices 0..19; k=3 spreads 0, 9.5, 19
    floor = get_prompter("point_interpolation", k=3).initial(t, rng())
    nearest = get_prompter("point_interpolation", k=3, key_rounding="nearest").initial(t, rng())
    assert [q.z for q in floor.user_prompts] == [0, 9, 19]
    assert [q.z for q in nearest.user_prompts] == [0, 10, 19]
    assert points(t, 3) != points(t, 3, "nearest")
    b_floor = get_prompter("box_interpolation", k=3).initial(t, rng())
    b_nearest = get_prompter("box_interpolation", k=3, key_rounding="nearest").initial(t, rng())
    assert [b.z for b in b_floor.user_prompts] == [0, 9, 19]
    assert [b.z for b in b_nearest.user_prompts] == [0, 10, 19]
    assert b_floor.prompts != b_nearest.prompts


def test_key_slices_of_the_geometry_helper() -> None:
    fg = np.arange(20)
    assert geo.key_slices(fg, 3).tolist() == [0, 9, 19]  # floor is the default
    assert geo.key_slices(fg, 3, "nearest").tolist() == [0, 10, 19]
    gaps = np.array([0, 1, 2, 8, 9, 10])  # floor 0, 3, 6, 10 -> snapped 0, 2, 8, 10
    assert geo.key_slices(gaps, 4).tolist() == [0, 2, 8, 10]
    assert geo.key_slices(np.array([4]), 5, "floor").tolist() == [4]
    with pytest.raises(ValueError, match="'floor', 'nearest'"):
        geo.key_slices(fg, 3, "ceil")


def test_floor_key_slices_come_from_absolute_z() -> None:
    # linspace(7, 129, 15)[8] is 68.0, but 7 + linspace(0, 122, 15)[8] floors to 7 + 60
    fg = np.arange(7, 130)
    assert 68 in geo.key_slices(fg, 15).tolist()
    assert 67 in (geo.key_slices(fg - 7, 15) + 7).tolist()
    t = slanted_tube(7, 129, 132, r=2.0)
    inter = get_prompter("point_interpolation", k=15).initial(t, rng())
    assert [q.z for q in inter.user_prompts] == sorted(set(ref_key_slices(t, 15)))
    assert 68 in [q.z for q in inter.user_prompts]
    assert [q.zyx for q in inter.prompts] == ref_points(t, 15)
    assert boxes(t, 15) == ref_boxes(t, 15)


def test_one_key_box_is_on_the_median_slice_in_floor_mode() -> None:
    t = gappy()  # foreground slices 3-5, 12-13, 21-24: the median is 13
    inter = get_prompter("box_interpolation", k=1).initial(t, rng())
    assert [b.z for b in inter.prompts] == [13] == [ref_median_slice(t)]
    earlier = get_prompter("box_interpolation", k=1, key_rounding="nearest").initial(t, rng())
    assert [b.z for b in earlier.prompts] == [3]  # the earlier rule: the lowest slice
    even = np.zeros((10, 8, 8), bool)
    even[[1, 2, 7, 8], 2:5, 2:5] = True  # median 4.5 -> 4, not foreground -> nearest is 2
    assert [b.z for b in get_prompter("box_interpolation", k=1).initial(even, rng()).prompts] == [2]
    # points with k=1 use the lowest slice in both modes, as the reference
    assert [q.z for q in get_prompter("point_interpolation", k=1).initial(t, rng()).prompts] == [3]


def test_component_size_ties_differ_between_modes() -> None:
    t = twins()  # two equal disks per slice: the reference takes the later one in raster order
    (first,) = get_prompter("point_interpolation", k=1).initial(t, rng()).user_prompts
    earlier_rule = get_prompter("point_interpolation", k=1, key_rounding="nearest")
    (earlier,) = earlier_rule.initial(t, rng()).user_prompts
    assert first.zyx == (1, 25, 31) and earlier.zyx == (1, 11, 10)


def test_key_rounding_is_validated_and_round_trips_through_the_spec() -> None:
    for name in ("point_interpolation", "box_interpolation"):
        with pytest.raises(ValueError, match="key_rounding must be one of 'floor', 'nearest'"):
            get_prompter(name).__class__(key_rounding="round")
        with pytest.raises(UnknownNameError, match="'floor', 'nearest'"):
            get_prompter(name, key_rounding="round")
        p = get_prompter(f"{name}(k=5, key_rounding='nearest')")
        assert p.key_rounding == "nearest" and p.k == 5
        assert get_prompter(p.spec) == p
        assert p.source == f"{p.spec}@2"
    with pytest.raises(UnknownNameError, match="literals"):
        get_prompter("point_interpolation(k=5, key_rounding=nearest)")  # strings must be quoted
