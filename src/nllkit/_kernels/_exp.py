r"""``exp`` for float32 and float64 in plain arithmetic, so that LLVM vectorizes it.

Numba lowers ``math.exp`` to a call of the C library's scalar ``exp``; without
Intel SVML that call stops LLVM from vectorizing any loop that contains it,
and the loop runs several times slower than memory. The functions here use
only ``+ - *``, ``rint`` and a bit cast, which all have vector forms, so a loop
that calls them becomes SIMD code (AVX2: 8 float32 or 4 float64 lanes).

Method (Cody-Waite range reduction, then a polynomial):

.. math::

    n = \operatorname{rint}(x / \ln 2), \qquad
    r = (x - n\,\ln 2_{hi}) - n\,\ln 2_{lo} \in [-\tfrac{\ln 2}{2}, \tfrac{\ln 2}{2}], \\
    e^x = 2^n e^r, \qquad e^r \approx 1 + r + r^2 q(r),

where :math:`\ln 2_{hi}` has trailing zero bits so that :math:`n \ln 2_{hi}`
is exact, and :math:`q` is a near-minimax (Chebyshev) fit of
:math:`(e^r - 1 - r) / r^2`: degree 4 for float32 (relative truncation error
:math:`1.2 \cdot 10^{-8}`, 0.2 ulp) and degree 10 for float64
(:math:`2.6 \cdot 10^{-19}`). :math:`2^n` is built from exponent bits in two
factors :math:`2^{\lfloor n/2 \rfloor} 2^{n - \lfloor n/2 \rfloor}`, each a
normal number, so that results in the subnormal range are rounded once
(gradual underflow) and results beyond the largest finite number overflow to
``inf``.

Measured accuracy (``tests/test_fused_exp.py``: dense grids over the whole
finite range and over ``[-20, 0]`` / ``[-40, 0]``, against ``exp`` in a wider
type; ulps of the dtype at the true value, the subnormal spacing below the
normal range):

* ``exp32``: max error 1.05 ulp (about 9 % of results are not correctly rounded).
* ``exp64``: max error 0.98 ulp.

Special values: ``exp(-inf) = 0``, ``exp(+inf) = inf``, ``exp(nan) = nan``;
``exp32(x) = inf`` for ``x > 88.7228``, ``0`` below ``-103.97``;
``exp64(x) = inf`` for ``x > 709.7827``, ``0`` below ``-745.13``.

Both are ordinary ``@njit`` functions with their own (strict IEEE plus
``contract``) floating-point flags: call them from other jitted code, where
LLVM inlines them into the caller's loop. They are deliberately *not*
inlined at the Numba IR level, which would let a caller's ``fastmath=True``
(``nnan``, ``ninf``) flags fold away the clamping and NaN handling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# 'contract' lets LLVM fuse a*b+c into an FMA (more accurate, and faster); the
# other fast-math flags would let it drop the NaN and infinity handling.
_FLAGS = {"contract"}

# --- intrinsics: rint and 2^n scaling in LLVM IR ------------------------------------


@intrinsic
def _rint(typingctx: Any, x: Any) -> Any:
    """Round to the nearest integer (ties to even), as a float: ``llvm.rint``,
    which vectorizes (``vroundps``), unlike Numba's ``round``."""
    if x not in (types.float32, types.float64):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.rint", [args[0].type])
        return builder.call(fn, [args[0]])

    return x(x), codegen


