"""Conformance of the SAM-Med3D adapter with its authors' pipeline, re-expressed WITH torchio.

The reference is uni-medical/SAM-Med3D ``utils/infer_utils.py`` (``data_preprocess``:
``tio.Resample(1.5)``, ``tio.ToCanonical()``, ``tio.CropOrPad(mask_name=..., target_shape=128)``,
``tio.ZNormalization(masking_method=lambda x: x > 0)``; ``sam_model_infer``: the prompt
encoder gets all points as (x, y, z) crop voxels and a low-res mask, all zeros at the first
click; ``data_postprocess``: ``tio.Resample(original, 'nearest')`` back to the volume) and
``utils/data_loader.py`` (``tio.Clamp(-1000, 1000)`` for CT), written here with torchio's own
transforms on a synthetic volume with a known affine, and compared with what the adapter hands
the network (random weights).

Our canonical array is (z, y, x) of a RAS-oriented volume, so torchio's (x, y, z) tensor is its
transpose with affine diag(sx, sy, sz). The geometry, (28, 300, 120) voxels of (2.5, 0.7, 0.7)
mm, is free of ties (no volume voxel centre exactly halfway between two grid voxels, where ITK's
nearest neighbour rounds by its floating-point path), so every check below is exact; with 2.0 or
0.8 mm voxels on the "corner" 1.5 mm grid ties are unavoidable (voxel i sits at grid index
(i + 0.5)·s/1.5 − 0.5), and a separate check shows that the mapping back differs only there. The ViT
encoder is replaced by a stub returning a zero embedding (its input is captured by a forward
pre-hook, which runs either way), and for the placement checks the mask decoder returns a
synthetic low-res logit pattern.

torchio changed the grid of ``Resample(spacing)`` in 0.20.11 (June 2025): before, ``ceil(n·s/t)``
voxels with the first voxel's corner on the volume's first corner (the grid of SAM-Med3D-turbo's
training data; the adapter's default ``grid="corner"``); since, ``floor(n·s/t)`` voxels centred
on the volume (``grid="centre"``). Both are checked: the grid of the installed torchio with its
own ``Resample(1.5)``, the other with torchio's ``Resample`` to the reference grid that version
builds (shape and affine stated in :func:`reference_grid`).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("medim")
pytest.importorskip("torchio")

import torch
import torch.nn.functional as F
import torchio as tio

from radioactive.models.sammed3d import BACKGROUND_LOGIT, SAMMed3DModel
from radioactive.prompts.types import Interaction, Point

SHAPE = (28, 300, 120)  # (z, y, x) → grid (47, 140, 56) "corner", (46, 140, 56) "centre"
SPACING = (2.5, 0.7, 0.7)
SIZE = 128
#: step 1: a positive and a negative click; the crop is padded before z and on both x sides,
#: and cropped before / padded after y (the volume is larger than 128 along y on the 1.5 mm grid)
STEP1 = (Point((6, 200, 30)), Point((14, 230, 40), positive=False))
#: step 2: a click far away along y moves the crop
STEP2 = (Point((20, 60, 80)),)


def interaction(*prompts: Any) -> Interaction:
    return Interaction(prompts=tuple(prompts), user_prompts=tuple(prompts), dof=0, seconds=0.0,
                       source="test")  # fmt: skip


def synthetic_volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """HU-like values in about [-2500, 2500]: both clamp bounds are hit, about half the voxels
    are > 0, and the pattern has no symmetry between axes."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    smooth = 900 * np.sin(z / 5.0) + 700 * np.cos(y / 23.0) - 600 * np.sin(x / 9.0 + 1)
    return (smooth + rng.normal(0, 300, shape)).astype(np.float32)


# -- the authors' pipeline with torchio --------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("+")[0].split(".")[:3] if p.isdigit())


#: the grid the installed torchio's Resample(spacing) builds
TORCHIO_GRID = "corner" if _version(tio.__version__) < (0, 20, 11) else "centre"


