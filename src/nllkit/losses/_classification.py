r"""``nll_loss`` and ``cross_entropy``: the NLL of a categorical distribution.

Cross-entropy with class-index targets *is* ``nll_loss(log_softmax(x))``:
``log_softmax`` turns logits into the log-probabilities of a categorical
distribution, and ``nll_loss`` picks, for each sample, minus the
log-probability of its observed class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat as apc

from nllkit._autodiff import Forward, Pullback, apply
from nllkit._kernels import Fused
from nllkit._validation import (
    check_floating,
    check_int,
    check_reduction,
    check_scalar,
    check_values,
)
from nllkit._xp import (
    Array,
    as_array,
    class_mask,
    dtype_name,
    index_dtype,
    is_floating,
    is_integer,
    namespace,
    numel,
    to_dtype,
    work_dtype,
)
from nllkit.losses._softmax import shifted_and_lse

_FUSED = "nllkit.losses._fused_classification"
_FUSED_NLL = Fused(_FUSED, "nll_fused")
_FUSED_INDEX = Fused(_FUSED, "cross_entropy_index_fused")
_FUSED_PROB = Fused(_FUSED, "cross_entropy_prob_fused")


@dataclass(frozen=True)
class _IndexTarget:
    """Class-index targets in the canonical layout ``(N, d1..dK)``, class axis 1."""

    target: Array  # ignored entries replaced by class 0
    ignored: Array
    mask: Array  # one-hot of target along axis 1, False on ignored rows
    weight: Array  # w[y], 0 on ignored rows
    denominator: Array  # sum of weight: the 'mean' divisor


def _canonical(x: Array, xp: ModuleType) -> Array:
    """A ``(C,)`` input as ``(1, C)``; other shapes are already ``(N, C, ...)``."""
    return xp.reshape(x, (1, x.shape[0])) if x.ndim == 1 else x


def _index_target(x: Array, target: Array, weight: Array | None, ignore_index: int, xp: ModuleType) -> _IndexTarget:
    t = xp.astype(target, index_dtype(xp))
    t = xp.reshape(t, (1,)) if x.ndim == 2 and t.ndim < 1 else t
    t = xp.reshape(t, (x.shape[0],) + tuple(x.shape[2:]))
    ignored = t == ignore_index
    t = xp.where(ignored, xp.zeros_like(t), t)
    if weight is None:
        w_y = xp.ones(t.shape, dtype=x.dtype, device=apc.device(x))
    else:
        w_y = xp.reshape(xp.take(to_dtype(weight, x.dtype, xp), xp.reshape(t, (-1,))), t.shape)
    w_y = xp.where(ignored, xp.zeros_like(w_y), w_y)
    mask = class_mask(t, x.shape[1], x.ndim, xp) & ~xp.expand_dims(ignored, axis=1)
    return _IndexTarget(t, ignored, mask, w_y, xp.sum(w_y))


def _reduce_rows(loss: Array, reduction: str, denominator: Array, out_shape: tuple[int, ...], xp: ModuleType) -> Array:
    if reduction == "none":
        return xp.reshape(loss, out_shape)
    total = xp.sum(loss)
    return total if reduction == "sum" else total / denominator


def _row_cotangent(cotangent: Array, reduction: str, divisor: Any, rows: tuple[int, ...], xp: ModuleType) -> Array:
    """Cotangent of each row's loss, shape ``rows``."""
    if reduction == "none":
        return xp.reshape(cotangent, rows)
    return xp.broadcast_to(cotangent / divisor if reduction == "mean" else cotangent, rows)


def _pick(x: Array, mask: Array, xp: ModuleType) -> Array:
    """``x[n, y_n, ...]``; a ``where`` rather than a product keeps NaN or inf
    in other classes from leaking in."""
    return xp.sum(xp.where(mask, x, xp.zeros_like(x)), axis=1)


def _nll_forward(
    input: Array, target: Array, weight: Array | None, *, ignore_index: int, reduction: str
) -> tuple[Array, Pullback]:
    xp = namespace(input)
    x = _canonical(to_dtype(input, work_dtype(input.dtype, xp), xp), xp)
    it = _index_target(x, target, weight, ignore_index, xp)
    loss = xp.where(it.ignored, xp.zeros_like(it.weight), -it.weight * _pick(x, it.mask, xp))
    out = _reduce_rows(loss, reduction, it.denominator, tuple(target.shape) if input.ndim > 1 else (), xp)

    def pullback(cotangent: Array) -> tuple[Array, None, None]:
        g = _row_cotangent(to_dtype(cotangent, x.dtype, xp), reduction, it.denominator, loss.shape, xp)
        coef = xp.where(it.ignored, xp.zeros_like(g), -it.weight * g)
        grad = xp.where(it.mask, xp.expand_dims(coef, axis=1), xp.zeros_like(x))
        return xp.reshape(grad, input.shape), None, None

    return to_dtype(out, input.dtype, xp), pullback


