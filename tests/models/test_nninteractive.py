"""nnInteractive adapter: the real inference session with a tiny network built from nnInteractive's
and nnU-Net's own classes (no download), prompts checked where they reach the session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("nnInteractive.inference.inference_session")

from radioactive.models import describe_model, get_model
from radioactive.models.base import CheckpointError, Model, Prediction, UnsupportedPrompt
from radioactive.models.checkpoints import (
    checkpoint_path,
    checkpoint_status,
    fetch_checkpoint,
    require_checkpoint,
)
from radioactive.models.nninteractive import (
    NNInteractiveModel,
    box_coords,
    lasso_volume,
    scribble_volume,
)
from radioactive.prompts.types import Box2D, Box3D, Interaction, Lasso, MaskPrompt, Point, Scribble
from tests.models.spies import Spy

PATCH = 32
SHAPE = (30, 40, 50)

# nnInteractive's session sets torch's process-wide thread count
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def interaction(*prompts: Any, keep_previous: bool = True) -> Interaction:
    return Interaction(
        prompts=tuple(prompts), user_prompts=tuple(prompts), dof=0, seconds=0.0, source="test",
        keep_previous=keep_previous,
    )  # fmt: skip


def _plans(patch: int) -> dict[str, Any]:
    conv = {"n_stages": 2, "features_per_stage": [4, 8],
            "conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [[3, 3, 3]] * 2,
            "strides": [[1, 1, 1], [2, 2, 2]], "n_conv_per_stage": [1, 1],
            "n_conv_per_stage_decoder": [1], "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None,
            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True}}  # fmt: skip
    resampling = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    config = {
        "data_identifier": "tiny", "preprocessor_name": "DefaultPreprocessor", "batch_size": 1,
        "patch_size": [patch] * 3, "median_image_size_in_voxels": [patch] * 3,
        "spacing": [1.0] * 3, "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False], "batch_dice": False,
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": resampling, "resampling_fn_seg_kwargs": resampling,
        "resampling_fn_probabilities_kwargs": resampling,
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": conv,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
    }  # fmt: skip
    return {
        "dataset_name": "Dataset999_Tiny", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0] * 3,
        "original_median_shape_after_transp": [patch] * 3,
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2], "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {"mean": 0.0, "std": 1.0}},
        "configurations": {"3d_fullres": config},
    }  # fmt: skip


def make_model_folder(root: Path, patch: int = PATCH) -> Path:
    """A trained-model folder in nnInteractive's layout whose network predicts foreground over
    its whole input patch (all weights zero, foreground bias 1): a prediction then marks exactly
    the patch the session placed around the last interaction. nnInteractive's refinement
    (autozoom) plans with a 24-voxel margin, so it needs ``patch`` > 48."""
    import torch
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    (root / "fold_0").mkdir(parents=True)
    plans = _plans(patch)
    (root / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "foreground": 1},
               "numTraining": 1, "file_ending": ".nii.gz"}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    info = {"point_radius": 2, "interaction_decay": 0.9, "pad_mode_image": "constant"}
    (root / "inference_info.json").write_text(json.dumps(info), encoding="utf-8")
    (root / "LICENSE").write_text("test weights\n", encoding="utf-8")
    pm = PlansManager(plans)
    net = nnInteractiveTrainer_stub.build_network_architecture(
        pm, pm.get_configuration("3d_fullres"), 1 + 7, 2, enable_deep_supervision=False
    )
    state = net.state_dict()
    for value in state.values():
        value.zero_()
    state["decoder.seg_layers.0.bias"][1] = 1.0
    torch.save(
        {"trainer_name": "nnInteractiveTrainer_stub",
         "init_args": {"configuration": "3d_fullres"}, "network_weights": state},
        root / "fold_0" / "checkpoint_final.pth",
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("nni") / "model")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(40.0, 300.0, size=SHAPE).astype(np.float32)  # raw CT-like values


@pytest.fixture
def model(folder: Path, image: np.ndarray) -> NNInteractiveModel:
    m = NNInteractiveModel(checkpoint=folder, device="cpu", do_autozoom=False, threads=1)
    m.prepare(image, (1.0, 1.0, 1.0))
    return m


def patch_around(center: tuple[int, int, int]) -> tuple[slice, ...]:
    """The input patch the session places around ``center`` (clipped to the volume)."""
    return tuple(
        slice(max(c - PATCH // 2, 0), min(c + PATCH // 2, n))
        for c, n in zip(center, SHAPE, strict=True)
    )


def test_is_a_model_with_card_and_capabilities(model: NNInteractiveModel) -> None:
    assert isinstance(model, Model)
    assert model.capabilities.dim == 3
    assert model.capabilities.prompt_types == {"point", "box2d", "scribble", "lasso"}
    assert model.licence == "test weights"  # read by nnInteractive's own loader


def test_raw_intensities_reach_the_session(folder: Path, image: np.ndarray) -> None:
    m = NNInteractiveModel(checkpoint=folder, device="cpu", do_autozoom=False, threads=1)
    spy = Spy(m.session, "set_image")
    m.prepare(image, (2.5, 0.8, 0.8))
    (arr,), _ = spy.calls[0]
    assert arr.shape == (1, *SHAPE) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[0], image)  # not normalised by us
    # one contract for every modality: the modality changes nothing
    m.prepare(image, (2.5, 0.8, 0.8), modality="MR")
    (again,), _ = spy.calls[1]
    np.testing.assert_array_equal(again, arr)
    assert m.contract_used == {"contract": "nninteractive-session-v1", "intensity": "raw"}
    assert [c.modality for c in m.contracts] == ["any"]


def test_point_reaches_the_session_in_canonical_voxels(model: NNInteractiveModel) -> None:
    spy = Spy(model.session, "add_point_interaction")
    pred = model.predict(interaction(Point((10, 20, 25))), None)
    (coords,), kwargs = spy.calls[0]
    assert tuple(coords) == (10, 20, 25) and kwargs["include_interaction"] is True
    # the session drew the point into its positive point channel at exactly that voxel
    pos, _ = model.session.channel_mapping["points"]
    channel = model.session.interactions[pos].float().numpy()
    assert np.unravel_index(np.argmax(channel), SHAPE) == (10, 20, 25)
    # the prediction is the network's patch around the click, on the canonical grid
    assert pred.mask.shape == SHAPE and pred.mask.dtype == bool
    expected = np.zeros(SHAPE, dtype=bool)
    expected[patch_around((10, 20, 25))] = True
    np.testing.assert_array_equal(pred.mask, expected)
    assert pred.logits == {}


def test_negative_point_goes_to_the_negative_channel(model: NNInteractiveModel) -> None:
    spy = Spy(model.session, "add_point_interaction")
    model.predict(interaction(Point((10, 20, 25)), Point((12, 5, 5), positive=False)), None)
    assert [c[1]["include_interaction"] for c in spy.calls] == [True, False]
    _, neg = model.session.channel_mapping["points"]
    channel = model.session.interactions[neg].float().numpy()
    assert np.unravel_index(np.argmax(channel), SHAPE) == (12, 5, 5)


def test_box_is_an_axial_2d_box(model: NNInteractiveModel) -> None:
    spy = Spy(model.session, "add_bbox_interaction")
    box = Box2D(12, (15, 20), (25, 28))
    model.predict(interaction(box), None)
    (coords,), kwargs = spy.calls[0]
    assert coords == [[12, 13], [15, 25], [20, 28]] and kwargs["include_interaction"] is True
    pos, _ = model.session.channel_mapping["bbox2d"]
    channel = model.session.interactions[pos].float().numpy() > 0
    expected = np.zeros(SHAPE, dtype=bool)
    expected[12, 15:25, 20:28] = True
    np.testing.assert_array_equal(channel, expected)


def test_scribble_and_lasso_become_volumes(model: NNInteractiveModel) -> None:
    scribble = Scribble(((10, 5, 5), (10, 5, 6), (10, 6, 7)), positive=False)
    lasso = Lasso(10, ((10.0, 10.0), (10.0, 20.0), (20.0, 20.0), (20.0, 10.0)))
    s_spy = Spy(model.session, "add_scribble_interaction")
    l_spy = Spy(model.session, "add_lasso_interaction")
    model.predict(interaction(scribble, lasso), None)
    (vol,), kwargs = s_spy.calls[0]
    assert kwargs["include_interaction"] is False
    assert sorted(map(tuple, np.argwhere(vol))) == [(10, 5, 5), (10, 5, 6), (10, 6, 7)]
    (lvol,), lkwargs = l_spy.calls[0]
    assert lkwargs["include_interaction"] is True
    assert set(np.unique(np.nonzero(lvol)[0])) == {10}
    assert lvol[10, 10:20, 10:20].all() and lvol.sum() < 12 * 12


def test_unsupported_prompt_fails_before_any_compute(model: NNInteractiveModel) -> None:
    spy = Spy(model.session, "add_bbox_interaction")
    with pytest.raises(UnsupportedPrompt, match="box3d"):
        model.predict(interaction(Box3D((5, 5, 5), (10, 10, 10))), None)
    assert spy.calls == []


def test_prompt_outside_the_volume_is_refused(model: NNInteractiveModel) -> None:
    spy = Spy(model.session, "add_point_interaction")
    with pytest.raises(ValueError, match="outside the volume"):
        model.predict(interaction(Point((30, 5, 5))), None)
    with pytest.raises(ValueError, match="outside the volume"):
        model.predict(interaction(Box2D(-1, (1, 1), (4, 4))), None)
    assert spy.calls == []


def test_prompts_accumulate_and_reset_forgets_them(model: NNInteractiveModel) -> None:
    first = model.predict(interaction(Point((5, 10, 10))), None)
    second = model.predict(interaction(Point((25, 30, 40))), first)
    assert second.mask[patch_around((5, 10, 10))].all()  # the first patch is kept
    assert second.mask[patch_around((25, 30, 40))].all()
    model.reset()
    assert not model.target.any() if model.target is not None else False
    third = model.predict(interaction(Point((25, 30, 40))), None)
    assert not third.mask[0:2, 0:2, 0:2].any()


def test_without_previous_prompts_the_previous_mask_seeds_the_session(
    model: NNInteractiveModel,
) -> None:
    first = model.predict(interaction(Point((5, 10, 10))), None)
    spy = Spy(model.session, "add_initial_seg_interaction")
    model.predict(interaction(Point((25, 30, 40)), keep_previous=False), first)
    (seed,), kwargs = spy.calls[0]
    np.testing.assert_array_equal(seed.astype(bool), first.mask)
    assert kwargs["run_prediction"] is False


def test_initial_mask_prompt(model: NNInteractiveModel) -> None:
    initial = np.full(SHAPE, -5.0, dtype=np.float32)
    initial[3:6, 3:6, 3:6] = 5.0
    spy = Spy(model.session, "add_initial_seg_interaction")
    pred = model.predict(interaction(MaskPrompt(initial)), None)
    (seed,), kwargs = spy.calls[0]
    np.testing.assert_array_equal(seed.astype(bool), initial > 0)
    assert kwargs["run_prediction"] is True
    assert isinstance(pred, Prediction) and pred.mask[4, 4, 4]


def test_prompt_helpers() -> None:
    assert box_coords(Box2D(3, (1, 2), (4, 6))) == [[3, 4], [1, 4], [2, 6]]
    vol = scribble_volume(Scribble(((0, 0, 0), (99, 0, 0))), (2, 2, 2))
    assert vol.sum() == 1 and vol[0, 0, 0] == 1  # voxels outside the volume are dropped
    tri = lasso_volume(Lasso(1, ((0.0, 0.0), (0.0, 4.0), (4.0, 0.0))), (3, 6, 6))
    assert tri[1].sum() > 0 and tri[0].sum() == 0 and tri[2].sum() == 0


def test_get_model_returns_the_3d_model(folder: Path) -> None:
    m = get_model("nninteractive", checkpoint=folder, device="cpu", threads=1)
    assert isinstance(m, NNInteractiveModel)


def test_registry_and_checkpoint_folder(tmp_path: Path, folder: Path) -> None:
    info = describe_model("nninteractive", tmp_path)
    assert info["dim"] == 3 and info["checkpoint_status"] == "missing"
    with pytest.raises(CheckpointError, match="models fetch nninteractive"):
        require_checkpoint("nninteractive_v1.0", tmp_path)
    bad = tmp_path / "not_a_model"
    bad.mkdir()
    (bad / "plans.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CheckpointError, match="fold_"):
        require_checkpoint("nninteractive_v1.0", tmp_path, bad)
    assert require_checkpoint("nninteractive_v1.0", tmp_path, folder) == folder


def test_fetch_uses_nninteractive_model_manager(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from nnInteractive import model_management

    asked: list[tuple[str, Path]] = []

    def fake_ensure(model_id: str, model_root: Path | None = None, manifest: Any = None) -> Path:
        assert model_root is not None
        asked.append((model_id, Path(model_root)))
        dest = Path(model_root) / "models" / model_id
        shutil.copytree(folder, dest)
        return dest

    monkeypatch.setattr(model_management, "ensure_model_available", fake_ensure)
    path = fetch_checkpoint("nninteractive_v1.0", tmp_path)
    assert asked and asked[0][0] == "nnInteractive_v1.0"
    assert path == checkpoint_path("nninteractive_v1.0", tmp_path) and path.is_dir()
    assert (path / "fold_0" / "checkpoint_final.pth").is_file()
    assert checkpoint_status("nninteractive_v1.0", tmp_path) == "present"
    assert not any(p.name.endswith(".part") for p in path.parent.iterdir())


def test_fetch_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnInteractive import model_management

    def offline(*args: Any, **kwargs: Any) -> Path:
        raise RuntimeError("Could not download model (no internet connection?)")

    monkeypatch.setattr(model_management, "ensure_model_available", offline)
    with pytest.raises(CheckpointError, match="--checkpoint FOLDER"):
        fetch_checkpoint("nninteractive_v1.0", tmp_path)
    models = checkpoint_path("nninteractive_v1.0", tmp_path).parent
    assert not any(models.iterdir())  # no half-written folder left behind


def test_runs_in_an_experiment(folder: Path, tmp_path: Path) -> None:
    """nnInteractive through the runner: a static 3D prompter and corrective clicks, stored."""
    import duckdb

    from radioactive.runner.config import load_config
    from radioactive.runner.run import run_experiment
    from tests.conftest import write_nifti

    root = tmp_path / "Dataset999_Cube"
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 20.0, size=(50, 40, 30)).astype(np.float32)  # file order (x, y, z)
    label = np.zeros(image.shape, dtype=np.uint8)
    label[20:30, 15:25, 10:20] = 1
    image[label > 0] += 300.0
    write_nifti(root / "imagesTr" / "cube_0000.nii.gz", image)
    write_nifti(root / "labelsTr" / "cube.nii.gz", label)
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "cube": 1},
               "numTraining": 1, "file_ending": ".nii.gz"}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    cfg = tmp_path / "nni.yaml"
    cfg.write_text(
        f"""
name: nni
datasets:
  - name: {root}
models:
  - name: nninteractive
    options: {{checkpoint: {folder}, device: cpu, do_autozoom: false, threads: 1}}
prompters: [points_3d]
interactive:
  - {{prompter: points_3d, user: center_of_largest_error, steps: 2}}
seeds: [0]
""",
        encoding="utf-8",
    )
    report = run_experiment(load_config(cfg), tmp_path / "out")
    assert report.units_failed == 0 and report.units_written == 2, report.errors
    con = duckdb.connect(str(tmp_path / "out" / "results.duckdb"), read_only=True)
    rows = con.sql("SELECT step, dice FROM steps ORDER BY unit_id, step").fetchall()
    assert sorted(r[0] for r in rows) == [0, 0, 1, 2]
    assert all(0.0 < r[1] < 1.0 for r in rows)  # a patch-shaped prediction over the cube
