r"""Numba kernels for the softmax-based losses: cross-entropy (class-index and
class-probability targets), log-softmax, softmax and log-sum-exp.

Two layouts, both C-contiguous, the class axis of length ``C``:

* **rows** ``(R, C)``: each row is one distribution; each kernel computes the
  rows ``[r0, r1)``, and the caller runs blocks of rows on its own threads (the
  kernels release the GIL; Numba's ``parallel=True`` would add seconds of
  compilation to every signature);
* **strided** ``(N, C, D)`` with ``D > 1``: the distribution of position
  ``(n, d)`` is the column ``x[n, :, d]``. No transposed copy is made: a task
  handles a tile of ``TD`` contiguous positions, looping over classes outside
  and positions inside, with per-position running buffers of length ``TD``;
  tasks ``(n, tile)`` are split over threads in the same way.

Storage dtypes: float32, float64, and bfloat16 passed as its ``uint16`` bit
pattern (converted to float32 in registers: ``bits << 16``; results rounded
back to nearest even). Sums are accumulated in float64.

One row, rows layout, loss and gradient (``dst`` may be the logits themselves)::

    for each chunk k of _CH classes (it stays in L1):
        m_k = max_c x_c                                    pass 1: read x
        s_k = sum_c e_c,  e_c = exp(x_c - m_k) -> dst_c    pass 2: read x (L1), write e
    M = max_k m_k,  S = sum_k s_k exp(m_k - M),  lse = M + log S
    for each chunk k:
        dst_c = (K exp(m_k - M) / S) e_c - b_c             pass 3: read/write dst (L2)

So the logits are read once from memory and the gradient written once, with
one ``exp`` per element (``_exp.exp32`` / ``exp64``, vectorized by LLVM). With
the gradient coefficient of the softmax ``K`` and the constant part ``b``
(see :func:`ce_index_rows`), the gradient is ``K p - b``. bfloat16 gradients
are not stored as intermediate ``e`` (that would round twice): pass 2 only
sums, pass 3 recomputes ``exp`` (two per element).

Compilation: one signature per kernel and storage dtype. Options (weights,
ignore_index, label smoothing, z-loss, soft-cap, loss only or with gradient)
are runtime values, not compile-time variants: the loss only runs the same
code with scratch in place of the gradient, so that the loss is the same to
the bit either way. The pieces of a row are shared ``@njit`` helpers, typed
once per storage dtype; functions with many arguments are left unannotated
(Numba types them from the call; their docstrings give the shapes).

Floating-point flags: ``reassoc`` (vectorized sums), ``contract`` (FMA),
``nsz``, ``arcp``; never ``nnan``/``ninf``, because NaN and infinities must
propagate as in the generic path: a row holding NaN or ``+inf``, or only
``-inf``, has NaN log-probabilities, loss and gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from nllkit._kernels._exp import exp32_nonpos, exp64_nonpos, log64_pos

_FM = {"reassoc", "contract", "nsz", "arcp"}
_CH = 2048  # classes per chunk of a row: 8 KiB of float32, so the second read hits L1
# Sums of exponentials: partial sums of _SUB terms in the compute dtype (LLVM does not
# vectorize a loop that both evaluates exp32 and widens to float64), added in float64.
_SUB = 256
_L2_TILE_BYTES = 384 * 1024  # strided layout: bytes of one tile (logits + gradient), to stay in L2
_NEG_INF = -np.inf

# --- intrinsics -----------------------------------------------------------------------


@intrinsic
def _fmax(typingctx: Any, a: Any, b: Any) -> Any:
    """``llvm.maxnum``: the larger of two floats, the other one if one is NaN.

    Unlike a compare-and-select, LLVM vectorizes a ``maxnum`` reduction
    without the ``nnan`` flag. NaN is dropped here, but it still reaches the
    result through the sum of exponentials.
    """
    if a not in (types.float32, types.float64) or b != a:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        t = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maxnum", [t], ir.FunctionType(t, [t, t]))
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def _prefetch(typingctx: Any, a: Any, i: Any, write: Any) -> Any:
    """Hint the cache to fetch the line holding ``a[i]`` (1-D C-contiguous
    ``a``; any ``i``: a prefetch never faults). ``write`` (a literal bool):
    for writing. Used to fetch the next chunk from memory while the current
    one is busy computing exponentials."""
    if not isinstance(a, types.Array) or not isinstance(i, types.Integer):
        return None
    if not isinstance(write, types.BooleanLiteral):
        return None
    rw = 1 if write.literal_value else 0

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(arr.data, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, rw), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(a, i, write), codegen


# --- type-dispatched helpers (resolved at compile time) ----------------------------------


@intrinsic
def _cin(typingctx: Any, v: Any) -> Any:
    """A loaded element in the compute dtype: float32 from bfloat16 bits
    (``uint16``: ``bits << 16``, exact), the value itself otherwise."""
    if v == types.uint16:

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            i32 = ir.IntType(32)
            return builder.bitcast(builder.shl(builder.zext(args[0], i32), ir.Constant(i32, 16)), ir.FloatType())

        return types.float32(v), codegen
    if v in (types.float32, types.float64):
        return v(v), lambda context, builder, signature, args: args[0]
    return None


@intrinsic
def _cout(typingctx: Any, v: Any, a: Any) -> Any:
    """The value ``v`` to store into the array ``a``: converted to its dtype,
    rounded to bfloat16 bits (to nearest even; NaN stays a quiet NaN) for
    ``uint16`` storage."""
    if not isinstance(a, types.Array) or v not in (types.float32, types.float64):
        return None
    out = a.dtype

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        x = context.cast(builder, args[0], v, types.float32 if out == types.uint16 else out)
        if out != types.uint16:
            return x
        i32 = ir.IntType(32)
        bits = builder.bitcast(x, i32)
        high = builder.lshr(bits, ir.Constant(i32, 16))
        lsb = builder.and_(high, ir.Constant(i32, 1))
        rounded = builder.lshr(builder.add(builder.add(bits, ir.Constant(i32, 0x7FFF)), lsb), ir.Constant(i32, 16))
        quiet = builder.or_(high, ir.Constant(i32, 0x40))
        is_nan = builder.fcmp_unordered("uno", x, x)
        return builder.trunc(builder.select(is_nan, quiet, rounded), ir.IntType(16))

    return out(v, a), codegen


@intrinsic
def _keep(typingctx: Any, a: Any) -> Any:
    """Whether the array ``a`` holds intermediate exponentials (a float array), or
    they are recomputed (bfloat16 output, or no output): a compile-time constant."""
    if not isinstance(a, types.Array):
        return None
    value = int(a.dtype != types.uint16)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return ir.Constant(ir.IntType(1), value)

    return types.boolean(a), codegen


@intrinsic
def _cv(typingctx: Any, v: Any, like: Any) -> Any:
    """The scalar ``v`` in the dtype of the array ``like`` (the compute dtype)."""
    if not isinstance(like, types.Array) or not isinstance(v, (types.Float, types.Integer, types.Boolean)):
        return None
    out = like.dtype

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return context.cast(builder, args[0], v, out)

    return out(v, like), codegen


@intrinsic
def _zero(typingctx: Any, m: Any) -> Any:
    """A zero of the float type of ``m``."""
    if m not in (types.float32, types.float64):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return context.get_constant(m, 0.0)

    return m(m), codegen


@intrinsic
def _u(typingctx: Any, i: Any) -> Any:
    """An index as uint64: Numba then skips the negative-index wraparound, whose
    per-element select stops LLVM from vectorizing the loop."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return context.cast(builder, args[0], i, types.uint64)

    return types.uint64(i), codegen


