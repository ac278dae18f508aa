"""Cheap structural checks of checkpoint files, and loading them with errors that name the file.

A truncated download, an empty file or an HTML error page saved under a checkpoint's name is
refused by :func:`check_checkpoint_file` before any model is built (``radioactive validate``
calls it), instead of failing every unit with a bare ``EOFError`` from torch.
:func:`load_checkpoint_state` is how the adapters read their weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radioactive.models.base import CheckpointError

#: first bytes of the files torch.load reads: a zip archive (torch >= 1.6) or a pickle stream
#: (the legacy format, protocol 2 to 5)
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGICS = tuple(bytes([0x80, p]) for p in range(2, 6))
#: suffixes of the weight files inside a checkpoint folder that are checked
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt")


def _refetch_hint(path: Path, name: str | None) -> str:
    if name is not None:
        return f"run `radioactive models fetch {name}` (it replaces a damaged file)"
    return f"download {path.name} again (or pass the path of an intact checkpoint)"


def structural_problem(path: Path) -> str | None:
    """What makes ``path`` unreadable as a torch checkpoint, from its size and first and last
    bytes only (no tensor is read); ``None`` when it looks intact."""
    import zipfile

    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            return f"is truncated or damaged ({size} bytes; its zip directory is unreadable: {exc})"
        if not any(n.endswith("data.pkl") for n in names):
            return "is a zip archive but not a PyTorch checkpoint (no data.pkl inside)"
        return None
    if head[:2] in _PICKLE_MAGICS:
        if size < 64:
            return f"is truncated ({size} bytes of a pickled checkpoint)"
        return None
    if len(head) == 8 and _safetensors_header_ok(path, head, size):
        return None
    return f"is not a PyTorch checkpoint (it starts with {head[:8]!r}, {size} bytes)"


def _safetensors_header_ok(path: Path, head: bytes, size: int) -> bool:
    n = int.from_bytes(head, "little")
    if not 2 <= n <= size - 8:
        return False
    with path.open("rb") as f:
        f.seek(8)
        return f.read(1) == b"{"


def check_checkpoint_file(path: str | Path, name: str | None = None) -> Path:
    """Check cheaply that ``path`` can be a checkpoint torch loads; return it.

    The check reads no tensor: the file must be non-empty and start like a torch zip archive
    (whose central directory, at the end of the file, must be readable and hold ``data.pkl``),
    a legacy pickle stream or a safetensors file. A folder checkpoint (nnInteractive) has each of
    its ``*.pth`` / ``*.pt`` / ``*.ckpt`` files checked. A truncated download, an empty file or an
    HTML error page saved under a checkpoint's name fail here instead of in every unit.

    Args:
        path: the checkpoint file (or folder).
        name: its registry name, when it has one (the fix then names ``models fetch``).

    Raises:
        CheckpointError: naming the file, what is wrong and how to obtain an intact one.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError("checkpoint not found", path=path, fix=_refetch_hint(path, name))
    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    for f in files:
        problem = structural_problem(f)
        if problem is not None:
            label = f"checkpoint {name!r}" if name else "the checkpoint"
            raise CheckpointError(f"{label} {problem}", path=f, fix=_refetch_hint(f, name))
    return path


def load_checkpoint_state(path: str | Path, device: Any, name: str | None = None) -> Any:
    """The state dict of checkpoint ``path`` (see ``radioactive.models._torch.load_state_dict``),
    checked with :func:`check_checkpoint_file` first; any failure of torch to read it becomes a
    :class:`CheckpointError` that names the file and the fix."""
    from radioactive.models._torch import load_state_dict

    path = check_checkpoint_file(path, name)
    try:
        return load_state_dict(str(path), device)
    except Exception as exc:  # torch raises EOFError, RuntimeError, UnpicklingError, ...
        label = f"checkpoint {name!r}" if name else "the checkpoint"
        raise CheckpointError(
            f"{label} cannot be loaded by torch ({type(exc).__name__}: {exc})",
            path=path,
            fix=_refetch_hint(path, name),
        ) from exc
