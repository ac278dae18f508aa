"""Reduced precision and compilation against fp32: the Dice they change and the time they save.

The real demo models run box per slice on demo targets at fp32 and at each reduced precision
(``precision`` engine option: ``torch.autocast`` around encoder and decoder), and with
``--compile`` also at fp32 with the image encoder compiled (``compile`` engine option:
``torch.compile``; its wall time includes the compilation). Prints, per model and variant, the
wall time and the mean and largest |ΔDice| against fp32 over the targets.

    python benchmarks/precision.py [--models mobilesam litemedsam] [--precisions bf16]
                                   [--compile] [--cases lung1 brain1 abdomen_crop]

On a CPU reduced precision is usually slower (it is meant for GPUs): the figure that matters here
is |ΔDice|.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=["mobilesam", "litemedsam"])
    ap.add_argument("--precisions", nargs="+", default=["bf16"])
    ap.add_argument("--cases", nargs="+", default=["lung1", "brain1", "abdomen_crop"])
    ap.add_argument("--device", default=None)
    ap.add_argument("--compile", action="store_true", help="add fp32 with a compiled encoder")
    args = ap.parse_args()

    import numpy as np

    from radioactive.data import resolve_datasets
    from radioactive.errors import RadioactiveError
    from radioactive.metrics import dice
    from radioactive.models import get_model
    from radioactive.models.base import prepare_model
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.prompts import get_prompter

    try:
        for m in args.models:
            fetch_checkpoint(m)
        datasets = resolve_datasets("demo")
    except RadioactiveError as exc:
        sys.exit(f"{exc}\n(prepare the demo and fetch the weights first)")
    cases = [(d, c) for d in datasets for c in d if c.case_id in args.cases]
    prompter = get_prompter("box_per_slice")
    print(f"{'model':12} {'variant':14} {'wall s':>8} {'mean |ΔDice|':>13} {'max |ΔDice|':>12} "
          f"{'targets':>8}")  # fmt: skip
    for name in args.models:
        scores: dict[str, list[float]] = {}
        variants = [("fp32", False), *((p, False) for p in args.precisions)]
        if args.compile:
            variants.append(("fp32", True))
        for precision, compiled in variants:
            options: dict[str, object] = {"precision": precision, "compile": compiled}
            label = f"{precision}+compile" if compiled else precision
            if args.device:
                options["device"] = args.device
            model = get_model(name, **options)
            values = []
            t0 = time.perf_counter()
            for dataset, case in cases:
                modality = "CT" if "CT" in dataset.name else "MR"
                prepare_model(model, case.image.array, case.image.spacing_mm, modality)
                for t in case.targets[:4]:
                    model.reset()
                    inter = prompter.initial(t.mask, np.random.default_rng(0))
                    values.append(dice(model.predict(inter).mask, t.mask))
            wall = time.perf_counter() - t0
            scores[label] = values
            if label == "fp32":
                print(f"{name:12} {label:14} {wall:8.1f} {'—':>13} {'—':>12} {len(values):8d}")
                continue
            diff = np.abs(np.asarray(values) - np.asarray(scores["fp32"]))
            print(f"{name:12} {label:14} {wall:8.1f} {diff.mean():13.4f} {diff.max():12.4f} "
                  f"{len(values):8d}")  # fmt: skip


if __name__ == "__main__":
    main()
