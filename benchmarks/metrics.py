"""Benchmark: Dice + NSD + HD95 on a CT-sized pair, against surface-distance (and MONAI).

The pair is real: the liver of the demo suite's abdominal CT, resampled with nearest neighbour to
fill a 300×512×512 (z, y, x) volume (spacing scaled to keep the physical size) and perturbed
(shifted and dilated) to make a prediction. Each implementation computes Dice, NSD at 2 mm and
HD95 of the same pair in the same process; the script prints wall times, speed ratios, value
agreement and the peak of numpy allocations (tracemalloc) relative to the size of the two masks.

    python benchmarks/metrics.py                 # 300×512×512
    python benchmarks/metrics.py --quick         # 60×128×128, seconds
    python benchmarks/metrics.py --size 200 400 400 --demo-dir /path/to/datasets/demo

Targets: ≥ 10× faster than surface-distance at equal values; peak memory < 3× the two masks.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATASET_GLOB = "Dataset*_DemoAbdomenOrgansCT"
CASE = "abdomen"
QUICK_SIZE = (60, 128, 128)
SPEED_TARGET = 10.0
MEMORY_TARGET = 3.0


def default_demo_dir() -> Path:
    root = os.environ.get("RADIOACTIVE_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "radioactive"
    return base / "datasets" / "demo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="prepared demo suite (default: $RADIOACTIVE_CACHE_DIR/datasets/demo or "
        "~/.cache/radioactive/datasets/demo)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=3,
        metavar=("Z", "Y", "X"),
        default=(300, 512, 512),
        help="volume size (z, y, x) the mask is resampled to (default 300 512 512)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"small volume {QUICK_SIZE} for a smoke run"
    )
    parser.add_argument("--label", default="liver", help="label name of the target (liver)")
    parser.add_argument("--tolerance-mm", type=float, default=2.0, help="NSD tolerance (2 mm)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of this project (best is kept)"
    )
    return parser.parse_args(argv)


def load_target(demo_dir: Path, label: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The ``label`` mask of the demo abdominal CT in (z, y, x) and its spacing in mm."""
    datasets = sorted(demo_dir.glob(DATASET_GLOB))
    path = datasets[0] / "labelsTr" / f"{CASE}.nii.gz" if datasets else None
    if path is None or not path.is_file():
        sys.exit(
            f"error: the demo suite was not found under {demo_dir} (looked for "
            f"{DATASET_GLOB}/labelsTr/{CASE}.nii.gz).\n"
            "Prepare it with:  radioactive datasets prepare demo\n"
            "or point to it with --demo-dir."
        )
    import nibabel as nib

    labels_by_name = json.loads((datasets[0] / "dataset.json").read_text())["labels"]
    if label not in labels_by_name:
        sys.exit(f"error: no label {label!r} in {datasets[0]}; choose from {list(labels_by_name)}")
    image = nib.load(str(path))
    labels = np.asarray(image.dataobj).transpose(2, 1, 0)
    spacing = tuple(float(s) for s in image.header.get_zooms()[:3][::-1])
    return labels == int(labels_by_name[label]), spacing  # type: ignore[return-value]


