"""The CVPR 2025 challenge protocol against the organisers' rules (``get_boxes.py`` and
``CVPR25_iter_eval.py`` of JunMa11/CVPR-MedSegFMCompetition), re-expressed here on full volumes
with their libraries (numpy, scipy, cc3d, skimage): boxes, clicks, the NSD and time rules, the AUC.
"""

from __future__ import annotations

import math

import cc3d
import numpy as np
import pytest
from scipy import integrate
from scipy.ndimage import distance_transform_edt
from skimage.measure import block_reduce

from radioactive.metrics import auc_cvpr25
from radioactive.models.base import Capabilities, ModelCard, Prediction, StepTimings
from radioactive.prompts import cvpr25, get_prompter, get_user
from radioactive.prompts.types import Box2D, Point, ZLimit
from radioactive.session import Scoring, run_trajectory, score

# -- the organisers' rules, re-expressed --------------------------------------------------------


def organisers_box_dict(gt3d: np.ndarray, bbox_shift: int) -> dict[str, int]:
    """``mask3D_to_bbox`` of get_boxes.py with its random shift given."""
    z_idx, _, _ = np.where(gt3d > 0)
    distinct = np.unique(z_idx)
    z_mid = distinct[len(distinct) // 2]
    gt2d = gt3d[z_mid]
    y_idx, x_idx = np.where(gt2d > 0)
    height, width = gt2d.shape
    shift_x, shift_y = int(bbox_shift * width / 256), int(bbox_shift * height / 256)
    return {
        "z_min": int(z_idx.min()), "z_max": int(z_idx.max()), "z_mid": int(z_mid),
        "z_mid_x_min": int(max(0, x_idx.min() - shift_x)),
        "z_mid_y_min": int(max(0, y_idx.min() - shift_y)),
        "z_mid_x_max": int(min(width - 1, x_idx.max() + shift_x)),
        "z_mid_y_max": int(min(height - 1, y_idx.max() + shift_y)),
    }  # fmt: skip


def organisers_edt(component: np.ndarray, roi_limit: int = 60_000_000) -> np.ndarray:
    """``compute_edt`` of CVPR25_iter_eval.py (CPU path) on a full-volume component."""
    coords = np.argwhere(component)
    lo, hi = coords.min(axis=0), coords.max(axis=0) + 1
    crop_shape = hi - lo
    pad = np.maximum((crop_shape * 0.25).astype(int), 1)
    crop = np.zeros(crop_shape + 2 * pad, dtype=np.uint8)
    inner = tuple(slice(p, p + c) for p, c in zip(pad, crop_shape, strict=True))
    crop[inner] = component[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    large = crop.size > roi_limit
    if large:
        crop = block_reduce(crop, block_size=(2, 2, 2), func=np.max)
    dist = distance_transform_edt(crop)
    if large:
        dist = dist.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    full = np.zeros(component.shape, dtype=dist.dtype)
    full[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = dist[inner]
    return full


def organisers_click(gts_cls: np.ndarray, segs_cls: np.ndarray, roi_limit: int = 60_000_000):
    """One refinement click of CVPR25_iter_eval.py for one class: ((z, y, x), 'fg' | 'bg')."""
    error = (segs_cls != gts_cls).astype(np.uint8)
    if error.sum() == 0:
        return None
    labels = cc3d.connected_components(error, connectivity=26)
    sizes = np.bincount(labels.flat)
    sizes[0] = 0
    component = labels == np.argmax(sizes)
    edt = organisers_edt(component, roi_limit) * component
    if edt.sum() == 0:
        edt = component
    maxima = np.argwhere(edt == edt.max())
    # np.random.seed(42) then np.random.choice, without touching numpy's global state
    center = tuple(int(c) for c in maxima[np.random.RandomState(42).choice(len(maxima))])
    return center, ("bg" if gts_cls[center] == 0 else "fg")


def blobs(rng: np.random.Generator, shape=(14, 20, 18), n=4) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    out = np.zeros(shape, dtype=bool)
    for _ in range(n):
        c = rng.uniform([0, 0, 0], shape)
        r = rng.uniform(1.5, 5.0, 3)
        out |= ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + (
            (xx - c[2]) / r[2]
        ) ** 2 <= 1
    return out


# -- boxes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_box_equals_get_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 30)), int(rng.integers(200, 700)), int(rng.integers(200, 700)))
    target = np.zeros(shape, dtype=bool)
    for _ in range(3):  # several pieces: gaps between slices, uneven slice counts
        lo = [int(rng.integers(0, s - 1)) for s in shape]
        hi = [int(min(s, a + rng.integers(1, 60))) for a, s in zip(lo, shape, strict=True)]
        target[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    for shift in range(6):
        assert cvpr25.organisers_box(target, shift) == organisers_box_dict(target, shift)


def test_middle_slice_is_the_upper_median_of_distinct_slices() -> None:
    target = np.zeros((20, 8, 8), dtype=bool)
    target[[2, 3, 9, 15], 3:5, 3:5] = True  # 4 distinct slices: index 2 of the sorted list
    assert cvpr25.organisers_box(target, 0)["z_mid"] == 9


def test_prompter_draws_the_shift_from_the_unit_generator() -> None:
    target = np.zeros((9, 512, 300), dtype=bool)
    target[2:7, 100:180, 50:90] = True
    prompter = get_prompter("cvpr25_box")
    for seed in range(8):
        shift = int(np.random.default_rng(seed).integers(0, 6))
        inter = prompter.initial(target, np.random.default_rng(seed))
        expected = organisers_box_dict(target, shift)
        box, low, high = inter.prompts
        assert box == Box2D(
            expected["z_mid"],
            (expected["z_mid_y_min"], expected["z_mid_x_min"]),
            (expected["z_mid_y_max"] + 1, expected["z_mid_x_max"] + 1),
        )
        assert (low, high) == (ZLimit(expected["z_min"], False), ZLimit(expected["z_max"], True))
        assert inter.user_prompts == inter.prompts
        assert inter.dof == 4  # box 2 + two z-limits, as every other prompt is costed
    tight = get_prompter("cvpr25_box(max_shift=0)").initial(target, np.random.default_rng(0))
    assert tight.prompts[0] == Box2D(4, (100, 50), (180, 90))


# -- clicks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_click_equals_the_organisers_click(seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = blobs(rng)
    prediction = blobs(rng, n=3) if seed % 3 else np.zeros_like(target)
    user = get_user("center_of_largest_error(mode='cvpr25')")
    expected = organisers_click(target.astype(np.uint8), prediction.astype(np.uint8))
    inter = user.correct(target, prediction, [], np.random.default_rng(99))
    if expected is None:
        assert inter.is_empty
        return
    (point,) = inter.prompts
    assert isinstance(point, Point)
    assert point.zyx == expected[0] and point.positive == (expected[1] == "fg")


def test_ties_follow_the_organisers_seed_and_the_generator_is_not_used() -> None:
    # a cube at the volume border: many voxels share the largest distance
    target = np.zeros((12, 12, 12), dtype=bool)
    target[0:8, 0:8, 0:8] = True
    prediction = np.zeros_like(target)
    expected = organisers_click(target.astype(np.uint8), prediction.astype(np.uint8))
    user = get_user("center_of_largest_error(mode='cvpr25')")
    for seed in range(5):
        (point,) = user.correct(target, prediction, [], np.random.default_rng(seed)).prompts
        assert point.zyx == expected[0]


def test_the_pooled_transform_of_large_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cvpr25, "ROI_LIMIT_VOXELS", 500)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        target, prediction = blobs(rng, n=5), blobs(rng, n=2)
        expected = organisers_click(target.astype(np.uint8), prediction.astype(np.uint8), 500)
        user = get_user("center_of_largest_error(mode='cvpr25')")
        (point,) = user.correct(target, prediction, [], np.random.default_rng(0)).prompts
        assert point.zyx == expected[0]


# -- scoring -------------------------------------------------------------------------------------


def test_nsd_only_above_the_dice_threshold() -> None:
    target = np.zeros((6, 20, 20), dtype=bool)
    target[1:5, 5:15, 5:15] = True
    far = np.zeros_like(target)
    far[1:5, 5:15, 13:20] = True  # Dice 0.25 > 0.2: NSD computed
    barely = np.zeros_like(target)
    barely[1:5, 5:15, 14:20] = True  # Dice 0.1: NSD counts as 0
    rule = Scoring(nsd_min_dice=0.2)
    assert (
        score(far, target, (1, 1, 1), rule)["nsd"]
        == score(far, target, (1, 1, 1), Scoring())["nsd"]
    )
    assert score(barely, target, (1, 1, 1), Scoring())["nsd"] > 0
    assert score(barely, target, (1, 1, 1), rule)["nsd"] == 0.0


class _Timed:
    """A model that misses one corner of the target whatever it is told and reports ``seconds``
    of model time per call."""

    card = ModelCard("timed", "1", None, None, "-", "-", "-")
    capabilities = Capabilities(dim=3, prompt_types=frozenset({"point", "box2d"}))

    def __init__(self, target: np.ndarray, seconds: float) -> None:
        self.target, self.seconds, self.calls = target, seconds, 0

    def reset(self) -> None:
        pass

    def slice_predictor(self):  # pragma: no cover - never asked: no slice predictor
        raise AssertionError

    def predict(self, interaction, previous) -> Prediction:
        self.calls += 1
        mask = self.target.copy()
        mask[2:4, 4:8, 3:6] = False  # never perfect: the trajectory runs all its steps
        return Prediction(mask, {}, StepTimings(decoder_s=self.seconds))


def _target() -> np.ndarray:
    target = np.zeros((8, 24, 24), dtype=bool)
    target[2:7, 4:20, 3:21] = True
    return target


def test_time_budget_sets_dice_and_nsd_to_zero() -> None:
    target = _target()
    kwargs = dict(user=get_user("center_of_largest_error(mode='cvpr25')"), steps=5)
    rules = Scoring(nsd_min_dice=0.2, time_budget_s=90.0)
    within = run_trajectory(_Timed(target, 14.0), target, (1, 1, 1), get_prompter("cvpr25_box"),
                            np.random.default_rng(0), scoring=rules, **kwargs)  # fmt: skip
    assert all(s.dice > 0.5 and s.nsd > 0 for s in within)  # 6 × 14 s = 84 s ≤ 90 s
    over = run_trajectory(_Timed(target, 16.0), target, (1, 1, 1), get_prompter("cvpr25_box"),
                          np.random.default_rng(0), scoring=rules, **kwargs)  # fmt: skip
    assert [(s.dice, s.nsd) for s in over] == [(0.0, 0.0)] * 6  # 96 s > 90 s
    assert over[-1].hd95_mm == within[-1].hd95_mm  # the other metrics stand


def test_no_box_scores_the_first_step_zero_without_calling_the_model() -> None:
    target = _target()
    model = _Timed(target, 1.0)
    steps = run_trajectory(model, target, (1, 1, 1), get_prompter("no_prompt"),
                           np.random.default_rng(0), scoring=Scoring(nsd_min_dice=0.2),
                           user=get_user("center_of_largest_error(mode='cvpr25')"),
                           steps=5)  # fmt: skip
    assert (steps[0].dice, steps[0].nsd, steps[0].dof) == (0.0, 0.0, 0)
    assert model.calls == 5 and len(steps) == 6
    assert steps[1].interaction.prompts[0].positive  # the first click: inside the target


def test_auc_and_final_metrics_equal_the_organisers_formulas() -> None:
    target = _target()
    steps = run_trajectory(_Timed(target, 1.0), target, (1.0, 0.8, 0.8),
                           get_prompter("cvpr25_box"), np.random.default_rng(3),
                           scoring=Scoring(nsd_min_dice=0.2, time_budget_s=90.0),
                           user=get_user("center_of_largest_error(mode='cvpr25')"),
                           steps=5)  # fmt: skip
    dscs, nsds = [s.dice for s in steps], [s.nsd for s in steps]
    n_clicks = 5
    dsc_auc = integrate.cumulative_trapezoid(np.array(dscs[-n_clicks:]), np.arange(n_clicks))[-1]
    nsd_auc = integrate.cumulative_trapezoid(np.array(nsds[-n_clicks:]), np.arange(n_clicks))[-1]
    assert auc_cvpr25(dscs) == dsc_auc and auc_cvpr25(nsds) == nsd_auc
    assert not math.isnan(dsc_auc) and dsc_auc > 0


def test_slice_wise_models_propagate_the_box_over_the_z_range() -> None:
    from radioactive.models import get_model

    target = np.zeros((12, 40, 40), dtype=bool)
    target[2:10, 10:30, 8:25] = True
    model = get_model("filled_box")
    model.prepare(np.where(target, 200.0, 0.0).astype(np.float32), (1.0, 1.0, 1.0))
    (first,) = run_trajectory(model, target, (1, 1, 1), get_prompter("cvpr25_box(max_shift=0)"),
                              np.random.default_rng(0))  # fmt: skip
    inter = first.interaction
    boxes = [p for p in inter.prompts if isinstance(p, Box2D)]
    assert sorted(b.z for b in boxes) == list(range(2, 10))  # every slice of the z range
    assert len(inter.user_prompts) == 3 and inter.dof == 4  # charged: the box and the range
    assert first.dice == 1.0
    # a model without a slice predictor gets the box and the range as they are
    timed = _Timed(target, 0.0)
    (step,) = run_trajectory(timed, target, (1, 1, 1), get_prompter("cvpr25_box(max_shift=0)"),
                             np.random.default_rng(0))  # fmt: skip
    assert step.interaction.prompts == step.interaction.user_prompts and timed.calls == 1


@pytest.mark.registry
def test_demo_trajectory_scores_equal_the_organisers_formulas(demo_suite) -> None:
    """A cvpr25 trajectory on a demo lesion: every step's DSC and NSD, recomputed from the
    saved masks with the organisers' functions (SurfaceDice.py is DeepMind's surface-distance)
    and their rules, and the four headline numbers, equal ours."""
    surface = pytest.importorskip("surface_distance")
    from radioactive.data import open_dataset
    from radioactive.models import get_model

    case = open_dataset(demo_suite / "Dataset901_DemoLungLesionsCT").case("lung1")
    target = case.targets[0]
    image = case.image
    model = get_model("random_walker")
    model.prepare(image.array, image.spacing_mm)
    steps = run_trajectory(model, target.mask, image.spacing_mm, get_prompter("cvpr25_box"),
                           np.random.default_rng(7),
                           user=get_user("center_of_largest_error(mode='cvpr25')"), steps=5,
                           scoring=Scoring(nsd_min_dice=0.2, time_budget_s=90.0),
                           keep_predictions=True)  # fmt: skip
    dscs, nsds = [], []
    for s in steps:
        gt, seg = target.mask, s.prediction
        dsc = surface.compute_dice_coefficient(gt, seg)
        nsd = 0.0
        if dsc > 0.2:
            distances = surface.compute_surface_distances(gt, seg, spacing_mm=image.spacing_mm)
            nsd = surface.compute_surface_dice_at_tolerance(distances, 2.0)
        dscs.append(dsc)
        nsds.append(nsd)
    np.testing.assert_allclose([s.dice for s in steps], dscs, rtol=0, atol=1e-12)
    np.testing.assert_allclose([s.nsd for s in steps], nsds, rtol=0, atol=1e-6)
    headline = {
        "DSC_AUC": integrate.cumulative_trapezoid(np.array(dscs[-5:]), np.arange(5))[-1],
        "NSD_AUC": integrate.cumulative_trapezoid(np.array(nsds[-5:]), np.arange(5))[-1],
        "DSC_Final": dscs[-1],
        "NSD_Final": nsds[-1],
    }
    ours = {
        "DSC_AUC": auc_cvpr25([s.dice for s in steps]),
        "NSD_AUC": auc_cvpr25([s.nsd for s in steps]),
        "DSC_Final": steps[-1].dice,
        "NSD_Final": steps[-1].nsd,
    }
    for name, value in headline.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert 0 < headline["DSC_Final"] <= 1
