"""SAM 3 adapter: card, options, checkpoint (missing, gated, layout), random weights, registry,
the CPU build, and one run of the whole network against the upstream predictor.

The network is SAM 3's tracker with its vision backbone, seeded random weights
(``weights="random"``), built once for the module. The ViT backbone takes about a minute per
1008² slice on a small CPU: the fast tests never run it; the slow test runs it once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from radioactive.models.base import CheckpointError
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import Box2D
from radioactive.prompts.cost import make_interaction

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*torch.jit.*:FutureWarning", "ignore:.*autocast.*:UserWarning"
)

torch = pytest.importorskip("torch")
pytest.importorskip("sam3")

from radioactive.models.sam3 import (  # noqa: E402
    SAM3Backend,
    cpu_position_encodings,
    tracker_state,
)


@pytest.fixture(scope="module")
def sam3() -> SAM3Backend:
    with pytest.warns(UserWarning, match="sam3: building random weights"):
        return SAM3Backend(weights="random", device="cpu")


# -- card, options, registry ---------------------------------------------------------------------


def test_card_capabilities_and_contract(sam3) -> None:
    card = SAM3Backend.card
    assert card.name == "sam3" and card.licence == "SAM License"
    assert card.checkpoint == "sam3.pt" and card.checkpoint_sha256 is None
    assert "Carion et al." in card.reference and "SA-Co" in card.training_data
    assert SAM3Backend.capabilities.prompt_types == {"point", "box2d"}
    assert SAM3Backend.capabilities.accepts_mask
    (contract,) = SAM3Backend.contracts
    assert contract.preset == "sam_reference" and "1008" in contract.resampling
    assert "sam1_task_predictor.py" in contract.source
    # random weights are never mistaken for the checkpoint in the results
    assert sam3.card.checkpoint is None and sam3.card.checkpoint_sha256 is None
    assert "random" in sam3.card.training_data and sam3.weights_path is None


def test_options_are_checked(sam3, tmp_path) -> None:
    with pytest.raises(ValueError, match="weights"):
        SAM3Backend(weights="imagenet")
    with pytest.raises(ValueError, match="checkpoint"):
        SAM3Backend(checkpoint=tmp_path / "x.pt", weights="random")
    with pytest.raises(ValueError, match="multimask"):
        SAM3Backend(weights="random", multimask="sometimes")
    with pytest.raises(ValueError, match="intensity"):
        SAM3Backend(weights="random", intensity="rainbow")


def test_registry_lists_and_describes_it(tmp_path) -> None:
    from radioactive.models import (
        MODELS,
        backend_class,
        checkpoint_for,
        describe_model,
        model_names,
    )

    assert MODELS["sam3"] == "radioactive.models.sam3:SAM3Backend" and "sam3" in model_names()
    assert backend_class("sam3") is SAM3Backend and checkpoint_for("sam3") == "sam3"
    info = describe_model("sam3", tmp_path)
    assert info["licence"] == "SAM License" and info["checkpoint"] == "sam3.pt"
    assert info["prompt_types"] == ["box2d", "box3d", "point", "scribble"]
    assert info["checkpoint_status"] == "missing" and info["accepts_mask"] is True
    assert info["contracts"][0]["name"] == "sam3-reference-v1"


# -- the checkpoint --------------------------------------------------------------------------------


def test_a_missing_checkpoint_names_the_file_and_the_fix(tmp_path) -> None:
    from radioactive.models import get_model

    with pytest.raises(CheckpointError) as exc:
        get_model("sam3", cache=tmp_path)
    assert exc.value.path == tmp_path / "models" / "sam3.pt"
    assert "radioactive models fetch sam3" in str(exc.value.fix)
    with pytest.raises(CheckpointError, match="not found") as exc:
        SAM3Backend(checkpoint=tmp_path / "elsewhere.pt")
    assert exc.value.path == tmp_path / "elsewhere.pt"


def test_the_gated_checkpoint_is_never_downloaded_and_the_fetch_says_where_to_put_it(
    tmp_path,
) -> None:
    from radioactive.models.checkpoints import CHECKPOINTS, fetch_checkpoint

    entry = CHECKPOINTS["sam3"]
    assert entry.filename == "sam3.pt" and entry.licence == "SAM License"
    assert entry.url is None and entry.source is None and entry.sha256 is None
    with pytest.raises(CheckpointError, match="cannot be downloaded automatically") as exc:
        fetch_checkpoint("sam3", tmp_path)
    message = str(exc.value)
    assert "huggingface.co/facebook/sam3" in message and "SAM License" in message
    assert str(tmp_path / "models" / "sam3.pt") in message
    assert not (tmp_path / "models").exists()


def test_the_checkpoint_layout_maps_onto_the_tracker_with_its_backbone() -> None:
    state = {
        "detector.backbone.vision_backbone.trunk.w": 1,
        "detector.backbone.vision_backbone.sam2_convs.0.w": 2,
        "detector.backbone.language_backbone.w": 3,  # the text encoder: not used
        "detector.transformer.w": 4,  # the concept detector: not used
        "tracker.sam_mask_decoder.w": 5,
        "tracker.maskmem_tpos_enc": 6,
    }
    assert tracker_state(state) == {
        "backbone.vision_backbone.trunk.w": 1,
        "backbone.vision_backbone.sam2_convs.0.w": 2,
        "sam_mask_decoder.w": 5,
        "maskmem_tpos_enc": 6,
    }
    own = {"backbone.vision_backbone.trunk.w": 1, "sam_mask_decoder.w": 5}
    assert tracker_state(own) == own


def test_weights_in_the_checkpoint_layout_load_strictly(sam3, monkeypatch, tmp_path) -> None:
    import radioactive.models.checkpoints as checkpoints

    net_state = sam3.net.state_dict()
    layout = {
        ("detector." if k.startswith("backbone.") else "tracker.") + k: v
        for k, v in net_state.items()
    }
    layout["detector.backbone.language_backbone.extra"] = torch.zeros(1)
    monkeypatch.setattr(checkpoints, "load_checkpoint_state", lambda *a, **k: layout)
    loaded: dict[str, Any] = {}

    def load_state_dict(state, strict):
        loaded.update(state=state, strict=strict)

    monkeypatch.setattr(sam3.net, "load_state_dict", load_state_dict)
    sam3._load(tmp_path / "sam3.pt")
    assert loaded["strict"] is True and set(loaded["state"]) == set(net_state)
    assert all(loaded["state"][k] is v for k, v in net_state.items())
    monkeypatch.undo()
    # a file that does not fit names itself and the fix
    monkeypatch.setattr(checkpoints, "load_checkpoint_state", lambda *a, **k: {"x": 1})
    with pytest.raises(CheckpointError, match="not a SAM 3 checkpoint") as exc:
        sam3._load(tmp_path / "other.pt")
    assert exc.value.path == tmp_path / "other.pt" and "sam3.pt" in str(exc.value.fix)


# -- the build on a machine without CUDA -----------------------------------------------------------


def test_the_cpu_build_precomputes_upstreams_positional_encodings(sam3) -> None:
    from sam3 import model_builder
    from sam3.model.position_encoding import PositionEmbeddingSine

    assert model_builder.PositionEmbeddingSine is PositionEmbeddingSine  # restored
    encoding = sam3.net.backbone.vision_backbone.position_encoding
    assert isinstance(encoding, PositionEmbeddingSine)
    assert set(encoding.cache) == {(252, 252), (126, 126), (63, 63), (31, 31)}
    plain = PositionEmbeddingSine(num_pos_feats=256, normalize=True)
    for (h, w), cached in encoding.cache.items():
        assert cached.device.type == "cpu"
        assert torch.equal(cached, plain(torch.zeros(1, 1, h, w))[0])
    with pytest.raises(RuntimeError, match="boom"), cpu_position_encodings():
        assert model_builder.PositionEmbeddingSine is not PositionEmbeddingSine
        raise RuntimeError("boom")
    assert model_builder.PositionEmbeddingSine is PositionEmbeddingSine


def test_a_batch_of_slices_encodes_as_the_slices_one_by_one(sam3, monkeypatch) -> None:
    inputs: list[Any] = []
    gen = torch.Generator().manual_seed(0)
    fpn = [torch.randn(2, *s, generator=gen) for s in ((32, 288, 288), (64, 144, 144),
                                                       (256, 72, 72))]  # fmt: skip

    def forward_image(x):
        inputs.append(x.clone())
        levels = [f[: x.shape[0]].clone() for f in fpn]
        pos = [torch.zeros_like(f) for f in levels]
        return {"vision_features": levels[-1], "vision_pos_enc": pos, "backbone_fpn": levels}

    monkeypatch.setattr(sam3.net, "forward_image", forward_image)
    slices = np.random.default_rng(0).random((2, 40, 56)).astype(np.float32)
    embeddings = sam3.encode(slices)
    (x,) = inputs
    assert tuple(x.shape) == (2, 3, 1008, 1008)
    for i in range(2):
        assert torch.equal(x[i], sam3.encoder_input(torch.from_numpy(slices[i : i + 1]))[0])
    emb = embeddings[1]
    assert tuple(emb.image_embed.shape) == (256, 72, 72)
    assert [tuple(f.shape) for f in emb.high_res_feats] == [(32, 288, 288), (64, 144, 144)]
    assert torch.equal(emb.high_res_feats[0], fpn[0][1])
    assert sam3.embedding_nbytes(emb) == 4 * (256 * 72**2 + 32 * 288**2 + 64 * 144**2)


def agree(ours: Any, theirs: Any, mask: Any = None, atol: float = 1e-5) -> None:
    """Logits within ``atol`` of the predictor's, and the mask theirs wherever their logit is
    not within ``atol`` of 0."""
    diff = float(np.abs(ours - theirs).max())
    assert diff <= atol, f"max |diff| {diff:.3g}"
    if mask is not None:
        sure = np.abs(theirs) > atol
        assert np.array_equal(mask[sure], theirs[sure] > 0)


# -- the whole network, once -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_whole_network_agrees_with_the_upstream_predictor(sam3, monkeypatch) -> None:
    """One real run of the backbone: the adapter's, reused by the predictor only for an input
    that is exactly the adapter's (the network is deterministic)."""
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor

    real = sam3.net.forward_image
    runs: list[tuple[Any, Any]] = []

    def forward_image(x):
        for seen, out in runs:
            if torch.equal(seen, x):
                return {k: list(v) if isinstance(v, list) else v for k, v in out.items()}
        out = real(x)
        runs.append((x.clone(), {k: list(v) if isinstance(v, list) else v
                                 for k, v in out.items()}))  # fmt: skip
        return out

    monkeypatch.setattr(sam3.net, "forward_image", forward_image)
    h, w = 40, 56
    volume = np.zeros((3, h, w), np.float32)
    volume[1, 10:30, 15:40] = 1.0
    volume[1] += np.random.default_rng(0).random((h, w)).astype(np.float32) * 0.3
    model = SliceWiseModel(sam3)
    model.prepare(volume)
    prompts = [Box2D(1, (10, 15), (30, 40))]
    pred = model.predict(make_interaction(prompts, prompts, np.zeros(volume.shape, bool), "t"))
    assert pred.timings.encoder_calls == 1 and pred.mask.shape == volume.shape
    assert not pred.mask[[0, 2]].any()
    ((emb, _),) = model.cache._items.values()

    predictor = SAM3InteractiveImagePredictor(sam3.net)
    norm = sam3.normalize_volume(volume)[1]
    predictor.set_image(np.repeat(np.rint(norm * 255).astype(np.uint8)[..., None], 3, axis=2))
    assert len(runs) == 1  # the predictor's input was exactly the adapter's
    feats = predictor._features
    assert torch.equal(emb.image_embed, feats["image_embed"][0])
    for mine, theirs in zip(emb.high_res_feats, feats["high_res_feats"], strict=True):
        assert torch.equal(mine, theirs[0])
    box = np.array([15, 10, 39, 29])
    masks, _, low = predictor.predict(box=box, multimask_output=False, return_logits=True)
    assert float(low[0].std()) > 1e-3  # a non-trivial answer to agree on
    agree(pred.logits[1].numpy(), low[0])
    agree(sam3.resize.logits_to_slice(pred.logits[1], (h, w)), masks[0], pred.mask[1])
    # box + clicks + the previous logits, from the cached embedding
    sp = SlicePrompts(
        points=np.array([[20, 25], [5, 5]]), labels=np.array([1, 0]), box=(10, 15, 30, 40),
        mask_logits=pred.logits[1],
    )  # fmt: skip
    full2, low2 = sam3.decode(emb, sp, (h, w))
    masks2, _, ref2 = predictor.predict(
        point_coords=np.array([[25, 20], [5, 5]]), point_labels=np.array([1, 0]), box=box,
        mask_input=low, multimask_output=False, return_logits=True,
    )  # fmt: skip
    agree(low2.numpy(), ref2[0])
    agree(full2, masks2[0], full2 > 0)
