r"""Fused one-pass kernels for the elementwise losses: Poisson, Gaussian, BCE,
BCE with logits and KL divergence.

One pass over the data computes the loss (written elementwise, or summed in
float64) and, when asked, the gradients, so a forward plus backward reads
each operand once and writes each gradient once, where the generic array-API
path makes a dozen temporaries.

Layout
------
The data is read as ``rows x cols`` (``cols`` is the last axis; a flat array is
one row). The two *auxiliary* operands (Gaussian ``var``; BCE ``weight``;
BCE-with-logits ``weight`` and ``pos_weight``) are read either as a vector
along each row (the input's shape, or one row shared by all rows:
``rs = cols`` or ``0``) or as one value per row (``rs = 1``, or ``0`` for a
single value), or are absent (read as ones). Work is cut into tasks of about
:data:`BLOCK` elements (:func:`partition`): whole rows, or pieces of one long
row. Each task sums into its own float64 lanes and stores its sum in
``parts[task]``; the caller adds the parts (``math.fsum``), so the result does
not depend on how tasks are spread over threads.

Threads
-------
The kernels are serial ``nogil`` functions over a range of tasks; the caller
runs ranges on several Python threads (:mod:`nllkit.losses._fused_elementwise`).
Numba's ``parallel=True`` would do the same with a ``prange``, but it more
than doubles the compile time of every kernel.

Floating point
--------------
The element formulas are evaluated in the data's dtype, in the order the
generic path uses, in strict IEEE arithmetic: no reassociation, no FMA
contraction, NaN and infinities propagate as in NumPy, division by zero
gives ``inf`` (``error_model='numpy'``). So the loss does not depend on
whether gradients are computed too, and the float64 sums (lanes folded in a
fixed order, :func:`_fold`) do not depend on the SIMD width. ``exp`` comes from
:mod:`nllkit._kernels._exp`; ``log`` and ``log1p`` are written here the same
way (bit manipulation and a polynomial; these may use FMA internally), since
Numba's ``math.log`` is a scalar libm call that stops vectorization.

Compilation
-----------
Compiling costs seconds per kernel, so there is one kernel per loss
(:func:`kernel`), compiled on first use once per dtype (float32, float64): the
loss's options, the operand layouts, the reduction and whether gradients are
computed are all run-time arguments. An option that changes the costly part
of the element formula (Poisson ``log_input``: ``exp`` or ``log``; KL
``log_target``: ``exp`` or ``log``) picks one of two inner loops; a term that
only some calls need (Poisson's Stirling term) is a second pass over the
chunk while it is in L1; cheap differences (Gaussian's constant, BCE with or
without ``pos_weight``) are scalars or a select inside the loop. Whether
gradients are computed picks a loop without their stores. The compiled code
is cached on disk (``cache=True``). Numba's cache is keyed on
this file only: after editing ``_exp.py``, clear ``__pycache__``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from nllkit._kernels._exp import _LN2HI_32, _LN2HI_64, _LN2LO_32, _LN2LO_64, exp32, exp64

# Elements per task, and per chunk: the unit of the inner loops, whose scratch
# buffers (losses to sum, unneeded gradients, per-row operands) stay in L1.
BLOCK = 1 << 15
SUB = 1 << 10

# log and log1p, like exp, may fuse a * b + c into an FMA (more accurate, and
# faster), decided within each function alone. The kernels themselves are
# strict IEEE: whether LLVM contracts a product depends on what else uses it,
# and the same loss must come out whether or not gradients are computed.
_FLAGS = {"contract"}
# The options of every kernel below.
_OPTIONS: dict[str, Any] = {"error_model": "numpy", "cache": True, "nogil": True}

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
# (float32) or 10 terms (float64) is below 0.01 ulp. Max error, measured: 0.858 ulp
# over every positive finite float32 (exhaustively, against float64 log), 0.81 ulp
# for float64 (2^20 random bit patterns and a dense binade, against 80-bit log).
# log1p: 1.44 ulp on [-1, 1] and beyond. tests/test_fused_elementwise.py asserts
# log below 0.9 ulp and log1p below 1.5 ulp on such samples, subnormals included.

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
    """``log`` of a float64, vectorizable (max error 0.81 ulp measured)."""
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
    the second term restoring what rounding ``u`` lost (max error 1.44 ulp measured)."""
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


