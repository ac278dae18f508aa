"""nnInteractive: a native 3D promptable model driven through its own inference session.

Code from the ``nninteractive`` package (``nnInteractive.inference.inference_session.
nnInteractiveInferenceSession``, install with ``pip install "radioactive[nninteractive]"``);
weights are the trained model folder ``nnInteractive_v1.0`` from Hugging Face
(``radioactive models fetch nninteractive``, or ``checkpoint=FOLDER`` for a folder obtained
otherwise). The session loads the folder with its own code
(``initialize_from_trained_model_folder``); nothing of it is re-implemented here.

Input contract (PROTOCOL §8):

* the canonical (z, y, x) volume with **raw intensities** goes to ``set_image`` as a
  ``(1, z, y, x)`` array; the session normalises it itself (z-score over the non-zero region);
  nnInteractive works in voxel space, so the spacing is not used;
* every prompt is given in the same canonical voxel indices: a point as ``(z, y, x)``, an axial
  2D box as ``[[z, z + 1], [y0, y1], [x0, x1]]`` (half-open, as ours), a scribble as a binary
  volume of its voxels, a lasso as the filled polygon on its slice, an initial mask
  (:class:`~radioactive.prompts.types.MaskPrompt` at the first step) with
  ``add_initial_seg_interaction``; negative prompts go with ``include_interaction=False``;
* the session writes its prediction into a target buffer (uint8, canonical grid) that we own;
  its previous segmentation stays inside the session as the model's own feedback channel, so
  :attr:`Prediction.logits` is empty.

Each prompt of an interaction runs one prediction, in order, as a user clicking one after the
other in nnInteractive's own GUI (the session predicts around the last added interaction only);
``predict_each_prompt=False`` adds all prompts of a step first and predicts once.
``keep_previous=False`` (a step whose earlier prompts are forgotten) resets the session's
interactions and seeds it with the previous step's mask as an initial segmentation.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from radioactive.models.base import (
    Capabilities,
    CheckpointError,
    ModelCard,
    NoSlicePredictor,
    Prediction,
    StepTimings,
    check_supported,
)
from radioactive.models.contracts import InputContract
from radioactive.prompts.types import Box2D, Interaction, Lasso, MaskPrompt, Point, Scribble

log = logging.getLogger(__name__)

MODEL_ID = "nnInteractive_v1.0"
HF_REPO = "MIC-DKFZ/nnInteractive"


def _require_package() -> Any:
    try:
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession
    except ImportError as exc:
        raise CheckpointError(
            f"the nninteractive package is not installed ({exc})",
            fix='pip install "radioactive[nninteractive]" (or `pip install nninteractive`)',
        ) from exc
    return nnInteractiveInferenceSession


def fetch_model_folder(name: str, dest: Path) -> None:
    """Download the model folder with nnInteractive's model manager into ``dest``.

    Called by ``radioactive models fetch nninteractive`` (see
    :mod:`radioactive.models.checkpoints`); ``dest`` is a staging folder that is checked and moved
    into place afterwards.
    """
    try:
        from nnInteractive import model_management as mm
    except ImportError as exc:
        raise CheckpointError(
            f"the nninteractive package is not installed ({exc})",
            fix='pip install "radioactive[nninteractive]", then fetch again',
        ) from exc
    root = dest / ".nninteractive"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            folder = Path(mm.ensure_model_available(MODEL_ID, model_root=root))
    except Exception as exc:  # the manager raises RuntimeError/ValueError/OSError offline
        raise CheckpointError(
            f"cannot download {MODEL_ID} from Hugging Face ({HF_REPO}): {exc}",
            path=dest.parent / MODEL_ID,
            fix="run the fetch on a machine that reaches huggingface.co, or download the "
            f"folder {MODEL_ID} of https://huggingface.co/{HF_REPO} by hand and pass it with "
            "--checkpoint FOLDER (or place it at the path above)",
        ) from exc
    for item in folder.iterdir():
        os.replace(item, dest / item.name)
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def scribble_volume(scribble: Scribble, shape: tuple[int, int, int]) -> npt.NDArray[np.uint8]:
    """The scribble's voxels as a binary volume (voxels outside the volume are dropped)."""
    out = np.zeros(shape, dtype=np.uint8)
    v = scribble.array()
    inside = np.all((v >= 0) & (v < np.asarray(shape)), axis=1)
    v = v[inside]
    out[v[:, 0], v[:, 1], v[:, 2]] = 1
    return out


