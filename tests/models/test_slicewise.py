"""The slice-wise engine: coordinates, slice selection, prompt accumulation and the cache.

The backend here is synthetic but works like a SAM-family model: it sees each slice resized into
its own input frame (longest side ``size``, padded), receives prompts in that frame, and answers
with low-resolution logits that the engine maps back. A wrong axis order, flip or scale anywhere
shows up as a misplaced mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from radioactive.metrics import dice
from radioactive.models.base import Capabilities, ModelCard, UnsupportedPrompt
from radioactive.models.slicewise import EmbeddingCache, SlicePrompts, SliceWiseModel
from radioactive.models.transforms import LongestSideResize
from radioactive.prompts import Box2D, Interaction, Point, Scribble, get_prompter
from radioactive.prompts.cost import make_interaction

torch = pytest.importorskip("torch")


class ModelSpaceBackend:
    """Segments the bright pixels inside the prompted box, in its own 128×128 input frame."""

    card = ModelCard("synthetic", "1", None, None, "Apache-2.0", "none", "test")
    capabilities = Capabilities(
        dim=2, prompt_types=frozenset({"point", "box2d"}), accepts_mask=True
    )

    def __init__(self, size: int = 128):
        self.resize = LongestSideResize(size)
        self.encoded: list[int] = []
        self.mask_inputs: list[Any] = []

    def normalize_volume(self, image):
        return image.astype(np.float32)

    def encode(self, slices):
        self.encoded.extend([int(s.sum()) for s in slices])
        x = torch.from_numpy(np.ascontiguousarray(slices))[:, None]
        return list(self.resize.image(x)[:, 0])

    def embedding_nbytes(self, e):
        return e.element_size() * e.nelement()

    def decode(self, emb, sp: SlicePrompts, shape):
        self.mask_inputs.append(sp.mask_logits)
        size = self.resize.size
        keep = torch.zeros(size, size, dtype=torch.bool)
        if sp.box is not None:
            x0, y0, x1, y1 = self.resize.box(sp.box, shape)
            keep[
                int(np.floor(y0)) : int(np.ceil(y1)) + 1, int(np.floor(x0)) : int(np.ceil(x1)) + 1
            ] = True
        for (x, y), lab in zip(self.resize.points(sp.points, shape), sp.labels, strict=True):
            if lab == 1:  # a positive point selects a window around itself
                keep[max(0, int(y) - 16) : int(y) + 17, max(0, int(x) - 16) : int(x) + 17] = True
        logits = torch.where(keep & (emb > 0.5), 8.0, -8.0)
        low = torch.nn.functional.avg_pool2d(logits[None, None], 4)[0, 0]  # "low resolution"
        return self.resize.logits_to_slice(low, shape), low


def volume_with_squares(shape=(9, 50, 70), squares=None):
    image = np.zeros(shape, np.float32)
    target = np.zeros(shape, bool)
    for z, (y0, x0, y1, x1) in (squares or {}).items():
        image[z, y0:y1, x0:x1] = 1.0
        target[z, y0:y1, x0:x1] = True
    return image, target


SQUARES = {2: (10, 40, 30, 60), 3: (12, 42, 30, 60), 6: (30, 5, 45, 25)}


@pytest.mark.parametrize("shape", [(9, 50, 70), (9, 70, 50), (9, 64, 64)])
def test_box_prompts_land_on_the_right_slices_rows_and_columns(shape) -> None:
    squares = {z: b for z, b in SQUARES.items() if max(b[2], b[3]) <= min(shape[1:])}
    image, target = volume_with_squares(shape, squares)
    image[0, :5, :5] = 1.0  # a bright decoy on an unprompted slice
    model = SliceWiseModel(ModelSpaceBackend())
    model.prepare(image)
    inter = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    pred = model.predict(inter, None)
    assert sorted(np.flatnonzero(pred.mask.any(axis=(1, 2)))) == sorted(squares)
    for z in squares:
        assert dice(pred.mask[z][None], target[z][None]) > 0.93, z
        ys, xs = np.nonzero(pred.mask[z])
        y0, x0, y1, x1 = squares[z]
        assert abs(ys.min() - y0) <= 1 and abs(ys.max() - (y1 - 1)) <= 1
        assert abs(xs.min() - x0) <= 1 and abs(xs.max() - (x1 - 1)) <= 1
    assert pred.timings.slices_inferred == len(squares)


def test_points_are_mapped_as_y_x() -> None:
    image, target = volume_with_squares((4, 60, 90), {1: (40, 10, 52, 22)})
    model = SliceWiseModel(ModelSpaceBackend())
    model.prepare(image)
    inter = make_interaction([Point((1, 46, 16))], [Point((1, 46, 16))], target, "test")
    pred = model.predict(inter, None)
    assert dice(pred.mask[1][None], target[1][None]) > 0.9


def _interaction(prompts, target, keep_previous=True):
    return make_interaction(prompts, prompts, target, "test", keep_previous=keep_previous)


def test_unprompted_slices_keep_the_previous_prediction_and_prompts_accumulate() -> None:
    image, target = volume_with_squares((8, 40, 40), {2: (5, 5, 15, 15), 5: (20, 20, 30, 30)})
    backend = ModelSpaceBackend()
    model = SliceWiseModel(backend)
    model.prepare(image)
    first = model.predict(_interaction([Box2D(2, (5, 5), (15, 15))], target), None)
    assert first.mask[2].any() and not first.mask[5].any()
    second = model.predict(_interaction([Point((5, 25, 25))], target), first)
    assert np.array_equal(second.mask[2], first.mask[2])  # not re-inferred, kept
    assert second.mask[5].any()
    assert second.timings.slices_inferred == 1
    # the previous low-res logits of a re-prompted slice come back as its mask prompt
    third = model.predict(_interaction([Point((2, 10, 10), True)], target), second)
    assert backend.mask_inputs[-1] is second.logits[2]
    assert third.mask[2].any()


def test_no_prev_forgets_earlier_prompts() -> None:
    image, target = volume_with_squares((4, 40, 40), {1: (5, 5, 15, 15)})
    model = SliceWiseModel(ModelSpaceBackend(), use_mask_prompt=False)
    model.prepare(image)
    first = model.predict(_interaction([Box2D(1, (5, 5), (15, 15))], target), None)
    # a negative point alone (earlier box forgotten) predicts nothing on that slice
    neg = model.predict(
        _interaction([Point((1, 30, 30), False)], target, keep_previous=False), first
    )
    assert not neg.mask[1].any()
    model.reset()
    again = model.predict(_interaction([Point((1, 30, 30), False)], target), None)
    assert not again.mask[1].any()


def test_scribbles_and_3d_boxes_are_expanded_per_slice() -> None:
    image, target = volume_with_squares((6, 60, 60), {1: (10, 10, 30, 30), 2: (10, 10, 30, 30)})
    model = SliceWiseModel(ModelSpaceBackend())
    model.prepare(image)
    box3d = get_prompter("box_3d").initial(target, np.random.default_rng(0))
    pred = model.predict(box3d, None)
    assert dice(pred.mask, target) > 0.9
    model.reset()
    scribble = _interaction([Scribble(((1, 20, 20), (2, 20, 20)), True)], target)
    pred = model.predict(scribble, None)
    assert pred.mask[1].any() and pred.mask[2].any() and pred.timings.slices_inferred == 2


def test_unsupported_prompts_fail_before_any_compute() -> None:
    class BoxOnly(ModelSpaceBackend):
        capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}))

    backend = BoxOnly()
    image, target = volume_with_squares((3, 20, 20), {1: (2, 2, 8, 8)})
    model = SliceWiseModel(backend)
    model.prepare(image)
    with pytest.raises(UnsupportedPrompt, match="point"):
        model.predict(_interaction([Point((1, 4, 4))], target), None)
    assert backend.encoded == []


def test_encoder_runs_once_per_slice_across_prompters_and_refinement() -> None:
    image, target = volume_with_squares(
        (10, 40, 40), {z: (5 + z, 5, 20 + z, 25) for z in range(2, 8)}
    )
    rng = np.random.default_rng(0)
    runs = {}
    for cache_bytes in (2**30, 0):
        backend = ModelSpaceBackend()
        model = SliceWiseModel(backend, cache_bytes=cache_bytes, batch_size=4)
        model.prepare(image)
        from radioactive.prompts import get_user

        user = get_user("random_error_per_slice")
        masks = []
        for prompter in ("box_per_slice", "center_point_per_slice"):
            model.reset()
            rng = np.random.default_rng(1)
            inter = get_prompter(prompter).initial(target, rng)
            history = [inter]
            pred = model.predict(inter, None)
            for _ in range(5):
                fix = user.correct(target, pred.mask, history, rng)
                history.append(fix)
                if not fix.is_empty:
                    pred = model.predict(fix, pred)
                masks.append(pred.mask.copy())
        runs[cache_bytes] = (len(backend.encoded), masks, model.totals)
    encoded_cached, masks_cached, totals = runs[2**30]
    encoded_uncached, masks_uncached, _ = runs[0]
    assert encoded_cached == 6  # each of the six target slices once
    assert encoded_uncached > 6
    assert totals.cache_hits > 0 and totals.encoder_calls == 6
    assert all(np.array_equal(a, b) for a, b in zip(masks_cached, masks_uncached, strict=True))


def test_slice_predictor_drives_propagation() -> None:
    image, target = volume_with_squares((10, 40, 40), {z: (8, 8, 24, 24) for z in range(2, 9)})
    model = SliceWiseModel(ModelSpaceBackend())
    model.prepare(image)
    inter = get_prompter("box_propagation").initial(
        target, np.random.default_rng(0), model.slice_predictor()
    )
    assert sorted({p.z for p in inter.prompts}) == list(range(2, 9))
    pred = model.predict(inter, None)
    assert dice(pred.mask, target) > 0.9
    assert model.totals.encoder_calls == 7  # propagation and the final prediction share the cache


def test_embedding_cache_evicts_least_recently_used() -> None:
    cache = EmbeddingCache(max_bytes=30)
    for z in range(3):
        cache.put(z, f"e{z}", 10)
    cache.get(0)  # 0 becomes most recent
    cache.put(3, "e3", 10)
    assert 1 not in cache and {0, 2, 3} <= {z for z in range(4) if z in cache}
    assert cache.evictions == 1 and cache.nbytes == 30
    cache.put(9, "too big", 31)
    assert 9 not in cache


def test_interaction_without_prompts_is_not_allowed_to_change_anything() -> None:
    image, target = volume_with_squares((3, 20, 20), {1: (2, 2, 8, 8)})
    model = SliceWiseModel(ModelSpaceBackend())
    model.prepare(image)
    first = model.predict(_interaction([Box2D(1, (2, 2), (8, 8))], target), None)
    same = model.predict(Interaction((), (), 0, 0.0, "none"), first)
    assert np.array_equal(same.mask, first.mask) and same.timings.slices_inferred == 0


def test_prepare_hands_the_modality_to_a_backend_that_takes_it() -> None:
    seen: list[Any] = []

    class ModalityBackend(ModelSpaceBackend):
        def normalize_volume(self, image, modality=None):
            seen.append(modality)
            self.contract_used = {"modality": modality}
            return image.astype(np.float32)

    image = np.zeros((2, 16, 16), np.float32)
    backend = ModalityBackend()
    model = SliceWiseModel(backend)
    model.prepare(image, modality="CT")
    model.prepare(image)
    assert seen == ["CT", None] and model.contract_used == {"modality": None}
    # a backend whose contract does not depend on the modality is called without it
    plain = SliceWiseModel(ModelSpaceBackend())
    plain.prepare(image, modality="MR")
    assert plain.shape == (2, 16, 16) and plain.contract_used is None


def test_encoder_batches_follow_the_device_unless_given() -> None:
    from types import SimpleNamespace

    from radioactive.models.slicewise import default_batch_size

    cpu = ModelSpaceBackend()
    assert SliceWiseModel(cpu).batch_size == 1  # no device: a CPU backend
    cpu.device = torch.device("cpu")
    assert default_batch_size(cpu) == 1
    assert default_batch_size(SimpleNamespace(device=SimpleNamespace(type="cuda"))) == 8
    assert SliceWiseModel(cpu, batch_size=4).batch_size == 4
    assert SliceWiseModel(cpu).decode_batch_size == 1  # a batch decodes no faster on a CPU
    gpu = ModelSpaceBackend()
    gpu.device = SimpleNamespace(type="cuda")
    assert (SliceWiseModel(gpu).batch_size, SliceWiseModel(gpu).decode_batch_size) == (8, 16)
    # one slice per encoder call on a CPU: the backend sees batches of one
    seen: list[int] = []
    encode = cpu.encode
    cpu.encode = lambda slices: (seen.append(len(slices)), encode(slices))[1]  # type: ignore[method-assign]
    image, target = volume_with_squares(squares=SQUARES)
    model = SliceWiseModel(cpu)
    model.prepare(image)
    model.predict(get_prompter("box_per_slice").initial(target, np.random.default_rng(0)))
    assert seen == [1, 1, 1]
