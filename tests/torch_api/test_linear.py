"""linear_cross_entropy (NumPy and torch) against torch's F.cross_entropy(h @ W.T + b, y).

Index targets only: the linear version takes no probability targets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllkit
from nllkit.losses._linear import chunk_rows
from nllkit.losses._linear import linear_cross_entropy as np_linear_cross_entropy
from nllkit.torch._linear import linear_cross_entropy

N, D, V = 13, 6, 11
# float32: the weight and bias gradients are sums over tokens taken chunk by chunk, in
# another order than torch's single product, so entries that nearly cancel differ by an ulp
# of the summands.
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}

OPTIONS = [
    {},
    {"reduction": "sum"},
    {"label_smoothing": 0.25},
    {"ignore_index": 4},
    {"z_loss": 1e-2},
    {"softcap": 2.5},
    {"label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 4.0, "reduction": "sum"},
]


def _reference(h, w, y, b, *, ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0, softcap=None):
    """torch's cross-entropy of the materialised logits, with nllkit's z-loss and softcap spelt out."""
    logits = h @ w.T + (0 if b is None else b)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    loss = F.cross_entropy(logits, y, ignore_index=ignore_index, reduction="sum", label_smoothing=label_smoothing)
    kept = y != ignore_index
    if z_loss:
        loss = loss + z_loss * (torch.logsumexp(logits, dim=1)[kept] ** 2).sum()
    return loss / kept.sum() if reduction == "mean" else loss


def _data(dtype, bias=True, seed=0, ignore_index=-100):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, D, generator=g, dtype=dtype)
    w = torch.randn(V, D, generator=g, dtype=dtype)
    b = torch.randn(V, generator=g, dtype=dtype) if bias else None
    y = torch.randint(0, V, (N,), generator=g)
    y[[2, 7]] = ignore_index
    y[5] = 4  # the class that the ignore_index=4 case skips
    return h, w, y, b


def _leaves(*ts):
    return [None if t is None else t.clone().requires_grad_(True) for t in ts]


def _grads(loss, leaves):
    present = [t for t in leaves if t is not None]
    return list(torch.autograd.grad(loss, present))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("chunk_size", [None, 1, 5])  # 5 does not divide N = 13
@pytest.mark.parametrize("bias", [True, False])
def test_torch_matches_reference(dtype, options, chunk_size, bias):
    h, w, y, b = _data(dtype, bias, ignore_index=options.get("ignore_index", -100))
    lh, lw, lb = _leaves(h, w, b)
    loss = linear_cross_entropy(lh, lw, y, lb, chunk_size=chunk_size, **options)
    rh, rw, rb = _leaves(h, w, b)
    ref = _reference(rh, rw, y, rb, **options)
    torch.testing.assert_close(loss, ref, **TOL[dtype])
    for got, want in zip(_grads(loss, [lh, lw, lb]), _grads(ref, [rh, rw, rb]), strict=True):
        torch.testing.assert_close(got, want, **TOL[dtype])


@pytest.mark.parametrize("options", [{}, OPTIONS[-1]])
def test_torch_fallback_without_kernels(options):
    """The pure-torch path (what non-CPU devices run), forced on CPU."""
    h, w, y, b = _data(torch.float64)
    lh, lw, lb = _leaves(h, w, b)
    with nllkit.fused_kernels(False):
        loss = linear_cross_entropy(lh, lw, y, lb, chunk_size=4, **options)
        got = _grads(loss, [lh, lw, lb])
    rh, rw, rb = _leaves(h, w, b)
    ref = _reference(rh, rw, y, rb, **options)
    torch.testing.assert_close(loss, ref, **TOL[torch.float64])
    for g, want in zip(got, _grads(ref, [rh, rw, rb]), strict=True):
        torch.testing.assert_close(g, want, **TOL[torch.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2, "reduction": "sum"}, OPTIONS[-1]])
@pytest.mark.parametrize("kernels", [True, False])
def test_numpy_value_and_grad(dtype, options, kernels):
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    h, w, y, b = _data(tdtype)
    with nllkit.fused_kernels(kernels):
        loss, grads = nllkit.value_and_grad(np_linear_cross_entropy, (0, 1, 3))(
            h.numpy(), w.numpy(), y.numpy(), b.numpy(), chunk_size=3, **options
        )
    rh, rw, rb = _leaves(h, w, b)
    ref = _reference(rh, rw, y, rb, **options)
    assert loss.dtype == dtype and loss.shape == ()
    torch.testing.assert_close(torch.from_numpy(np.asarray(loss)), ref.detach(), **TOL[tdtype])
    for g, want in zip(grads, _grads(ref, [rh, rw, rb]), strict=True):
        assert g.dtype == dtype
        torch.testing.assert_close(torch.from_numpy(g), want, **TOL[tdtype])


def test_numpy_forward_only_and_errors():
    h, w, y, b = (None if t is None else t.numpy() for t in _data(torch.float64))
    ref = _reference(*(None if a is None else torch.from_numpy(a) for a in (h, w, y, b)))
    assert math.isclose(float(np_linear_cross_entropy(h, w, y, b)), float(ref), rel_tol=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        np_linear_cross_entropy(h, w, y, reduction="none")
    with pytest.raises(ValueError, match="weight"):
        np_linear_cross_entropy(h, w[:, :3], y)
    with pytest.raises(IndexError, match="target"):
        np_linear_cross_entropy(h, w, np.full(N, V))
    with pytest.raises(TypeError, match="NumPy"):
        np_linear_cross_entropy(torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(y))
    with pytest.raises(ValueError, match="chunk_size"):
        np_linear_cross_entropy(h, w, y, chunk_size=0)


def test_grad_output_scaling_and_no_grad():
    h, w, y, b = _data(torch.float64)
    lh, lw = _leaves(h, w)
    (3 * linear_cross_entropy(lh, lw, y, chunk_size=4)).backward()
    rh, rw = _leaves(h, w)
    (3 * F.cross_entropy(rh @ rw.T, y)).backward()
    torch.testing.assert_close(lh.grad, rh.grad)
    torch.testing.assert_close(lw.grad, rw.grad)
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(h, w, y, b), F.cross_entropy(h @ w.T + b, y))


def test_all_ignored():
    h, w, _, _ = _data(torch.float64)
    y = torch.full((N,), -100)
    lh, lw = _leaves(h, w)
    loss = linear_cross_entropy(lh, lw, y)
    assert torch.isnan(loss)
    loss.backward()
    assert not lh.grad.any() and not lw.grad.any()


def test_bfloat16_loose():
    h, w, y, b = _data(torch.float32)
    h, w, b = h.bfloat16(), w.bfloat16(), b.bfloat16()
    lh, lw, lb = _leaves(h, w, b)
    loss = linear_cross_entropy(lh, lw, y, lb, chunk_size=5)
    assert loss.dtype == torch.bfloat16
    rh, rw, rb = _leaves(h, w, b)
    ref = F.cross_entropy(rh @ rw.T + rb, y)
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-2)
    for g, want in zip(_grads(loss, [lh, lw, lb]), _grads(ref, [rh, rw, rb]), strict=True):
        torch.testing.assert_close(g.float(), want.float(), rtol=5e-2, atol=2e-2)


def test_chunk_rows_adapts_to_the_vocabulary():
    assert chunk_rows(4096, 128256, 4) == 261  # 128 MiB of float32 logits
    assert chunk_rows(4096, 128256, 2) == 523
    assert chunk_rows(10, 32, 4) == 10  # never more than N
    assert chunk_rows(4096, 10**9, 4) == 1  # at least one row
    assert chunk_rows(100, 32, 4, chunk_size=7) == 7
