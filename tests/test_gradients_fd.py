"""Central-difference checks of every analytic gradient nllkit provides.

For a loss ``f``, a random cotangent ``v`` and each differentiable argument
``a``, ``pullback(v)`` must equal the float64 central difference of
``<v, f(a)>`` (step 1e-6, rtol 1e-6, atol 1e-8). Arguments that nllkit does
not differentiate (integer targets, the class weight of ``nll_loss`` and of
index ``cross_entropy``, the ``weight`` of both BCEs and ``pos_weight``) must
get ``None``. Inputs stay away from kinks: BCE probabilities in [0.05, 0.95],
Gaussian variances well above ``eps``, Poisson targets away from 1 when
``full=True``.

The torch and JAX routes (``torch.autograd.Function`` and ``jax.custom_vjp``)
are compared at the end with the NumPy pullback that the checks above verify.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import nllkit

STEP = 1e-6
RTOL = 1e-6
ATOL = 1e-8

REDUCTIONS = ("none", "mean", "sum")


# --- the checker -----------------------------------------------------------------


def _inner(fn: Callable[..., Any], args: Sequence[Any], v: np.ndarray, settings: dict[str, Any]) -> float:
    return float(np.sum(v * np.asarray(fn(*args, **settings))))


def central_difference(
    fn: Callable[..., Any], args: Sequence[Any], i: int, v: np.ndarray, settings: dict[str, Any]
) -> np.ndarray:
    """d<v, fn(*args)>/d args[i], one coordinate at a time."""
    work = list(args)
    a = np.array(args[i], dtype=np.float64, copy=True)
    work[i] = a
    flat = a.reshape(-1)  # a view: writing to it perturbs `a`
    grad = np.empty(a.size)
    for k in range(a.size):
        orig = flat[k]
        h = STEP * max(1.0, abs(orig))
        flat[k] = orig + h
        plus = _inner(fn, work, v, settings)
        flat[k] = orig - h
        minus = _inner(fn, work, v, settings)
        flat[k] = orig
        grad[k] = (plus - minus) / (2 * h)
    return grad.reshape(a.shape)


def check_vjp(
    fn: Callable[..., Any],
    args: Sequence[Any],
    differentiable: Sequence[bool],
    rng: np.random.Generator,
    **settings: Any,
) -> None:
    """``nllkit.vjp(fn, *args)`` against central differences, argument by argument.

    ``differentiable[i]`` says whether argument ``i`` has a gradient (checked
    against central differences) or must get ``None``.
    """
    assert len(differentiable) == len(args)
    out, pullback = nllkit.vjp(fn, *args, **settings)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(fn(*args, **settings)))
    v = rng.standard_normal(np.shape(out))
    grads = pullback(v)
    assert len(grads) == len(args)
    for i, (a, g, has_grad) in enumerate(zip(args, grads, differentiable, strict=True)):
        if not has_grad:
            assert g is None, f"argument {i} should have no gradient; got {g!r}"
            continue
        assert g is not None, f"argument {i} has no gradient"
        g = np.asarray(g)
        assert g.shape == np.shape(a), f"argument {i}: gradient shape {g.shape} != {np.shape(a)}"
        assert g.dtype == np.float64
        expected = central_difference(fn, args, i, v, settings)
        np.testing.assert_allclose(g, expected, rtol=RTOL, atol=ATOL, err_msg=f"argument {i}")


# --- data ------------------------------------------------------------------------------


def _class_axis(shape: tuple[int, ...]) -> int:
    return 0 if len(shape) == 1 else 1


def _num_classes(shape: tuple[int, ...]) -> int:
    return shape[_class_axis(shape)]


def _index_target(rng: np.random.Generator, shape: tuple[int, ...], ignore: str) -> tuple[np.ndarray, int]:
    """Class indices for logits of ``shape`` and the ignore_index to use.

    ``ignore``: 'none' (nothing ignored), 'sentinel' (-100 on some entries) or
    'class' (class 1 is the ignore_index, so its targets are skipped).
    Multi-row targets always keep at least one target that is not ignored.
    """
    c = _num_classes(shape)
    if len(shape) == 1:
        # A single target: ignoring it leaves nothing to differentiate.
        return np.asarray(int(rng.integers(c)), dtype=np.int64), -100
    tshape = (shape[0],) + shape[2:]
    t = rng.integers(0, c, size=tshape).astype(np.int64)
    flat = t.reshape(-1)
    if ignore == "sentinel":
        flat[rng.random(flat.size) < 0.3] = -100
        flat[0] = 0
        return t, -100
    if ignore == "class":
        flat[0], flat[-1] = 1, 2
        return t, 1
    return t, -100


def _probs(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray:
    p = rng.uniform(0.05, 1.0, size=shape)
    return p / p.sum(axis=axis, keepdims=True)


CLASS_SHAPES = [(5,), (4, 3), (3, 4, 2), (2, 3, 2, 2)]


# --- nll_loss and cross_entropy (class-index targets) -------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore", ["none", "sentinel", "class"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
def test_nll_loss(shape, weighted, ignore, reduction, rng):
    x = rng.normal(size=shape)
    t, ignore_index = _index_target(rng, shape, ignore)
    w = rng.uniform(0.2, 2.0, _num_classes(shape)) if weighted else None
    check_vjp(
        nllkit.nll_loss, (x, t, w), (True, False, False), rng, ignore_index=ignore_index, reduction=reduction
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore", ["none", "sentinel", "class"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
def test_cross_entropy_index_target(shape, weighted, ignore, reduction, label_smoothing, rng):
    x = rng.normal(scale=1.5, size=shape)
    t, ignore_index = _index_target(rng, shape, ignore)
    w = rng.uniform(0.2, 2.0, _num_classes(shape)) if weighted else None
    check_vjp(
        nllkit.cross_entropy,
        (x, t, w),
        (True, False, False),
        rng,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


# --- cross_entropy (class-probability targets) -----------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("normalised", [True, False], ids=["probs", "unnormalised"])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 2, 2)], ids=str)
def test_cross_entropy_prob_target(shape, normalised, weighted, reduction, label_smoothing, rng):
    x = rng.normal(scale=1.5, size=shape)
    axis = _class_axis(shape)
    t = _probs(rng, shape, axis) if normalised else rng.uniform(0.0, 2.0, size=shape)
    w = rng.uniform(0.2, 2.0, _num_classes(shape)) if weighted else None
    check_vjp(
        nllkit.cross_entropy,
        (x, t, w),
        (True, True, weighted),
        rng,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


# --- binary cross-entropy -------------------------------------------------------------------


BCE_CASES = [  # (input shape, weight shape or None)
    ((6,), None),
    ((3, 4), None),
    ((3, 4), (4,)),
    ((3, 4), (3, 1)),
    ((3, 4), ()),
    ((2, 3, 2), (2, 3, 2)),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "weight_shape"), BCE_CASES, ids=str)
def test_binary_cross_entropy(shape, weight_shape, reduction, rng):
    p = rng.uniform(0.05, 0.95, size=shape)
    # Strictly inside (0, 1): the target is range-checked, so a difference
    # step must not leave [0, 1].
    y = rng.uniform(0.01, 0.99, size=shape)
    w = None if weight_shape is None else rng.uniform(0.2, 2.0, size=weight_shape)
    check_vjp(nllkit.binary_cross_entropy, (p, y, w), (True, True, False), rng, reduction=reduction)


BCE_LOGITS_CASES = [  # (input shape, weight shape, pos_weight shape)
    ((6,), None, None),
    ((3, 4), None, (4,)),
    ((3, 4), (3, 1), (4,)),
    ((3, 4), (4,), None),
    ((2, 3, 2), (2, 3, 2), (3, 1)),
    ((2, 3, 2), None, (2, 3, 2)),
]


def _bce_logits(input, target, weight, pos_weight, **settings):
    # pos_weight comes after `reduction` in the signature: pass it by name.
    return nllkit.binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight, **settings)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "weight_shape", "pos_weight_shape"), BCE_LOGITS_CASES, ids=str)
def test_binary_cross_entropy_with_logits(shape, weight_shape, pos_weight_shape, reduction, rng):
    x = rng.uniform(-4.0, 4.0, size=shape)
    y = rng.uniform(0.0, 1.0, size=shape)
    y.reshape(-1)[:2] = [0.0, 1.0]  # hard labels too (the target is not range-checked)
    w = None if weight_shape is None else rng.uniform(0.2, 2.0, size=weight_shape)
    pw = None if pos_weight_shape is None else rng.uniform(0.5, 3.0, size=pos_weight_shape)
    check_vjp(
        _bce_logits,
        (x, y, w, pw),
        (True, True, False, False),
        rng,
        reduction=reduction,
    )


# --- Poisson ----------------------------------------------------------------------------------


def _counts(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Targets away from the Stirling switch at t = 1: some in [0, 0.7], most in [1.5, 6]."""
    t = rng.uniform(1.5, 6.0, size=shape)
    small = rng.random(shape) < 0.35
    t[small] = rng.choice([0.0, 0.3, 0.7], size=int(small.sum()))
    return t


