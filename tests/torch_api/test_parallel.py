"""Vocabulary-parallel cross-entropy against single-process torch.

The test starts 2 and 4 processes on the gloo backend over loopback (one start
per process count, every case inside each worker); each rank slices its shard
of the same full logits, and compares its loss and shard gradient with
``F.cross_entropy`` (or a torch composition for z-loss and softcap) on the full
logits. Every all-reduce is recorded, to check that communication is
O(tokens x ranks). Failures come back to the parent as tracebacks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nllkit.torch._parallel import (  # noqa: E402
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)

N, V, D = 11, 24, 5  # V divides by 2 and 4; N is odd so rows never line up with shards
IGNORE = -100
# Unequal shard boundaries for the explicit vocab_start cases.
UNEQUAL = {2: (0, 7, 24), 4: (0, 3, 10, 18, 24)}
TIMEOUT = 120.0  # seconds for a whole multi-process run, start-up included


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-6, "atol": 1e-6}


def _data(dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The full logits and targets, the same on every rank (same seed)."""
    gen = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(N, V, generator=gen, dtype=torch.float64)
    # Targets on every shard, the first and last class, and two ignored rows.
    y = torch.randint(0, V, (N,), generator=gen)
    y[0], y[1], y[4], y[7] = 0, V - 1, IGNORE, IGNORE
    return x.to(dtype), y


def _reference(x: torch.Tensor, y: torch.Tensor, reduction: str, eps: float, z: float, cap: float | None) -> Any:
    """torch's loss on the full logits; z-loss and softcap composed on top."""
    if not z and cap is None:
        return F.cross_entropy(x, y, ignore_index=IGNORE, reduction=reduction, label_smoothing=eps)
    xc = x if cap is None else cap * torch.tanh(x / cap)
    rows = F.cross_entropy(xc, y, ignore_index=IGNORE, reduction="none", label_smoothing=eps)
    valid = y != IGNORE
    lse = torch.logsumexp(xc, dim=1)
    rows = rows + torch.where(valid, z * lse * lse, torch.zeros_like(lse))
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / valid.sum()


