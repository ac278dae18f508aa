"""Models that run through a plugin the user installs: no registry this project can reach ships
their code, so radioactive cannot depend on them; each recipe says how to wrap the upstream call.

``radioactive models list`` shows each recipe whose plugin is not installed as
``plugin: install upstream``; docs/adding-a-model.md gives the recipes in full, and
``tests/models/test_plugin_recipes.py`` checks each against a plugin built from this project's own
code that honours the same contract.

>>> sorted(PLUGIN_RECIPES)
['scribbleprompt', 'segvol']
>>> PLUGIN_RECIPES["segvol"].dim
3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: what ``models list`` shows for a recipe whose plugin is not installed
STATUS = "plugin: install upstream"


@dataclass(frozen=True)
class PluginRecipe:
    """How to benchmark one model whose code only its authors publish.

    Attributes:
        name: the model name the plugin's entry point should declare.
        dim: 2 (a slice backend for the slice-wise engine) or 3 (a whole-volume model).
        prompt_types: the prompt types the plugin declares.
        upstream: the authors' repository.
        install: how the authors install it.
        wraps: the upstream call the plugin wraps.
        contract: the authors' input contract, in words.
        licence: licence of the authors' code and weights.
        reference: the paper.
        docs: where the recipe is written out.
    """

    name: str
    dim: int
    prompt_types: tuple[str, ...]
    upstream: str
    install: str
    wraps: str
    contract: str
    licence: str
    reference: str
    docs: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prompt_types": list(self.prompt_types), "status": STATUS}


PLUGIN_RECIPES: dict[str, PluginRecipe] = {
    "segvol": PluginRecipe(
        name="segvol",
        dim=3,
        prompt_types=("box3d", "point"),
        upstream="https://github.com/BAAI-DCAI/SegVol",
        install="clone the repository and install its requirements (monai 0.9, transformers); "
        "weights from Hugging Face BAAI/SegVol",
        wraps="the SegVol network's zoom-out pass on the resized volume and its zoom-in pass "
        "(sliding window on the region the zoom-out logits select), as inference_demo.py "
        "zoom_in_zoom_out",
        contract="CT: voxels above the volume mean define the foreground; clipped to its "
        "0.05-99.95 percentiles, z-scored with its mean / std, then min-max to [0, 1]; axes "
        "(x, y, z) swapped to (z, y, x); zoom-out: resized to 32 x 256 x 256 (nearest-exact); "
        "a 3D box and points in that grid",
        licence="MIT (code); weights as published on Hugging Face",
        reference="Du et al., SegVol: Universal and Interactive Volumetric Medical Image "
        "Segmentation, NeurIPS 2024 (arXiv:2311.13385)",
        docs="docs/adding-a-model.md#segvol-a-3d-model",
    ),
    "scribbleprompt": PluginRecipe(
        name="scribbleprompt",
        dim=2,
        prompt_types=("box2d", "point", "scribble"),
        upstream="https://github.com/halleewong/ScribblePrompt",
        install='pip install "scribbleprompt @ git+https://github.com/halleewong/ScribblePrompt"; '
        "checkpoints from the authors' Dropbox folder",
        wraps="ScribblePromptUNet.predict(img, point_coords, point_labels, scribbles, box, "
        "mask_input, return_logits=True)",
        contract="each slice min-max scaled to [0, 1], resized to 128 x 128 (bilinear); clicks "
        "and the box in (x, y) pixels of the 128 grid, truncated to integers; the previous "
        "step's 128 x 128 logits as mask_input; logits resized back to the slice",
        licence="Apache-2.0",
        reference="Wong et al., ScribblePrompt: Fast and Flexible Interactive Segmentation for "
        "Any Biomedical Image, ECCV 2024 (arXiv:2312.07381)",
        docs="docs/adding-a-model.md#scribbleprompt-a-slice-backend",
    ),
}


def uninstalled_recipes(installed: set[str] | list[str]) -> list[PluginRecipe]:
    """The recipes whose model name is not among ``installed`` (built-ins and plugins)."""
    have = set(installed)
    return [r for name, r in sorted(PLUGIN_RECIPES.items()) if name not in have]


__all__ = ["PLUGIN_RECIPES", "STATUS", "PluginRecipe", "uninstalled_recipes"]
