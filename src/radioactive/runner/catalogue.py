"""The prompting groups of the RadioActive paper and the expansion of an experiment into pairs.

:data:`FAMILIES` names the paper's groups; :func:`expand_pairs` builds every (prompter, user)
pair of an experiment — static prompters, families, interactive entries with their presets — and
drops the duplicates (the same canonical prompter, user, steps and keep_initial).
"""

from __future__ import annotations

from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.prompts.presets import PRESETS, get_preset
from radioactive.runner.schema import (
    ExperimentConfig,
    InteractiveSpec,
    PairSpec,
    _one_line,
)

__all__ = ["FAMILIES", "expand_pairs", "interactive_pair"]


def _static(*specs: str) -> list[PairSpec]:
    return [PairSpec(prompter=s) for s in specs]


def _from_preset(name: str) -> PairSpec:
    p = PRESETS[name]
    return PairSpec(
        prompter=p.prompter, user=p.user, steps=p.steps, keep_initial=p.keep_initial, preset=name,
        scoring=tuple(sorted(p.scoring.items())),
    )  # fmt: skip


#: the noise levels of the ``robustness`` family, mm (standard deviation per axis)
ROBUSTNESS_SD_MM = (0.0, 1.0, 2.0, 4.0, 8.0)


#: The prompting groups of the RadioActive paper (arXiv 2411.07885) and of CVPR 2025:
#:
#: * ``static_2d``: the static prompters of 2D models (PROTOCOL §2): n points per slice
#:   (n = 1, 2, 3, 5, 10), alternating ± points (n = 2, 4), the centre point per slice, point
#:   interpolation (k = 3, 5, 10), point propagation, a box per slice, per-slice boxes from the
#:   3D box, box interpolation (k = 3, 5, 10; k = 3 with 3 and 5 px jitter) and box propagation;
#: * ``static_3d``: the static prompters of 3D models (§3): n random points, n centre points
#:   (n = 1, 2, 3, 5, 10) and the 3D box;
#: * ``refinement``: the reference's interactive presets (§4): every preset but the CVPR 2025
#:   ones (``cvpr25*``);
#: * ``cvpr25``: the CVPR 2025 challenge protocol (2D box on the middle slice + z range, 5 clicks
#:   at the largest error, the organisers' scoring rules);
#: * ``robustness``: the centre point per slice and the box per slice placed by a human-like
#:   user (:mod:`radioactive.prompts.human`) with click / box-corner noise of
#:   :data:`ROBUSTNESS_SD_MM` mm (0: the oracle), as prompt-robustness studies sweep it.
FAMILIES: dict[str, list[PairSpec]] = {
    "static_2d": _static(
        *(f"points_per_slice(n={n})" for n in (1, 2, 3, 5, 10)),
        *(f"alternating_points_per_slice(n={n})" for n in (2, 4)),
        "center_point_per_slice",
        *(f"point_interpolation(k={k})" for k in (3, 5, 10)),
        "point_propagation(seeds=5)",
        "box_per_slice",
        "box_per_slice_from_3d_box",
        *(f"box_interpolation(k={k})" for k in (3, 5, 10)),
        "box_interpolation(k=3, jitter=3)",
        "box_interpolation(k=3, jitter=5)",
        "box_propagation",
    ),
    "static_3d": _static(
        *(f"points_3d(n={n})" for n in (1, 2, 3, 5, 10)),
        *(f"center_points_3d(n={n})" for n in (1, 2, 3, 5, 10)),
        "box_3d",
    ),
    "refinement": [_from_preset(name) for name in PRESETS if not name.startswith("cvpr25")],
    "cvpr25": [_from_preset("cvpr25")],
    "robustness": _static(
        *(f"noisy(base='center_point_per_slice', point_sd_mm={s})" for s in ROBUSTNESS_SD_MM),
        *(f"noisy(base='box_per_slice', box_sd_mm={s})" for s in ROBUSTNESS_SD_MM),
    ),
}


def expand_pairs(config: ExperimentConfig) -> tuple[list[PairSpec], list[str]]:
    """All pairs in order (de-duplicated) and the problems found building them."""
    from radioactive.prompts.base import get_prompter, get_user

    candidates: list[tuple[str, PairSpec]] = []
    problems: list[str] = []
    for i, spec in enumerate(config.prompters):
        candidates.append((f"prompters.{i}", PairSpec(prompter=spec)))
    for fam in config.families:
        candidates.extend((f"families ({fam})", p) for p in FAMILIES[fam])
    for i, entry in enumerate(config.interactive):
        where = f"interactive.{i}"
        try:
            candidates.append((where, interactive_pair(config, entry)))
        except RadioactiveError as exc:
            problems.append(f"{where}: {_one_line(exc)}")

    out: list[PairSpec] = []
    seen: set[tuple[Any, ...]] = set()
    for where, pair in candidates:
        try:
            prompter = get_prompter(pair.prompter).spec
        except RadioactiveError as exc:
            problems.append(f"{where}: {_one_line(exc)}")
            continue
        user = None
        if pair.user is not None:
            try:
                user = get_user(pair.user).spec
            except RadioactiveError as exc:
                problems.append(f"{where}: {_one_line(exc)}")
                continue
        key = (prompter, user, pair.steps, pair.keep_initial if user else True,
               pair.scoring, pair.multi_class)  # fmt: skip
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out, problems


def interactive_pair(config: ExperimentConfig, entry: InteractiveSpec) -> PairSpec:
    preset = get_preset(entry.preset) if entry.preset is not None else None
    prompter = entry.prompter or (preset.prompter if preset else None)
    user = entry.user or (preset.user if preset else None)
    assert prompter is not None and user is not None  # InteractiveSpec's validator
    steps = entry.steps
    if steps is None:
        steps = preset.steps if preset else config.stopping.max_steps
    keep = entry.keep_initial
    if keep is None:
        keep = preset.keep_initial if preset else True
    scoring = {**(dict(preset.scoring) if preset else {}), **(entry.scoring or {})}
    return PairSpec(
        prompter=prompter, user=user, steps=steps, keep_initial=keep, preset=entry.preset,
        scoring=tuple(sorted(scoring.items())), multi_class=entry.multi_class,
    )  # fmt: skip