class _Recorder:
    """Wraps ``dist.all_reduce`` and records (numel, op) of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self._original = dist.all_reduce

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[int, str]]]:
        self.calls = []

        def all_reduce(tensor: torch.Tensor, op: Any = dist.ReduceOp.SUM, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((tensor.numel(), str(op)))
            return self._original(tensor, op, *args, **kwargs)

        dist.all_reduce = all_reduce
        try:
            yield self.calls
        finally:
            dist.all_reduce = self._original


def _shard(rank: int, world: int, unequal: bool) -> tuple[int, int, int | None]:
    if unequal:
        lo, hi = UNEQUAL[world][rank], UNEQUAL[world][rank + 1]
        return lo, hi, lo
    size = V // world
    return rank * size, (rank + 1) * size, None


def _check_ce(rank: int, world: int, rec: _Recorder, case: dict[str, Any]) -> dict[str, Any]:
    dtype = case.get("dtype", torch.float64)
    reduction = case.get("reduction", "mean")
    eps, z, cap = case.get("eps", 0.0), case.get("z", 0.0), case.get("cap")
    lo, hi, start = _shard(rank, world, case.get("unequal", False))
    x, y = _data(dtype, seed=case["seed"])
    full = x.clone().requires_grad_(True)
    ref = _reference(full, y, reduction, eps, z, cap)
    cot = torch.rand(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(1)) + 0.5
    ref.backward(cot)
    assert full.grad is not None

    shard = x[:, lo:hi].clone()
    if case.get("poison"):
        # An ignored row holding inf and NaN: its loss and gradient are exactly 0
        # (torch gives NaN there), and it disturbs no other row.
        shard[4] = float("nan") if rank == 0 else float("inf")
    shard.requires_grad_(True)
    with rec.recording() as calls:
        loss = vocab_parallel_cross_entropy(
            shard,
            y,
            vocab_start=start,
            ignore_index=IGNORE,
            reduction=reduction,
            label_smoothing=eps,
            z_loss=z,
            softcap=cap,
        )
        loss.backward(cot)
    assert loss.dtype == dtype and loss.shape == ref.shape
    torch.testing.assert_close(loss, ref.detach(), **_tol(dtype))
    assert shard.grad is not None
    torch.testing.assert_close(shard.grad, full.grad[:, lo:hi], **_tol(dtype))
    if case.get("poison"):
        assert torch.all(shard.grad[4] == 0)
    return {"calls": list(calls), "max_numel": N}


def _check_batched(rank: int, world: int, rec: _Recorder, case: dict[str, Any]) -> dict[str, Any]:
    """Leading batch axes, vocabulary last (Megatron's (seq, batch, V) layout)."""
    x, y = _data(torch.float64, seed=case["seed"])
    xb, yb = x[:10].reshape(5, 2, V), y[:10].reshape(5, 2)
    lo, hi, _ = _shard(rank, world, False)
    full = xb.clone().requires_grad_(True)
    ref = F.cross_entropy(full.reshape(10, V), yb.reshape(10), reduction="none").reshape(5, 2)
    ref.sum().backward()
    shard = xb[..., lo:hi].clone().requires_grad_(True)
    with rec.recording() as calls:
        loss = vocab_parallel_cross_entropy(shard, yb, reduction="none")
        loss.sum().backward()
    torch.testing.assert_close(loss, ref.detach(), **_tol(torch.float64))
    assert full.grad is not None and shard.grad is not None
    torch.testing.assert_close(shard.grad, full.grad[..., lo:hi], **_tol(torch.float64))
    return {"calls": list(calls), "max_numel": 10}


def _check_linear(rank: int, world: int, rec: _Recorder, case: dict[str, Any]) -> dict[str, Any]:
    dtype = case.get("dtype", torch.float64)
    gen = torch.Generator().manual_seed(case["seed"])
    h = torch.randn(N, D, generator=gen, dtype=dtype)
    w = torch.randn(V, D, generator=gen, dtype=dtype)
    b = torch.randn(V, generator=gen, dtype=dtype)
    _, y = _data(dtype, seed=case["seed"])
    lo, hi, start = _shard(rank, world, case.get("unequal", False))
    hf, wf, bf = (t.clone().requires_grad_(True) for t in (h, w, b))
    reduction = case.get("reduction", "mean")
    ref = _reference(F.linear(hf, wf, bf), y, reduction, case.get("eps", 0.0), case.get("z", 0.0), case.get("cap"))
    cot = torch.rand(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(2)) + 0.5
    ref.backward(cot)
    hs, ws, bs = h.clone().requires_grad_(True), w[lo:hi].clone().requires_grad_(True), b[lo:hi].clone()
    bs.requires_grad_(True)
    with rec.recording() as calls:
        loss = vocab_parallel_linear_cross_entropy(
            hs,
            ws,
            y,
            bs,
            vocab_start=start,
            reduction=reduction,
            label_smoothing=case.get("eps", 0.0),
            z_loss=case.get("z", 0.0),
            softcap=case.get("cap"),
        )
        loss.backward(cot)
    torch.testing.assert_close(loss, ref.detach(), **_tol(dtype))
    torch.testing.assert_close(hs.grad, hf.grad, **_tol(dtype))
    assert wf.grad is not None and bf.grad is not None
    torch.testing.assert_close(ws.grad, wf.grad[lo:hi], **_tol(dtype))
    torch.testing.assert_close(bs.grad, bf.grad[lo:hi], **_tol(dtype))
    # The hidden-state gradient is the one N x D all-reduce; the loss needs only N-sized ones.
    hidden = [c for c in calls if c[0] == N * D]
    assert len(hidden) == 1, calls
    return {"calls": [c for c in calls if c[0] != N * D], "max_numel": N}


def _cases() -> list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]]:
    cases: list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]] = []
    seed = 0
    for dtype in (torch.float32, torch.float64):
        for reduction in ("mean", "sum", "none"):
            for extra in ({}, {"eps": 0.1}, {"z": 0.05}, {"cap": 4.0}, {"eps": 0.2, "z": 0.01, "cap": 3.0}):
                seed += 1
                name = f"ce-{str(dtype)[6:]}-{reduction}-{sorted(extra.items())}"
                cases.append((name, _check_ce, {"dtype": dtype, "reduction": reduction, "seed": seed, **extra}))
    cases.append(("ce-unequal-shards", _check_ce, {"unequal": True, "eps": 0.1, "z": 0.02, "seed": 100}))
    cases.append(("ce-poisoned-ignored-row", _check_ce, {"poison": True, "eps": 0.1, "seed": 101}))
    cases.append(("ce-batched", _check_batched, {"seed": 102}))
    cases.append(("linear", _check_linear, {"seed": 103}))
    cases.append(
        (
            "linear-f32-options",
            _check_linear,
            {"dtype": torch.float32, "eps": 0.1, "z": 0.01, "reduction": "sum", "seed": 104},
        )
    )
    cases.append(("linear-unequal-cap", _check_linear, {"unequal": True, "cap": 5.0, "reduction": "none", "seed": 105}))
    return cases


