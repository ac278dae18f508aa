"""The plugin recipes for SegVol and ScribblePrompt: a plugin written as the recipe says (built from
this project's code, stand-in networks; :mod:`tests.models.recipe_plugins`) is found through a real
entry point, passes the contract check, runs through the engine, and lands on the target; and
``radioactive models list`` marks a recipe whose plugin is absent."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from radioactive import models
from radioactive.cli import app
from radioactive.metrics import dice
from radioactive.models.plugin_recipes import PLUGIN_RECIPES, STATUS
from radioactive.models.plugins import validate_backend
from radioactive.prompts import get_prompter
from radioactive.prompts.cost import make_interaction
from radioactive.prompts.types import Box3D
from tests.models.recipe_plugins import (
    SEGVOL_GRID,
    ScribblePromptStyleBackend,
    SegVolStyleModel,
    nearest_exact,
    segvol_normalise,
)
from tests.models.test_plugins import plugin_site  # noqa: F401  (the fixture)

MODULE = "tests.models.recipe_plugins"


def _volume(shape=(20, 48, 72)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 5.0, shape).astype(np.float32)
    target = np.zeros(shape, dtype=bool)
    target[6:14, 12:30, 20:56] = True  # non-cubic, so swapped axes cannot go unnoticed
    image[target] += 200.0
    return image, target


def test_recipes_name_their_contract() -> None:
    for name, recipe in PLUGIN_RECIPES.items():
        assert recipe.name == name
        assert recipe.upstream.startswith("https://github.com/")
        assert recipe.wraps and recipe.contract and recipe.docs.startswith("docs/")
    assert (SegVolStyleModel.card.name, ScribblePromptStyleBackend.card.name) == (
        "segvol",
        "scribbleprompt",
    )
    assert validate_backend(SegVolStyleModel) == []
    assert validate_backend(ScribblePromptStyleBackend) == []


def test_segvol_intensity_rule_by_hand() -> None:
    vol2 = np.array([[[0.0, 0.0, 100.0, 200.0]]])  # mean 75: foreground {100, 200}
    out2 = segvol_normalise(vol2)
    lo, hi = np.percentile([100.0, 200.0], 0.05), np.percentile([100.0, 200.0], 99.95)
    clipped = np.clip(vol2, lo, hi)
    expect = (clipped - clipped.min()) / (clipped.max() - clipped.min())
    np.testing.assert_allclose(out2, expect, atol=1e-6)


def test_nearest_exact_maps_half_pixel_centres() -> None:
    a = np.arange(4)
    assert nearest_exact(a, (8,)).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert nearest_exact(a, (2,)).tolist() == [1, 3]  # as torch's "nearest-exact"
    assert nearest_exact(np.arange(5), (3,)).tolist() == [0, 2, 4]


def test_segvol_plugin_runs_and_lands_on_the_target(plugin_site) -> None:  # noqa: F811
    plugin_site({"segvol": f"{MODULE}:SegVolStyleModel"})
    model = models.get_model("segvol")
    assert isinstance(model, SegVolStyleModel)  # a 3D model is used as it is
    image, target = _volume()
    model.prepare(image, (2.0, 1.0, 1.0))
    assert model.zoomed is not None and model.zoomed.shape == SEGVOL_GRID
    box = (Box3D((5, 10, 18), (15, 32, 58)),)
    prediction = model.predict(make_interaction(box, box, target, "test"), None)
    assert prediction.mask.shape == image.shape
    assert dice(prediction.mask, target) > 0.95
    info = models.describe_model("segvol")
    assert info["dim"] == 3 and info["prompt_types"] == ["box3d"]


def test_scribbleprompt_plugin_runs_in_the_slice_engine(plugin_site) -> None:  # noqa: F811
    plugin_site({"scribbleprompt": f"{MODULE}:ScribblePromptStyleBackend"})
    model = models.get_model("scribbleprompt")
    backend = model.backend  # type: ignore[attr-defined]
    assert isinstance(backend, ScribblePromptStyleBackend)
    image, target = _volume()
    model.prepare(image, (2.0, 1.0, 1.0))
    first = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    prediction = model.predict(first, None)
    assert dice(prediction.mask, target) > 0.95
    x = backend.inputs[0]
    assert x.shape == (5, 128, 128)
    # the box channel on the 128 grid: rows 12..30 of 48 and columns 20..56 of 72
    rows, cols = np.nonzero(x[1])
    assert (rows.min(), rows.max() + 1) == (int(12 * 128 / 48), int(30 * 128 / 48))
    assert (cols.min(), cols.max() + 1) == (int(20 * 128 / 72), int(56 * 128 / 72))


def test_models_list_marks_recipes_until_their_plugin_is_installed(plugin_site) -> None:  # noqa: F811
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["segvol"]["status"] == STATUS and rows["scribbleprompt"]["status"] == STATUS
    table = CliRunner().invoke(app, ["models", "list"])
    assert "segvol" in table.stdout and STATUS in table.stdout

    plugin_site({"segvol": f"{MODULE}:SegVolStyleModel"})
    again = CliRunner().invoke(app, ["models", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(again.stdout)}
    assert "status" not in rows["segvol"]  # the installed plugin's own row
    assert rows["segvol"]["dim"] == 3
    assert rows["scribbleprompt"]["status"] == STATUS
