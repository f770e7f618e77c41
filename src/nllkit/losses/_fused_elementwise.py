r"""Fused NumPy forwards of the elementwise losses (Poisson, Gaussian, BCE,
BCE with logits, KL divergence), on the kernels of
:mod:`nllkit._kernels._elementwise`.

Each ``*_fused`` function takes exactly the arguments of the generic forward
of its loss (``_poisson_forward`` and so on) plus ``need_grad``, and returns
what that forward returns, ``(out, pullback)``, or ``None`` to decline (then
the generic path runs). The values are those of the generic path up to
rounding: the formulas are the same and evaluated in the same order and
dtype (float16 and bfloat16 in float32), but ``exp``/``log`` are the kernels'
own (within 1.05 ulp), products may be fused (FMA), and sums are accumulated
in float64.

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nllkit._autodiff import Pullback
from nllkit._xp import Array, float_result_type, namespace, numel, to_dtype, work_dtype

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
    """Fused ``_poisson_forward``; see the module docstring."""
    from nllkit._kernels import _elementwise as k

    return _fused(
        k.POISSON,
        bool(log_input),
        bool(full),
        input,
        target,
        [],
        out_dtype=_common_dtype(input, target) or float_result_type(input, target, xp=namespace(input, target)),
        p=eps,
        reduction=reduction,
        batch=None,
        need_grad=need_grad,
    )


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
    """Fused ``_gaussian_forward``; see the module docstring."""
    from nllkit._kernels import _elementwise as k

    return _fused(
        k.GAUSSIAN,
        bool(full),
        False,
        input,
        target,
        [(var, tuple(var_shape))],
        out_dtype=_common_dtype(input, target, var)
        or float_result_type(input, target, var, xp=namespace(input, target, var)),
        p=eps,
        reduction=reduction,
        batch=None,
        need_grad=need_grad,
        aux_differentiable=True,
    )


def bce_fused(
    input: np.ndarray, target: np.ndarray, weight: np.ndarray | None, *, reduction: str, need_grad: bool
) -> Result:
    """Fused ``_bce_forward``; see the module docstring."""
    from nllkit._kernels import _elementwise as k

    return _fused(
        k.BCE,
        False,
        False,
        input,
        target,
        [_aux(weight)],
        out_dtype=_common_dtype(input, target) or namespace(input).result_type(input, target),
        p=0.0,
        reduction=reduction,
        batch=None,
        need_grad=need_grad,
    )


def bce_logits_fused(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    pos_weight: np.ndarray | None,
    *,
    reduction: str,
    need_grad: bool,
) -> Result:
    """Fused ``_bce_logits_forward``; see the module docstring."""
    from nllkit._kernels import _elementwise as k

    return _fused(
        k.BCE_LOGITS,
        False,
        False,
        input,
        target,
        [_aux(weight), _aux(pos_weight)],
        out_dtype=_common_dtype(input, target) or namespace(input).result_type(input, target),
        p=0.0,
        reduction=reduction,
        batch=None,
        need_grad=need_grad,
    )


def kl_fused(input: np.ndarray, target: np.ndarray, *, reduction: str, log_target: bool, need_grad: bool) -> Result:
    """Fused ``_kl_forward``; see the module docstring."""
    from nllkit._kernels import _elementwise as k

    return _fused(
        k.KL,
        bool(log_target),
        False,
        input,
        target,
        [],
        out_dtype=_common_dtype(input, target) or namespace(input).result_type(input, target),
        p=0.0,
        reduction=reduction,
        # 'batchmean' divides by the first axis of the input (the plain sum for 0-d input).
        batch=input.shape[0] if input.ndim else 1,
        need_grad=need_grad,
    )


# --- the shared machinery ----------------------------------------------------------------------


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
    from nllkit._kernels import _elementwise as k

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


def _is_unit(cotangent: Any) -> bool:
    try:
        return np.ndim(cotangent) == 0 and float(cotangent) == 1.0
    except (TypeError, ValueError):
        return False


def _fused(
    kind: int,
    f1: bool,
    f2: bool,
    input: np.ndarray,
    target: np.ndarray,
    aux: Sequence[tuple[np.ndarray, tuple[int, ...]] | None],
    *,
    out_dtype: Any,
    p: float,
    reduction: str,
    batch: int | None,
    need_grad: bool,
    aux_differentiable: bool = False,
) -> Result:
    """The fused forward of one loss, or None to decline.

    `aux` holds up to two ``(array, shape it is read as)`` pairs (None where
    absent); with `aux_differentiable` the first one gets a gradient.
    """
    from nllkit._kernels import _elementwise as k
    from nllkit._kernels._threads import apply_thread_setting

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
    param = typ(p)
    aux_grad_size = n if aux_grad == k.AUX_ELEMENTWISE else rows

    def run(loss: int, grad: bool, scale: Any, cot: np.ndarray) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """One kernel pass; returns the loss sum, the loss array and the gradients."""
        apply_thread_setting()
        run_kernel = k.kernel(kind, f1, f2, grad, modes[0], modes[1], aux_grad if grad else k.AUX_NONE)
        out = np.empty(n, dtype) if loss == k.WRITE else empty
        grads = [np.empty(n, dtype), np.empty(n, dtype)] if grad else []
        ga = np.empty(aux_grad_size, dtype) if grad and aux_grad != k.AUX_NONE else empty
        total = run_kernel(
            x, t, flats[0], flats[1], cot, out, *(grads or (empty, empty)), ga,
            param, typ(scale), loss, rows, cols, strides[0], strides[1],
        )  # fmt: skip
        if ga is not empty:
            grads.append(ga)
        return total, out, grads

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