def _worker(rank: int, world: int, port: int, results: Any) -> None:
    """One rank: run every case, report (rank, case count, failures, all-reduce log)."""
    failures: list[str] = []
    comm: dict[str, Any] = {}
    count = 0
    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=30))
        rec = _Recorder()
        for name, check, case in _cases():
            try:
                comm[name] = check(rank, world, rec, case)
                count += 1
            except Exception:
                failures.append(f"rank {rank}, case {name}:\n{traceback.format_exc()}")
        dist.barrier()
    except Exception:
        failures.append(f"rank {rank}:\n{traceback.format_exc()}")
    finally:
        results.put((rank, count, failures, comm))
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _context() -> Any:
    # forkserver: the server imports torch, nllkit and this module once and each
    # rank forks from that clean process (cheaper than spawn; safer than forking pytest, whose
    # OpenMP thread pool may already be running).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "nllkit.torch._parallel", __name__])
    return ctx


def _run(world: int) -> dict[int, tuple[int, list[str], dict[str, Any]]]:
    ctx = _context()
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, world, port, results), daemon=True) for rank in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + TIMEOUT
    out: dict[int, tuple[int, list[str], dict[str, Any]]] = {}
    try:
        while len(out) < world:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                rank, count, failures, comm = results.get(timeout=min(remaining, 1.0))
                out[rank] = (count, failures, comm)
            except queue.Empty:
                # A rank that died without reporting (e.g. a crash) would otherwise hang the wait.
                if any(p.exitcode not in (None, 0) for p in procs) and not any(p.is_alive() for p in procs):
                    break
    finally:
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()) if len(out) == world else 0.5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    missing = sorted(set(range(world)) - set(out))
    assert not missing, f"ranks {missing} did not report (exit codes {[p.exitcode for p in procs]})"
    return out


@pytest.fixture(scope="module", params=[2, 4], ids=lambda w: f"{w}ranks")
def run(request: pytest.FixtureRequest) -> tuple[int, dict[int, tuple[int, list[str], dict[str, Any]]]]:
    return request.param, _run(request.param)


def test_matches_single_process_torch(run: tuple[int, dict[int, tuple[int, list[str], dict[str, Any]]]]) -> None:
    _, out = run
    failures = [f for _, fs, _ in out.values() for f in fs]
    assert not failures, "\n".join(failures)
    assert all(count == len(_cases()) for count, _, _ in out.values())


def test_communication_is_tokens_times_ranks(
    run: tuple[int, dict[int, tuple[int, list[str], dict[str, Any]]]],
) -> None:
    """Every all-reduce of the loss carries at most N numbers, a few per loss,
    whatever the vocabulary size."""
    _, out = run
    for rank, (_, _, comm) in out.items():
        assert len(comm) == len(_cases()), rank
        for name, info in comm.items():
            sizes = [numel for numel, _ in info["calls"]]
            ops = [op for _, op in info["calls"]]
            assert 3 <= len(sizes) <= 5, (rank, name, info["calls"])
            assert max(sizes) <= info["max_numel"] < V * info["max_numel"], (rank, name, sizes)
            assert sum("MAX" in op for op in ops) == 1, (rank, name, ops)


def test_single_rank_without_process_group() -> None:
    """No initialised process group: one rank with the whole vocabulary."""
    assert not dist.is_initialized()
    x, y = _data(torch.float64, seed=7)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    loss = vocab_parallel_cross_entropy(a, y, label_smoothing=0.1, reduction="sum")
    ref = F.cross_entropy(b, y, label_smoothing=0.1, reduction="sum")
    loss.backward()
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    assert a.grad is not None and b.grad is not None
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


def test_gradcheck_single_rank() -> None:
    x, y = _data(torch.float64, seed=8)
    x = x[:5, :6].clone().requires_grad_(True)
    y = torch.tensor([0, 5, IGNORE, 2, 3])
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda t, r=reduction: vocab_parallel_cross_entropy(
                t, y, reduction=r, label_smoothing=0.1, z_loss=0.05, softcap=2.0
            ),
            (x,),
        )


def test_bfloat16_single_rank() -> None:
    x, y = _data(torch.float32, seed=9)
    a = x.to(torch.bfloat16).requires_grad_(True)
    loss = vocab_parallel_cross_entropy(a, y)
    loss.backward()
    ref = F.cross_entropy(a.detach().float(), y)
    assert loss.dtype == torch.bfloat16 and a.grad is not None and a.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss.float(), ref, rtol=1e-2, atol=1e-2)


def test_errors() -> None:
    x, y = _data(torch.float64, seed=10)
    with pytest.raises(IndexError, match="out of bounds"):
        vocab_parallel_cross_entropy(x, torch.full((N,), V))
    with pytest.raises(ValueError, match="reduction"):
        vocab_parallel_cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="target must have"):
        vocab_parallel_cross_entropy(x, y[:3])
    with pytest.raises(TypeError, match="class indices"):
        vocab_parallel_cross_entropy(x, y.double())
    with pytest.raises(ValueError, match="softcap"):
        vocab_parallel_cross_entropy(x, y, softcap=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        vocab_parallel_cross_entropy(x, y, label_smoothing=1.5)
