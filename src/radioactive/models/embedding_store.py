"""A persistent embedding cache: slice embeddings on disk, shared by runs and processes.

The slice-wise engine encodes each slice once per prepared volume (its in-memory cache). This
store keeps the embeddings between runs: a rerun of a grid with new prompters on the same data,
or another worker process on the same case, loads them instead of running the encoder again.

* **Keys** are the sha256 of the model's fingerprint (its name, backend class, checkpoint name
  and sha256, input contract, device type, :data:`STORE_VERSION`) and of the normalised slice
  itself (shape, dtype and bytes). The slice's content, not its index, is the key: the same image
  under the same contract gives the same key in any case, dataset or run.
* **One file per key**, ``<dir>/<key[:2]>/<key>.npz`` (uncompressed NumPy arrays, with each
  tensor's dtype). A write goes to a temporary file in the same folder and is renamed into place
  (``os.replace``, atomic), so a reader never sees half a file and two processes writing the
  same key leave one whole file.
* **Corrupt entries** (a truncated or damaged file: the zip's CRC or structure does not check
  out) are removed and count as misses; the engine encodes the slice again.
* **Bounded in bytes** with least-recently-used eviction: a hit refreshes the file's
  modification time; when a write takes the store over ``max_bytes``, the oldest files are
  removed until it is under 90 % of it. Another process's files count too (the folder is
  measured, not remembered).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_STORE_BYTES",
    "STORE_VERSION",
    "DiskEmbeddingCache",
    "StoreStats",
    "embedding_arrays",
    "embedding_from_arrays",
    "load_missing",
    "model_fingerprint",
    "slice_key",
    "store_embedding",
]  # fmt: skip

log = logging.getLogger(__name__)

STORE_VERSION = "1"
"""Version of the file layout and key; a new version never reads an older one's files."""

#: the default bound of a store: 20 GiB
DEFAULT_STORE_BYTES = 20 * 1024**3

#: a full measurement of the folder at least every this many writes
_RESCAN_EVERY = 64


def slice_key(fingerprint: str, image_slice: npt.NDArray[np.generic]) -> str:
    """The key of one normalised slice under a model's ``fingerprint``."""
    arr = np.ascontiguousarray(image_slice)
    digest = hashlib.sha256()
    digest.update(f"{STORE_VERSION}|{fingerprint}|{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


@dataclass
class StoreStats:
    """What a store did since it was opened."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    corrupt: int = 0
    evicted: int = 0


class DiskEmbeddingCache:
    """Embeddings as arrays on disk, keyed by :func:`slice_key` (see the module docstring).

    Args:
        directory: the store's folder (created when missing).
        max_bytes: the bound of the folder's size; 0 for no bound.
    """

    def __init__(self, directory: str | Path, max_bytes: int = DEFAULT_STORE_BYTES):
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from radioactive.errors import RadioactiveError

            raise RadioactiveError(
                f"cannot use {self.directory} as the embedding cache: {exc}",
                fix="give a folder you can write to (--embedding-cache DIR / embedding_cache:)",
            ) from exc
        self.max_bytes = int(max_bytes)
        self.stats = StoreStats()
        self._since_scan = _RESCAN_EVERY
        self._size = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str) -> dict[str, npt.NDArray[np.generic]] | None:
        """The arrays stored under ``key``, or ``None`` (a miss; a corrupt file is removed)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.array(data[name]) for name in data.files}
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("embedding cache entry %s is unreadable (%s): encoding again", path, exc)
            self.stats.corrupt += 1
            self.stats.misses += 1
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used: a hit makes the entry young again
        self.stats.hits += 1
        return arrays

    def put(self, key: str, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Store ``arrays`` under ``key`` (atomically; a failed write is logged, not raised)."""
        path = self._path(key)
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.savez(handle, **dict(arrays))  # type: ignore[arg-type]
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("embedding cache: cannot write %s (%s)", path, exc)
            return
        self.stats.writes += 1
        self._size += path.stat().st_size
        self._since_scan += 1
        if self.max_bytes > 0 and (self._size > self.max_bytes or
                                   self._since_scan >= _RESCAN_EVERY):  # fmt: skip
            self._evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for sub in self.directory.iterdir():
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                if entry.name.endswith(".npz") and not entry.name.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def nbytes(self) -> int:
        """The size of the stored entries, measured on disk."""
        return sum(size for _, size, _ in self._entries())

    def _evict(self) -> None:
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        self._since_scan = 0
        if total > self.max_bytes:
            target = 0.9 * self.max_bytes
            for _, size, path in entries:
                if total <= target:
                    break
                with contextlib.suppress(OSError):
                    path.unlink()
                    self.stats.evicted += 1
                total -= size
        self._size = total


# -- embeddings as arrays ------------------------------------------------------------------------

_DTYPE_PREFIX = "__dtype__"


def embedding_arrays(backend: Any, embedding: Any) -> dict[str, npt.NDArray[np.generic]] | None:
    """``embedding`` as named arrays (``None`` when it cannot be stored): the backend's own
    ``embedding_tensors(embedding)`` (a mapping of names to tensors) when it has one, else the
    embedding itself when it is one tensor. Each tensor's dtype is kept beside it (a bfloat16
    tensor is stored as float32, which holds it exactly, and cast back on loading)."""
    hook = getattr(backend, "embedding_tensors", None)
    tensors = hook(embedding) if hook is not None else {"embedding": embedding}
    out: dict[str, npt.NDArray[np.generic]] = {}
    for name, tensor in tensors.items():
        if not hasattr(tensor, "detach"):  # not a torch tensor
            return None
        dtype = str(tensor.dtype).removeprefix("torch.")
        data = tensor.detach().to("cpu")
        if dtype == "bfloat16":
            data = data.float()
        out[name] = data.numpy()
        out[_DTYPE_PREFIX + name] = np.array(dtype)
    return out


def embedding_from_arrays(backend: Any, arrays: Mapping[str, npt.NDArray[np.generic]]) -> Any:
    """The embedding :func:`embedding_arrays` stored, as tensors on the backend's device with
    their dtypes, passed through the backend's ``embedding_from_tensors`` when it has one."""
    import torch

    device = getattr(backend, "device", "cpu")
    tensors = {}
    for name, value in arrays.items():
        if name.startswith(_DTYPE_PREFIX):
            continue
        dtype = getattr(torch, str(arrays[_DTYPE_PREFIX + name]))
        tensors[name] = torch.from_numpy(np.ascontiguousarray(value)).to(device=device,
                                                                          dtype=dtype)  # fmt: skip
    hook = getattr(backend, "embedding_from_tensors", None)
    return hook(tensors) if hook is not None else tensors["embedding"]


