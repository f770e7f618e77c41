r"""Binary cross-entropy: the NLL of a Bernoulli distribution.

``binary_cross_entropy`` takes probabilities, ``binary_cross_entropy_with_logits``
takes logits and is the numerically safe choice (PyTorch's BCE clamps its
logarithms at -100 and its gradient denominator at 1e-12, pytorch#103316).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import check_broadcast_into, check_floating, check_reduction, check_values
from nllkit._xp import (
    Array,
    as_array,
    grad_of_reduction,
    namespace,
    reduce_elementwise,
    sum_to_shape,
    to_dtype,
    work_dtype,
)

_FUSED = "nllkit.losses._fused_elementwise"
_FUSED_BCE = Fused(_FUSED, "bce_fused")
_FUSED_BCE_LOGITS = Fused(_FUSED, "bce_logits_fused")
_LOG_FLOOR = -100.0
# PyTorch floors x(1 - x) at the float32 constant 1e-12 in every dtype.
_GRAD_FLOOR = float(np.float32(1e-12))


def _clamped_log(v: Array, xp: ModuleType) -> Array:
    """``max(log(v), -100)``, without evaluating ``log(0)``."""
    one = xp.ones_like(v)
    positive = v > 0
    return xp.where(positive, xp.maximum(xp.log(xp.where(positive, v, one)), _LOG_FLOOR), _LOG_FLOOR * one)


def _prepare(
    fn: str, input: Any, target: Any, optional: dict[str, Any]
) -> tuple[Array, Array, dict[str, Array | None], ModuleType]:
    """Convert and check the arrays shared by both BCE variants."""
    xp = namespace(input, target, *optional.values())
    input = as_array(input, xp, like=input)
    target = as_array(target, xp, like=input)
    check_floating(fn, "input", input, xp)
    check_floating(fn, "target", target, xp)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{fn}: target must have the input's shape {tuple(input.shape)}; got {tuple(target.shape)}")
    arrays: dict[str, Array | None] = {}
    for name, value in optional.items():
        if value is not None:
            value = as_array(value, xp, like=input)
            check_floating(fn, name, value, xp)
            check_broadcast_into(fn, name, tuple(value.shape), tuple(input.shape), "target")
        arrays[name] = value
    return input, target, arrays, xp


def _bce_forward(input: Array, target: Array, weight: Array | None, *, reduction: str) -> tuple[Array, Pullback]:
    xp = namespace(input)
    out_dtype = xp.result_type(input, target)
    dtype = work_dtype(out_dtype, xp)
    x, y = to_dtype(input, dtype, xp), to_dtype(target, dtype, xp)
    w = None if weight is None else to_dtype(weight, dtype, xp)
    loss = (y - 1) * _clamped_log(1 - x, xp) - y * _clamped_log(x, xp)
    if w is not None:
        loss = loss * w
    out = reduce_elementwise(loss, reduction, xp)

    def pullback(cotangent: Array) -> tuple[Array, Array, None]:
        g = grad_of_reduction(to_dtype(cotangent, dtype, xp), reduction, loss.shape, xp)
        if w is not None:
            g = g * w
        # PyTorch's rule, floored at 1e-12 and not consistent with the -100
        # clamp of the forward: 1e12 at p=0, y=1.
        grad_x = g * (x - y) / xp.maximum(x * (1 - x), xp.asarray(_GRAD_FLOOR, dtype=dtype))
        grad_y = g * (xp.log1p(-x) - xp.log(x))
        return grad_x, grad_y, None

    return to_dtype(out, out_dtype, xp), pullback


def binary_cross_entropy(input: Array, target: Array, weight: Array | None = None, reduction: str = "mean") -> Array:
    r"""Binary cross-entropy between probabilities and targets.

    Matches :func:`torch.nn.functional.binary_cross_entropy` (verified against torch 2.13).

    .. math:: \ell = -w\,[\,y \max(\log x, -100) + (1-y)\max(\log(1-x), -100)\,]

    ``'mean'`` is :math:`\sum \ell / \text{numel}`; the weight does not
    renormalise it.

    Parameters
    ----------
    input : array, any shape
        Probabilities in [0, 1]; real floating dtype.
    target : array, `input`'s shape
        Targets in [0, 1] (soft labels allowed); real floating dtype.
    weight : array, optional
        Broadcasts to `input`'s shape (without enlarging it).
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``; dtype promoted from `input`
        and `target`.

    Raises
    ------
    ValueError
        Values outside [0, 1] (NaN included; eager arrays only, naming the
        value and its position), shape mismatch, bad `reduction`.
    TypeError
        A non-floating argument.

    Notes
    -----
    Gradients, as PyTorch's: :math:`\partial/\partial x = w (x-y)/\max(x(1-x), 10^{-12})`
    and :math:`\partial/\partial y = w \log((1-x)/x)`. `weight` is not differentiated.
    Prefer :func:`binary_cross_entropy_with_logits`, whose gradient does not
    vanish for saturated probabilities.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x = np.array([0.2, 0.9, 1e-3, 0.0])
    >>> y = np.array([0.0, 1.0, 1.0, 1.0])
    >>> print(nllkit.binary_cross_entropy(x, y, reduction="none"))
    [  0.22314355   0.10536052   6.90775528 100.        ]
    """
    fn = "binary_cross_entropy"
    check_reduction(fn, reduction)
    input, target, optional, xp = _prepare(fn, input, target, {"weight": weight})
    for name, values in (("input", input), ("target", target)):
        check_values(fn, f"all elements of {name}", values, ~((values >= 0) & (values <= 1)), "between 0 and 1", xp)
    return apply(_bce_forward, (input, target, optional["weight"]), fused=_FUSED_BCE, reduction=reduction)


def _log_sigmoid_and_sigmoid(x: Array, xp: ModuleType) -> tuple[Array, Array]:
    """``log σ(x) = min(x, 0) - log1p(exp(-|x|))`` and ``σ(x)``, overflow-free."""
    e = xp.exp(-xp.abs(x))
    log_sigmoid = xp.minimum(x, xp.zeros_like(x)) - xp.log1p(e)
    sigmoid = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return log_sigmoid, sigmoid


def _bce_logits_forward(
    input: Array, target: Array, weight: Array | None, pos_weight: Array | None, *, reduction: str
) -> tuple[Array, Pullback]:
    xp = namespace(input)
    out_dtype = xp.result_type(input, target)
    dtype = work_dtype(out_dtype, xp)
    x, y = to_dtype(input, dtype, xp), to_dtype(target, dtype, xp)
    w = None if weight is None else to_dtype(weight, dtype, xp)
    pw = None if pos_weight is None else to_dtype(pos_weight, dtype, xp)
    log_sigmoid, sigmoid = _log_sigmoid_and_sigmoid(x, xp)
    loss = (1 - y) * x - (log_sigmoid if pw is None else (1 + (pw - 1) * y) * log_sigmoid)
    if w is not None:
        loss = loss * w
    out = reduce_elementwise(loss, reduction, xp)

    def pullback(cotangent: Array) -> tuple[Array, Array, None, None]:
        g = grad_of_reduction(to_dtype(cotangent, dtype, xp), reduction, loss.shape, xp)
        if w is not None:
            g = g * w
        if pw is None:
            grad_x, grad_y = g * (sigmoid - y), -g * x
        else:
            grad_x = g * ((1 + (pw - 1) * y) * sigmoid - pw * y)
            grad_y = -g * (x + (pw - 1) * log_sigmoid)
        return sum_to_shape(grad_x, input.shape, xp), sum_to_shape(grad_y, target.shape, xp), None, None

    return to_dtype(out, out_dtype, xp), pullback


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    reduction: str = "mean",
    pos_weight: Array | None = None,
) -> Array:
    r"""Binary cross-entropy on logits, computed through a stable log-sigmoid.

    Matches :func:`torch.nn.functional.binary_cross_entropy_with_logits`
    (verified against torch 2.13).

    .. math:: \ell = -w\,[\,p\,y \log\sigma(x) + (1-y)\log\sigma(-x)\,]

    with :math:`p` = `pos_weight` (1 if absent), computed as
    :math:`(1-y)x - (1 + (p-1)y)\log\sigma(x)`; ``'mean'`` is
    :math:`\sum\ell/\text{numel}`.

    Parameters
    ----------
    input : array, any shape
        Logits; real floating dtype.
    target : array, `input`'s shape
        Targets, usually in [0, 1] (not checked, as in PyTorch).
    weight : array, optional
        Per-element weight; broadcasts to `input`'s shape.
    reduction : {'mean', 'sum', 'none'}
    pos_weight : array, optional
        Weight of the positive term; broadcasts to `input`'s shape, e.g. shape
        ``(C,)`` for a ``(N, C)`` target.

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``; dtype promoted from `input`
        and `target`.

    Raises
    ------
    ValueError
        Shape mismatch, a `weight` or `pos_weight` that does not broadcast to
        the input's shape, bad `reduction`.
    TypeError
        A non-floating argument.

    Notes
    -----
    :math:`\partial/\partial x = w[(1+(p-1)y)\sigma(x) - p y]`,
    :math:`\partial/\partial y = -w[x + (p-1)\log\sigma(x)]`. `weight` and
    `pos_weight` are not differentiated, as in PyTorch.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x = np.array([-3.0, 0.5, 20.0])
    >>> y = np.array([0.0, 1.0, 1.0])
    >>> print(nllkit.binary_cross_entropy_with_logits(x, y, reduction="none"))
    [4.85873516e-02 4.74076984e-01 2.06115362e-09]
    """
    fn = "binary_cross_entropy_with_logits"
    check_reduction(fn, reduction)
    input, target, optional, _ = _prepare(fn, input, target, {"weight": weight, "pos_weight": pos_weight})
    return apply(
        _bce_logits_forward,
        (input, target, optional["weight"], optional["pos_weight"]),
        fused=_FUSED_BCE_LOGITS,
        reduction=reduction,
    )