@njit(fastmath={"contract", "nsz"}, cache=True, error_model="numpy")
def _sub2(a: Any, b: Any, c: Any) -> Any:
    """``(a - b) - c`` in this order (no ``reassoc`` here, which would rewrite it
    as ``a - (b + c)`` and lose ``c`` next to a huge ``b``; inlined into loops,
    it keeps its own flags and still vectorizes)."""
    return (a - b) - c


def _exp(v):
    """``exp(v)`` for ``v <= 0`` or NaN (always ``x - max``): results below
    ``2**-125`` (float32) or ``2**-1021`` (float64) are flushed to 0."""
    raise NotImplementedError


@overload(_exp)
def _ov_exp(v):
    if v == types.float32:
        return lambda v: exp32_nonpos(v)
    if v == types.float64:
        return lambda v: exp64_nonpos(v)
    return None


# tanh(u) = u + u^3 P(u^2) for |u| < 0.55 (near-minimax fit of (tanh(u) - u) / u^3,
# relative error 4e-9 for float32, 2.3e-18 for float64); beyond, from e = exp(-2|u|):
# tanh = (1 - e) / (1 + e) and 1 - tanh^2 = 4 e / (1 + e)^2, both free of cancellation.
_TANH_SMALL = 0.55
_T32 = tuple(
    np.float32(c)
    for c in (
        -0.3333333200735141820862,
        0.1333311364728361592382,
        -0.05390941274186424985082,
        0.0213092899551295519983,
        -0.006610042143316354803917,
    )
)
_T64 = (
    -0.3333333333333333255979,
    0.1333333333333271424528,
    -0.05396825396743332671768,
    0.02186948849363553388135,
    -0.008863234397089930140029,
    0.003592110369136933396305,
    -0.001455661753739356023082,
    0.0005889356755666888872382,
    -0.0002346336232753106146478,
    0.00008511130450065170900456,
    -0.00002060149214083168130294,
)


def _tanh_d(u):
    """``(tanh(u), 1 - tanh(u)**2)``, vectorizable."""
    raise NotImplementedError


