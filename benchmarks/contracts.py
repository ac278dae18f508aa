"""What the input contracts change: LiteMedSAM with its earlier default and with its authors'.

LiteMedSAM (real weights) on the demo suite's CT targets (lung1, lung2, abdomen_crop), with a
tight box on every slice and with three interpolated key boxes, once with the earlier default
intensity rule (``intensity: percentile``: the volume's 0.5–99.5 percentiles, per-slice min-max)
and once with the authors' contract (``intensity: auto``: window level 40 / width 400 HU as
MedSAM's ``pre_CT_MR.py``, and the CVPR 2024 baseline's resize). Both runs go through the same
benchmark runner in the same process; the script prints Dice and NSD (2 mm) per target and the
means, old → new.

With ``--sammed3d``, SAM-Med3D with seeded random weights (no checkpoint can be fetched here) on
the demo abdomen CT, one click in the liver, the earlier adapter (``contract: legacy``) against
the authors' contract: where the crop lands, the encoder input's range, and whether the first
step's dense prompt embedding is the zero-mask one (the authors' path) or ``no_mask_embed``.

    python benchmarks/contracts.py [--out DIR] [--markdown] [--sammed3d] [--no-litemedsam]
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
    parser.add_argument("--sammed3d", action="store_true", help="also the SAM-Med3D check")
    parser.add_argument("--no-litemedsam", action="store_true", help="skip the LiteMedSAM runs")
    args = parser.parse_args()
    if not args.no_litemedsam:
        litemedsam(args)
    if args.sammed3d:
        sammed3d(args)


def litemedsam(args: argparse.Namespace) -> None:
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
        rows.append(
            (
                "mean",
                f"{len(sub)} targets",
                *(f"{means[(m, v)]:.3f}" for m in ("dice", "nsd") for v in (OLD, NEW)),
            )
        )
        _print(rows, args.markdown)
        print()


def sammed3d(args: argparse.Namespace) -> None:
    import warnings

    import numpy as np
    import torch

    from radioactive.data.registry import resolve_datasets
    from radioactive.models import get_model
    from radioactive.prompts.types import Interaction, Point

    (ds,) = [d for d in resolve_datasets("demo") if d.name == "DemoAbdomenOrgansCT"]
    case = ds.case("abdomen_crop")
    liver = next(t for t in case.targets if t.label_name == "liver")
    zyx = tuple(int(v) for v in np.argwhere(liver.mask).mean(axis=0).round())
    if not liver.mask[zyx]:
        zyx = tuple(int(v) for v in np.argwhere(liver.mask)[0])
    click = Interaction(prompts=(Point(zyx),), user_prompts=(Point(zyx),), dof=3, seconds=0.0,
                        source="benchmark")  # fmt: skip
    rows = [("contract", "crop start (z, y, x)", "encoder input range", "dense = zero mask",
             "dense = no_mask_embed", "first-step voxels")]  # fmt: skip
    for contract in ("legacy", "authors"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = get_model("sammed3d", weights="random", device="cpu", contract=contract)
        model.prepare(case.image.array, case.image.spacing_mm, modality="CT")
        seen: dict[str, torch.Tensor] = {}
        enc = model.net.image_encoder.register_forward_pre_hook(
            lambda _m, a, seen=seen: seen.__setitem__("x", a[0].detach().clone())
        )
        dec = model.net.mask_decoder.register_forward_pre_hook(
            lambda _m, a, kw, seen=seen: seen.__setitem__(
                "dense", kw["dense_prompt_embeddings"].clone()
            ),
            with_kwargs=True,
        )
        pred = model.predict(click, None)
        enc.remove()
        dec.remove()
        pe = model.net.prompt_encoder
        with torch.no_grad():
            low = model.crop // 4
            zero = pe(points=None, boxes=None, masks=torch.zeros(1, 1, low, low, low))[1].detach()
            none = pe(points=None, boxes=None, masks=None)[1].detach()
        dense = seen["dense"].detach()
        x = seen["x"]
        start = pred.logits[0].start
        rows.append((
            contract, str(tuple(int(v) for v in start)),
            f"[{float(x.min()):.2f}, {float(x.max()):.2f}]",
            f"max abs diff {float((dense - zero).abs().max()):.3g}",
            f"max abs diff {float((dense - none).abs().max()):.3g}",
            str(int(pred.mask.sum())),
        ))  # fmt: skip
    print("## SAM-Med3D (random weights), one click in the liver of abdomen_crop\n")
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