# --- sums ------------------------------------------------------------------------------------------


@njit(**_OPTIONS)
def _accumulate(lanes: np.ndarray, values: np.ndarray, n: int) -> None:
    """``lanes[:n] += values[:n]`` in float64: an elementwise map, which LLVM
    vectorizes in strict arithmetic (a running sum would need reassociation)."""
    for j in range(n):
        lanes[j] += np.float64(values[j])


@njit(**_OPTIONS)
def _fold(lanes: np.ndarray, n: int) -> float:
    """``sum(lanes[:n])`` for `n` a power of two, by halving: a fixed order of
    additions, each step a vectorizable map. Overwrites `lanes`."""
    while n > 1:
        n //= 2
        for j in range(n):
            lanes[j] += lanes[j + n]
    return lanes[0]


@njit(**_OPTIONS)
def _scale(values: np.ndarray, factors: np.ndarray, n: int) -> None:
    """``values[:n] *= factors[:n]``: the gradient factor, applied last."""
    for j in range(n):
        values[j] = factors[j] * values[j]


# --- the losses, one element at a time ----------------------------------------------------------
#
# Each takes (x, t, a, b, p, q): input, target, the auxiliary operands (1 where
# absent) and the loss's two scalars, and returns (loss, d/dx, d/dt, d/da),
# unscaled, with the operations in the generic path's order (nllkit.losses._*).

_TWO_PI = 2.0 * math.pi
_LOG_FLOOR = -100.0
_GRAD_FLOOR = float(np.float32(1e-12))  # PyTorch's float32 floor, in every dtype


@njit(**_OPTIONS)
def _poisson_log_input(x: float, t: float, a: float, b: float, eps: float, q: float) -> tuple[float, ...]:
    # l = e^x - t x
    rate = _exp(x)
    zero = _c(x, 0.0)
    return rate - t * x, rate - t, -x, zero


@njit(**_OPTIONS)
def _poisson_rate(x: float, t: float, a: float, b: float, eps: float, q: float) -> tuple[float, ...]:
    # l = x - t log(x + eps)
    xe = x + eps
    log_rate = _log(xe)
    return x - t * log_rate, _c(x, 1.0) - t / xe, -log_rate, _c(x, 0.0)


@njit(**_OPTIONS)
def _gaussian(x: float, t: float, v: float, b: float, eps: float, const: float) -> tuple[float, ...]:
    # l = (log v + (x - t)^2 / v) / 2 + const (log(2 pi) / 2 if full, else 0) with v
    # clamped at eps; straight through: the gradient in v is the formula's, at the
    # clamped value.
    half = _c(x, 0.5)
    v = eps if v < eps else v
    diff = x - t
    loss = half * (_log(v) + diff * diff / v) + const
    dx = diff / v
    return loss, dx, -dx, half * (_c(x, 1.0) / v - diff * diff / (v * v))


@njit(**_OPTIONS)
def _bce(x: float, y: float, w: float, b: float, p: float, q: float) -> tuple[float, ...]:
    # l = w [(y - 1) max(log(1 - x), -100) - y max(log x, -100)]; w = 1 (absent)
    # gives l exactly, infinities and NaN included.
    one = _c(x, 1.0)
    floor = _c(x, _LOG_FLOOR)
    log_x = _log(x)
    one_minus = one - x
    log_1mx = _log(one_minus)
    loss = (y - one) * (log_1mx if log_1mx > floor else floor) - y * (log_x if log_x > floor else floor)
    # PyTorch's gradients: (x - y) / max(x (1 - x), 1e-12) and log1p(-x) - log x, unclamped.
    den = x * one_minus
    den = den if den > _c(x, _GRAD_FLOOR) else _c(x, _GRAD_FLOOR)
    return w * loss, w * ((x - y) / den), w * (_log1p(-x) - log_x), _c(x, 0.0)


