"""The session: one trajectory's steps, their rows, their timings and what users receive."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import pytest

from radioactive.models.base import Capabilities, ModelCard, StepTimings, UnsupportedPrompt
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import Box2D, Interaction, Lasso, get_prompter, get_user
from radioactive.prompts.base import SimulatedUser
from radioactive.prompts.cost import make_interaction
from radioactive.records import STEP_COLUMNS, Status
from radioactive.session import run_trajectory


class CountingBackend:
    """Segments the bright pixels inside the slice's box (or around its positive points); counts
    every decode per slice and spends a measurable time in the decoder."""

    card = ModelCard("counting", "1", None, None, "Apache-2.0", "none", "test")
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"point", "box2d"}))

    def __init__(self) -> None:
        self.decoded: Counter[int] = Counter()
        self.encoded: Counter[int] = Counter()

    def normalize_volume(self, image: Any) -> Any:
        return image.astype(np.float32)

    def encode(self, slices: Any) -> list[Any]:
        out = []
        for s in slices:
            z = int(s[0, 0])  # the test volumes carry their slice index in pixel (0, 0)
            self.encoded[z] += 1
            out.append((z, s))
        return out

    def embedding_nbytes(self, e: Any) -> int:
        return int(e[1].nbytes)

    def decode(self, emb: Any, sp: SlicePrompts, shape: tuple[int, int]) -> tuple[Any, Any]:
        z, img = emb
        self.decoded[z] += 1
        time.sleep(0.002)
        keep = np.zeros(shape, bool)
        if sp.box is not None:
            y0, x0, y1, x1 = sp.box
            keep[y0:y1, x0:x1] = True
        for (y, x), lab in zip(sp.points, sp.labels, strict=True):
            if lab == 1:
                keep[max(0, y - 12) : y + 13, max(0, x - 12) : x + 13] = True
        logits = np.where(keep & (img > 0.5), 8.0, -8.0).astype(np.float32)
        return logits, logits[::4, ::4]


def tube(shape=(12, 40, 40), zs=range(2, 10)) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros(shape, np.float32)
    target = np.zeros(shape, bool)
    for z in zs:
        target[z, 10 + z // 3 : 26 + z // 3, 8:24] = True
    image[target] = 1.0
    image[:, 0, 0] = np.arange(shape[0])  # slice index, read back by the backend
    return image, target


def _model() -> tuple[SliceWiseModel, CountingBackend]:
    backend = CountingBackend()
    model = SliceWiseModel(backend)
    return model, backend


@pytest.mark.parametrize("prompter", ["box_propagation", "point_propagation(seeds=3)"])
def test_propagation_decodes_each_slice_once_and_its_time_lands_in_the_step(prompter) -> None:
    image, target = tube()
    model, backend = _model()
    model.prepare(image, (1.0, 1.0, 1.0))
    before = StepTimings(**vars(model.totals))
    steps = run_trajectory(
        model, target, (1.0, 1.0, 1.0), get_prompter(prompter), np.random.default_rng(0)
    )
    (step,) = steps
    row = step.row()
    assert step.status == Status.OK and step.dice > 0.9
    # every slice the prompter visited was decoded exactly once
    prompted = set(step.interaction.slices)
    assert prompted and set(backend.decoded) == prompted
    assert all(n == 1 for n in backend.decoded.values()), backend.decoded
    assert all(n == 1 for n in backend.encoded.values())
    # the step's stored seconds and calls are the engine's totals for that step
    spent = {k: getattr(model.totals, k) - getattr(before, k) for k in vars(before)}
    for name in ("encoder_s", "decoder_s"):
        assert row[name] == pytest.approx(spent[name], rel=1e-9, abs=1e-12)
    assert row["decoder_s"] >= 0.002 * len(prompted)  # not ~0: the prompter's decodes count
    for name in ("encoder_calls", "cache_hits", "cache_misses", "slices_inferred"):
        assert row[name] == spent[name], name
    assert row["slices_inferred"] == len(prompted) == row["encoder_calls"]


def test_a_recorded_slice_with_other_prompts_is_decoded_again() -> None:
    image, target = tube()
    model, backend = _model()
    model.prepare(image)
    predictor = model.slice_predictor()
    predictor(5, [Box2D(5, (10, 8), (30, 24))])
    inter = make_interaction([Box2D(5, (11, 8), (30, 24))], [], target, "t")
    pred = predictor.predict(inter, None)
    assert backend.decoded[5] == 2 and pred.timings.slices_inferred == 2
    assert predictor.decoded == {}  # the record is used once


def test_without_propagation_the_model_is_asked_directly() -> None:
    image, target = tube()
    model, backend = _model()
    model.prepare(image)
    steps = run_trajectory(
        model, target, (1.0, 1.0, 1.0), get_prompter("box_per_slice"), np.random.default_rng(0)
    )
    assert steps[0].timings.slices_inferred == len(backend.decoded) == 8


def test_lassos_are_refused_by_capability_not_dropped() -> None:
    class ClaimsLasso(CountingBackend):
        capabilities = Capabilities(dim=2, prompt_types=frozenset({"point", "lasso"}))

    image, _ = tube()
    backend = ClaimsLasso()
    model = SliceWiseModel(backend)
    assert "lasso" not in model.capabilities.prompt_types
    model.prepare(image)
    lasso = Lasso(5, ((12.0, 9.0), (12.0, 20.0), (24.0, 15.0)))
    with pytest.raises(UnsupportedPrompt, match="lasso"):
        model.predict(Interaction((lasso,), (lasso,), 3, 15.0, "t"), None)
    assert not backend.encoded and not backend.decoded


class SpacingSpy(SimulatedUser):
    """Records the spacing each correction receives; never corrects."""

    name = "spacing_spy"
    seen: ClassVar[list[Any]] = []

    def correct(self, target, prediction, history, rng, *, spacing_mm=None) -> Interaction:
        type(self).seen.append(spacing_mm)
        return make_interaction([], [], target, self.source)


def test_users_receive_the_case_spacing() -> None:
    image, target = tube()
    model, _ = _model()
    model.prepare(image)
    SpacingSpy.seen = []
    run_trajectory(
        model, target, (2.5, 0.7, 0.8), get_prompter("box_interpolation(k=2)"),
        np.random.default_rng(0), user=SpacingSpy(), steps=2,
    )  # fmt: skip
    assert SpacingSpy.seen == [(2.5, 0.7, 0.8)] * 2


def test_center_of_largest_error_uses_the_spacing_it_receives() -> None:
    t = np.zeros((9, 9, 15), bool)
    t[1:8, 1:8, 1:14] = True  # 7 × 7 × 13 voxels
    p = np.zeros_like(t)
    user = get_user("center_of_largest_error")
    rng = np.random.default_rng
    # in voxel units every x in 4..10 is 4 voxels from the outside: the centre row in y, z
    voxel = {user.correct(t, p, [], rng(s)).prompts[0].zyx for s in range(20)}
    assert all(zyx[:2] == (4, 4) for zyx in voxel)
    # with 0.5 mm columns the x direction is short in mm: only the middle of x is deepest, and
    # 3 mm slices make z long, so many z tie instead
    mm = {
        user.correct(t, p, [], rng(s), spacing_mm=(3.0, 1.0, 0.5)).prompts[0].zyx for s in range(20)
    }
    assert all(zyx[1:] == (4, 7) for zyx in mm) and len({z for z, _, _ in mm}) > 1
    assert voxel != mm


def test_step_rows_carry_step_record_columns_in_record_order() -> None:
    image, target = tube()
    model, _ = _model()
    model.prepare(image)
    steps = run_trajectory(
        model, target, (1.0, 1.0, 1.0), get_prompter("box_per_slice"),
        np.random.default_rng(0), user=get_user("random_error_per_slice"), steps=3,
    )  # fmt: skip
    for s in steps:
        row = s.row()
        assert list(row) == [c for c in STEP_COLUMNS if c in row]
        assert {"step", "status", "dice", "hd95_mm", "assd_mm", "encoder_s"} <= set(row)
        assert row["status"] in (Status.OK.value, Status.STOPPED.value)
        assert type(row["status"]) is str
