"""The fused Numba path of the softmax-family losses against the generic path.

The generic forwards (``_cross_entropy_index_forward`` and friends, called
directly) define the semantics. Each fused result is compared with the
generic result computed on the same values in extended precision, and must agree
"within 4 ulp" of its own dtype (float32, float64, bfloat16), where ulps are
measured *at the scale of the operands*, because the results are differences
of larger numbers (``lse - x_y``, ``K p - 1``) whose cancellation is inherent:

* a loss: ``atol = 4 eps scale`` with, per row, ``scale = w_y (|lse| + |x'_y|)
  + eps_ls / C sum_c w_c (|x'_c| + |lse|) + z lse**2 + 1`` (summed over rows
  for ``'sum'``, divided by the weight sum for ``'mean'``), ``x'`` the
  (soft-capped) logits;
* a gradient: ``atol = 4 eps coef`` per row, with ``coef = |g| (|K| + |b| max_c
  w_c + |(1 - eps_ls) w_y|)`` the row's coefficients (the gradient is
  ``g (K p - b w - (1 - eps_ls) w_y e_y)``, times the soft-cap slope). With a
  soft-cap, the capped logits ``x'`` are themselves rounded to the dtype (as on
  the generic path), and an error of ``eps |x'|`` in them is a relative error
  in ``p``: ``coef_c`` adds ``|g K| p_c (|x'_c| + max_k |x'_k|)``.

``eps`` is the dtype's machine epsilon. The reference is the generic path run in
``np.longdouble`` (extended precision on x86), so the tolerance bounds the
fused path's own error.
"""

from __future__ import annotations

import itertools
import math
import warnings
import zlib

import numpy as np
import pytest

pytest.importorskip("numba")
ml_dtypes = pytest.importorskip("ml_dtypes")

import nllkit  # noqa: E402
from nllkit.losses import _fused_classification as fused  # noqa: E402
from nllkit.losses._classification import (  # noqa: E402
    _cross_entropy_index_forward,
    _cross_entropy_prob_forward,
    _nll_forward,
)
from nllkit.losses._softmax import _log_softmax_forward, _logsumexp_forward, _softmax_forward  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float32), np.dtype(np.float64), BF16]
SHAPES = [(7,), (5, 7), (4, 7, 3), (3, 7, 2, 3), (3, 2100)]  # (3, 2100): rows of two chunks
EPS = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52, BF16: 2.0**-7}


def _seed(*case: object) -> int:
    """A seed per test case, the same in every run (``hash`` of a str is not)."""
    return zlib.crc32(repr(case).encode())


def _eps(dtype: np.dtype) -> float:
    return EPS[np.dtype(dtype)]


