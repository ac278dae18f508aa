"""The persistent embedding cache: a grid run cold, then again on a warm cache.

The same experiment (the real demo models on demo cases, static prompters) runs twice into two
results folders that share one embedding cache folder: the first run encodes and stores every
slice, the second loads them. A third run adds a prompter, as a user extending a grid would.
Prints, per run, the wall time, encoder calls, encoder and decoder seconds, and the cache's size;
checks that the warm runs give the cold run's Dice.

    python benchmarks/embedding_store.py [--cases lung1 brain1 abdomen_crop] [--models mobilesam]

Target: 0 encoder calls on a warm cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
datasets:
  - name: demo
    cases: [{cases}]
    max_targets_per_case: 4
models: [{models}]
prompters: [{prompters}]
embedding_cache: {cache}
"""


def run(tmp: Path, name: str, cases: list[str], models: list[str], prompters: list[str]):
    from radioactive.runner.config import load_config
    from radioactive.runner.run import run_experiment
    from radioactive.runner.store import ResultStore

    cfg = tmp / f"{name}.yaml"
    cfg.write_text(CONFIG.format(cases=", ".join(cases),
                                 models=", ".join(f"{{name: {m}}}" for m in models),
                                 prompters=", ".join(prompters), cache=tmp / "embeddings"),
                   encoding="utf-8")  # fmt: skip
    t0 = time.perf_counter()
    run_experiment(load_config(cfg), tmp / name)
    wall = time.perf_counter() - t0
    with ResultStore(tmp / name, read_only=True) as store:
        steps = store.steps()
    return wall, steps


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=["lung1", "brain1", "abdomen_crop"])
    ap.add_argument("--models", nargs="+", default=["mobilesam", "litemedsam"])
    args = ap.parse_args()

    from radioactive.errors import RadioactiveError
    from radioactive.models.checkpoints import fetch_checkpoint
    from radioactive.models.embedding_store import DiskEmbeddingCache

    try:
        for m in args.models:
            fetch_checkpoint(m)
    except RadioactiveError as exc:
        sys.exit(f"{exc}\n(fetch the weights with `radioactive models fetch NAME`)")
    first = ["box_per_slice", "box_interpolation(k=3)"]
    more = [*first, "box_propagation"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = []
        for name, prompters in (("cold", first), ("warm", first), ("warm + prompter", more)):
            wall, steps = run(tmp, name.replace(" + ", "_"), args.cases, args.models, prompters)
            rows.append((name, wall, steps))
        size = DiskEmbeddingCache(tmp / "embeddings").nbytes()
    print(f"models {', '.join(args.models)}; cases {', '.join(args.cases)}; prompters "
          f"{', '.join(first)} (+ box_propagation in the third run)\n")  # fmt: skip
    print(f"{'run':18} {'units':>6} {'wall s':>8} {'encoder calls':>14} {'encoder s':>10} "
          f"{'decoder s':>10} {'cache hits':>11}")  # fmt: skip
    for name, wall, steps in rows:
        print(f"{name:18} {steps['unit_id'].nunique():6d} {wall:8.1f} "
              f"{int(steps['encoder_calls'].sum()):14d} {steps['encoder_s'].sum():10.1f} "
              f"{steps['decoder_s'].sum():10.1f} {int(steps['cache_hits'].sum()):11d}")  # fmt: skip
    cold, warm = rows[0][2], rows[1][2]
    key = ["model", "prompter", "case_id", "target", "step"]
    same = (cold.set_index(key)["dice"].sort_index()
            .equals(warm.set_index(key)["dice"].sort_index()))  # fmt: skip
    print(f"\nembedding cache on disk: {size / 1024**2:.0f} MiB; warm Dice equal to cold: {same}")
    warm_calls = sum(int(s["encoder_calls"].sum()) for _, _, s in rows[1:])
    print(
        f"target 0 encoder calls on a warm cache: {'met' if warm_calls == 0 else 'missed'} "
        f"({warm_calls}); wall time cold / warm: {rows[0][1] / rows[1][1]:.1f}×"
    )


if __name__ == "__main__":
    main()
