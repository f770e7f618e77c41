r"""``linear_cross_entropy``: cross-entropy of a linear layer's output without
holding the ``N x V`` logits.

The tokens are processed in chunks of rows. Each chunk's logits go into one
reused buffer, the fused cross-entropy kernel overwrites them with their
gradient :math:`G`, and :math:`G` is contracted with the weight and the
hidden states at once, so that the peak extra memory is one chunk, not the
logits. The loop (:func:`chunked_loss_and_grads`) is shared with
``nllkit.torch.linear_cross_entropy``; only the array operations differ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nllkit._autodiff import Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import check_floating, check_int, check_reduction, check_scalar, check_values
from nllkit._xp import Array, dtype_name, index_dtype, is_integer, namespace
from nllkit.losses._with_grad import cross_entropy_with_grad

#: Bytes the reused chunk of logits may take. 128 MiB is a few percent of the
#: naive logits at LLM vocabularies (4096 x 128256 float32 is 2 GiB) and still
#: hundreds of rows, enough for the matrix products to run at full speed.
CHUNK_BYTES = 128 * 1024 * 1024

_FUSED = Fused("nllkit.losses._linear", "linear_cross_entropy_fused")


def chunk_rows(tokens: int, vocab: int, itemsize: int, chunk_size: int | None = None) -> int:
    """Rows per chunk: `chunk_size` if given, else as many as fit in
    :data:`CHUNK_BYTES` (``CHUNK_BYTES // (vocab * itemsize)``), between 1 and `tokens`."""
    if chunk_size is None:
        chunk_size = CHUNK_BYTES // max(1, vocab * itemsize)
    return max(1, min(tokens, chunk_size))


@dataclass(frozen=True)
class Grads:
    """What one chunked pass produced: the summed loss and the unscaled gradients
    of the summed loss (None where not wanted), with the ``'mean'`` divisor."""

    total: float
    divisor: float
    grad_hidden: Any
    grad_weight: Any
    grad_bias: Any

    def loss(self, reduction: str) -> float:
        if reduction == "sum":
            return self.total
        return self.total / self.divisor if self.divisor else math.nan

    def scale(self, reduction: str) -> float:
        """The factor from the gradients of the sum to those of the loss; 0
        for a ``'mean'`` over no target, as in :func:`cross_entropy`."""
        if reduction == "sum":
            return 1.0
        return 1.0 / self.divisor if self.divisor else 0.0


class Ops(Protocol):
    """The array operations of the chunked loop, for one array library."""

    def empty(self, shape: tuple[int, ...], like: Any) -> Any: ...
    def zeros(self, shape: tuple[int, ...], like: Any) -> Any: ...
    def matmul(self, a: Any, b: Any, out: Any) -> None: ...
    def add_at_b(self, c: Any, a: Any, b: Any) -> None:
        """``c += a.T @ b`` in place."""
        ...

    def add_col_sum(self, c: Any, g: Any) -> None: ...
    def add_row(self, x: Any, b: Any) -> None: ...
    def cross_entropy(self, logits: Any, target: Any, settings: dict[str, Any]) -> tuple[float, Any]:
        """The summed loss of a chunk and its gradient, written over `logits` where possible."""
        ...


def chunked_loss_and_grads(
    ops: Ops,
    hidden: Any,
    weight: Any,
    target: Any,
    bias: Any,
    divisor: float,
    *,
    wanted: tuple[bool, bool, bool],
    chunk: int,
    settings: dict[str, Any],
) -> Grads:
    """Run the chunked forward and, for the arrays flagged in `wanted`
    (hidden, weight, bias), the gradients of the summed loss."""
    n = hidden.shape[0]
    vocab = weight.shape[0]
    want_h, want_w, want_b = wanted
    # Each chunk's sum; the 'mean' divisor of the whole batch is applied once, at the end.
    ce_settings = {**settings, "reduction": "sum"}
    buffer = ops.empty((min(chunk, n), vocab), hidden)
    grad_h = ops.empty(tuple(hidden.shape), hidden) if want_h else None
    grad_w = ops.zeros(tuple(weight.shape), weight) if want_w else None
    grad_b = ops.zeros(tuple(bias.shape), bias) if want_b else None
    total = 0.0
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        h = hidden[lo:hi]
        logits = buffer[: hi - lo]
        ops.matmul(h, weight.T, logits)
        if bias is not None:
            ops.add_row(logits, bias)
        loss, g = ops.cross_entropy(logits, target[lo:hi], ce_settings)
        total += loss
        if grad_h is not None:
            ops.matmul(g, weight, grad_h[lo:hi])
        if grad_w is not None:
            ops.add_at_b(grad_w, g, h)
        if grad_b is not None:
            ops.add_col_sum(grad_b, g)
    return Grads(total, divisor, grad_h, grad_w, grad_b)


def check_linear(
    fn: str,
    hidden: Array,
    weight: Array,
    target: Array,
    bias: Array | None,
    ignore_index: Any,
    reduction: Any,
    label_smoothing: Any,
    z_loss: Any,
    softcap: Any,
    chunk_size: Any,
) -> tuple[dict[str, Any], int | None]:
    """Check a linear cross-entropy call; return the cross-entropy settings and the chunk size."""
    xp = namespace(hidden, weight, target, bias)
    check_reduction(fn, reduction, ("mean", "sum"))
    check_floating(fn, "hidden", hidden, xp)
    check_floating(fn, "weight", weight, xp)
    if hidden.ndim != 2 or weight.ndim != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{fn}: hidden must have shape (N, D) and weight (V, D); got {tuple(hidden.shape)} "
            f"and {tuple(weight.shape)}"
        )
    if weight.dtype != hidden.dtype or (bias is not None and bias.dtype != hidden.dtype):
        raise TypeError(f"{fn}: hidden, weight and bias must share one dtype")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{fn}: bias must have shape ({weight.shape[0]},); got {tuple(bias.shape)}")
    if not is_integer(target.dtype, xp):
        raise TypeError(f"{fn}: target must have an integer dtype (class indices); got {dtype_name(target.dtype)}")
    if tuple(target.shape) != (hidden.shape[0],):
        raise ValueError(f"{fn}: target must have shape ({hidden.shape[0]},); got {tuple(target.shape)}")
    ignore_index = check_int(fn, "ignore_index", ignore_index)
    t = xp.astype(target, index_dtype(xp))
    vocab = weight.shape[0]
    bad = (t != ignore_index) & ((t < 0) | (t >= vocab))
    check_values(fn, "target", t, bad, f"a class index in [0, {vocab}) or ignore_index={ignore_index}", xp, IndexError)
    if chunk_size is not None and check_int(fn, "chunk_size", chunk_size) < 1:
        raise ValueError(f"{fn}: chunk_size must be a positive integer or None; got {chunk_size}")
    if softcap is not None and check_scalar(fn, "softcap", softcap, 0.0, math.inf) == 0:
        raise ValueError(f"{fn}: softcap must be positive or None; got {softcap}")
    settings = {
        "ignore_index": ignore_index,
        "label_smoothing": check_scalar(fn, "label_smoothing", label_smoothing, 0.0, 1.0),
        "z_loss": check_scalar(fn, "z_loss", z_loss, 0.0, math.inf),
        "softcap": None if softcap is None else float(softcap),
    }
    return settings, chunk_size


