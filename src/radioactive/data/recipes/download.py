"""Downloads of the public datasets' raw files: plain HTTP(S), TCIA and IDC.

* :func:`download` fetches one file over HTTP(S). It writes to ``<dest>.part``, resumes an
  interrupted transfer with a ``Range`` request (and starts again from the first byte when the
  server ignores ``Range``), retries dropped connections, checks the size and sha256 when they are
  known, and moves the file into place only when it is complete and verified.
* :func:`tcia_list_series` and :func:`tcia_download_series` use the public part of the NBIA REST
  API (v1) of The Cancer Imaging Archive: no login, public collections only. The base address is
  ``$RADIOACTIVE_TCIA_URL`` or :data:`TCIA_URL`.
* :func:`idc_download` fetches a collection (or some of its series) from the NCI Imaging Data
  Commons with the optional ``idc-index`` package.

Progress: every call of :func:`download` reports to the callback it is given and to the observer
installed with :func:`observe_downloads` (the command line draws a progress bar per file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from radioactive.data.cache import sha256_file
from radioactive.errors import RecipeError

#: Public NBIA REST API (v1) of TCIA; ``$RADIOACTIVE_TCIA_URL`` overrides it.
TCIA_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
TCIA_ENV = "RADIOACTIVE_TCIA_URL"
#: Where IDC series land below ``dest`` (idc-index's own default starts with the collection id).
IDC_DIR_TEMPLATE = "%PatientID/%StudyInstanceUID/%Modality_%SeriesInstanceUID"

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
                done = _transfer(requests, url, dest, part, headers, offset, size, report)
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


# ---------------------------------------------------------------------------------------- TCIA


def tcia_url() -> str:
    """The NBIA REST API base address in use (``$RADIOACTIVE_TCIA_URL`` or :data:`TCIA_URL`)."""
    return (os.environ.get(TCIA_ENV) or TCIA_URL).rstrip("/")


def tcia_list_series(
    collection: str, *, modality: str | None = None, patient: str | None = None
) -> list[dict[str, Any]]:
    """The series of a public TCIA collection (NBIA ``getSeries``), optionally filtered.

    Each entry is the API's record of a series: ``SeriesInstanceUID``, ``StudyInstanceUID``,
    ``PatientID``, ``Modality``, ``SeriesDescription``, ``ImageCount``, ... (fields the archive
    does not hold for a series are absent).
    """
    import requests

    params = {"Collection": collection}
    if modality:
        params["Modality"] = modality
    if patient:
        params["PatientID"] = patient
    url = f"{tcia_url()}/getSeries"
    fix = (
        "check the network connection (and $RADIOACTIVE_TCIA_URL if you set it) and run the "
        f"command again, or download the collection {collection!r} with the NBIA Data Retriever "
        "from https://www.cancerimagingarchive.net and pass --source-dir FOLDER"
    )
    try:
        r = requests.get(url, params=params, headers={"User-Agent": _user_agent()}, timeout=TIMEOUT)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RecipeError(f"cannot reach TCIA at {url}: {exc}", fix=fix) from None
    if r.status_code >= 400:
        raise RecipeError(f"TCIA answered HTTP {r.status_code} {r.reason} for {r.url}", fix=fix)
    if r.status_code == 204 or not r.content.strip():
        return []
    try:
        data = r.json()
    except ValueError:
        raise RecipeError(
            f"TCIA's answer to {r.url} is not JSON: {r.text[:200]!r}", fix=fix
        ) from None
    if not isinstance(data, list):
        raise RecipeError(f"TCIA's answer to {r.url} is not a list of series", fix=fix)
    return [dict(s) for s in data]


def tcia_download_series(series_uid: str, dest: Path, progress: Progress | None = None) -> Path:
    """Download one public TCIA series into ``dest/<series_uid>/``; return that folder.

    NBIA's ``getImage`` serves the series as a zip archive. It is downloaded to
    ``dest/<series_uid>.zip`` (resumable), extracted into a hidden folder that is renamed to
    ``dest/<series_uid>`` when complete, and removed. A series folder that exists is complete
    (it is only ever created by that rename) and is not fetched again.
    """
    dest = Path(dest)
    folder = dest / series_uid
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{series_uid}.zip"
    url = f"{tcia_url()}/getImage?SeriesInstanceUID={series_uid}"
    download(url, archive, progress=progress)
    staging = Path(tempfile.mkdtemp(prefix=f".{series_uid}.", dir=dest))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                root = staging.resolve()
                for m in members:
                    target = (staging / m.filename).resolve()
                    if not target.is_relative_to(root):
                        raise RecipeError(
                            f"the archive of series {series_uid} holds a path outside its "
                            f"folder: {m.filename!r}",
                            path=archive,
                            fix="report this to the TCIA help desk; the archive was removed",
                        )
                zf.extractall(staging)
        except zipfile.BadZipFile as exc:
            raise RecipeError(
                f"what TCIA sent for series {series_uid} is not a zip archive ({exc}); it was "
                "removed",
                path=archive,
                fix="run the command again; if this repeats, download the series with the NBIA "
                "Data Retriever and pass --source-dir FOLDER",
            ) from None
        if not members:
            raise RecipeError(
                f"TCIA sent no file for series {series_uid} (an unknown or restricted series)",
                path=archive,
                fix="check the series UID on https://www.cancerimagingarchive.net; restricted "
                "collections need the NBIA Data Retriever with a login and --source-dir FOLDER",
            )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except RecipeError:
        archive.unlink(missing_ok=True)
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    archive.unlink(missing_ok=True)
    return folder


# ----------------------------------------------------------------------------------------- IDC


def idc_download(collection_id: str, dest: Path, *, series_uids: list[str] | None = None) -> Path:
    """Download an IDC collection (or only ``series_uids`` of it) into ``dest``; return ``dest``.

    Uses ``idc-index`` (``pip install idc-index``), which fetches the DICOM files from IDC's
    public cloud buckets and skips files already present, so an interrupted run resumes. Files
    land in ``dest/<PatientID>/<StudyInstanceUID>/<Modality>_<SeriesInstanceUID>/`` (see
    :data:`IDC_DIR_TEMPLATE`).
    """
    dest = Path(dest)
    portal = "https://portal.imaging.datacommons.cancer.gov/explore/"
    try:
        from idc_index import IDCClient
    except ImportError:
        raise RecipeError(
            f"downloading the IDC collection {collection_id!r} needs the package idc-index, "
            "which is not installed",
            fix="`pip install idc-index` and run the command again, or download the collection "
            f"by hand from {portal} into one folder and pass --source-dir FOLDER",
        ) from None
    if series_uids is not None and not series_uids:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {
        "collection_id": collection_id,
        "downloadDir": str(dest),
        "dirTemplate": IDC_DIR_TEMPLATE,
    }
    if series_uids is not None:
        kwargs["seriesInstanceUID"] = list(series_uids)
    try:
        IDCClient().download_from_selection(**kwargs)
    except Exception as exc:  # idc-index raises plain exceptions of many kinds
        raise RecipeError(
            f"idc-index could not download the IDC collection {collection_id!r}: "
            f"{type(exc).__name__}: {exc}",
            path=dest,
            fix="run the command again (files already downloaded are kept), or download the "
            f"collection by hand from {portal} and pass --source-dir FOLDER",
        ) from exc
    return dest
