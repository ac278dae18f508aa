"""GPU benchmark: encoder / decoder latency and peak memory per model; the demo grid wall time.

Per model (default: mobilesam, litemedsam, sam ViT-H, medsam), in fp32 and bf16 (autocast):

* encoder milliseconds per slice at batch 1 and batch 8 (median of ``--repeats`` after
  ``--warmup`` calls; ``torch.cuda.synchronize()`` around every timed call on CUDA);
* decoder milliseconds per prompt: one box, and one positive point where the model takes points;
* peak GPU memory (``torch.cuda.max_memory_allocated``, reset before each model and precision;
  weights included; n/a on CPU).

A model whose checkpoint is not fetched runs with random weights (``weights="random"``) when its
adapter supports that (same architecture, same cost; predictions meaningless) and the table says
so; a model that cannot be built is listed as skipped with the reason. A failure of one model is
reported and the others continue.

Per 3D model (default: sammed3d, sam2_video; nninteractive when its model folder is fetched: it
has no random weights), in fp32 and bf16, on a ``--volume3d`` volume: milliseconds of a first step
(one click, on a freshly prepared volume: ``prepare`` + ``predict``, so per-volume caches are
not reused) and of a refinement step (one more click), and peak GPU memory.

Then the demo experiment (``radioactive demo``'s grid) runs twice on the chosen device, with the
embedding cache on and off (``cache_bytes=0``), each into a fresh temporary results directory.

    python benchmarks/gpu.py --json gpu.json                 # on a CUDA machine
    python benchmarks/gpu.py --models sam medsam --sam-variant vit_b --no-demo
    python benchmarks/gpu.py --demo-cases lung1 brain1       # a smaller demo grid
    python benchmarks/gpu.py --device cpu --quick --no-demo --models litemedsam   # smoke test

bf16 is skipped on CPU unless ``--bf16-on-cpu``. ``--quick``: 1 repeat, 1 warm-up, 128×128
slices, an 8×64×64 volume and SAM2 tiny for the 3D models.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import inspect
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODELS = ("mobilesam", "litemedsam", "sam", "medsam")
DEFAULT_MODELS_3D = ("sammed3d", "sam2_video", "nninteractive")
BATCHES = (1, 8)


# -- helpers ---------------------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def precision(device: Any, dtype: str) -> Iterator[None]:
    import torch

    if dtype == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def median_ms(fn: Callable[[], Any], device: Any, dtype: str, repeats: int, warmup: int) -> float:
    """Median wall milliseconds of ``fn()`` under the precision, synchronised on CUDA."""
    times = []
    with precision(device, dtype):
        for i in range(warmup + repeats):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def model_options(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """``get_model`` options for ``name`` and the weights it runs with ("pretrained"/"random").

    Raises ValueError when the checkpoint is missing and the adapter has no random weights.
    """
    from radioactive.models import backend_class
    from radioactive.models.checkpoints import CHECKPOINTS, checkpoint_status

    cls = backend_class(name)
    params = inspect.signature(cls.__init__).parameters
    opts: dict[str, Any] = {}
    if "device" in params:
        opts["device"] = args.device
    ckpt = getattr(cls, "checkpoint_name", name)
    if name == "sam":
        opts["variant"] = args.sam_variant
        ckpt = f"sam_{args.sam_variant}"
    if name in ("sam2", "sam2_video"):
        opts["variant"] = args.sam2_variant
        from radioactive.models.sam2 import checkpoint_name

        ckpt = checkpoint_name(args.sam2_variant)
    random_ok = "weights" in params
    if args.weights == "random":
        if not random_ok:
            raise ValueError(f"the {name} adapter has no weights='random' option")
        return {**opts, "weights": "random"}, "random"
    if ckpt not in CHECKPOINTS or checkpoint_status(ckpt) == "present":
        return opts, "pretrained" if ckpt in CHECKPOINTS else "none needed"
    if args.weights == "pretrained" or not random_ok:
        why = "--weights pretrained" if random_ok else "the adapter has no random weights"
        raise ValueError(
            f"checkpoint {ckpt!r} is {checkpoint_status(ckpt)} and {why} "
            f"(run `radioactive models fetch {ckpt}`)"
        )
    return {**opts, "weights": "random"}, "random"


def dtypes_for(device: Any, args: argparse.Namespace) -> list[str]:
    """fp32, and bf16 except on CPU (unless ``--bf16-on-cpu``)."""
    return ["fp32", "bf16"] if device.type != "cpu" or args.bf16_on_cpu else ["fp32"]


def free_memory(device: Any) -> None:
    """Collect garbage and return cached GPU memory (before a model and after it)."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def precision_rows(
    base: dict[str, Any],
    dtypes: list[str],
    measure: Callable[[str], dict[str, Any]],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """One row per precision: ``measure(dtype)``'s figures, or the error of that precision."""
    rows = []
    for dtype in dtypes:
        row = {**base, "dtype": dtype}
        try:
            rows.append({**row, "status": "ok", **measure(dtype)})
        except Exception as exc:
            if args.verbose:
                traceback.print_exc()
            rows.append({**row, "status": "error", "error": one_line(exc)})
    return rows