@overload(_tanh_d, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _ov_tanh_d(u):
    if u == types.float32:
        one, two, four, small = np.float32(1), np.float32(-2), np.float32(4), np.float32(_TANH_SMALL)
        a0, a1, a2, a3, a4 = _T32

        def impl32(u):
            a = abs(u)
            e = exp32_nonpos(two * a)
            big = (one - e) / (one + e)
            d_big = four * e / ((one + e) * (one + e))
            v = u * u
            t_small = u + (u * v) * ((((a4 * v + a3) * v + a2) * v + a1) * v + a0)
            if a < small:
                return t_small, one - t_small * t_small
            return (big if u >= 0 else -big), d_big

        return impl32
    if u == types.float64:
        c = _T64

        def impl64(u):
            a = abs(u)
            e = exp64_nonpos(-2.0 * a)
            big = (1.0 - e) / (1.0 + e)
            d_big = 4.0 * e / ((1.0 + e) * (1.0 + e))
            v = u * u
            p = c[10]
            p = p * v + c[9]
            p = p * v + c[8]
            p = p * v + c[7]
            p = p * v + c[6]
            p = p * v + c[5]
            p = p * v + c[4]
            p = p * v + c[3]
            p = p * v + c[2]
            p = p * v + c[1]
            p = p * v + c[0]
            t_small = u + (u * v) * p
            if a < _TANH_SMALL:
                return t_small, 1.0 - t_small * t_small
            return (big if u >= 0 else -big), d_big

        return impl64
    return None


# --- pieces of one row (rows layout) -----------------------------------------------------


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _shift(m: Any) -> Any:
    """The exponent shift of a chunk with maximum ``m``: ``m``, or 0 for a chunk
    of ``-inf`` only (whose exponentials are then 0, not NaN)."""
    return _zero(m) if m == _NEG_INF else m


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_max(src: Any, lo: int, hi: int) -> Any:
    m = _cin(src[lo])
    for c in range(_u(lo + 1), _u(hi)):
        m = _fmax(m, _cin(src[c]))
    return m


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_wsum_rel(src: Any, lo: int, hi: int, w: Any, ms: Any) -> Any:
    """``(sum_c w_c (src_c - ms), sum_c w_c)`` in float64 (``w`` empty means 1).
    Relative to the chunk's maximum, the terms share one sign (for ``w >= 0``):
    no cancellation, unlike ``W M - sum_c w_c x_c`` with large logits."""
    s = 0.0
    sw = 0.0
    if w.shape[0] == 0:
        for c in range(_u(lo), _u(hi)):
            s += _cin(src[c]) - ms
        sw = np.float64(hi - lo)
    else:
        for c in range(_u(lo), _u(hi)):
            s += w[c] * (_cin(src[c]) - ms)
            sw += w[c]
    return s, sw


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_exp(src: Any, dst: Any, lo: int, hi: int, ms: Any) -> float:
    """``sum_c exp(src_c - ms)`` (float64); each term is stored in ``dst`` when it
    can hold it. Meanwhile the next chunk is prefetched (past the row's end:
    the next row), so that memory works while this chunk computes."""
    s = 0.0
    end = _u(hi)
    step = _u(64 // src.itemsize)  # elements per cache line
    for b0 in range(_u(lo), end, _u(_SUB)):
        b1 = min(b0 + _u(_SUB), end)
        for p in range(b0 + _u(_CH), b0 + _u(_CH + _SUB), step):
            _prefetch(src, p, False)
        part = _zero(ms)
        if _keep(dst):
            for p in range(b0 + _u(_CH), b0 + _u(_CH + _SUB), step):
                _prefetch(dst, p, True)
            for c in range(b0, b1):
                e = _exp(_cin(src[c]) - ms)
                dst[c] = _cout(e, dst)
                part += e
        else:
            for c in range(b0, b1):
                part += _exp(_cin(src[c]) - ms)
        s += part
    return s


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_exp_ip(a: Any, lo: int, hi: int, ms: Any) -> float:
    """:func:`_chunk_exp` in place (``src`` is ``dst``): one array, so that LLVM
    needs no runtime overlap check (which would fail and run the scalar loop)."""
    s = 0.0
    end = _u(hi)
    for b0 in range(_u(lo), end, _u(_SUB)):
        b1 = min(b0 + _u(_SUB), end)
        part = _zero(ms)
        for c in range(b0, b1):
            e = _exp(_cin(a[c]) - ms)
            a[c] = _cout(e, a)
            part += e
        s += part
    return s


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_grad(src: Any, dst: Any, lo: int, hi: int, ms: Any, fac: Any, b: Any, w: Any, d: Any) -> None:
    """Pass 3: ``dst_c = (fac e_c - b w_c) d_c``; ``w`` / ``d`` empty mean 1."""
    hw = w.shape[0] > 0
    hd = d.shape[0] > 0
    if hw and hd:
        for c in range(_u(lo), _u(hi)):
            dst[c] = _cout((fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(src[c]) - ms)) - b * w[c]) * d[c], dst)
    elif hw:
        for c in range(_u(lo), _u(hi)):
            dst[c] = _cout(fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(src[c]) - ms)) - b * w[c], dst)
    elif hd:
        for c in range(_u(lo), _u(hi)):
            dst[c] = _cout((fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(src[c]) - ms)) - b) * d[c], dst)
    else:
        for c in range(_u(lo), _u(hi)):
            dst[c] = _cout(fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(src[c]) - ms)) - b, dst)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_grad_ip(a: Any, lo: int, hi: int, ms: Any, fac: Any, b: Any, w: Any) -> None:
    """Pass 3 in place, recomputing the exponentials (bfloat16 logits
    overwritten by their gradient; no soft-cap, which reads a scratch row)."""
    if w.shape[0] > 0:
        for c in range(_u(lo), _u(hi)):
            a[c] = _cout(fac * _exp(_cin(a[c]) - ms) - b * w[c], a)
    else:
        for c in range(_u(lo), _u(hi)):
            a[c] = _cout(fac * _exp(_cin(a[c]) - ms) - b, a)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _softcap_row(xr: Any, cap: Any, xs: Any, ds: Any) -> None:
    """``xs = cap tanh(x / cap)`` and ``ds = 1 - tanh(x / cap)**2``."""
    for c in range(xr.shape[0]):
        t, dd = _tanh_d(_cin(xr[c]) / cap)
        xs[c] = cap * t
        ds[c] = dd


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_scratch(n: int, w: Any) -> Any:
    """Per-chunk scratch for a row of ``n``: maxima ``mk`` (compute dtype) and
    ``sk`` (float64): sums of exponentials, and the two sums of :func:`_row_stats`."""
    nch = (n + _CH - 1) // _CH
    return np.empty(nch, dtype=w.dtype), np.empty((3, nch))


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _row_stats(src, dst, w, pre, t, gt, a, bq, mk, sk, inplace) -> Any:
    """Passes 1 and 2 over a row. Returns ``(M, S, sx, sw)``: the row maximum
    ``M`` (float64), ``S = sum_c exp(src_c - M)``, and by ``pre``:

    * 0: ``sx = sw = 0`` (``t``, ``gt``, ``a``, ``bq`` unused);
    * 1 (label smoothing): ``sx = sum_c w_c (src_c - M)`` (<= 0);
    * 2 (probability targets ``t``): with ``q = a t + bq``, ``sx = sum_c w_c q_c
      (src_c - M)`` and ``sw = sum_c w_c q_c``; ``src`` is copied into ``gt``.

    ``mk[k]`` and ``sk[0, k]`` get chunk ``k``'s maximum and sum (``sk[1:]``: scratch).
    """
    n = src.shape[0]
    nch = (n + _CH - 1) // _CH
    big = _NEG_INF
    for k in range(nch):
        lo = k * _CH
        hi = min(n, lo + _CH)
        m = _chunk_max(src, lo, hi)
        ms = _shift(m)
        # Before pass 2 may overwrite src; relative to the chunk's shift (no cancellation
        # with large logits), moved to the row's maximum below.
        if pre == 1:
            sk[1, k], sk[2, k] = _chunk_wsum_rel(src, lo, hi, w, ms)
        elif pre == 2:
            sk[2, k], sk[1, k] = _chunk_tq(src, t, gt, lo, hi, a, bq, w, ms)
        if inplace and _keep(dst):
            sk[0, k] = _chunk_exp_ip(dst, lo, hi, ms)
        else:
            sk[0, k] = _chunk_exp(src, dst, lo, hi, ms)
        mk[k] = m
        big = _fmax(big, np.float64(m))
    total = 0.0
    if big != _NEG_INF:
        for k in range(nch):
            if mk[k] != _NEG_INF:  # NaN passes
                total += sk[0, k] * math.exp(np.float64(mk[k]) - big)
    sx = 0.0
    sw = 0.0
    for k in range(nch if pre > 0 else 0):
        sx += sk[1, k] + sk[2, k] * (np.float64(_shift(mk[k])) - big)
        sw += sk[2, k]
    return big, total, sx, sw


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _log_sum(big: float, total: float) -> float:
    """``log S``; NaN for a row of ``-inf`` only. Vectorizable (no library call).

    The log-sum-exp is ``M + log S``; callers keep the two apart, so that
    ``lse - x = (M - x) + log S`` keeps ``log S`` when ``|M|`` is so large
    that ``M + log S`` rounds to ``M`` (rows like ``[3e38, 3e38]``)."""
    return np.nan if big == _NEG_INF else log64_pos(total)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_factor(m: Any, ms: Any, big: float, scale: float) -> float:
    """``scale * exp(ms - M)``: turns chunk exponentials into ``scale * p``. 0 for
    a chunk of ``-inf`` only, NaN when the whole row is ``-inf`` (as the generic
    path: its softmax is NaN)."""
    if big == _NEG_INF:
        return np.nan
    return 0.0 if m == _NEG_INF else scale * math.exp(np.float64(ms) - big)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_span(k: int, n: int, mk: Any, big: float, scale: float) -> Any:
    """Chunk ``k`` of a row of ``n``: ``(lo, hi, shift, scale * exp(shift - M))``
    (see :func:`_chunk_factor`), for pass 3."""
    lo = k * _CH
    m = mk[k]
    ms = _shift(m)
    return lo, min(n, lo + _CH), ms, _chunk_factor(m, ms, big, scale)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _row_finish(
    src: Any, dst: Any, w: Any, d: Any, mk: Any, big: float, total: float, k_coef: float, b: float, inplace: bool
) -> None:
    """Pass 3 over a row: ``dst_c = (k_coef p_c - b w_c) d_c`` with
    ``p_c = exp(src_c - lse)``, from the stored or recomputed exponentials."""
    n = src.shape[0]
    nch = (n + _CH - 1) // _CH
    inv = k_coef / total
    bc = _cv(b, w)
    for k in range(nch):
        lo, hi, ms, fac = _chunk_span(k, n, mk, big, inv)
        if inplace and not _keep(dst):
            _chunk_grad_ip(dst, lo, hi, ms, _cv(fac, w), bc, w)
        else:
            _chunk_grad(src, dst, lo, hi, ms, _cv(fac, w), bc, w, d)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _row_grad_at(
    xy: Any, yi: int, dst: Any, w: Any, d: Any, mk: Any, big: float, total: float, k_coef: float, b: float, corr: float
) -> None:
    """Rewrite ``dst[yi]`` as ``(k_coef p_y - b w_y - corr) d_y``, rounded once.
    ``xy`` is the (capped) logit at ``yi``, read before ``dst`` overwrote it."""
    m = mk[yi // _CH]
    ms = _shift(m)
    fac = _chunk_factor(m, ms, big, k_coef / total)
    wy = w[yi] if w.shape[0] > 0 else _cv(1.0, w)
    v = _cv(fac, w) * _exp(xy - ms) - _cv(b, w) * wy - _cv(corr, w)
    if d.shape[0] > 0:
        v = v * d[yi]
    dst[yi] = _cout(v, dst)


# --- cross-entropy, class-index targets, rows layout -----------------------------------------


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _index_row(src, dst, yi, w, wsum, eps, z, g, d, mk, sk, inplace, want) -> Any:
    """Loss (float64) and log-sum-exp of one non-ignored row; the gradient into
    ``dst`` if ``want`` (else ``dst`` is scratch: the same code runs, so that
    the loss does not depend on whether the gradient is wanted)."""
    n = src.shape[0]
    xy = _cin(src[yi])  # before pass 2 may overwrite it
    wy = np.float64(w[yi]) if w.shape[0] > 0 else 1.0
    zero = _cv(0.0, w)  # d stands for the unused targets of _row_stats (an array of the same type)
    big, total, sx, _ = _row_stats(src, dst, w, 1 if eps > 0 else 0, d, d, zero, zero, mk, sk, inplace)
    lns = _log_sum(big, total)
    lse = big + lns
    # -log p_y = -((x_y - M) - log S) in the compute dtype, the generic path's
    # operations: the unsmoothed loss then rounds as it does (and as PyTorch's).
    loss = (1 - eps) * wy * -np.float64(_sub2(xy, _cv(big, w), _cv(lns, w)))
    if eps > 0:
        loss += (eps / n) * (wsum * lns - sx)
    if z > 0:
        loss += z * lse * lse
    if want:
        k_coef = g * ((1 - eps) * wy + eps * wsum / n + 2 * z * lse)
        b = g * eps / n
        _row_finish(src, dst, w, d, mk, big, total, k_coef, b, inplace)
        _row_grad_at(xy, yi, dst, w, d, mk, big, total, k_coef, b, g * (1 - eps) * wy)
    return loss, lse


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def ce_index_rows(x, y, w, wsum, ignore_index, eps, z, cap, g, grad, loss, lse, r0, r1, inplace) -> None:
    r"""Cross-entropy with class-index targets, rows layout, loss and optionally gradient.

    Parameters
    ----------
    x : (R, C) float32, float64 or uint16 (bfloat16 bits), C-contiguous
    y : (R,) int64
        Targets; entries equal to `ignore_index` are skipped (loss 0, gradient
        0, the row not read). Others must be in ``[0, C)`` (not checked).
    w : (C,) or (0,), compute dtype
        Class weights; empty for none. The compute dtype (float32 for float32
        and bfloat16 logits, float64 for float64) is taken from it.
    wsum : float
        ``W = sum_c w_c`` (``C`` without weights).
    eps, z, cap : float
        Label smoothing, z-loss coefficient, soft-cap (0 for none).
    g : (R,) or (1,) float64
        Cotangent of each row's loss (broadcast when of length 1).
    grad : (R, C) of x's storage dtype, or (R, 0) of that dtype for the loss only
        May be `x` itself (then ``inplace=True``).
    loss, lse : (R,) float64, out
        Each row's loss and log-sum-exp of the (capped) logits ``x'``.
    inplace : bool
        `grad` is `x`.
    r0, r1 : int
        The rows to compute, ``[r0, r1)``: the caller splits the rows into
        blocks and runs them on its threads (the kernel releases the GIL).

    Notes
    -----
    With :math:`p = \operatorname{softmax}(x')`, weights :math:`w` (1 if absent):

    .. math::

        \ell = (1-\varepsilon) w_y (\mathrm{lse} - x'_y)
               + \tfrac{\varepsilon}{C}(W \mathrm{lse} - \textstyle\sum_c w_c x'_c)
               + z\,\mathrm{lse}^2,

        \partial \ell / \partial x'_c = g\,[K p_c - \tfrac{\varepsilon}{C} w_c
               - (1-\varepsilon) w_y [c = y]], \quad
        K = (1-\varepsilon) w_y + \tfrac{\varepsilon}{C} W + 2 z\,\mathrm{lse},

    chained through :math:`dx'/dx = 1 - \tanh^2(x/s)` with a soft-cap ``s``.
    """
    n = x.shape[1]
    mk, sk = _chunk_scratch(n, w)
    want = grad.shape[1] > 0  # the loss only: grad is (R, 0), of x's storage dtype
    scratch = np.empty(0 if want else n, dtype=grad.dtype)  # takes the gradient's place
    ip = inplace and cap <= 0  # a variable, not a literal: one compiled variant of _index_row
    nod = np.empty(0, dtype=w.dtype)
    xs = np.empty(n if cap > 0 else 0, dtype=w.dtype)
    ds = np.empty(n if cap > 0 else 0, dtype=w.dtype)
    for i in range(r0, r1):
        yi = y[i]
        gi = g[i] if g.shape[0] > 1 else g[0]
        if yi == ignore_index:
            # Not read at all: NaN or inf there must not leak into the gradient.
            loss[i] = 0.0
            lse[i] = np.nan
            if want:
                gr = grad[i]
                for c in range(n):
                    gr[c] = 0
            continue
        dst = grad[i] if want else scratch
        if cap > 0:
            _softcap_row(x[i], _cv(cap, w), xs, ds)
            loss[i], lse[i] = _index_row(xs, dst, yi, w, wsum, eps, z, gi, ds, mk, sk, ip, want)
        else:
            loss[i], lse[i] = _index_row(x[i], dst, yi, w, wsum, eps, z, gi, nod, mk, sk, ip, want)


_SMALL_C = 64  # rows this short go through transposed tiles: the per-row overhead would dominate
_SMALL_TILE = 512  # rows per transposed tile (per-tile allocations amortised)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _transpose_in(x: Any, r0: int, tb: int, xt: Any) -> None:
    """``xt[c, j] = x[r0 + j, c]`` in the compute dtype."""
    for j in range(tb):
        for c in range(x.shape[1]):
            xt[c, j] = _cin(x[r0 + j, c])


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _transpose_out(gt: Any, r0: int, tb: int, grad: Any) -> None:
    for j in range(tb):
        for c in range(grad.shape[1]):
            grad[r0 + j, c] = _cout(_cin(gt[c, j]), grad)


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def ce_index_small_rows(x, y, w, wsum, ignore_index, eps, z, cap, g, grad, loss, lse, r0, r1) -> None:
    """:func:`ce_index_rows` for rows of at most ``_SMALL_C`` classes, through
    transposed tiles (see :func:`_index_small_block`); always safe in place."""
    n = x.shape[1]
    want = grad.shape[1] > 0
    xt = np.empty((n, _SMALL_TILE), dtype=w.dtype)
    gt = np.empty((n, _SMALL_TILE), dtype=w.dtype)  # the gradient tile (scratch for the loss only)
    xs = np.empty((n, _SMALL_TILE) if cap > 0 else (0, 0), dtype=w.dtype)
    ds = np.empty((n, _SMALL_TILE) if cap > 0 else (0, 0), dtype=w.dtype)
    gb = np.empty(_SMALL_TILE)
    off = r0 - r0  # 0, as a variable (a literal would compile another variant)
    ip = r0 < 0  # False, likewise
    for t0 in range(r0, r1, _SMALL_TILE):
        tb = min(_SMALL_TILE, r1 - t0)
        _transpose_in(x, t0, tb, xt)
        for j in range(tb):
            gb[j] = g[t0 + j] if g.shape[0] > 1 else g[0]
        yv = y[t0 : t0 + tb]
        lv = loss[t0 : t0 + tb]
        sv = lse[t0 : t0 + tb]
        src = xt
        if cap > 0:
            _tile_softcap(xt, off, tb, _cv(cap, w), xs, ds)
            src = xs
        _index_tile(src, off, gt, off, tb, yv, gb, w, wsum, ignore_index, eps, z, ds, lv, sv, ip, want)
        if want:
            _transpose_out(gt, t0, tb, grad)


# --- cross-entropy, probability targets, rows layout -----------------------------------------


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_tq(src: Any, t: Any, gt: Any, lo: int, hi: int, a: Any, bq: Any, w: Any, ms: Any) -> Any:
    """``(sum_c w_c q_c, sum_c w_c q_c (src_c - ms))`` in float64 with ``q = a t + bq``
    (relative to the chunk's maximum, as in :func:`_chunk_wsum_rel`); copies
    ``src`` into ``gt`` (the target gradient's buffer, or scratch)."""
    sq = 0.0
    sxq = 0.0
    for c in range(_u(lo), _u(hi)):
        v = _cin(src[c])
        wq = w[c] * (a * _cin(t[c]) + bq)
        sq += wq
        sxq += wq * (v - ms)
        gt[c] = v
    return sq, sxq


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _chunk_prob_grad(t, dst, gt, lo, hi, ms, fac, gb, a, bq, w, d, mc, lnc, gtf, acc, g64, big, lns) -> None:
    """Pass 3, probability targets: ``dst = (fac e - g w q) d``; ``gt`` (holding
    ``x'``) becomes ``gtf w (x' - lse)``; ``acc_c -= g q_c (x'_c - lse)`` when
    ``acc`` is not empty; ``x' - lse`` as ``(x' - M) - log S`` (``mc``, ``lnc``
    in the compute dtype, ``big``, ``lns`` in float64). ``e`` is recomputed from ``gt`` when ``dst`` cannot hold it."""
    hd = d.shape[0] > 0
    if acc.shape[0] > 0 and hd:
        for c in range(_u(lo), _u(hi)):
            v = gt[c]
            q = a * _cin(t[c]) + bq
            dst[c] = _cout(
                (fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(gt[c]) - ms)) - gb * (w[c] * q)) * d[c], dst
            )
            gt[c] = gtf * w[c] * _sub2(v, mc, lnc)
            acc[c] -= g64 * q * _sub2(np.float64(v), big, lns)
    elif acc.shape[0] > 0:
        for c in range(_u(lo), _u(hi)):
            v = gt[c]
            q = a * _cin(t[c]) + bq
            dst[c] = _cout(fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(gt[c]) - ms)) - gb * (w[c] * q), dst)
            gt[c] = gtf * w[c] * _sub2(v, mc, lnc)
            acc[c] -= g64 * q * _sub2(np.float64(v), big, lns)
    elif hd:
        for c in range(_u(lo), _u(hi)):
            v = gt[c]
            gv = fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(gt[c]) - ms)) - gb * (w[c] * (a * _cin(t[c]) + bq))
            dst[c] = _cout(gv * d[c], dst)
            gt[c] = gtf * w[c] * _sub2(v, mc, lnc)
    else:
        for c in range(_u(lo), _u(hi)):
            v = gt[c]
            gv = fac * (_cin(dst[c]) if _keep(dst) else _exp(_cin(gt[c]) - ms)) - gb * (w[c] * (a * _cin(t[c]) + bq))
            dst[c] = _cout(gv, dst)
            gt[c] = gtf * w[c] * _sub2(v, mc, lnc)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _prob_row(src, t, dst, gt, w, eps, z, g, d, mk, sk, acc, inplace, want) -> Any:
    """Loss and log-sum-exp of one row; the gradients into ``dst``, ``gt``,
    ``acc`` if ``want`` (else ``dst`` and ``gt`` are scratch, as in :func:`_index_row`)."""
    n = src.shape[0]
    nch = (n + _CH - 1) // _CH
    a = _cv(1 - eps, w)
    bq = _cv(eps / n, w)
    # sq = Q = sum_c w_c q_c; sxq = sum_c w_c q_c (x'_c - M), <= 0 for w q >= 0
    big, total, sxq, sq = _row_stats(src, dst, w, 2, t, gt, a, bq, mk, sk, inplace)
    lns = _log_sum(big, total)
    lse = big + lns
    loss = sq * lns - sxq
    if z > 0:
        loss += z * lse * lse
    if want:
        inv = g * (sq + 2 * z * lse) / total
        gb = _cv(g, w)
        gtf = _cv(-g * (1 - eps), w)
        mc = _cv(big, w)
        lnc = _cv(lns, w)
        for k in range(nch):
            lo, hi, ms, fac = _chunk_span(k, n, mk, big, inv)
            _chunk_prob_grad(t, dst, gt, lo, hi, ms, _cv(fac, w), gb, a, bq, w, d, mc, lnc, gtf, acc, g, big, lns)
    return loss, lse


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def ce_prob_rows(x, t, w, eps, z, cap, g, grad, grad_t, acc, loss, lse, r0, r1, inplace) -> None:
    r"""Cross-entropy with class-probability targets, rows layout.

    Parameters
    ----------
    x : (R, C) float32, float64 or uint16 (bfloat16 bits)
    t : (R, C) of the compute dtype, or uint16 (bfloat16 bits) for float32
    w : (C,) compute dtype
        Class weights, ones when the loss has none.
    eps, z, cap, g
        As in :func:`ce_index_rows`.
    grad : (R, C) of x's storage dtype, or (R, 0) of that dtype for the loss only
        The gradient with respect to ``x`` (may be ``x``: ``inplace``).
    grad_t : (R, C) compute dtype, or (R, 0)
        The gradient with respect to ``t``, when ``grad`` is wanted.
    acc : (C,) float64, or (0,)
        This block's partial sum of the weight gradient, added to (the caller
        gives each block its own and sums them); empty: not wanted.
    loss, lse : (R,) float64, out
    inplace, r0, r1
        As in :func:`ce_index_rows`.

    Notes
    -----
    With :math:`q = (1-\varepsilon) t + \varepsilon / C` and :math:`Q = \sum_c w_c q_c`:
    :math:`\ell = Q\,\mathrm{lse} - \sum_c w_c q_c x'_c + z\,\mathrm{lse}^2`,
    :math:`\partial\ell/\partial x' = g[(Q + 2z\,\mathrm{lse}) p - w q]`,
    :math:`\partial\ell/\partial t = -g(1-\varepsilon) w (x' - \mathrm{lse})`,
    :math:`\partial\ell/\partial w = -g\,q (x' - \mathrm{lse})`.
    """
    n = x.shape[1]
    mk, sk = _chunk_scratch(n, w)
    ip = inplace and cap <= 0
    want = grad.shape[1] > 0  # the loss only: grad, grad_t are (R, 0); scratch rows take their place
    scratch = np.empty(0 if want else n, dtype=grad.dtype)
    scratch_t = np.empty(0 if want else n, dtype=grad_t.dtype)
    nod = np.empty(0, dtype=w.dtype)
    xs = np.empty(n if cap > 0 else 0, dtype=w.dtype)
    ds = np.empty(n if cap > 0 else 0, dtype=w.dtype)
    for i in range(r0, r1):
        gi = g[i] if g.shape[0] > 1 else g[0]
        dst = grad[i] if want else scratch
        gt = grad_t[i] if want else scratch_t
        if cap > 0:
            _softcap_row(x[i], _cv(cap, w), xs, ds)
            loss[i], lse[i] = _prob_row(xs, t[i], dst, gt, w, eps, z, gi, ds, mk, sk, acc, ip, want)
        else:
            loss[i], lse[i] = _prob_row(x[i], t[i], dst, gt, w, eps, z, gi, nod, mk, sk, acc, ip, want)