@intrinsic
def _ldexp(typingctx: Any, p: Any, n: Any) -> Any:
    r"""``p * 2**n`` for an integer-valued float ``n`` (NaN is read as 0).

    ``n`` must lie in ``[-2 e_max - 4, 2 e_max + 3]`` (``e_max`` = 127 or
    1023): it is split into two halves, each a normal power of two built
    from exponent bits, and ``p`` is multiplied by both; the first product is
    exact, so a subnormal result is rounded once.
    """
    if p not in (types.float32, types.float64) or n != p:
        return None
    if p == types.float32:
        fty, ity, bias, shift = ir.FloatType(), ir.IntType(32), 127, 23
    else:
        fty, ity, bias, shift = ir.DoubleType(), ir.IntType(64), 1023, 52

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        pv, nv = args
        # fptosi of NaN is poison in LLVM: replace it first (p is NaN then anyway).
        is_nan = builder.fcmp_unordered("uno", nv, nv)
        nv = builder.select(is_nan, ir.Constant(fty, 0.0), nv)
        ni = builder.fptosi(nv, ity)
        n1 = builder.ashr(ni, ir.Constant(ity, 1))
        n2 = builder.sub(ni, n1)
        s1 = builder.bitcast(builder.shl(builder.add(n1, ir.Constant(ity, bias)), ir.Constant(ity, shift)), fty)
        s2 = builder.bitcast(builder.shl(builder.add(n2, ir.Constant(ity, bias)), ir.Constant(ity, shift)), fty)
        return builder.fmul(builder.fmul(pv, s1), s2)

    return p(p, p), codegen


# --- float32 --------------------------------------------------------------------------

_F32 = np.float32
_LOG2E_32 = _F32(1.44269504088896341)
# ln 2 split Cephes-style: hi has 9 significant bits, so n * hi is exact for |n| < 2^15.
_LN2HI_32 = _F32(0.693359375)
_LN2LO_32 = _F32(-2.12194440e-4)
# Clamp bounds: beyond them the result is inf or 0 whatever the value.
_XMAX_32 = _F32(89.0)
_XMIN_32 = _F32(-104.0)
_Q32 = tuple(
    _F32(c)
    for c in (
        0.5,
        0.1666657338190084602312976,
        0.0416665501103051244435877,
        0.008363773874405573498848569,
        0.001392692661402190648099078,
    )
)
_Q32_0, _Q32_1, _Q32_2, _Q32_3, _Q32_4 = _Q32
_ONE_32 = _F32(1.0)


@njit(types.float32(types.float32), fastmath=_FLAGS, cache=True, nogil=True, error_model="numpy")
def exp32(x: float) -> float:
    """``exp`` of a float32, in float32 arithmetic; vectorizable (see the module docstring)."""
    # Comparisons written so that NaN passes through unchanged (both are False for NaN).
    x = _XMAX_32 if x > _XMAX_32 else x
    x = _XMIN_32 if x < _XMIN_32 else x
    n = _rint(x * _LOG2E_32)
    r = (x - n * _LN2HI_32) - n * _LN2LO_32
    q = _Q32_4
    q = q * r + _Q32_3
    q = q * r + _Q32_2
    q = q * r + _Q32_1
    q = q * r + _Q32_0
    p = _ONE_32 + (r + (r * r) * q)
    return _ldexp(p, n)


# --- float64 --------------------------------------------------------------------------

_LOG2E_64 = 1.4426950408889634074
# fdlibm's split: hi has 32 significant bits, so n * hi is exact for |n| < 2^20.
_LN2HI_64 = 6.93147180369123816490e-01
_LN2LO_64 = 1.90821492927058770002e-10
_XMAX_64 = 710.0
_XMIN_64 = -746.0
(
    _Q64_0,
    _Q64_1,
    _Q64_2,
    _Q64_3,
    _Q64_4,
    _Q64_5,
    _Q64_6,
    _Q64_7,
    _Q64_8,
    _Q64_9,
    _Q64_10,
) = (
    0.5,
    0.1666666666666667143841611,
    0.04166666666666667007437566,
    0.00833333333332554469956261,
    0.00138888888888833266743687,
    0.0001984126987686435492946973,
    0.00002480158732700718673101561,
    0.000002755725283351690974812657,
    0.0000002755727181021979956946633,
    2.510627473357329468825298e-8,
    2.091544229778011521684555e-9,
)


