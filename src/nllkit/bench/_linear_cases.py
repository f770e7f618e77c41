"""Linear cross-entropy against the naive ``F.cross_entropy(h @ W.T, y)``, forward plus backward.

Both compute the loss and the gradients of ``h`` and ``W`` (leaves that require
grad). Reported per shape and dtype: the best of ``repeat`` wall times, and the
peak extra memory of one call (:mod:`nllkit.bench._memory`: peak RSS minus RSS
before the call), as measured and without the gradients themselves
(``N x D + V x D`` elements, which any implementation must return): the
"working" memory that issue 4's goal (at most 10% of the naive) is about.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nllkit.bench._memory import probe
from nllkit.bench._report import align

#: The field's shape (Llama 3's vocabulary): N tokens, hidden sizes D, V classes.
LINEAR_TOKENS, LINEAR_HIDDEN, LINEAR_VOCAB = 4096, (512, 2048), 128256
QUICK_LINEAR_TOKENS, QUICK_LINEAR_HIDDEN, QUICK_LINEAR_VOCAB = 256, (64,), 8192

_MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class LinearTiming:
    """One implementation on one shape: best time (s) and peak / working extra memory (MiB)."""

    dtype: str
    tokens: int
    hidden: int
    vocab: int
    implementation: str
    seconds: float
    peak_mib: float
    working_mib: float


def _step(loss: Callable[..., Any], h: Any, w: Any, y: Any) -> Callable[[], object]:
    def call() -> object:
        loss(h, w, y).backward()
        grads = h.grad, w.grad
        h.grad = w.grad = None
        return grads

    return call


def _best_time(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def run_linear(
    *,
    quick: bool = False,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    repeat: int = 2,
    threads: int = 2,
    progress: Callable[[str], Any] | None = None,
) -> list[LinearTiming]:
    """Time ``nllkit.torch.linear_cross_entropy`` and the naive torch composition.

    Parameters
    ----------
    quick : bool
        Small shapes (a smoke test) instead of N=4096, D in {512, 2048}, V=128256.
    dtypes : sequence of {'float32', 'bfloat16'}
    repeat : int
        Timed calls per implementation (the best is kept; the naive one takes
        10-50 s per call at the full shapes on 2 cores).
    threads : int
        For torch and nllkit.
    progress : callable, optional
        Called with a short line before each measurement.

    Returns
    -------
    list of LinearTiming
        Naive first, then nllkit, per shape and dtype.
    """
    import torch
    import torch.nn.functional as F

    import nllkit
    from nllkit.torch._linear import linear_cross_entropy

    def naive(h: Any, w: Any, y: Any) -> Any:
        return F.cross_entropy(h @ w.T, y)

    torch.set_num_threads(threads)
    nllkit.set_num_threads(threads)
    memory = probe()
    tokens = QUICK_LINEAR_TOKENS if quick else LINEAR_TOKENS
    vocab = QUICK_LINEAR_VOCAB if quick else LINEAR_VOCAB
    rows = []
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for d in QUICK_LINEAR_HIDDEN if quick else LINEAR_HIDDEN:
            g = torch.Generator().manual_seed(0)
            h = (torch.randn(tokens, d, generator=g) / d**0.5).to(dtype).requires_grad_(True)
            w = torch.randn(vocab, d, generator=g).to(dtype).requires_grad_(True)
            y = torch.randint(0, vocab, (tokens,), generator=g)
            grads_mib = (h.numel() + w.numel()) * h.element_size() / _MIB
            # Compile the kernels and warm the allocators outside the measurements.
            linear_cross_entropy(h[:8], w, y[:8]).backward()
            h.grad = w.grad = None
            for name, loss in (("torch naive", naive), ("nllkit.torch", linear_cross_entropy)):
                if progress is not None:
                    progress(f"linear_cross_entropy {name} {tokens}x{d}x{vocab} {dtype_name}")
                call = _step(loss, h, w, y)
                peak = memory.measure(call)
                seconds = _best_time(call, repeat)
                rows.append(
                    LinearTiming(dtype_name, tokens, d, vocab, name, seconds, peak, max(0.0, peak - grads_mib))
                )
    return rows


def format_linear_table(rows: Sequence[LinearTiming]) -> str:
    """An aligned table with each nllkit row's time and working-memory ratios to the naive row before it."""
    header = ("dtype", "N", "D", "V", "implementation", "best s", "peak MiB", "working MiB", "x time", "x working")
    lines = [header]
    naive: LinearTiming | None = None
    for row in rows:
        if row.implementation == "torch naive":
            naive = row
        assert naive is not None
        working = row.working_mib / naive.working_mib if naive.working_mib else float("nan")
        lines.append(
            (
                row.dtype,
                str(row.tokens),
                str(row.hidden),
                str(row.vocab),
                row.implementation,
                f"{row.seconds:.3f}",
                f"{row.peak_mib:.0f}",
                f"{row.working_mib:.0f}",
                f"{row.seconds / naive.seconds:.2f}",
                f"{working:.3f}",
            )
        )
    text = align(lines, left=(0, 4))
    text.append("x time, x working: nllkit / the naive F.cross_entropy(h @ W.T, y) (goals: <= 1.0 and <= 0.10)")
    return "\n".join(text)
