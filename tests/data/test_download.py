"""Downloads against a local HTTP server: resume, retries, verification, TCIA, IDC."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import threading
import types
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from radioactive.data.recipes import download as dl
from radioactive.errors import RecipeError


class FakeServer:
    """A small HTTP server on 127.0.0.1 that serves bytes, honours ``Range`` (unless told not
    to), can drop the connection after N bytes, and answers JSON routes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # request path (with query) -> body
        self.routes: dict[str, Callable[[dict[str, list[str]]], Any]] = {}  # path -> JSON
        self.status: dict[str, int] = {}  # request path -> error status to answer
        self.drops: dict[str, list[int]] = {}  # request path -> bytes to send before dropping
        self.ignore_range = False
        self.log: list[tuple[str, dict[str, str]]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.log if p == path]

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.log.append((self.path, dict(self.headers.items())))
                split = urlsplit(self.path)
                if self.path in server.status:
                    self.send_error(server.status[self.path])
                    return
                if split.path in server.routes:
                    value = server.routes[split.path](parse_qs(split.query))
                    body = b"" if value is None else json.dumps(value).encode("utf-8")
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[self.path]
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not server.ignore_range and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                drops = server.drops.get(self.path)
                if drops:
                    self.wfile.write(body[: drops.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer().start()
    yield s
    s.stop()


PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_streams_verifies_and_reports_progress(server: FakeServer, tmp_path: Path) -> None:
    server.files["/data/a.bin"] = PAYLOAD
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "sub" / "a.bin"
    out = dl.download(
        f"{server.url}/data/a.bin",
        dest,
        sha256=SHA,
        size=len(PAYLOAD),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("a.bin.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # a verified file is not fetched again
    n = len(server.log)
    dl.download(f"{server.url}/data/a.bin", dest, sha256=SHA)
    assert len(server.log) == n


def test_download_resumes_with_a_range_request(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    server.drops["/a.bin"] = [123_456]
    dest = tmp_path / "a.bin"
    dl.download(f"{server.url}/a.bin", dest, sha256=SHA, backoff=0)
    first, second = server.requests_for("/a.bin")
    assert "Range" not in first
    assert second["Range"] == "bytes=123456-"
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()


def test_download_resumes_a_part_file_left_by_an_earlier_run(
    server: FakeServer, tmp_path: Path
) -> None:
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:5000])
    dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", size=len(PAYLOAD))
    assert server.requests_for("/a.bin")[0]["Range"] == "bytes=5000-"
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_download_restarts_when_the_server_ignores_range(
    server: FakeServer, tmp_path: Path
) -> None:
    server.files["/a.bin"] = PAYLOAD
    server.ignore_range = True
    server.drops["/a.bin"] = [70_000]
    dest = tmp_path / "a.bin"
    dl.download(f"{server.url}/a.bin", dest, sha256=SHA, backoff=0)
    reqs = server.requests_for("/a.bin")
    assert len(reqs) == 2 and reqs[1]["Range"] == "bytes=70000-"
    assert dest.read_bytes() == PAYLOAD  # the 200 answer replaced the part, nothing doubled


def test_download_accepts_a_complete_part_file(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=SHA)  # the server answers 416
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_download_gives_up_after_the_retries(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    server.ignore_range = True
    server.drops["/a.bin"] = [1000] * 5
    with pytest.raises(RecipeError) as exc:
        dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", retries=2, backoff=0)
    assert len(server.requests_for("/a.bin")) == 3
    assert "keeps failing" in exc.value.problem and "/a.bin" in exc.value.problem
    assert "resumes" in (exc.value.fix or "")
    assert not (tmp_path / "a.bin").exists()


def test_checksum_mismatch_raises_and_leaves_no_file(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    with pytest.raises(RecipeError) as exc:
        dl.download(f"{server.url}/a.bin", dest, sha256="0" * 64)
    assert "sha256" in exc.value.problem and f"{server.url}/a.bin" in exc.value.problem
    assert exc.value.path == dest and "--source-dir" in (exc.value.fix or "")
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_size_mismatch_raises(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(RecipeError, match="300000 bytes, 300001 were expected"):
        dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", size=len(PAYLOAD) + 1)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_existing_file_is_fetched_again(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"garbage")
    dl.download(f"{server.url}/a.bin", dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize(("status", "words"), [(404, "does not exist"), (403, "refused access")])
def test_http_errors_name_the_url(
    server: FakeServer, tmp_path: Path, status: int, words: str
) -> None:
    server.status["/gone.zip"] = status
    with pytest.raises(RecipeError) as exc:
        dl.download(f"{server.url}/gone.zip", tmp_path / "gone.zip", backoff=0)
    assert f"{server.url}/gone.zip" in exc.value.problem and words in exc.value.problem
    assert f"HTTP {status}" in exc.value.problem
    assert "--source-dir" in (exc.value.fix or "")
    assert len(server.log) == 1  # not retried
    assert not (tmp_path / "gone.zip").exists()


def test_transient_errors_are_retried(server: FakeServer, tmp_path: Path) -> None:
    server.status["/busy"] = 503
    with pytest.raises(RecipeError, match="keeps answering HTTP 503"):
        dl.download(f"{server.url}/busy", tmp_path / "busy", retries=2, backoff=0)
    assert len(server.log) == 3


def test_observer_sees_every_download(server: FakeServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    events: list[Any] = []

    class Observer:
        def started(self, name: str, url: str) -> dl.Progress:
            events.append(("start", name, url))
            return lambda done, total: events.append((done, total))

        def finished(self, name: str) -> None:
            events.append(("end", name))

    with dl.observe_downloads(Observer()):
        dl.download(f"{server.url}/a.bin", tmp_path / "a.bin")
    dl.download(f"{server.url}/a.bin", tmp_path / "b.bin")  # outside: not observed
    assert events[0] == ("start", "a.bin", f"{server.url}/a.bin")
    assert events[-1] == ("end", "a.bin")
    assert (len(PAYLOAD), len(PAYLOAD)) in events


# ---------------------------------------------------------------------------------------- TCIA


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


SERIES = [
    {"SeriesInstanceUID": "1.2.3.1", "PatientID": "P1", "Modality": "CT", "ImageCount": 2},
    {"SeriesInstanceUID": "1.2.3.2", "PatientID": "P1", "Modality": "SEG", "ImageCount": 1},
    {"SeriesInstanceUID": "1.2.3.3", "PatientID": "P2", "Modality": "CT", "ImageCount": 2},
]


@pytest.fixture
def tcia(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv(dl.TCIA_ENV, server.url + "/nbia/v1/")

    def get_series(q: dict[str, list[str]]) -> list[dict[str, Any]] | None:
        hits = [
            s
            for s in SERIES
            if q["Collection"] == ["RIDER Lung CT"]
            and s["Modality"] in q.get("Modality", [s["Modality"]])
            and s["PatientID"] in q.get("PatientID", [s["PatientID"]])
        ]
        return hits or None  # NBIA answers an empty body when nothing matches

    server.routes["/nbia/v1/getSeries"] = get_series
    return server


def test_tcia_list_series_filters(tcia: FakeServer) -> None:
    assert dl.tcia_url() == tcia.url + "/nbia/v1"
    assert [s["SeriesInstanceUID"] for s in dl.tcia_list_series("RIDER Lung CT")] == [
        "1.2.3.1", "1.2.3.2", "1.2.3.3",
    ]  # fmt: skip
    ct_p2 = dl.tcia_list_series("RIDER Lung CT", modality="CT", patient="P2")
    assert [s["SeriesInstanceUID"] for s in ct_p2] == ["1.2.3.3"]
    assert tcia.log[-1][0] == "/nbia/v1/getSeries?Collection=RIDER+Lung+CT&Modality=CT&PatientID=P2"
    assert dl.tcia_list_series("Nope") == []


def test_tcia_list_series_http_error(tcia: FakeServer) -> None:
    tcia.status["/nbia/v1/getSeries?Collection=X"] = 500
    with pytest.raises(RecipeError, match="HTTP 500") as exc:
        dl.tcia_list_series("X")
    assert "--source-dir" in (exc.value.fix or "")


def test_tcia_download_series_extracts_and_skips_when_done(
    tcia: FakeServer, tmp_path: Path
) -> None:
    uid = "1.2.3.1"
    files = {"1-1.dcm": b"slice one", "1-2.dcm": b"slice two", "LICENSE": b"CC BY 4.0"}
    tcia.files[f"/nbia/v1/getImage?SeriesInstanceUID={uid}"] = _zip(files)
    seen: list[int] = []
    folder = dl.tcia_download_series(uid, tmp_path / "raw", progress=lambda d, t: seen.append(d))
    assert folder == tmp_path / "raw" / uid
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [uid]  # zip and staging gone
    assert seen and seen[-1] > 0
    n = len(tcia.log)
    assert dl.tcia_download_series(uid, tmp_path / "raw") == folder
    assert len(tcia.log) == n  # complete: not fetched again


def test_tcia_download_series_resumes_the_zip(
    tcia: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = "1.2.3.3"
    body = _zip({f"1-{i}.dcm": os.urandom(20_000) for i in range(5)})
    path = f"/nbia/v1/getImage?SeriesInstanceUID={uid}"
    tcia.files[path] = body
    tcia.drops[path] = [40_000]
    plain = dl.download
    monkeypatch.setattr(dl, "download", lambda *a, **k: plain(*a, **{**k, "backoff": 0}))
    folder = dl.tcia_download_series(uid, tmp_path)
    assert tcia.requests_for(path)[1]["Range"] == "bytes=40000-"
    assert sorted(p.name for p in folder.iterdir()) == [f"1-{i}.dcm" for i in range(5)]


def test_tcia_bad_or_empty_archive(tcia: FakeServer, tmp_path: Path) -> None:
    tcia.files["/nbia/v1/getImage?SeriesInstanceUID=9.9"] = b"<html>maintenance</html>"
    with pytest.raises(RecipeError, match="not a zip archive"):
        dl.tcia_download_series("9.9", tmp_path)
    tcia.files["/nbia/v1/getImage?SeriesInstanceUID=9.8"] = _zip({})
    with pytest.raises(RecipeError, match=r"no file for series 9\.8"):
        dl.tcia_download_series("9.8", tmp_path)
    assert list(tmp_path.iterdir()) == []  # no archive, no half folder


# ----------------------------------------------------------------------------------------- IDC


def _fake_idc(monkeypatch: pytest.MonkeyPatch, fail: Exception | None = None) -> list[dict]:
    calls: list[dict] = []

    class IDCClient:
        def download_from_selection(self, **kwargs: Any) -> None:
            calls.append(kwargs)
            if fail is not None:
                raise fail
            root = Path(kwargs["downloadDir"])
            (root / "P1" / "S1" / "CT_1.2").mkdir(parents=True)
            (root / "P1" / "S1" / "CT_1.2" / "a.dcm").write_bytes(b"x")

    module = types.ModuleType("idc_index")
    module.IDCClient = IDCClient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "idc_index", module)
    return calls


def test_idc_download_calls_idc_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_idc(monkeypatch)
    out = dl.idc_download("colorectal_liver_metastases", tmp_path / "raw", series_uids=["1.2"])
    assert out == tmp_path / "raw"
    assert calls == [
        {
            "collection_id": "colorectal_liver_metastases",
            "seriesInstanceUID": ["1.2"],
            "downloadDir": str(tmp_path / "raw"),
            "dirTemplate": "%PatientID/%StudyInstanceUID/%Modality_%SeriesInstanceUID",
        }
    ]
    assert (out / "P1" / "S1" / "CT_1.2" / "a.dcm").is_file()
    dl.idc_download("adrenal_acc_ki67_seg", tmp_path / "all")
    assert (
        "seriesInstanceUID" not in calls[1] and calls[1]["collection_id"] == "adrenal_acc_ki67_seg"
    )
    dl.idc_download("x", tmp_path / "none", series_uids=[])
    assert len(calls) == 2  # nothing asked for: no call


def test_idc_download_without_idc_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "idc_index", None)  # import fails
    with pytest.raises(RecipeError) as exc:
        dl.idc_download("hcc_tace_seg", tmp_path)
    assert "idc-index" in exc.value.problem and "hcc_tace_seg" in exc.value.problem
    assert "pip install idc-index" in (exc.value.fix or "")
    assert "--source-dir" in (exc.value.fix or "")


def test_idc_download_failure_is_a_recipe_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_idc(monkeypatch, fail=RuntimeError("s5cmd exited with 1"))
    with pytest.raises(RecipeError, match="s5cmd exited with 1") as exc:
        dl.idc_download("hcc_tace_seg", tmp_path)
    assert exc.value.path == tmp_path


def test_file_addresses_are_copied_and_verified(tmp_path: Path) -> None:
    """A ``file://`` address (a local mirror) goes through the same verified path as HTTP."""
    from radioactive.data import remote

    blob = b"mirror" * 500
    src = tmp_path / "mirror" / "a.bin"
    src.parent.mkdir()
    src.write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    out = remote.download(src.as_uri(), tmp_path / "out" / "a.bin", sha256=sha, size=len(blob))
    assert out.read_bytes() == blob and not list(out.parent.glob("*.part"))
    with pytest.raises(RecipeError, match="sha256"):
        remote.download(src.as_uri(), tmp_path / "out" / "b.bin", sha256="0" * 64)
    assert not (tmp_path / "out" / "b.bin").exists()
    with pytest.raises(RecipeError) as exc:
        remote.download((tmp_path / "nope.bin").as_uri(), tmp_path / "out" / "c.bin")
    assert "nope.bin" in str(exc.value)