# --- strided layout (N, C, D): tiles of positions -------------------------------------------
#
# A tile is ``src[:, so:so + td]`` of a 2-D ``(C, *)`` array (the logits of one sample, or a
# scratch tile of soft-capped logits, ``so = 0``) and ``dst[:, do:do + td]``. Loops run over
# classes outside and the tile's positions inside, contiguous, so they vectorize; per-position
# state lives in arrays of length ``td``.


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_max(src: Any, so: int, td: int, mx: Any) -> None:
    base = _u(so)
    for j in range(_u(0), _u(td)):
        mx[j] = _cin(src[0, base + j])
    for c in range(1, src.shape[0]):
        for j in range(_u(0), _u(td)):
            mx[j] = _fmax(mx[j], _cin(src[c, base + j]))


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_wsum(src: Any, so: int, td: int, w: Any, ms: Any, sx: Any) -> None:
    """``sx[j] = sum_c w_c (src[c, so + j] - ms[j])`` (float64; ``w`` empty
    means 1), relative to the column maximum: no cancellation."""
    base = _u(so)
    for j in range(td):
        sx[j] = 0.0
    for c in range(src.shape[0]):
        wc = w[c] if w.shape[0] > 0 else _cv(1.0, w)
        for j in range(_u(0), _u(td)):
            sx[j] += wc * (_cin(src[c, base + j]) - ms[j])


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_exp(src: Any, so: int, dst: Any, do: int, td: int, ms: Any, part: Any, s: Any, inplace: bool) -> None:
    """``s[j] = sum_c exp(src[c, so + j] - ms[j])`` (float64, via partial sums
    ``part`` of the compute dtype over _SUB classes); stored into ``dst`` when it can hold them."""
    sb = _u(so)
    db = _u(do)
    n = src.shape[0]
    for j in range(td):
        s[j] = 0.0
    for c0 in range(0, n, _SUB):
        for j in range(td):
            part[j] = 0
        for c in range(c0, min(n, c0 + _SUB)):
            if inplace and _keep(dst):
                for j in range(_u(0), _u(td)):
                    e = _exp(_cin(dst[c, db + j]) - ms[j])
                    dst[c, db + j] = _cout(e, dst)
                    part[j] += e
            elif _keep(dst):
                for j in range(_u(0), _u(td)):
                    e = _exp(_cin(src[c, sb + j]) - ms[j])
                    dst[c, db + j] = _cout(e, dst)
                    part[j] += e
            else:
                for j in range(_u(0), _u(td)):
                    part[j] += _exp(_cin(src[c, sb + j]) - ms[j])
        for j in range(td):
            s[j] += part[j]


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_shift(src: Any, so: int, td: int, w: Any) -> Any:
    """Pass 1 over a tile: the column maxima ``big`` (float64) and exponent
    shifts ``ms`` (compute dtype, that of ``w``: the maximum, 0 for a column of
    ``-inf`` only)."""
    mx = np.empty(td, dtype=w.dtype)
    _tile_max(src, so, td, mx)
    ms = np.empty(td, dtype=w.dtype)
    big = np.empty(td)
    for j in range(td):
        ms[j] = _shift(mx[j])
        big[j] = np.float64(mx[j])
    return ms, big


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_sums(src: Any, so: int, dst: Any, do: int, td: int, w: Any, ms: Any, big: Any, inplace: bool) -> Any:
    """Pass 2 over a tile: ``(s, lns)``, the sums ``S`` of exponentials and
    ``log S`` (float64; NaN where a column holds only ``-inf``, or NaN, or
    ``+inf``). The log-sum-exp is ``M + log S`` (see :func:`_log_sum`)."""
    part = np.empty(td, dtype=w.dtype)
    s = np.empty(td)
    _tile_exp(src, so, dst, do, td, ms, part, s, inplace)
    lns = np.empty(td)
    for j in range(td):
        lns[j] = _log_sum(big[j], s[j])
    return s, lns


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_softcap(x2: Any, d0: int, td: int, cap: Any, xs: Any, ds: Any) -> None:
    """The soft-capped tile ``xs[c, j] = cap tanh(x2[c, d0 + j] / cap)`` and its slope ``ds``."""
    base = _u(d0)
    for c in range(x2.shape[0]):
        for j in range(_u(0), _u(td)):
            t, dd = _tanh_d(_cin(x2[c, base + j]) / cap)
            xs[c, j] = cap * t
            ds[c, j] = dd


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_factors(ms: Any, s: Any, big: Any, coef: Any, td: int, w: Any) -> Any:
    """``coef[j] / s[j]`` in the compute dtype: turns the stored ``exp(x - ms)``
    into ``coef * p`` (no chunks here, so the shift ``ms`` is the maximum;
    NaN for a column of ``-inf`` only, whose softmax is NaN)."""
    fac = np.empty(td, dtype=w.dtype)
    for j in range(td):
        fac[j] = np.nan if big[j] == _NEG_INF else coef[j] / s[j]
    return fac


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_grad(
    src: Any, so: int, dst: Any, do: int, td: int, ms: Any, fac: Any, bb: Any, w: Any, ds: Any, keep: Any, inplace: bool
) -> None:
    """Pass 3 over a tile: ``dst[c, j] = (fac_j e_cj - bb_j w_c) ds_cj`` where
    ``keep[j]``, exactly 0 elsewhere (even if the logits there are NaN)."""
    sb = _u(so)
    db = _u(do)
    hd = ds.shape[0] > 0
    zero = _cv(0.0, w)
    for c in range(src.shape[0]):
        wc = w[c] if w.shape[0] > 0 else _cv(1.0, w)
        if inplace and not _keep(dst):
            for j in range(_u(0), _u(td)):
                v = fac[j] * _exp(_cin(dst[c, db + j]) - ms[j]) - bb[j] * wc
                dst[c, db + j] = _cout(v if keep[j] else zero, dst)
        elif hd:
            for j in range(_u(0), _u(td)):
                v = (
                    fac[j] * (_cin(dst[c, db + j]) if _keep(dst) else _exp(_cin(src[c, sb + j]) - ms[j])) - bb[j] * wc
                ) * ds[c, j]
                dst[c, db + j] = _cout(v if keep[j] else zero, dst)
        else:
            for j in range(_u(0), _u(td)):
                v = fac[j] * (_cin(dst[c, db + j]) if _keep(dst) else _exp(_cin(src[c, sb + j]) - ms[j])) - bb[j] * wc
                dst[c, db + j] = _cout(v if keep[j] else zero, dst)


