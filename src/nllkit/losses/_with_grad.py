"""``cross_entropy_with_grad``: loss and gradient in one call, the gradient
written into a buffer of the caller's, the logits themselves included."""

from __future__ import annotations

from typing import Any

import numpy as np

from nllkit import _kernels as kernels
from nllkit._autodiff import value_and_grad
from nllkit._xp import Array
from nllkit.losses._classification import cross_entropy, plan_cross_entropy


def _check_out(fn: str, out: Any, input: Array) -> None:
    if not isinstance(out, np.ndarray) or not isinstance(input, np.ndarray):
        raise TypeError(
            f"{fn}: out must be a NumPy array, for NumPy input; got {type(out).__name__} "
            f"for {type(input).__name__} input"
        )
    if out.shape != input.shape or out.dtype != input.dtype:
        raise ValueError(
            f"{fn}: out must have the input's shape {input.shape} and dtype {input.dtype}; "
            f"got {out.shape} and {out.dtype}"
        )
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"{fn}: out must be C-contiguous and writeable")


def cross_entropy_with_grad(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    z_loss: float = 0.0,
    softcap: float | None = None,
    out: np.ndarray | None = None,
) -> tuple[Array, Array]:
    r"""Cross-entropy and its gradient with respect to the logits, in one pass.

    The same value and gradient as
    ``nllkit.value_and_grad(nllkit.cross_entropy)(input, target, ...)``
    (see :func:`cross_entropy` for the arguments), with one addition: `out`.

    Parameters
    ----------
    input, target, weight, ignore_index, label_smoothing, z_loss, softcap
        As in :func:`cross_entropy`.
    reduction : {'mean', 'sum'}
        The gradient is that of a scalar.
    out : numpy.ndarray, optional
        Where to write the gradient: C-contiguous, writeable, of the input's
        shape and dtype. It may be `input` itself; then the logits are
        overwritten by their gradient and loss plus gradient allocate nothing
        the size of the logits (the fused kernel reads each row before it
        writes it). NumPy input only.

    Returns
    -------
    loss : array
        Shape ``()``.
    grad : array
        The gradient, `out` when given.

    Raises
    ------
    ValueError
        ``reduction='none'``, a bad `out`, or any error of :func:`cross_entropy`.
    TypeError
        `out` with non-NumPy arrays, or any error of :func:`cross_entropy`.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> loss, grad = nllkit.cross_entropy_with_grad(logits, np.array([0, 1]), out=logits)
    >>> grad is logits
    True
    >>> print(round(float(loss), 6))
    0.396378
    >>> print(np.round(logits, 4))  # now the gradient, (softmax - one_hot) / 2
    [[-0.1072  0.0876  0.0196]
     [ 0.106  -0.2119  0.106 ]]
    """
    fn = "cross_entropy_with_grad"
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{fn}: reduction must be one of 'mean', 'sum'; got {reduction!r}")
    call = plan_cross_entropy(fn, input, target, weight, ignore_index, reduction, label_smoothing, z_loss, softcap)
    if out is not None:
        _check_out(fn, out, call.arrays[0])
    if kernels.takes(call.arrays):
        result = call.fused(*call.arrays, need_grad=True, grad_out=out, **call.settings)
        if result is not None:
            loss, pullback = result
            return loss, pullback(1.0)[0]
    loss, grad = value_and_grad(cross_entropy)(
        *call.arrays, ignore_index, reduction, label_smoothing, z_loss=z_loss, softcap=softcap
    )
    if out is None:
        return loss, grad
    np.copyto(out, grad)
    return loss, out
