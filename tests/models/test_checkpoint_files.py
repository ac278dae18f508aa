"""A truncated, empty or garbage checkpoint is refused with the file and the fix named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from radioactive.models.base import CheckpointError  # noqa: E402
from radioactive.models.checkpoints import (  # noqa: E402
    CHECKPOINTS,
    check_checkpoint_file,
    checkpoint_path,
    checkpoint_status,
    load_checkpoint_state,
    require_checkpoint,
)


def _saved(path: Path, *, legacy: bool = False) -> Path:
    state = {"w": torch.arange(4000, dtype=torch.float32), "b": torch.zeros(3)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def _damaged(tmp_path: Path) -> dict[str, Path]:
    good = _saved(tmp_path / "good.pth").read_bytes()
    out = {
        "empty": tmp_path / "empty.pth",
        "truncated": tmp_path / "truncated.pth",
        "garbage": tmp_path / "garbage.pth",
        "zip_not_torch": tmp_path / "other.pth",
    }
    out["empty"].write_bytes(b"")
    out["truncated"].write_bytes(good[: len(good) // 2])
    out["garbage"].write_bytes(b"<!DOCTYPE html><html>Access denied</html>" * 20)
    import zipfile

    with zipfile.ZipFile(out["zip_not_torch"], "w") as z:
        z.writestr("readme.txt", "hello")
    return out


def test_intact_checkpoints_pass(tmp_path: Path) -> None:
    for p in (_saved(tmp_path / "new.pth"), _saved(tmp_path / "old.pth", legacy=True)):
        assert check_checkpoint_file(p) == p
        state = load_checkpoint_state(p, "cpu")
        assert torch.equal(state["w"], torch.arange(4000, dtype=torch.float32))


@pytest.mark.parametrize(
    "kind, words",
    [("empty", "empty"), ("truncated", "truncated"), ("garbage", "not a PyTorch checkpoint"),
     ("zip_not_torch", "no data.pkl")],
)  # fmt: skip
def test_damaged_checkpoints_name_the_file_and_the_fix(
    tmp_path: Path, kind: str, words: str
) -> None:
    path = _damaged(tmp_path)[kind]
    with pytest.raises(CheckpointError) as exc:
        check_checkpoint_file(path, "sam_vit_b")
    message = str(exc.value)
    assert str(path) in message and words in message
    assert "radioactive models fetch sam_vit_b" in message
    # torch itself fails on each with an error that does not name the file
    with pytest.raises(Exception) as raw:
        torch.load(path, weights_only=True)
    assert str(path) not in str(raw.value)
    with pytest.raises(CheckpointError) as loaded:
        load_checkpoint_state(path, "cpu", "sam_vit_b")
    assert str(path) in str(loaded.value)


def test_without_a_name_the_fix_is_to_download_again(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        check_checkpoint_file(_damaged(tmp_path)["empty"])
    assert "download empty.pth again" in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        check_checkpoint_file(tmp_path / "nope.pth", "mobilesam")


def test_torch_failure_past_the_structural_check_is_a_checkpoint_error(tmp_path: Path) -> None:
    """A zip whose data.pkl is damaged passes the cheap check; loading still names the file."""
    import zipfile

    bad = tmp_path / "bad_pickle.pth"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02garbage")
        z.writestr("archive/version", "3\n")
    assert check_checkpoint_file(bad) == bad
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint_state(bad, "cpu", "mobilesam")
    assert str(bad) in str(exc.value) and "models fetch mobilesam" in str(exc.value)


def test_unverified_registry_checkpoint_truncated_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint without a published sha256 (SAM 2, SAM-Med3D) used to count as present
    whatever its content; now its structure is checked and the error says what is wrong."""
    cache = tmp_path / "cache"
    entry = CHECKPOINTS["sammed3d_turbo"]
    assert entry.sha256 is None
    path = checkpoint_path("sammed3d_turbo", cache)
    path.parent.mkdir(parents=True)
    good = _saved(tmp_path / "g.pth").read_bytes()
    path.write_bytes(good[:100])
    assert checkpoint_status("sammed3d_turbo", cache) == "corrupt"
    with pytest.raises(CheckpointError) as exc:
        require_checkpoint("sammed3d_turbo", cache)
    assert str(path) in str(exc.value) and "truncated" in str(exc.value)
    assert "radioactive models fetch sammed3d_turbo" in str(exc.value)
    path.write_bytes(good)
    assert checkpoint_status("sammed3d_turbo", cache) == "present"
    assert require_checkpoint("sammed3d_turbo", cache) == path
    # a download that yields a truncated file is refused and nothing is put in place
    served = tmp_path / "served.pth"
    served.write_bytes(good[: len(good) // 3])
    monkeypatch.setitem(
        CHECKPOINTS, "sammed3d_turbo", dataclasses.replace(entry, url=served.as_uri())
    )
    with pytest.raises(CheckpointError, match="truncated"):
        from radioactive.models.checkpoints import fetch_checkpoint

        fetch_checkpoint("sammed3d_turbo", cache, force=True)
    assert path.read_bytes() == good


def test_user_checkpoint_path_is_checked(tmp_path: Path) -> None:
    bad = _damaged(tmp_path)["garbage"]
    with pytest.raises(CheckpointError) as exc:
        require_checkpoint("mobilesam", tmp_path / "cache", path=bad)
    assert str(bad) in str(exc.value)


def test_folder_checkpoint_files_are_checked(tmp_path: Path) -> None:
    folder = tmp_path / "nnInteractive_v1.0"
    (folder / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json", "inference_session_class.json"):
        (folder / name).write_text("{}")
    _saved(folder / "fold_0" / "checkpoint_final.pth")
    assert require_checkpoint("nninteractive_v1.0", path=folder) == folder
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    with pytest.raises(CheckpointError) as exc:
        require_checkpoint("nninteractive_v1.0", path=folder)
    assert "checkpoint_final.pth" in str(exc.value) and "empty" in str(exc.value)


def _bad_pickle_zip(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02garbage")
        z.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize(
    "module, cls",
    [("radioactive.models.mobilesam", "MobileSAMBackend"),
     ("radioactive.models.litemedsam", "LiteMedSAMBackend"),
     ("radioactive.models.sammed3d", "SAMMed3DModel")],
)  # fmt: skip
def test_adapters_turn_a_load_failure_into_a_checkpoint_error(
    tmp_path: Path, module: str, cls: str
) -> None:
    """The adapters load their weights through load_checkpoint_state: a file torch cannot read
    (past the cheap check) fails at construction with the file named, not with a bare torch
    error in every unit."""
    import importlib

    backend = getattr(importlib.import_module(module), cls)
    bad = _bad_pickle_zip(tmp_path / "weights.pth")
    with pytest.raises(CheckpointError) as exc:
        backend(checkpoint=bad, device="cpu")
    assert str(bad) in str(exc.value) and "Fix:" in str(exc.value)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        backend(checkpoint=empty, device="cpu")
