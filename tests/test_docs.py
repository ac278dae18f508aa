"""The Python examples of the README run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.registry
def test_readme_python_examples_run(demo_suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks(ROOT / "README.md")
    assert blocks, "the README has no Python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "DemoLungLesionsCT lung1 (48, 512, 512)" in printed
    assert "liver" in printed


def test_prompt_docs_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks(ROOT / "docs" / "prompts.md")
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/prompts.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("6 ")  # three key boxes: 6 degrees of freedom


def test_dataset_docs_list_every_public_recipe_with_licence_and_command() -> None:
    from radioactive.data.recipes import get_recipe

    text = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| D")
    }
    for i in range(1, 11):
        recipe = get_recipe(f"d{i}")
        row = rows[recipe.paper_id]
        licence = recipe.licence.split(" (")[0].split(",")[0].split(";")[0]
        assert licence in row, (recipe.paper_id, licence)
        assert f"`radioactive datasets prepare {recipe.paper_id}" in row
        assert recipe.homepage in row
        if recipe.access == "manual":
            assert "--source-dir DIR" in row
        assert recipe.citation in text


def test_newer_models_experiment_in_the_models_docs_is_valid() -> None:
    """The comparison experiment of docs/models.md parses, and every model and prompter it names
    exists."""
    import re

    import yaml

    from radioactive.models import model_names
    from radioactive.prompts import get_prompter
    from radioactive.runner.loading import config_from_dict

    text = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
              if b.startswith("name: sam3-vs-the-field")]  # fmt: skip
    assert len(blocks) == 1
    config = config_from_dict(yaml.safe_load(blocks[0]))
    names = {m.name for m in config.models}
    assert {"sam3", "sam3_video", "medsam2", "sammed2d", "nninteractive"} <= names
    assert names <= set(model_names())
    for spec in config.prompters:
        get_prompter(spec if isinstance(spec, str) else spec.name)
    assert config.datasets[0].collections == ["LiTS"]
