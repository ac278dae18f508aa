"""Batched decoding: the prompted slices of one step in one decoder call, against one by one.

SAM 2.1 (Hiera-T by default, seeded random weights unless its checkpoint is fetched) decodes
``--slices`` slices, each with its own box, once one slice per call and once in one batch; the
embeddings are random tensors of the encoder's shapes (decoding does not depend on how they were
made). Prints both times, their ratio and the largest difference of the logits.

    python benchmarks/decode_batch.py [--slices 16] [--size 512] [--variant hiera_t]

Target: ≥ 2× less decoder time on a CPU (≥ 5× on a GPU), with the same masks.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--size", type=int, default=512, help="slice height and width")
    ap.add_argument("--variant", default="hiera_t")
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from radioactive.models.sam2 import SAM2Backend, SAM2Embedding
    from radioactive.models.slicewise import SlicePrompts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            backend = SAM2Backend(variant=args.variant, device=args.device)
            weights = "pretrained"
        except Exception:
            backend = SAM2Backend(variant=args.variant, weights="random", device=args.device)
            weights = "random"
    dev = backend.device

    def embedding(i: int) -> SAM2Embedding:
        gen = torch.Generator().manual_seed(i)
        image = torch.randn(256, 64, 64, generator=gen)
        high = (torch.randn(32, 256, 256, generator=gen), torch.randn(64, 128, 128, generator=gen))
        return SAM2Embedding(image.to(dev), tuple(h.to(dev) for h in high))

    n, size = args.slices, args.size
    embeddings = [embedding(i) for i in range(n)]
    prompts = [SlicePrompts(box=(size // 5 + i, size // 4, size // 2 + i, 2 * size // 3))
               for i in range(n)]  # fmt: skip
    shape = (size, size)

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            out = fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), out

    one, singles = timed(lambda: [backend.decode(e, p, shape) for e, p in
                                  zip(embeddings, prompts, strict=True)])  # fmt: skip
    batch, batched = timed(lambda: backend.decode_batch(embeddings, prompts, shape))
    pairs = list(zip(singles, batched, strict=True))
    diff = max(float(np.abs(a[0] - b[0]).max()) for a, b in pairs)
    flips = sum(int(((a[0] > 0) != (b[0] > 0)).sum()) for a, b in pairs)
    print(f"SAM 2.1 {args.variant} ({weights} weights) on {dev}: {n} slices of {size}², a box each")
    print(
        f"one by one {one:.3f} s, one batch {batch:.3f} s: {one / batch:.2f}× less decoder "
        f"time; largest logit difference {diff:.2e}, mask pixels that differ {flips}"
    )
    target = 5.0 if dev.type == "cuda" else 2.0
    print(f"target ≥ {target:g}×: {'met' if one / batch >= target else 'missed'}")


if __name__ == "__main__":
    main()