def _generic(forward, *arrays, **kw):
    """The generic forward on extended-precision copies (``np.longdouble``, 64-bit
    significand on x86: a reference more accurate than float64); silences the
    warnings NumPy raises for an empty 'mean' (0 / 0)."""
    up = [
        None if a is None else (a.astype(np.longdouble) if a.dtype.kind == "f" or a.dtype == BF16 else a)
        for a in arrays
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, pullback = forward(*up, **kw)

    def pb(cotangent):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [
                None if g is None else np.asarray(g, np.float64) for g in pullback(np.asarray(cotangent, np.longdouble))
            ]

    return np.asarray(out, np.float64), pb


def _classes(shape: tuple[int, ...]) -> int:
    return shape[0] if len(shape) == 1 else shape[1]


def _target_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return () if len(shape) == 1 else (shape[0],) + shape[2:]


def _moved(a: np.ndarray) -> np.ndarray:
    """``(N, C, ...)`` -> ``(rows, C)`` (class axis last), ``(C,)`` -> ``(1, C)``."""
    if a.ndim == 1:
        return a.reshape(1, -1)
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _capped(x: np.ndarray, softcap: float | None) -> np.ndarray:
    x = _moved(x.astype(np.float64))
    return x if softcap is None else softcap * np.tanh(x / softcap)


def _cap_term(xc: np.ndarray, k: np.ndarray, softcap: float | None) -> np.ndarray | float:
    """Per-element gradient scale from rounding the soft-capped logits (see the
    module docstring): ``|K| p_c (|x'_c| + max_k |x'_k|)``, 0 without a cap."""
    if softcap is None:
        return 0.0
    with np.errstate(invalid="ignore"):
        p = np.nan_to_num(np.exp(xc - _lse(xc)[:, None]))
    xa = np.abs(xc)
    return np.abs(k)[:, None] * p * (xa + xa.max(axis=1, keepdims=True))


def _lse(xc: np.ndarray) -> np.ndarray:
    m = xc.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return (m + np.log(np.exp(xc - m).sum(axis=1, keepdims=True)))[:, 0]


def _index_scales(x, y, w, ignore_index, reduction, eps_ls, z, softcap, cot):
    """(loss atol scale, per-row gradient scale) as described in the module docstring."""
    xc = _capped(x, softcap)
    n_cls = xc.shape[1]
    yy = np.asarray(y).reshape(-1)
    kept = yy != ignore_index
    yk = np.where(kept, yy, 0)
    wv = np.ones(n_cls) if w is None else w.astype(np.float64)
    lse = np.where(kept, _lse(xc), 0.0)
    lse = np.nan_to_num(lse, nan=0.0, posinf=0.0, neginf=0.0)
    xa = np.nan_to_num(np.abs(xc), nan=0.0, posinf=0.0)
    wy = np.where(kept, wv[yk], 0.0)
    row = wy * (np.abs(lse) + xa[np.arange(len(yk)), yk])
    row = row + eps_ls / n_cls * (np.abs(wv) * (xa + np.abs(lse)[:, None])).sum(axis=1) + z * lse**2 + 1.0
    row = np.where(kept, row, 1.0)
    denom = abs(wy.sum()) if reduction == "mean" else 1.0
    g = np.ones(len(yy)) if reduction != "none" else np.abs(np.asarray(cot, np.float64)).reshape(-1)
    if reduction == "mean" and denom:
        g = g / denom
    elif reduction != "none":
        g = g * abs(float(cot))
    k = (1 - eps_ls) * wy + eps_ls * wv.sum() / n_cls + 2 * z * np.abs(lse)
    coef = g * (np.abs(k) + eps_ls / n_cls * np.abs(wv).max() + (1 - eps_ls) * np.abs(wy))
    coef = (coef[:, None] + g[:, None] * _cap_term(xc, k, softcap)) if softcap is not None else coef
    loss_scale = row if reduction == "none" else row.sum() / (denom if reduction == "mean" and denom else 1.0)
    return loss_scale, coef


def _assert_close(got, want, atol, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    both_nan = np.isnan(got) & np.isnan(want)
    with np.errstate(invalid="ignore"):
        err = np.where(both_nan, 0.0, np.abs(got - want))
    err = np.where(np.isinf(want) & (got == want), 0.0, err)
    bad = ~(err <= atol)
    assert not bad.any(), f"{what}: max err {np.nanmax(err)} > atol at {np.argwhere(bad)[:3].tolist()}"


def _grad_atol(coef: np.ndarray, shape: tuple[int, ...], eps: float) -> np.ndarray:
    """Per-element tolerance from per-row (or per-element ``(rows, C)``)
    coefficients, in the input's layout."""
    n_cls = _classes(shape)
    per = np.broadcast_to(coef[:, None] if coef.ndim == 1 else coef, (len(coef), n_cls))  # rows in (N, d...) order
    if len(shape) == 1:
        return 4 * eps * per.reshape(shape)
    moved = per.reshape((shape[0],) + shape[2:] + (n_cls,))
    return 4 * eps * np.moveaxis(moved, -1, 1)


def _cot(reduction: str, out_shape: tuple[int, ...], rng: np.random.Generator, unit: bool) -> np.ndarray:
    if reduction != "none":
        return np.float64(1.0 if unit else 2.5)
    return np.ones(out_shape) if unit else rng.uniform(0.5, 2.0, out_shape)


# --- class-index targets ------------------------------------------------------------------------------

INDEX_GRID = list(
    itertools.product(
        ["mean", "sum", "none"],  # reduction
        [False, True],  # weight
        [-100, 1],  # ignore_index (1 is a valid class: skipped)
        [0.0, 0.1],  # label smoothing
        [0.0, 1e-3],  # z-loss
        [None, 30.0],  # soft-cap
    )
)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("need_grad", [True, False])
def test_index_matches_generic(dtype: np.dtype, shape: tuple[int, ...], need_grad: bool) -> None:
    rng = np.random.default_rng(_seed(dtype.name, shape, need_grad))
    n_cls = _classes(shape)
    eps = _eps(dtype)
    for reduction, weighted, ignore_index, ls, z, cap in INDEX_GRID:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        y = rng.integers(0, n_cls, _target_shape(shape))
        if y.ndim:
            y.reshape(-1)[:: max(1, y.size // 3)] = ignore_index  # skipped (1 is also a valid class)
        w = rng.uniform(0.2, 2.0, n_cls).astype(dtype) if weighted else None
        kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=ls, z_loss=z, softcap=cap)
        ref, ref_pb = _generic(_cross_entropy_index_forward, x, y, w, **kw)
        case = f"{reduction} w={weighted} ii={ignore_index} ls={ls} z={z} cap={cap}"
        for unit in (True, False):
            res = fused.cross_entropy_index_fused(x, y, w, need_grad=need_grad, **kw)
            assert res is not None
            out, pb = res
            assert out.dtype == dtype and np.shape(out) == np.shape(ref), case
            cot = _cot(reduction, np.shape(ref), rng, unit)
            loss_scale, coef = _index_scales(x, y, w, ignore_index, reduction, ls, z, cap, cot)
            _assert_close(out, ref, 4 * eps * np.reshape(loss_scale, np.shape(ref)), "loss " + case)
            grad = pb(cot if reduction == "none" else float(cot))
            gref = ref_pb(np.asarray(cot))
            assert grad[1] is None and grad[2] is None
            assert grad[0].shape == x.shape
            _assert_close(grad[0], gref[0], _grad_atol(coef, shape, eps), f"grad unit={unit} " + case)


def test_index_unit_cotangent_returns_the_precomputed_gradient() -> None:
    x = np.random.default_rng(0).standard_normal((4, 9)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    kw = dict(ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0, softcap=None)
    _, pb = fused.cross_entropy_index_fused(x, y, None, need_grad=True, **kw)
    assert pb(1.0)[0] is pb(np.float32(1.0))[0]


# --- probability targets --------------------------------------------------------------------------------

PROB_GRID = list(itertools.product(["mean", "sum", "none"], [False, True], [0.0, 0.1], [0.0, 1e-3], [None, 30.0]))


def _prob_tolerances(x, t, w, reduction, ls, z, cap, cot, eps):
    xc = _capped(x, cap)
    n_cls = xc.shape[1]
    tt = _moved(t.astype(np.float64))
    q = (1 - ls) * tt + ls / n_cls
    wv = np.ones(n_cls) if w is None else w.astype(np.float64)
    lse = np.nan_to_num(_lse(xc))
    wq = np.abs(wv * q)
    row = (wq * (np.abs(xc) + np.abs(lse)[:, None])).sum(axis=1) + z * lse**2 + 1.0
    rows = xc.shape[0]
    g = np.abs(np.asarray(cot, np.float64)).reshape(-1) if reduction == "none" else np.full(rows, abs(float(cot)))
    if reduction == "mean":
        g = g / max(rows, 1)
    loss_scale = row if reduction == "none" else row.sum() / (max(rows, 1) if reduction == "mean" else 1)
    coef_x = g * (wq.sum(axis=1) + 2 * z * np.abs(lse) + wq.max(axis=1))
    if cap is not None:
        coef_x = coef_x[:, None] + g[:, None] * _cap_term(xc, wq.sum(axis=1) + 2 * z * np.abs(lse), cap)
    coef_t = g * (1 - ls) * np.abs(wv).max() * (np.abs(xc).max(axis=1) + np.abs(lse))
    coef_w = (g[:, None] * np.abs(q) * (np.abs(xc) + np.abs(lse)[:, None])).sum(axis=0)
    return (
        4 * eps * np.reshape(loss_scale, np.shape(cot) if reduction == "none" else ()),
        coef_x,
        coef_t,
        4 * eps * coef_w + 4 * eps * np.abs(coef_w).max(),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("need_grad", [True, False])
def test_prob_matches_generic(dtype: np.dtype, shape: tuple[int, ...], need_grad: bool) -> None:
    rng = np.random.default_rng(_seed("prob", dtype.name, shape, need_grad))
    n_cls = _classes(shape)
    eps = _eps(dtype)
    for reduction, weighted, ls, z, cap in PROB_GRID:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        t = _random_probs(shape, rng, dtype)
        w = rng.uniform(0.2, 2.0, n_cls).astype(dtype) if weighted else None
        kw = dict(reduction=reduction, label_smoothing=ls, z_loss=z, softcap=cap)
        ref, ref_pb = _generic(_cross_entropy_prob_forward, x, t, w, **kw)
        case = f"{reduction} w={weighted} ls={ls} z={z} cap={cap}"
        for unit in (True, False):
            out, pb = fused.cross_entropy_prob_fused(x, t, w, need_grad=need_grad, **kw)
            assert out.dtype == dtype and np.shape(out) == np.shape(ref), case
            cot = _cot(reduction, np.shape(ref), rng, unit)
            loss_atol, coef_x, coef_t, atol_w = _prob_tolerances(x, t, w, reduction, ls, z, cap, cot, eps)
            _assert_close(out, ref, loss_atol, "loss " + case)
            gx, gt, gw = pb(cot if reduction == "none" else float(cot))
            rx, rt, rw = ref_pb(np.asarray(cot))
            _assert_close(gx, rx, _grad_atol(coef_x, shape, eps), "grad x " + case)
            _assert_close(gt, rt, _grad_atol(coef_t, shape, eps), "grad t " + case)
            assert (gw is None) == (rw is None), case
            if gw is not None:
                _assert_close(gw, rw, atol_w, "grad w " + case)


# --- edge cases -----------------------------------------------------------------------------------------

KW = dict(label_smoothing=0.0, z_loss=0.0, softcap=None)


@pytest.mark.parametrize("shape", [(6, 7), (6, 300), (6, 7, 3)], ids=str)
def test_all_ignored(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = np.full(_target_shape(shape), -100)
    out, pb = fused.cross_entropy_index_fused(x, y, None, ignore_index=-100, reduction="mean", need_grad=True, **KW)
    assert np.isnan(out)
    grad = pb(1.0)[0]
    assert grad.shape == x.shape and not grad.any()
    out, _ = fused.cross_entropy_index_fused(x, y, None, ignore_index=-100, reduction="sum", need_grad=False, **KW)
    assert out == 0.0


def _random_probs(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    n_cls = _classes(shape)
    t = rng.dirichlet(np.ones(n_cls), size=math.prod(shape) // n_cls)
    if len(shape) == 1:
        return t[0].astype(dtype)
    return np.ascontiguousarray(np.moveaxis(t.reshape((shape[0],) + shape[2:] + (n_cls,)), -1, 1)).astype(dtype)


def _poison(x: np.ndarray, y: np.ndarray) -> list[tuple]:
    """Put NaN, +inf and -inf into two positions (ignored), return their index tuples."""
    if x.ndim == 2:
        x[1, :] = np.nan
        x[2, 0], x[2, 1] = np.inf, -np.inf
        y[1] = y[2] = -100
        return [np.s_[1, :], np.s_[2, :]]
    x[0, :, 1] = np.nan
    x[0, 0, 2], x[0, 1, 2] = np.inf, -np.inf
    y[0, 1] = y[0, 2] = -100
    return [np.s_[0, :, 1], np.s_[0, :, 2]]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(4, 9), (4, 3000), (4, 9, 5)], ids=str)
@pytest.mark.parametrize("need_grad", [True, False])
def test_nan_and_inf_in_ignored_rows_give_zero_gradient(dtype: np.dtype, shape, need_grad: bool) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[1], _target_shape(shape))
    where = _poison(x, y)
    for ls, cap in ((0.0, None), (0.1, 30.0)):
        kw = dict(ignore_index=-100, reduction="none", label_smoothing=ls, z_loss=1e-3, softcap=cap)
        out, pb = fused.cross_entropy_index_fused(x, y, None, need_grad=need_grad, **kw)
        grad = pb(np.ones(y.shape))[0].astype(np.float64)
        for ix in where:
            assert np.all(grad[ix] == 0.0), (ls, cap)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(np.asarray(out, np.float64)))
        ref, _ = _generic(_cross_entropy_index_forward, x, y, None, **kw)
        np.testing.assert_array_equal(np.asarray(out, np.float64) == 0, np.asarray(ref) == 0)


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)], ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(5, 11), (5, 2500), (5, 11, 4)], ids=str)
def test_extreme_logits(dtype: np.dtype, shape) -> None:
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([-1e4, 1e4, 0.0, 3.0, -np.inf]), size=shape).astype(dtype)
    x[:, 0] = 1e4  # every row has a finite maximum
    y = rng.integers(1, shape[1], _target_shape(shape))
    np.put_along_axis(x, np.expand_dims(y, 1), 7.0, axis=1)  # a finite target logit
    for red, z in (("none", 0.0), ("mean", 1e-3)):
        kw = dict(ignore_index=-100, reduction=red, label_smoothing=0.0, z_loss=z, softcap=None)
        out, pb = fused.cross_entropy_index_fused(x, y, None, need_grad=True, **kw)
        ref, ref_pb = _generic(_cross_entropy_index_forward, x, y, None, **kw)
        cot = np.ones(np.shape(ref)) if red == "none" else 1.0
        loss_scale, coef = _index_scales(x, y, None, -100, red, 0.0, z, None, np.asarray(cot))
        _assert_close(out, ref, 4 * _eps(dtype) * np.reshape(loss_scale, np.shape(ref)), "loss")
        grad = pb(cot)[0]
        _assert_close(grad, ref_pb(np.asarray(cot))[0], _grad_atol(coef, shape, _eps(dtype)), "grad")
        assert np.all(grad[np.isneginf(x)] == 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(6, 10), (6, 3000), (3, 10, 4), (7,)], ids=str)
