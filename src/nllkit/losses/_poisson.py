r"""``poisson_nll_loss``: the NLL of a Poisson distribution."""

from __future__ import annotations

import math

import array_api_extra as xpx

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import broadcast_shape, check_real, check_reduction, check_scalar
from nllkit._xp import (
    Array,
    as_array,
    float_result_type,
    grad_of_reduction,
    namespace,
    reduce_elementwise,
    sum_to_shape,
    to_dtype,
    work_dtype,
)

_FUSED = Fused("nllkit.losses._fused_elementwise", "poisson_fused")


def _poisson_forward(
    input: Array, target: Array, *, log_input: bool, full: bool, eps: float, reduction: str
) -> tuple[Array, Pullback]:
    xp = namespace(input, target)
    out_dtype = float_result_type(input, target, xp=xp)
    dtype = work_dtype(out_dtype, xp)
    x, t = xp.broadcast_arrays(to_dtype(input, dtype, xp), to_dtype(target, dtype, xp))
    if log_input:
        rate = xp.exp(x)
        loss = rate - t * x
    else:
        log_rate = xp.log(x + eps)
        loss = x - t * log_rate
    stirling_applies = t > 1
    if full:
        # Stirling's approximation of log(t!), added only where t > 1 (PyTorch's rule).
        loss = loss + xpx.apply_where(
            stirling_applies,
            (t,),
            lambda t: t * xp.log(t) - t + 0.5 * xp.log(2 * math.pi * t),
            fill_value=0.0,
        )
    out = reduce_elementwise(loss, reduction, xp)

    def pullback(cotangent: Array) -> tuple[Array, Array]:
        g = grad_of_reduction(to_dtype(cotangent, dtype, xp), reduction, loss.shape, xp)
        if log_input:
            grad_x, grad_t = g * (rate - t), -g * x
        else:
            grad_x, grad_t = g * (1 - t / (x + eps)), -g * log_rate
        if full:
            # The derivative of the masked term is 0 where it is masked
            # (PyTorch's autograd gives NaN at t = 0).
            grad_t = grad_t + g * xpx.apply_where(stirling_applies, (t,), lambda t: xp.log(t) + 0.5 / t, fill_value=0.0)
        return sum_to_shape(grad_x, input.shape, xp), sum_to_shape(grad_t, target.shape, xp)

    return to_dtype(out, out_dtype, xp), pullback


def poisson_nll_loss(
    input: Array,
    target: Array,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Array:
    r"""Poisson negative log-likelihood.

    Matches :func:`torch.nn.functional.poisson_nll_loss` (verified against torch 2.13).

    .. math::

        \ell = \begin{cases} e^{x} - t\,x & \text{log\_input} \\
                             x - t \log(x + \epsilon) & \text{otherwise} \end{cases}
               \;+\; \mathbb{1}\{\text{full},\, t > 1\}
               \left(t \log t - t + \tfrac12 \log(2\pi t)\right)

    The last term is Stirling's approximation of :math:`\log t!`, which makes
    the loss the exact Poisson NLL up to that approximation; it is added only
    where :math:`t > 1`, fractional `t` included. ``'mean'`` is
    :math:`\sum\ell/\text{numel}` of the broadcast loss.

    Parameters
    ----------
    input : array
        The log-rate (``log_input=True``) or the rate.
    target : array
        Counts; broadcasts with `input` (as in PyTorch, silently).
    log_input : bool
    full : bool
        Add the Stirling term.
    eps : float
        Added to the rate before its logarithm when ``log_input=False``.
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'`` (then the broadcast shape).
        Integer arguments are promoted to floating, as in PyTorch.

    Raises
    ------
    ValueError
        Shapes that do not broadcast, bad `reduction`, negative or NaN `eps`.
    TypeError
        A non-real dtype.

    Notes
    -----
    Gradients: :math:`e^x - t` or :math:`1 - t/(x+\epsilon)` for `input`;
    :math:`-x` or :math:`-\log(x+\epsilon)`, plus :math:`\log t + 1/(2t)`
    where the Stirling term applies, for `target`.

    Examples
    --------
    The worked example of the PyTorch tutorials (float32):

    >>> import numpy as np, nllkit
    >>> x = np.array([[0.8, 0.9, 0.3]] * 4, dtype=np.float32)
    >>> t = np.array([[1, 3, 5], [1, 0, 6], [1, 4, 5], [1, 1, 7]], dtype=np.float32)
    >>> print(float(nllkit.poisson_nll_loss(x, t, log_input=True, full=True)))
    3.0318076610565186
    """
    fn = "poisson_nll_loss"
    check_reduction(fn, reduction)
    eps = check_scalar(fn, "eps", eps, 0.0, math.inf)
    xp = namespace(input, target)
    input = as_array(input, xp, like=input)
    target = as_array(target, xp, like=input)
    check_real(fn, "input", input, xp)
    check_real(fn, "target", target, xp)
    broadcast_shape(fn, {"input": tuple(input.shape), "target": tuple(target.shape)})
    return apply(
        _poisson_forward,
        (input, target),
        fused=_FUSED,
        log_input=bool(log_input),
        full=bool(full),
        eps=eps,
        reduction=reduction,
    )
