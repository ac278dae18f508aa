"""Reading a release folder: loose files and zip archives alike.

:class:`Release` lists the files of a source folder, whether extracted or still inside zip
archives, and hands a reader a filesystem path for each (archive members are extracted one at a
time into a scratch folder). The file-based recipes (D1 MS FLAIR, D2 HaN-Seg, D3 HNTS-MRG,
D9 PENGWIN, D10 SegRap) derive from :class:`ReleaseRecipe`, which reads their source folder with it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, TypeVar

import numpy as np

from radioactive.data.recipes import Reporter
from radioactive.data.recipes.public import CaseWriter, PublicRecipe, SourceFile
from radioactive.errors import RecipeError


@dataclass(frozen=True)
class Entry:
    """One file of a release: loose in the source folder or a member of a zip archive there.

    Attributes:
        path: POSIX path inside its container (relative to the source folder, or the member name).
        archive: the zip archive holding it, ``None`` for a loose file.
    """

    path: str
    archive: Path | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def where(self, raw: Path) -> str:
        """How the entry is named to a user (``archive.zip!/member`` for archive members)."""
        if self.archive is None:
            return self.path
        try:
            arch = self.archive.relative_to(raw).as_posix()
        except ValueError:
            arch = str(self.archive)
        return f"{arch}!/{self.path}"


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class Release:
    """The files of a release in a source folder, whether extracted or still in zip archives.

    Loose files come first in :meth:`find`, so an extracted copy wins over its archive. Archive
    members are extracted one at a time into a scratch folder when a reader needs a path
    (:meth:`local`) and deleted again afterwards; the source folder is never modified.

    Args:
        raw: the source folder.
        password_env: environment variable holding the password of encrypted archives.
        scratch_dir: where archive members are extracted (default: the system's temporary folder).
    """

    def __init__(self, raw: Path, password_env: str | None = None, scratch_dir: Path | None = None):
        self.raw = raw
        self.password_env = password_env
        self.scratch_dir = scratch_dir
        self.entries: list[Entry] = []
        self._zips: dict[Path, zipfile.ZipFile] = {}
        self._scratch: Path | None = None
        archives: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(raw):
            dirnames[:] = sorted(d for d in dirnames if not _skipped((d,)))
            here = Path(dirpath)
            for fname in sorted(filenames):
                if _skipped((fname,)):
                    continue
                p = here / fname
                if fname.lower().endswith(".zip"):
                    archives.append(p)
                else:
                    self.entries.append(Entry(p.relative_to(raw).as_posix()))
        for arch in archives:
            try:
                zf = zipfile.ZipFile(arch)
            except (OSError, zipfile.BadZipFile) as exc:
                raise RecipeError(
                    f"cannot read the zip archive: {exc}",
                    path=arch,
                    fix="download the archive again (it is probably incomplete)",
                ) from exc
            self._zips[arch] = zf
            for info in zf.infolist():
                if info.is_dir() or _skipped(PurePosixPath(info.filename).parts):
                    continue
                self.entries.append(Entry(info.filename, arch))

    def __enter__(self) -> Release:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def find(self, pattern: str | re.Pattern[str]) -> list[tuple[Entry, re.Match[str]]]:
        """Entries whose path matches ``pattern`` (``re.search``), loose files first."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        out = []
        for e in self.entries:
            m = rx.search(e.path)
            if m is not None:
                out.append((e, m))
        return out

    def _password(self) -> bytes | None:
        if self.password_env and os.environ.get(self.password_env):
            return os.environ[self.password_env].encode("utf-8")
        return None

    @contextmanager
    def local(self, entry: Entry) -> Iterator[Path]:
        """A filesystem path holding ``entry`` (an archive member is extracted for the duration)."""
        if entry.archive is None:
            yield self.raw / entry.path
            return
        if self._scratch is None:
            self._scratch = Path(
                tempfile.mkdtemp(prefix=".radioactive-release-", dir=self.scratch_dir)
            )
        name = entry.name
        dest = Path(tempfile.mkdtemp(dir=self._scratch)) / name
        zf = self._zips[entry.archive]
        try:
            with zf.open(entry.path, pwd=self._password()) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (RuntimeError, NotImplementedError) as exc:
            env = self.password_env
            raise RecipeError(
                f"cannot extract {entry.path}: {exc}",
                path=entry.archive,
                fix=(f"set ${env} to the archive's password, or " if env else "")
                + "extract the archive yourself (e.g. with 7-Zip) next to it and run again",
            ) from exc
        except (OSError, zipfile.BadZipFile) as exc:
            raise RecipeError(
                f"cannot extract {entry.path}: {exc}",
                path=entry.archive,
                fix="download the archive again (it is probably damaged)",
            ) from exc
        try:
            yield dest
        finally:
            shutil.rmtree(dest.parent, ignore_errors=True)

    def read_image(self, entry: Entry) -> Any:
        """The entry read with SimpleITK."""
        import SimpleITK as sitk

        with self.local(entry) as p:
            try:
                return sitk.ReadImage(str(p))
            except RuntimeError as exc:
                raise RecipeError(
                    f"cannot read {entry.where(self.raw)} as an image: {exc}",
                    path=self.raw,
                    fix="check that the file is complete (download or extract it again)",
                ) from exc


def missing_by_markers(
    raw: Path, files: tuple[SourceFile, ...], markers: Mapping[str, str], password_env: str | None
) -> list[SourceFile]:
    """The required ``files`` that are neither in ``raw`` nor extracted there.

    A file counts as present when it lies in ``raw`` or when some loose file matches its marker
    (a regular expression over the path relative to ``raw``): the user extracted it.
    """
    if not raw.is_dir():
        return [f for f in files if not f.optional]
    out = []
    release: Release | None = None
    try:
        for f in files:
            if f.optional or (raw / f.name).exists():
                continue
            marker = markers.get(f.name)
            if marker is not None:
                if release is None:
                    release = Release(raw, password_env)
                rx = re.compile(marker)
                if any(e.archive is None and rx.search(e.path) for e in release.entries):
                    continue
            out.append(f)
    finally:
        if release is not None:
            release.close()
    return out


def to_uint8_mask(arr: np.ndarray) -> np.ndarray:
    return (np.asarray(arr) > 0).astype(np.uint8)


def label_like(arr: np.ndarray, reference: Any) -> Any:
    """``arr`` (SimpleITK's (z, y, x) order) as a uint8 ``SimpleITK.Image`` with the geometry
    of ``reference``."""
    import SimpleITK as sitk

    label = sitk.GetImageFromArray(arr.astype(np.uint8))
    label.CopyInformation(reference)
    return label


_Key = TypeVar("_Key", int, str)
_Label = TypeVar("_Label")


def labelled(
    images: Mapping[_Key, Entry],
    labels: Mapping[_Key, _Label],
    case_id: Callable[[_Key], str],
    reporter: Reporter,
    dropped: dict[str, str],
    no_label: str,
) -> Iterator[tuple[_Key, str, Entry, _Label]]:
    """The cases to convert: per key of ``images`` in sorted order, reported as a step, the key,
    its case id, its image entry and its label; a key without a label is recorded in
    ``dropped`` with the reason ``no_label`` instead."""
    reporter.begin(len(images))
    for key in sorted(images):
        cid = case_id(key)
        reporter.step(f"converting {cid}")
        if key not in labels:
            dropped[cid] = no_label
            continue
        yield key, cid, images[key], labels[key]


class ReleaseRecipe(PublicRecipe):
    """Base of the recipes whose release is files, loose or in zip archives (:class:`Release`).

    A required file counts as present when it lies in the source folder or when a loose file
    matches its entry in ``markers`` (the user extracted it); ``password_env`` names the
    environment variable holding the password of encrypted archives.
    """

    #: required file name -> regular expression matching a file of its extracted copy
    markers: ClassVar[dict[str, str]] = {}
    password_env: ClassVar[str | None] = None

    def missing(self, raw: Path) -> list[SourceFile]:
        return missing_by_markers(raw, self.files, self.markers, self.password_env)

    def release(self, raw: Path, writer: CaseWriter) -> Release:
        """The release in ``raw``; archive members are extracted next to the staging folder."""
        return Release(raw, self.password_env, scratch_dir=writer.folder.parent)
