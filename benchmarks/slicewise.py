"""The embedding cache of the slice-wise engine: the same grid with the cache on and off.

Grid: 2 prompters × (1 initial prompt + 5 corrections by a simulated user) on one target of the
demo suite, run once with the embedding cache and once without (``cache_bytes=0``). Prints wall
time, encoder calls, encoder / decoder seconds and the speed-up; checks that both runs give the
same masks.

    python benchmarks/slicewise.py [--model mobilesam] [--case brain1] [--target lesion#2]
                                   [--user random_error_per_slice]

Target: ≥ 4× faster with the cache on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

#: models that take the corrective points of the simulated users, and the two prompters used
PROMPTERS = {
    "mobilesam": ("box_per_slice", "center_point_per_slice"),
    "random_walker": ("box_per_slice", "center_point_per_slice"),
}


def run_grid(model, image, spacing, target, prompters, user, steps: int):
    from radioactive.prompts import get_prompter

    model.prepare(image, spacing)
    masks = []
    t0 = time.perf_counter()
    for spec in prompters:
        model.reset()
        rng = np.random.default_rng(0)
        inter = get_prompter(spec).initial(target, rng)
        history = [inter]
        pred = model.predict(inter, None)
        masks.append(pred.mask)
        for _ in range(steps):
            fix = user.correct(target, pred.mask, history, rng)
            history.append(fix)
            if not fix.is_empty:
                pred = model.predict(fix, pred)
            masks.append(pred.mask)
    return time.perf_counter() - t0, masks


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="mobilesam", choices=sorted(PROMPTERS))
    ap.add_argument("--case", default="brain1")
    ap.add_argument("--target", default="lesion#2")
    ap.add_argument("--user", default="random_error_per_slice")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()

    from radioactive.data import resolve_datasets
    from radioactive.errors import RadioactiveError
    from radioactive.metrics import dice
    from radioactive.models import get_model
    from radioactive.prompts import get_user

    try:
        datasets = resolve_datasets("demo")
        model_cached = get_model(args.model)
        model_plain = get_model(args.model, cache_bytes=0)
    except RadioactiveError as exc:
        sys.exit(f"{exc}\n(prepare the demo with `radioactive datasets prepare demo` and fetch "
                 f"weights with `radioactive models fetch {args.model}`)")  # fmt: skip
    case = next(c for d in datasets for c in d if c.case_id == args.case)
    target = next(t for t in case.targets if t.name == args.target).mask
    user = get_user(args.user)
    prompters = PROMPTERS[args.model]
    print(
        f"model {args.model}, case {args.case} {args.target} ({int(target.sum())} voxels on "
        f"{int(target.any(axis=(1, 2)).sum())} slices), prompters {', '.join(prompters)}, "
        f"user {user.spec}, {args.steps} corrections each"
    )
    rows = {}
    for label, model in (("cache on", model_cached), ("cache off", model_plain)):
        wall, masks = run_grid(
            model, case.image.array, case.image.spacing_mm, target, prompters, user, args.steps
        )
        rows[label] = (wall, masks, model.totals)
    print(f"\n{'':10} {'wall s':>8} {'encoder calls':>14} {'encoder s':>10} {'decoder s':>10}")
    for label, (wall, _, t) in rows.items():
        enc, dec = t.encoder_s, t.decoder_s
        print(f"{label:10} {wall:8.2f} {t.encoder_calls:14d} {enc:10.2f} {dec:10.2f}")
    on, off = rows["cache on"], rows["cache off"]
    same = all(np.array_equal(a, b) for a, b in zip(on[1], off[1], strict=True))
    final = [dice(m, target) for m in on[1][args.steps :: args.steps + 1]]
    print(
        f"\nspeed-up with the cache: {off[0] / on[0]:.1f}× wall time, "
        f"{off[2].encoder_calls / max(1, on[2].encoder_calls):.1f}× fewer encoder calls; "
        f"hit rate {on[2].cache_hit_rate:.0%}; identical masks: {same}; "
        f"final Dice per prompter: {', '.join(f'{d:.3f}' for d in final)}"
    )
    print(f"target ≥ 4× on CPU: {'met' if off[0] / on[0] >= 4 else 'missed'}")


if __name__ == "__main__":
    main()
