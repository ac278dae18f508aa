"""Exceptions with messages a user can act on.

Every error raised for bad input names the offending file (or config entry) and says how to fix it.
The CLI prints ``str(error)`` without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class RadioactiveError(Exception):
    """Base class of the errors this package raises on purpose.

    ``problem`` says what is wrong, ``path`` names the file concerned (if any) and ``fix`` says
    what the user can do about it. ``str(error)`` joins the three into one readable message.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [f"{self.path}: {self.problem}" if self.path is not None else self.problem]
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return "\n".join(parts)


class DataError(RadioactiveError):
    """A volume, label map or dataset cannot be used as it is."""


class MissingFileError(DataError, FileNotFoundError):
    """A file or folder that should exist does not."""


class CorruptFileError(DataError):
    """A file exists but cannot be read (truncated, wrong format, bad header)."""


class DimensionError(DataError):
    """A volume has the wrong number of dimensions (e.g. 4D where 3D is expected)."""


class LabelError(DataError):
    """A label map holds values that are not non-negative integers."""


class NonFiniteError(DataError):
    """A volume holds NaN or infinite intensities and the policy is to refuse them."""


class GridMismatchError(DataError):
    """Image and label do not lie on the same voxel grid (shape, spacing, orientation, origin)."""


class DatasetError(DataError):
    """A dataset folder or its ``dataset.json`` is inconsistent."""


class RecipeError(RadioactiveError):
    """A dataset recipe could not fetch or convert its sources."""
