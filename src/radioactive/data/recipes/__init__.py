"""Dataset recipes: fetch public sources and convert them to the nnU-Net raw layout.

A recipe is looked up by name (``get_recipe("demo")``); its module is imported only then.
Packages add recipes under the ``radioactive.recipes`` entry-point group (each pointing at a
class that follows :class:`Recipe`). Each
recipe prepares into ``<cache>/datasets/<name>``, does no work when that is already complete and
valid, and never leaves a half-written case behind (cases are built in a staging folder that is
renamed into place when complete).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from radioactive.errors import DatasetError
from radioactive.registry import Registry, did_you_mean

#: the entry-point group other packages declare recipes in
ENTRY_POINT_GROUP = "radioactive.recipes"

#: name -> "module:Class"; modules load lazily.
RECIPES: dict[str, str] = {
    "demo": "radioactive.data.recipes.demo:DemoRecipe",
    # the paper's public datasets (PROTOCOL §7), D1-D10
    "ms_flair": "radioactive.data.recipes.paper.ms_flair:MSFlair",
    "hanseg": "radioactive.data.recipes.paper.hanseg:HaNSeg",
    "hnts_mrg": "radioactive.data.recipes.paper.hnts_mrg:HNTSMRG",
    "rider_lung": "radioactive.data.recipes.paper.rider_lung:RiderLungCT",
    "lnq": "radioactive.data.recipes.paper.lnq:LNQ",
    "colorectal_liver_mets": "radioactive.data.recipes.paper.colorectal:ColorectalLiverMets",
    "adrenal_acc": "radioactive.data.recipes.paper.adrenal:AdrenalACC",
    "hcc_tace": "radioactive.data.recipes.paper.hcc_tace:HCCTACE",
    "pengwin": "radioactive.data.recipes.paper.pengwin:PENGWIN",
    "segrap": "radioactive.data.recipes.paper.segrap:SegRap",
}

#: other names a recipe answers to (case-insensitive): the paper's identifiers
ALIASES: dict[str, str] = {
    "d1": "ms_flair",
    "d2": "hanseg",
    "d3": "hnts_mrg",
    "d4": "rider_lung",
    "d5": "lnq",
    "d6": "colorectal_liver_mets",
    "d7": "adrenal_acc",
    "d8": "hcc_tace",
    "d9": "pengwin",
    "d10": "segrap",
}


class Reporter(Protocol):
    """Receives progress from a recipe (the CLI draws it as a progress bar)."""

    def begin(self, total: int) -> None: ...

    def step(self, message: str) -> None: ...


class _Silent:
    def begin(self, total: int) -> None:
        pass

    def step(self, message: str) -> None:
        pass


SILENT: Reporter = _Silent()


@dataclass
class PrepareReport:
    """What a ``prepare`` call did."""

    root: Path
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def did_work(self) -> bool:
        return bool(self.built)


@runtime_checkable
class Recipe(Protocol):
    """What a dataset recipe provides (a class registered in :data:`RECIPES` or under the
    ``radioactive.recipes`` entry-point group, built without arguments).

    A recipe may also have ``version`` (str), ``paper_id`` (str), ``info() -> dict`` (the
    row of ``radioactive datasets list``) and a ``source_dir`` keyword of ``prepare`` (files
    downloaded by hand).
    """

    name: str
    description: str

    def location(self, cache: Path) -> Path:
        """The folder the recipe prepares into (a dataset folder, or a suite of them)."""
        ...

    def is_prepared(self, cache: Path) -> bool:
        """Whether :meth:`location` holds a complete, verified result."""
        ...

    def prepare(
        self, cache: Path, reporter: Reporter = SILENT, *, force: bool = False
    ) -> PrepareReport:
        """Fetch and convert (no work when already prepared, unless ``force``)."""
        ...


def case_record(case: Any, recipe: str, path: Path | None = None) -> dict[str, Any]:
    """Shape, spacing and target names of a converted :class:`~radioactive.data.Case`, for its
    ``dataset.json`` entry. Reading them loads the case: one that does not load is a bug of the
    recipe, said so with ``path`` (its source)."""
    from radioactive.errors import RadioactiveError, RecipeError

    try:
        return {
            "shape_zyx": list(case.image.shape),
            "spacing_mm_zyx": [round(s, 6) for s in case.image.spacing_mm],
            "targets": [t.name for t in case.targets],
        }
    except RadioactiveError as exc:
        raise RecipeError(
            f"converted case {case.case_id} does not load: {exc}",
            path=path,
            fix=f"report this as a bug of the {recipe} recipe",
        ) from exc


def is_verified(folder: Path, recipe_version: str) -> bool:
    """Whether ``folder`` holds a dataset prepared by a recipe of ``recipe_version`` whose files
    all still have the sha256 recorded in its ``dataset.json``."""
    import json

    from radioactive.data.cache import sha256_file

    js = folder / "dataset.json"
    if not js.exists():
        return False
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))["radioactive"]
        if meta.get("recipe_version") != recipe_version:
            return False
        return all(
            (folder / rel).is_file() and sha256_file(folder / rel) == digest
            for rel, digest in meta["files"].items()
        )
    except (OSError, KeyError, ValueError, TypeError):
        return False


def registry() -> Registry[type]:
    """The recipes of :data:`RECIPES` (read now) and of the entry-point group."""
    return Registry(
        "dataset recipe",
        RECIPES,
        group=ENTRY_POINT_GROUP,
        aliases=ALIASES,
        error=DatasetError,
        hint=" (or pass a dataset folder path)",
    )


def recipe_names() -> list[str]:
    return sorted(registry().names())


def canonical_name(name: str) -> str | None:
    """The registry name behind ``name`` (a name or alias, any case), or ``None``."""
    return registry().canonical(name)


def suggest(name: str) -> str:
    """``" (did you mean 'x'?)"`` for the recipe name or paper id closest to ``name``, or ``""``."""
    return did_you_mean(name, [*recipe_names(), *(a.upper() for a in ALIASES)])


def get_recipe(name: str) -> Recipe:
    """The recipe registered under ``name`` (a name or alias, any case).

    Raises:
        DatasetError: an unknown name (with the closest one), or a plugin class that does not
            follow :class:`Recipe`.
    """
    reg = registry()
    recipe = reg[name]()
    if not isinstance(recipe, Recipe):
        missing = [
            a for a in ("name", "description", "location", "is_prepared", "prepare")
            if not hasattr(recipe, a)
        ]  # fmt: skip
        raise DatasetError(
            f"dataset recipe {name!r} ({reg.target(name)}) lacks {', '.join(missing)}",
            fix="make the class follow radioactive.data.recipes.Recipe",
        )
    return recipe