# --- cross-entropy, class-index targets, strided layout ------------------------------------------


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _index_tile(src, so, dst, do, td, yv, gv, w, wsum, ignore_index, eps, z, ds, lossv, lsev, inplace, want) -> None:
    """One tile of positions: targets ``yv``, cotangents ``gv`` and outputs
    ``lossv``, ``lsev``, all of length ``td``; the gradient into ``dst`` if
    ``want`` (else ``dst`` is scratch). See :func:`ce_index_rows`."""
    n = src.shape[0]
    hw = w.shape[0] > 0
    keep = np.empty(td, dtype=np.bool_)
    xy = np.empty(td, dtype=w.dtype)
    for j in range(td):
        yj = yv[j]
        keep[j] = yj != ignore_index
        xy[j] = _cin(src[yj if keep[j] else 0, so + j])  # before pass 2 may overwrite it
    ms, big = _tile_shift(src, so, td, w)
    sx = np.zeros(td)
    if eps > 0:  # before pass 2 may overwrite src
        _tile_wsum(src, so, td, w, ms, sx)
    s, lns = _tile_sums(src, so, dst, do, td, w, ms, big, inplace)
    coef = np.empty(td)
    bb = np.empty(td, dtype=w.dtype)
    for j in range(td):
        if not keep[j]:
            lossv[j] = 0.0
            lsev[j] = np.nan
            coef[j] = 0.0
            bb[j] = 0
            continue
        wy = np.float64(w[yv[j]]) if hw else 1.0
        le = big[j] + lns[j]
        loss = (1 - eps) * wy * -np.float64(_sub2(xy[j], _cv(big[j], w), _cv(lns[j], w)))  # as in _index_row
        if eps > 0:
            loss += (eps / n) * (wsum * lns[j] - sx[j])
        if z > 0:
            loss += z * le * le
        lossv[j] = loss
        lsev[j] = le
        coef[j] = gv[j] * ((1 - eps) * wy + eps * wsum / n + 2 * z * le)
        bb[j] = gv[j] * eps / n
    if not want:
        return
    fac = _tile_factors(ms, s, big, coef, td, w)
    _tile_grad(src, so, dst, do, td, ms, fac, bb, w, ds, keep, inplace)
    for j in range(td):
        if keep[j]:
            yj = yv[j]
            wy = w[yj] if hw else _cv(1.0, w)
            v = fac[j] * _exp(xy[j] - ms[j]) - bb[j] * wy - _cv(gv[j] * (1 - eps) * np.float64(wy), w)
            if ds.shape[0] > 0:
                v = v * ds[yj, j]
            dst[yj, do + j] = _cout(v, dst)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _task_scratch(n_cls: int, tile: int, cap: float, w: Any) -> Any:
    """Scratch of a strided kernel: a tile of soft-capped logits and their slopes
    (empty without a soft-cap), and the cotangents of a tile's positions."""
    shape = (n_cls, tile) if cap > 0 else (0, 0)
    return np.empty(shape, dtype=w.dtype), np.empty(shape, dtype=w.dtype), np.empty(tile)


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _task_tile(task: int, tiles: int, tile: int, width: int, g: Any, gb: Any) -> Any:
    """Task ``task`` of a strided kernel (``tiles`` tasks per sample): its sample
    ``i``, first position ``d0`` and number of positions ``td``; ``gb`` gets their
    cotangents from ``g`` (``(N, D)``, or ``(1, 1)`` broadcast)."""
    i = task // tiles
    d0 = (task % tiles) * tile
    td = min(tile, width - d0)
    for j in range(td):
        gb[j] = g[i, d0 + j] if g.size > 1 else g[0, 0]
    return i, d0, td


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def ce_index_strided(x, y, w, wsum, ignore_index, eps, z, cap, g, grad, loss, lse, tile, t0, t1, inplace) -> None:
    """:func:`ce_index_rows` for the layout ``(N, C, D)``: ``y``, ``loss``,
    ``lse`` of shape ``(N, D)``, ``g`` of shape ``(N, D)`` or ``(1, 1)``,
    ``grad`` ``(N, C, D)`` or ``(N, 0, 0)`` for the loss only; ``tile``
    positions per task; the tasks ``[t0, t1)`` (see :func:`_task_tile`)."""
    n_cls = x.shape[1]
    width = x.shape[2]
    tiles = (width + tile - 1) // tile
    ip = inplace and cap <= 0
    want = grad.shape[1] > 0  # the loss only: grad is (N, 0, 0); a scratch tile takes its place
    scratch = np.empty((0, 0) if want else (n_cls, tile), dtype=grad.dtype)
    xs, ds, gb = _task_scratch(n_cls, tile, cap, w)
    for task in range(t0, t1):
        i, d0, td = _task_tile(task, tiles, tile, width, g, gb)
        yv = y[i, d0 : d0 + td]
        lv = loss[i, d0 : d0 + td]
        sv = lse[i, d0 : d0 + td]
        dst = grad[i] if want else scratch
        do = d0 if want else d0 - d0
        if cap > 0:
            _tile_softcap(x[i], d0, td, _cv(cap, w), xs, ds)
            _index_tile(xs, d0 - d0, dst, do, td, yv, gb, w, wsum, ignore_index, eps, z, ds, lv, sv, ip, want)
        else:
            _index_tile(x[i], d0, dst, do, td, yv, gb, w, wsum, ignore_index, eps, z, ds, lv, sv, ip, want)


