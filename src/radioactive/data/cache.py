"""Where fetched sources and prepared datasets live.

Order of precedence: an explicit directory (CLI ``--cache-dir``), the environment variable
``RADIOACTIVE_CACHE_DIR``, then the user's cache directory (``~/.cache/radioactive`` on Linux).

Layout::

    <cache>/downloads/<registry>/...   archives exactly as the registries served them
    <cache>/datasets/<name>/...        prepared datasets (nnU-Net raw layout)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENV_VAR = "RADIOACTIVE_CACHE_DIR"


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache root (not created)."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("radioactive"))


def downloads_dir(override: str | Path | None = None) -> Path:
    return cache_dir(override) / "downloads"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_checksums(folder: str | Path, skip: tuple[str, ...] = ("dataset.json",)) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder`` (sorted; ``skip``: file names)."""
    root = Path(folder)
    return {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


@contextlib.contextmanager
def staged_dir(final: Path, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A fresh folder next to ``final`` to build into. When the block completes, the folder
    replaces ``final`` with one rename; when it raises, the folder is removed. An interrupted build
    therefore never leaves a half-written ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
