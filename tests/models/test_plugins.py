"""Model plugins: discovery through real entry points, the backend contract, the engine.

Each test installs a fake distribution — a ``*.dist-info`` folder with ``METADATA`` and
``entry_points.txt`` in a temporary directory put on ``sys.path`` — whose entry points name the
backend classes below, so ``importlib.metadata`` finds them exactly as it finds an installed
package's.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from radioactive.errors import RadioactiveError
from radioactive.models import MODELS
from radioactive.models.base import Capabilities, ModelCard
from radioactive.models.classical import FilledBoxBackend, RandomWalkerBackend
from radioactive.models.plugins import (
    ENTRY_POINT_GROUP,
    PluginError,
    all_models,
    clear_cache,
    discover_plugins,
    load_plugin,
    validate_backend,
)
from radioactive.models.slicewise import SlicePrompts, SliceWiseModel
from radioactive.prompts import get_prompter

ROOT = Path(__file__).resolve().parents[2]
DIST = "radioactive-test-plugin"
HERE = __name__  # the importable name of this module, for entry-point values


class ThresholdBackend:
    """Pixels brighter than ``level`` inside the prompt box; logits ±1."""

    card = ModelCard("threshold", "1", None, None, "Apache-2.0", "none", "test plugin")
    capabilities = Capabilities(dim=2, prompt_types=frozenset({"box2d"}), accepts_mask=False)

    def __init__(self, level: float = 0.5):
        self.level = level
        self.encoded = 0

    def normalize_volume(self, image: npt.NDArray) -> npt.NDArray[np.float32]:
        return np.asarray(image, dtype=np.float32)

    def encode(self, slices: npt.NDArray[np.float32]) -> list[Any]:
        self.encoded += len(slices)
        return [np.array(s) for s in slices]

    def embedding_nbytes(self, embedding: Any) -> int:
        return int(embedding.nbytes)

    def decode(
        self, embedding: Any, prompts: SlicePrompts, shape: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], Any]:
        logits = np.full(shape, -1.0, dtype=np.float32)
        assert prompts.box is not None
        y0, x0, y1, x1 = prompts.box
        logits[y0:y1, x0:x1] = np.where(embedding[y0:y1, x0:x1] > self.level, 1.0, -1.0)
        return logits, None


class NoDecodeBackend:
    """Broken: no ``decode``."""

    card = ThresholdBackend.card
    capabilities = ThresholdBackend.capabilities

    def normalize_volume(self, image: Any) -> Any:
        return image

    def encode(self, slices: Any) -> list[Any]:
        return list(slices)

    def embedding_nbytes(self, embedding: Any) -> int:
        return 0


class VolumeBackend(ThresholdBackend):
    """Broken: a 3D model taking lassos."""

    capabilities = Capabilities(dim=3, prompt_types=frozenset({"box3d", "lasso"}))


PluginSite = Callable[[dict[str, str]], Path]


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSite]:
    """``install({name: "module:Class"})``: a fake installed distribution declaring those
    entry points (later calls add further distributions)."""
    count = 0

    def install(entry_points: dict[str, str]) -> Path:
        nonlocal count
        count += 1
        site = tmp_path / f"site{count}"
        info = site / f"radioactive_test_plugin{count}-1.0.dist-info"
        info.mkdir(parents=True)
        name = DIST if count == 1 else f"{DIST}{count}"
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
        )
        lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in entry_points.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        monkeypatch.syspath_prepend(str(site))
        clear_cache()
        return site

    clear_cache()
    yield install
    clear_cache()


def cube_volume() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """A bright cuboid (the target) on slices 1–3 and a bright distractor beside it, outside the
    target's boxes: a box-bounded threshold must give exactly the cuboid."""
    image = np.zeros((6, 20, 24), np.float32)
    target = np.zeros(image.shape, bool)
    target[1:4, 5:12, 6:14] = True
    image[target] = 1.0
    image[0:5, 14:19, 16:22] = 1.0  # distractor, also on slices 0 and 4 that carry no prompt
    return image, target


def test_discovery_lists_plugins_without_importing_them(plugin_site: PluginSite) -> None:
    plugin_site(
        {"threshold": f"{HERE}:ThresholdBackend", "ghost": "radioactive_no_such_module:Backend"}
    )
    found = discover_plugins()
    assert found["threshold"] == f"{HERE}:ThresholdBackend"
    assert found["ghost"] == "radioactive_no_such_module:Backend"
    assert "radioactive_no_such_module" not in sys.modules
    models = all_models(MODELS)
    assert {"threshold", "ghost", *MODELS} <= set(models)
    assert models["filled_box"] == MODELS["filled_box"]


def test_discovery_is_cached_until_cleared(plugin_site: PluginSite) -> None:
    plugin_site({"threshold": f"{HERE}:ThresholdBackend"})
    assert "threshold" in discover_plugins()
    site = plugin_site({"second": f"{HERE}:ThresholdBackend"})  # clears the cache itself
    assert {"threshold", "second"} <= set(discover_plugins())
    sys.path.remove(str(site))
    assert "second" in discover_plugins()  # cached
    clear_cache()
    assert "second" not in discover_plugins()


def test_builtin_names_win_with_one_warning(
    plugin_site: PluginSite, caplog: pytest.LogCaptureFixture
) -> None:
    plugin_site({"filled_box": f"{HERE}:ThresholdBackend", "threshold": f"{HERE}:ThresholdBackend"})
    builtin = {"filled_box": "radioactive.models.classical:FilledBoxBackend"}
    with caplog.at_level(logging.WARNING, logger="radioactive.models.plugins"):
        assert all_models(builtin)["filled_box"] == builtin["filled_box"]
        assert "filled_box" not in discover_plugins(builtin)
        assert "threshold" in discover_plugins(builtin)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "'filled_box' is a built-in model" in warnings[0] and DIST in warnings[0]
    with pytest.raises(PluginError, match="no model plugin 'filled_box'"):
        load_plugin("filled_box", builtin)


