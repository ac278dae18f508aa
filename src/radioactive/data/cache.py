"""Where fetched sources and prepared datasets live.

Order of precedence: an explicit directory (CLI ``--cache-dir``), the environment variable
``RADIOACTIVE_CACHE_DIR``, then the user's cache directory (``~/.cache/radioactive`` on Linux).

Layout::

    <cache>/downloads/<registry>/...   archives exactly as the registries served them
    <cache>/datasets/<name>/...        prepared datasets (nnU-Net raw layout)
"""

from __future__ import annotations

import hashlib
import os
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


def datasets_dir(override: str | Path | None = None) -> Path:
    return cache_dir(override) / "datasets"


def downloads_dir(override: str | Path | None = None) -> Path:
    return cache_dir(override) / "downloads"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