POISSON_SHAPES = [  # (input shape, target shape): equal and both broadcast directions
    ((3, 4), (3, 4)),
    ((3, 1), (3, 4)),
    ((3, 4), (4,)),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True], ids=["partial", "full"])
@pytest.mark.parametrize("log_input", [True, False], ids=["log_input", "rate_input"])
@pytest.mark.parametrize(("input_shape", "target_shape"), POISSON_SHAPES, ids=str)
def test_poisson_nll_loss(input_shape, target_shape, log_input, full, reduction, rng):
    x = rng.uniform(-1.0, 1.5, size=input_shape) if log_input else rng.uniform(0.5, 3.0, size=input_shape)
    t = _counts(rng, target_shape)
    check_vjp(
        nllkit.poisson_nll_loss,
        (x, t),
        (True, True),
        rng,
        log_input=log_input,
        full=full,
        reduction=reduction,
    )


# --- Gaussian ---------------------------------------------------------------------------------


GAUSSIAN_SHAPES = [  # (input, target, var)
    ((4, 3), (4, 3), (4, 3)),
    ((4, 3), (4, 3), (4,)),  # one fewer axis: one variance per row
    ((3, 3), (3, 3), (3,)),  # square input: still per row
    ((4, 3), (4, 3), (4, 1)),
    ((4, 3), (4, 3), (1, 3)),
    ((4, 3), (4, 3), (1, 1)),
    ((2, 3, 4), (2, 3, 4), (2, 1, 4)),
    ((2, 3, 4), (2, 3, 4), (2, 3)),
    ((5,), (5,), ()),
    ((4, 3), (4, 1), (4, 3)),  # the target broadcasts
    ((4, 1), (4, 3), (4, 1)),  # the input broadcasts
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True], ids=["partial", "full"])
@pytest.mark.parametrize(("input_shape", "target_shape", "var_shape"), GAUSSIAN_SHAPES, ids=str)
def test_gaussian_nll_loss(input_shape, target_shape, var_shape, full, reduction, rng):
    x = rng.normal(size=input_shape)
    t = rng.normal(size=target_shape)
    var = rng.uniform(0.2, 2.0, size=var_shape)
    check_vjp(nllkit.gaussian_nll_loss, (x, t, var), (True, True, True), rng, full=full, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_nll_loss_float_var(reduction, rng):
    """A Python float var is a constant: no gradient, the others still checked."""
    x, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    check_vjp(nllkit.gaussian_nll_loss, (x, t, 0.7), (True, True, False), rng, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_straight_through_clamp(reduction, rng):
    """Below eps the value is constant in var, but the gradient is the one at
    var = eps (straight through), which is the one-sided difference from above."""
    eps = 1e-3
    x, t = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    small = np.full((3, 2), eps / 10)
    small[0, 0] = 0.0
    at_eps = np.full((3, 2), eps)
    v = rng.standard_normal((3, 2) if reduction == "none" else ())
    out_small, pb_small = nllkit.vjp(nllkit.gaussian_nll_loss, x, t, small, eps=eps, reduction=reduction)
    out_eps, pb_eps = nllkit.vjp(nllkit.gaussian_nll_loss, x, t, at_eps, eps=eps, reduction=reduction)
    np.testing.assert_array_equal(out_small, out_eps)
    g_small, g_eps = pb_small(v), pb_eps(v)
    for a, b in zip(g_small, g_eps, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.all(g_small[2] != 0)
    # One-sided (forward) difference in var, from eps upwards.
    h = 1e-9
    base = _inner(nllkit.gaussian_nll_loss, (x, t, at_eps), v, {"eps": eps, "reduction": reduction})
    for k in np.ndindex(3, 2):
        bumped = at_eps.copy()
        bumped[k] += h
        up = _inner(nllkit.gaussian_nll_loss, (x, t, bumped), v, {"eps": eps, "reduction": reduction})
        np.testing.assert_allclose(g_small[2][k], (up - base) / h, rtol=1e-4)


# --- KL divergence ------------------------------------------------------------------------------


KL_SHAPES = [((4, 3), (4, 3)), ((4, 3), (1, 3)), ((4, 1), (4, 3)), ((2, 3, 2), (2, 3, 2)), ((5,), (5,))]


@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
@pytest.mark.parametrize("log_target", [False, True], ids=["prob_target", "log_target"])
@pytest.mark.parametrize(("input_shape", "target_shape"), KL_SHAPES, ids=str)
def test_kl_div(input_shape, target_shape, log_target, reduction, rng):
    x = np.log(rng.uniform(0.05, 1.0, size=input_shape))
    t = rng.uniform(0.05, 1.0, size=target_shape)
    if log_target:
        t = np.log(t)
    check_vjp(nllkit.kl_div, (x, t), (True, True), rng, reduction=reduction, log_target=log_target)


# --- softmax, log_softmax, logsumexp --------------------------------------------------------------


SOFTMAX_CASES = [
    ((), 0),
    ((5,), 0),
    ((5,), -1),
    ((3, 4), 0),
    ((3, 4), 1),
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
]


@pytest.mark.parametrize("fn", [nllkit.softmax, nllkit.log_softmax], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize(("shape", "dim"), SOFTMAX_CASES, ids=str)
def test_softmax_family(fn, shape, dim, rng):
    x = rng.normal(scale=2.0, size=shape)
    check_vjp(fn, (x,), (True,), rng, dim=dim)


LOGSUMEXP_CASES = [
    ((), 0),
    ((5,), 0),
    ((5,), (0,)),
    ((3, 4), 1),
    ((3, 4), -2),
    ((3, 4), (0, 1)),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, 0)),
    ((2, 3, 4), (1,)),
    ((2, 3, 4), (0, 1, 2)),
]


@pytest.mark.parametrize("keepdim", [False, True], ids=["drop", "keepdim"])
@pytest.mark.parametrize(("shape", "dim"), LOGSUMEXP_CASES, ids=str)
def test_logsumexp(shape, dim, keepdim, rng):
    x = rng.normal(scale=2.0, size=shape)
    check_vjp(nllkit.logsumexp, (x,), (True,), rng, dim=dim, keepdim=keepdim)


# --- compositions through the tape ---------------------------------------------------------------


def _nll_of_log_softmax(x, t, w):
    return nllkit.nll_loss(nllkit.log_softmax(x, 1), t, w, ignore_index=-100)


def _kl_of_softmaxes(x, y):
    return nllkit.kl_div(nllkit.log_softmax(x, 1), nllkit.softmax(y, 1), reduction="batchmean")


def _kl_same_array(x):
    # x reaches the loss through two paths: the gradients must add up.
    return nllkit.kl_div(nllkit.log_softmax(x, 1), nllkit.softmax(x, 1), reduction="sum")


def _ce_soft_target(x, z, w):
    return nllkit.cross_entropy(x, nllkit.softmax(z, 1), w, reduction="mean", label_smoothing=0.1)


def _gaussian_softmax_var(x, t, s):
    return nllkit.gaussian_nll_loss(x, t, nllkit.softmax(s, 1), reduction="none")


def _poisson_of_logsumexp(x, t):
    return nllkit.poisson_nll_loss(nllkit.logsumexp(x, 1), t, full=True, reduction="sum")


def _bce_of_softmax(x, y):
    return nllkit.binary_cross_entropy(nllkit.softmax(x, 1), y, reduction="sum")


def _ce_of_log_softmax_kdim(x, t):
    return nllkit.cross_entropy(nllkit.log_softmax(x, 1), t, reduction="none", label_smoothing=0.2)


def _logsumexp_of_log_softmax(x):
    return nllkit.logsumexp(nllkit.log_softmax(x, 0), (0, 2), keepdim=True)


def _composition_cases(
    rng: np.random.Generator,
) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...], tuple[bool, ...]]]:
    t = np.array([0, 2, -100, 1, 2])
    return {
        "nll_of_log_softmax": (
            _nll_of_log_softmax,
            (rng.normal(size=(5, 3)), t, rng.uniform(0.2, 2.0, 3)),
            (True, False, False),
        ),
        "kl_of_softmaxes": (
            _kl_of_softmaxes,
            (rng.normal(size=(4, 3)), rng.normal(size=(4, 3))),
            (True, True),
        ),
        "kl_same_array": (_kl_same_array, (rng.normal(size=(4, 3)),), (True,)),
        "ce_soft_target": (
            _ce_soft_target,
            (rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.uniform(0.2, 2.0, 3)),
            (True, True, True),
        ),
        "gaussian_softmax_var": (
            _gaussian_softmax_var,
            (rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))),
            (True, True, True),
        ),
        "poisson_of_logsumexp": (
            _poisson_of_logsumexp,
            (rng.normal(size=(4, 3)), _counts(rng, (4,))),
            (True, True),
        ),
        "bce_of_softmax": (
            _bce_of_softmax,
            (rng.normal(size=(4, 3)), rng.uniform(size=(4, 3))),
            (True, True),
        ),
        "ce_of_log_softmax_kdim": (
            _ce_of_log_softmax_kdim,
            (rng.normal(size=(2, 3, 2)), np.array([[0, 2], [-100, 1]])),
            (True, False),
        ),
        "logsumexp_of_log_softmax": (_logsumexp_of_log_softmax, (rng.normal(size=(2, 3, 4)),), (True,)),
    }


