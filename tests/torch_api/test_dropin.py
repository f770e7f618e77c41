"""nllkit.torch's drop-in losses against torch.nn.functional (the oracle):
values and gradients on the fused path, the pure-torch fallback, compile,
gradcheck, modules' state dicts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllkit
import nllkit.torch as nt
from nllkit.torch import _ops

TOL = {torch.float32: {"rtol": 1e-6, "atol": 1e-7}, torch.float64: {"rtol": 1e-12, "atol": 1e-14}}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _value_and_grads(fn, inputs, cot_seed: int = 1):
    """The value of ``fn(*inputs)`` and the gradients of every input that
    requires grad, for a random cotangent (a per-row one for reduction='none')."""
    out = fn(*inputs)
    cot = torch.randn(out.shape, generator=_gen(cot_seed), dtype=out.dtype)
    wrt = [a for a in inputs if isinstance(a, torch.Tensor) and a.requires_grad]
    return out, torch.autograd.grad(out, wrt, cot)


def _compare(ours, theirs, inputs, tol):
    out_a, grads_a = _value_and_grads(ours, inputs)
    out_b, grads_b = _value_and_grads(theirs, inputs)
    torch.testing.assert_close(out_a, out_b, **tol)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 2), (5,)])
def test_cross_entropy_index_targets(dtype, reduction, weighted, smoothing, shape):
    g = _gen()
    x = torch.randn(shape, generator=g, dtype=dtype, requires_grad=True)
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    y = torch.randint(0, c, tshape, generator=g)
    if y.ndim:
        y.view(-1)[::3] = 2  # ignore_index below: some rows are skipped
    w = torch.rand(c, generator=g, dtype=dtype) + 0.5 if weighted else None
    kw = {"ignore_index": 2, "reduction": reduction, "label_smoothing": smoothing}
    _compare(lambda x: nt.cross_entropy(x, y, w, **kw), lambda x: F.cross_entropy(x, y, w, **kw), (x,), TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_probability_targets(dtype, reduction):
    g = _gen()
    x = torch.randn(4, 6, 3, generator=g, dtype=dtype, requires_grad=True)
    t = torch.softmax(torch.randn(4, 6, 3, generator=g, dtype=dtype), 1).requires_grad_()
    w = torch.rand(6, generator=g, dtype=dtype)
    kw = {"reduction": reduction, "label_smoothing": 0.1}
    _compare(
        lambda x, t: nt.cross_entropy(x, t, w, **kw), lambda x, t: F.cross_entropy(x, t, w, **kw), (x, t), TOL[dtype]
    )


def test_cross_entropy_weight_requiring_grad_is_differentiated_as_torch():
    x = torch.randn(4, 5, generator=_gen(), dtype=torch.float64, requires_grad=True)
    t = torch.softmax(torch.randn(4, 5, generator=_gen(1), dtype=torch.float64), 1)
    w = torch.rand(5, generator=_gen(2), dtype=torch.float64, requires_grad=True)
    _compare(lambda x, w: nt.cross_entropy(x, t, w), lambda x, w: F.cross_entropy(x, t, w), (x, w), TOL[torch.float64])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(reduction, weighted):
    g = _gen()
    x = torch.randn(5, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (5, 3), generator=g)
    y[0, 0] = -100
    w = torch.rand(4, generator=g, dtype=torch.float64) if weighted else None
    _compare(
        lambda x: nt.nll_loss(x, y, w, reduction=reduction),
        lambda x: F.nll_loss(x, y, w, reduction=reduction),
        (x,),
        TOL[torch.float64],
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_with_logits(dtype, reduction):
    g = _gen()
    x = torch.randn(4, 3, generator=g, dtype=dtype, requires_grad=True)
    t = torch.rand(4, 3, generator=g, dtype=dtype, requires_grad=True)
    w, pw = torch.rand(3, generator=g, dtype=dtype), torch.rand(3, generator=g, dtype=dtype) + 0.5
    for args in [(None, None), (w, pw)]:
        _compare(
            lambda x, t, args=args: nt.binary_cross_entropy_with_logits(x, t, args[0], reduction, args[1]),
            lambda x, t, a=args: F.binary_cross_entropy_with_logits(x, t, a[0], reduction=reduction, pos_weight=a[1]),
            (x, t),
            TOL[dtype],
        )


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_loss(reduction, log_input, full):
    g = _gen()
    x = (torch.rand(5, 3, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    # Targets >= 1: at t = 0 torch's target gradient with full=True is NaN, nllkit's finite (documented).
    t = (torch.poisson(torch.full((5, 3), 2.0, dtype=torch.float64), generator=g) + 1).requires_grad_()
    kw = {"log_input": log_input, "full": full, "reduction": reduction}
    _compare(
        lambda x, t: nt.poisson_nll_loss(x, t, **kw),
        lambda x, t: F.poisson_nll_loss(x, t, **kw),
        (x, t),
        TOL[torch.float64],
    )


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("var_shape", [(5, 3), (5,), (5, 1)])
def test_gaussian_nll_loss(reduction, var_shape):
    g = _gen()
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = (torch.rand(var_shape, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    kw = {"full": True, "reduction": reduction}
    _compare(
        lambda x, t, v: nt.gaussian_nll_loss(x, t, v, **kw),
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, **kw),
        (x, t, v),
        TOL[torch.float64],
    )


def test_gaussian_nll_loss_float_var():
    x = torch.randn(4, 2, generator=_gen(), dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 2, generator=_gen(1), dtype=torch.float64)
    _compare(
        lambda x: nt.gaussian_nll_loss(x, t, 0.5), lambda x: F.gaussian_nll_loss(x, t, 0.5), (x,), TOL[torch.float64]
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dtype, dim):
    x = torch.randn(3, 4, 5, generator=_gen(), dtype=dtype, requires_grad=True)
    _compare(lambda x: nt.softmax(x, dim), lambda x: F.softmax(x, dim), (x,), TOL[dtype])
    _compare(lambda x: nt.log_softmax(x, dim), lambda x: F.log_softmax(x, dim), (x,), TOL[dtype])


def test_softmax_dtype_argument():
    x = torch.randn(3, 4, generator=_gen(), dtype=torch.float32)
    torch.testing.assert_close(nt.log_softmax(x, 1, dtype=torch.float64), F.log_softmax(x, 1, dtype=torch.float64))


def _z_loss_cases():
    g = _gen()
    x = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 4, -100, 2, 2, 1])
    t = torch.softmax(torch.randn(6, 5, generator=g, dtype=torch.float64), 1)
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    return x, y, t, w


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("prob", [False, True])
def test_z_loss_and_softcap_fused_equals_fallback_and_numpy(reduction, prob):
    x, y, t, w = _z_loss_cases()
    target = t if prob else y
    kw = {"reduction": reduction, "label_smoothing": 0.1, "z_loss": 0.01, "softcap": 2.5}

    def fn(x):
        return nt.cross_entropy(x, target, w, **kw)

    fused = _value_and_grads(fn, (x,))
    with nt.pure_torch():
        fallback = _value_and_grads(fn, (x,))
    torch.testing.assert_close(fused, fallback, **TOL[torch.float64])
    reference = nllkit.cross_entropy(x.detach().numpy(), target.numpy(), w.numpy(), **kw)
    np.testing.assert_allclose(fused[0].detach().numpy(), reference, rtol=1e-12)


def test_every_function_fused_equals_fallback():
    g = _gen()
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(4, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    calls = [
        lambda x: nt.nll_loss(nt.log_softmax(x, 1), y, reduction="sum"),
        lambda x: nt.softmax(x, 0),
        lambda x: nt.binary_cross_entropy_with_logits(x, t, reduction="none"),
        lambda x: nt.poisson_nll_loss(x, t, full=True),
        lambda x: nt.gaussian_nll_loss(x, t, t + 0.1),
        lambda x: nt.cross_entropy(x, y, z_loss=0.1, softcap=1.5),
    ]
    for fn in calls:
        fused = _value_and_grads(fn, (x,))
        with nt.pure_torch():
            fallback = _value_and_grads(fn, (x,))
        torch.testing.assert_close(fused, fallback, **TOL[torch.float64])


def test_gradcheck_float64():
    g = _gen()
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = (torch.rand(3, 1, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    y = torch.tensor([0, 3, 1])
    checks = [
        (lambda x: nt.cross_entropy(x, y, reduction="none", label_smoothing=0.1, z_loss=0.1, softcap=2.0), (x,)),
        (lambda x, t: nt.cross_entropy(x, torch.softmax(t, 1)), (x, t)),
        (lambda x: nt.nll_loss(x, y, reduction="sum"), (x,)),
        (lambda x: nt.log_softmax(x, 1), (x,)),
        (lambda x: nt.softmax(x, 0), (x,)),
        (lambda x, t: nt.binary_cross_entropy_with_logits(x, t, reduction="none"), (x, t)),
        (lambda x, t: nt.poisson_nll_loss(x, t, full=True), (x, t)),
        (lambda x, t, v: nt.gaussian_nll_loss(x, t, v, reduction="none"), (x, t, v)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs)


def test_bfloat16_matches_torch_loosely():
    x = torch.randn(8, 50, generator=_gen()).to(torch.bfloat16).requires_grad_()
    y = torch.randint(0, 50, (8,), generator=_gen(1))
    tol = {"rtol": 2e-2, "atol": 2e-3}
    for reduction in ["mean", "none"]:
        # torch rounds every intermediate to bfloat16, nllkit computes in float32: compare to torch in float32.
        out, (grad,) = _value_and_grads(lambda x, r=reduction: nt.cross_entropy(x, y, reduction=r), (x,))
        ref, (ref_grad,) = _value_and_grads(lambda x, r=reduction: F.cross_entropy(x.float(), y, reduction=r), (x,))
        assert out.dtype == grad.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), ref, **tol)
        torch.testing.assert_close(grad, ref_grad, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_kernels_see_the_tensors_memory_without_copies(dtype):
    x = torch.randn(3, 4).to(dtype)
    view = _ops.as_numpy(x)
    assert view.ctypes.data == x.data_ptr() and view.shape == (3, 4)
    back = _ops.as_tensor(view)
    assert back.data_ptr() == x.data_ptr() and back.dtype == dtype
    # The gradient the fused kernel writes becomes x.grad itself, not a copy of it.
    x.requires_grad_()
    loss, g0, _, _ = _ops.loss_and_grad(
        "cross_entropy", "sum", [-100], [0.0, 0.0, 0.0], x, torch.tensor([0, 1, 2]), None, None, [True, False, False]
    )
    ptr = g0.data_ptr()
    del g0
    loss.backward()
    assert x.grad is not None and x.grad.data_ptr() == ptr


def test_gradient_buffers_are_reused_only_when_free(monkeypatch):
    monkeypatch.setattr(_ops, "_POOL_MIN_BYTES", 0)
    monkeypatch.setattr(_ops, "_POOL", {})
    y = torch.tensor([0, 1, 2])
    xs = [torch.randn(3, 4, generator=_gen(i), requires_grad=True) for i in range(3)]
    for x in xs[:2]:  # both gradients alive: two buffers
        nt.cross_entropy(x, y).backward()
    assert xs[0].grad.data_ptr() != xs[1].grad.data_ptr()
    ptr = xs[0].grad.data_ptr()
    xs[0].grad = None  # its buffer is free again
    nt.cross_entropy(xs[2], y).backward()
    assert xs[2].grad.data_ptr() == ptr
    for x in xs[1:]:
        torch.testing.assert_close(x.grad, torch.autograd.grad(F.cross_entropy(x, y), x)[0], **TOL[torch.float32])
    nt.empty_cache()
    assert not _ops._POOL


def test_backward_with_retain_graph_twice():
    x = torch.randn(2, 3, requires_grad=True)
    loss = nt.cross_entropy(x, torch.tensor([0, 1]))
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)


def test_torch_compile_fullgraph():
    x = torch.randn(6, 5, generator=_gen(), requires_grad=True)
    y = torch.tensor([0, 4, -100, 2, 2, 1])

    def step(x, y):
        return nt.cross_entropy(x * 2.0, y, z_loss=0.01, softcap=3.0) + nt.log_softmax(x, 1).sum() * 0.0

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    out_c, (grad_c,) = _value_and_grads(lambda x: compiled(x, y), (x,))
    out_e, (grad_e,) = _value_and_grads(lambda x: step(x, y), (x,))
    torch.testing.assert_close(out_c, out_e, **TOL[torch.float32])
    torch.testing.assert_close(grad_c, grad_e, **TOL[torch.float32])


def test_opcheck():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    args = (
        "cross_entropy",
        "none",
        [-100],
        [0.1, 0.0, 0.0],
        x,
        torch.tensor([0, 1, 2, 0]),
        None,
        None,
        [True, False, False],
    )
    torch.library.opcheck(torch.ops.nllkit.loss_and_grad.default, args)
    torch.library.opcheck(torch.ops.nllkit.softmax.default, (x, 1, True))
    v = torch.rand(4, 1, dtype=torch.float64, requires_grad=True)
    args = ("gaussian_nll_loss", "sum", [1], [1e-6], x, x.detach() + 1, v, None, [True, False, True])
    torch.library.opcheck(torch.ops.nllkit.loss_and_grad.default, args)


def test_non_contiguous_inputs():
    base = torch.randn(5, 4, generator=_gen(), dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 4])
    _compare(lambda b: nt.cross_entropy(b.t(), y), lambda b: F.cross_entropy(b.t(), y), (base,), TOL[torch.float64])
    _compare(lambda b: nt.log_softmax(b.t(), 1), lambda b: F.log_softmax(b.t(), 1), (base,), TOL[torch.float64])


@pytest.mark.parametrize(
    ("ours", "theirs", "buffers"),
    [
        (nt.CrossEntropyLoss, torch.nn.CrossEntropyLoss, {"weight": torch.rand(3)}),
        (nt.NLLLoss, torch.nn.NLLLoss, {"weight": torch.rand(3)}),
        (nt.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss, {"weight": torch.rand(3), "pos_weight": torch.rand(3)}),
        (nt.CrossEntropyLoss, torch.nn.CrossEntropyLoss, {}),
        (nt.PoissonNLLLoss, torch.nn.PoissonNLLLoss, {}),
        (nt.GaussianNLLLoss, torch.nn.GaussianNLLLoss, {}),
    ],
)
def test_modules_state_dict_round_trips_with_torch(ours, theirs, buffers):
    mine, torchs = ours(**buffers), theirs(**buffers)
    assert list(mine.state_dict()) == list(torchs.state_dict())
    fresh_torch = theirs(**{k: torch.zeros_like(v) for k, v in buffers.items()})
    fresh_torch.load_state_dict(mine.state_dict())
    fresh_mine = ours(**{k: torch.zeros_like(v) for k, v in buffers.items()})
    fresh_mine.load_state_dict(torchs.state_dict())
    for k, v in buffers.items():
        torch.testing.assert_close(getattr(fresh_torch, k), v)
        torch.testing.assert_close(getattr(fresh_mine, k), v)


def test_modules_compute_as_torch():
    g = _gen()
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 1])
    t = torch.rand(4, 3, generator=g, dtype=torch.float64)
    w = torch.rand(3, generator=g, dtype=torch.float64)
    pairs = [
        (nt.CrossEntropyLoss(w, label_smoothing=0.1), torch.nn.CrossEntropyLoss(w, label_smoothing=0.1), (x, y)),
        (nt.NLLLoss(w, reduction="sum"), torch.nn.NLLLoss(w, reduction="sum"), (x, y)),
        (nt.BCEWithLogitsLoss(w, pos_weight=w), torch.nn.BCEWithLogitsLoss(w, pos_weight=w), (x, t)),
        (nt.PoissonNLLLoss(full=True), torch.nn.PoissonNLLLoss(full=True), (x, t)),
        (nt.GaussianNLLLoss(full=True), torch.nn.GaussianNLLLoss(full=True), (x, t, t + 0.5)),
        (nt.LogSoftmax(1), torch.nn.LogSoftmax(1), (x,)),
        (nt.Softmax(0), torch.nn.Softmax(0), (x,)),
    ]
    for mine, torchs, args in pairs:
        torch.testing.assert_close(mine(*args), torchs(*args), **TOL[torch.float64])


def test_import_nllkit_does_not_import_torch():
    code = "import sys, nllkit; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