# --- cross-entropy, probability targets, strided layout --------------------------------------------


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _prob_tile(src, so, t2, to, dst, gt, do, td, gv, w, eps, z, ds, acc, lossv, lsev, inplace, want) -> None:
    """One tile, probability targets ``t2[:, to:to + td]``; if ``want``, the
    gradients into ``dst[:, do:do + td]``, ``gt[:, do:do + td]`` and added to
    ``acc`` (when not empty); else ``dst`` and ``gt`` are scratch. See
    :func:`ce_prob_rows`."""
    n = src.shape[0]
    sb = _u(so)
    db = _u(do)
    tb = _u(to)
    a = _cv(1 - eps, w)
    bq = _cv(eps / n, w)
    ms, big = _tile_shift(src, so, td, w)
    sq = np.zeros(td)
    sxq = np.zeros(td)
    for c in range(n):  # before pass 2 may overwrite src: Q, sum w q (x' - M) <= 0, and x' into gt
        wc = w[c]
        for j in range(_u(0), _u(td)):
            v = _cin(src[c, sb + j])
            wq = wc * (a * _cin(t2[c, tb + j]) + bq)
            sq[j] += wq
            sxq[j] += wq * (v - ms[j])
            gt[c, db + j] = v
    s, lns = _tile_sums(src, so, dst, do, td, w, ms, big, inplace)
    coef = np.empty(td)
    for j in range(td):
        le = big[j] + lns[j]
        loss = sq[j] * lns[j] - sxq[j]
        if z > 0:
            loss += z * le * le
        lossv[j] = loss
        lsev[j] = le
        coef[j] = gv[j] * (sq[j] + 2 * z * le)
    if not want:
        return
    fac = _tile_factors(ms, s, big, coef, td, w)
    gb = np.empty(td, dtype=w.dtype)
    gtf = np.empty(td, dtype=w.dtype)
    mc = np.empty(td, dtype=w.dtype)
    lc = np.empty(td, dtype=w.dtype)
    for j in range(td):
        gb[j] = gv[j]
        gtf[j] = -gv[j] * (1 - eps)
        mc[j] = big[j]
        lc[j] = lns[j]
    hd = ds.shape[0] > 0
    for c in range(n):
        wc = w[c]
        if acc.shape[0] > 0:  # -sum_j g_j q_cj (x'_cj - lse_j), while gt still holds x'
            total = 0.0
            for j in range(_u(0), _u(td)):
                q = a * _cin(t2[c, tb + j]) + bq
                total += gv[j] * q * _sub2(np.float64(gt[c, db + j]), big[j], lns[j])
            acc[c] -= total
        if hd:
            for j in range(_u(0), _u(td)):
                v = gt[c, db + j]
                gx = fac[j] * (_cin(dst[c, db + j]) if _keep(dst) else _exp(_cin(gt[c, db + j]) - ms[j])) - gb[j] * (
                    wc * (a * _cin(t2[c, tb + j]) + bq)
                )
                dst[c, db + j] = _cout(gx * ds[c, j], dst)
                gt[c, db + j] = gtf[j] * wc * _sub2(v, mc[j], lc[j])
        else:
            for j in range(_u(0), _u(td)):
                v = gt[c, db + j]
                gx = fac[j] * (_cin(dst[c, db + j]) if _keep(dst) else _exp(_cin(gt[c, db + j]) - ms[j])) - gb[j] * (
                    wc * (a * _cin(t2[c, tb + j]) + bq)
                )
                dst[c, db + j] = _cout(gx, dst)
                gt[c, db + j] = gtf[j] * wc * _sub2(v, mc[j], lc[j])


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def ce_prob_strided(x, t, w, eps, z, cap, g, grad, grad_t, acc, loss, lse, tile, t0, t1, inplace) -> None:
    """:func:`ce_prob_rows` for the layout ``(N, C, D)`` (``t``, ``grad``,
    ``grad_t`` of that shape, or ``(N, 0, 0)`` for the loss only; ``g``,
    ``loss``, ``lse``, ``tile``, ``t0``, ``t1`` as in :func:`ce_index_strided`)."""
    n_cls = x.shape[1]
    width = x.shape[2]
    tiles = (width + tile - 1) // tile
    ip = inplace and cap <= 0
    want = grad.shape[1] > 0  # the loss only: grad, grad_t are (N, 0, 0); scratch tiles take their place
    scratch = np.empty((0, 0) if want else (n_cls, tile), dtype=grad.dtype)
    scratch_t = np.empty((0, 0) if want else (n_cls, tile), dtype=grad_t.dtype)
    xs, ds, gb = _task_scratch(n_cls, tile, cap, w)
    for task in range(t0, t1):
        i, d0, td = _task_tile(task, tiles, tile, width, g, gb)
        lv = loss[i, d0 : d0 + td]
        sv = lse[i, d0 : d0 + td]
        dst = grad[i] if want else scratch
        gt = grad_t[i] if want else scratch_t
        do = d0 if want else d0 - d0
        if cap > 0:
            _tile_softcap(x[i], d0, td, _cv(cap, w), xs, ds)
            _prob_tile(xs, d0 - d0, t[i], d0, dst, gt, do, td, gb, w, eps, z, ds, acc, lv, sv, ip, want)
        else:
            _prob_tile(x[i], d0, t[i], d0, dst, gt, do, td, gb, w, eps, z, ds, acc, lv, sv, ip, want)