COMPOSITIONS = list(_composition_cases(np.random.default_rng(0)))


@pytest.mark.parametrize("name", COMPOSITIONS)
def test_composition(name, rng):
    fn, args, differentiable = _composition_cases(rng)[name]
    check_vjp(fn, args, differentiable, rng)


def _kl_sum(input, target):
    return nllkit.kl_div(input, target, reduction="sum")


def _gaussian_shared(x, t, var):
    return nllkit.gaussian_nll_loss(x, t, var, reduction="none")


@pytest.mark.parametrize("case", ["kl_div(a, a)", "gaussian(x, t, t)"])
def test_aliased_arguments_get_their_own_gradient(case, rng):
    """The same array passed in two positional slots: each slot gets the
    derivative with respect to that slot (as ``jax.vjp`` does), not the sum
    over every slot that holds the array."""
    if case == "kl_div(a, a)":
        a = rng.uniform(0.1, 0.9, size=(3, 2))
        check_vjp(_kl_sum, (a, a), (True, True), rng)
    else:
        x, t = rng.normal(size=(3, 2)), rng.uniform(0.5, 2.0, size=(3, 2))
        check_vjp(_gaussian_shared, (x, t, t), (True, True, True), rng)


def test_unused_argument_gets_no_gradient(rng):
    """A float argument no nllkit call reads gets None, not a zero that would be
    wrong if it were used through operations nllkit cannot see."""
    x, unused = rng.normal(size=(3, 4)), rng.normal(size=(2,))
    check_vjp(lambda x, u: nllkit.logsumexp(x, 1), (x, unused), (True, False), rng)


