r"""Fused NumPy forwards of the softmax-family primitives, on the Numba kernels
of :mod:`nllkit._kernels._rows`.

Each function takes exactly the arguments of the generic forward it stands in
for (``_cross_entropy_index_forward`` and so on) plus ``need_grad``, and
returns the same ``(out, pullback)``, or None to decline (a dtype other than
float32, float64 and bfloat16, a non-C-contiguous input, a gradient buffer
that partly overlaps the input), in which case the caller runs the generic
path.

With ``need_grad=True`` the cross-entropies compute loss and gradient in one
pass over the logits (one read, one write of the gradient, one ``exp`` per
element), the gradient already scaled for the reduction with a unit
cotangent; the pullback multiplies it by the cotangent (or returns it as it
is for a scalar cotangent equal to 1). With ``need_grad=False`` only the
loss is computed, in one read, and the pullback runs the gradient kernel.
A gradient buffer ``grad_out`` (the logits themselves allowed) receives the
gradient, and the pullback returns it; it is scaled in place, so such a
pullback may be called once.

The kernels compute a range of rows (or strided tasks) and release the GIL;
:func:`_run` splits the work into blocks on a pool of Python threads. The
arrays they only read are passed with one writeability each (the logits
writeable, see :func:`_logits`; the rest read-only), so that each kernel has
one compiled signature per storage dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nllkit._kernels import _rows as kernels
from nllkit._kernels._threads import get_num_threads, pool

Pullback = Callable[[Any], tuple[Any, ...]]

_TILE_BYTES = 384 * 1024  # strided layout: bytes of one tile of every array touched (stays in L2)


# --- dtypes and layouts -----------------------------------------------------------------------


def _is_bf16(dtype: np.dtype) -> bool:
    return dtype.name == "bfloat16"


def _compute_dtype(dtype: np.dtype) -> np.dtype | None:
    """float32 for float32 and bfloat16, float64 for float64; None otherwise (declined)."""
    if dtype == np.float32 or _is_bf16(dtype):
        return np.dtype(np.float32)
    if dtype == np.float64:
        return np.dtype(np.float64)
    return None


def _storage(a: np.ndarray, cd: np.dtype) -> np.ndarray:
    """``a`` as the kernels read it: itself, or the ``uint16`` bits of bfloat16."""
    return a.view(np.uint16) if _is_bf16(a.dtype) else a


def _readable(a: np.ndarray, cd: np.dtype) -> bool:
    """The kernels read ``a`` directly in compute dtype ``cd``."""
    return a.dtype == cd or (cd == np.float32 and _is_bf16(a.dtype))


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: Numba compiles one variant per writeability, so
    the small inputs the kernels only read are passed read-only (as the caller's may be)."""
    v = a.view()
    v.flags.writeable = False
    return v


class _Alias:
    """Exposes the memory of ``base`` through the array interface, as writeable."""

    def __init__(self, base: np.ndarray) -> None:
        self.base = base  # keeps the memory alive
        iface = dict(base.__array_interface__)
        iface["data"] = (iface["data"][0], False)
        self.__array_interface__ = iface


def _logits(a: np.ndarray) -> np.ndarray:
    """``a`` typed writeable for the kernels (an alias of it when it is read-only).

    The kernels never write through it (in place, the gradient buffer, checked
    writeable, is the logits), but a writeable array has the type of the
    soft-cap's scratch rows: each kernel then compiles its row code once, not
    once for the logits and once for the capped copy, and the log-softmax shares
    the cross-entropy's compiled passes (the same sums, to the bit).
    """
    return a if a.flags.writeable else np.asarray(_Alias(a))


# Below this many elements one thread does the work: waking others costs more.
_SERIAL_ELEMENTS = 1 << 15


def _blocks(units: int, elements: int) -> int:
    """How many blocks to split ``units`` rows or tasks into: a few per thread
    (to balance rows of unequal cost: ignored rows are free), 1 for small work."""
    threads = get_num_threads()
    if threads == 1 or elements < _SERIAL_ELEMENTS:
        return min(units, 1)
    return min(units, 4 * threads)


