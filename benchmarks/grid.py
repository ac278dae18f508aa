"""The paper's static 2D grid for one real model, against a naive engine, in the same run.

Every pair of the ``static_2d`` family (points and boxes per slice, interpolation, propagation)
runs on the targets of some demo cases, twice: with the engine as configured (embedding cache,
the device's encoder and decoder batching) and with a naive engine (no cache: every prompted
slice encoded again for every unit, one slice per encoder and decoder call). Prints, per engine,
the encoder and decoder calls, their seconds, the wall time and the harness share (everything
but the encoder and decoder: prompting, metrics), the ratios, and whether the Dice agree.

    python benchmarks/grid.py [--model mobilesam] [--cases lung1 brain1] [--targets 2]
"""

from __future__ import annotations

import argparse
import sys
import time


def run_grid(model, cases, pairs, n_targets):
    import numpy as np

    from radioactive.models.base import StepTimings, prepare_model
    from radioactive.prompts import get_prompter
    from radioactive.session import run_trajectory

    totals = StepTimings()
    dice = []
    t0 = time.perf_counter()
    for dataset, case in cases:
        modality = "CT" if "CT" in dataset.name else "MR"
        prepare_model(model, case.image.array, case.image.spacing_mm, modality)
        for target in case.targets[:n_targets]:
            for spec in pairs:
                steps = run_trajectory(model, target.mask, case.image.spacing_mm,
                                       get_prompter(spec), np.random.default_rng(0))  # fmt: skip
                for s in steps:
                    totals.add(s.timings)
                dice.append(steps[-1].dice)
    return time.perf_counter() - t0, totals, dice


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="mobilesam")
    ap.add_argument("--cases", nargs="+", default=["lung1", "brain1"])
    ap.add_argument("--targets", type=int, default=2, help="targets per case")
    args = ap.parse_args()

    import numpy as np

    from radioactive.data import resolve_datasets
    from radioactive.errors import RadioactiveError
    from radioactive.models import get_model
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.runner.catalogue import FAMILIES

    try:
        if args.model in ("mobilesam", "litemedsam"):
            fetch_checkpoint(args.model)
        datasets = resolve_datasets("demo")
        engines = {"engine": get_model(args.model),
                   "naive": get_model(args.model, cache_bytes=0, batch_size=1,
                                      decode_batch_size=1)}  # fmt: skip
    except RadioactiveError as exc:
        sys.exit(f"{exc}\n(prepare the demo and fetch the weights first)")
    from radioactive.prompts import get_prompter

    kinds = engines["engine"].capabilities.prompt_types
    pairs = [p.prompter for p in FAMILIES["static_2d"]
             if get_prompter(p.prompter).prompt_kinds() <= kinds]  # fmt: skip
    cases = [(d, c) for d in datasets for c in d if c.case_id in args.cases]
    rows = {}
    for label, model in engines.items():
        rows[label] = run_grid(model, cases, pairs, args.targets)
    units = len(rows["engine"][2])
    print(f"model {args.model}; {len(pairs)} static 2D prompters × {units // len(pairs)} targets "
          f"({', '.join(args.cases)}) = {units} units\n")  # fmt: skip
    print(f"{'':8} {'wall s':>8} {'encoder calls':>14} {'encoder s':>10} {'decoder calls':>14} "
          f"{'decoder s':>10} {'harness':>8}")  # fmt: skip
    for label, (wall, t, _) in rows.items():
        harness = max(0.0, wall - t.encoder_s - t.decoder_s) / wall
        print(f"{label:8} {wall:8.1f} {t.encoder_calls:14d} {t.encoder_s:10.1f} "
              f"{t.slices_inferred:14d} {t.decoder_s:10.1f} {harness:8.1%}")  # fmt: skip
    (w1, t1, d1), (w0, t0, d0) = rows["engine"], rows["naive"]
    same = np.allclose(d1, d0, atol=1e-6)
    print(f"\nnaive / engine: wall {w0 / w1:.1f}×, encoder calls "
          f"{t0.encoder_calls / max(1, t1.encoder_calls):.1f}×, decoder seconds "
          f"{t0.decoder_s / max(1e-9, t1.decoder_s):.2f}×; Dice equal: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
