"""One trajectory: initial prompt → predict → score → correct → predict → … for one target.

:func:`run_trajectory` records, per step, the interaction, its cost (DoF, estimated seconds, and
their running totals), Dice / NSD / HD95 / ASSD, the model's encoder and decoder time and the
process's peak memory. Trajectories of interactive pairs always have ``1 + steps`` rows: when the
prediction equals the target, the Dice target or the effort budget is reached, the remaining steps
repeat the last result with status ``"stopped"`` and no cost.

Users receive the case's ``spacing_mm``. A propagation prompter gets the model's
``slice_predictor()`` (one that only *uses* the model, ``uses_model``, gets it when the model has
one); the initial step is then predicted through that predictor, which reuses the slices the
prompter already had decoded, so each slice is decoded once and the time of the prompter's slice
predictions lands in the step's timings. An empty initial interaction (``no_prompt``) predicts
nothing: the first step scores an empty mask without calling the model.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from radioactive.metrics import dice, surface_distances
from radioactive.models.base import Model, ModelSlicePredictor, Prediction, StepTimings
from radioactive.prompts.base import Prompter, SimulatedUser
from radioactive.prompts.types import Interaction
from radioactive.records import STEP_COLUMNS, Status

SESSION_VERSION = "1"


@dataclass(frozen=True)
class Stopping:
    """When a trajectory stops early (the protocol always stops on a perfect prediction)."""

    dice_target: float | None = None
    effort_budget_s: float | None = None


#: the scoring rules a prompting pair may carry (the CVPR 2025 preset's, see :class:`Scoring`)
SCORING_RULES = ("nsd_min_dice", "time_budget_s")


@dataclass(frozen=True)
class Scoring:
    """Which metrics to compute per step, and the scoring rules of a protocol.

    ``nsd_min_dice``: NSD counts as 0 unless Dice exceeds this value (the CVPR 2025 organisers
    compute NSD only when DSC > 0.2). ``time_budget_s``: when the model's time (encoder +
    decoder) summed over all steps of a trajectory exceeds this many seconds, every step's Dice and
    NSD count as 0 (the challenge's 90 s per class). ``None``: no such rule.
    """

    nsd_tolerance_mm: float = 2.0
    surface: bool = True
    nsd_min_dice: float | None = None
    time_budget_s: float | None = None


@dataclass
class Step:
    """One scored step of a trajectory."""

    step: int
    status: Status  # OK or STOPPED
    interaction: Interaction | None
    dice: float
    nsd: float = float("nan")
    hd95_mm: float = float("nan")
    assd_mm: float = float("nan")
    dof: int = 0
    seconds: float = 0.0
    cum_dof: int = 0
    cum_seconds: float = 0.0
    timings: StepTimings = field(default_factory=StepTimings)
    wall_s: float = 0.0
    peak_mem_mb: float = 0.0
    prediction: npt.NDArray[np.bool_] | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The step as a flat record: the columns of the step record
        (:data:`radioactive.records.STEP_COLUMNS`) that a step knows, in the record's order
        (prompts and realism as JSON-ready structures; identity columns are the runner's)."""
        inter = self.interaction
        values: dict[str, Any] = {
            "step": self.step,
            "status": Status(self.status).value,
            "dice": self.dice,
            "nsd": self.nsd,
            "hd95_mm": self.hd95_mm,
            "assd_mm": self.assd_mm,
            "dof": self.dof,
            "seconds": self.seconds,
            "cum_dof": self.cum_dof,
            "cum_seconds": self.cum_seconds,
            **self.timings.to_dict(),
            "wall_s": self.wall_s,
            "peak_mem_mb": self.peak_mem_mb,
            "prompts": inter.to_dict() if inter is not None else None,
            "realism": inter.realism.to_dict() if inter is not None else None,
        }
        unknown = set(values) - set(STEP_COLUMNS)
        if unknown:  # a programming error: the record and the session disagree
            raise RuntimeError(f"step fields {sorted(unknown)} are not step-record columns")
        return {name: values[name] for name in STEP_COLUMNS if name in values}


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 1024.0**2


def score(
    pred: npt.NDArray[np.bool_],
    target: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    scoring: Scoring,
) -> dict[str, float]:
    """Dice and (optionally) NSD / HD95 / ASSD of one prediction, surface distances once."""
    out = {"dice": dice(pred, target)}
    if scoring.surface:
        sd = surface_distances(pred, target, spacing_mm)
        out |= {
            "nsd": sd.nsd(scoring.nsd_tolerance_mm),
            "hd95_mm": sd.hd95(),
            "assd_mm": sd.assd(),
        }
        if scoring.nsd_min_dice is not None and not out["dice"] > scoring.nsd_min_dice:
            out["nsd"] = 0.0
    return out


def over_time_budget(steps: list[Step], scoring: Scoring) -> bool:
    """Whether the model's time over ``steps`` exceeds ``scoring.time_budget_s``."""
    if scoring.time_budget_s is None:
        return False
    total = sum(s.timings.encoder_s + s.timings.decoder_s for s in steps)
    return total > scoring.time_budget_s


def _apply_time_budget(steps: list[Step], scoring: Scoring) -> list[Step]:
    if not over_time_budget(steps, scoring):
        return steps
    return [dataclasses.replace(s, dice=0.0, nsd=0.0) for s in steps]


def run_trajectory(
    model: Model,
    target: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    prompter: Prompter,
    rng: np.random.Generator,
    *,
    user: SimulatedUser | None = None,
    steps: int = 0,
    keep_initial: bool = True,
    stopping: Stopping = Stopping(),
    scoring: Scoring = Scoring(),
    keep_predictions: bool = False,
    keep_final_prediction: bool = False,
) -> list[Step]:
    """Run one trajectory on a prepared model and return its ``1 + steps`` scored steps.

    Args:
        model: a prepared :class:`~radioactive.models.base.Model` (``prepare`` was called for the
            target's image); it is ``reset()`` here.
        target: boolean canonical (z, y, x) target.
        spacing_mm: voxel size for the surface metrics.
        prompter: makes the initial interaction (propagation prompters get the model's
            ``slice_predictor()``).
        rng: the unit's generator; the only randomness.
        user: the simulated user for ``steps`` corrections (``None``: static prompting only).
        keep_initial: ``False`` drops the initial prompts at the first correction ("boxes
            forgotten"); corrections then accumulate as the user's ``keep_previous`` says.
        keep_predictions: keep each step's mask on the returned steps (for saving).
        keep_final_prediction: keep the last step's mask (for diagnostics of the final result).
    """
    model.reset()
    predictor: ModelSlicePredictor | None = None
    if getattr(prompter, "needs_model", False) or (
        getattr(prompter, "uses_model", False) and model.capabilities.slice_predictor
    ):
        predictor = model.slice_predictor()
    history: list[Interaction] = []
    out: list[Step] = []
    previous: Prediction | None = None
    cum_dof, cum_s = 0, 0.0
    n_steps = steps if user is not None else 0
    for i in range(n_steps + 1):
        t0 = time.perf_counter()
        inter = _next_interaction(i, prompter, user, target, previous, history, rng, spacing_mm,
                                  predictor, keep_initial)  # fmt: skip
        history.append(inter)
        if inter.is_empty and previous is not None:  # nothing to correct: the prediction stands
            pred = Prediction(previous.mask, previous.logits, StepTimings())
        elif inter.is_empty:  # no initial prompt (no_prompt): nothing is predicted yet
            pred = Prediction(np.zeros(target.shape, dtype=bool))
        elif i == 0 and predictor is not None:  # reuse the prompter's slice predictions
            pred = predictor.predict(inter, previous)
        else:
            pred = model.predict(inter, previous)
        cum_dof += inter.dof
        cum_s += inter.seconds
        scores = score(pred.mask, target, spacing_mm, scoring)
        out.append(
            Step(
                step=i,
                status=Status.OK,
                interaction=inter,
                dof=inter.dof,
                seconds=inter.seconds,
                cum_dof=cum_dof,
                cum_seconds=cum_s,
                timings=pred.timings,
                wall_s=time.perf_counter() - t0,
                peak_mem_mb=peak_memory_mb(),
                prediction=pred.mask if keep_predictions else None,
                **scores,
            )
        )
        previous = pred
        if i < n_steps and _done(pred.mask, target, scores["dice"], cum_s, stopping):
            last = out[-1]
            for j in range(i + 1, n_steps + 1):
                out.append(
                    dataclasses.replace(
                        last, step=j, status=Status.STOPPED, interaction=None, dof=0, seconds=0.0,
                        timings=StepTimings(), wall_s=0.0,
                    )
                )  # fmt: skip
            break
    if keep_final_prediction and previous is not None:
        out[-1] = dataclasses.replace(out[-1], prediction=previous.mask)
    return _apply_time_budget(out, scoring)


def run_joint_trajectories(
    model: Any,
    targets: list[npt.NDArray[np.bool_]],
    spacing_mm: tuple[float, float, float],
    prompter: Prompter,
    rngs: list[np.random.Generator],
    *,
    user: SimulatedUser | None = None,
    steps: int = 0,
    keep_initial: bool = True,
    scoring: Scoring = Scoring(),
    keep_predictions: bool = False,
    keep_final_prediction: bool = False,
) -> list[list[Step]]:
    """The trajectories of all targets of a case at once, one model call per step (the CVPR
    2025 challenge's multi-class mode, for a model whose ``capabilities.multi_class`` is true).

    Each step, every target gets its own prompt (its prompter or user, its own generator and
    history), then ``model.predict_classes(interactions, previous)`` segments all of them in one
    call; each target's row carries an equal share of that call's time. All ``1 + steps`` steps
    are run (a target with nothing to correct sends no prompt), as the organisers do. The scoring
    rules apply to the case as theirs do: NSD counts as 0 at a step whose mean Dice over the
    targets is not above ``nsd_min_dice``, and every Dice and NSD is 0 when the calls' time over
    the trajectory exceeds ``time_budget_s`` × the number of targets. Returns one list of steps
    per target, in the order of ``targets``.
    """
    model.reset()
    n = len(targets)
    plain = dataclasses.replace(scoring, nsd_min_dice=None, time_budget_s=None)
    histories: list[list[Interaction]] = [[] for _ in range(n)]
    previous: list[Prediction | None] = [None] * n
    out: list[list[Step]] = [[] for _ in range(n)]
    cum = [(0, 0.0)] * n
    total_s = 0.0
    n_steps = steps if user is not None else 0
    for i in range(n_steps + 1):
        t0 = time.perf_counter()
        inters = []
        for k in range(n):
            inter = _next_interaction(i, prompter, user, targets[k], previous[k], histories[k],
                                      rngs[k], spacing_mm, None, keep_initial)  # fmt: skip
            histories[k].append(inter)
            inters.append(inter)
        if i == 0 and all(x.is_empty for x in inters):  # no initial prompt: nothing predicted
            preds = [Prediction(np.zeros(t.shape, dtype=bool)) for t in targets]
        else:
            preds = list(model.predict_classes(inters, previous))
        assert len(preds) == n, f"predict_classes gave {len(preds)} predictions for {n} targets"
        call = preds[0].timings if preds else StepTimings()
        total_s += call.encoder_s + call.decoder_s
        share = StepTimings(encoder_s=call.encoder_s / n, decoder_s=call.decoder_s / n)
        wall = (time.perf_counter() - t0) / n
        for k in range(n):
            inter, pred = inters[k], preds[k]
            dof, secs = cum[k][0] + inter.dof, cum[k][1] + inter.seconds
            cum[k] = (dof, secs)
            out[k].append(
                Step(
                    step=i, status=Status.OK, interaction=inter, dof=inter.dof,
                    seconds=inter.seconds, cum_dof=dof, cum_seconds=secs, timings=share,
                    wall_s=wall, peak_mem_mb=peak_memory_mb(),
                    prediction=pred.mask if keep_predictions else None,
                    **score(pred.mask, targets[k], spacing_mm, plain),
                )
            )  # fmt: skip
        previous = list(preds)
    if keep_final_prediction:
        for k in range(n):
            last = previous[k]
            if last is not None:
                out[k][-1] = dataclasses.replace(out[k][-1], prediction=last.mask)
    if scoring.nsd_min_dice is not None:
        for i in range(n_steps + 1):
            if not float(np.mean([t[i].dice for t in out])) > scoring.nsd_min_dice:
                for t in out:
                    t[i] = dataclasses.replace(t[i], nsd=0.0)
    if scoring.time_budget_s is not None and total_s > scoring.time_budget_s * n:
        out = [[dataclasses.replace(s, dice=0.0, nsd=0.0) for s in t] for t in out]
    return out


def _next_interaction(
    i: int,
    prompter: Prompter,
    user: SimulatedUser | None,
    target: npt.NDArray[np.bool_],
    previous: Prediction | None,
    history: list[Interaction],
    rng: np.random.Generator,
    spacing_mm: tuple[float, float, float],
    predictor: Any,
    keep_initial: bool,
) -> Interaction:
    """Step ``i``'s interaction: the prompter's at step 0 (a prompter that measures in mm,
    ``wants_spacing``, gets the case's spacing), else the user's correction of ``previous``
    (at step 1 without the initial prompts unless ``keep_initial``)."""
    if i == 0:
        if getattr(prompter, "wants_spacing", False):
            return prompter.initial(target, rng, predictor, spacing_mm=spacing_mm)  # type: ignore[call-arg]
        return prompter.initial(target, rng, predictor)
    assert user is not None and previous is not None
    inter = user.correct(target, previous.mask, history, rng, spacing_mm=spacing_mm)
    if i == 1 and not keep_initial:
        inter = dataclasses.replace(inter, keep_previous=False)
    return inter


def _done(
    pred: npt.NDArray[np.bool_],
    target: npt.NDArray[np.bool_],
    dice_value: float,
    cum_seconds: float,
    stopping: Stopping,
) -> bool:
    if np.array_equal(pred, target):
        return True
    if stopping.dice_target is not None and dice_value >= stopping.dice_target:
        return True
    return stopping.effort_budget_s is not None and cum_seconds >= stopping.effort_budget_s
