"""Downloads of the public datasets' raw files from TCIA and IDC.

* :func:`tcia_list_series` and :func:`tcia_download_series` use the public part of the NBIA REST
  API (v1) of The Cancer Imaging Archive: no login, public collections only. The base address is
  ``$RADIOACTIVE_TCIA_URL`` or :data:`TCIA_URL`.
* :func:`idc_download` fetches a collection (or some of its series) from the NCI Imaging Data
  Commons with the optional ``idc-index`` package.

Plain HTTP(S) downloads are :func:`radioactive.data.remote.download` (re-exported here with its
progress observer, :func:`observe_downloads`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from radioactive.data.remote import (
    TIMEOUT,
    Progress,
    TransferObserver,
    _user_agent,
    download,
    observe_downloads,
)
from radioactive.errors import RecipeError

__all__ = [
    "IDC_DIR_TEMPLATE",
    "TCIA_ENV",
    "TCIA_URL",
    "Progress",
    "TransferObserver",
    "download",
    "idc_download",
    "observe_downloads",
    "tcia_download_series",
    "tcia_list_series",
    "tcia_url",
]

#: Public NBIA REST API (v1) of TCIA; ``$RADIOACTIVE_TCIA_URL`` overrides it.
TCIA_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
TCIA_ENV = "RADIOACTIVE_TCIA_URL"
#: Where IDC series land below ``dest`` (idc-index's own default starts with the collection id).
IDC_DIR_TEMPLATE = "%PatientID/%StudyInstanceUID/%Modality_%SeriesInstanceUID"


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