@njit(types.float64(types.float64), fastmath=_FLAGS, cache=True, nogil=True, error_model="numpy")
def exp64(x: float) -> float:
    """``exp`` of a float64; vectorizable (see the module docstring)."""
    x = _XMAX_64 if x > _XMAX_64 else x
    x = _XMIN_64 if x < _XMIN_64 else x
    n = _rint(x * _LOG2E_64)
    r = (x - n * _LN2HI_64) - n * _LN2LO_64
    q = _Q64_10
    q = q * r + _Q64_9
    q = q * r + _Q64_8
    q = q * r + _Q64_7
    q = q * r + _Q64_6
    q = q * r + _Q64_5
    q = q * r + _Q64_4
    q = q * r + _Q64_3
    q = q * r + _Q64_2
    q = q * r + _Q64_1
    q = q * r + _Q64_0
    p = 1.0 + (r + (r * r) * q)
    return _ldexp(p, n)


# --- exp on x <= 0, for softmax-style kernels ------------------------------------------------
#
# After subtracting a row maximum every argument is <= 0 (or NaN). There a cheaper reduction
# suffices: n is rounded by adding 1.5 * 2^23 (resp. 2^52), which leaves n in the low bits of
# the sum, so no rounding or float->int conversion instruction is needed, and 2^n is a single
# normal power of two because results below 2^-125 (2^-1021) are flushed to zero.


@intrinsic
def _pow2_from_shifted(typingctx: Any, k: Any) -> Any:
    """``2**n`` from ``k = n + 1.5 * 2**m`` (``m`` = 23 or 52): the low bits of ``k``
    hold ``n``; ``(bits(k) + bias) << m`` is then the bit pattern of ``2**n``
    (the high bits of ``k`` are shifted out)."""
    if k == types.float32:
        fty, ity, bias, shift = ir.FloatType(), ir.IntType(32), 127, 23
    elif k == types.float64:
        fty, ity, bias, shift = ir.DoubleType(), ir.IntType(64), 1023, 52
    else:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        bits = builder.add(builder.bitcast(args[0], ity), ir.Constant(ity, bias))
        return builder.bitcast(builder.shl(bits, ir.Constant(ity, shift)), fty)

    return k(k), codegen


_SHIFT_32 = _F32(1.5 * 2**23)
_FLUSH_32 = _F32(-125 * 0.6931471805599453)  # results below 2^-125 become 0
_ZERO_32 = _F32(0.0)


@njit(types.float32(types.float32), fastmath=_FLAGS, cache=True, nogil=True, error_model="numpy")
def exp32_nonpos(x: float) -> float:
    """``exp`` of a float32 ``x <= 0`` (or NaN), cheaper than :func:`exp32`.

    Same polynomial and accuracy (max 1.05 ulp) for ``x >= -125 ln 2 = -86.64``;
    below, the result (< 2.4e-38) is flushed to 0 instead of rounded to a
    subnormal. ``exp(-inf) = 0``, NaN propagates. Not for ``x > 0``.
    """
    k = x * _LOG2E_32 + _SHIFT_32
    n = k - _SHIFT_32
    r = (x - n * _LN2HI_32) - n * _LN2LO_32
    q = _Q32_4
    q = q * r + _Q32_3
    q = q * r + _Q32_2
    q = q * r + _Q32_1
    q = q * r + _Q32_0
    p = _ONE_32 + (r + (r * r) * q)
    y = p * _pow2_from_shifted(k)
    return _ZERO_32 if x < _FLUSH_32 else y


_SHIFT_64 = 1.5 * 2.0**52
_FLUSH_64 = -1021 * 0.6931471805599453  # results below 2^-1021 become 0


