"""Linear cross-entropy against the naive ``F.cross_entropy(h @ W.T, y)``, forward plus backward.

``python benchmarks/linear_cross_entropy.py [--tokens 4096] [--hidden 512 2048]
[--vocab 128256] [--dtype float32 bfloat16] [--repeat 3] [--threads 2]``

For each shape and dtype, both implementations compute the loss and the
gradients of `h` and `W` (leaves that require grad). Reported: the best of
`--repeat` wall times, and the peak extra memory of one call
(:mod:`nllkit.bench._memory`: peak RSS minus RSS before the call) both as
measured and without the gradients themselves (``N x D + V x D`` elements,
which any implementation must return), the "working" memory the goal is about.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import nllkit
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    import nllkit

import torch
import torch.nn.functional as F

from nllkit.bench._memory import probe
from nllkit.torch._linear import linear_cross_entropy

_MIB = 1024.0 * 1024.0


def _naive(h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(h @ w.T, y)


def _step(
    loss_fn: Callable[..., torch.Tensor], h: torch.Tensor, w: torch.Tensor, y: torch.Tensor
) -> Callable[[], object]:
    def call() -> object:
        loss_fn(h, w, y).backward()
        grads = h.grad, w.grad
        h.grad = w.grad = None
        return grads

    return call


def _time(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        # The previous gradients are dropped by `call` itself, so that each call starts from
        # none, as the memory measurement does.
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    nllkit.set_num_threads(args.threads)
    memory = probe()
    print(f"# memory: {memory.description}; threads {args.threads}")
    print("dtype     N     D      V  impl    time_s  peak_MiB  working_MiB  time_ratio  working_ratio")
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        for d in args.hidden:
            g = torch.Generator().manual_seed(0)
            h = (torch.randn(args.tokens, d, generator=g) / d**0.5).to(dtype).requires_grad_(True)
            w = torch.randn(args.vocab, d, generator=g).to(dtype).requires_grad_(True)
            y = torch.randint(0, args.vocab, (args.tokens,), generator=g)
            grads_mib = (h.numel() + w.numel()) * h.element_size() / _MIB
            # Compile the kernels (Numba) and warm the allocators outside the measurements.
            linear_cross_entropy(h[:8], w, y[:8]).backward()
            h.grad = w.grad = None
            results = {}
            for name, fn in (("naive", _naive), ("nllkit", linear_cross_entropy)):
                call = _step(fn, h, w, y)
                peak = memory.measure(call)
                results[name] = (_time(call, args.repeat), peak, max(0.0, peak - grads_mib))
            t0, _, m0 = results["naive"]
            for name, (t, peak, working) in results.items():
                print(
                    f"{dtype_name:8s} {args.tokens:5d} {d:5d} {args.vocab:6d}  {name:6s} {t:7.2f} {peak:9.0f} "
                    f"{working:12.0f} {t / t0:11.2f} {working / m0 if m0 else float('nan'):14.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
