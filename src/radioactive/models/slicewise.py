"""The slice-wise engine: any 2D promptable model becomes a 3D one.

A :class:`SliceBackend` wraps a 2D model: it normalises a volume to the model's intensity
contract, encodes batches of axial slices into embeddings, and decodes one slice's prompts into
logits. :class:`SliceWiseModel` drives it over a volume:

* only the slices that carry prompts are inferred; every other slice keeps the previous
  prediction (background at the first step);
* the encoder runs once per slice for the lifetime of the prepared volume: embeddings are cached
  across prompters, targets and refinement steps, in a least-recently-used cache bounded in bytes;
  misses are encoded in batches; with a persistent cache
  (:class:`~radioactive.models.embedding_store.DiskEmbeddingCache`, :meth:`SliceWiseModel.
  use_disk_cache`) a slice encoded by an earlier run or another process is loaded instead;
* prompts accumulate across steps ("WithPrev") unless an interaction says otherwise ("NoPrev");
  the previous step's low-resolution **logits** of a slice are fed back as its mask prompt when
  the model accepts one;
* a 3D box becomes the same 2D box on every slice of its z range; a scribble becomes a point per
  voxel on its own slice (as the reference does); z-limits only bound propagation; which slices
  a prompt lies on is the prompt's own ``slices()``;
* lassos are refused, by capability, before any compute: a 2D backend receives points, a box and
  a mask per slice (:class:`SlicePrompts`), and the engine does not turn a polygon into those;
* :meth:`SliceWiseModel.slice_predictor` gives the propagation prompters their
  "predict this slice" callable; it records what it decoded, and the prediction of the
  prompter's interaction reuses those slices (each slice is decoded once) and counts their time
  in that step.

All coordinates handed to a backend are (y, x) pixel indices of the canonical axial slice; the
backend converts to its own input space (see :mod:`radioactive.models.transforms`).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    Capabilities,
    ModelCard,
    Prediction,
    StepTimings,
    check_supported,
)
from radioactive.models.slice_routing import (
    UNSENT_KINDS,
    expanded_prompt_types,
    prompts_by_slice,
)
from radioactive.prompts.types import (
    Box2D,
    Interaction,
    Point,
    Prompt,
    check_within,
)

DEFAULT_CACHE_BYTES = 2 * 1024**3

#: the precisions the engine runs a torch backend at
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class SlicePrompts:
    """The prompts of one axial slice in (y, x) pixel coordinates of the canonical slice.

    Attributes:
        points: (N, 2) integer (y, x).
        labels: (N,) 1 for positive, 0 for negative.
        box: half-open (y0, x0, y1, x1) or ``None``.
        mask_logits: the previous low-resolution logits of this slice, or ``None``.
    """

    points: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    labels: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    box: tuple[int, int, int, int] | None = None
    mask_logits: Any = None

    @property
    def empty(self) -> bool:
        return self.box is None and len(self.points) == 0


class SliceBackend(Protocol):
    """A 2D promptable model as the engine sees it."""

    card: ModelCard
    capabilities: Capabilities

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        """The canonical (z, y, x) image in the model's intensity space (same shape). A backend
        whose contract depends on the modality takes it as a second argument ``modality``
        (``"CT"``, ``"MR"`` or the dataset's own word) and records what it used in
        ``contract_used``."""

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        """Embeddings of a batch (B, Y, X) of normalised slices, one per slice."""

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        """Logits at full slice resolution (Y, X) and the low-resolution logits to feed back."""

    def embedding_nbytes(self, embedding: Any) -> int:
        """Memory an embedding holds (for the cache budget)."""


class EmbeddingCache:
    """Least-recently-used embeddings of one volume, bounded in bytes (``max_bytes=0``: off)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self.nbytes = 0
        self.evictions = 0

    def __contains__(self, z: int) -> bool:
        return z in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, z: int) -> Any:
        item = self._items.pop(z)
        self._items[z] = item
        return item[0]

    def put(self, z: int, embedding: Any, nbytes: int) -> None:
        if self.max_bytes <= 0 or nbytes > self.max_bytes:
            return
        if z in self._items:
            self.nbytes -= self._items.pop(z)[1]
        while self._items and self.nbytes + nbytes > self.max_bytes:
            _, (_, size) = self._items.popitem(last=False)
            self.nbytes -= size
            self.evictions += 1
        self._items[z] = (embedding, nbytes)
        self.nbytes += nbytes

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