def reference_grid(image: tio.ScalarImage, grid: str, t: float = 1.5) -> tuple[Any, np.ndarray]:
    """(shape, affine) of the reference image torchio's ``Resample(t)`` builds: ``"corner"``
    (torchio <= 0.20.10) ``ceil(n·s/t)`` voxels, voxel 0 at continuous index ``(t/s - 1) / 2``;
    ``"centre"`` (torchio >= 0.20.11) ``floor(n·s/t)`` voxels around the volume's centre."""
    n = np.asarray(image.spatial_shape, float)
    s = np.asarray(image.spacing, float)
    if grid == "corner":
        m = np.where(n == 1, 1, np.ceil(n * s / t))
        first = 0.5 * (t / s - 1)
    else:
        m = np.where(n == 1, 1, np.maximum(np.floor(n * s / t), 1))
        first = (n - 1) / 2 - (m - 1) / 2 * t / s
    affine = image.affine.copy()
    affine[:3, :3] = image.affine[:3, :3] / s * t
    affine[:3, 3] = (image.affine @ np.r_[first, 1.0])[:3]
    return tuple(int(v) for v in m), affine


def encoder_tolerance(grid: str) -> float:
    """Max abs difference allowed between the adapter's encoder input and the reference: 0 (the
    same SimpleITK filter on the same grid, the same crop, the same torch float32 z-score over
    the same (x, y, z) layout). For the grid that is not the installed torchio's, the reference
    goes through torchio's affine → SimpleITK conversion; 1e-5 allows for an origin differing
    in the last bits there (measured: 0.0, and 0.0 against torchio 0.20.10's own Resample)."""
    return 0.0 if grid == TORCHIO_GRID else 1e-5


def resample(subject: tio.Subject, grid: str) -> tio.Subject:
    if grid == TORCHIO_GRID:
        return tio.Resample(1.5)(subject)
    return tio.Resample(target=reference_grid(subject.image, grid))(subject)


def tio_image(zyx: np.ndarray, spacing: tuple[float, float, float]) -> tio.ScalarImage:
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    tensor = torch.from_numpy(np.ascontiguousarray(zyx.transpose(2, 1, 0)))[None]
    return tio.ScalarImage(tensor=tensor, affine=affine)


