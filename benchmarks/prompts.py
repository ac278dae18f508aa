"""Time every prompter (and simulated user) on a real CT-sized target.

The target is the liver of the demo suite's abdominal CT, resampled with nearest neighbour to
about 300×512×512 voxels (a typical full-resolution CT). Prompters that need a model get an oracle
"predict this slice" (the target slice itself), so their time is the prompter's own overhead.

    python benchmarks/prompts.py [--demo-dir DIR] [--repeats 7] [--shape 300 512 512]

Prints the median wall time per prompter and whether it meets the 50 ms target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

TARGET_MS = 50.0


def load_target(demo_dir: Path | None, shape: tuple[int, int, int]) -> np.ndarray:
    from radioactive.data import resolve_datasets
    from radioactive.errors import RadioactiveError

    try:
        datasets = resolve_datasets(demo_dir if demo_dir else "demo")
    except RadioactiveError as exc:
        sys.exit(f"{exc}\nRun `radioactive datasets prepare demo` first.")
    ds = next(d for d in datasets if d.name == "DemoAbdomenOrgansCT")
    case = ds.case("abdomen")
    liver = next(t for t in case.targets if t.name == "liver").mask
    idx = [
        np.minimum((np.arange(n) * s / n).astype(int), s - 1)
        for n, s in zip(shape, liver.shape, strict=True)
    ]
    return np.ascontiguousarray(liver[np.ix_(*idx)])


def time_call(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--demo-dir", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512))
    args = ap.parse_args()

    from radioactive.prompts import PROMPTERS, USERS, get_prompter, get_user, static, users

    del static, users  # imported to register the prompters and users

    target = load_target(args.demo_dir, tuple(args.shape))
    slices = int(target.any(axis=(1, 2)).sum())
    print(
        f"target: liver resampled to {target.shape} (z, y, x), {int(target.sum()):,} voxels on "
        f"{slices} slices; median of {args.repeats} runs\n"
    )

    def oracle(z, prompts):
        return target[z]

    print(f"{'prompter':<40} {'median ms':>10} {'dof':>6}  target <{TARGET_MS:.0f} ms")
    worst = 0.0
    for name in PROMPTERS:
        p = get_prompter(name)
        rng = np.random.default_rng(0)
        ms = time_call(lambda p=p, rng=rng: p.initial(target, rng, oracle), args.repeats)
        dof = p.initial(target, np.random.default_rng(0), oracle).dof
        note = "(oracle model)" if p.needs_model else ("ok" if ms < TARGET_MS else "SLOW")
        if not p.needs_model:
            worst = max(worst, ms)
        print(f"{p.spec:<40} {ms:>10.1f} {dof:>6}  {note}")

    # a plausible imperfect prediction: the target shifted by 4 voxels in x and y
    pred = np.zeros_like(target)
    pred[:, 4:, 4:] = target[:, :-4, :-4]
    box = get_prompter("box_per_slice").initial(target, np.random.default_rng(0))
    print(f"\n{'simulated user':<40} {'median ms':>10}")
    for name in USERS:
        u = get_user(name)
        rng = np.random.default_rng(0)
        ms = time_call(lambda u=u, rng=rng: u.correct(target, pred, [box], rng), args.repeats)
        print(f"{u.spec:<40} {ms:>10.1f}")
    print(
        f"\nslowest prompter without a model: {worst:.1f} ms "
        f"({'meets' if worst < TARGET_MS else 'misses'} the {TARGET_MS:.0f} ms target)"
    )


if __name__ == "__main__":
    main()
