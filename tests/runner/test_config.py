"""The experiment configuration: loading, errors with locations, expansion, hashing, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radioactive.errors import RadioactiveError
from radioactive.prompts.base import get_prompter
from radioactive.prompts.presets import PRESETS
from radioactive.runner.config import (
    FAMILIES,
    ConfigError,
    ExperimentConfig,
    PairSpec,
    config_from_dict,
    load_config,
    quick_config,
    validate,
)
from tests.conftest import write_nifti

FULL = """\
name: full-example
output: results/full          # relative: to this file's folder
cache_dir: cache
datasets:
  - name: demo
    datasets: [DemoLungLesionsCT]
    max_targets_per_case: 3
  - name: data/Dataset001_Tiny
    cases: [case_001]
    targets: {type: instance, connectivity: 6, min_voxels: 2}
models:
  - name: filled_box
  - name: mobilesam
    label: mobilesam-cpu
    options: {device: cpu, batch_size: 4, checkpoint: weights/mobile_sam.pt}
prompters:
  - box_interpolation(k=3, jitter=5)
  - points_per_slice(n=2)
families: [cvpr25]
interactive:
  - preset: 1pps+scribble
  - prompter: box_3d
    user: center_of_largest_error
    keep_initial: false
seeds: [0, 1, 2]
stopping: {max_steps: 4, dice_target: 0.95, effort_budget_s: 120}
metrics:
  nsd_tolerance_mm: 1.5
  tolerance_mm_by_label: {liver: 3.0}
  surface: false
