r"""Fused one-pass kernels for the elementwise losses: Poisson, Gaussian, BCE,
BCE with logits and KL divergence.

One parallel pass over the data computes the loss (written elementwise, or
summed in float64) and, when asked, the gradients, so a forward plus backward
reads each operand once and writes each gradient once, where the generic
array-API path makes a dozen temporaries.

Layout
------
The data is read as ``rows x cols`` (``cols`` is the last axis; a flat array is
one row). The two *auxiliary* operands (Gaussian ``var``; BCE ``weight``;
BCE-with-logits ``weight`` and ``pos_weight``) are read either as a vector
along each row (the input's shape, or one row shared by all rows:
``rs = cols`` or ``0``) or as one value per row (``rs = 1``, or ``0`` for a
single value). Work is cut into tasks of about :data:`BLOCK` elements: whole
rows, or pieces of one long row. Sums go through a per-task float64
accumulator, combined in task order after the parallel loop, so the result
does not depend on the number of threads.

Floating point
--------------
The element formulas are evaluated in the data's dtype, in the order the
generic path uses, with only ``contract`` (FMA) allowed: no reassociation,
NaN and infinities propagate as in NumPy, division by zero gives ``inf``
(``error_model='numpy'``). Only the float64 sums (:func:`_sum64`) may be
reassociated, which is what lets LLVM vectorize them. ``exp`` comes from
:mod:`nllkit._kernels._exp`; ``log`` and ``log1p`` are written here the same
way (bit manipulation and a polynomial), since Numba's ``math.log`` is a
scalar libm call that stops vectorization.

Each variant (loss, its options, whether gradients are computed, operand
layout) is compiled on first use by :func:`kernel`, with those choices frozen
in as constants so that only the one inner loop needed is compiled and
vectorized; the compiled code is cached on disk (``cache=True``). Numba's
cache is keyed on this file only: after editing ``_exp.py``, clear
``__pycache__``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from nllkit._kernels._exp import _LN2HI_32, _LN2HI_64, _LN2LO_32, _LN2LO_64, exp32, exp64

# Elements per parallel task, and per sub-chunk whose losses are buffered and
# summed (the buffer stays in L1).
BLOCK = 1 << 15
SUB = 1 << 10

# Strict IEEE arithmetic plus FMA contraction; see the module docstring.
_FLAGS = {"contract"}
# parallel=True with only the explicit prange loop parallelized: Numba's other
# parallel rewrites (NumPy calls such as np.zeros into parallel loops, fusion,
# reductions) have nothing to gain here and take about 40 % of the compile time.
_PARALLEL = {
    "prange": True,
    "numpy": False,
    "fusion": False,
    "comprehension": False,
    "setitem": False,
    "reduction": False,
    "stencil": False,
    "inplace_binop": False,
}

# Loss kinds.
POISSON, GAUSSIAN, BCE, BCE_LOGITS, KL = range(5)
# What to do with the loss: nothing, write it elementwise, or sum it.
SKIP, WRITE, REDUCE = range(3)
# An auxiliary operand: absent, a vector along the row, or one value per row.
ABSENT, VECTOR, PER_ROW = range(3)
# The gradient of auxiliary operand 1 (Gaussian var): none, elementwise, or summed per row.
AUX_NONE, AUX_ELEMENTWISE, AUX_ROW_SUM = range(3)


# --- bit casts --------------------------------------------------------------------------


# Typed as Any: mypy reads an intrinsic's call signature as its typing function's.


def _to_bits_typing(typingctx: Any, x: Any) -> Any:
    """The bits of a float as a signed integer of the same width (``bitcast``)."""
    ity: Any
    res: Any
    if x == types.float32:
        ity, res = ir.IntType(32), types.int32
    elif x == types.float64:
        ity, res = ir.IntType(64), types.int64
    else:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ity)

    return res(x), codegen


def _from_bits_typing(typingctx: Any, i: Any) -> Any:
    """The float whose bits are the integer ``i`` (int32 or int64)."""
    fty: Any
    res: Any
    if i == types.int32:
        fty, res = ir.FloatType(), types.float32
    elif i == types.int64:
        fty, res = ir.DoubleType(), types.float64
    else:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], fty)

    return res(i), codegen


_to_bits: Any = intrinsic(_to_bits_typing)
_from_bits: Any = intrinsic(_from_bits_typing)


# --- log and log1p ------------------------------------------------------------------------
#
# x = 2^k m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f):
#   log(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s^2)),  R(z) = sum_{j>=1} 2 z^j / (2j + 1),
# and log x = k ln2_hi + (k ln2_lo + log(1 + f)), the large terms added last.
# |s| <= 0.1716 (z <= 0.0295): the Taylor series of R truncated after 4 terms
# (float32) or 10 terms (float64) is below 0.01 ulp. Max error, measured:
# 0.86 ulp over every positive float32, 0.84 ulp on 4e6 float64 samples.

_F32 = np.float32
_R32 = tuple(_F32(2.0 / (2 * j + 1)) for j in range(1, 5))
_R32_1, _R32_2, _R32_3, _R32_4 = _R32
_R64 = tuple(2.0 / (2 * j + 1) for j in range(1, 11))
_R64_1, _R64_2, _R64_3, _R64_4, _R64_5, _R64_6, _R64_7, _R64_8, _R64_9, _R64_10 = _R64
_TINY_32 = _F32(np.finfo(np.float32).tiny)
_TINY_64 = float(np.finfo(np.float64).tiny)
_SQRT2_32 = _F32(math.sqrt(2.0))
_SQRT2_64 = math.sqrt(2.0)
_I32 = np.int32
_I64 = np.int64
_INF_32 = _F32(np.inf)
_NAN_32 = _F32(np.nan)


@njit(types.float32(types.float32), fastmath=_FLAGS, error_model="numpy", cache=True, nogil=True)
def log32(x: float) -> float:
    """``log`` of a float32 in float32 arithmetic, vectorizable (max error 0.86 ulp)."""
    tiny = x < _TINY_32
    # Subnormals: scale by 2^25 into the normal range first (exact).
    xs = x * _F32(33554432.0) if tiny else x
    bits = _to_bits(xs)
    e = (bits >> _I32(23)) - _I32(127)
    m = _from_bits(_I32((bits & _I32(0x007FFFFF)) | _I32(0x3F800000)))
    big = m > _SQRT2_32
    m = m * _F32(0.5) if big else m
    k = _F32(e) + (_F32(1.0) if big else _F32(0.0)) - (_F32(25.0) if tiny else _F32(0.0))
    f = m - _F32(1.0)
    s = f / (_F32(2.0) + f)
    z = s * s
    r = z * (((_R32_4 * z + _R32_3) * z + _R32_2) * z + _R32_1)
    hfsq = _F32(0.5) * f * f
    y = k * _LN2HI_32 - ((hfsq - (s * (hfsq + r) + k * _LN2LO_32)) - f)
    # The comparisons are written so that NaN ends up NaN.
    y = -_INF_32 if x == _F32(0.0) else y
    y = y if x >= _F32(0.0) else _NAN_32
    return _INF_32 if x == _INF_32 else y


@njit(types.float64(types.float64), fastmath=_FLAGS, error_model="numpy", cache=True, nogil=True)
def log64(x: float) -> float:
    """``log`` of a float64, vectorizable (max error 0.84 ulp measured)."""
    tiny = x < _TINY_64
    xs = x * 18014398509481984.0 if tiny else x  # 2^54
    bits = _to_bits(xs)
    e = (bits >> _I64(52)) - _I64(1023)
    m = _from_bits(_I64((bits & _I64(0x000FFFFFFFFFFFFF)) | _I64(0x3FF0000000000000)))
    big = m > _SQRT2_64
    m = m * 0.5 if big else m
    k = float(e) + (1.0 if big else 0.0) - (54.0 if tiny else 0.0)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    q = _R64_10
    q = q * z + _R64_9
    q = q * z + _R64_8
    q = q * z + _R64_7
    q = q * z + _R64_6
    q = q * z + _R64_5
    q = q * z + _R64_4
    q = q * z + _R64_3
    q = q * z + _R64_2
    r = z * (q * z + _R64_1)
    hfsq = 0.5 * f * f
    y = k * _LN2HI_64 - ((hfsq - (s * (hfsq + r) + k * _LN2LO_64)) - f)
    y = -np.inf if x == 0.0 else y
    y = y if x >= 0.0 else np.nan
    return np.inf if x == np.inf else y


@njit(types.float32(types.float32), fastmath=_FLAGS, error_model="numpy", cache=True, nogil=True)
def log1p32(x: float) -> float:
    """``log1p`` of a float32: ``log(u) + (x - (u - 1)) / u`` with ``u = 1 + x``,
    the second term restoring what rounding ``u`` lost."""
    u = _F32(1.0) + x
    y = log32(u)
    c = (x - (u - _F32(1.0))) / u
    return y if (u == _F32(0.0) or u == _INF_32) else y + c


@njit(types.float64(types.float64), fastmath=_FLAGS, error_model="numpy", cache=True, nogil=True)
def log1p64(x: float) -> float:
    """``log1p`` of a float64 (see :func:`log1p32`)."""
    u = 1.0 + x
    y = log64(u)
    c = (x - (u - 1.0)) / u
    return y if (u == 0.0 or u == np.inf) else y + c


# --- dtype-generic helpers --------------------------------------------------------------------


def _exp(x: float) -> float:
    raise NotImplementedError  # only called from jitted code


def _log(x: float) -> float:
    raise NotImplementedError


def _log1p(x: float) -> float:
    raise NotImplementedError


def _c(like: float, value: float) -> float:
    """``value`` in the type of ``like``: Numba types a Python float literal as
    float64, which would promote float32 arithmetic."""
    raise NotImplementedError


# Numba requires the overloads' parameters to match the implementations' exactly,
# annotations included, so these are unannotated.
@overload(_exp)
def _exp_impl(x):  # type: ignore[no-untyped-def]
    return (lambda x: exp32(x)) if x == types.float32 else (lambda x: exp64(x))


@overload(_log)
def _log_impl(x):  # type: ignore[no-untyped-def]
    return (lambda x: log32(x)) if x == types.float32 else (lambda x: log64(x))


@overload(_log1p)
def _log1p_impl(x):  # type: ignore[no-untyped-def]
    return (lambda x: log1p32(x)) if x == types.float32 else (lambda x: log1p64(x))


@overload(_c)
def _c_impl(like, value):  # type: ignore[no-untyped-def]
    if like == types.float32:
        return lambda like, value: np.float32(value)
    return lambda like, value: np.float64(value)


@njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def _sum64(buf: np.ndarray, n: int) -> float:
    """``sum(buf[:n])`` in float64; reassociated so that it vectorizes."""
    acc = 0.0
    for j in range(n):
        acc += np.float64(buf[j])
    return acc


# --- the losses, one element at a time ----------------------------------------------------------
#
# Each returns (loss, d loss/d input, d loss/d target[, d loss/d aux1]), unscaled, with
# the operations in the generic path's order (see nllkit.losses._*). They have no
# branches on the loss's options: _element picks the right ones while typing, since
# a branch pruned inside inlined code upsets Numba's SSA checks.

_TWO_PI = 2.0 * math.pi
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_FLOOR = -100.0
_GRAD_FLOOR = float(np.float32(1e-12))  # PyTorch's float32 floor, in every dtype


@njit(inline="always")
def _poisson_log_input(x: float, t: float, eps: float) -> tuple[float, float, float]:
    # l = e^x - t x
    rate = _exp(x)
    return rate - t * x, rate - t, -x


@njit(inline="always")
def _poisson_rate(x: float, t: float, eps: float) -> tuple[float, float, float]:
    # l = x - t log(x + eps)
    xe = x + eps
    log_rate = _log(xe)
    return x - t * log_rate, _c(x, 1.0) - t / xe, -log_rate


@njit(inline="always")
def _stirling(t: float, loss: float, dt: float) -> tuple[float, float]:
    """Add Stirling's log t! ~ t log t - t + log(2 pi t) / 2 where t > 1, and its
    derivative log t + 1 / (2t)."""
    half = _c(t, 0.5)
    log_t = _log(t)
    stirling = t * log_t - t + half * _log(_c(t, _TWO_PI) * t)
    applies = t > _c(t, 1.0)
    return (loss + stirling if applies else loss), (dt + (log_t + half / t) if applies else dt)


@njit(inline="always")
def _gaussian(x: float, t: float, v: float, eps: float, const: float) -> tuple[float, float, float, float]:
    # l = (log v + (x - t)^2 / v) / 2 (+ log(2 pi) / 2 as `const`) with v clamped at
    # eps; straight through: the gradient in v is the formula's, at the clamped value.
    half = _c(x, 0.5)
    v = eps if v < eps else v
    diff = x - t
    loss = half * (_log(v) + diff * diff / v) + const
    dx = diff / v
    return loss, dx, -dx, half * (_c(x, 1.0) / v - diff * diff / (v * v))


@njit(inline="always")
def _bce(x: float, y: float, w: float) -> tuple[float, float, float]:
    # l = w [(y - 1) max(log(1 - x), -100) - y max(log x, -100)]
    one = _c(x, 1.0)
    floor = _c(x, _LOG_FLOOR)
    log_x = _log(x)
    one_minus = one - x
    log_1mx = _log(one_minus)
    loss = (y - one) * (log_1mx if log_1mx > floor else floor) - y * (log_x if log_x > floor else floor)
    # PyTorch's gradients: (x - y) / max(x (1 - x), 1e-12) and log1p(-x) - log x, unclamped.
    den = x * one_minus
    den = den if den > _c(x, _GRAD_FLOOR) else _c(x, _GRAD_FLOOR)
    return w * loss, w * ((x - y) / den), w * (_log1p(-x) - log_x)


@njit(inline="always")
def _log_sigmoid_and_sigmoid(x: float) -> tuple[float, float]:
    """``log sigma(x) = min(x, 0) - log1p(e^{-|x|})`` and ``sigma(x)``, overflow-free."""
    one = _c(x, 1.0)
    zero = _c(x, 0.0)
    e = _exp(-abs(x))
    # Comparisons that are False for NaN: e is NaN then, and so are both.
    log_sigmoid = (x if x < zero else zero) - _log1p(e)
    return log_sigmoid, (one / (one + e) if x >= zero else e / (one + e))


@njit(inline="always")
def _bce_logits(x: float, y: float, w: float) -> tuple[float, float, float]:
    # l = w [(1 - y) x - log sigma(x)]
    log_sigmoid, sigmoid = _log_sigmoid_and_sigmoid(x)
    loss = (_c(x, 1.0) - y) * x - log_sigmoid
    return w * loss, w * (sigmoid - y), w * -x


@njit(inline="always")
def _bce_logits_pos(x: float, y: float, w: float, pw: float) -> tuple[float, float, float]:
    # l = w [(1 - y) x - (1 + (pw - 1) y) log sigma(x)]
    one = _c(x, 1.0)
    log_sigmoid, sigmoid = _log_sigmoid_and_sigmoid(x)
    lw = one + (pw - one) * y
    loss = (one - y) * x - lw * log_sigmoid
    return w * loss, w * (lw * sigmoid - pw * y), w * -(x + (pw - one) * log_sigmoid)


@njit(inline="always")
def _kl(x: float, t: float) -> tuple[float, float, float]:
    # l = xlogy(t, t) - t x: 0 log 0 = 0; d/dt = log t + 1 - x (-inf at t = 0).
    zero = _c(x, 0.0)
    log_t = _log(t)
    loss = t * (zero if t == zero else log_t) - t * x
    return loss, -t, log_t + _c(x, 1.0) - x


@njit(inline="always")
def _kl_log_target(x: float, t: float) -> tuple[float, float, float]:
    # l = e^t (t - x)
    p = _exp(t)
    return p * (t - x), -p, p * (t - x + _c(x, 1.0))


def _element(kind, f1, f2, has1, has2, x, t, a, b, p):  # type: ignore[no-untyped-def]
    """One element of loss `kind`: ``(loss, d/dx, d/dt, d/da)``.

    `kind`, the loss's flags `f1`, `f2` and `has1`, `has2` (whether the
    auxiliary operands `a`, `b` are given) are compile-time constants, so that
    only the code of that loss with those options is inlined into a kernel;
    `p` is the loss's scalar parameter.
    """
    raise NotImplementedError  # only called from jitted code


@overload(_element, inline="always")
def _element_impl(kind, f1, f2, has1, has2, x, t, a, b, p):  # type: ignore[no-untyped-def]
    which, flag1, flag2, with_a, with_b = (getattr(v, "literal_value", None) for v in (kind, f1, f2, has1, has2))
    if which == POISSON:
        base = _poisson_log_input if flag1 else _poisson_rate
        if not flag2:
            return lambda kind, f1, f2, has1, has2, x, t, a, b, p: base(x, t, p) + (_c(x, 0.0),)

        def poisson_full(kind, f1, f2, has1, has2, x, t, a, b, p):  # type: ignore[no-untyped-def]
            loss, dx, dt = base(x, t, p)
            loss, dt = _stirling(t, loss, dt)
            return loss, dx, dt, _c(x, 0.0)

        return poisson_full
    if which == GAUSSIAN:
        const = _HALF_LOG_2PI if flag1 else 0.0
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _gaussian(x, t, a, p, _c(x, const))
    if which == KL:
        kl = _kl_log_target if flag1 else _kl
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: kl(x, t) + (_c(x, 0.0),)
    # BCE, with or without logits. An absent weight is 1: w l is then l exactly,
    # infinities and NaN included (not so for pos_weight: the formula differs).
    if which == BCE and with_a:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce(x, t, a) + (_c(x, 0.0),)
    if which == BCE:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce(x, t, _c(x, 1.0)) + (_c(x, 0.0),)
    if which == BCE_LOGITS and with_b and with_a:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce_logits_pos(x, t, a, b) + (_c(x, 0.0),)
    if which == BCE_LOGITS and with_b:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce_logits_pos(x, t, _c(x, 1.0), b) + (_c(x, 0.0),)
    if which == BCE_LOGITS and with_a:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce_logits(x, t, a) + (_c(x, 0.0),)
    if which == BCE_LOGITS:
        return lambda kind, f1, f2, has1, has2, x, t, a, b, p: _bce_logits(x, t, _c(x, 1.0)) + (_c(x, 0.0),)
    return None


# --- the driver -------------------------------------------------------------------------------


@functools.cache
def kernel(kind: int, f1: bool, f2: bool, grad: bool, aux1: int, aux2: int, aux1_grad: int) -> Any:
    """The compiled kernel for one loss variant (a Numba dispatcher).

    What varies the inner loop's code is frozen in (and compiled once per
    dtype); what does not (where the loss goes, whether the gradient factor is
    one number or an array) is a run-time argument, to keep the number of
    compiled variants down.

    Parameters
    ----------
    kind : int
        ``POISSON``, ``GAUSSIAN``, ``BCE``, ``BCE_LOGITS`` or ``KL``.
    f1, f2 : bool
        The loss's flags: ``log_input, full`` (Poisson), ``full`` (Gaussian),
        ``log_target`` (KL); otherwise unused.
    grad : bool
        Compute the gradients.
    aux1, aux2 : int
        Layout of the auxiliary operands: ``ABSENT``, ``VECTOR`` or ``PER_ROW``.
    aux1_grad : int
        ``AUX_NONE``, ``AUX_ELEMENTWISE`` (``ga`` has the input's size) or
        ``AUX_ROW_SUM`` (``ga`` has one entry per row).

    Returns
    -------
    callable
        ``run(x, t, a1, a2, cot, out, gx, gt, ga, p, scale, loss_mode, rows, cols, rs1, rs2)``.
        The arrays are 1-D, C-contiguous, of one dtype (float32 or float64);
        unused ones may be empty. ``x, t`` hold ``rows * cols > 0`` elements;
        ``a1, a2`` are read at ``i * rs + j`` (``VECTOR``) or ``i * rs``
        (``PER_ROW``) for row ``i`` and column ``j``. ``p`` is the loss's
        scalar (``eps``). ``loss_mode`` is ``SKIP``, ``WRITE`` (into ``out``)
        or ``REDUCE``: then ``run`` returns the float64 sum of the loss (else
        0). The gradients ``gx, gt, ga`` are those of the loss times ``cot``
        elementwise if ``cot`` is not empty, else times ``scale``.
    """
    has1 = aux1 != ABSENT
    has2 = aux2 != ABSENT

    @njit(parallel=_PARALLEL, fastmath=_FLAGS, error_model="numpy", cache=True, nogil=True)
    def run(x, t, a1, a2, cot, out, gx, gt, ga, p, scale, loss_mode, rows, cols, rs1, rs2):  # type: ignore[no-untyped-def]
        split = cols > BLOCK
        if split:
            per_row = (cols + BLOCK - 1) // BLOCK
            ntask = rows * per_row
            rows_per_task = 1
        else:
            per_row = 1
            rows_per_task = BLOCK // cols
            ntask = (rows + rows_per_task - 1) // rows_per_task
        cot_array = cot.size > 0
        loss_parts = np.zeros(ntask)
        row_parts = np.zeros(ntask if (aux1_grad == AUX_ROW_SUM and split) else 0)
        for task in prange(ntask):
            if split:
                r0 = task // per_row
                r1 = r0 + 1
                c0 = (task - r0 * per_row) * BLOCK
                c1 = min(c0 + BLOCK, cols)
            else:
                r0 = task * rows_per_task
                r1 = min(r0 + rows_per_task, rows)
                c0 = 0
                c1 = cols
            # L1-sized scratch: losses to be summed (or dropped), per-row gradient
            # terms to be summed, and the scalar gradient factor as an array so
            # that one inner loop serves both kinds of factor.
            loss_buf = np.empty(SUB, x.dtype)
            aux_buf = np.empty(SUB if aux1_grad == AUX_ROW_SUM else 0, x.dtype)
            scale_buf = np.full(SUB if (grad and not cot_array) else 0, scale)
            filled = 0
            total = 0.0
            for i in range(r0, r1):
                o1 = i * rs1
                o2 = i * rs2
                # A per-row operand is read once per row; `p` only fills the type otherwise.
                s1 = a1[o1] if aux1 == PER_ROW else p
                s2 = a2[o2] if aux2 == PER_ROW else p
                row_total = 0.0
                for j0 in range(c0, c1, SUB):
                    m = min(SUB, c1 - j0)
                    if filled + m > SUB:
                        if loss_mode == REDUCE:
                            total += _sum64(loss_buf, filled)
                        filled = 0
                    k0 = i * cols + j0
                    # Slices, so that every index below is a plain 0..m-1 and the loop vectorizes.
                    xs = x[k0 : k0 + m]
                    ts = t[k0 : k0 + m]
                    v1 = a1[o1 + j0 : o1 + j0 + m] if aux1 == VECTOR else a1[0:0]
                    v2 = a2[o2 + j0 : o2 + j0 + m] if aux2 == VECTOR else a2[0:0]
                    ls = out[k0 : k0 + m] if loss_mode == WRITE else loss_buf[filled : filled + m]
                    if grad:
                        cs = cot[k0 : k0 + m] if cot_array else scale_buf[:m]
                        gxs = gx[k0 : k0 + m]
                        gts = gt[k0 : k0 + m]
                        gas = ga[k0 : k0 + m] if aux1_grad == AUX_ELEMENTWISE else aux_buf[:m]
                        for j in range(m):
                            a = v1[j] if aux1 == VECTOR else s1
                            b = v2[j] if aux2 == VECTOR else s2
                            lj, dx, dt, da = _element(kind, f1, f2, has1, has2, xs[j], ts[j], a, b, p)
                            ls[j] = lj
                            g = cs[j]
                            gxs[j] = g * dx
                            gts[j] = g * dt
                            if aux1_grad != AUX_NONE:
                                gas[j] = g * da
                        if aux1_grad == AUX_ROW_SUM:
                            row_total += _sum64(aux_buf, m)
                    else:
                        for j in range(m):
                            a = v1[j] if aux1 == VECTOR else s1
                            b = v2[j] if aux2 == VECTOR else s2
                            ls[j] = _element(kind, f1, f2, has1, has2, xs[j], ts[j], a, b, p)[0]
                    if loss_mode != WRITE:
                        filled += m
                if aux1_grad == AUX_ROW_SUM:
                    if split:
                        row_parts[task] = row_total
                    else:
                        ga[i] = row_total
            if loss_mode == REDUCE:
                total += _sum64(loss_buf, filled)
            loss_parts[task] = total
        if aux1_grad == AUX_ROW_SUM and split:
            # A row cut into pieces: add its pieces in order.
            for i in range(rows):
                acc = 0.0
                for q in range(per_row):
                    acc += row_parts[i * per_row + q]
                ga[i] = acc
        result = 0.0
        for task in range(ntask):
            result += loss_parts[task]
        return result

    return run