@pytest.mark.parametrize("cap", [None, 20.0])
def test_gradient_in_place_into_the_logits(dtype: np.dtype, shape, cap) -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = rng.integers(0, _classes(shape), _target_shape(shape))
    kw = dict(ignore_index=-100, reduction="sum", label_smoothing=0.1, z_loss=1e-3, softcap=cap)
    out_ref, pb_ref = fused.cross_entropy_index_fused(x.copy(), y, None, need_grad=True, **kw)
    g_ref = pb_ref(1.0)[0].copy()
    for need_grad in (True, False):
        buf = x.copy()
        out, pb = fused.cross_entropy_index_fused(buf, y, None, need_grad=need_grad, grad_out=buf, **kw)
        grad = pb(1.0)[0]
        assert grad is buf
        assert out == out_ref
        np.testing.assert_array_equal(np.asarray(grad, np.float64), np.asarray(g_ref, np.float64))
    t = _random_probs(shape, rng, dtype)
    kwp = dict(reduction="mean", label_smoothing=0.1, z_loss=1e-3, softcap=cap)
    out_ref, pb_ref = fused.cross_entropy_prob_fused(x.copy(), t, None, need_grad=True, **kwp)
    refs = [None if g is None else g.copy() for g in pb_ref(1.0)]
    buf = x.copy()
    out, pb = fused.cross_entropy_prob_fused(buf, t, None, need_grad=True, grad_out=buf, **kwp)
    grads = pb(1.0)
    assert grads[0] is buf and out == out_ref
    for g, r in zip(grads, refs, strict=True):
        if r is not None:
            np.testing.assert_array_equal(np.asarray(g, np.float64), np.asarray(r, np.float64))