@dataclass(frozen=True)
class SliceDecode:
    """One slice decoded for a propagation prompter: the prompts it was decoded with (as the
    engine sent them), the full-resolution logits and the low-resolution logits to feed back."""

    prompts: tuple[Prompt, ...]
    logits: npt.NDArray[np.float32]
    low: Any


class RecordingSlicePredictor:
    """ "Predict this slice" of a :class:`SliceWiseModel` that keeps what it decoded.

    Calls decode with no mask prompt and no prompt accumulation; their time and counts go to
    :attr:`timings` (and the model's ``totals``). :meth:`predict` then predicts the prompter's
    interaction: each slice recorded with the prompts the interaction puts on it is reused, not
    decoded again, and the recorded timings are added to the prediction's.
    """

    def __init__(self, model: SliceWiseModel):
        self.model = model
        self.decoded: dict[int, SliceDecode] = {}
        self.timings = StepTimings()

    def __call__(self, z: int, prompts: Sequence[Prompt]) -> npt.NDArray[np.bool_]:
        z = int(z)
        depth, ny, nx = self.model.shape
        check_within(prompts, self.model.shape, f"model {self.model.card.name!r}")
        sent = prompts_by_slice(list(prompts), depth).get(z, [])
        timings = StepTimings()
        decoded = self.model._decode([z], {z: sent}, None, timings)
        self.model.totals.add(timings)
        self.timings.add(timings)
        if z not in decoded:
            self.decoded.pop(z, None)
            return np.zeros((ny, nx), dtype=bool)
        logits, low = decoded[z]
        self.decoded[z] = SliceDecode(tuple(sent), logits, low)
        return np.asarray(logits > 0)

    def predict(self, interaction: Interaction, previous: Prediction | None = None) -> Prediction:
        """The model's prediction of ``interaction``, reusing (and then forgetting) the record."""
        decoded, timings = self.decoded, self.timings
        self.decoded, self.timings = {}, StepTimings()
        return self.model.predict(interaction, previous, reuse=(decoded, timings))


def slice_prompts(prompts: Sequence[Prompt]) -> SlicePrompts:
    """Convert one slice's prompts; with several boxes on a slice the latest one is used."""
    pts = [p for p in prompts if isinstance(p, Point)]
    boxes = [p for p in prompts if isinstance(p, Box2D)]
    sp = SlicePrompts()
    if pts:
        sp.points = np.asarray([p.zyx[1:] for p in pts], dtype=np.int64)
        sp.labels = np.asarray([1 if p.positive else 0 for p in pts], dtype=np.int64)
    if boxes:
        b = boxes[-1]
        sp.box = (b.lo[0], b.lo[1], b.hi[0], b.hi[1])
    return sp