# --- value_and_grad ------------------------------------------------------------------------------


def test_value_and_grad_cross_entropy(rng):
    x = rng.normal(size=(4, 3))
    t = np.array([2, 0, -100, 1])
    w = rng.uniform(0.2, 2.0, 3)
    value, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, t, w, label_smoothing=0.1)
    assert float(value) == float(nllkit.cross_entropy(x, t, w, label_smoothing=0.1))
    expected = central_difference(nllkit.cross_entropy, (x, t, w), 0, np.ones(()), {"label_smoothing": 0.1})
    np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=ATOL)


def test_value_and_grad_argnums_tuple(rng):
    x, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    var = rng.uniform(0.2, 2.0, size=(4,))
    settings = {"full": True, "reduction": "sum"}
    value, grads = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=(2, 0))(x, t, var, **settings)
    assert float(value) == float(nllkit.gaussian_nll_loss(x, t, var, **settings))
    assert isinstance(grads, tuple) and len(grads) == 2
    args = (x, t, var)
    for g, i in zip(grads, (2, 0), strict=True):
        expected = central_difference(nllkit.gaussian_nll_loss, args, i, np.ones(()), settings)
        np.testing.assert_allclose(g, expected, rtol=RTOL, atol=ATOL)


# --- the torch and JAX routes --------------------------------------------------------------------