def _prepare(
    fn: str, input: Any, target: Any, weight: Any, reduction: str
) -> tuple[Array, Array, Array | None, ModuleType]:
    """Convert the arguments of nll_loss / cross_entropy and check what both share."""
    xp = namespace(input, target, weight)
    input = as_array(input, xp, like=input)
    target = as_array(target, xp, like=input)
    weight = None if weight is None else as_array(weight, xp, like=input)
    check_reduction(fn, reduction)
    check_floating(fn, "input", input, xp)
    if input.ndim == 0:
        raise ValueError(
            f"{fn}: input must have 1 or more dimensions (C,), (N, C) or (N, C, d1, ..., dK); got a 0-d array"
        )
    if weight is not None:
        check_floating(fn, "weight", weight, xp)
        num_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(
                f"{fn}: weight must have shape ({num_classes},), one entry per class; got {tuple(weight.shape)}"
            )
    return input, target, weight, xp


def _check_index_target(fn: str, input: Array, target: Array, ignore_index: Any, xp: ModuleType) -> int:
    """Check class-index targets; return `ignore_index` as an int."""
    if not is_integer(target.dtype, xp):
        raise TypeError(f"{fn}: target must have an integer dtype (class indices); got {dtype_name(target.dtype)}")
    if input.ndim == 1:
        if target.shape not in ((), (1,)):
            raise ValueError(
                f"{fn}: target must have shape () or (1,) for input of shape {tuple(input.shape)}; "
                f"got {tuple(target.shape)}"
            )
    else:
        expected = (input.shape[0],) + tuple(input.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(
                f"{fn}: target must have shape {expected} for input of shape "
                f"{tuple(input.shape)}; got {tuple(target.shape)}"
            )
    ignore_index = check_int(fn, "ignore_index", ignore_index)
    num_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    t = xp.astype(target, index_dtype(xp))
    bad = (t != ignore_index) & ((t < 0) | (t >= num_classes))
    check_values(
        fn,
        "target",
        t,
        bad,
        f"a class index in [0, {num_classes}) or ignore_index={ignore_index}",
        xp,
        exc=IndexError,
    )
    return ignore_index


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    r"""Negative log-likelihood loss for class-index targets.

    Matches :func:`torch.nn.functional.nll_loss` (verified against torch 2.13).

    .. math:: \ell_n = -w_{y_n}\, x_{n, y_n}\, \mathbb{1}\{y_n \ne \text{ignore\_index}\}

    ``'sum'`` returns :math:`\sum_n \ell_n`; ``'mean'`` returns
    :math:`\sum_n \ell_n / \sum_n w_{y_n} \mathbb{1}\{y_n \ne \text{ignore\_index}\}`,
    a *weighted* mean, which is NaN when every target is ignored (as in PyTorch;
    the gradient is then 0).

    Parameters
    ----------
    input : array, shape (C,), (N, C) or (N, C, d1, ..., dK)
        Log-probabilities (not checked: any real values are used as they are);
        real floating dtype.
    target : array, shape (), (N,) or (N, d1, ..., dK)
        Class indices in ``[0, C)`` or `ignore_index`; any integer dtype.
    weight : array, shape (C,), optional
        Per-class weight, any real floating dtype (cast to `input`'s).
    ignore_index : int
        Targets equal to it contribute neither loss nor weight; it may be a
        valid class, which is then skipped.
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``, then ``target``'s shape
        (``()`` for 1-D input); namespace, device and dtype of `input`.

    Raises
    ------
    IndexError
        A target outside ``[0, C)`` that is not `ignore_index` (eager arrays
        only; the message names its value and position).
    ValueError
        Bad shapes or `reduction`.
    TypeError
        Non-floating `input` or `weight`, non-integer `target`.

    See Also
    --------
    cross_entropy : ``nll_loss(log_softmax(x, 1), y)`` in one step.

    Notes
    -----
    The gradient with respect to `input` is :math:`-w_{y_n} \bar g_n` at
    :math:`(n, y_n)` (divided by the weight sum for ``'mean'``) and exactly 0
    elsewhere. `weight` is not differentiated, as in PyTorch.

    Examples
    --------
    The classic tutorial example: the log-probability of each sample's class,
    picked with ``logp[range(N), target]``, negated and averaged.

    >>> import numpy as np, nllkit
    >>> x = np.array([[0.0054, -0.8030, -0.5758, -0.6518],
    ...               [-0.5518, 0.3904, 0.5296, 0.4973],
    ...               [0.1608, 0.5822, 0.9536, -0.3173]], dtype=np.float32)
    >>> logp = nllkit.log_softmax(x, dim=1)
    >>> loss = nllkit.nll_loss(logp, np.array([0, 2, 3]))
    >>> print(f"{float(loss):.6f}")
    1.412474
    >>> print(f"{float(-logp[range(3), [0, 2, 3]].mean()):.6f}")
    1.412474
    """
    fn = "nll_loss"
    input, target, weight, xp = _prepare(fn, input, target, weight, reduction)
    ignore_index = _check_index_target(fn, input, target, ignore_index, xp)
    return apply(
        _nll_forward, (input, target, weight), fused=_FUSED_NLL, ignore_index=ignore_index, reduction=reduction
    )


@dataclass(frozen=True)
class _LogProbs:
    """Log-probabilities of the (optionally soft-capped) logits, along axis 1."""

    logp: Array
    lse: Array | None  # log-sum-exp per row (rows shape), when the z-loss needs it
    cap_slope: Array | None  # d softcap(x) / dx = 1 - tanh(x / s)^2, when capped

    def z_term(self, z_loss: float) -> Array:
        """The z-loss of each row, ``z * lse**2``."""
        assert self.lse is not None
        return z_loss * self.lse * self.lse

    def chain(self, grad: Array, p: Array, g: Array, z_loss: float, xp: ModuleType) -> Array:
        """Add the z-loss gradient ``2 z lse p`` (times the row cotangent `g`) to
        the gradient with respect to the capped logits, then chain through the cap."""
        if z_loss > 0:
            assert self.lse is not None
            grad = grad + (2 * z_loss) * g * xp.expand_dims(self.lse, axis=1) * p
        return grad if self.cap_slope is None else grad * self.cap_slope


def _log_probs(x: Array, softcap: float | None, z_loss: float, xp: ModuleType) -> _LogProbs:
    cap_slope = None
    if softcap is not None:
        tanh = xp.tanh(x / softcap)
        x = softcap * tanh
        cap_slope = 1 - tanh * tanh
    shifted, lse = shifted_and_lse(x, 1, xp)
    row_lse = None
    if z_loss > 0:
        row_lse = xp.squeeze(lse, axis=1) + xp.max(x, axis=1)
    return _LogProbs(shifted - lse, row_lse, cap_slope)


def _cross_entropy_index_forward(
    input: Array,
    target: Array,
    weight: Array | None,
    *,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
) -> tuple[Array, Pullback]:
    xp = namespace(input)
    x = _canonical(to_dtype(input, work_dtype(input.dtype, xp), xp), xp)
    num_classes = x.shape[1]
    eps = label_smoothing
    it = _index_target(x, target, weight, ignore_index, xp)
    lp = _log_probs(x, softcap, z_loss, xp)
    logp = lp.logp
    zero = xp.zeros_like(it.weight)
    loss = xp.where(it.ignored, zero, -it.weight * _pick(logp, it.mask, xp))
    w = None
    if eps > 0:
        w = (
            None
            if weight is None
            else xp.reshape(to_dtype(weight, x.dtype, xp), (1, num_classes) + (1,) * (x.ndim - 2))
        )
        smooth = -xp.sum(logp if w is None else w * logp, axis=1)
        loss = (1 - eps) * loss + (eps / num_classes) * xp.where(it.ignored, zero, smooth)
    if z_loss > 0:
        loss = loss + xp.where(it.ignored, zero, lp.z_term(z_loss))
    out = _reduce_rows(loss, reduction, it.denominator, tuple(target.shape) if input.ndim > 1 else (), xp)

    def pullback(cotangent: Array) -> tuple[Array, None, None]:
        g = _row_cotangent(to_dtype(cotangent, x.dtype, xp), reduction, it.denominator, loss.shape, xp)
        g = xp.expand_dims(xp.where(it.ignored, xp.zeros_like(g), g), axis=1)
        p = xp.exp(logp)
        w_y = xp.expand_dims(it.weight, axis=1)
        grad = w_y * (p - xp.astype(it.mask, x.dtype))
        if eps > 0:
            total = num_classes if w is None else xp.sum(w)
            grad = (1 - eps) * grad + (eps / num_classes) * (total * p - (1 if w is None else w))
        grad = lp.chain(g * grad, p, g, z_loss, xp)
        # An ignored row has gradient exactly 0, even if it holds NaN or inf
        # (PyTorch gives NaN there: pytorch#11551).
        grad = xp.where(xp.expand_dims(it.ignored, axis=1), xp.zeros_like(grad), grad)
        return xp.reshape(grad, input.shape), None, None

    return to_dtype(out, input.dtype, xp), pullback


def _cross_entropy_prob_forward(
    input: Array,
    target: Array,
    weight: Array | None,
    *,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
) -> tuple[Array, Pullback]:
    xp = namespace(input)
    arrays = [a for a in (input, target, weight) if a is not None]
    out_dtype = xp.result_type(*arrays)
    dtype = work_dtype(out_dtype, xp)
    x = _canonical(to_dtype(input, dtype, xp), xp)
    t = _canonical(to_dtype(target, dtype, xp), xp)
    num_classes = x.shape[1]
    eps = label_smoothing
    q = t * (1 - eps) + eps / num_classes if eps > 0 else t
    w = None
    if weight is not None:
        w = xp.reshape(to_dtype(weight, dtype, xp), (1, num_classes) + (1,) * (x.ndim - 2))
    wq = q if w is None else w * q
    lp = _log_probs(x, softcap, z_loss, xp)
    logp = lp.logp
    loglik = xp.sum(wq * logp, axis=1)
    if z_loss > 0:
        loglik = loglik - lp.z_term(z_loss)
    rows = numel(loglik.shape)
    # Negated after the reduction, so that an empty 'sum' is -0.0 as in PyTorch.
    out = -_reduce_rows(loglik, reduction, rows, tuple(input.shape[:1] + input.shape[2:]) if input.ndim > 1 else (), xp)

    def pullback(cotangent: Array) -> tuple[Array, Array, Array | None]:
        g = xp.expand_dims(_row_cotangent(to_dtype(cotangent, dtype, xp), reduction, rows, loglik.shape, xp), axis=1)
        p = xp.exp(logp)
        grad_x = lp.chain(g * (xp.sum(wq, axis=1, keepdims=True) * p - wq), p, g, z_loss, xp)
        grad_t = -g * (1 - eps) * (logp if w is None else w * logp)
        grad_w = None
        if w is not None:
            axes = (0,) + tuple(range(2, x.ndim))
            grad_w = -xp.sum(g * q * logp, axis=axes)
        return xp.reshape(grad_x, input.shape), xp.reshape(grad_t, target.shape), grad_w

    return to_dtype(out, out_dtype, xp), pullback


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    z_loss: float = 0.0,
    softcap: float | None = None,
) -> Array:
    r"""Cross-entropy between logits and class-index or class-probability targets.

    Matches :func:`torch.nn.functional.cross_entropy` (verified against torch 2.13).
    It is the negative log-likelihood of a categorical distribution whose
    log-probabilities are :math:`\log p = \operatorname{log\_softmax}(x)`
    along the class axis (axis 0 of a 1-D input, axis 1 otherwise).

    **Class-index targets** (integer `target`), with smoothing :math:`\varepsilon`:

    .. math::

        \ell_n = (1-\varepsilon)\,w_{y_n}(-\log p_{n,y_n})
                 + \frac{\varepsilon}{C}\sum_c w_c(-\log p_{n,c}),

    zero where :math:`y_n` is `ignore_index`; ``'mean'`` divides
    :math:`\sum_n \ell_n` by :math:`\sum_n w_{y_n}` over non-ignored targets.
    With :math:`\varepsilon = 0` this is ``nll_loss(log_softmax(x), y)`` exactly.

    **Class-probability targets** (floating `target` of `input`'s shape):
    :math:`q = (1-\varepsilon)\,t + \varepsilon / C` and
    :math:`\ell_n = -\sum_c w_c q_{n,c} \log p_{n,c}`; ``'mean'`` divides by
    the number of rows :math:`N d_1 \cdots d_K` (not by a weight sum).

    Parameters
    ----------
    input : array, shape (C,), (N, C) or (N, C, d1, ..., dK)
        Unnormalised logits; real floating dtype.
    target : array
        Integer class indices of shape (), (N,) or (N, d1, ..., dK); or
        floating class probabilities of `input`'s shape.
    weight : array, shape (C,), optional
        Per-class weight; any real floating dtype.
    ignore_index : int
        Index targets equal to it are skipped (it may be a valid class).
        Must be negative with probability targets.
    reduction : {'mean', 'sum', 'none'}
    label_smoothing : float in [0, 1]
        Mass moved from the targets to the uniform distribution.
    z_loss : float >= 0, keyword-only
        Adds :math:`z \operatorname{lse}(x_n)^2` to the loss of each row
        (non-ignored rows for index targets), as in PaLM: it keeps the
        log-normaliser near 0. The term is not multiplied by class weights and
        shares the ``'mean'`` divisor. Not in PyTorch.
    softcap : float > 0 or None, keyword-only
        If given, the logits first pass through :math:`s \tanh(x / s)`, as in
        Gemma 2, and everything above is computed on the capped logits. Not in
        PyTorch.

    Returns
    -------
    array
        Shape ``()`` unless ``reduction='none'``, then ``(N, d1, ..., dK)``
        (``()`` for 1-D input). dtype of `input` for index targets, the
        promoted dtype of `input`, `target` and `weight` for probabilities.

    Raises
    ------
    IndexError
        An index target outside ``[0, C)`` that is not `ignore_index`
        (eager arrays only; the message names its value and position).
    ValueError
        Bad shapes, `reduction`, `label_smoothing` outside [0, 1] (negative
        included: PyTorch silently ignores it), `ignore_index` >= 0 with
        probability targets.
    TypeError
        Non-floating `input` or `weight`; an index target that is not integer.

    Notes
    -----
    Gradient with respect to the logits, with :math:`p = \operatorname{softmax}(x)`:
    :math:`(1-\varepsilon) w_{y}(p - e_{y}) + \frac{\varepsilon}{C}
    (\textstyle\sum_c w_c\, p - w)` per row for index targets (0 on ignored
    rows, even if they hold NaN or inf, unlike PyTorch), and
    :math:`(\sum_c w_c q_c)\,p - w \odot q` for probabilities; each scaled by
    the cotangent and the ``'mean'`` divisor. Probability targets and their
    `weight` are differentiated too.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> f = np.array([[-0.3280, -0.6004, -0.1753, 1.2293, 1.5320],
    ...               [-0.4770, -2.7324, 0.5937, -1.8657, 0.4829],
    ...               [-1.5907, 0.9821, -1.3793, 0.7273, 0.0256]], dtype=np.float32)
    >>> print(float(nllkit.cross_entropy(f, np.array([1, 0, 3]))))
    1.982669472694397
    >>> print(nllkit.cross_entropy(f, np.array([1, 0, 3]), reduction="none"))
    [2.918309  1.9290671 1.1006324]
    """
    call = plan_cross_entropy(
        "cross_entropy", input, target, weight, ignore_index, reduction, label_smoothing, z_loss, softcap
    )
    return apply(call.forward, call.arrays, fused=call.fused, **call.settings)