def model_fingerprint(backend: Any) -> str:
    """What besides the slice decides an embedding: the model's name and backend class, the
    weights (the sha256 of the file the backend loaded, or ``random`` for its seeded random
    weights), the input contract it used, and the device type."""
    from radioactive.runner.identity import file_sha256  # cached per path, size and mtime

    card = backend.card
    path = getattr(backend, "weights_path", None)
    weights = file_sha256(path) if path is not None else "random"
    contract = json.dumps(getattr(backend, "contract_used", None), sort_keys=True, default=str)
    device = getattr(getattr(backend, "device", None), "type", "cpu")
    kind = f"{type(backend).__module__}.{type(backend).__qualname__}"
    return f"{card.name}|{kind}|{card.checkpoint}|{weights}|{contract}|{device}"


# -- the engine's side ---------------------------------------------------------------------------


def _key_of(model: Any, z: int) -> str:
    """The key of slice ``z`` of ``model``'s prepared volume (the fingerprint made once per
    volume: the contract used may change with it)."""
    if model._fingerprint is None:
        precision = getattr(model, "precision", "fp32")
        compiled = ",".join(getattr(model, "compiled", ()))
        model._fingerprint = f"{model_fingerprint(model.backend)}|{precision}" + (
            f"|compiled:{compiled}" if compiled else ""
        )
    return slice_key(model._fingerprint, model._image[z])


def load_missing(model: Any, missing: list[int], out: dict[int, Any]) -> list[int]:
    """Load what ``model.disk_cache`` holds of the slices ``missing`` into ``out`` and the
    model's memory cache; the slices still to encode."""
    still = []
    for z in missing:
        arrays = model.disk_cache.get(_key_of(model, z))
        if arrays is None:
            still.append(z)
            continue
        try:
            emb = embedding_from_arrays(model.backend, arrays)
        except (KeyError, TypeError, ValueError, AttributeError):
            still.append(z)  # an entry this backend cannot read: encode the slice again
            continue
        out[z] = emb
        model.cache.put(z, emb, model.backend.embedding_nbytes(emb))
    return still


def store_embedding(model: Any, z: int, embedding: Any) -> None:
    """Put slice ``z``'s embedding into ``model.disk_cache`` (an embedding that is no tensor, a
    classical method's, stays out)."""
    arrays = embedding_arrays(model.backend, embedding)
    if arrays is not None:
        model.disk_cache.put(_key_of(model, z), arrays)