# --- log-sum-exp, log-softmax, softmax -------------------------------------------------------------
#
# ``w`` is an empty array of the compute dtype. Log-sum-exp follows torch.logsumexp: m + log sum exp(x - m),
# with the maximum m not subtracted where infinite (+inf, or -inf everywhere), into float64 ``out``.
# Log-softmax and softmax write ``out`` of the input's shape and storage dtype; a slice holding NaN or +inf,
# or only -inf, is NaN. Both reuse the cross-entropy's passes 1 and 2 with the same array types, and short
# rows go through transposed tiles as in :func:`ce_index_small_rows`: each row's sum of exponentials is then
# the one the cross-entropy computes, so that ``nll_loss(log_softmax(x))`` equals ``cross_entropy(x)`` to the bit.


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _lse_value(big: float, total: float, v: Any) -> float:
    """The log-sum-exp of the 1-D ``v`` from its maximum ``big`` and ``total =
    sum exp(v - big)``; computed again without a shift when ``big`` is infinite."""
    if big != np.inf and big != _NEG_INF:
        return big + math.log(total)
    s = 0.0
    for c in range(v.shape[0]):
        s += math.exp(np.float64(_cin(v[c])))
    return math.log(s)


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def lse_rows(x: Any, out: Any, w: Any, r0: int, r1: int) -> None:
    """Log-sum-exp of rows ``[r0, r1)`` of ``x`` ``(R, C)`` into ``out`` ``(R,)`` float64."""
    n = x.shape[1]
    mk, sk = _chunk_scratch(n, w)
    none = np.empty(0, dtype=np.uint16)
    nod = np.empty(0, dtype=w.dtype)  # no targets
    zero = _cv(0.0, w)
    ip = r0 < 0  # False, as a variable (a literal would compile another variant)
    for i in range(r0, r1):
        big, total, _, _ = _row_stats(x[i], none, w, 0, nod, nod, zero, zero, mk, sk, ip)
        out[i] = _lse_value(big, total, x[i])