def resample_nearest(
    mask: np.ndarray, spacing: tuple[float, ...], size: tuple[int, int, int]
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Nearest-neighbour resampling of ``mask`` onto ``size`` voxels over the same extent."""
    index = [
        np.minimum(((np.arange(n) + 0.5) * m / n).astype(np.intp), m - 1)
        for n, m in zip(size, mask.shape, strict=True)
    ]
    out = mask[np.ix_(*index)]
    new_spacing = tuple(s * m / n for s, m, n in zip(spacing, mask.shape, size, strict=True))
    return np.ascontiguousarray(out), new_spacing  # type: ignore[return-value]


def shifted(mask: np.ndarray, shift: tuple[int, int, int]) -> np.ndarray:
    """``mask`` moved by ``shift`` voxels, zero-filled (no wrap-around)."""
    out = np.zeros_like(mask)
    source = tuple(slice(max(-k, 0), n - max(k, 0)) for k, n in zip(shift, mask.shape, strict=True))
    target = tuple(slice(max(k, 0), n - max(-k, 0)) for k, n in zip(shift, mask.shape, strict=True))
    out[target] = mask[source]
    return out


def perturb(gt: np.ndarray) -> np.ndarray:
    """A plausible prediction: ``gt`` shifted by (1, 3, -2) voxels and dilated by one voxel."""
    from scipy import ndimage

    nz = [np.flatnonzero(gt.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1))]
    box = tuple(
        slice(max(int(i[0]) - 6, 0), min(int(i[-1]) + 7, n))
        for i, n in zip(nz, gt.shape, strict=True)
    )
    pred = np.zeros_like(gt)
    pred[box] = ndimage.binary_dilation(shifted(gt[box], (1, 3, -2)))
    return pred


def time_best(function: Callable[[], dict[str, float]], repeats: int):
    best, values = math.inf, {}
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        values = function()
        best = min(best, time.perf_counter() - start)
    return best, values


def peak_traced(function: Callable[[], object]) -> int:
    """Peak bytes of Python/numpy allocations made while ``function`` runs (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    demo_dir = args.demo_dir or default_demo_dir()
    size = QUICK_SIZE if args.quick else tuple(args.size)
    tolerance = args.tolerance_mm

    mask, spacing0 = load_target(demo_dir, args.label)
    gt, spacing = resample_nearest(mask, spacing0, size)  # type: ignore[arg-type]
    pred = perturb(gt)
    mask_bytes = gt.nbytes + pred.nbytes

    from radioactive.metrics import dice, surface_distances

    def ours() -> dict[str, float]:
        surfaces = surface_distances(pred, gt, spacing)
        return {
            "dice": dice(pred, gt),
            "nsd": surfaces.nsd(tolerance),
            "hd95": surfaces.hd95(),
        }

    implementations: dict[str, Callable[[], dict[str, float]]] = {"radioactive": ours}
    skipped: dict[str, str] = {}

    try:
        import surface_distance
    except ImportError:
        skipped["surface-distance"] = "not installed (pip install surface-distance==0.1)"
    else:

        def deepmind() -> dict[str, float]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                raw = surface_distance.compute_surface_distances(gt, pred, spacing)
                return {
                    "dice": float(surface_distance.compute_dice_coefficient(gt, pred)),
                    "nsd": float(
                        surface_distance.compute_surface_dice_at_tolerance(raw, tolerance)
                    ),
                    "hd95": float(surface_distance.compute_robust_hausdorff(raw, 95)),
                }

        implementations["surface-distance"] = deepmind

    try:
        import monai.metrics  # noqa: F401
        import torch
    except ImportError:
        skipped["MONAI"] = "not importable (pip install monai) — skipped"
    else:
        from monai.metrics import (
            compute_dice,
            compute_hausdorff_distance,
            compute_surface_dice,
        )

        def monai_metrics() -> dict[str, float]:
            p = torch.from_numpy(pred)[None, None].float()
            g = torch.from_numpy(gt)[None, None].float()
            p2, g2 = torch.cat([1 - p, p], 1), torch.cat([1 - g, g], 1)
            return {
                "dice": float(compute_dice(p2, g2, include_background=False)),
                "nsd": float(
                    compute_surface_dice(
                        p2, g2, [tolerance], include_background=False, spacing=list(spacing)
                    )
                ),
                "hd95": float(
                    compute_hausdorff_distance(
                        p, g, include_background=True, percentile=95, spacing=list(spacing)
                    )
                ),
            }

        implementations["MONAI"] = monai_metrics

    print(
        f"radioactive metrics benchmark — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"pair: demo abdomen CT '{args.label}' resampled {mask.shape} -> {gt.shape} (z, y, x), "
        f"spacing {tuple(round(s, 4) for s in spacing)} mm"
    )
    print(
        f"      gt {int(gt.sum()):,} voxels, pred {int(pred.sum()):,} voxels; "
        f"two masks = {mask_bytes / 2**20:.1f} MiB; NSD tolerance {tolerance} mm"
    )
    print()

    ours()  # warm-up: builds the surfel table, imports lazily loaded modules
    results = {}
    for name, function in implementations.items():
        repeats = args.repeats if name == "radioactive" else 1
        try:
            seconds, values = time_best(function, repeats)
            peak = peak_traced(function)
        except Exception as error:  # an optional implementation failing must not hide the rest
            if name == "radioactive":
                raise
            skipped[name] = f"failed: {type(error).__name__}: {error}"
            continue
        results[name] = (seconds, values, peak)

    base_seconds, base_values, base_peak = results["radioactive"]
    header = (
        f"{'implementation':<18}{'time s':>9}{'vs ours':>9}{'peak MiB':>10}{'peak/masks':>11}"
        f"{'Dice':>11}{'NSD@' + format(tolerance, 'g') + 'mm':>11}{'HD95 mm':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, (seconds, values, peak) in results.items():
        print(
            f"{name:<18}{seconds:>9.3f}{seconds / base_seconds:>8.1f}×{peak / 2**20:>10.1f}"
            f"{peak / mask_bytes:>10.2f}×{values['dice']:>11.6f}{values['nsd']:>11.6f}"
            f"{values['hd95']:>11.4f}"
        )
    for name, why in skipped.items():
        print(f"{name:<18}{why}")
    print()

    status = 0
    targets_apply = not args.quick
    for name, (seconds, values, _) in results.items():
        if name == "radioactive":
            continue
        rel = {k: abs(values[k] - base_values[k]) / max(abs(values[k]), 1e-300) for k in values}
        agreement = ", ".join(f"{k} {v:.1e}" for k, v in rel.items())
        print(f"value agreement with {name} (relative difference): {agreement}")
        if name == "surface-distance":
            speed = seconds / base_seconds
            equal = all(v <= 1e-6 for v in rel.values())
            ok = speed >= SPEED_TARGET and equal
            status |= targets_apply and not ok
            print(
                f"speed target ≥{SPEED_TARGET:g}× surface-distance at equal values: "
                f"{speed:.1f}×, values equal within 1e-6: {equal} -> {'PASS' if ok else 'FAIL'}"
            )
    ratio = base_peak / mask_bytes
    memory_ok = ratio < MEMORY_TARGET
    status |= targets_apply and not memory_ok
    print(
        f"memory target peak < {MEMORY_TARGET:g}× the two masks: {ratio:.2f}× "
        f"({base_peak / 2**20:.1f} MiB traced) -> {'PASS' if memory_ok else 'FAIL'}"
    )
    if not targets_apply:
        print("(--quick: a smoke run; the targets are meant for the full-size volume)")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"process max RSS (whole run, includes data preparation): {max_rss:.0f} MiB")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
