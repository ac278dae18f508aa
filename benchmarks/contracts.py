"""What the input contracts change: LiteMedSAM with its earlier default and with its authors'.

LiteMedSAM (real weights) on the demo suite's CT targets (lung1, lung2, abdomen_crop), with a
tight box on every slice and with three interpolated key boxes, once with the earlier default
intensity rule (``intensity: percentile``: the volume's 0.5–99.5 percentiles, per-slice min-max)
and once with the authors' contract (``intensity: auto``: window level 40 / width 400 HU as
MedSAM's ``pre_CT_MR.py``, and the CVPR 2024 baseline's resize). Both runs go through the same
benchmark runner in the same process; the script prints Dice and NSD (2 mm) per target and the
means, old → new.

    python benchmarks/contracts.py [--out DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

CONFIG = """
name: contracts
datasets:
  - name: demo
    datasets: [DemoLungLesionsCT, DemoAbdomenOrgansCT]
    cases: [lung1, lung2, abdomen_crop]
models:
  - name: litemedsam
    label: earlier default (percentile)
    options: {intensity: percentile}
  - name: litemedsam
    label: authors' contract (auto)
prompters: [box_per_slice, box_interpolation(k=3)]
seeds: [0]
metrics:
  nsd_tolerance_mm: 2.0
executor:
  kind: inline
"""

OLD, NEW = "earlier default (percentile)", "authors' contract (auto)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: temp)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()

    from radioactive.runner.config import config_from_dict
    from radioactive.runner.run import run_experiment
    from radioactive.runner.store import ResultStore

    config = config_from_dict(yaml.safe_load(CONFIG))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        t0 = time.perf_counter()
        report = run_experiment(config, out)
        wall = time.perf_counter() - t0
        with ResultStore(out, read_only=True) as store:
            steps = store.steps()
    if report.units_failed:
        raise SystemExit("failed units:\n" + "\n".join(report.errors))
    final = steps.sort_values("step").groupby("unit_id").tail(1)
    table = final.pivot_table(
        index=["prompter", "case_id", "target"], columns="model", values=["dice", "nsd"]
    )
    print(f"{report.units_written} units in {wall:.0f} s\n")
    for prompter, sub in table.groupby(level="prompter"):
        print(f"## {prompter}\n")
        rows = [("case", "target", "Dice old", "Dice new", "NSD old", "NSD new")]
        for (_, case, target), r in sub.iterrows():
            rows.append((case, target, *(f"{r[(m, v)]:.3f}" for m in ("dice", "nsd")
                                          for v in (OLD, NEW))))  # fmt: skip
        means = sub.mean()
        rows.append(("mean", f"{len(sub)} targets",
                     *(f"{means[(m, v)]:.3f}" for m in ("dice", "nsd") for v in (OLD, NEW))))
        _print(rows, args.markdown)
        print()


def _print(rows: list[tuple[str, ...]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(rows[0]) + " |")
        print("|" + "---|" * len(rows[0]))
        for r in rows[1:]:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
