"""Every loss on every backend: same values, namespace, dtype and gradients.

The reference is nllkit itself on NumPy float64 (checked against PyTorch in
tests/oracle); here the question is whether each backend gives the same
numbers and keeps its own array type, and whether PyTorch autograd and
``jax.grad`` differentiate through nllkit with nllkit's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import nllkit

RNG = np.random.default_rng(7)


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    arrays: tuple[Any, ...]  # NumPy data; float64 arrays are cast per test
    settings: dict[str, Any] = field(default_factory=dict)
    diff: tuple[int, ...] = (0,)  # positional arguments with a gradient


def _probs(*shape: int) -> np.ndarray:
    p = RNG.random(shape) + 0.1
    return p / p.sum(axis=1, keepdims=True)


X = RNG.normal(size=(5, 4))
X4 = RNG.normal(size=(2, 3, 2, 2))
T = np.array([0, 3, -100, 1, 2])
W = np.array([0.5, 1.0, 2.0, 1.5])
P01 = RNG.uniform(0.05, 0.95, size=(3, 4))
Y01 = RNG.uniform(0.0, 1.0, size=(3, 4))

CASES = [
    Case("log_softmax", nllkit.log_softmax, (X,), {"dim": 1}),
    Case("softmax", nllkit.softmax, (X4,), {"dim": 1}),
    Case("logsumexp", nllkit.logsumexp, (X4,), {"dim": (1, 3), "keepdim": True}),
    Case("nll_loss", nllkit.nll_loss, (X, T, W), {"reduction": "mean"}),
    Case("nll_loss_kdim", nllkit.nll_loss, (X4, np.array([[[0, 1], [2, 1]], [[2, 2], [0, -100]]])), {}),
    Case("ce_index", nllkit.cross_entropy, (X, T, W), {"label_smoothing": 0.1}),
    Case(
        "ce_index_ignore_class",
        nllkit.cross_entropy,
        (X, np.array([0, 3, 1, 1, 2])),
        {"ignore_index": 1, "reduction": "sum"},
    ),
    Case("ce_index_kdim", nllkit.cross_entropy, (X4, np.array([[[0, 1], [2, 1]], [[2, 2], [0, 1]]])), {}),
    Case("ce_prob", nllkit.cross_entropy, (X, _probs(5, 4), W), {"label_smoothing": 0.2}, (0, 1, 2)),
    Case("ce_1d", nllkit.cross_entropy, (X[0], np.array(2)), {"reduction": "none"}),
    Case("bce", nllkit.binary_cross_entropy, (P01, Y01, np.array([1.0, 2.0, 0.5, 1.0])), {}, (0, 1)),
    Case(
        "bce_logits",
        nllkit.binary_cross_entropy_with_logits,
        (RNG.normal(size=(3, 4)), Y01, None, "sum", np.array([2.0, 0.5, 1.0, 3.0])),
        {},
        (0, 1),
    ),
    Case(
        "poisson",
        nllkit.poisson_nll_loss,
        (RNG.normal(size=(3, 4)), RNG.poisson(2.0, size=(3, 4)) * 1.0),
        {"full": True},
        (0, 1),
    ),
    Case(
        "poisson_rate",
        nllkit.poisson_nll_loss,
        (RNG.uniform(0.5, 3.0, size=(2, 3)), RNG.poisson(2.0, size=(2, 1)) * 1.0),
        {"log_input": False},
        (0, 1),
    ),
    Case(
        "gaussian",
        nllkit.gaussian_nll_loss,
        (RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)), RNG.uniform(0.5, 2.0, size=(4,))),
        {"full": True},
        (0, 1, 2),
    ),
    Case("kl", nllkit.kl_div, (np.log(_probs(3, 4)), _probs(3, 4)), {"reduction": "batchmean"}, (0, 1)),
    Case(
        "kl_log_target",
        nllkit.kl_div,
        (np.log(_probs(3, 4)), np.log(_probs(3, 4))),
        {"log_target": True},
        (0, 1),
    ),
]


def _convert(backend: Any, arrays: tuple[Any, ...], dtype: str) -> tuple[Any, ...]:
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            kind = dtype if a.dtype.kind == "f" else "int64"
            out.append(backend.asarray(a, kind))
        else:
            out.append(a)
    return tuple(out)


def _tolerance(dtype: str) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-13}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_value_namespace_and_dtype(backend: Any, case: Case, dtype: str) -> None:
    expected = np.asarray(case.fn(*case.arrays, **case.settings))
    arrays = _convert(backend, case.arrays, dtype)
    out = backend.call(case.fn, *arrays, **case.settings)
    backend.assert_namespace(out)
    assert out.dtype == backend.dtype(dtype)
    np.testing.assert_allclose(backend.numpy(out), expected, **_tolerance(dtype))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vjp_on_backend_matches_numpy(backend: Any, case: Case) -> None:
    out, pullback = nllkit.vjp(case.fn, *case.arrays, **case.settings)
    cotangent = RNG.normal(size=np.shape(out))
    expected = pullback(cotangent)
    arrays = _convert(backend, case.arrays, "float64")
    _, pullback_b = nllkit.vjp(case.fn, *arrays, **case.settings)
    grads = pullback_b(backend.asarray(cotangent, "float64"))
    for i, (g, e) in enumerate(zip(grads, expected, strict=True)):
        if i in case.diff:
            backend.assert_namespace(g)
            np.testing.assert_allclose(backend.numpy(g), e, rtol=1e-12, atol=1e-13)
        elif e is None:
            assert g is None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_torch_autograd_through_nllkit(case: Case) -> None:
    torch = pytest.importorskip("torch")
    out, pullback = nllkit.vjp(case.fn, *case.arrays, **case.settings)
    cotangent = RNG.normal(size=np.shape(out))
    expected = pullback(cotangent)
    tensors = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in case.arrays]
    for i in case.diff:
        tensors[i].requires_grad_(True)
    result = case.fn(*tensors, **case.settings)
    assert result.requires_grad
    grads = torch.autograd.grad(result, [tensors[i] for i in case.diff], torch.tensor(cotangent))
    for i, g in zip(case.diff, grads, strict=True):
        np.testing.assert_allclose(g.numpy(), expected[i], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("jit", [False, True])
def test_jax_grad_through_nllkit(case: Case, jit: bool) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    out, pullback = nllkit.vjp(case.fn, *case.arrays, **case.settings)
    cotangent = RNG.normal(size=np.shape(out))
    expected = pullback(cotangent)
    arrays = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in case.arrays]

    def objective(*diff_arrays: Any) -> Any:
        full = list(arrays)
        for i, a in zip(case.diff, diff_arrays, strict=True):
            full[i] = a
        return jnp.sum(case.fn(*full, **case.settings) * cotangent)

    grad_fn = jax.grad(objective, argnums=tuple(range(len(case.diff))))
    if jit:
        grad_fn = jax.jit(grad_fn)
    grads = grad_fn(*[arrays[i] for i in case.diff])
    for i, g in zip(case.diff, grads, strict=True):
        np.testing.assert_allclose(np.asarray(g), expected[i], rtol=1e-12, atol=1e-13)


def test_torch_ignored_row_with_nan_has_zero_gradient() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([[1.0, float("nan"), 2.0], [0.5, 0.1, -1.0]], requires_grad=True)
    nllkit.cross_entropy(x, torch.tensor([-100, 2])).backward()
    assert torch.equal(x.grad[0], torch.zeros(3))
    assert torch.isfinite(x.grad[1]).all()


def test_no_grad_needed_takes_plain_path() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([[1.0, 2.0]])
    out = nllkit.cross_entropy(x, torch.tensor([1]))
    assert out.grad_fn is None


def test_jax_value_checks_are_skipped_under_jit_but_run_eagerly() -> None:
    jax = pytest.importorskip("jax")
    x = jax.numpy.zeros((2, 3))
    bad = jax.numpy.asarray([0, 7])
    with pytest.raises(IndexError, match="target must be a class index in"):
        nllkit.cross_entropy(x, bad)
    # Under jit the values are unknown: documented, no check, no error.
    out = jax.jit(nllkit.cross_entropy)(x, bad)
    assert out.shape == ()


@pytest.mark.parametrize("int_dtype", ["int8", "int16", "int32", "uint8", "int64"])
def test_any_integer_target_dtype(backend: Any, int_dtype: str) -> None:
    x = backend.asarray(X4, "float64")
    t = backend.asarray(np.array([[[0, 1], [2, 1]], [[2, 2], [0, 1]]]), int_dtype)
    expected = nllkit.cross_entropy(X4, np.array([[[0, 1], [2, 1]], [[2, 2], [0, 1]]]), reduction="none")
    out = backend.call(nllkit.cross_entropy, x, t, reduction="none")
    np.testing.assert_allclose(backend.numpy(out), expected, rtol=1e-12)


def test_uint8_target_with_ignore_index_255() -> None:
    x = RNG.normal(size=(3, 4))
    out = nllkit.cross_entropy(x, np.array([1, 255, 3], dtype=np.uint8), ignore_index=255)
    expected = nllkit.cross_entropy(x, np.array([1, -100, 3]))
    np.testing.assert_allclose(out, expected, rtol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_low_precision_is_float32_rounded(case: Case) -> None:
    """float16 inputs are computed in float32 and rounded once."""
    half = tuple(
        a.astype(np.float16) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in case.arrays
    )
    single = tuple(
        a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in half
    )
    out = case.fn(*half, **case.settings)
    assert out.dtype == np.float16
    expected = np.asarray(case.fn(*single, **case.settings)).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_bfloat16_on_numpy_and_torch() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    t = np.array([0, 1, 4, 2])
    expected = np.float32(nllkit.cross_entropy(x.astype(ml_dtypes.bfloat16).astype(np.float32), t))
    out_np = nllkit.cross_entropy(x.astype(ml_dtypes.bfloat16), t)
    assert out_np.dtype == ml_dtypes.bfloat16
    out_t = nllkit.cross_entropy(torch.tensor(x).to(torch.bfloat16), torch.tensor(t))
    assert out_t.dtype == torch.bfloat16
    for out in (np.float32(out_np), out_t.float().item()):
        np.testing.assert_allclose(out, expected, rtol=2**-8)


def test_weight_of_another_float_dtype() -> None:
    x = X.astype(np.float32)
    out = nllkit.cross_entropy(x, T, W.astype(np.float64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, nllkit.cross_entropy(x, T, W.astype(np.float32)), rtol=1e-7)
    var = np.full((4, 3), 0.7, dtype=np.float16)
    g = nllkit.gaussian_nll_loss(np.zeros((4, 3), np.float32), np.ones((4, 3), np.float32), var)
    assert g.dtype == np.float32


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_inputs_are_not_modified(case: Case) -> None:
    arrays = tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in case.arrays)
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    out, pullback = nllkit.vjp(case.fn, *arrays, **case.settings)
    pullback(np.ones(np.shape(out)))
    for a, original in zip(arrays, case.arrays, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, original)