@njit(types.float64(types.float64), fastmath=_FLAGS, cache=True, nogil=True, error_model="numpy")
def exp64_nonpos(x: float) -> float:
    """``exp`` of a float64 ``x <= 0`` (or NaN); see :func:`exp32_nonpos`.

    Max error 0.98 ulp for ``x >= -1021 ln 2 = -707.7``; 0 below.
    """
    k = x * _LOG2E_64 + _SHIFT_64
    n = k - _SHIFT_64
    r = (x - n * _LN2HI_64) - n * _LN2LO_64
    q = _Q64_10
    q = q * r + _Q64_9
    q = q * r + _Q64_8
    q = q * r + _Q64_7
    q = q * r + _Q64_6
    q = q * r + _Q64_5
    q = q * r + _Q64_4
    q = q * r + _Q64_3
    q = q * r + _Q64_2
    q = q * r + _Q64_1
    q = q * r + _Q64_0
    p = 1.0 + (r + (r * r) * q)
    y = p * _pow2_from_shifted(k)
    return 0.0 if x < _FLUSH_64 else y


# --- log of a positive float64 ---------------------------------------------------------------
#
# The kernels take one log per row or position (of a sum of exponentials, >= 1). math.log
# is a library call that keeps a loop over positions scalar; this one vectorizes.


@intrinsic
def _mantissa(typingctx: Any, x: Any) -> Any:
    """The significand of a positive normal float64, in ``[1, 2)``."""
    if x != types.float64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        bits = builder.bitcast(args[0], i64)
        bits = builder.or_(builder.and_(bits, ir.Constant(i64, (1 << 52) - 1)), ir.Constant(i64, 1023 << 52))
        return builder.bitcast(bits, ir.DoubleType())

    return types.float64(x), codegen


@intrinsic
def _exponent(typingctx: Any, x: Any) -> Any:
    """The unbiased binary exponent of a positive normal float64, as a float64
    (via ``2**52 + e``, so that no int64 -> float conversion is needed)."""
    if x != types.float64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        biased = builder.lshr(builder.bitcast(args[0], i64), ir.Constant(i64, 52))
        as_float = builder.bitcast(builder.or_(biased, ir.Constant(i64, 0x4330000000000000)), ir.DoubleType())
        return builder.fsub(as_float, ir.Constant(ir.DoubleType(), 2.0**52 + 1023))

    return types.float64(x), codegen


_SQRT2 = 1.4142135623730951
# atanh(s) / s = 1 + v P(v), v = s^2, |s| <= (sqrt 2 - 1) / (sqrt 2 + 1): near-minimax fit,
# relative error 4.6e-18.
_L0, _L1, _L2, _L3, _L4, _L5, _L6 = (
    0.3333333333333334844154,
    0.199999999999497216166,
    0.1428571431300163437081,
    0.1111110556512993851452,
    0.09091444727837473019237,
    0.07665855309105385784611,
    0.07308292712444310987227,
)


@njit(types.float64(types.float64), fastmath=_FLAGS, cache=True, nogil=True, error_model="numpy")
def log64_pos(x: float) -> float:
    r"""``log`` of a positive normal finite float64 (or NaN, which propagates); vectorizable.

    :math:`x = 2^e m`, :math:`m \in [\sqrt2/2, \sqrt2)`, :math:`f = m - 1`,
    :math:`\log(1 + f) = 2\operatorname{atanh}(s)`, :math:`s = f / (2 + f)`.
    Max error 1 ulp on ``[1, 2**60]`` (``tests/test_fused_exp.py``).
    """
    m = _mantissa(x)
    e = _exponent(x)
    if m > _SQRT2:
        m = m * 0.5
        e = e + 1.0
    f = m - 1.0
    s = f / (2.0 + f)
    v = s * s
    p = _L6
    p = p * v + _L5
    p = p * v + _L4
    p = p * v + _L3
    p = p * v + _L2
    p = p * v + _L1
    p = p * v + _L0
    r = e * _LN2HI_64 + (e * _LN2LO_64 + (2.0 * s + (2.0 * s) * (v * p)))
    return r + (x - x)  # x - x: 0, or NaN for NaN (the bit tricks above would hide it)
