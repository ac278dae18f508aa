"""How much time the harness (prompting, metrics, storage) costs around the models.

1. Throughput with a (nearly) zero-cost model: the filled prompt box on the demo suite's lesions
   and organs with several prompters — units and steps per second of everything but the model.
2. The overhead share of a real run: for a results directory (default ``results/demo``, written by
   ``radioactive demo``), the share of the run's wall time not spent in model encoders and
   decoders.

    python benchmarks/harness.py [--results results/demo]

Target: harness overhead under 10 % of the total time with a real model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ZERO_COST = """
name: harness
datasets:
  - name: demo
    datasets: [DemoLungLesionsCT, DemoBrainTumoursMR, DemoAbdomenOrgansCT, DemoAbdomenOrgansMR]
models:
  - name: filled_box
prompters: [box_per_slice, box_interpolation(k=3), box_per_slice_from_3d_box, box_3d]
seeds: [0, 1]
"""


def throughput() -> None:
    import yaml

    from radioactive.runner.config import config_from_dict
    from radioactive.runner.run import run_experiment
    from radioactive.runner.store import ResultStore

    config = config_from_dict(yaml.safe_load(ZERO_COST))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = run_experiment(config, Path(tmp))
        wall = time.perf_counter() - t0
        with ResultStore(Path(tmp), read_only=True) as store:
            steps = store.steps()
    model_s = float((steps["encoder_s"].fillna(0) + steps["decoder_s"].fillna(0)).sum())
    print("1. harness throughput with the filled-box model (zero-cost model)")
    print(f"   {report.units_written} units, {len(steps)} steps in {wall:.1f} s: "
          f"{report.units_written / wall:.1f} units/s, {len(steps) / wall:.1f} steps/s "
          f"(model time {model_s:.2f} s)")  # fmt: skip


def overhead(results: Path) -> None:
    from radioactive.runner.store import ResultStore

    print(f"\n2. overhead share of the run in {results}")
    if not (results / "results.duckdb").exists():
        print("   no results there: run `radioactive demo` first")
        return
    with ResultStore(results, read_only=True) as store:
        steps = store.steps()
        units = store.units()
        runs = store.runs()
    wall_units = float(units["wall_s"].sum())
    model_s = float((steps["encoder_s"].fillna(0) + steps["decoder_s"].fillna(0)).sum())
    spans = (runs["finished_at"] - runs["started_at"]).dt.total_seconds().dropna()
    run_wall = float(spans.sum()) if len(spans) else float("nan")
    print(f"   run wall time {run_wall:.1f} s over {len(runs)} run(s); time inside units "
          f"{wall_units:.1f} s; model encoder + decoder {model_s:.1f} s")  # fmt: skip
    for model, grp in steps.groupby("model"):
        enc, dec = grp["encoder_s"].fillna(0).sum(), grp["decoder_s"].fillna(0).sum()
        print(f"   {model:<14} encoder {enc:8.1f} s  decoder {dec:8.1f} s")
    share = 1 - model_s / run_wall
    real = steps[steps["model"].isin(["mobilesam", "litemedsam"])]
    real_units = units[units["model"].isin(["mobilesam", "litemedsam"])]
    real_model = float((real["encoder_s"].fillna(0) + real["decoder_s"].fillna(0)).sum())
    real_wall = float(real_units["wall_s"].sum())
    print(f"   harness share of the whole run (all models, incl. weight-free baselines): "
          f"{share:.1%}, {run_wall - model_s:.1f} s (target < 10 %: "
          f"{'met' if share < 0.10 else 'missed'})")  # fmt: skip
    if real_wall > 0:
        real_share = 1 - real_model / real_wall
        print(f"   harness share inside the units of the real models: {real_share:.1%} "
              f"(target < 10 %: {'met' if real_share < 0.10 else 'missed'})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--results", type=Path, default=Path("results/demo"))
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if not args.skip_throughput:
        throughput()
    overhead(args.results)


if __name__ == "__main__":
    main()