@njit(**_OPTIONS)
def _bce_logits(x: float, y: float, w: float, pw: float, p: float, has_pw: float) -> tuple[float, ...]:
    # l = w [(1 - y) x - lw log sigma(x)], lw = 1 + (pw - 1) y, or 1 without pos_weight
    # (not the same: (pw - 1) y is NaN for an infinite y, even with pw = 1).
    # log sigma(x) = min(x, 0) - log1p(e^{-|x|}) and sigma(x), overflow-free.
    one = _c(x, 1.0)
    zero = _c(x, 0.0)
    e = _exp(-abs(x))
    # Comparisons that are False for NaN: e is NaN then, and so are both.
    log_sigmoid = (x if x < zero else zero) - _log1p(e)
    sigmoid = one / (one + e) if x >= zero else e / (one + e)
    pos = has_pw != zero
    lw = one + (pw - one) * y
    loss = (one - y) * x - (lw * log_sigmoid if pos else log_sigmoid)
    dx = lw * sigmoid - pw * y if pos else sigmoid - y
    dy = -(x + (pw - one) * log_sigmoid) if pos else -x
    return w * loss, w * dx, w * dy, zero


@njit(**_OPTIONS)
def _kl(x: float, t: float, a: float, b: float, p: float, q: float) -> tuple[float, ...]:
    # l = xlogy(t, t) - t x: 0 log 0 = 0; d/dt = log t + 1 - x (-inf at t = 0).
    zero = _c(x, 0.0)
    log_t = _log(t)
    loss = t * (zero if t == zero else log_t) - t * x
    return loss, -t, log_t + _c(x, 1.0) - x, zero


@njit(**_OPTIONS)
def _kl_log_target(x: float, t: float, a: float, b: float, p: float, q: float) -> tuple[float, ...]:
    # l = e^t (t - x)
    e = _exp(t)
    return e * (t - x), -e, e * (t - x + _c(x, 1.0)), _c(x, 0.0)


# The element functions by number: a kernel names them by these constants, since
# a jitted function used as a value (passed as an argument) would make the
# kernel's signature, and its cache key, differ in every process.
_ELEMENTS = (_poisson_rate, _poisson_log_input, _gaussian, _bce, _bce_logits, _kl, _kl_log_target)


def _map(which, grad, x, t, a, b, p, q, loss, gx, gt, ga, m):  # type: ignore[no-untyped-def]
    """One chunk of `m` elements of element function number `which` (a
    compile-time constant): the loss into `loss` and, with `grad`, the
    unscaled gradients into `gx`, `gt`, `ga`."""
    raise NotImplementedError  # only called from jitted code


@overload(_map, prefer_literal=True)
def _map_impl(which, grad, x, t, a, b, p, q, loss, gx, gt, ga, m):  # type: ignore[no-untyped-def]
    if not isinstance(which, types.IntegerLiteral):
        return None
    element = _ELEMENTS[which.literal_value]

    # Compiled once per element function, which LLVM inlines and vectorizes.
    def impl(which, grad, x, t, a, b, p, q, loss, gx, gt, ga, m):  # type: ignore[no-untyped-def]
        if grad:
            for j in range(m):
                loss[j], gx[j], gt[j], ga[j] = element(x[j], t[j], a[j], b[j], p, q)
        else:
            for j in range(m):
                loss[j] = element(x[j], t[j], a[j], b[j], p, q)[0]

    return impl