@njit(fastmath=_FM, cache=True, error_model="numpy")
def _tile_normalise(src: Any, so: int, dst: Any, do: int, td: int, w: Any, softmax: bool) -> None:
    """Softmax (or log-softmax) of the columns ``src[:, so:so + td]`` into
    ``dst[:, do:do + td]``; ``dst`` holds the exponentials in between."""
    ms, big = _tile_shift(src, so, td, w)
    ip = so < 0  # False, as a variable
    s, lns = _tile_sums(src, so, dst, do, td, w, ms, big, ip)
    if softmax:
        fac = _tile_factors(ms, s, big, np.ones(td), td, w)
        keep = np.ones(td, dtype=np.bool_)
        _tile_grad(src, so, dst, do, td, ms, fac, np.zeros(td, dtype=w.dtype), w, w.reshape((0, 0)), keep, ip)
        return
    # (x - M) - log S: the first difference is exact near the maximum, so small
    # log-probabilities keep their digits (and log S is not lost next to a huge M).
    mc = np.empty(td, dtype=w.dtype)
    lc = np.empty(td, dtype=w.dtype)
    for j in range(td):
        mc[j] = big[j]
        lc[j] = lns[j]
    sb = _u(so)
    db = _u(do)
    for c in range(src.shape[0]):
        for j in range(_u(0), _u(td)):
            dst[c, db + j] = _cout(_sub2(_cin(src[c, sb + j]), mc[j], lc[j]), dst)


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def normalise_rows(x: Any, out: Any, w: Any, softmax: bool, r0: int, r1: int) -> None:
    """Softmax (or log-softmax) of rows ``[r0, r1)`` of ``x`` ``(R, C)`` into
    ``out`` (the input's storage dtype): the exponentials are stored, then
    scaled in place (recomputed for bfloat16)."""
    n = x.shape[1]
    if n <= _SMALL_C:
        xt = np.empty((n, _SMALL_TILE), dtype=w.dtype)
        ot = np.empty((n, _SMALL_TILE), dtype=w.dtype)
        for t0 in range(r0, r1, _SMALL_TILE):
            tb = min(_SMALL_TILE, r1 - t0)
            _transpose_in(x, t0, tb, xt)
            _tile_normalise(xt, t0 - t0, ot, t0 - t0, tb, w, softmax)
            _transpose_out(ot, t0, tb, out)
        return
    mk, sk = _chunk_scratch(n, w)
    nod = np.empty(0, dtype=w.dtype)  # no targets
    zero = _cv(0.0, w)
    ip = r0 < 0  # False, as a variable
    for i in range(r0, r1):
        src = x[i]
        dst = out[i]
        big, total, _, _ = _row_stats(src, dst, w, 0, nod, nod, zero, zero, mk, sk, ip)
        if softmax:
            _row_finish(src, dst, w, w, mk, big, total, 1.0, 0.0, ip)
            continue
        mc = _cv(big, w)
        lc = _cv(_log_sum(big, total), w)
        for c in range(_u(0), _u(n)):
            dst[c] = _cout(_sub2(_cin(src[c]), mc, lc), dst)


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def lse_strided(x: Any, out: Any, w: Any, tile: int, t0: int, t1: int) -> None:
    """Log-sum-exp over axis 1 of ``x`` ``(N, C, D)`` into ``out`` ``(N, D)``
    float64, for the tasks ``[t0, t1)`` (task ``k``: sample ``k // tiles``,
    positions from ``(k % tiles) * tile``)."""
    width = x.shape[2]
    tiles = (width + tile - 1) // tile
    none = np.empty((0, 0), dtype=np.uint16)
    for task in range(t0, t1):
        i = task // tiles
        d0 = (task % tiles) * tile
        td = min(tile, width - d0)
        src = x[i]
        ms, big = _tile_shift(src, d0, td, w)
        s, _ = _tile_sums(src, d0, none, d0, td, w, ms, big, d0 < 0)
        for j in range(td):
            out[i, d0 + j] = _lse_value(big[j], s[j], src[:, d0 + j])


@njit(fastmath=_FM, cache=True, error_model="numpy", nogil=True)
def normalise_strided(x: Any, out: Any, w: Any, softmax: bool, tile: int, t0: int, t1: int) -> None:
    """Softmax (or log-softmax) over axis 1 of ``x`` ``(N, C, D)`` into ``out``,
    for the tasks ``[t0, t1)`` (as in :func:`lse_strided`)."""
    width = x.shape[2]
    tiles = (width + tile - 1) // tile
    for task in range(t0, t1):
        i = task // tiles
        d0 = (task % tiles) * tile
        _tile_normalise(x[i], d0, out[i], d0, min(tile, width - d0), w, softmax)