def to_voxels(points_zyx: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N, 3) canonical (z, y, x) voxels of an image with affine ``src`` → (N, 3) (x, y, z)
    continuous voxel coordinates of the image with affine ``dst`` (torchio's geometry)."""
    xyz1 = np.c_[np.asarray(points_zyx, float)[:, ::-1], np.ones(len(points_zyx))]
    return (np.linalg.inv(dst) @ src @ xyz1.T).T[:, :3]


def authors_pipeline(
    vol: np.ndarray,
    points: list[Point],
    ct: bool,
    grid: str = "corner",
    spacing: tuple[float, float, float] = SPACING,
) -> dict[str, Any]:
    """Clamp (CT), Resample(1.5), ToCanonical, CropOrPad on a mask of the points' voxels,
    ZNormalization over x > 0 — with torchio — and the points in the crop's (x, y, z) voxels."""
    original = tio_image(vol, spacing)
    subject = tio.Subject(image=copy.deepcopy(original))
    if ct:
        subject = tio.Clamp(-1000, 1000)(subject)
    subject = tio.ToCanonical()(resample(subject, grid))
    grid = subject.image
    shape_xyz = np.asarray(grid.spatial_shape)
    # each click → the nearest voxel of the 1.5 mm grid (half up, as ITK), kept inside it
    zyx = np.array([p.zyx for p in points], float)
    cont = to_voxels(zyx, original.affine, grid.affine)
    vox = np.clip(np.floor(cont + 0.5).astype(int), 0, shape_xyz - 1)
    mask = torch.zeros((1, *grid.spatial_shape), dtype=torch.uint8)
    mask[0, vox[:, 0], vox[:, 1], vox[:, 2]] = 1
    subject.add_image(tio.LabelMap(tensor=mask, affine=grid.affine), "points")
    inside = torch.ones((1, *grid.spatial_shape), dtype=torch.float32)
    subject.add_image(tio.ScalarImage(tensor=inside, affine=grid.affine), "inside")
    cropped = tio.CropOrPad(mask_name="points", target_shape=(SIZE, SIZE, SIZE))(subject)
    norm = tio.ZNormalization(masking_method=lambda x: x > 0)
    roi = norm(cropped.image.data.clone())[None]  # (1, 1, X, Y, Z), as data_preprocess
    in_crop = np.rint(to_voxels(zyx, original.affine, cropped.image.affine)).astype(int)
    crop_of_vox = np.rint((np.linalg.inv(cropped.image.affine) @ grid.affine
                           @ np.c_[vox, np.ones(len(vox))].T).T[:, :3]).astype(int)  # fmt: skip
    start_xyz = np.rint(np.linalg.inv(grid.affine) @ cropped.image.affine[:, 3])[:3].astype(int)
    return {
        "original": original,
        "roi": roi,
        "affine": cropped.image.affine.copy(),
        "coords": crop_of_vox,  # (x, y, z) crop voxels of the clicks
        "coords_unrounded": in_crop,
        "inside": cropped.inside.data[0] > 0,  # (X, Y, Z): crop voxels inside the volume
        "start_zyx": tuple(int(v) for v in start_xyz[::-1]),
    }


def authors_back(low_res: torch.Tensor, roi_affine: np.ndarray, original: Any) -> np.ndarray:
    """``sam_model_infer`` + ``data_postprocess``: the low-res logits upsampled to the crop,
    thresholded (sigmoid > 0.5), resampled to the original image by nearest neighbour; (z, y, x)."""
    up = F.interpolate(low_res, size=(SIZE,) * 3, mode="trilinear", align_corners=False)
    pred = tio.LabelMap(tensor=(up[0] > 0).to(torch.float32), affine=roi_affine)
    back = tio.Resample(target=original, image_interpolation="nearest")(pred)
    return back.data[0].numpy().transpose(2, 1, 0) > 0.5


# -- one run of the adapter, everything captured ---------------------------------------------


@pytest.fixture(scope="module")
def model() -> SAMMed3DModel:
    with pytest.warns(UserWarning, match="random weights"):
        return SAMMed3DModel(weights="random", device="cpu")


class Capture:
    """Hooks on the network: the encoder's input (forward pre-hook; the ViT itself is stubbed),
    the prompt encoder's inputs and outputs, and a synthetic mask decoder."""

    def __init__(self, model: SAMMed3DModel, mp: pytest.MonkeyPatch):
        self.encoder_in: list[torch.Tensor] = []
        self.prompts: list[dict[str, Any]] = []
        self.low_res: list[torch.Tensor] = []
        net = model.net
        pe = net.prompt_encoder
        embedding = (1, pe.embed_dim, *pe.image_embedding_size)
        self.handle = net.image_encoder.register_forward_pre_hook(
            lambda _m, args: self.encoder_in.append(args[0].detach().clone())
        )
        mp.setattr(net.image_encoder, "forward", lambda x: torch.zeros(embedding))
        original = pe.forward

        def prompt_forward(points: Any, boxes: Any, masks: Any) -> Any:
            sparse, dense = original(points, boxes, masks)
            self.prompts.append({
                "coords": points[0].clone(), "labels": points[1].clone(),
                "masks": None if masks is None else masks.clone(), "dense": dense.clone(),
            })  # fmt: skip
            return sparse, dense

        mp.setattr(pe, "forward", prompt_forward)

        def decoder_forward(**_: Any) -> Any:
            g = torch.Generator().manual_seed(len(self.low_res))
            low = torch.randn((1, 1, 32, 32, 32), generator=g)
            low = F.avg_pool3d(low, 3, stride=1, padding=1) * 4  # smooth blobs, ~half > 0
            self.low_res.append(low)
            return low, torch.zeros((1, 1))

        mp.setattr(net.mask_decoder, "forward", decoder_forward)


def with_grid(model: SAMMed3DModel, grid: str) -> SAMMed3DModel:
    """The shared model with another ``grid`` (same network)."""
    other = copy.copy(model)
    other.grid = grid
    return other


@pytest.fixture(scope="module", params=["corner", "centre"])
def ct_run(model: SAMMed3DModel, request: pytest.FixtureRequest) -> dict[str, Any]:
    grid = request.param
    m = with_grid(model, grid)
    vol = synthetic_volume()
    with pytest.MonkeyPatch.context() as mp:
        cap = Capture(m, mp)
        try:
            m.prepare(vol, SPACING, modality="CT")
            first = m.predict(interaction(*STEP1), None)
            second = m.predict(interaction(*STEP2), first)
        finally:
            cap.handle.remove()
    return {"grid": grid, "vol": vol, "cap": cap, "first": first, "second": second,
            "used": dict(m.contract_used or {}), "grid_shape": m.grid_shape,
            "ref1": authors_pipeline(vol, list(STEP1), ct=True, grid=grid),
            "ref2": authors_pipeline(vol, [*STEP1, *STEP2], ct=True, grid=grid)}  # fmt: skip


# -- the checks ------------------------------------------------------------------------------


def test_contract_recorded(ct_run: dict[str, Any]) -> None:
    used = ct_run["used"]
    name = {"corner": "sammed3d-authors-ct-v1", "centre": "sammed3d-authors-ct-v1+grid:centre"}
    assert used["contract"] == name[ct_run["grid"]] and used["modality"] == "CT"
    assert used["znorm_skipped"] == 0 and used["grid"] == ct_run["grid"]


def test_installed_torchio_builds_the_grid_it_is_said_to() -> None:
    """Tolerance: exact. The installed torchio's Resample(1.5) grid is :func:`reference_grid`'s
    (the premise of comparing the other grid with a Resample to that reference)."""
    image = tio_image(np.zeros(SHAPE, np.float32), SPACING)
    out = tio.Resample(1.5)(image)
    shape, affine = reference_grid(image, TORCHIO_GRID)
    assert tuple(out.spatial_shape) == shape
    np.testing.assert_allclose(out.affine, affine, rtol=0, atol=1e-12)
    other = reference_grid(image, "centre" if TORCHIO_GRID == "corner" else "corner")
    assert other[0] != shape or not np.allclose(other[1], affine)


def test_grid_shape(ct_run: dict[str, Any]) -> None:
    expect = {"corner": (47, 140, 56), "centre": (46, 140, 56)}[ct_run["grid"]]
    assert ct_run["grid_shape"] == expect


def test_encoder_input_equals_torchio_pipeline(ct_run: dict[str, Any]) -> None:
    """Tolerance: :func:`encoder_tolerance` (exact for the installed torchio's grid). Both clamp
    with the same bounds, resample with SimpleITK's linear ResampleImageFilter on the same grid,
    crop / pad with 0 by the same integers, and z-score with the same torch float32 operations."""
    ours = ct_run["cap"].encoder_in[0]
    ref = ct_run["ref1"]["roi"]
    assert tuple(ours.shape) == tuple(ref.shape) == (1, 1, SIZE, SIZE, SIZE)
    assert ct_run["first"].logits[0].start == ct_run["ref1"]["start_zyx"]
    tol = encoder_tolerance(ct_run["grid"])
    assert float((ours - ref).abs().max()) <= tol
    # the second step's crop (moved by the far click) too
    ours2 = ct_run["cap"].encoder_in[1]
    assert ct_run["second"].logits[0].start == ct_run["ref2"]["start_zyx"]
    assert ct_run["second"].logits[0].start != ct_run["first"].logits[0].start
    assert float((ours2 - ct_run["ref2"]["roi"]).abs().max()) <= tol


def test_encoder_input_check_fails_on_a_swapped_axis(ct_run: dict[str, Any]) -> None:
    """The comparison above can fail: the crop with x and z swapped (canonical order handed to
    the network), or not clamped, is far from the reference (max abs difference > 0.5)."""
    ours = ct_run["cap"].encoder_in[0]
    ref = ct_run["ref1"]["roi"]
    assert float((ours.permute(0, 1, 4, 3, 2) - ref).abs().max()) > 0.5
    unclamped = authors_pipeline(ct_run["vol"], list(STEP1), ct=False, grid=ct_run["grid"])
    assert float((ours - unclamped["roi"]).abs().max()) > 0.5
    # and the other torchio grid is not this one (a shift of a fraction of a voxel)
    other = "centre" if ct_run["grid"] == "corner" else "corner"
    other_roi = authors_pipeline(ct_run["vol"], list(STEP1), ct=True, grid=other)["roi"]
    assert float((ours - other_roi).abs().max()) > 0.1


def test_prompts_equal_torchio_crop_voxels(ct_run: dict[str, Any]) -> None:
    """Tolerance: exact. All clicks as (x, y, z) voxel indices of torchio's crop; labels."""
    p = ct_run["cap"].prompts
    ref = ct_run["ref1"]["coords"]
    np.testing.assert_array_equal(p[0]["coords"][0].numpy(), ref)
    np.testing.assert_array_equal(ref, ct_run["ref1"]["coords_unrounded"])  # grid voxels
    assert p[0]["labels"].tolist() == [[1, 0]]
    assert not np.array_equal(p[0]["coords"][0].numpy()[:, ::-1], ref)  # (z, y, x) would fail
    np.testing.assert_array_equal(p[1]["coords"][0].numpy(), ct_run["ref2"]["coords"])
    assert p[1]["labels"].tolist() == [[1, 0, 1]]


def test_first_step_mask_is_zero_not_no_mask_embed(
    model: SAMMed3DModel, ct_run: dict[str, Any]
) -> None:
    """Tolerance: exact. Step 1 feeds an all-zero (1, 1, 32, 32, 32) mask: the dense embedding
    equals the prompt encoder's for a zero mask and differs from the ``no_mask_embed`` path."""
    p = ct_run["cap"].prompts[0]
    assert p["masks"] is not None and tuple(p["masks"].shape) == (1, 1, 32, 32, 32)
    assert not p["masks"].any()
    pe = model.net.prompt_encoder
    points = (p["coords"], p["labels"])
    with torch.no_grad():
        _, dense_zero = pe(points, None, torch.zeros((1, 1, 32, 32, 32)))
        _, dense_none = pe(points, None, None)
    assert torch.equal(p["dense"], dense_zero)
    no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand_as(dense_none)
    assert torch.equal(dense_none, no_mask)
    assert float((p["dense"] - dense_none).abs().max().detach()) > 1e-3


def test_prediction_lands_where_torchio_maps_it_back(ct_run: dict[str, Any]) -> None:
    """Tolerance: exact (voxel for voxel) on this tie-free geometry. The adapter's mask equals
    the authors' ``data_postprocess`` of the same low-res logits (crop voxels outside the
    volume dropped, the rest of the volume background), and the comparison fails when the
    logits' x and z axes are swapped."""
    cap = ct_run["cap"]
    ref = authors_back(cap.low_res[0], ct_run["ref1"]["affine"], ct_run["ref1"]["original"])
    ours = ct_run["first"].mask
    assert ours.shape == SHAPE and 1000 < ours.sum() < ours.size // 2
    assert ours[0].any() and ours[:, -1].any()  # the volume's edge slices are reached
    assert np.array_equal(ours, ref)
    swapped = authors_back(
        cap.low_res[0].permute(0, 1, 4, 3, 2), ct_run["ref1"]["affine"], ct_run["ref1"]["original"]
    )
    assert (swapped != ours).sum() > 0.05 * ours.sum()


def test_second_step_with_another_crop_feeds_back_the_previous_logits(
    ct_run: dict[str, Any],
) -> None:
    """Tolerance: exact. Step 2's crop differs: the mask prompt is step 1's crop logits moved to
    the new crop by torchio's geometry (nearest resampling between the two crops' affines, an
    integer shift), ``BACKGROUND_LOGIT`` where step 1 did not reach or the crop leaves the
    volume, downsampled to 32³ (trilinear)."""
    cap, ref1, ref2 = ct_run["cap"], ct_run["ref1"], ct_run["ref2"]
    up = F.interpolate(cap.low_res[0], size=(SIZE,) * 3, mode="trilinear", align_corners=False)
    target = tio.ScalarImage(tensor=torch.zeros((1, SIZE, SIZE, SIZE)), affine=ref2["affine"])
    move = tio.Resample(target=target, image_interpolation="nearest")
    moved = move(tio.ScalarImage(tensor=up[0], affine=ref1["affine"])).data[0]
    ones = torch.ones((1, SIZE, SIZE, SIZE))
    reached = move(tio.ScalarImage(tensor=ones, affine=ref1["affine"])).data[0] > 0
    expect = torch.where(reached & ref2["inside"], moved, BACKGROUND_LOGIT)
    expect = F.interpolate(expect[None, None], size=(32,) * 3, mode="trilinear",
                           align_corners=False)  # fmt: skip
    fed = cap.prompts[1]["masks"]
    assert fed is not None and reached.any() and not reached.all()
    assert float((fed - expect).abs().max()) == 0.0
    swapped = expect.permute(0, 1, 4, 3, 2)
    assert float((fed - swapped).abs().max()) > 1.0
    # and step 2's mask keeps step 1's prediction where step 2's crop does not reach
    ref_back = authors_back(cap.low_res[1], ref2["affine"], ref2["original"])
    second = ct_run["second"].mask
    covered2 = authors_back(torch.full((1, 1, 32, 32, 32), 1.0), ref2["affine"], ref2["original"])
    assert np.array_equal(second[covered2], ref_back[covered2])
    assert np.array_equal(second[~covered2], ct_run["first"].mask[~covered2])


def test_mr_is_not_clamped(model: SAMMed3DModel) -> None:
    """Tolerance: :func:`encoder_tolerance` of the default grid. MR: the same pipeline without
    the clamp."""
    vol = synthetic_volume(seed=1)
    with pytest.MonkeyPatch.context() as mp:
        cap = Capture(model, mp)
        try:
            model.prepare(vol, SPACING, modality="MRI T2")
            model.predict(interaction(*STEP1), None)
        finally:
            cap.handle.remove()
    assert model.contract_used is not None
    assert model.contract_used["contract"] == "sammed3d-authors-mr-v1"
    ours = cap.encoder_in[0]
    ref = authors_pipeline(vol, list(STEP1), ct=False)["roi"]  # default grid: "corner"
    assert float((ours - ref).abs().max()) <= encoder_tolerance("corner")
    clamped = authors_pipeline(vol, list(STEP1), ct=True)["roi"]
    assert float((ours - clamped).abs().max()) > 0.5


def test_legacy_contract_differs_from_the_authors(model: SAMMed3DModel) -> None:
    """The legacy contract (scipy zoom, shifted crop, whole-crop z-score, no clamp) is kept as an
    option, and is NOT the authors' pipeline: its encoder input differs (max abs > 0.5)."""
    legacy = copy.copy(model)
    legacy.contract = "legacy"
    vol = synthetic_volume()
    with pytest.MonkeyPatch.context() as mp:
        cap = Capture(legacy, mp)
        try:
            legacy.prepare(vol, SPACING)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                legacy.predict(interaction(*STEP1), None)
        finally:
            cap.handle.remove()
    assert cap.prompts[0]["masks"] is None
    ref = authors_pipeline(vol, list(STEP1), ct=True)["roi"]
    assert float((cap.encoder_in[0] - ref).abs().max()) > 0.5


def test_back_mapping_differs_from_torchio_only_at_ties(model: SAMMed3DModel) -> None:
    """(2.0, 0.8, 0.8) mm voxels on the "corner" grid: volume voxels whose centre lies exactly
    halfway between two grid voxels exist on every axis; ITK decides them by its floating-point
    path, the adapter rounds half up. Tolerance: identical masks except at those tie voxels
    (the clicks are placed off ties)."""
    shape, spacing = (30, 200, 110), (2.0, 0.8, 0.8)
    vol = synthetic_volume(seed=2, shape=shape)
    points = [Point((11, 150, 40)), Point((14, 170, 60), positive=False)]
    with pytest.MonkeyPatch.context() as mp:
        cap = Capture(model, mp)
        try:
            model.prepare(vol, spacing, modality="CT")
            pred = model.predict(interaction(*points), None)
        finally:
            cap.handle.remove()
    ref = authors_pipeline(vol, points, ct=True, spacing=spacing)
    assert float((cap.encoder_in[0] - ref["roi"]).abs().max()) <= encoder_tolerance("corner")
    back = authors_back(cap.low_res[0], ref["affine"], ref["original"])
    ties = []
    for n, s in zip(shape, spacing, strict=True):
        j = (np.arange(n) + 0.5) * s / 1.5 - 0.5  # voxel i on the "corner" grid
        ties.append(np.abs(j - np.floor(j) - 0.5) < 1e-9)
    tie = ties[0][:, None, None] | ties[1][None, :, None] | ties[2][None, None, :]
    differ = back != pred.mask
    assert tie.any() and not (differ & ~tie).any()
    assert differ.sum() < 0.1 * tie.sum()
