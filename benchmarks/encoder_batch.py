"""Encoder batch size on a CPU: one unit's wall time and peak memory, per batch size.

Each batch size runs in its own process (so peak resident memory is that unit's alone): the
model is built, the case prepared, and one box-per-slice unit predicted; the process reports
its wall time, encoder seconds and peak resident memory, and the masks are compared.

    python benchmarks/encoder_batch.py [--model mobilesam] [--case abdomen_crop]
                                       [--target liver] [--batches 1 8]

Target: on a CPU, the default batch size (1) keeps peak memory at most 1.2× and wall time at
most 1.0× those of the smallest batch measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time


def _unit(model_name: str, case_id: str, target_name: str, batch: int | None, out) -> None:
    import numpy as np

    from radioactive.data import resolve_datasets
    from radioactive.models import get_model
    from radioactive.prompts import get_prompter

    dataset, case = next((d, c) for d in resolve_datasets("demo") for c in d
                         if c.case_id == case_id)  # fmt: skip
    target = next(t for t in case.targets if t.name == target_name).mask
    modality = "CT" if "CT" in dataset.name else "MR"
    options = {} if batch is None else {"batch_size": batch}
    model = get_model(model_name, **options)
    t0 = time.perf_counter()
    model.prepare(case.image.array, case.image.spacing_mm, modality)
    pred = model.predict(get_prompter("box_per_slice").initial(target, np.random.default_rng(0)))
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send({"batch": model.batch_size, "wall": wall, "encoder": pred.timings.encoder_s,
              "peak": peak_mib, "mask": np.packbits(pred.mask).tobytes().hex()})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="mobilesam")
    ap.add_argument("--case", default="abdomen_crop")
    ap.add_argument("--target", default="liver")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for batch in [None, *args.batches]:  # None: the engine's default for the device
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_unit, args=(args.model, args.case, args.target, batch, send))
        proc.start()
        while proc.is_alive() and not receive.poll(1.0):
            pass
        if not receive.poll(0):
            proc.join()
            sys.exit(f"the unit with batch size {batch} failed (exit code {proc.exitcode})")
        row = receive.recv()
        proc.join()
        row["label"] = "default" if batch is None else f"batch {batch}"
        rows.append(row)
    print(f"model {args.model}, {args.case} {args.target}, box per slice, one unit per process\n")
    print(f"{'':10} {'batch':>6} {'wall s':>8} {'encoder s':>10} {'peak MiB':>10}")
    for r in rows:
        print(f"{r['label']:10} {r['batch']:6d} {r['wall']:8.1f} {r['encoder']:10.1f} "
              f"{r['peak']:10.0f}")  # fmt: skip
    same = len({r["mask"] for r in rows}) == 1
    base = min(rows[1:], key=lambda r: r["batch"])
    default = rows[0]
    ratio_mem = default["peak"] / base["peak"]
    ratio_wall = default["wall"] / base["wall"]
    print(f"\nidentical masks: {same}; default vs batch {base['batch']}: peak memory "
          f"{ratio_mem:.2f}×, wall {ratio_wall:.2f}×")  # fmt: skip
    largest = max(rows[1:], key=lambda r: r["batch"])
    print(
        f"batch {largest['batch']} vs batch {base['batch']}: peak memory "
        f"{largest['peak'] / base['peak']:.2f}×, wall {largest['wall'] / base['wall']:.2f}×"
    )
    met = ratio_mem <= 1.2 and ratio_wall <= 1.05
    print(
        f"target (default ≤ 1.2× memory, ≤ 1.0× wall of the smallest batch, 5 % timing "
        f"noise allowed): {'met' if met else 'missed'}"
    )
    print(json.dumps({r["label"]: {k: r[k] for k in ("batch", "wall", "peak")} for r in rows}))


if __name__ == "__main__":
    main()