def test_two_packages_one_name_first_wins(
    plugin_site: PluginSite, caplog: pytest.LogCaptureFixture
) -> None:
    plugin_site({"threshold": f"{HERE}:ThresholdBackend"})
    plugin_site({"threshold": f"{HERE}:VolumeBackend"})  # prepended: found first
    with caplog.at_level(logging.WARNING, logger="radioactive.models.plugins"):
        assert discover_plugins({})["threshold"] == f"{HERE}:VolumeBackend"
    assert "declares the same name first" in caplog.text


def test_validate_backend_accepts_the_builtin_and_test_backends() -> None:
    assert validate_backend(FilledBoxBackend) == []
    assert validate_backend(RandomWalkerBackend) == []
    assert validate_backend(ThresholdBackend) == []


def test_validate_backend_lists_every_problem() -> None:
    assert validate_backend(NoDecodeBackend) == ["no method `decode`"]
    problems = validate_backend(VolumeBackend)
    assert len(problems) == 2
    assert "capabilities.dim is 3" in problems[0] and "3D" in problems[0]
    assert "'lasso'" in problems[1] and "box2d" in problems[1]

    class Bare:
        card = ("bare", "1")

    problems = validate_backend(Bare)
    assert "`card` is a tuple" in problems[0]
    assert "no class attribute `capabilities`" in problems[1]
    assert [p for p in problems if p.startswith("no method")] == [
        "no method `normalize_volume`", "no method `encode`", "no method `decode`",
        "no method `embedding_nbytes`",
    ]  # fmt: skip
    assert "is not a class" in validate_backend(ThresholdBackend())[0]


def test_plugin_runs_through_the_engine(plugin_site: PluginSite) -> None:
    plugin_site({"threshold": f"{HERE}:ThresholdBackend"})
    cls = load_plugin("threshold")
    assert cls is ThresholdBackend
    image, target = cube_volume()
    backend = cls(level=0.5)
    model = SliceWiseModel(backend)
    model.prepare(image, (2.0, 1.0, 1.0))
    boxes = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    pred = model.predict(boxes, None)
    np.testing.assert_array_equal(pred.mask, target)
    assert pred.timings.slices_inferred == 3 and backend.encoded == 3


def test_broken_plugin_is_a_clear_error(plugin_site: PluginSite) -> None:
    plugin_site(
        {
            "broken": f"{HERE}:NoDecodeBackend",
            "volume": f"{HERE}:VolumeBackend",
            "ghost": "radioactive_no_such_module:Backend",
            "bare": "just_a_module",
        }
    )
    with pytest.raises(PluginError) as exc:
        load_plugin("broken")
    err = exc.value
    assert isinstance(err, RadioactiveError)
    assert "model plugin 'broken'" in err.problem
    assert f"broken = {HERE}:NoDecodeBackend" in err.problem and f"{DIST} 1.0" in err.problem
    assert "no method `decode`" in err.problem
    assert err.fix is not None
    assert "SliceBackend" in err.fix and "docs/adding-a-model.md" in err.fix and DIST in err.fix

    with pytest.raises(PluginError, match=r"(?s)'volume'.*capabilities\.dim is 3.*'lasso'"):
        load_plugin("volume")
    with pytest.raises(PluginError, match=r"'ghost'.*cannot be imported: ModuleNotFoundError"):
        load_plugin("ghost")
    with pytest.raises(PluginError, match=r"'bare'.*malformed"):
        load_plugin("bare")
    with pytest.raises(PluginError, match="plugins found: bare, broken, ghost, volume"):
        load_plugin("nope")


def test_through_the_registry_once_wired(plugin_site: PluginSite) -> None:
    """``get_model`` / ``describe_model`` / ``radioactive models list`` find a plugin (needs
    ``radioactive.models`` to use :func:`all_models`)."""
    import radioactive.models as models

    plugin_site({"threshold": f"{HERE}:ThresholdBackend"})
    if "threshold" not in models.model_names():
        pytest.skip("radioactive.models does not use plugins.all_models yet")
    model = models.get_model("threshold", level=0.5, cache_bytes=0)
    image, target = cube_volume()
    model.prepare(image, (1.0, 1.0, 1.0))
    boxes = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    np.testing.assert_array_equal(model.predict(boxes, None).mask, target)
    info = models.describe_model("threshold")
    assert info["name"] == "threshold" and info["prompt_types"] == ["box2d", "box3d"]
    assert info["checkpoint_status"] == "not needed"

    from typer.testing import CliRunner

    from radioactive.cli import app

    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert "threshold" in {row["name"] for row in json.loads(result.stdout)}

    plugin_site({"broken": f"{HERE}:NoDecodeBackend"})
    with pytest.raises(PluginError, match="no method `decode`"):
        models.get_model("broken")


def test_docs_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Every Python block of docs/adding-a-model.md compiles; the examples (blocks that are not
    file excerpts) run in order, and the engine example prints its stated answer."""
    path = ROOT / "docs" / "adding-a-model.md"
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {"__name__": "adding_a_model"}
    for code in blocks:
        compiled = compile(code, str(path), "exec")
        if not code.startswith("# file:"):
            exec(compiled, namespace)
    assert validate_backend(namespace["ThresholdBackend"]) == []
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "True 3"
    assert out[1:] == ["[[120. 240.]]", "[100. 200. 298. 398.]"]
