r"""Fused NumPy forwards of the elementwise losses (Poisson, Gaussian, BCE,
BCE with logits, KL divergence), on the kernels of
:mod:`nllkit._kernels._elementwise`.

Each ``*_fused`` function takes exactly the arguments of the generic forward
of its loss (``_poisson_forward`` and so on) plus ``need_grad``, and returns
what that forward returns, ``(out, pullback)``, or ``None`` to decline (then
the generic path runs). The values are those of the generic path up to
rounding: the formulas are the same, evaluated in the same dtype (float16
and bfloat16 in float32) and mostly the same order, but ``exp``/``log`` are
the kernels' own (within 1.05 ulp), the gradient factor (cotangent over the
divisor) is applied last, and sums are accumulated in float64.
``tests/test_fused_elementwise.py`` holds them to 4 ulp at the scale of the
operands. The loss is the same to the bit whether or not the gradients are
computed with it, and whatever the number of threads.

Layouts: `target` must have the input's shape (a broadcast target is
declined). An auxiliary array (``var``, ``weight``, ``pos_weight``) may have
the input's shape, one value per row (the input's shape with a last axis of
1, e.g. Gaussian ``var`` of shape ``input.shape[:-1]``), one row shared by
all rows (e.g. ``pos_weight`` of shape ``(C,)`` for an ``(N, C)`` input), or
one value; other broadcasts are declined, as is a Gaussian ``var`` shared by
several rows (its gradient would be a sum over rows).

Gradients: for ``'mean'``, ``'batchmean'`` and ``'sum'`` with
``need_grad=True``, the gradients for a unit cotangent are computed in the
same pass as the loss, and the pullback returns them as they are for a
cotangent of 1 (scaled otherwise). For ``'none'`` the gradient depends on the
whole cotangent array, so the pullback always runs one fused pass reading the
operands and the cotangent; precomputing elementwise gradients in the forward
would only add a write and a read of each of them (and cannot give the
per-row sum that a per-row ``var`` needs).

Threads: a pass is cut into the kernels' tasks (about 32k elements each);
contiguous ranges of tasks run on ``nllkit.get_num_threads()`` Python
threads (the kernels release the GIL), never more threads than tasks, so a
small input runs on the calling thread alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nllkit._autodiff import Pullback
from nllkit._kernels._threads import get_num_threads, pool
from nllkit._xp import Array, float_result_type, namespace, numel, to_dtype, work_dtype
from nllkit.losses._gaussian import _HALF_LOG_2PI

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

Result = tuple[Array, Pullback] | None


def poisson_fused(
    input: np.ndarray,
    target: np.ndarray,
    *,
    log_input: bool,
    full: bool,
    eps: float,
    reduction: str,
    need_grad: bool,
) -> Result:
    r"""Fused ``_poisson_forward``: :math:`e^x - t x` or :math:`x - t \log(x + \epsilon)`,
    plus Stirling's :math:`t \log t - t + \tfrac12 \log(2\pi t)` where ``full`` and :math:`t > 1`.

    Parameters
    ----------
    input, target, log_input, full, eps, reduction
        As for ``_poisson_forward``; a `target` that broadcasts is declined.
    need_grad : bool
        Compute the gradients in the same pass (see the module docstring).

    Returns
    -------
    tuple or None
        ``(out, pullback)``, the pullback giving ``(grad_input, grad_target)``.
    """
    out_dtype = _common_dtype(input, target) or float_result_type(input, target, xp=namespace(input, target))
    return _fused(_kernels().POISSON, (log_input, full), (eps, 0.0), input, target, [], out_dtype, reduction, need_grad)


def gaussian_fused(
    input: np.ndarray,
    target: np.ndarray,
    var: np.ndarray,
    *,
    full: bool,
    eps: float,
    reduction: str,
    var_shape: tuple[int, ...],
    need_grad: bool,
) -> Result:
    r"""Fused ``_gaussian_forward``: :math:`\tfrac12(\log v + (x - t)^2 / v)` with
    :math:`v = \max(\mathrm{var}, \epsilon)` (a straight-through clamp), plus
    :math:`\tfrac12 \log 2\pi` if ``full``.

    `var` is read as `var_shape`: the input's shape, or one variance per row
    (``input.shape[:-1] + (1,)``); its other layouts are declined. The other
    arguments are ``_gaussian_forward``'s, plus `need_grad`; the pullback gives
    ``(grad_input, grad_target, grad_var)``.
    """
    out_dtype = _common_dtype(input, target, var) or float_result_type(
        input, target, var, xp=namespace(input, target, var)
    )
    # The constant of `full` is the loss's second scalar (0 adds nothing).
    scalars = (eps, _HALF_LOG_2PI if full else 0.0)
    aux = [(var, tuple(var_shape))]
    return _fused(_kernels().GAUSSIAN, (0, 0), scalars, input, target, aux, out_dtype, reduction, need_grad, True)


def bce_fused(
    input: np.ndarray, target: np.ndarray, weight: np.ndarray | None, *, reduction: str, need_grad: bool
) -> Result:
    r"""Fused ``_bce_forward``: :math:`w[(y - 1)\max(\log(1 - x), -100) - y \max(\log x, -100)]`,
    with PyTorch's gradients :math:`w (x - y) / \max(x(1 - x), 10^{-12})` and
    :math:`w(\log(1 - x) - \log x)`.

    `weight` may have the input's shape, be one row shared by all rows, one
    value per row, or one value; other broadcasts are declined. The pullback
    gives ``(grad_input, grad_target, None)``.
    """
    out_dtype = _common_dtype(input, target) or namespace(input).result_type(input, target)
    return _fused(_kernels().BCE, (0, 0), (0.0, 0.0), input, target, [_aux(weight)], out_dtype, reduction, need_grad)


def bce_logits_fused(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    pos_weight: np.ndarray | None,
    *,
    reduction: str,
    need_grad: bool,
) -> Result:
    r"""Fused ``_bce_logits_forward``: :math:`w[(1 - y) x - (1 + (p - 1) y) \log\sigma(x)]`
    with :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`.

    `weight` and `pos_weight` each take the layouts of :func:`bce_fused`'s
    `weight` (`pos_weight` of shape ``(C,)`` is one row shared by all rows).
    The pullback gives ``(grad_input, grad_target, None, None)``.
    """
    out_dtype = _common_dtype(input, target) or namespace(input).result_type(input, target)
    # The second scalar says whether pos_weight is given: the formula differs (see
    # nllkit._kernels._elementwise._bce_logits).
    scalars = (0.0, float(pos_weight is not None))
    aux = [_aux(weight), _aux(pos_weight)]
    return _fused(_kernels().BCE_LOGITS, (0, 0), scalars, input, target, aux, out_dtype, reduction, need_grad)


def kl_fused(input: np.ndarray, target: np.ndarray, *, reduction: str, log_target: bool, need_grad: bool) -> Result:
    r"""Fused ``_kl_forward``: :math:`t(\log t - x)` (:math:`0 \log 0 = 0`) or, with
    ``log_target``, :math:`e^t (t - x)`. ``'batchmean'`` divides by the
    input's first axis (the plain sum for a 0-d input). The pullback gives
    ``(grad_input, grad_target)``.
    """
    out_dtype = _common_dtype(input, target) or namespace(input).result_type(input, target)
    batch = input.shape[0] if input.ndim else 1
    return _fused(
        _kernels().KL, (log_target, 0), (0.0, 0.0), input, target, [], out_dtype, reduction, need_grad, batch=batch
    )


# --- the shared machinery ----------------------------------------------------------------------


def _kernels() -> Any:
    """The kernel module, imported on first use: it compiles at import."""
    from nllkit._kernels import _elementwise

    return _elementwise


def _common_dtype(*arrays: np.ndarray) -> np.dtype | None:
    """The arrays' dtype when they all have the same float32 or float64 one,
    the promotion result then: a fast path past the array-API promotion."""
    dtype = arrays[0].dtype
    return dtype if dtype in _KERNEL_DTYPES and all(a.dtype == dtype for a in arrays[1:]) else None


def _aux(a: np.ndarray | None) -> tuple[np.ndarray, tuple[int, ...]] | None:
    return None if a is None else (a, a.shape)


def _layout(aux_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, int] | None:
    """How the kernel reads an auxiliary array that broadcasts to `shape`:
    ``(VECTOR or PER_ROW, row stride)``, or None for a layout it does not take."""
    k = _kernels()
    if len(aux_shape) > len(shape):
        return None
    if not shape:
        return k.VECTOR, 0
    padded = (1,) * (len(shape) - len(aux_shape)) + aux_shape
    lead, last, cols = padded[:-1], padded[-1], shape[-1]
    every_row = lead == shape[:-1]
    one_row = all(d == 1 for d in lead)
    if last == cols and every_row:
        return k.VECTOR, cols
    if last == cols and one_row:
        return k.VECTOR, 0
    if last == 1 and every_row:
        return k.PER_ROW, 1
    if last == 1 and one_row:
        return k.PER_ROW, 0
    return None


def _flat(a: Any, dtype: np.dtype) -> np.ndarray:
    """`a` as a flat, C-contiguous, read-only array of `dtype` (a copy only if
    needed). Read-only so that every call has the same Numba signature,
    whether or not the caller's arrays are writeable."""
    flat = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
    if flat.flags.writeable:
        flat = flat.view()
        flat.flags.writeable = False
    return flat


def _launch(run_kernel: Any, tasks: int, *args: Any) -> None:
    """``run_kernel(task0, task1, *args)`` over all `tasks`, in contiguous
    ranges on nllkit's number of threads (no more threads than tasks; the
    calling thread takes the first range). The kernels release the GIL, and
    each task writes only its own outputs, so the result does not depend on
    the number of threads."""
    size = get_num_threads()
    threads = min(size, tasks)
    bounds = [tasks * i // threads for i in range(threads + 1)]
    others = [pool(size).submit(run_kernel, bounds[i], bounds[i + 1], *args) for i in range(1, threads)]
    run_kernel(bounds[0], bounds[1], *args)
    for future in others:
        future.result()


def _is_unit(cotangent: Any) -> bool:
    try:
        return np.ndim(cotangent) == 0 and float(cotangent) == 1.0
    except (TypeError, ValueError):
        return False


def _fused(
    kind: int,
    flags: tuple[bool | int, bool | int],
    scalars: tuple[float, float],
    input: np.ndarray,
    target: np.ndarray,
    aux: Sequence[tuple[np.ndarray, tuple[int, ...]] | None],
    out_dtype: Any,
    reduction: str,
    need_grad: bool,
    aux_differentiable: bool = False,
    *,
    batch: int | None = None,
) -> Result:
    """The fused forward of loss `kind`, or None to decline.

    Parameters
    ----------
    kind : int
        The loss (``POISSON`` ... ``KL`` of :mod:`nllkit._kernels._elementwise`).
    flags, scalars
        The loss's flags ``f1, f2`` and scalars ``p, q`` (see
        :func:`nllkit._kernels._elementwise.kernel`).
    input, target : numpy.ndarray
        Of the same shape (else declined).
    aux : sequence
        Up to two ``(array, shape it is read as)`` pairs, None where absent.
    out_dtype
        The generic forward's result dtype.
    reduction : str
    need_grad : bool
        Compute the gradients in the forward pass.
    aux_differentiable : bool
        The first auxiliary array gets a gradient (Gaussian ``var``).
    batch : int, optional
        The divisor of ``'batchmean'``.

    Returns
    -------
    tuple or None
        ``(out, pullback)``, as the generic forward.
    """
    k = _kernels()
    xp = namespace(input)
    dtype = np.dtype(work_dtype(out_dtype, xp))
    shape = tuple(input.shape)
    if dtype not in _KERNEL_DTYPES or tuple(target.shape) != shape:
        return None
    n = numel(shape)
    cols = shape[-1] if shape else 1
    rows = n // cols if cols else 0

    empty = np.empty(0, dtype)
    ro_empty = _flat(empty, dtype)
    modes = [k.ABSENT, k.ABSENT]
    strides = [0, 0]
    flats = [ro_empty, ro_empty]
    for i, entry in enumerate(aux):
        if entry is None:
            continue
        layout = _layout(entry[1], shape)
        if layout is None:
            return None
        modes[i], strides[i] = layout
        flats[i] = _flat(entry[0], dtype)
    aux_grad = k.AUX_NONE
    if aux_differentiable:
        # Elementwise, or one sum per row; a value shared by several rows would need a
        # sum across tasks.
        if modes[0] == k.VECTOR and (strides[0] == cols or rows <= 1):
            aux_grad = k.AUX_ELEMENTWISE
        elif modes[0] == k.PER_ROW and (strides[0] == 1 or rows <= 1):
            aux_grad = k.AUX_ROW_SUM
        else:
            return None
    aux_arg = aux[0][0] if aux_differentiable and aux[0] is not None else None

    divisor = {"mean": n, "batchmean": batch, "sum": 1}.get(reduction)
    typ = dtype.type
    if n == 0:
        return _empty(xp, input, target, aux_arg, len(aux), shape, dtype, out_dtype, reduction, divisor)

    x, t = _flat(input, dtype), _flat(target, dtype)
    aux_grad_size = n if aux_grad == k.AUX_ELEMENTWISE else rows
    if all(m != k.PER_ROW or s == 0 for m, s in zip(modes, strides, strict=True)) and all(
        m != k.VECTOR or s == cols for m, s in zip(modes, strides, strict=True)
    ):
        # Nothing depends on the row: read the data as one long row, so that short
        # rows do not cut the inner loops short.
        rows, cols = 1, n
    split, per_row, _, tasks = k.partition(rows, cols)
    run_kernel = k.kernel(kind)
    p, q = typ(scalars[0]), typ(scalars[1])
    f1, f2 = (int(bool(f)) for f in flags)

    def run(loss: int, grad: bool, scale: Any, cot: np.ndarray) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """One kernel pass; returns the loss sum, the loss array and the gradients."""
        out = np.empty(n, dtype) if loss == k.WRITE else empty
        grads = [np.empty(n, dtype), np.empty(n, dtype)] if grad else [empty, empty]
        row_sums = grad and aux_grad == k.AUX_ROW_SUM
        ga = np.empty(aux_grad_size, dtype) if grad and aux_grad != k.AUX_NONE else empty
        parts = np.zeros(tasks if loss == k.REDUCE else 0)
        row_parts = np.zeros(tasks if row_sums and split else 0)
        options = (rows, cols, f1, f2, int(grad), loss, modes[0], strides[0], modes[1], strides[1])
        _launch(
            run_kernel, tasks, x, t, flats[0], flats[1], cot, out, *grads, ga, parts, row_parts,
            p, q, typ(scale), (*options, aux_grad if grad else k.AUX_NONE),
        )  # fmt: skip
        if row_parts.size:
            # Rows cut into pieces: each row's sum is that of its pieces.
            ga[:] = [math.fsum(row_parts[i * per_row : (i + 1) * per_row]) for i in range(rows)]
        if ga is not empty:
            grads.append(ga)
        # fsum: exactly rounded, whatever the number of tasks.
        return math.fsum(parts), out, grads

    def shaped(grads: list[np.ndarray]) -> tuple[Any, ...]:
        """The gradients in their arguments' shapes, None for the undifferentiated ones."""
        out: list[Any] = [grads[0].reshape(input.shape), grads[1].reshape(target.shape)]
        if aux_arg is not None:
            out.append(grads[2].reshape(aux_arg.shape))
        return (*out, *([None] * (len(aux) - (aux_arg is not None))))

    def unit_scale(cotangent: Any) -> Any:
        # As the generic path: the cotangent in the work dtype, divided by the divisor.
        c = np.asarray(cotangent, dtype=dtype)
        return c / divisor if divisor else c

    if reduction == "none":
        _, out, _ = run(k.WRITE, False, 0.0, ro_empty)
        result = out.reshape(shape)
        value = result[()] if not shape else result

        def pullback(cotangent: Array) -> tuple[Any, ...]:
            cot = _flat(np.broadcast_to(np.asarray(cotangent, dtype=dtype), shape), dtype)
            return shaped(run(k.SKIP, True, 1.0, cot)[2])

        return to_dtype(value, out_dtype, xp), pullback

    if need_grad:
        total, _, grads = run(k.REDUCE, True, unit_scale(1.0), ro_empty)
        unit = shaped(grads)

        def pullback(cotangent: Array) -> tuple[Any, ...]:
            if _is_unit(cotangent):
                return unit
            c = np.asarray(cotangent, dtype=dtype)
            return tuple(None if g is None else g * c for g in unit)

    else:
        total, _, _ = run(k.REDUCE, False, 0.0, ro_empty)

        def pullback(cotangent: Array) -> tuple[Any, ...]:
            return shaped(run(k.SKIP, True, unit_scale(cotangent), ro_empty)[2])

    value = typ(total / divisor) if divisor else typ(math.nan)
    return to_dtype(value, out_dtype, xp), pullback


def _empty(
    xp: Any,
    input: np.ndarray,
    target: np.ndarray,
    aux_arg: np.ndarray | None,
    n_aux: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    out_dtype: Any,
    reduction: str,
    divisor: int | None,
) -> tuple[Array, Pullback]:
    """An empty input: 'none' is empty, 'sum' is 0, a mean is NaN (0 / 0); the
    gradients are empty, or zero for a per-row `var` that is not."""
    if reduction == "none":
        value: Any = np.empty(shape, dtype)
    else:
        value = dtype.type(0.0 if divisor else math.nan)

    def pullback(cotangent: Array) -> tuple[Any, ...]:
        grads: list[Any] = [np.zeros(input.shape, dtype), np.zeros(target.shape, dtype)]
        if aux_arg is not None:
            grads.append(np.zeros(aux_arg.shape, dtype))
        return (*grads, *([None] * (n_aux - (aux_arg is not None))))

    return to_dtype(value, out_dtype, xp), pullback
