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
        "filled_box", "litemedsam", "medsam", "mobilesam", "nninteractive", "random_walker",
        "sam", "sam2", "sam2_video", "sammed3d",
    ]  # fmt: skip
    info = describe_model("mobilesam", tmp_path)
    assert info["checkpoint_status"] == "missing"
    assert info["prompt_types"] == ["box2d", "box3d", "point", "scribble"]
    assert info["accepts_mask"] is True and info["licence"] == "Apache-2.0"
    assert describe_model("litemedsam", tmp_path)["prompt_types"] == ["box2d", "box3d"]
    assert describe_model("filled_box")["checkpoint_status"] == "not needed"


def test_unknown_model_and_option() -> None:
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_model("sam3")
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