@njit(**_OPTIONS)
def _stirling(t, loss, gt, m):  # type: ignore[no-untyped-def]
    """Add Stirling's log t! ~ t log t - t + log(2 pi t) / 2 where t > 1 to the
    loss, and its derivative log t + 1 / (2t) to `gt` (scratch if unwanted)."""
    for j in range(m):
        tj = t[j]
        half = _c(tj, 0.5)
        log_t = _log(tj)
        applies = tj > _c(tj, 1.0)
        stirling = tj * log_t - tj + half * _log(_c(tj, _TWO_PI) * tj)
        loss[j] = loss[j] + stirling if applies else loss[j]
        gt[j] = gt[j] + (log_t + half / tj) if applies else gt[j]


# --- the driver -------------------------------------------------------------------------------


@njit(**_OPTIONS)
def partition(rows: int, cols: int) -> tuple[bool, int, int, int]:
    """How a ``rows x cols`` array is cut into tasks of about :data:`BLOCK`
    elements: ``(split, pieces_per_row, rows_per_task, tasks)``. Rows longer
    than a block are split into pieces (one row per task); otherwise a task
    takes whole rows."""
    if cols > BLOCK:
        per_row = (cols + BLOCK - 1) // BLOCK
        return True, per_row, 1, rows * per_row
    rows_per_task = BLOCK // cols
    return False, 1, rows_per_task, (rows + rows_per_task - 1) // rows_per_task


# Per loss: its element functions (by number in _ELEMENTS) with flag 1 off and on.
_PAIRS = {POISSON: (0, 1), GAUSSIAN: (2, 2), BCE: (3, 3), BCE_LOGITS: (4, 4), KL: (5, 6)}