def _run(blocks: int, units: int, call: Callable[[int, int, int], None]) -> None:
    """``call(b, lo, hi)`` for each block ``b`` of ``[0, units)``, on a pool of
    Python threads (the kernels release the GIL). Threads rather than Numba's
    ``parallel=True``: compiling a parallel kernel takes seconds longer per signature."""
    if blocks <= 1:
        if units:
            call(0, 0, units)
        return
    executor = pool(get_num_threads())
    futures = [executor.submit(call, b, b * units // blocks, (b + 1) * units // blocks) for b in range(blocks)]
    for f in futures:
        f.result()


def _tile(num_classes: int, bytes_per_element: int, width: int) -> int:
    """Positions per task in the strided layout: a tile of all classes fits in L2."""
    td = _TILE_BYTES // max(1, num_classes * bytes_per_element)
    td = max(8, min(1024, td // 8 * 8))
    return max(1, min(td, width))


def _layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(N, C, D)`` of a ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` input."""
    if len(shape) == 1:
        return 1, shape[0], 1
    return shape[0], shape[1], math.prod(shape[2:])


def _as_layout(a: np.ndarray, n: int, c: int, d: int) -> np.ndarray:
    """A C-contiguous view ``(N, C)`` when ``D == 1``, else ``(N, C, D)``."""
    return a.reshape(n, c) if d == 1 else a.reshape(n, c, d)


def _grad_buffer(grad_out: np.ndarray | None, input: np.ndarray) -> tuple[np.ndarray | None, bool] | None:
    """``(buffer, in_place)`` for the gradient: ``grad_out`` checked, or None to
    allocate; the outer None declines (partial overlap, wrong layout)."""
    if grad_out is None:
        return None, False
    if (
        not isinstance(grad_out, np.ndarray)
        or grad_out.shape != input.shape
        or grad_out.dtype != input.dtype
        or not grad_out.flags.c_contiguous
        or not grad_out.flags.writeable
    ):
        return None
    same = grad_out.__array_interface__["data"][0] == input.__array_interface__["data"][0]
    if not same and grad_out.size and np.shares_memory(grad_out, input):
        return None
    return grad_out, same and grad_out.size > 0


def _is_one(cotangent: Any) -> bool:
    return np.ndim(cotangent) == 0 and float(cotangent) == 1.0


def _scalar(value: float, dtype: np.dtype) -> Any:
    """A NumPy scalar of ``dtype`` (as the generic reductions return)."""
    return np.asarray(value, dtype=np.float64).astype(dtype)[()]


def _reduce(loss: np.ndarray, reduction: str, divisor: float, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Reduce the rows' losses (float64) as the generic path does: rounded to the
    dtype it computes in (float32 for bfloat16), summed and divided in it."""
    work = np.dtype(np.float32) if _is_bf16(dtype) else dtype
    rows = loss.astype(work)
    if reduction == "none":
        return rows.reshape(shape).astype(dtype)
    total = np.sum(rows)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            total = total / work.type(divisor)
    return _scalar(float(total), dtype)


def _row_g(cotangent: Any, reduction: str, divisor: float, rows_shape: tuple[int, ...]) -> np.ndarray:
    """Cotangent of each row's loss for the kernels: ``(1,)``/``(1, 1)`` broadcast,
    or one per row for ``'none'``, float64."""
    a = np.asarray(cotangent, dtype=np.float64)
    if reduction == "none" and a.ndim:
        return np.ascontiguousarray(a.reshape(rows_shape))
    c = float(a.reshape(()))
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            c = float(np.float64(c) / np.float64(divisor))
    return np.full((1,) * len(rows_shape), c)


class _Scaled:
    """A gradient computed for a unit cotangent, rescaled by the pullback: into
    a new array when it is ours, in place (once) when it is the caller's."""

    def __init__(self, grad: np.ndarray, own: bool, reduction: str, n: int, c: int, d: int) -> None:
        self.grad = grad
        self.own = own
        self.reduction = reduction
        self.keep_layout = _keep_layout(n, d)
        self.layout = (n, c) if d == 1 else (n, c, d)
        self.used = False

    def scaled(self, cotangent: Any) -> np.ndarray:
        if _is_one(cotangent):
            return self.grad
        if self.reduction == "none":
            c = np.asarray(cotangent, dtype=np.float64).reshape(self.keep_layout)
            view = self.grad.reshape(self.layout)
        else:
            c = np.asarray(float(np.asarray(cotangent, dtype=np.float64)))
            view = self.grad
        if self.own:
            return (view * c).reshape(self.grad.shape)
        if self.used:
            raise RuntimeError("a pullback that writes into grad_out may be called once")
        self.used = True
        np.multiply(view, c, out=view, casting="unsafe")
        return self.grad


def _keep_layout(n: int, d: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-row cotangent over the class axis."""
    return (n, 1) if d == 1 else (n, 1, d)


# --- cross-entropy, class-index targets -------------------------------------------------------------


def cross_entropy_index_fused(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    *,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
    need_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[Any, Pullback] | None:
    r"""Fused ``_cross_entropy_index_forward`` (see :func:`kernels.ce_index_rows` for the math).

    The ``'mean'`` divisor :math:`\sum_n w_{y_n}` over non-ignored targets is
    computed first (O(N)), so that the fused pass writes the final gradient.
    """
    cd = _compute_dtype(input.dtype)
    if cd is None or not input.flags.c_contiguous or input.ndim == 0:
        return None
    gb = _grad_buffer(grad_out, input)
    if gb is None:
        return None
    buffer, inplace = gb
    n, c, d = _layout(input.shape)
    if c == 0:
        return None
    x = _logits(_as_layout(_storage(input, cd), n, c, d))
    rows_shape = (n,) if d == 1 else (n, d)
    y = _ro(np.ascontiguousarray(np.asarray(target).astype(np.int64, copy=False).reshape(rows_shape)))
    w = _ro(np.empty(0, cd) if weight is None else np.ascontiguousarray(weight, dtype=cd))
    wsum = float(c) if weight is None else float(np.sum(w, dtype=np.float64))
    kept = y != ignore_index
    if weight is None:
        divisor = float(np.count_nonzero(kept))
    else:
        divisor = float(np.sum(np.where(kept, w[np.where(kept, y, 0)], 0), dtype=np.float64))
    eps, z, cap = float(label_smoothing), float(z_loss), float(softcap or 0.0)
    tile = _tile(c, 2 * input.dtype.itemsize, d) if d > 1 else 0

    def run(g: np.ndarray, grad: np.ndarray | None, in_place: bool) -> tuple[np.ndarray, np.ndarray]:
        loss = np.empty(rows_shape)
        lse = np.empty(rows_shape)
        # The loss only: an empty gradient of x's dtype (the kernels run the same code on scratch,
        # so that the loss does not depend on need_grad).
        gk = np.empty((n,) + (0,) * (x.ndim - 1), x.dtype) if grad is None else _as_layout(_storage(grad, cd), n, c, d)
        g = _ro(g)
        args = (x, y, w, wsum, ignore_index, eps, z, cap, g, gk, loss, lse)
        if d == 1 and c <= kernels._SMALL_C:
            _run(_blocks(n, n * c), n, lambda b, lo, hi: kernels.ce_index_small_rows(*args, lo, hi))
        elif d == 1:
            _run(_blocks(n, n * c), n, lambda b, lo, hi: kernels.ce_index_rows(*args, lo, hi, in_place))
        else:
            tasks = n * -(-d // tile) if d else 0  # tasks of `tile` positions; none for D = 0
            _run(
                _blocks(tasks, n * c * d),
                tasks,
                lambda b, lo, hi: kernels.ce_index_strided(*args, tile, lo, hi, in_place),
            )
        return loss, lse

    out_shape = tuple(target.shape) if input.ndim > 1 else ()
    if need_grad:
        grad = buffer if buffer is not None else np.empty(input.shape, input.dtype)
        loss, _ = run(_row_g(1.0, reduction, divisor, rows_shape), grad, inplace)
        done = _Scaled(grad, buffer is None, reduction, n, c, d)

        def pullback(cotangent: Any) -> tuple[np.ndarray, None, None]:
            return done.scaled(cotangent), None, None

    else:
        loss, _ = run(_row_g(1.0, reduction, divisor, rows_shape), None, False)
        called = [False]

        def pullback(cotangent: Any) -> tuple[np.ndarray, None, None]:
            if buffer is not None and called[0]:
                raise RuntimeError("a pullback that writes into grad_out may be called once")
            called[0] = True
            grad = buffer if buffer is not None else np.empty(input.shape, input.dtype)
            run(_row_g(cotangent, reduction, divisor, rows_shape), grad, inplace)
            return grad, None, None

    return _reduce(loss, reduction, divisor, out_shape, input.dtype), pullback


# --- cross-entropy, probability targets -------------------------------------------------------------


def cross_entropy_prob_fused(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    *,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
    need_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[Any, Pullback] | None:
    r"""Fused ``_cross_entropy_prob_forward`` (see :func:`kernels.ce_prob_rows` for the math).

    Inputs whose dtype is not the compute dtype of the promoted result (say
    float32 logits with float64 targets) are converted first. With
    ``need_grad`` all three gradients come out of the fused pass, except with
    ``reduction='none'`` and a weight, where the weight gradient needs the
    cotangent: that pullback runs the kernel again (and is declined when the
    logits would be overwritten in place).
    """
    if input.ndim == 0 or target.shape != input.shape:
        return None
    arrays = [a for a in (input, target, weight) if a is not None]
    try:
        out_dtype = np.result_type(*arrays)
    except TypeError:
        return None
    cd = _compute_dtype(out_dtype)
    if cd is None or _compute_dtype(input.dtype) is None or not input.flags.c_contiguous:
        return None
    gb = _grad_buffer(grad_out, input)
    if gb is None:
        return None
    buffer, inplace = gb
    lazy = not need_grad or (reduction == "none" and weight is not None)
    if not _readable(input, cd):
        if buffer is not None:
            return None  # the gradient would be computed in another dtype
        input_k = input.astype(cd)
    else:
        input_k = input
    if inplace and lazy and need_grad:
        return None
    n, c, d = _layout(input.shape)
    if c == 0:
        return None
    x = _logits(_as_layout(_storage(input_k, cd), n, c, d))
    t_src = target if _readable(target, cd) else target.astype(cd)
    t = _ro(_as_layout(_storage(np.ascontiguousarray(t_src), cd), n, c, d))
    w = _ro(np.ones(c, cd) if weight is None else np.ascontiguousarray(weight, dtype=cd))
    rows_shape = (n,) if d == 1 else (n, d)
    rows = n * d
    eps, z, cap = float(label_smoothing), float(z_loss), float(softcap or 0.0)
    tile = _tile(c, 2 * input.dtype.itemsize + 2 * cd.itemsize, d) if d > 1 else 0
    keep_layout = _keep_layout(n, d)
    tasks = n if d == 1 else (n * -(-d // tile) if d else 0)  # rows, or tasks of `tile` positions
    nb = max(1, _blocks(tasks, n * c * d))

    def run(
        g: np.ndarray, grad: np.ndarray | None, in_place: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        loss = np.empty(rows_shape)
        lse = np.empty(rows_shape)
        if grad is None:  # the loss only: empty gradients (the kernels run the same code on scratch)
            gk = np.empty((n,) + (0,) * (x.ndim - 1), x.dtype)
            gt = np.empty((n,) + (0,) * (x.ndim - 1), cd)
            acc = np.zeros((nb, 0))
        else:
            gk = _as_layout(_storage(grad, cd), n, c, d)
            gt = np.empty(x.shape, cd)
            acc = np.zeros((nb, c if weight is not None else 0))
        args = (x, t, w, eps, z, cap, _ro(g), gk, gt)
        if d == 1:
            _run(nb, tasks, lambda b, lo, hi: kernels.ce_prob_rows(*args, acc[b], loss, lse, lo, hi, in_place))
        else:
            _run(nb, tasks, lambda b, lo, hi: kernels.ce_prob_strided(*args, acc[b], loss, lse, tile, lo, hi, in_place))
        if grad is None:
            return loss, None, None
        grad_w = acc.sum(axis=0).astype(cd) if weight is not None else None
        return loss, gt.reshape(target.shape), grad_w

    out_shape = tuple(input.shape[:1] + input.shape[2:]) if input.ndim > 1 else ()
    if not lazy:
        grad = buffer if buffer is not None else np.empty(input_k.shape, input_k.dtype)
        loss, grad_t, grad_w = run(_row_g(1.0, reduction, rows, rows_shape), grad, inplace)
        done = _Scaled(grad, buffer is None, reduction, n, c, d)

        def pullback(cotangent: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
            assert grad_t is not None
            if _is_one(cotangent):
                return done.scaled(cotangent), grad_t, grad_w
            gx = done.scaled(cotangent)
            if reduction == "none":
                cr = np.asarray(cotangent, dtype=cd).reshape(keep_layout)
                gt_ = (grad_t.reshape(x.shape) * cr).reshape(target.shape)
            else:
                gt_ = grad_t * np.asarray(cotangent, dtype=cd)
            gw_ = None if grad_w is None else grad_w * np.asarray(cotangent, dtype=cd)
            return gx, gt_, gw_

    else:
        loss, _, _ = run(_row_g(1.0, reduction, rows, rows_shape), None, False)
        called = [False]

        def pullback(cotangent: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
            if buffer is not None and called[0]:
                raise RuntimeError("a pullback that writes into grad_out may be called once")
            called[0] = True
            grad = buffer if buffer is not None else np.empty(input_k.shape, input_k.dtype)
            _, grad_t, grad_w = run(_row_g(cotangent, reduction, rows, rows_shape), grad, inplace)
            return grad, grad_t, grad_w

    if rows == 0 and reduction != "none":
        # The generic path negates a reduction of log-likelihoods: an empty sum is -0.0.
        value = _scalar(-0.0 if reduction == "sum" else math.nan, out_dtype)
        return value, pullback
    return _reduce(loss, reduction, rows, out_shape, out_dtype), pullback


# --- nll_loss -----------------------------------------------------------------------------------------


def nll_fused(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    *,
    ignore_index: int,
    reduction: str,
    need_grad: bool,
) -> tuple[Any, Pullback] | None:
    r"""``_nll_forward`` with a gather (no exponential, no kernel needed):
    :math:`\ell_n = -w_{y_n} x_{n, y_n}`; the gradient is :math:`-w_{y_n} g_n`
    at :math:`(n, y_n)`, zero elsewhere."""
    cd = _compute_dtype(input.dtype)
    if cd is None or input.ndim == 0:
        return None
    n, c, d = _layout(input.shape)
    if c == 0:
        return None
    x = input.reshape(n, c, d)
    y = np.asarray(target).astype(np.int64, copy=False).reshape(n, d)
    kept = y != ignore_index
    yk = np.where(kept, y, 0)
    w_y = np.ones((n, d)) if weight is None else np.asarray(weight, dtype=cd).astype(np.float64)[yk]
    w_y = np.where(kept, w_y, 0.0)
    picked = np.take_along_axis(x, yk[:, None, :], axis=1)[:, 0, :].astype(np.float64)
    loss = np.where(kept, -w_y * picked, 0.0)
    divisor = float(np.sum(w_y))
    out_shape = tuple(target.shape) if input.ndim > 1 else ()

    def pullback(cotangent: Any) -> tuple[np.ndarray, None, None]:
        g = _row_g(cotangent, reduction, divisor, (n, d))
        coef = np.where(kept, -w_y * g, 0.0).astype(cd)
        grad = np.zeros((n, c, d), cd)
        np.put_along_axis(grad, yk[:, None, :], coef[:, None, :], axis=1)
        return grad.reshape(input.shape), None, None

    return _reduce(loss, reduction, divisor, out_shape, input.dtype), pullback


# --- log-softmax, softmax, log-sum-exp --------------------------------------------------------------


def _normalised(input: np.ndarray, dim: int, softmax: bool) -> tuple[np.ndarray, np.dtype, tuple] | None:
    """Log-softmax or softmax along ``dim``: ``(out, compute dtype, (pre, C, post))``,
    ``out`` at least 1-d."""
    cd = _compute_dtype(input.dtype)
    if cd is None or not input.flags.c_contiguous:
        return None
    x = input.reshape(1) if input.ndim == 0 else input
    pre = math.prod(x.shape[:dim])
    c = x.shape[dim]
    post = math.prod(x.shape[dim + 1 :])
    out = np.empty(x.shape, x.dtype)
    if x.size:
        xk = _logits(_storage(x, cd))
        ok = _storage(out, cd)
        proto = _ro(np.empty(0, cd))
        if post == 1:
            xr, orow = xk.reshape(pre, c), ok.reshape(pre, c)
            _run(_blocks(pre, x.size), pre, lambda b, lo, hi: kernels.normalise_rows(xr, orow, proto, softmax, lo, hi))
        else:
            xs, os_ = xk.reshape(pre, c, post), ok.reshape(pre, c, post)
            tile = _tile(c, 2 * x.dtype.itemsize, post)
            tasks = pre * -(-post // tile)
            _run(
                _blocks(tasks, x.size),
                tasks,
                lambda b, lo, hi: kernels.normalise_strided(xs, os_, proto, softmax, tile, lo, hi),
            )
    return out, cd, (pre, c, post)


def log_softmax_fused(input: np.ndarray, *, dim: int, need_grad: bool) -> tuple[Any, Pullback] | None:
    r"""Fused ``_log_softmax_forward``: :math:`y = (x - m) - \log\sum e^{x - m}`
    in two reads of each row (the second from cache). Pullback
    :math:`\bar g - e^{y} \sum \bar g`."""
    res = _normalised(input, dim, softmax=False)
    if res is None:
        return None
    out, cd, (pre, c, post) = res

    def pullback(cotangent: Any) -> tuple[np.ndarray]:
        g = np.asarray(cotangent, dtype=cd).reshape(pre, c, post)
        y = out.reshape(pre, c, post).astype(cd, copy=False)
        return ((g - np.exp(y) * g.sum(axis=1, keepdims=True)).reshape(input.shape),)

    return out.reshape(input.shape), pullback


def softmax_fused(input: np.ndarray, *, dim: int, need_grad: bool) -> tuple[Any, Pullback] | None:
    r"""Fused ``_softmax_forward``: each ``exp`` stored and rescaled in place.
    Pullback :math:`y \odot (\bar g - \sum \bar g y)`."""
    res = _normalised(input, dim, softmax=True)
    if res is None:
        return None
    out, cd, (pre, c, post) = res

    def pullback(cotangent: Any) -> tuple[np.ndarray]:
        g = np.asarray(cotangent, dtype=cd).reshape(pre, c, post)
        y = out.reshape(pre, c, post).astype(cd, copy=False)
        return ((y * (g - (g * y).sum(axis=1, keepdims=True))).reshape(input.shape),)

    return out.reshape(input.shape), pullback


def logsumexp_fused(
    input: np.ndarray, *, dim: tuple[int, ...], keepdim: bool, need_grad: bool
) -> tuple[Any, Pullback] | None:
    r"""Fused ``_logsumexp_forward`` over a run of adjacent axes ``dim`` (others
    declined): :math:`m + \log \sum e^{x - m}`, ``m`` not subtracted where
    infinite. Pullback :math:`\bar g\, e^{x - \mathrm{lse}}`."""
    cd = _compute_dtype(input.dtype)
    if cd is None or not input.flags.c_contiguous:
        return None
    x = input.reshape(1) if input.ndim == 0 else input
    dims = tuple(sorted(dim))
    if not dims or dims != tuple(range(dims[0], dims[-1] + 1)):
        return None
    pre = math.prod(x.shape[: dims[0]])
    c = math.prod(x.shape[dims[0] : dims[-1] + 1])
    post = math.prod(x.shape[dims[-1] + 1 :])
    lse = np.full((pre, 1, post), -np.inf)
    if c and pre and post:
        xk = _logits(_storage(x, cd))
        proto = _ro(np.empty(0, cd))
        if post == 1:
            xr, lr = xk.reshape(pre, c), lse.reshape(pre)
            _run(_blocks(pre, x.size), pre, lambda b, lo, hi: kernels.lse_rows(xr, lr, proto, lo, hi))
        else:
            xs, ls = xk.reshape(pre, c, post), lse.reshape(pre, post)
            tile = _tile(c, x.dtype.itemsize, post)
            tasks = pre * -(-post // tile)
            _run(_blocks(tasks, x.size), tasks, lambda b, lo, hi: kernels.lse_strided(xs, ls, proto, tile, lo, hi))
    kept = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    if not input.ndim:
        shape: tuple[int, ...] = ()
    elif keepdim:
        shape = kept
    else:
        shape = tuple(s for i, s in enumerate(x.shape) if i not in dims)
    out = lse.astype(input.dtype).reshape(shape)

    def pullback(cotangent: Any) -> tuple[np.ndarray]:
        g = np.asarray(cotangent, dtype=cd).reshape(pre, 1, post)
        xs = x.reshape(pre, c, post).astype(cd, copy=False)
        with np.errstate(invalid="ignore"):
            grad = g * np.exp(xs - lse.astype(cd))
        return (grad.reshape(input.shape),)

    return out, pullback