# --- NumPy ----------------------------------------------------------------------------------


@functools.cache
def _gemm(dtype: np.dtype) -> Callable[..., Any]:
    from scipy.linalg import blas

    return blas.get_blas_funcs("gemm", dtype=dtype)


class NumpyOps:
    """NumPy's BLAS; ``c += a.T @ b`` through SciPy's ``gemm`` with ``beta=1``,
    because ``np.matmul`` can only overwrite and a temporary would be as large
    as the weight."""

    def empty(self, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        return np.empty(shape, like.dtype)

    def zeros(self, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        return np.zeros(shape, like.dtype)

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        np.matmul(a, b, out=out)

    def add_at_b(self, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        # In Fortran order c.T is (D, V) and a, b are (V, n), (D, n) transposed:
        # c.T += b.T @ a, with no copy of any operand.
        _gemm(c.dtype)(1.0, b.T, a.T, beta=1.0, c=c.T, trans_b=1, overwrite_c=1)

    def add_col_sum(self, c: np.ndarray, g: np.ndarray) -> None:
        c += g.sum(axis=0)

    def add_row(self, x: np.ndarray, b: np.ndarray) -> None:
        x += b

    def cross_entropy(self, logits: np.ndarray, target: np.ndarray, settings: dict[str, Any]) -> tuple[float, Any]:
        loss, g = cross_entropy_with_grad(logits, target, **settings, out=logits)
        return float(loss), g


def count_kept(target: Any, ignore_index: int) -> float:
    """The ``'mean'`` divisor: the targets of the whole batch that are not ignored."""
    xp = namespace(target)
    return float(xp.count_nonzero(target != ignore_index))


def linear_cross_entropy_fused(
    hidden: np.ndarray,
    weight: np.ndarray,
    target: np.ndarray,
    bias: np.ndarray | None,
    *,
    need_grad: bool,
    reduction: str,
    chunk_size: int | None,
    **settings: Any,
) -> tuple[Any, Pullback] | None:
    """The NumPy primitive (float32 and float64; None declines other dtypes)."""
    if hidden.dtype not in (np.float32, np.float64):
        return None
    hidden, weight = np.ascontiguousarray(hidden), np.ascontiguousarray(weight)
    chunk = chunk_rows(hidden.shape[0], weight.shape[0], hidden.dtype.itemsize, chunk_size)
    wanted = (need_grad, need_grad, need_grad and bias is not None)
    grads = chunked_loss_and_grads(
        NumpyOps(),
        hidden,
        weight,
        target,
        bias,
        count_kept(target, settings["ignore_index"]),
        wanted=wanted,
        chunk=chunk,
        settings=settings,
    )
    if not need_grad:
        # Under a tape the gradients were computed; elsewhere no pullback is called.
        def no_pullback(cotangent: Any) -> tuple[None, None, None, None]:
            raise RuntimeError("linear_cross_entropy: the gradient was not computed")

        return np.asarray(grads.loss(reduction), hidden.dtype), no_pullback
    scale = grads.scale(reduction)

    def pullback(cotangent: Any) -> tuple[Any, Any, None, Any]:
        c = float(cotangent) * scale
        gb = None if grads.grad_bias is None else grads.grad_bias * c
        return grads.grad_hidden * c, grads.grad_weight * c, None, gb

    return np.asarray(grads.loss(reduction), hidden.dtype), pullback


def _forward(hidden: Any, weight: Any, target: Any, bias: Any, **settings: Any) -> tuple[Array, Pullback]:
    """The primitive's forward where the fused route is not taken (kernels
    disabled): the same loop, the chunk's gradient then from the generic path."""
    result = linear_cross_entropy_fused(hidden, weight, target, bias, need_grad=True, **settings)
    assert result is not None  # the dtype was checked by the caller
    return result


def linear_cross_entropy(
    hidden: Array,
    weight: Array,
    target: Array,
    bias: Array | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
) -> Array:
    r"""Cross-entropy of a linear layer's logits, never holding all of them.

    Computes ``cross_entropy(hidden @ weight.T + bias, target, ...)`` (see
    :func:`cross_entropy`) and, under :func:`value_and_grad` or :func:`vjp`,
    its gradients with respect to `hidden`, `weight` and `bias`:

    .. math::

        z_n = W h_n + b, \qquad
        \frac{\partial L}{\partial h_n} = W^\top g_n, \qquad
        \frac{\partial L}{\partial W} = \sum_n g_n h_n^\top, \qquad
        \frac{\partial L}{\partial b} = \sum_n g_n,

    where :math:`g_n` is the gradient of the loss with respect to the logits
    :math:`z_n`. The rows are processed in chunks of `chunk_size` tokens: the
    chunk's logits are written into one reused ``(chunk_size, V)`` buffer, the
    fused kernel overwrites them with :math:`g` in place, and :math:`g` is
    contracted at once, so the extra memory is one chunk plus the gradients.
    The ``'mean'`` divisor (the non-ignored targets of the whole batch) is
    counted before the first chunk.

    Parameters
    ----------
    hidden : numpy.ndarray, shape (N, D)
        float32 or float64.
    weight : numpy.ndarray, shape (V, D)
        ``torch.nn.Linear``'s layout; `hidden`'s dtype.
    target : numpy.ndarray, shape (N,)
        Class indices in ``[0, V)`` or `ignore_index`.
    bias : numpy.ndarray, shape (V,), optional
    ignore_index, label_smoothing, z_loss, softcap
        As in :func:`cross_entropy`.
    reduction : {'mean', 'sum'}
    chunk_size : int, optional
        Tokens per chunk. By default as many as fit in 128 MiB of logits,
        ``128 MiB // (V * itemsize)`` (261 rows at V = 128256 in float32),
        at least 1 and at most N: the buffer then stays a fixed size whatever
        N, while each chunk is still large enough for full-speed matrix products.

    Returns
    -------
    numpy.ndarray
        Shape ``()``, `hidden`'s dtype. NaN for ``'mean'`` when every target is
        ignored (the gradients are then 0).

    Raises
    ------
    ValueError
        Bad shapes, `reduction` (``'none'`` is not offered: it would need the
        per-row gradients), `chunk_size` or scalar options.
    TypeError
        Arrays other than NumPy float32/float64 (``nllkit.torch.linear_cross_entropy``
        takes PyTorch tensors), mixed dtypes, non-integer `target`.
    IndexError
        A target outside ``[0, V)`` that is not `ignore_index`.

    Notes
    -----
    A row is never split over the vocabulary: above ``V = 128 MiB / itemsize``
    (33.5 million classes in float32) the chunk is one row, of ``V`` entries.
    The pullback returns new arrays (the saved gradients times the cotangent),
    so it may be called more than once.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> rng = np.random.default_rng(0)
    >>> h, w = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    >>> y = np.array([0, 6, 2, -100, 3])
    >>> loss, (gh, gw) = nllkit.value_and_grad(nllkit.linear_cross_entropy, (0, 1))(h, w, y, chunk_size=2)
    >>> bool(np.isclose(loss, nllkit.cross_entropy(h @ w.T, y)))
    True
    >>> gh.shape, gw.shape
    ((5, 3), (7, 3))
    """
    fn = "linear_cross_entropy"
    if not all(isinstance(a, np.ndarray) for a in (hidden, weight, target)) or not (
        bias is None or isinstance(bias, np.ndarray)
    ):
        raise TypeError(f"{fn}: NumPy arrays only; for PyTorch tensors use nllkit.torch.linear_cross_entropy")
    settings, chunk_size = check_linear(
        fn, hidden, weight, target, bias, ignore_index, reduction, label_smoothing, z_loss, softcap, chunk_size
    )
    if hidden.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: hidden must be float32 or float64; got {dtype_name(hidden.dtype)}")
    return apply(
        _forward,
        (hidden, weight, target, bias),
        fused=_FUSED,
        reduction=reduction,
        chunk_size=chunk_size,
        **settings,
    )