executor: {kind: process, workers: 2, gpus_per_model: {mobilesam-cpu: 0.5}}
report: {inter_rater_dice: {Dataset001_Tiny: 0.85}}
embedding_cache: embeddings
embedding_cache_gb: 2.5
save_predictions: true
"""

MINIMAL = {"datasets": [{"name": "demo"}], "models": [{"name": "filled_box"}]}


def _write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problem(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return str(info.value)


# -- loading ---------------------------------------------------------------------------------


def test_full_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, FULL))
    base = tmp_path.resolve()
    assert cfg.name == "full-example"
    assert cfg.output == base / "results" / "full"
    assert cfg.cache_dir == base / "cache"
    assert cfg.embedding_cache == base / "embeddings" and cfg.embedding_cache_gb == 2.5
    # where caches live changes no number: not in the configuration's hash
    moved = cfg.model_copy(update={"embedding_cache": base / "elsewhere", "embedding_cache_gb": 9})
    assert moved.config_hash() == cfg.config_hash()
    assert cfg.report.inter_rater_dice == {"Dataset001_Tiny": 0.85}
    assert cfg.datasets[0].name == "demo"  # a recipe name stays a name
    assert cfg.datasets[0].datasets == ["DemoLungLesionsCT"]
    assert cfg.datasets[1].name == str(base / "data" / "Dataset001_Tiny")
    assert cfg.datasets[1].targets is not None and cfg.datasets[1].targets.connectivity == 6
    assert [m.label for m in cfg.models] == ["filled_box", "mobilesam-cpu"]
    assert cfg.models[1].options == {
        "device": "cpu",
        "batch_size": 4,
        "checkpoint": str(base / "weights" / "mobile_sam.pt"),
    }
    assert cfg.seeds == [0, 1, 2]
    assert cfg.stopping.dice_target == 0.95 and cfg.metrics.surface is False
    assert cfg.executor.kind == "process" and cfg.executor.gpus_per_model == {"mobilesam-cpu": 0.5}
    assert cfg.save_predictions is True
    assert [p.label for p in cfg.pairs()] == [
        "box_interpolation(k=3, jitter=5)",
        "points_per_slice(n=2)",
        "cvpr25",
        "1pps+scribble",
        "box_3d + center_of_largest_error",
    ]
    explicit = cfg.pairs()[-1]
    assert (explicit.steps, explicit.keep_initial) == (4, False)  # steps from stopping.max_steps


def test_absolute_and_home_paths_are_kept(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    text = f"datasets: [{{name: {other}}}]\nmodels: [{{name: filled_box}}]\nprompters: [box_3d]\n"
    text += "output: ~/radioactive-results\n"
    (tmp_path / "sub").mkdir()
    cfg = load_config(_write(tmp_path / "sub", text))
    assert cfg.datasets[0].name == str(other)
    assert cfg.output == Path("~/radioactive-results").expanduser()


def test_unknown_keys_are_listed_with_location_and_suggestion(tmp_path: Path) -> None:
    text = FULL.replace("  - name: filled_box", "  - nme: filled_box").replace(
        "save_predictions", "save_prediction"
    )
    msg = _problem(text, tmp_path)
    assert str(tmp_path / "exp.yaml") in msg
    assert "models.0.nme: extra inputs are not permitted" in msg
    assert "did you mean 'name'?" in msg
    assert "models.0.name: field required" in msg
    assert (
        "save_prediction: extra inputs are not permitted (did you mean 'save_predictions'?" in msg
    )
    assert "3 problems" in msg and "Fix:" in msg


def test_nested_unknown_key_in_target_rules(tmp_path: Path) -> None:
    msg = _problem(FULL.replace("min_voxels: 2", "min_voxel: 2"), tmp_path)
    assert "datasets.1.targets.min_voxel: extra inputs are not permitted" in msg
    assert "did you mean 'min_voxels'?" in msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("seeds: [0, 1, 2]", "seeds: [zero]", "seeds.0: input should be a valid integer"),
        ("seeds: [0, 1, 2]", "seeds: [1, 1]", "seeds: seeds must be unique (repeated: 1)"),
        ("seeds: [0, 1, 2]", "seeds: [-1]", "seeds: seeds must be >= 0"),
        ("seeds: [0, 1, 2]", "seeds: []", "seeds: list should have at least 1 item"),
        ("kind: process", "kind: gpu", "executor.kind: input should be 'inline', 'process' or"),
        ("workers: 2", "workers: 0", "executor.workers: input should be greater than or equal"),
        ("dice_target: 0.95", "dice_target: 1.5", "stopping.dice_target: input should be less"),
        ("effort_budget_s: 120", "effort_budget_s: 0", "stopping.effort_budget_s: input should"),
        ("nsd_tolerance_mm: 1.5", "nsd_tolerance_mm: -1", "metrics.nsd_tolerance_mm: input"),
        ("{liver: 3.0}", "{liver: 0}", "tolerances must be > 0 mm (not for: liver)"),
        ("families: [cvpr25]", "families: [static2d]", "families.0: input should be 'static_2d'"),
        ("surface: false", "surface: maybe", "metrics.surface: input should be a valid boolean"),
        ("max_targets_per_case: 3", "max_targets_per_case: 0", "max_targets_per_case: input"),
        ("mobilesam-cpu: 0.5", "sam: 0.5", "gpus_per_model names no model of this experiment: sam"),
        ("label: mobilesam-cpu", "label: filled_box", "model labels must be unique (repeated"),
        ("keep_initial: false", "steps: 51", "interactive.1.steps: input should be less than"),
        ("  - preset: 1pps+scribble\n", "  - steps: 3\n", "interactive.0: give a preset, or both"),
        ("models:\n", "models: []\nx:\n", "models: list should have at least 1 item"),
        ("Tiny: 0.85}", "Tiny: 1.2}", "inter-rater Dice must be in (0, 1] (not for: Dataset001"),
        ("embedding_cache_gb: 2.5", "embedding_cache_gb: 0", "embedding_cache_gb: input should"),
    ],
)
def test_wrong_values_are_listed_with_location(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in FULL
    assert expected in _problem(FULL.replace(old, new, 1), tmp_path)


def test_nothing_to_run_is_an_error() -> None:
    with pytest.raises(ConfigError, match="nothing to run"):
        config_from_dict(MINIMAL)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: x\ndatasets:\n  - name: demo\n models: []\n", "line 4, column 2"),
        ("name: x\nmodels: [a, b\nseeds: [0]\n", "line 3, column 6"),
        ("name: x\n\tseeds: [0]\n", "line 2, column 1"),
        ("name: x\nseeds: [0]\nname: y\n", "line 3, column 1: duplicate key 'name'"),
    ],
)
def test_malformed_yaml_gives_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    msg = _problem(text, tmp_path)
    assert str(tmp_path / "exp.yaml") in msg
    assert f"invalid YAML at {where}" in msg


def test_missing_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="experiment file not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert isinstance(info.value, RadioactiveError)
    assert info.value.path == tmp_path / "nope.yaml" and "nope.yaml" in str(info.value)
    assert "is empty" in _problem("# nothing\n", tmp_path)
    assert "expected a mapping" in _problem("- a\n- b\n", tmp_path)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "prompters: [box_3d, boxes_3d]",
            "prompters.1: unknown prompter 'boxes_3d' (did you mean 'box_3d'?) (choose one",
        ),
        ("prompters: ['points_per_slice(m=2)']", "prompters.0: prompter 'points_per_slice' has no"),
        ("prompters: ['box_3d(']", "prompters.0: cannot parse 'box_3d('"),
        (
            "interactive: [{preset: cvpr24}]",
            "interactive.0: unknown preset 'cvpr24' (did you mean 'cvpr25'?) (choose",
        ),
        (
            "interactive: [{prompter: box_3d, user: clicker}]",
            "interactive.0: unknown simulated user 'clicker' (choose one of: center_of_largest",
        ),
        (
            "interactive: [{preset: cvpr25, prompter: box3d}]",
            "interactive.0: unknown prompter 'box3d'",
        ),
    ],
)
def test_unknown_prompter_user_preset_names(tmp_path: Path, entry: str, expected: str) -> None:
    text = "datasets: [{name: demo}]\nmodels: [{name: filled_box}]\n" + entry + "\n"
    msg = _problem(text, tmp_path)
    assert expected in msg
    assert str(tmp_path / "exp.yaml") in msg
    if "preset" in expected:
        assert "cvpr25" in msg and "1pps+scribble" in msg
    if "prompter '" in expected and "choose" in expected:
        assert "box_interpolation" in msg


def test_direct_construction_raises_config_error_too() -> None:
    with pytest.raises(ConfigError, match="unknown prompter 'nope'"):
        ExperimentConfig.model_validate({**MINIMAL, "prompters": ["nope"]})


# -- expansion -------------------------------------------------------------------------------


def test_family_contents() -> None:
    assert {k: len(v) for k, v in FAMILIES.items()} == {
        "static_2d": 20,
        "static_3d": 11,
        "refinement": len([p for p in PRESETS if not p.startswith("cvpr25")]),
        "cvpr25": 1,
        "robustness": 10,
    }
    robust = [p.prompter for p in FAMILIES["robustness"]]
    assert robust[0] == "noisy(base='center_point_per_slice', point_sd_mm=0.0)"
    assert robust[-1] == "noisy(base='box_per_slice', box_sd_mm=8.0)"
    (cvpr,) = FAMILIES["cvpr25"]
    assert (cvpr.prompter, cvpr.steps) == ("cvpr25_box", 5)
    assert dict(cvpr.scoring) == {"nsd_min_dice": 0.2, "time_budget_s": 90.0}
    specs = [p.prompter for p in FAMILIES["static_2d"]]
    assert specs[:5] == [f"points_per_slice(n={n})" for n in (1, 2, 3, 5, 10)]
    assert "alternating_points_per_slice(n=4)" in specs and "point_propagation(seeds=5)" in specs
    assert specs[-3:] == [
        "box_interpolation(k=3, jitter=3)",
        "box_interpolation(k=3, jitter=5)",
        "box_propagation",
    ]
    assert [p.prompter for p in FAMILIES["static_3d"]][-1] == "box_3d"
    for fam in ("static_2d", "static_3d"):
        dim = 2 if fam == "static_2d" else 3
        for pair in FAMILIES[fam]:
            assert pair.user is None and pair.steps == 0
            assert get_prompter(pair.prompter).dim == dim
    refine = {p.preset: p for p in FAMILIES["refinement"]}
    assert not [name for name in refine if name.startswith("cvpr25")]
    assert refine["3b_inter+scribble"].keep_initial is False
    assert refine["1pps+scribble"] == PairSpec(
        prompter="points_per_slice(n=1)", user="scribble", steps=5, preset="1pps+scribble"
    )
    (cvpr,) = FAMILIES["cvpr25"]
    assert (cvpr.prompter, cvpr.user, cvpr.steps) == (
        "cvpr25_box", "center_of_largest_error(mode='cvpr25')", 5,
    )  # fmt: skip


def test_all_families_expand_in_order_without_duplicates() -> None:
    cfg = config_from_dict(
        {
            **MINIMAL,
            "prompters": ["box_3d(jitter=0)", "box_3d"],  # the same prompter twice
            "families": ["static_2d", "static_3d", "refinement", "cvpr25", "cvpr25"],
            "interactive": [{"preset": "cvpr25"}],  # == the cvpr25 family
        }
    )
    pairs = cfg.pairs()
    assert len(pairs) == 1 + 20 + 10 + 9 + 1
    assert pairs[0].prompter == "box_3d(jitter=0)"
    assert pairs[1].prompter == "points_per_slice(n=1)"
    assert pairs[-1].preset == "cvpr25"


def test_interactive_overrides_the_preset() -> None:
    cfg = config_from_dict(
        {
            **MINIMAL,
            "stopping": {"max_steps": 7},
            "interactive": [
                {"preset": "3b_inter+scribble", "steps": 2, "user": "random_error_per_slice"},
                {"preset": "3b_inter+scribble"},
                {"preset": "3b_inter+scribble", "keep_initial": True},
                {"prompter": "points_3d(n=1)", "user": "random_error_3d"},
            ],
        }
    )
    over, plain, kept, explicit = cfg.pairs()
    assert over == PairSpec(
        prompter="box_interpolation(k=3)",
        user="random_error_per_slice",
        steps=2,
        keep_initial=False,
        preset="3b_inter+scribble",
    )
    assert over.label == "3b_inter+scribble (user=random_error_per_slice, steps=2)"
    assert (plain.steps, plain.keep_initial, plain.label) == (5, False, "3b_inter+scribble")
    assert kept.keep_initial is True and kept.label == "3b_inter+scribble (keep_initial=True)"
    assert (explicit.steps, explicit.keep_initial, explicit.preset) == (7, True, None)


# -- hashing ---------------------------------------------------------------------------------


def test_config_hash_ignores_key_order_and_tracks_values(tmp_path: Path) -> None:
    a = load_config(_write(tmp_path, FULL, "a.yaml"))
    lines = FULL.splitlines(keepends=True)
    reordered = "".join(lines[-11:] + lines[:-11])  # seeds ... save_predictions first
    reordered = reordered.replace("{device: cpu, batch_size: 4,", "{batch_size: 4, device: cpu,")
    b = load_config(_write(tmp_path, reordered, "b.yaml"))
    assert a == b
    h = a.config_hash()
    assert len(h) == 16 and int(h, 16) >= 0
    assert b.config_hash() == h
    assert a.model_copy(update={"seeds": [0, 1, 3]}).config_hash() != h
    c = load_config(_write(tmp_path, FULL.replace("batch_size: 4", "batch_size: 8"), "c.yaml"))
    assert c.config_hash() != h
    # where results go and how the work is spread do not change a number
    moved = a.model_copy(update={"output": tmp_path / "x", "cache_dir": None})
    moved = moved.model_copy(update={"executor": a.executor.model_copy(update={"workers": 9})})
    assert moved.config_hash() == h


@settings(max_examples=25, deadline=None)
@given(st.permutations(["device", "batch_size", "cache_bytes", "intensity"]))
def test_config_hash_is_independent_of_option_order(keys: list[str]) -> None:
    values = {"device": "cpu", "batch_size": 2, "cache_bytes": 1024, "intensity": "ct"}
    models = [{"name": "filled_box", "options": {k: values[k] for k in keys}}]
    cfg = config_from_dict({**MINIMAL, "models": models, "prompters": ["box_3d"]})
    ref_models = [{"name": "filled_box", "options": values}]
    ref = config_from_dict({**MINIMAL, "models": ref_models, "prompters": ["box_3d"]})
    assert cfg.config_hash() == ref.config_hash()


# -- quick form ------------------------------------------------------------------------------


def test_quick_config() -> None:
    static = quick_config("demo", "filled_box", "box_3d", seed=3, output="out")
    assert static.seeds == [3] and static.output == Path("out")
    assert static.pairs() == [PairSpec(prompter="box_3d")]
    inter = quick_config(
        "demo", "mobilesam", "points_per_slice(n=1)", user="scribble", model_options={"x": 1}
    )
    assert inter.models[0].options == {"x": 1}
    assert inter.pairs() == [PairSpec(prompter="points_per_slice(n=1)", user="scribble", steps=5)]
    three = quick_config("demo", "mobilesam", "box_3d", user="center_of_largest_error", steps=3)
    assert three.pairs()[0].steps == 3
    preset = quick_config("demo", "mobilesam", "cvpr25")
    assert preset.pairs() == FAMILIES["cvpr25"]
    with pytest.raises(ConfigError, match="unknown prompter 'nope'"):
        quick_config("demo", "filled_box", "nope")
    with pytest.raises(ConfigError, match="seeds: seeds must be >= 0"):
        quick_config("demo", "filled_box", "box_3d", seed=-1)


# -- validation without running --------------------------------------------------------------


def _nnunet(root: Path, name: str, cases: tuple[str, ...] = ("case_001", "case_002")) -> Path:
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    for case in cases:
        lab = np.zeros((6, 5, 4), np.uint8)
        lab[1:4, 1:4, 1:3] = 1
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", np.zeros((6, 5, 4), np.int16), aff)
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab, aff)
    doc = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "name": name,
    }
    (root / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def _grid(tmp_path: Path, **extra: object) -> ExperimentConfig:
    ds = _nnunet(tmp_path / "Dataset001_Tiny", "Tiny")
    data = {
        "datasets": [{"name": str(ds)}],
        "models": [{"name": "filled_box"}, {"name": "random_walker"}],
        "prompters": ["box_per_slice", "center_point_per_slice", "box_3d"],
        "interactive": [{"preset": "1pps+scribble"}],
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }
    return config_from_dict(data)


def test_validate_prompt_kinds_per_model(tmp_path: Path) -> None:
    report = validate(_grid(tmp_path))
    assert report.ok
    (ds,) = report.datasets
    assert ds.ok and ds.datasets == ["Tiny"] and ds.cases == 2 and ds.error is None
    runs = {(c.model, c.label): (c.runs, c.reason) for c in report.combos}
    assert len(runs) == 2 * 4
    for model in ("filled_box", "random_walker"):
        assert runs[model, "box_per_slice"] == (True, None)
        assert runs[model, "box_3d"] == (True, None)  # 3D boxes run slice by slice
    assert runs["random_walker", "center_point_per_slice"] == (True, None)
    assert runs["random_walker", "1pps+scribble"] == (True, None)
    assert runs["filled_box", "center_point_per_slice"] == (
        False,
        "filled_box does not accept point prompts (from center_point_per_slice)",
    )
    runs_, reason = runs["filled_box", "1pps+scribble"]
    assert not runs_ and reason == (
        "filled_box does not accept point prompts (from points_per_slice(n=1)) "
        "or scribble prompts (from user scribble)"
    )
    assert [(c.model, c.status, c.warning) for c in report.checkpoints] == [
        ("filled_box", "not needed", None),
        ("random_walker", "not needed", None),
    ]
    text = "\n".join(report.lines())
    assert "6 of 8 run" in text and text.endswith("OK")
    assert "skip   filled_box × center_point_per_slice: filled_box does not accept point" in text
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_validate_reports_dataset_problems(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dataset"
    cfg = _grid(tmp_path)
    cfg = cfg.model_copy(
        update={
            "datasets": [
                *cfg.datasets,
                cfg.datasets[0].model_copy(update={"cases": ["case_002", "case_009"]}),
                cfg.datasets[0].model_copy(update={"cases": ["case_002"]}),
                cfg.datasets[0].model_copy(update={"datasets": ["Other"]}),
                cfg.datasets[0].model_copy(update={"name": str(missing)}),
            ]
        }
    )
    report = validate(cfg)
    assert not report.ok
    full, bad_case, one_case, bad_name, gone = report.datasets
    assert full.ok and one_case.ok and one_case.cases == 1
    assert not bad_case.ok and "no case 'case_009'" in (bad_case.error or "")
    assert "case_001, case_002" in (bad_case.error or "")
    assert not bad_name.ok and "no dataset named 'Other'" in (bad_name.error or "")
    assert "it holds: Tiny" in (bad_name.error or "")
    assert not gone.ok and "neither a known dataset nor an existing folder" in (gone.error or "")
    assert str(missing) in (gone.error or "")
    text = "\n".join(report.lines())
    assert f"ERROR  {missing}:" in text and "NOT OK: dataset(s) not usable" in text


def test_validate_suite_and_dataset_subset(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    _nnunet(suite / "Dataset001_A", "SetA", ("a1", "a2"))
    _nnunet(suite / "Dataset002_B", "SetB", ("b1",))
    datasets = [{"name": str(suite)}, {"name": str(suite), "datasets": ["SetB"]}]
    cfg = config_from_dict({**MINIMAL, "datasets": datasets, "prompters": ["box_3d"]})
    whole, sub = validate(cfg).datasets
    assert (whole.datasets, whole.cases) == (["SetA", "SetB"], 3)
    assert (sub.datasets, sub.cases) == (["SetB"], 1)


def test_validate_unknown_model_and_unusable_grid(tmp_path: Path) -> None:
    models = [{"name": "filled_box"}, {"name": "sam9"}]
    cfg = _grid(tmp_path, models=models, prompters=["center_point_per_slice"], interactive=[])
    report = validate(cfg)
    assert not report.ok  # no combination runs
    sam9 = [c for c in report.combos if c.model == "sam9"]
    assert sam9 and not sam9[0].runs
    assert "unknown model 'sam9'" in (sam9[0].reason or "") and "filled_box" in sam9[0].reason
    assert report.checkpoints[1].status == "unknown"
    assert report.lines()[-1] == "NOT OK: no model accepts the prompts of any prompting strategy"


def test_validate_fails_on_a_misspelt_model_next_to_a_valid_one(tmp_path: Path) -> None:
    models = [{"name": "filled_box"}, {"name": "mobilsam"}]
    report = validate(_grid(tmp_path, models=models))
    assert any(c.runs for c in report.combos)  # filled_box alone would run
    assert not report.ok
    (line,) = report.unknown_models
    assert "unknown model 'mobilsam'" in line and "did you mean 'mobilesam'?" in line
    assert any(x.startswith("  ERROR  models (mobilsam)") for x in report.lines())
    assert report.lines()[-1].startswith("NOT OK: unknown model name(s)")
    assert report.to_dict()["unknown_models"] == [line]


def test_validate_missing_checkpoint_is_a_warning(tmp_path: Path) -> None:
    cache = tmp_path / "empty_cache"
    cfg = _grid(tmp_path, models=[{"name": "mobilesam"}], cache_dir=str(cache))
    report = validate(cfg)
    assert report.ok  # a warning, not an error
    (ck,) = report.checkpoints
    assert ck.status == "missing" and ck.warning
    assert ck.fix == f"`radioactive models fetch mobilesam --cache-dir {cache}`"
    assert any("radioactive models fetch mobilesam" in w for w in report.warnings)
    assert any("WARN" in line and "mobilesam: missing" in line for line in report.lines())
    own = _grid(tmp_path, models=[{"name": "mobilesam", "options": {"checkpoint": "/no/x.pt"}}])
    (ck,) = validate(own).checkpoints
    assert ck.status == "missing" and "/no/x.pt" in (ck.warning or "")


def test_validate_folder_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "nnInteractive_v1.0"
    folder.mkdir()
    cfg = _grid(
        tmp_path, models=[{"name": "nninteractive", "options": {"checkpoint": str(folder)}}]
    )
    (ck,) = validate(cfg).checkpoints
    assert ck.status == "present"
    gone = _grid(tmp_path, models=[{"name": "nninteractive", "options": {"checkpoint": "/no/d"}}])
    (ck,) = validate(gone).checkpoints
    assert ck.status == "missing" and "checkpoint folder /no/d" in (ck.warning or "")