class SliceWiseModel:
    """A 3D :class:`~radioactive.models.base.Model` made of a 2D :class:`SliceBackend`.

    Args:
        backend: the 2D model.
        cache_bytes: embedding cache budget (0 disables caching).
        batch_size: slices encoded per encoder call; ``None`` picks it by device
            (:func:`default_batch_size`: 1 on a CPU, where a batch only multiplies the
            encoder's activation memory, 8 on a GPU).
        use_mask_prompt: feed the previous logits back when the backend accepts a mask.
        decode_batch_size: slices decoded per decoder call by a backend that decodes batches
            (``decode_batch``: slices whose prompts have the same structure); 1 decodes slice by
            slice; ``None``: 16 on a GPU, where each call is launch-bound, and 1 on a CPU, where
            a batch is no faster (SAM 2.1 on 16 slices: 0.7× as fast).
        precision: ``"fp32"`` (default), or ``"bf16"`` / ``"fp16"``: the backend's encoder and
            decoder run under ``torch.autocast`` on its device (a torch model only). A model
            option, so part of every unit's identity.
        compile: compile the backend's image encoder with ``torch.compile`` (a torch model
            only; the first call of each input shape pays the compilation). Part of every
            unit's identity, as its numbers may differ in the last bits.
    """

    def __init__(
        self,
        backend: SliceBackend,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        batch_size: int | None = None,
        use_mask_prompt: bool = True,
        decode_batch_size: int | None = None,
        precision: str = "fp32",
        compile: bool = False,
    ):
        self.backend = backend
        self.card = backend.card
        self.capabilities = Capabilities(
            dim=3,
            prompt_types=expanded_prompt_types(backend.capabilities.prompt_types),
            accepts_mask=backend.capabilities.accepts_mask,
            slice_predictor=True,
        )
        self.cache = EmbeddingCache(cache_bytes)
        self._takes_modality = takes_modality(backend.normalize_volume)
        self.batch_size = max(1, int(batch_size if batch_size is not None
                                     else default_batch_size(backend)))  # fmt: skip
        self.use_mask_prompt = use_mask_prompt
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision != "fp32" and getattr(backend, "device", None) is None:
            raise ValueError(f"precision {precision!r} needs a torch model; "
                             f"{backend.card.name!r} has no device")  # fmt: skip
        self.precision = precision
        self.compiled: list[str] = []
        if compile:
            from radioactive.models._torch import compile_backend

            self.compiled = compile_backend(backend)
        gpu = default_batch_size(backend) > 1
        self.decode_batch_size = max(1, int(decode_batch_size if decode_batch_size is not None
                                            else (16 if gpu else 1)))  # fmt: skip
        self._image: npt.NDArray[np.float32] | None = None
        self._prompts: list[Prompt] = []
        self.totals = StepTimings()
        self.disk_cache: Any = None
        self._fingerprint: str | None = None

    def use_disk_cache(self, cache: Any) -> None:
        """Load and store embeddings in ``cache`` (a
        :class:`~radioactive.models.embedding_store.DiskEmbeddingCache`; ``None``: off)."""
        self.disk_cache = cache
        self._fingerprint = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def contracts(self) -> tuple[Any, ...]:
        """The backend's input contracts (empty when it states none)."""
        return tuple(getattr(self.backend, "contracts", ()))

    @property
    def contract_used(self) -> dict[str, Any] | None:
        """What the backend recorded about the contract of the prepared volume."""
        return getattr(self.backend, "contract_used", None)

    def prepare(
        self,
        image: npt.NDArray,
        spacing_mm: tuple[float, float, float] = (1, 1, 1),
        modality: str | None = None,
    ) -> None:
        arr = np.asarray(image)
        if arr.ndim != 3:
            raise ValueError(f"expected a 3D (z, y, x) image, got shape {arr.shape}")
        if self._takes_modality:
            norm = self.backend.normalize_volume(arr, modality)  # type: ignore[call-arg]
        else:
            norm = self.backend.normalize_volume(arr)
        self._image = np.ascontiguousarray(norm, dtype=np.float32)
        self.spacing_mm = spacing_mm
        self.cache.clear()
        self._fingerprint = None  # the contract used may differ from the previous volume's
        self.reset()

    def reset(self) -> None:
        self._prompts = []

    @property
    def shape(self) -> tuple[int, int, int]:
        if self._image is None:
            raise RuntimeError("call prepare(image) before predicting")
        z, y, x = self._image.shape
        return z, y, x

    # -- encoder with cache ------------------------------------------------------------------

    def _embeddings(self, zs: Sequence[int], timings: StepTimings) -> dict[int, Any]:
        assert self._image is not None
        out: dict[int, Any] = {}
        missing = []
        for z in zs:
            if z in self.cache:
                out[z] = self.cache.get(z)
            else:
                missing.append(z)
        if self.disk_cache is not None:
            from radioactive.models.embedding_store import load_missing

            missing = load_missing(self, missing, out)
        timings.cache_hits += len(zs) - len(missing)
        timings.cache_misses += len(missing)
        for i in range(0, len(missing), self.batch_size):
            chunk = missing[i : i + self.batch_size]
            t0 = time.perf_counter()
            with self._autocast():
                embs = self.backend.encode(self._image[chunk])
            timings.encoder_s += time.perf_counter() - t0
            timings.encoder_calls += len(chunk)
            for z, e in zip(chunk, embs, strict=True):
                out[z] = e
                self.cache.put(z, e, self.backend.embedding_nbytes(e))
                if self.disk_cache is not None:
                    from radioactive.models.embedding_store import store_embedding

                    store_embedding(self, z, e)
        return out

    def _decode(
        self, zs: Sequence[int], by_slice: dict[int, list[Prompt]],
        previous: Prediction | None, timings: StepTimings,
    ) -> dict[int, tuple[npt.NDArray[np.float32], Any]]:  # fmt: skip
        embs = self._embeddings(zs, timings)
        shape = self.shape[1:]
        todo: dict[int, SlicePrompts] = {}
        for z in zs:
            sp = slice_prompts(by_slice.get(z, []))
            sp.mask_logits = self._mask_input(previous, z)
            if not sp.empty:
                todo[z] = sp
        batch = getattr(self.backend, "decode_batch", None)
        if batch is None or self.decode_batch_size <= 1:
            chunks = [[z] for z in todo]
        else:  # slices whose prompts have one structure, decoded together
            groups: dict[tuple[int, bool, bool], list[int]] = {}
            for z, sp in todo.items():
                key = (len(sp.points), sp.box is not None, sp.mask_logits is not None)
                groups.setdefault(key, []).append(z)
            n = self.decode_batch_size
            chunks = [g[i : i + n] for g in groups.values() for i in range(0, len(g), n)]
        out: dict[int, tuple[npt.NDArray[np.float32], Any]] = {}
        for chunk in chunks:
            t0 = time.perf_counter()
            with self._autocast():
                if len(chunk) == 1 or batch is None:
                    decoded = [self.backend.decode(embs[chunk[0]], todo[chunk[0]], shape)]
                else:
                    decoded = batch([embs[z] for z in chunk], [todo[z] for z in chunk], shape)
            timings.decoder_s += time.perf_counter() - t0
            timings.slices_inferred += len(chunk)
            out.update(zip(chunk, decoded, strict=True))
        return out

    def _autocast(self) -> Any:
        """``torch.autocast`` at the model's precision (nothing at fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        device = getattr(self.backend, "device")  # noqa: B009  (checked in __init__)
        return torch.autocast(device_type=device.type, dtype=dtype)

    # -- the Model protocol --------------------------------------------------------------------

    def _mask_input(self, previous: Prediction | None, z: int) -> Any:
        """The low-resolution logits fed back as slice ``z``'s mask prompt (``None``: none)."""
        if self.use_mask_prompt and self.backend.capabilities.accepts_mask and previous:
            return previous.logits.get(z)
        return None

    def predict(
        self,
        interaction: Interaction,
        previous: Prediction | None = None,
        *,
        reuse: tuple[dict[int, SliceDecode], StepTimings] | None = None,
    ) -> Prediction:
        """Predict the target; only the slices the interaction's prompts lie on are inferred.

        ``reuse`` (given by :meth:`RecordingSlicePredictor.predict`): slices already decoded,
        with their timings. A slice whose recorded prompts are the ones it has now, and which
        gets no mask prompt, is taken as recorded; the recorded timings are added to this step's.
        """
        check_supported(self.card.name, self.capabilities, interaction)
        check_within(interaction.prompts, self.shape, f"model {self.card.name!r}")
        depth = self.shape[0]
        new = [p for p in interaction.prompts if p.kind not in UNSENT_KINDS]
        self._prompts = [*self._prompts, *new] if interaction.keep_previous else list(new)
        by_slice = prompts_by_slice(self._prompts, depth)
        touched = sorted(prompts_by_slice(new, depth))
        recorded, before = reuse if reuse is not None else ({}, StepTimings())
        reused = {
            z: (d.logits, d.low)
            for z, d in recorded.items()
            if d.prompts == tuple(by_slice.get(z, ())) and self._mask_input(previous, z) is None
        }
        timings = StepTimings()
        decoded = self._decode([z for z in touched if z not in reused], by_slice, previous, timings)
        self.totals.add(timings)
        timings.add(before)
        if previous is not None:
            mask = previous.mask.copy()
            logits = dict(previous.logits)
        else:
            mask = np.zeros(self.shape, dtype=bool)
            logits = {}
        for z, (full, low) in {**reused, **decoded}.items():
            if z in touched:
                mask[z] = full > 0
                logits[z] = low
        return Prediction(mask=mask, logits=logits, timings=timings)

    def slice_predictor(self) -> RecordingSlicePredictor:
        """ "Predict this slice": used by the propagation prompters (no prompt accumulation);
        it records what it decodes for the prediction of the prompter's interaction."""
        return RecordingSlicePredictor(self)


def default_batch_size(backend: Any) -> int:
    """Slices per encoder call when none is given: 8 on a GPU, 1 elsewhere. On a CPU a batch
    runs no faster than its slices one by one, and holds the activations of all of them at once
    (a ViT-B SAM encoder peaks at several GB for 8 slices): one slice at a time keeps the peak
    memory at the per-slice path's."""
    device = getattr(getattr(backend, "device", None), "type", "cpu")
    return 8 if device in ("cuda", "mps") else 1


def takes_modality(fn: Any) -> bool:
    """Whether ``fn`` (a ``prepare`` or ``normalize_volume``) takes a ``modality`` argument."""
    import inspect

    try:
        return "modality" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
