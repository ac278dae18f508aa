"""Prediction files written in the background: a result is released only after its file is
written, in the order the writes were queued, and a failed write raises as it would in line."""

from __future__ import annotations

import threading

import pytest

from radioactive.runner.writes import BackgroundWriter


def test_a_result_waits_for_its_write_and_order_is_kept() -> None:
    gate = threading.Event()
    written: list[str] = []

    def slow(name: str) -> None:
        gate.wait(5)
        written.append(name)

    w: BackgroundWriter[str] = BackgroundWriter()
    try:
        w.add("first", slow, "a")
        w.add("second", written.append, "b")
        assert list(w.ready()) == []  # "a" is still being written: nothing is released
        assert written == []
        gate.set()
        assert list(w.drain()) == ["first", "second"]
        assert written == ["a", "b"]
        assert list(w.ready()) == [] and list(w.drain()) == []
    finally:
        gate.set()
        w.close()


def test_ready_releases_only_the_finished_prefix() -> None:
    gate = threading.Event()
    w: BackgroundWriter[int] = BackgroundWriter()
    try:
        w.add(1, lambda: None)
        w.add(2, gate.wait, 5)
        w.add(3, lambda: None)
        done = []
        for _ in range(200):  # the first write finishes almost at once
            done += list(w.ready())
            if done:
                break
            threading.Event().wait(0.01)
        assert done == [1]  # 3 is written only after 2, so it waits too
        gate.set()
        assert list(w.drain()) == [2, 3]
    finally:
        gate.set()
        w.close()


def test_a_failed_write_raises_when_its_result_is_released() -> None:
    def broken(path: str) -> None:
        raise OSError(f"disk full writing {path}")

    w: BackgroundWriter[str] = BackgroundWriter()
    try:
        w.add("unit", broken, "x.nii.gz")
        with pytest.raises(OSError, match=r"disk full writing x\.nii\.gz"):
            list(w.drain())
    finally:
        w.close()


class FakeCase:
    def __init__(self, image, label, labels=None) -> None:
        from radioactive.data.case import TargetSpec

        self.image_path, self.label_path = image, label
        self.channel = None
        self.labels = labels or {"background": 0, "lesion": 1}
        self.spec = TargetSpec()
        self.released = 0

    def release(self) -> None:
        self.released += 1


def test_a_case_is_read_once_for_consecutive_jobs_until_a_file_changes(tmp_path) -> None:
    import os

    from radioactive.runner.plan import _loaded_once, release_loaded_case

    image, label = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    image.write_bytes(b"image")
    label.write_bytes(b"label")
    try:
        first = _loaded_once(FakeCase(image, label))
        assert _loaded_once(FakeCase(image, label)) is first  # the next model's job: kept
        other_labels = FakeCase(image, label, {"background": 0, "tumour": 1})
        assert _loaded_once(other_labels) is other_labels and first.released == 1
        st = label.stat()
        os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the label edited
        fresh = FakeCase(image, label, {"background": 0, "tumour": 1})
        assert _loaded_once(fresh) is fresh and other_labels.released == 1
    finally:
        release_loaded_case()
    assert fresh.released == 1