def lasso_volume(lasso: Lasso, shape: tuple[int, int, int]) -> npt.NDArray[np.uint8]:
    """The lasso's polygon filled on its slice, as a binary volume."""
    from skimage.draw import polygon

    out = np.zeros(shape, dtype=np.uint8)
    ys = [p[0] for p in lasso.polygon]
    xs = [p[1] for p in lasso.polygon]
    rr, cc = polygon(ys, xs, shape=shape[1:])
    out[lasso.z, rr, cc] = 1
    return out


def box_coords(box: Box2D) -> list[list[int]]:
    """An axial box as nnInteractive's ``[[z0, z1], [y0, y1], [x0, x1]]`` (half-open)."""
    return [[box.z, box.z + 1], [box.lo[0], box.hi[0]], [box.lo[1], box.hi[1]]]


class NNInteractiveModel(NoSlicePredictor):
    """nnInteractive as a :class:`~radioactive.models.base.Model` (see the module docstring).

    Args:
        checkpoint: a trained model folder (holding ``plans.json`` and ``fold_*/``) to use
            instead of the registry's ``nnInteractive_v1.0``.
        cache: the cache directory holding ``models/`` (default: the user cache).
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA if available).
        do_autozoom: nnInteractive's automatic zoom-out when a prediction touches the patch
            border (its default, on).
        predict_each_prompt: one prediction per prompt (default) or one per step.
        threads: CPU threads for torch (default: all cores).
    """

    card = ModelCard(
        name="nninteractive",
        version="1",
        checkpoint=MODEL_ID,
        checkpoint_sha256=None,
        licence="code Apache-2.0; weights CC BY-NC-SA 4.0",
        training_data="120+ 3D datasets (CT, MR, PET, microscopy; nnInteractive v1.0)",
        reference="Isensee et al. 2025, nnInteractive: Redefining 3D Promptable Segmentation "
        "(arXiv:2503.08373)",
    )
    contracts = (
        InputContract(
            name="nninteractive-session-v1", modality="any",
            intensity="raw intensities; the session normalises them itself (its nnU-Net plans)",
            preset="raw", resampling="none (the session works at the image's own grid)",
            crop="the session's own patches around the interactions",
            channels="(1, z, y, x) float32, as SimpleITK arrays in the authors' README",
            source="MIC-DKFZ/nnInteractive README.md; "
            "nnInteractive/inference/inference_session.py (set_image)",
        ),
    )  # fmt: skip
    #: the same for every volume (the session normalises the raw intensities itself)
    contract_used: ClassVar[dict[str, str]] = {
        "contract": "nninteractive-session-v1",
        "intensity": "raw",
    }
    capabilities = Capabilities(
        dim=3,
        prompt_types=frozenset({"point", "box2d", "scribble", "lasso"}),
        accepts_mask=True,
    )
    checkpoint_name = "nninteractive_v1.0"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        cache: str | Path | None = None,
        device: str | None = None,
        do_autozoom: bool = True,
        predict_each_prompt: bool = True,
        threads: int | None = None,
    ):
        from radioactive.models._torch import pick_device
        from radioactive.models.checkpoints import require_checkpoint

        session_cls = _require_package()
        folder = require_checkpoint(self.checkpoint_name, cache, checkpoint)
        self.folder = folder
        self.device = pick_device(device)
        self.predict_each_prompt = bool(predict_each_prompt)
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            self.session = session_cls(
                device=self.device,
                use_torch_compile=False,
                verbose=False,
                torch_n_threads=threads or os.cpu_count() or 1,
                do_autozoom=do_autozoom,
                enable_undo=False,
            )
            try:
                self.session.initialize_from_trained_model_folder(str(folder))
            except Exception as exc:  # torch: EOFError, UnpicklingError, RuntimeError, ...
                raise CheckpointError(
                    f"nnInteractive cannot load the model folder ({type(exc).__name__}: {exc})",
                    path=folder,
                    fix="pass the trained model directory (plans.json, dataset.json, "
                    "inference_info.json, fold_*/checkpoint_final.pth), or run "
                    "`radioactive models fetch nninteractive`",
                ) from exc
        log.debug("nnInteractive session: %s", chatter.getvalue().strip())
        self.licence = getattr(self.session, "license", None)
        self.image_shape: tuple[int, int, int] | None = None
        self.target: npt.NDArray[np.uint8] | None = None
        self._started = False

    # -- Model protocol ----------------------------------------------------------------------

    def prepare(
        self,
        image: npt.NDArray,
        spacing_mm: tuple[float, float, float],
        modality: str | None = None,
    ) -> None:
        """Hand the raw volume to the session (its contract is the same for every modality)."""
        if np.ndim(image) != 3:
            raise ValueError(f"expected a 3D (z, y, x) image, got shape {np.shape(image)}")
        arr = np.asarray(image, dtype=np.float32)
        z, y, x = arr.shape
        self.image_shape = (z, y, x)
        self.target = np.zeros(self.image_shape, dtype=np.uint8)
        with contextlib.redirect_stdout(io.StringIO()):
            self.session.set_image(arr[None])
            self.session.set_target_buffer(self.target)
            # the session preprocesses in a background thread; wait for it here so that the
            # first step's time is the model's alone
            future = getattr(self.session, "preprocess_future", None)
            if future is not None:
                future.result()
        self._started = False

    def reset(self) -> None:
        if self.target is None:
            return
        with contextlib.redirect_stdout(io.StringIO()):
            self.session.reset_interactions()
        self._started = False

    def predict(self, interaction: Interaction, previous: Prediction | None) -> Prediction:
        check_supported(self.card.name, self.capabilities, interaction)
        if self.target is None or self.image_shape is None:
            raise RuntimeError("call prepare(image, spacing_mm) first")
        timings = StepTimings()
        t0 = time.perf_counter()
        prompts = [p for p in interaction.prompts if p.kind != "zlimit"]
        masks = [p for p in prompts if isinstance(p, MaskPrompt)]
        prompts = [p for p in prompts if not isinstance(p, MaskPrompt)]
        with contextlib.redirect_stdout(io.StringIO()):
            if self._started and not interaction.keep_previous:
                seed = previous.mask if previous is not None else None
                self.session.reset_interactions()
                if seed is not None and seed.any():
                    self.session.add_initial_seg_interaction(
                        seed.astype(np.uint8), run_prediction=False
                    )
            elif not self._started and masks:
                initial = np.asarray(masks[-1].logits) > 0
                if initial.shape != self.image_shape:
                    raise ValueError(
                        f"initial mask shape {initial.shape} differs from the volume "
                        f"{self.image_shape}"
                    )
                self.session.add_initial_seg_interaction(
                    initial.astype(np.uint8), run_prediction=not prompts
                )
            for i, p in enumerate(prompts):
                run = self.predict_each_prompt or i == len(prompts) - 1
                self._add(p, run)
        self._started = True
        timings.decoder_s = time.perf_counter() - t0
        return Prediction(mask=self.target.astype(bool), timings=timings)

    def _add(self, prompt: Any, run: bool) -> None:
        s = self.session
        assert self.image_shape is not None
        shape = np.asarray(self.image_shape)
        if isinstance(prompt, Point) and not np.all(
            (0 <= np.asarray(prompt.zyx)) & (np.asarray(prompt.zyx) < shape)
        ):
            raise ValueError(f"{prompt} lies outside the volume {self.image_shape}")
        if isinstance(prompt, (Box2D, Lasso)) and not 0 <= prompt.z < self.image_shape[0]:
            raise ValueError(f"{prompt} lies outside the volume's {self.image_shape[0]} slices")
        if isinstance(prompt, Point):
            s.add_point_interaction(
                prompt.zyx, include_interaction=prompt.positive, run_prediction=run
            )
        elif isinstance(prompt, Box2D):
            s.add_bbox_interaction(box_coords(prompt), include_interaction=True, run_prediction=run)
        elif isinstance(prompt, Scribble):
            s.add_scribble_interaction(
                scribble_volume(prompt, self.image_shape),
                include_interaction=prompt.positive,
                run_prediction=run,
            )
        elif isinstance(prompt, Lasso):
            s.add_lasso_interaction(
                lasso_volume(prompt, self.image_shape),
                include_interaction=prompt.positive,
                run_prediction=run,
            )
        else:  # check_supported rejects everything else before any compute
            raise AssertionError(f"unexpected prompt {prompt!r}")