def test_grad_out_partial_overlap_is_declined() -> None:
    x = np.zeros((4, 8), np.float32)
    y = np.zeros(4, np.int64)
    big = np.zeros((5, 8), np.float32)
    kw = dict(ignore_index=-100, reduction="sum", **KW)
    assert fused.cross_entropy_index_fused(big[:4], y, None, need_grad=True, grad_out=big[1:], **kw) is None
    assert fused.cross_entropy_index_fused(x.astype(np.float16), y, None, need_grad=True, **kw) is None


@pytest.mark.parametrize("shape", [(0, 5), (0, 5, 3), (2, 5, 0)], ids=str)
def test_empty_batch(shape) -> None:
    x = np.zeros(shape, np.float32)
    y = np.zeros(_target_shape(shape), np.int64)
    for red in ("mean", "sum", "none"):
        kw = dict(ignore_index=-100, reduction=red, **KW)
        ref, _ = _generic(_cross_entropy_index_forward, x, y, None, **kw)
        for need_grad in (True, False):
            out, pb = fused.cross_entropy_index_fused(x, y, None, need_grad=need_grad, **kw)
            np.testing.assert_array_equal(np.asarray(out), np.asarray(ref, np.float32))
            assert pb(np.ones(np.shape(ref)) if red == "none" else 1.0)[0].shape == shape
        ref, _ = _generic(_cross_entropy_prob_forward, x, x, None, reduction=red, **KW)
        out, pb = fused.cross_entropy_prob_fused(x, x, None, reduction=red, need_grad=True, **KW)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref, np.float32))
        if red == "sum":
            assert math.copysign(1.0, float(out)) == math.copysign(1.0, float(ref))


