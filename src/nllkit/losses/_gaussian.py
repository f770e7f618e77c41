r"""``gaussian_nll_loss``: the NLL of a normal distribution with given variance."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import array_api_compat as apc

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import (
    broadcast_shape,
    check_floating,
    check_real,
    check_reduction,
    check_scalar,
    check_values,
)
from nllkit._xp import (
    Array,
    as_array,
    float_result_type,
    grad_of_reduction,
    is_floating,
    namespace,
    reduce_elementwise,
    sum_to_shape,
    to_dtype,
    work_dtype,
)

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

_FUSED = Fused("nllkit.losses._fused_elementwise", "gaussian_fused")


def _gaussian_forward(
    input: Array,
    target: Array,
    var: Array,
    *,
    full: bool,
    eps: float,
    reduction: str,
    var_shape: tuple[int, ...],
) -> tuple[Array, Pullback]:
    xp = namespace(input, target, var)
    out_dtype = float_result_type(input, target, var, xp=xp)
    dtype = work_dtype(out_dtype, xp)
    x, t = to_dtype(input, dtype, xp), to_dtype(target, dtype, xp)
    # A straight-through clamp, as PyTorch's `var.clamp_(min=eps)` under
    # no_grad: the value uses max(var, eps), the gradient flows to var as is.
    v = xp.maximum(xp.reshape(to_dtype(var, dtype, xp), var_shape), xp.asarray(eps, dtype=dtype))
    diff = x - t
    loss = 0.5 * (xp.log(v) + diff * diff / v)
    if full:
        loss = loss + _HALF_LOG_2PI
    out = reduce_elementwise(loss, reduction, xp)

    def pullback(cotangent: Array) -> tuple[Array, Array, Array]:
        g = grad_of_reduction(to_dtype(cotangent, dtype, xp), reduction, loss.shape, xp)
        grad_x = g * diff / v
        grad_v = g * 0.5 * (1 / v - diff * diff / (v * v))
        return (
            sum_to_shape(grad_x, input.shape, xp),
            sum_to_shape(-grad_x, target.shape, xp),
            xp.reshape(sum_to_shape(grad_v, var_shape, xp), var.shape),
        )

    return to_dtype(out, out_dtype, xp), pullback


def _var_shape(fn: str, input_shape: tuple[int, ...], var_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``var`` is read as, by PyTorch's rules, or a ValueError.

    ``var`` may have the input's shape; the input's shape without its last
    axis (one variance per row: read as a trailing axis of size 1, so a ``(3,)``
    var of a ``(3, 3)`` input is per row, not per column); or the input's
    number of axes with size 1 wherever it differs. PyTorch allows only one
    such axis (pytorch#176244); any number is accepted here.
    """
    if var_shape == input_shape:
        return var_shape
    if var_shape == input_shape[:-1] and input_shape:
        return var_shape + (1,)
    if len(var_shape) == len(input_shape) and all(
        v == n or v == 1 for v, n in zip(var_shape, input_shape, strict=True)
    ):
        return var_shape
    raise ValueError(
        f"{fn}: var is of incorrect size: it must have the input's shape {input_shape}, "
        f"that shape without its last axis {input_shape[:-1]}, or size 1 where it "
        f"differs; got {var_shape}"
    )


def _as_var(fn: str, var: Any, input: Array, xp: ModuleType) -> Array:
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        # PyTorch accepts a Python float (but a Python int fails there by accident).
        if var < 0:
            raise ValueError(f"{fn}: var has negative entry/entries; got {var}")
        if math.isnan(var):
            raise ValueError(f"{fn}: var must not be NaN; got nan")
        dtype = input.dtype if is_floating(input.dtype, xp) else None
        return xp.full(input.shape, float(var), dtype=dtype, device=apc.device(input))
    var = as_array(var, xp, like=input)
    check_floating(fn, "var", var, xp)
    check_values(fn, "var", var, xp.isnan(var), "free of NaN", xp)
    check_values(fn, "var", var, var < 0, "non-negative (var has negative entry/entries)", xp)
    return var


def gaussian_nll_loss(
    input: Array,
    target: Array,
    var: Array | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    r"""Gaussian negative log-likelihood with a predicted variance.

    Matches :func:`torch.nn.functional.gaussian_nll_loss` (verified against torch 2.13).

    .. math:: \ell = \tfrac12\left(\log \max(v, \epsilon)
              + \frac{(x - t)^2}{\max(v, \epsilon)}\right)
              \;[+\; \tfrac12\log 2\pi \text{ if full}]

    ``'mean'`` is :math:`\sum\ell/\text{numel}` of the broadcast loss.

    Parameters
    ----------
    input : array
        The predicted means.
    target : array
        Observations; broadcasts with `input` (as in PyTorch, silently).
    var : array or float
        Variances, non-negative. The input's shape; the input's shape without
        its last axis (one variance per row); or size 1 on any axis where it
        differs from the input's shape. A float means the same variance
        everywhere.
    full : bool
        Add the constant :math:`\frac12\log 2\pi`.
    eps : float
        `var` is clamped from below at `eps` (a clamp, not an addition).
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``. dtype promoted from the
        arguments (integer means and targets become floating).

    Raises
    ------
    ValueError
        ``var has negative entry/entries``, NaN in `var`, ``var is of
        incorrect size``, shapes that do not broadcast, bad `reduction` or `eps`
        (value checks on eager arrays only).
    TypeError
        An integer `var` array, a non-real `input` or `target`.

    Notes
    -----
    The clamp is straight-through, as PyTorch's: with :math:`v_c = \max(v,\epsilon)`,
    :math:`\partial\ell/\partial v = \frac12(1/v_c - (x-t)^2/v_c^2)` even where
    :math:`v < \epsilon`; :math:`\partial\ell/\partial x = (x-t)/v_c = -\partial\ell/\partial t`.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x = np.array([[1.0, 2.0], [0.5, -1.0]])
    >>> t = np.array([[0.0, 2.5], [0.5, 1.0]])
    >>> print(nllkit.gaussian_nll_loss(x, t, np.array([0.5, 2.0]), reduction="none"))
    [[ 0.65342641 -0.09657359]
     [ 0.34657359  1.34657359]]
    """
    fn = "gaussian_nll_loss"
    check_reduction(fn, reduction)
    eps = check_scalar(fn, "eps", eps, 0.0, math.inf)
    xp = namespace(input, target, var)
    input = as_array(input, xp, like=input)
    target = as_array(target, xp, like=input)
    check_real(fn, "input", input, xp)
    check_real(fn, "target", target, xp)
    var = _as_var(fn, var, input, xp)
    var_shape = _var_shape(fn, tuple(input.shape), tuple(var.shape))
    broadcast_shape(fn, {"input": tuple(input.shape), "target": tuple(target.shape), "var": var_shape})
    return apply(
        _gaussian_forward,
        (input, target, var),
        fused=_FUSED,
        full=bool(full),
        eps=eps,
        reduction=reduction,
        var_shape=var_shape,
    )
