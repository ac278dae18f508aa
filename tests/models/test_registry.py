"""Model registry, model cards, CLI listing and the missing-checkpoint error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.models import CheckpointError, describe_model, get_model, model_names
from radioactive.prompts import UnknownNameError


def test_names_and_descriptions_need_no_weights(tmp_path: Path) -> None:
    assert model_names() == [
        "cvpr25_container", "filled_box", "litemedsam", "medsam", "medsam2", "mobilesam",
        "nninteractive", "random_walker", "sam", "sam2", "sam2_video", "sam3", "sam3_video",
        "sammed2d", "sammed3d",
    ]  # fmt: skip
    info = describe_model("mobilesam", tmp_path)
    assert info["checkpoint_status"] == "missing"
    assert info["prompt_types"] == ["box2d", "box3d", "point", "scribble"]
    assert info["accepts_mask"] is True and info["licence"] == "Apache-2.0"
    assert describe_model("litemedsam", tmp_path)["prompt_types"] == ["box2d", "box3d"]
    assert describe_model("filled_box")["checkpoint_status"] == "not needed"


def test_unknown_model_and_option() -> None:
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_model("sam9")
    with pytest.raises(UnknownNameError, match="invalid options"):
        get_model("filled_box", colour="red")


@pytest.mark.parametrize("name", ["mobilesam", "litemedsam"])
def test_missing_checkpoint_names_the_file_and_the_fix(tmp_path: Path, name: str) -> None:
    pytest.importorskip("torch")
    with pytest.raises(CheckpointError) as exc:
        get_model(name, cache=tmp_path)
    message = str(exc.value)
    assert str(tmp_path / "models") in message
    assert f"radioactive models fetch {name}" in message


def test_cli_models_list_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["mobilesam"]["checkpoint_status"] == "missing"
    assert rows["random_walker"]["dim"] == 2


def test_cli_fetch_unknown_model_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["models", "fetch", "nope"])
    assert result.exit_code == 2 and "no checkpoint to fetch" in result.output


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, radioactive, radioactive.data, radioactive.prompts, radioactive.metrics, "
        "radioactive.models, radioactive.cli; "
        "from radioactive.models import describe_model; describe_model('mobilesam'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True
    )
    assert out.stdout.strip() == "False"


def test_3d_models_are_used_as_they_are_and_cannot_propagate(tmp_path: Path) -> None:
    pytest.importorskip("medim")
    from radioactive.runner.config import config_from_dict, validate

    info = describe_model("sammed3d", tmp_path)
    assert info["dim"] == 3 and info["prompt_types"] == ["point"]
    assert info["slice_predictor"] is False
    with pytest.warns(UserWarning, match="random weights"):
        model = get_model("sammed3d", weights="random")
    assert type(model).__name__ == "SAMMed3DModel"
    config = config_from_dict({
        "datasets": [{"name": str(tmp_path)}],
        "models": [{"name": "sammed3d"}],
        "prompters": ["points_3d(n=2)", "point_propagation", "box_3d"],
    })  # fmt: skip
    combos = {c.pair.prompter: c for c in validate(config).combos}
    assert combos["points_3d(n=2)"].runs
    assert not combos["point_propagation"].runs
    assert "single slices" in combos["point_propagation"].reason
    assert not combos["box_3d"].runs and "box3d" in combos["box_3d"].reason


# -- the generic registry behind models, recipes, prompters, users and presets -----------------

ENTRY_POINTS = {
    "radioactive.prompters": "my_box = radioactive.prompts.static:Box3DPrompter",
    "radioactive.presets": "my_preset = tests.models.test_registry:MY_PRESET",
    "radioactive.recipes": "my_recipe = radioactive.data.recipes.demo:DemoRecipe",
    "radioactive.models": "box_3d = radioactive.models.classical:FilledBoxBackend",
}


def _my_preset() -> object:
    from radioactive.prompts.presets import Preset

    return Preset("my_preset", "box_3d", "scribble", steps=2)


MY_PRESET = _my_preset()


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake installed distribution declaring an entry point in every group."""
    from radioactive.registry import clear_entry_points

    info = tmp_path / "site" / "radioactive_registry_test-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: radioactive-registry-test\nVersion: 1.0\n", encoding="utf-8"
    )
    text = "".join(f"[{group}]\n{line}\n" for group, line in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    clear_entry_points()
    yield
    clear_entry_points()


def test_every_registry_finds_entry_points(installed: None) -> None:
    from radioactive.data.recipes import get_recipe, recipe_names
    from radioactive.prompts import PROMPTERS, get_prompter
    from radioactive.prompts.presets import get_preset

    assert "my_box" in PROMPTERS and "my_box" in PROMPTERS.names()
    assert type(get_prompter("my_box(jitter=2)")).__name__ == "Box3DPrompter"
    assert get_preset("my_preset").steps == 2
    assert "my_recipe" in recipe_names() and get_recipe("my_recipe").name == "demo"
    # a model plugin is listed beside the built-in models, once
    assert model_names().count("box_3d") == 1


def test_listing_imports_nothing() -> None:
    """Names come from metadata and the built-in tables; modules load when a name is used."""
    code = (
        "import sys\n"
        "from radioactive.models import model_names\n"
        "from radioactive.data.recipes import recipe_names\n"
        "names = model_names() + recipe_names()\n"
        "loaded = [m for m in ('radioactive.models.sam', 'radioactive.models.classical',\n"
        "          'radioactive.data.recipes.demo') if m in sys.modules]\n"
        "print(loaded, 'mobilesam' in names, 'demo' in names)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] True True"


def test_a_plugin_named_like_a_builtin_is_ignored_with_a_warning(
    installed: None, caplog: pytest.LogCaptureFixture
) -> None:
    from radioactive.registry import Registry

    reg = Registry("prompter", {"my_box": object()}, group="radioactive.prompters")
    with caplog.at_level("WARNING"):
        assert reg.names() == ["my_box"] and reg.plugins() == {}
    assert "is ignored: 'my_box' is a built-in prompter" in caplog.text
    assert "radioactive-registry-test 1.0" in caplog.text


def test_unknown_names_suggest_the_closest_and_list_all() -> None:
    from radioactive.data.recipes import get_recipe
    from radioactive.errors import DatasetError
    from radioactive.prompts import get_user
    from radioactive.prompts.presets import get_preset

    with pytest.raises(UnknownNameError) as exc:
        get_model("mobilesm")
    assert exc.value.problem == "unknown model 'mobilesm' (did you mean 'mobilesam'?)"
    assert "sammed3d" in (exc.value.fix or "") and "plugin" in (exc.value.fix or "")
    with pytest.raises(UnknownNameError, match=r"did you mean 'center_of_largest_error'"):
        get_user("center_of_largest_eror")
    with pytest.raises(UnknownNameError, match=r"did you mean '1pps\+scribble'"):
        get_preset("1pps+scribbles")
    with pytest.raises(DatasetError, match=r"did you mean 'hanseg'"):
        get_recipe("han_seg")
    assert get_recipe("D2").name == get_recipe("HANSEG").name == "hanseg"


def test_a_recipe_must_follow_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    from radioactive.data import recipes
    from radioactive.errors import DatasetError

    monkeypatch.setitem(recipes.RECIPES, "broken", "builtins:object")
    with pytest.raises(DatasetError, match="lacks name, description, location"):
        recipes.get_recipe("broken")


def test_get_model_returns_the_model_protocol() -> None:
    import typing

    from radioactive.models import Model

    assert typing.get_type_hints(get_model)["return"] is Model
    model = get_model("filled_box")
    assert callable(model.prepare) and callable(model.predict)
