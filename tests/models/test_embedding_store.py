"""The persistent embedding cache: keys, atomic files, corrupt entries, LRU bound, processes, and
the engine loading what an earlier model encoded instead of encoding it again."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from radioactive.models.embedding_store import (
    DiskEmbeddingCache,
    embedding_arrays,
    embedding_from_arrays,
    model_fingerprint,
    slice_key,
)
from radioactive.models.slicewise import SliceWiseModel
from radioactive.prompts import get_prompter
from tests.models.test_slicewise import SQUARES, ModelSpaceBackend, volume_with_squares

torch = pytest.importorskip("torch")


def _arrays(value: float, n: int = 1000) -> dict[str, np.ndarray]:
    return {"embedding": np.full(n, value, np.float32), "__dtype__embedding": np.array("float32")}


def test_keys_follow_the_slice_content_and_the_model() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert slice_key("m", a) == slice_key("m", a.copy())  # content, not identity
    assert slice_key("m", a) != slice_key("other weights", a)
    b = a.copy()
    b[0, 0] += 1e-3
    assert slice_key("m", a) != slice_key("m", b)
    assert slice_key("m", a) != slice_key("m", a.reshape(4, 3))  # same bytes, other shape


def test_round_trip_keeps_values_and_dtypes(tmp_path: Path) -> None:
    store = DiskEmbeddingCache(tmp_path)
    backend = ModelSpaceBackend()
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        emb = torch.randn(4, 8, 8).to(dtype)
        store.put(f"k{dtype}", embedding_arrays(backend, emb))
        back = embedding_from_arrays(backend, store.get(f"k{dtype}"))
        assert back.dtype == dtype and torch.equal(back, emb)
    assert store.get("absent") is None
    assert (store.stats.hits, store.stats.misses, store.stats.writes) == (3, 1, 3)
    assert embedding_arrays(backend, np.zeros(3)) is None  # not a tensor: not stored


def test_a_corrupt_entry_is_removed_and_is_a_miss(tmp_path: Path) -> None:
    store = DiskEmbeddingCache(tmp_path)
    store.put("abc", _arrays(1.0))
    path = tmp_path / "ab" / "abc.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a truncated write
    assert store.get("abc") is None and not path.exists()
    store.put("abd", _arrays(2.0))
    path = tmp_path / "ab" / "abd.npz"
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # a flipped byte inside the array: the zip's CRC catches it
    path.write_bytes(bytes(data))
    assert store.get("abd") is None and store.stats.corrupt == 2


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    one = DiskEmbeddingCache(tmp_path, max_bytes=0)
    one.put("k0", _arrays(0.0))
    size = (tmp_path / "k0" / "k0.npz").stat().st_size
    store = DiskEmbeddingCache(tmp_path, max_bytes=int(3.5 * size))
    now = time.time()
    for i in range(1, 3):
        store.put(f"k{i}", _arrays(float(i)))
    for i in range(3):  # k0 oldest, then k1, k2
        os.utime(tmp_path / f"k{i}" / f"k{i}.npz", (now - 100 + i, now - 100 + i))
    assert store.get("k0") is not None  # a hit makes k0 the youngest
    store.put("k3", _arrays(3.0))  # 4 entries > 3.5: evict down to 90 % of the bound
    assert store.get("k1") is None and store.get("k0") is not None
    assert store.stats.evicted >= 1 and store.nbytes() <= 3.5 * size


def _writer(directory: str, seed: int) -> None:
    store = DiskEmbeddingCache(directory)
    for i in range(30):
        store.put(f"key{i % 5}", _arrays(float(i % 5), 20000))


def test_two_processes_writing_the_same_keys_leave_whole_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    store = DiskEmbeddingCache(tmp_path)
    for i in range(5):
        arrays = store.get(f"key{i}")
        assert arrays is not None and (arrays["embedding"] == float(i)).all()
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind


def _predict(model: SliceWiseModel, image: np.ndarray, target: np.ndarray):
    model.prepare(image)
    inter = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    return model.predict(inter)


def test_a_second_model_loads_instead_of_encoding(tmp_path: Path) -> None:
    image, target = volume_with_squares(squares=SQUARES)
    first = SliceWiseModel(ModelSpaceBackend())
    first.use_disk_cache(DiskEmbeddingCache(tmp_path))
    cold = _predict(first, image, target)
    assert cold.timings.encoder_calls == 3 and cold.timings.cache_misses == 3
    # a new process would start with an empty memory cache: a new model, the same folder
    backend = ModelSpaceBackend()
    second = SliceWiseModel(backend)
    second.use_disk_cache(DiskEmbeddingCache(tmp_path))
    warm = _predict(second, image, target)
    assert warm.timings.encoder_calls == 0 and backend.encoded == []
    assert warm.timings.cache_hits == 3 and warm.timings.cache_misses == 0
    assert np.array_equal(warm.mask, cold.mask)
    # other weights: nothing to load
    other = ModelSpaceBackend()
    other.weights_path = tmp_path / "w.pth"
    other.weights_path.write_bytes(b"other weights")
    third = SliceWiseModel(other)
    third.use_disk_cache(DiskEmbeddingCache(tmp_path))
    assert _predict(third, image, target).timings.encoder_calls == 3
    assert model_fingerprint(other) != model_fingerprint(backend)