def _route_cases(
    rng: np.random.Generator,
) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...], tuple[bool, ...], dict[str, Any]]]:
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    return {
        "cross_entropy_index": (
            nllkit.cross_entropy,
            (rng.normal(size=(4, 3)), np.array([2, 0, -100, 1]), rng.uniform(0.2, 2.0, 3)),
            (True, False, False),
            {"label_smoothing": 0.2},
        ),
        "cross_entropy_prob": (
            nllkit.cross_entropy,
            (rng.normal(size=(4, 3)), _probs(rng, (4, 3), 1), rng.uniform(0.2, 2.0, 3)),
            (True, True, True),
            {"reduction": "sum"},
        ),
        "nll_loss": (
            nllkit.nll_loss,
            (rng.normal(size=(2, 3, 2)), np.array([[0, 2], [-100, 1]])),
            (True, False),
            {"reduction": "none"},
        ),
        "bce": (nllkit.binary_cross_entropy, (p, rng.uniform(size=(3, 4))), (True, True), {}),
        "bce_logits": (
            _bce_logits,
            (rng.normal(size=(3, 4)), rng.uniform(size=(3, 4)), None, rng.uniform(0.5, 3.0, 4)),
            (True, True, False, False),
            {},
        ),
        "poisson": (
            nllkit.poisson_nll_loss,
            (rng.normal(size=(3, 4)), _counts(rng, (3, 4))),
            (True, True),
            {"full": True},
        ),
        "gaussian": (
            nllkit.gaussian_nll_loss,
            (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(0.2, 2.0, (3,))),
            (True, True, True),
            {},
        ),
        "kl_div": (
            nllkit.kl_div,
            (rng.normal(size=(3, 4)), rng.normal(size=(3, 4))),
            (True, True),
            {"reduction": "batchmean", "log_target": True},
        ),
        "log_softmax": (nllkit.log_softmax, (rng.normal(size=(3, 4)),), (True,), {"dim": 1}),
        "softmax": (nllkit.softmax, (rng.normal(size=(3, 4)),), (True,), {"dim": 0}),
        "logsumexp": (nllkit.logsumexp, (rng.normal(size=(2, 3, 4)),), (True,), {"dim": (0, 2)}),
    }