@functools.cache
def kernel(kind: int) -> Any:
    """The kernel of loss `kind` (a Numba dispatcher, compiled once per dtype).

    Parameters
    ----------
    kind : int
        ``POISSON``, ``GAUSSIAN``, ``BCE``, ``BCE_LOGITS`` or ``KL``.

    Returns
    -------
    callable
        ``run(task0, task1, x, t, a1, a2, cot, out, gx, gt, ga, parts, row_parts, p, q, scale, options)``
        runs tasks ``task0 .. task1 - 1`` (see :func:`partition`). The arrays
        are 1-D, C-contiguous, of one dtype (float32 or float64), except the
        float64 ``parts`` and ``row_parts``; unused ones may be empty. ``x, t``
        hold ``rows * cols > 0`` elements; ``a1, a2`` are read at
        ``i * rs + j`` (``VECTOR``) or ``i * rs`` (``PER_ROW``) for row ``i``
        and column ``j``. ``p, q`` are the loss's scalars (``eps``; Gaussian:
        the constant term; BCE with logits: whether ``pos_weight`` is given).
        ``options`` is the int tuple ``(rows, cols, f1, f2, grad, loss_mode,
        mode1, rs1, mode2, rs2, aux_grad)``: the loss's flags ``f1, f2``
        (``log_input, full`` for Poisson, ``log_target`` for KL); ``loss_mode``
        ``SKIP``, ``WRITE`` (into ``out``) or ``REDUCE`` (each task's float64
        sum into ``parts[task]``); the layouts ``mode1, mode2`` (``ABSENT``,
        ``VECTOR``, ``PER_ROW``) and row strides of ``a1, a2``; ``aux_grad``
        ``AUX_NONE``, ``AUX_ELEMENTWISE`` (``ga`` has the input's size) or
        ``AUX_ROW_SUM`` (``ga[i]``, the sum over row ``i``; for a row cut into
        pieces, ``row_parts[task]`` holds each piece's sum instead). With
        ``grad``, the gradients ``gx, gt, ga`` are those of the loss times
        ``cot`` elementwise if ``cot`` is not empty, else times ``scale``.
    """
    e0, e1 = _PAIRS[kind]
    stirling = kind == POISSON

    @njit(**_OPTIONS)
    def run(task0, task1, x, t, a1, a2, cot, out, gx, gt, ga, parts, row_parts, p, q, scale, options):  # type: ignore[no-untyped-def]
        rows, cols, f1, f2, grad, loss_mode, mode1, rs1, mode2, rs2, aux_grad = options
        split, per_row, rows_per_task, _ = partition(rows, cols)
        cot_array = cot.size > 0
        # Sums: element j of every chunk of a row goes to float64 lane j; the lanes are
        # then folded in a fixed order (see _fold).
        n_lanes = 1
        while n_lanes < min(cols, SUB):
            n_lanes *= 2
        # L1-sized scratch: the losses of a chunk (to be summed, or dropped); the
        # gradients not wanted; the per-row (or absent: 1) auxiliary values; the
        # scalar gradient factor as an array, so that one loop serves both kinds.
        dtype = x.dtype
        loss_buf = np.empty(SUB, dtype)
        gx_buf = np.empty(SUB, dtype)
        gt_buf = np.empty(SUB, dtype)
        ga_buf = np.empty(SUB, dtype)
        aux1 = np.ones(SUB, dtype)
        aux2 = np.ones(SUB, dtype)
        scale_buf = np.full(SUB, scale)
        loss_lanes = np.zeros(n_lanes)
        row_lanes = np.zeros(n_lanes)
        for task in range(task0, task1):
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
            loss_lanes[:] = 0.0
            for i in range(r0, r1):
                o1 = i * rs1
                o2 = i * rs2
                if mode1 == PER_ROW:
                    aux1[: min(SUB, c1 - c0)] = a1[o1]
                if mode2 == PER_ROW:
                    aux2[: min(SUB, c1 - c0)] = a2[o2]
                row_lanes[:] = 0.0
                for j0 in range(c0, c1, SUB):
                    m = min(SUB, c1 - j0)
                    k0 = i * cols + j0
                    ls = out[k0 : k0 + m] if loss_mode == WRITE else loss_buf[:m]
                    gxs = gx[k0 : k0 + m] if grad else gx_buf[:m]
                    gts = gt[k0 : k0 + m] if grad else gt_buf[:m]
                    gas = ga[k0 : k0 + m] if aux_grad == AUX_ELEMENTWISE else ga_buf[:m]
                    xs = x[k0 : k0 + m]
                    ts = t[k0 : k0 + m]
                    v1 = a1[o1 + j0 : o1 + j0 + m] if mode1 == VECTOR else aux1[:m]
                    v2 = a2[o2 + j0 : o2 + j0 + m] if mode2 == VECTOR else aux2[:m]
                    # e0, e1 and stirling are constants: Numba prunes the branches not taken.
                    if e0 == e1:
                        _map(e0, grad, xs, ts, v1, v2, p, q, ls, gxs, gts, gas, m)
                    elif f1:
                        _map(e1, grad, xs, ts, v1, v2, p, q, ls, gxs, gts, gas, m)
                    else:
                        _map(e0, grad, xs, ts, v1, v2, p, q, ls, gxs, gts, gas, m)
                    if stirling and f2:
                        _stirling(ts, ls, gts, m)
                    if grad:
                        cs = cot[k0 : k0 + m] if cot_array else scale_buf[:m]
                        _scale(gxs, cs, m)
                        _scale(gts, cs, m)
                        if aux_grad != AUX_NONE:
                            _scale(gas, cs, m)
                        if aux_grad == AUX_ROW_SUM:
                            _accumulate(row_lanes, gas, m)
                    if loss_mode == REDUCE:
                        _accumulate(loss_lanes, ls, m)
                if aux_grad == AUX_ROW_SUM:
                    if split:
                        row_parts[task] = _fold(row_lanes, n_lanes)
                    else:
                        ga[i] = _fold(row_lanes, n_lanes)
            if loss_mode == REDUCE:
                parts[task] = _fold(loss_lanes, n_lanes)

    return run
