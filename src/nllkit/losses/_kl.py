r"""``kl_div``: the Kullback-Leibler divergence, cross-entropy minus entropy."""

from __future__ import annotations

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import broadcast_shape, check_floating, check_reduction
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

_FUSED = Fused("nllkit.losses._fused_elementwise", "kl_fused")


def _kl_forward(input: Array, target: Array, *, reduction: str, log_target: bool) -> tuple[Array, Pullback]:
    xp = namespace(input, target)
    out_dtype = xp.result_type(input, target)
    dtype = work_dtype(out_dtype, xp)
    x, t = xp.broadcast_arrays(to_dtype(input, dtype, xp), to_dtype(target, dtype, xp))
    if log_target:
        p = xp.exp(t)
        loss = p * (t - x)
    else:
        # xlogy(t, t): 0 at t = 0, NaN for t < 0, as in PyTorch.
        log_t = xp.log(xp.where(t == 0, xp.ones_like(t), t))
        loss = t * log_t - t * x
    # 'batchmean' divides by the first axis of the input (the plain sum for 0-d input).
    batch = input.shape[0] if input.ndim else 1
    out = reduce_elementwise(loss, reduction, xp, batch=batch)

    def pullback(cotangent: Array) -> tuple[Array, Array]:
        g = grad_of_reduction(to_dtype(cotangent, dtype, xp), reduction, loss.shape, xp, batch=batch)
        if log_target:
            grad_x, grad_t = -g * p, g * p * (t - x + 1)
        else:
            # log t + 1 - x is -inf at t = 0, its limit from above (PyTorch: NaN, pytorch#89558).
            grad_x, grad_t = -g * t, g * (xp.log(t) + 1 - x)
        return sum_to_shape(grad_x, input.shape, xp), sum_to_shape(grad_t, target.shape, xp)

    return to_dtype(out, out_dtype, xp), pullback


def kl_div(input: Array, target: Array, reduction: str = "mean", log_target: bool = False) -> Array:
    r"""Kullback-Leibler divergence of `target` from the log-probabilities `input`.

    Matches :func:`torch.nn.functional.kl_div` (verified against torch 2.13).

    .. math:: \ell = t(\log t - x) \quad\text{or, with log\_target,}\quad e^{t}(t - x)

    with :math:`0 \log 0 = 0`. ``'batchmean'`` divides the sum by the first
    axis of `input` and gives the true KL divergence per sample; ``'mean'``
    divides by the number of elements, as PyTorch does (PyTorch warns about
    it on every call; nllkit does not).

    Parameters
    ----------
    input : array
        Log-probabilities; real floating dtype.
    target : array
        Probabilities (log-probabilities if `log_target`); broadcasts with
        `input` (as in PyTorch, silently).
    reduction : {'mean', 'batchmean', 'sum', 'none'}
    log_target : bool

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``; dtype promoted from both.

    Raises
    ------
    ValueError
        Shapes that do not broadcast, bad `reduction`.
    TypeError
        A non-floating argument.

    Notes
    -----
    :math:`\partial/\partial x = -t` (or :math:`-e^t`);
    :math:`\partial/\partial t = \log t + 1 - x` (or :math:`e^t(t - x + 1)`).

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> logq = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]))
    >>> p = np.array([[0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])
    >>> print(round(float(nllkit.kl_div(logq, p, reduction="batchmean")), 10))
    0.5579788179
    """
    fn = "kl_div"
    check_reduction(fn, reduction, ("none", "mean", "batchmean", "sum"))
    xp = namespace(input, target)
    input = as_array(input, xp, like=input)
    target = as_array(target, xp, like=input)
    check_floating(fn, "input", input, xp)
    check_floating(fn, "target", target, xp)
    broadcast_shape(fn, {"input": tuple(input.shape), "target": tuple(target.shape)})
    return apply(_kl_forward, (input, target), fused=_FUSED, reduction=reduction, log_target=bool(log_target))