ROUTES = list(_route_cases(np.random.default_rng(0)))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("name", ROUTES)
def test_torch_autograd_route(name, rng):
    import torch

    fn, args, differentiable, settings = _route_cases(rng)[name]
    out, pullback = nllkit.vjp(fn, *args, **settings)
    v = rng.standard_normal(np.shape(out))
    expected = pullback(v)
    tensors = [None if a is None else torch.tensor(a) for a in args]
    leaves = []
    for tensor, has_grad in zip(tensors, differentiable, strict=True):
        if has_grad:
            tensor.requires_grad_(True)
            leaves.append(tensor)
    result = fn(*tensors, **settings)
    np.testing.assert_allclose(result.detach().numpy(), out, rtol=1e-12, atol=1e-14)
    grads = torch.autograd.grad(result, leaves, grad_outputs=torch.tensor(v))
    got = iter(grads)
    for e, has_grad in zip(expected, differentiable, strict=True):
        if has_grad:
            np.testing.assert_allclose(next(got).numpy(), e, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
@pytest.mark.parametrize("name", ROUTES)
def test_jax_custom_vjp_route(name, rng):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    fn, args, differentiable, settings = _route_cases(rng)[name]
    out, pullback = nllkit.vjp(fn, *args, **settings)
    v = rng.standard_normal(np.shape(out))
    expected = pullback(v)
    positions = [i for i, d in enumerate(differentiable) if d]
    arrays = [None if a is None else jnp.asarray(a) for a in args]

    def inner(*diff_args):
        full = list(arrays)
        for i, a in zip(positions, diff_args, strict=True):
            full[i] = a
        return jnp.sum(jnp.asarray(v) * fn(*full, **settings))

    grads = jax.jit(jax.grad(inner, argnums=tuple(range(len(positions)))))(*(arrays[i] for i in positions))
    for i, g in zip(positions, grads, strict=True):
        np.testing.assert_allclose(np.asarray(g), expected[i], rtol=1e-12, atol=1e-14)