# --- nll_loss, log_softmax, softmax, logsumexp -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nll_matches_generic(dtype: np.dtype, shape) -> None:
    rng = np.random.default_rng(5)
    for reduction, weighted, ignore_index in itertools.product(["mean", "sum", "none"], [False, True], [-100, 1]):
        x = rng.standard_normal(shape).astype(dtype)
        y = rng.integers(0, _classes(shape), _target_shape(shape))
        w = rng.uniform(0.2, 2, _classes(shape)).astype(dtype) if weighted else None
        kw = dict(ignore_index=ignore_index, reduction=reduction)
        ref, ref_pb = _generic(_nll_forward, x, y, w, **kw)
        out, pb = fused.nll_fused(x, y, w, need_grad=True, **kw)
        scale = np.abs(np.asarray(ref, np.float64)).sum() + 1
        _assert_close(out, ref, 4 * _eps(dtype) * scale, "nll")
        cot = np.full(np.shape(ref), 1.5)
        _assert_close(pb(cot)[0], ref_pb(cot)[0], 4 * _eps(dtype) * 3, "nll grad")


NORMALISED_SHAPES = [((), 0), ((7,), 0), ((5, 7), 1), ((5, 7), 0), ((3, 2100), 1), ((3, 7, 4), 1), ((2, 3, 4, 5), 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize(("shape", "dim"), NORMALISED_SHAPES, ids=str)
def test_log_softmax_and_softmax_match_generic(dtype: np.dtype, shape, dim) -> None:
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    eps = _eps(dtype)
    cot = rng.standard_normal(shape)
    for name, f, g in (
        ("log_softmax", fused.log_softmax_fused, _log_softmax_forward),
        ("softmax", fused.softmax_fused, _softmax_forward),
    ):
        ref, ref_pb = _generic(g, x, dim=dim)
        out, pb = f(x, dim=dim, need_grad=True)
        assert out.dtype == dtype and out.shape == np.shape(ref)
        xa = np.abs(x.astype(np.float64))
        scale = 4 * eps * (xa.max(initial=0) + np.abs(np.asarray(ref)).max(initial=0) + 1)
        _assert_close(out, ref, scale if name == "log_softmax" else 4 * eps * (np.abs(ref) + 1e-30) + 2 * eps, name)
        gref = ref_pb(cot)[0]
        _assert_close(pb(cot)[0], gref, 8 * eps * (np.abs(cot).sum() + 1), name + " grad")


def test_normalised_special_values() -> None:
    x = np.array([[1.0, np.inf, 0.0], [-np.inf, -np.inf, -np.inf], [np.nan, 1.0, 2.0], [0.0, -np.inf, 1.0]])
    for f, g in ((fused.log_softmax_fused, _log_softmax_forward), (fused.softmax_fused, _softmax_forward)):
        out, _ = f(x, dim=1, need_grad=False)
        ref, _ = _generic(g, x, dim=1)
        np.testing.assert_allclose(out, ref, rtol=1e-15, equal_nan=True)
    out, _ = fused.logsumexp_fused(x, dim=(1,), keepdim=False, need_grad=False)
    ref, _ = _generic(_logsumexp_forward, x, dim=(1,), keepdim=False)
    np.testing.assert_allclose(out, ref, rtol=1e-15, equal_nan=True)


LSE_CASES = [
    ((), (0,), False),
    ((7,), (0,), True),
    ((5, 7), (1,), False),
    ((5, 7), (0,), True),
    ((3, 4, 5), (1, 2), False),
    ((3, 4, 5), (0, 1), True),
    ((2, 3, 4, 5), (2,), False),
    ((4, 0), (1,), False),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize(("shape", "dim", "keepdim"), LSE_CASES, ids=str)
def test_logsumexp_matches_generic(dtype: np.dtype, shape, dim, keepdim) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    ref, ref_pb = _generic(_logsumexp_forward, x, dim=dim, keepdim=keepdim)
    out, pb = fused.logsumexp_fused(x, dim=dim, keepdim=keepdim, need_grad=True)
    assert out.dtype == dtype and np.shape(out) == np.shape(ref)
    eps = _eps(dtype)
    _assert_close(out, ref, 4 * eps * (np.abs(np.asarray(ref, np.float64)) + 1), "lse")
    cot = rng.standard_normal(np.shape(ref))
    _assert_close(pb(cot)[0], ref_pb(cot)[0], 8 * eps * (np.abs(cot).max(initial=0) + 1), "lse grad")


def test_logsumexp_declines_non_adjacent_axes() -> None:
    assert fused.logsumexp_fused(np.zeros((2, 3, 4)), dim=(0, 2), keepdim=False, need_grad=False) is None


# --- through the public API -------------------------------------------------------------------------------


def test_public_api_uses_the_fused_path_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 50)).astype(np.float32)
    y = rng.integers(0, 50, 8)
    w = rng.uniform(0.5, 1.5, 50).astype(np.float32)
    kw = dict(weight=w, label_smoothing=0.1, z_loss=1e-3, softcap=30.0)
    loss, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, y, **kw)
    monkeypatch.setenv("NLLKIT_DISABLE_FUSED", "1")
    loss_g, grad_g = nllkit.value_and_grad(nllkit.cross_entropy)(x, y, **kw)
    np.testing.assert_allclose(loss, loss_g, rtol=1e-5)
    np.testing.assert_allclose(grad, grad_g, rtol=1e-4, atol=1e-7)