def label_of(name: str, args: argparse.Namespace) -> str:
    if name in ("sam2", "sam2_video"):
        return f"{name} {args.sam2_variant}"
    return f"sam {args.sam_variant}" if name == "sam" else name


# -- per-model timings -----------------------------------------------------------------------------


def bench_precision(
    model: Any, dtype: str, volume: np.ndarray, device: Any, args: argparse.Namespace
) -> dict[str, Any]:
    import torch

    from radioactive.models.slicewise import SlicePrompts

    backend = model.backend
    cuda = device.type == "cuda"
    if cuda:
        free_memory(device)
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {"dtype": dtype}
    for b in args.batches:
        ms = median_ms(lambda b=b: backend.encode(volume[:b]), device, dtype, args.repeats,
                       args.warmup)  # fmt: skip
        row[f"encoder_ms_per_slice_b{b}"] = ms / b
    with precision(device, dtype):
        embedding = backend.encode(volume[:1])[0]
    h, w = volume.shape[1:]
    shape = (int(h), int(w))
    prompts = {"box": SlicePrompts(box=(h // 4, w // 4, 3 * h // 4, 3 * w // 4))}
    if "point" in backend.capabilities.prompt_types:
        prompts["point"] = SlicePrompts(
            points=np.array([[h // 2, w // 2]], np.int64), labels=np.array([1], np.int64)
        )
    for kind in ("box", "point"):
        key = f"decoder_ms_{kind}"
        if kind not in prompts:
            row[key] = None
            continue
        sp = prompts[kind]
        row[key] = median_ms(lambda sp=sp: backend.decode(embedding, sp, shape), device, dtype,
                             args.repeats, args.warmup)  # fmt: skip
    row["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return row


def build_model(name: str, args: argparse.Namespace, device: Any) -> tuple[Any, str]:
    """The model and the weights it runs with; raises what building it raises."""
    from radioactive.models import get_model

    opts, weights = model_options(name, args)
    free_memory(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the random-weights warning
        return get_model(name, **opts), weights


def bench_model(name: str, args: argparse.Namespace, device: Any) -> list[dict[str, Any]]:
    """One row per precision; a skipped or failed model gives rows with ``status`` and ``error``."""
    label = label_of(name, args)
    try:
        model, weights = build_model(name, args, device)
    except Exception as exc:
        return [{"model": label, "status": "skipped", "error": one_line(exc)}]
    try:
        rng = np.random.default_rng(0)
        raw = rng.normal(40, 300, size=(max(args.batches), *args.slice)).astype(np.float32)
        from radioactive.models.slicewise import takes_modality

        norm = model.backend.normalize_volume
        norm_ct = norm(raw, "CT") if takes_modality(norm) else norm(raw)  # a CT-like volume
        volume = np.ascontiguousarray(norm_ct, dtype=np.float32)
        rows = precision_rows(
            {"model": label, "weights": weights},
            dtypes_for(device, args),
            lambda dtype: bench_precision(model, dtype, volume, device, args),
            args,
        )
    finally:
        model = None  # released before the GPU cache is emptied
        free_memory(device)
    return rows


def bench_model_3d(name: str, args: argparse.Namespace, device: Any) -> list[dict[str, Any]]:
    """A 3D model's step times: a first click on a freshly prepared volume, then a refinement
    click (median of ``--repeats`` after ``--warmup``). One row per precision."""
    import torch

    from radioactive.prompts.types import Interaction, Point

    label = label_of(name, args)
    try:
        model, weights = build_model(name, args, device)
    except Exception as exc:
        return [{"model": label, "status": "skipped", "error": one_line(exc)}]
    z, y, x = args.volume3d
    rng = np.random.default_rng(0)
    volume = rng.normal(40, 300, size=(z, y, x)).astype(np.float32)
    volume[z // 4 : 3 * z // 4, y // 4 : 3 * y // 4, x // 4 : 3 * x // 4] += 400
    spacing = (1.5, 1.0, 1.0)

    def step(*points: Point) -> Interaction:
        return Interaction(prompts=points, user_prompts=points, dof=3 * len(points), seconds=0.0,
                           source="benchmark")  # fmt: skip

    first = step(Point((z // 2, y // 2, x // 2)))
    second = step(Point((z // 2 + 1, y // 2 + 4, x // 2 + 4)))

    def measure(dtype: str) -> dict[str, Any]:
        if device.type == "cuda":
            free_memory(device)
            torch.cuda.reset_peak_memory_stats(device)

        from radioactive.models.base import prepare_model

        def cold() -> None:
            prepare_model(model, volume, spacing, "CT")
            model.predict(first, None)

        refine_ms: list[float] = []

        def refine() -> None:
            model.reset()
            prev = model.predict(first, None)
            sync(device)
            t0 = time.perf_counter()
            model.predict(second, prev)
            sync(device)
            refine_ms.append((time.perf_counter() - t0) * 1e3)

        first_ms = median_ms(cold, device, dtype, args.repeats, args.warmup)
        median_ms(refine, device, dtype, args.repeats, args.warmup)
        cuda = device.type == "cuda"
        return {
            "first_step_ms": first_ms,
            "refine_step_ms": statistics.median(refine_ms[args.warmup :]),
            "peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        }

    try:
        rows = precision_rows(
            {"model": label, "weights": weights}, dtypes_for(device, args), measure, args
        )
    finally:
        model = None  # released before the GPU cache is emptied
        free_memory(device)
    return rows


def print_table_3d(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<20}{'weights':<12}{'dtype':<7}{'first step ms':>14}{'refine ms':>11}"
          f"{'peak MiB':>10}")  # fmt: skip
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['model']:<20}{r.get('weights', '-'):<12}{r.get('dtype', '-'):<7}"
                  f"{r['status']}: {r['error']}")  # fmt: skip
            continue
        print(f"{r['model']:<20}{r['weights']:<12}{r['dtype']:<7}{fmt(r['first_step_ms']):>14}"
              f"{fmt(r['refine_step_ms']):>11}{fmt(r['peak_mem_mib']):>10}")  # fmt: skip


# -- the demo grid ---------------------------------------------------------------------------------


def bench_demo(args: argparse.Namespace) -> list[dict[str, Any]]:
    from radioactive.experiments import experiment_path
    from radioactive.models import backend_class
    from radioactive.runner.config import load_config
    from radioactive.runner.run import run_experiment

    config = load_config(experiment_path("demo"))
    if args.demo_cases:
        config = config.model_copy(
            update={"datasets": [d.model_copy(update={"cases": list(args.demo_cases)})
                                 for d in config.datasets]}
        )  # fmt: skip
    if args.demo_models:
        config = config.model_copy(
            update={"models": [m for m in config.models if m.name in args.demo_models]}
        )
    rows = []
    for label, extra in (("cache on", {}), ("cache off", {"cache_bytes": 0})):
        models = []
        for m in config.models:
            opts = {**m.options, **extra}
            if "device" in inspect.signature(backend_class(m.name).__init__).parameters:
                opts["device"] = args.device
            models.append(m.model_copy(update={"options": opts}))
        cfg = config.model_copy(update={"models": models, "output": None})
        row: dict[str, Any] = {"run": label}
        try:
            with tempfile.TemporaryDirectory(prefix="radioactive-gpu-bench-") as tmp:
                t0 = time.perf_counter()
                report = run_experiment(cfg, Path(tmp) / "results")
                row.update(
                    status="ok", wall_s=time.perf_counter() - t0, jobs=report.jobs,
                    units=report.units_written, units_failed=report.units_failed,
                    first_errors=report.errors[:3],
                )  # fmt: skip
        except Exception as exc:
            if args.verbose:
                traceback.print_exc()
            row.update(status="error", error=one_line(exc))
        rows.append(row)
        print(f"  demo, {label}: " + (f"{row['wall_s']:.1f} s, {row['units']} units "
              f"({row['units_failed']} failed)" if row["status"] == "ok" else row["error"]),
              flush=True)  # fmt: skip
    return rows


# -- output ----------------------------------------------------------------------------------------


def environment(device: Any) -> dict[str, Any]:
    import torch

    env = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }
    with contextlib.suppress(Exception):
        from radioactive import __version__

        env["radioactive"] = __version__
    return env


def fmt(v: Any, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def print_table(rows: list[dict[str, Any]], batches: tuple[int, ...]) -> None:
    enc = [f"enc ms/sl b{b}" for b in batches]
    head = ["model", "weights", "dtype", *enc, "dec ms box", "dec ms point", "peak MiB"]
    widths = [12, 11, 5, *[13] * len(enc), 10, 12, 9]
    print("  ".join(f"{h:<{w}}" if i < 3 else f"{h:>{w}}" for i, (h, w) in
                    enumerate(zip(head, widths, strict=True))))  # fmt: skip
    notes = []
    for r in rows:
        if r["status"] != "ok":
            notes.append(f"{r['model']} {r.get('dtype', '')}".strip() + f" {r['status']}: "
                         f"{r['error']}")  # fmt: skip
            cells = [r["model"], r.get("weights", "-"), r.get("dtype", "-"), r["status"]]
            print("  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=False)))
            continue
        vals = [r[f"encoder_ms_per_slice_b{b}"] for b in batches]
        vals += [r["decoder_ms_box"], r["decoder_ms_point"], r["peak_mem_mib"]]
        cells = [f"{r['model']:<12}", f"{r['weights']:<11}", f"{r['dtype']:<5}"]
        cells += [f"{fmt(v):>{w}}" for v, w in zip(vals, widths[3:], strict=True)]
        print("  ".join(cells))
    if any(r.get("weights") == "random" for r in rows):
        notes.append("random = weights='random' (checkpoint not fetched): same architecture and "
                     "cost, meaningless predictions")  # fmt: skip
    for n in notes:
        print(f"  note: {n}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--models3d", nargs="*", default=list(DEFAULT_MODELS_3D),
                    help="3D models timed per step (none: skip)")  # fmt: skip
    ap.add_argument("--volume3d", type=int, nargs=3, default=(64, 256, 256),
                    metavar=("Z", "Y", "X"), help="volume of the 3D-model timing")  # fmt: skip
    ap.add_argument("--sam2-variant", default="hiera_l",
                    choices=("hiera_t", "hiera_s", "hiera_b+", "hiera_l"),
                    help="SAM2 variant of sam2 and sam2_video (hiera_l, the paper's)")  # fmt: skip
    ap.add_argument("--sam-variant", default="vit_h", choices=("vit_b", "vit_l", "vit_h"))
    ap.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if any)")
    ap.add_argument("--weights", default="auto", choices=("auto", "random", "pretrained"),
                    help="auto: the checkpoint if fetched, else random weights where "
                    "supported")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=10, help="timed calls (median is kept)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    ap.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    ap.add_argument("--slice", type=int, nargs=2, default=(512, 512), metavar=("Y", "X"),
                    help="input slice size before the model's own resize (512 512)")  # fmt: skip
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat, 1 warm-up, small inputs, SAM2 tiny (smoke test)")  # fmt: skip
    ap.add_argument("--bf16-on-cpu", action="store_true")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo grid")
    ap.add_argument("--demo-cases", nargs="+", default=None, help="demo case ids (default all)")
    ap.add_argument("--demo-models", nargs="+", default=None,
                    help="restrict the demo grid's models (default all)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.slice = 1, 1, (128, 128)
        args.volume3d = (8, 64, 64)
        args.sam2_variant = "hiera_t"
    args.batches = tuple(sorted(set(args.batches)))
    args.slice = tuple(args.slice)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available here: use --device cpu (e.g. with --quick)")
    env = environment(device)
    print(f"device {env['device']} ({env['device_name']}), torch {env['torch']}, "
          f"CUDA {env['cuda']}, {env['date']}")  # fmt: skip
    print(f"slices {args.slice[0]}×{args.slice[1]}, batches {list(args.batches)}, median of "
          f"{args.repeats} after {args.warmup} warm-up\n", flush=True)  # fmt: skip
    rows: list[dict[str, Any]] = []
    rows3d: list[dict[str, Any]] = []
    demo: list[dict[str, Any]] | None = None

    def save() -> None:
        """Write what is measured so far: a run cut short keeps its finished sections."""
        if not args.json:
            return
        out = {
            "environment": env,
            "settings": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in vars(args).items() if k != "json"},
            "models": rows,
            "models_3d": rows3d,
            "demo": demo,
        }  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")

    for name in args.models:
        print(f"  {label_of(name, args)} …", flush=True)
        model_rows = bench_model(name, args, device)
        rows.extend(model_rows)
        save()
    print()
    print_table(rows, args.batches)
    if args.models3d:
        z, y, x = args.volume3d
        print(f"\n3D models, {z}×{y}×{x} volume:", flush=True)
        for name in args.models3d:
            print(f"  {name} …", flush=True)
            rows3d.extend(bench_model_3d(name, args, device))
            save()
        print_table_3d(rows3d)
    if not args.no_demo:
        print("\ndemo experiment grid (embedding cache on / off):", flush=True)
        demo = bench_demo(args)
        on, off = demo
        if on["status"] == off["status"] == "ok" and on["wall_s"] > 0:
            print(f"  cache speed-up on the demo grid: {off['wall_s'] / on['wall_s']:.2f}×")
    save()
    if args.json:
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
