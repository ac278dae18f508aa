"""Initial prompter + simulated user pairs of the reference benchmark and the CVPR 2025 challenge.

A preset is data: the runner expands it into a trajectory of ``1 + steps`` scored steps.
``keep_initial`` says whether the initial prompts are sent again with every correction (the
reference's "3B Inter + scribble" forgets its boxes; a variant re-sends them); corrective prompts
themselves accumulate or not according to the user's ``keep_previous``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from radioactive.prompts.registry import get_prompter, get_user
from radioactive.registry import Registry


@dataclass(frozen=True)
class Preset:
    name: str
    prompter: str
    user: str
    steps: int = 5
    keep_initial: bool = True
    paper_label: str = ""
    #: scoring rules of the protocol (:data:`radioactive.session.SCORING_RULES`), e.g. the
    #: CVPR 2025 challenge's NSD and time-budget rules
    scoring: Mapping[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        """Build the prompter and the user once, raising on unknown names or parameters."""
        get_prompter(self.prompter)
        get_user(self.user)


#: the CVPR 2025 organisers' click (``CVPR25_iter_eval.py``), see radioactive.prompts.cvpr25
CVPR25_USER = "center_of_largest_error(mode='cvpr25')"

#: the CVPR 2025 organisers' scoring rules: NSD only when DSC > 0.2, and 90 s of model time per
#: class (here: per target) summed over the six steps, else DSC and NSD are 0
CVPR25_SCORING: Mapping[str, float] = {"nsd_min_dice": 0.2, "time_budget_s": 90.0}

#: presets by name (built-in ones in the paper's order; packages add more under the
#: ``radioactive.presets`` entry-point group, each pointing at a :class:`Preset`)
PRESETS: Registry[Preset] = Registry(
    "preset",
    {
        p.name: p
        for p in (
            Preset(
                "1pps+scribble", "points_per_slice(n=1)", "scribble", paper_label="1PPS + scribble"
            ),
            Preset(
                "1pps+1pps_refine",
                "points_per_slice(n=1)",
                "random_error_per_slice",
                paper_label="1PPS + 1PPS refine",
            ),
            Preset(
                "5p_inter+scribble",
                "point_interpolation(k=5)",
                "scribble",
                paper_label="5P Inter + scribble",
            ),
            Preset(
                "p_prop+scribble",
                "point_propagation(seeds=5)",
                "scribble",
                paper_label="P Prop + scribble",
            ),
            Preset(
                "3b_inter+scribble",
                "box_interpolation(k=3)",
                "scribble",
                keep_initial=False,
                paper_label="3B Inter + scribble (boxes forgotten)",
            ),
            Preset(
                "3b_inter+scribble_keep_boxes",
                "box_interpolation(k=3)",
                "scribble",
                keep_initial=True,
                paper_label="3B Inter + scribble (boxes re-sent)",
            ),
            Preset(
                "1ppv+3d_refine",
                "points_3d(n=1)",
                "random_error_3d",
                paper_label="1PPV + 3D refine",
            ),
            Preset(
                "1center_ppv+3d_refine",
                "center_points_3d(n=1)",
                "random_error_3d",
                paper_label="1 center PPV + 3D refine",
            ),
            Preset(
                "1center_ppv+scribble",
                "center_points_3d(n=1)",
                "scribble(max_points=1)",
                paper_label="1 center PPV + scribble (one point from the scribble)",
            ),
            Preset(
                "cvpr25",
                "cvpr25_box",
                CVPR25_USER,
                steps=5,
                paper_label="CVPR 2025: 2D box on the middle slice + z range, then 5 clicks at "
                "the centre of the largest error, as the organisers' script",
                scoring=CVPR25_SCORING,
            ),
            Preset(
                "cvpr25_no_box",
                "no_prompt",
                CVPR25_USER,
                steps=5,
                paper_label="CVPR 2025 without a box: the first step scores 0, then 5 clicks",
                scoring=CVPR25_SCORING,
            ),
            Preset(
                "cvpr25_box3d",
                "box_3d",
                "center_of_largest_error",
                steps=5,
                paper_label="3D box + 5 clicks at the centre of the largest error (mm distances)",
            ),
        )
    },
    group="radioactive.presets",
)


def get_preset(name: str) -> Preset:
    """The preset registered as ``name``; an unknown name is an
    :class:`~radioactive.registry.UnknownNameError` with the closest name."""
    return PRESETS[name]