@dataclass(frozen=True)
class CrossEntropyCall:
    """A checked cross-entropy call: which primitive, on which arrays, with which settings."""

    forward: Forward
    fused: Fused
    arrays: tuple[Array, Array, Array | None]
    settings: dict[str, Any]


def plan_cross_entropy(
    fn: str,
    input: Any,
    target: Any,
    weight: Any,
    ignore_index: Any,
    reduction: str,
    label_smoothing: Any,
    z_loss: Any,
    softcap: Any,
) -> CrossEntropyCall:
    """Check the arguments of a cross-entropy call (on behalf of `fn`) and pick
    the primitive: class indices or class probabilities, by the target's dtype."""
    label_smoothing = check_scalar(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    z_loss = check_scalar(fn, "z_loss", z_loss, 0.0, math.inf)
    if softcap is not None and check_scalar(fn, "softcap", softcap, 0.0, math.inf) == 0:
        raise ValueError(f"{fn}: softcap must be positive or None; got {softcap}")
    settings: dict[str, Any] = {
        "reduction": reduction,
        "label_smoothing": label_smoothing,
        "z_loss": z_loss,
        "softcap": None if softcap is None else float(softcap),
    }
    input, target, weight, xp = _prepare(fn, input, target, weight, reduction)
    if is_floating(target.dtype, xp):
        if tuple(target.shape) != tuple(input.shape):
            raise TypeError(
                f"{fn}: target of shape {tuple(target.shape)} must have an integer dtype "
                f"(class indices); got {dtype_name(target.dtype)}. A floating target holds "
                f"class probabilities and must have the input's shape {tuple(input.shape)}"
            )
        if check_int(fn, "ignore_index", ignore_index) >= 0:
            raise ValueError(
                f"{fn}: ignore_index must be negative (unused) with class-probability targets; got {ignore_index}"
            )
        return CrossEntropyCall(_cross_entropy_prob_forward, _FUSED_PROB, (input, target, weight), settings)
    settings["ignore_index"] = _check_index_target(fn, input, target, ignore_index, xp)
    return CrossEntropyCall(_cross_entropy_index_forward, _FUSED_INDEX, (input, target, weight), settings)
