"""The engine's ``compile`` option: the image encoder compiled in place, the same masks as
eager, its own embedding-cache keys, and a clear error for models it cannot compile."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from radioactive.models import get_model
from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import get_prompter

torch = pytest.importorskip("torch")


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.image_encoder.weight.fill_(1.0 / 9.0)


class TorchBoxBackend:
    """Smooths the slice with a 3 x 3 mean (the encoder) and answers bright pixels in the box."""

    card = ModelCard("tiny", "1", None, None, "Apache-2.0", "none", "test")
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}))

    def __init__(self) -> None:
        self.net = TinyNet().eval()
        self.device = torch.device("cpu")

    def normalize_volume(self, image: Any) -> Any:
        return np.asarray(image, dtype=np.float32)

    def encode(self, slices: Any) -> list[Any]:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(slices))[:, None]
            return [e[0].clone() for e in self.net.image_encoder(x)]

    def embedding_nbytes(self, embedding: Any) -> int:
        return int(embedding.numel() * embedding.element_size())

    def decode(self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]) -> Any:
        logits = np.full(shape, -1.0, dtype=np.float32)
        assert prompts.box is not None
        y0, x0, y1, x1 = prompts.box
        inside = embedding.numpy()[y0:y1, x0:x1] > 0.5
        logits[y0:y1, x0:x1] = np.where(inside, 1.0, -1.0)
        return logits, None


def _run(model: SliceWiseModel) -> np.ndarray:
    image = np.zeros((4, 24, 32), np.float32)
    target = np.zeros(image.shape, bool)
    target[1:3, 6:18, 8:26] = True
    image[target] = 1.0
    model.prepare(image, (2.0, 1.0, 1.0))
    first = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    return np.asarray(model.predict(first, None).mask)


def test_compile_compiles_the_encoder_in_place_with_the_same_masks() -> None:
    eager = SliceWiseModel(TorchBoxBackend())
    compiled_backend = TorchBoxBackend()
    keys = set(compiled_backend.net.state_dict())
    compiled = SliceWiseModel(compiled_backend, compile=True)
    assert compiled.compiled == ["image_encoder"] and eager.compiled == []
    encoder = compiled_backend.net.image_encoder
    assert isinstance(encoder, torch.nn.Conv2d)  # the same module object, compiled in place
    assert getattr(encoder, "_compiled_call_impl", None) is not None
    assert set(compiled_backend.net.state_dict()) == keys  # no "_orig_mod." prefix
    assert np.array_equal(_run(compiled), _run(eager))


def test_compiled_models_have_their_own_embedding_cache_keys() -> None:
    from radioactive.models.embedding_store import _key_of

    eager, compiled = SliceWiseModel(TorchBoxBackend()), SliceWiseModel(TorchBoxBackend())
    compiled.compiled = ["image_encoder"]  # the key only reads the names
    for m in (eager, compiled):
        m.prepare(np.ones((2, 8, 8), np.float32), (1.0, 1.0, 1.0))
    assert _key_of(eager, 0) != _key_of(compiled, 0)
    assert "compiled" not in str(eager._fingerprint)


def test_compile_needs_a_torch_encoder() -> None:
    with pytest.raises(ValueError, match="compile needs a torch model"):
        get_model("random_walker", compile=True)

    class NoEncoder(TorchBoxBackend):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Identity())

    with pytest.raises(ValueError, match="none of the modules"):
        SliceWiseModel(NoEncoder(), compile=True)
