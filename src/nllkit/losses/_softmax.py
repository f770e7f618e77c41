r"""``logsumexp``, ``softmax`` and ``log_softmax``, with their pullbacks.

All three subtract the maximum of the slice before exponentiating, so they
are finite for any finite input, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat as apc

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import check_dim, check_floating
from nllkit._xp import Array, as_array, namespace, numel, to_dtype, work_dtype

_FUSED = "nllkit.losses._fused_classification"
_FUSED_LOG_SOFTMAX = Fused(_FUSED, "log_softmax_fused")
_FUSED_SOFTMAX = Fused(_FUSED, "softmax_fused")
_FUSED_LOGSUMEXP = Fused(_FUSED, "logsumexp_fused")


def shifted_and_lse(x: Array, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    r"""Return :math:`x - \max x` and :math:`\log\sum e^{x - \max x}` along ``axis``.

    ``log_softmax = shifted - lse``; the second result keeps ``axis``. A slice
    holding ``+inf``, NaN, or only ``-inf`` gives NaN, as in PyTorch.
    """
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted, xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _prepare(fn: str, input: Any) -> Array:
    xp = namespace(input)
    input = as_array(input, xp, like=input)
    check_floating(fn, "input", input, xp)
    return input


def _at_least_1d(x: Array, xp: ModuleType) -> Array:
    return x if x.ndim else xp.reshape(x, (1,))


def _normalised_forward(
    input: Array, value: Callable[[Array], Array], grad: Callable[[Array, Array], Array]
) -> tuple[Array, Pullback]:
    """The scaffolding shared by softmax and log_softmax: compute in the
    working dtype on an at-least-1-d view, ``value(x)`` forward and
    ``grad(out, cotangent)`` backward."""
    xp = namespace(input)
    x = _at_least_1d(to_dtype(input, work_dtype(input.dtype, xp), xp), xp)
    out = x if numel(x.shape) == 0 else value(x)

    def pullback(cotangent: Array) -> tuple[Array]:
        g = _at_least_1d(to_dtype(cotangent, out.dtype, xp), xp)
        return (xp.reshape(grad(out, g), input.shape),)

    return to_dtype(xp.reshape(out, input.shape), input.dtype, xp), pullback


def _log_softmax_forward(input: Array, *, dim: int) -> tuple[Array, Pullback]:
    xp = namespace(input)

    def value(x: Array) -> Array:
        shifted, lse = shifted_and_lse(x, dim, xp)
        return shifted - lse

    def grad(y: Array, g: Array) -> Array:
        return g - xp.exp(y) * xp.sum(g, axis=dim, keepdims=True)

    return _normalised_forward(input, value, grad)


def log_softmax(input: Array, dim: int) -> Array:
    r"""Logarithm of the softmax along ``dim``.

    Matches :func:`torch.nn.functional.log_softmax` (verified against torch 2.13).

    .. math:: \operatorname{log\_softmax}(x)_i = x_i - \max_j x_j
              - \log \sum_j e^{x_j - \max_k x_k}

    Parameters
    ----------
    input : array, any shape
        Real floating dtype.
    dim : int
        The axis to normalise over, in ``[-ndim, ndim)`` (0 or -1 for a 0-d input).

    Returns
    -------
    array
        Same shape, namespace, device and dtype as `input`. A slice that holds
        ``+inf`` or NaN, or only ``-inf``, is all NaN.

    Raises
    ------
    TypeError
        `input` is not floating, or `dim` not an int.
    IndexError
        `dim` is out of range.

    Notes
    -----
    The gradient is :math:`\bar g - e^{y} \sum_j \bar g_j`. float16 and
    bfloat16 inputs are computed in float32 and rounded once.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> print(nllkit.log_softmax(np.array([1.0, 2.0, 3.0]), dim=0))
    [-2.40760596 -1.40760596 -0.40760596]
    """
    input = _prepare("log_softmax", input)
    return apply(
        _log_softmax_forward,
        (input,),
        fused=_FUSED_LOG_SOFTMAX,
        dim=check_dim("log_softmax", dim, input.ndim),
    )


def _softmax_forward(input: Array, *, dim: int) -> tuple[Array, Pullback]:
    xp = namespace(input)

    def value(x: Array) -> Array:
        e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
        return e / xp.sum(e, axis=dim, keepdims=True)

    def grad(y: Array, g: Array) -> Array:
        return y * (g - xp.sum(g * y, axis=dim, keepdims=True))

    return _normalised_forward(input, value, grad)


def softmax(input: Array, dim: int) -> Array:
    r"""Softmax along ``dim``.

    Matches :func:`torch.nn.functional.softmax` (verified against torch 2.13).

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i - \max_k x_k}}{\sum_j e^{x_j - \max_k x_k}}

    Parameters
    ----------
    input : array, any shape
        Real floating dtype.
    dim : int
        The axis to normalise over.

    Returns
    -------
    array
        Same shape, namespace, device and dtype as `input`; each slice sums to 1.

    Raises
    ------
    TypeError
        `input` is not floating, or `dim` not an int.
    IndexError
        `dim` is out of range.

    Notes
    -----
    The gradient is :math:`y \odot (\bar g - \sum_j \bar g_j y_j)`.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> print(nllkit.softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), dim=1))
    [[0.09003057 0.24472847 0.66524096]
     [0.33333333 0.33333333 0.33333333]]
    """
    input = _prepare("softmax", input)
    return apply(_softmax_forward, (input,), fused=_FUSED_SOFTMAX, dim=check_dim("softmax", dim, input.ndim))


def _logsumexp_forward(input: Array, *, dim: tuple[int, ...], keepdim: bool) -> tuple[Array, Pullback]:
    xp = namespace(input)
    x = _at_least_1d(to_dtype(input, work_dtype(input.dtype, xp), xp), xp)
    if all(x.shape[d] for d in dim):
        m = xp.max(x, axis=dim, keepdims=True)
        # An infinite maximum is not subtracted, so that lse(+inf) = +inf and
        # lse(-inf, -inf) = -inf, as in torch.logsumexp.
        m = xp.where(xp.isinf(m), xp.zeros_like(m), m)
    else:
        kept = tuple(1 if d in dim else n for d, n in enumerate(x.shape))
        m = xp.zeros(kept, dtype=x.dtype, device=apc.device(x))
    out = xp.log(xp.sum(xp.exp(x - m), axis=dim, keepdims=True)) + m

    def pullback(cotangent: Array) -> tuple[Array]:
        g = xp.reshape(to_dtype(cotangent, out.dtype, xp), out.shape)
        grad = g * xp.exp(x - out)
        return (xp.reshape(grad, input.shape),)

    shape: tuple[int, ...]
    if not input.ndim:
        shape = ()
    elif keepdim:
        shape = tuple(out.shape)
    else:
        shape = tuple(n for d, n in enumerate(x.shape) if d not in dim)
    return to_dtype(xp.reshape(out, shape), input.dtype, xp), pullback


def logsumexp(input: Array, dim: int | tuple[int, ...], keepdim: bool = False) -> Array:
    r"""Logarithm of the sum of exponentials over ``dim``, computed stably.

    Matches :func:`torch.logsumexp` (verified against torch 2.13).

    .. math:: \operatorname{lse}(x) = m + \log \sum_i e^{x_i - m}, \quad m = \max_i x_i

    (:math:`m = 0` where the maximum is infinite, so that an infinite slice
    gives :math:`\pm\infty` rather than NaN).

    Parameters
    ----------
    input : array, any shape
        Real floating dtype.
    dim : int or tuple of int
        The axes to reduce.
    keepdim : bool
        Keep the reduced axes with size 1.

    Returns
    -------
    array
        `input`'s shape without `dim` (or with size 1 there if `keepdim`);
        same namespace, device and dtype. An empty slice gives ``-inf``.

    Notes
    -----
    The gradient is the softmax, :math:`\bar g\, e^{x - \operatorname{lse}(x)}`.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> print(nllkit.logsumexp(np.array([[1000.0, 1000.0], [0.0, -np.inf]]), dim=1))
    [1000.69314718    0.        ]
    """
    fn = "logsumexp"
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    input = _prepare(fn, input)
    normalised = tuple(sorted({check_dim(fn, d, input.ndim) for d in dims}))
    if len(normalised) != len(dims):
        raise ValueError(f"{fn}: dim must not repeat an axis; got {dim}")
    return apply(
        _logsumexp_forward,
        (input,),
        fused=_FUSED_LOGSUMEXP,
        dim=normalised,
        keepdim=bool(keepdim),
    )
