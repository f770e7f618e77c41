r"""Drop-in replacements for ``torch.nn.functional``'s likelihood losses.

Each function has torch.nn.functional's signature (without the deprecated
``size_average`` and ``reduce``) and semantics. On CPU tensors of dtype
float32, float64 or bfloat16 it runs nllkit's fused kernels on the tensors'
memory through a ``torch.library`` custom op (loss and gradient in one pass);
otherwise (other devices, other dtypes, a class ``weight`` that requires
grad, Numba missing) it runs a pure-torch implementation with the same
results. ``with nllkit.torch.pure_torch():`` forces the pure-torch path, on
any device: that is how the tests compare the two on CPU.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from nllkit._kernels import numba_installed
from nllkit.torch import _ops

_FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
_NUMBA = numba_installed()  # once, at import: torch.compile then reads a constant
_force_torch = False  # set by pure_torch(); a module global, which torch.compile guards on


@contextlib.contextmanager
def pure_torch() -> Iterator[None]:
    """Run :mod:`nllkit.torch`'s functions in pure torch inside a ``with`` block.

    The fallback used off the CPU, made reachable on the CPU (to test it, or to
    get torch's own rounding to the last bit). Not thread-safe: it flips a
    module flag, which ``torch.compile`` guards on.

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> x, y = torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])
    >>> with nllkit.torch.pure_torch():
    ...     print(round(nllkit.torch.cross_entropy(x, y).item(), 6))
    0.241311
    """
    global _force_torch
    previous, _force_torch = _force_torch, True
    try:
        yield
    finally:
        _force_torch = previous


def _fused(*tensors: torch.Tensor | None) -> bool:
    """Whether the fused kernels take these tensors (all on the CPU, the first
    of a kernel dtype)."""
    if _force_torch or not _NUMBA:
        return False
    first = tensors[0]
    return (
        first is not None and first.dtype in _FUSED_DTYPES and all(t is None or t.device.type == "cpu" for t in tensors)
    )


def _needs_grad(t: torch.Tensor | None) -> bool:
    return t is not None and t.requires_grad and torch.is_grad_enabled()


def _loss(
    name: str,
    reduction: str,
    ints: list[int],
    floats: list[float],
    arrays: list[torch.Tensor | None],
    differentiable: int,
) -> torch.Tensor:
    """The fused op on ``arrays`` (padded to four), differentiating the first
    ``differentiable`` of them where they require grad."""
    arrays = arrays + [None] * (4 - len(arrays))
    need = [i < differentiable and _needs_grad(arrays[i]) for i in range(3)]
    a0, a1, a2, a3 = arrays
    assert a0 is not None and a1 is not None
    return _ops.loss_and_grad(name, reduction, ints, floats, a0, a1, a2, a3, need)[0]


def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


# --- softmax family -----------------------------------------------------------


def _softmax_dim(ndim: int) -> int:
    # torch's implicit choice, deprecated there too.
    warnings.warn("Implicit dimension choice for softmax has been deprecated", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _normalise(input: torch.Tensor, dim: int | None, dtype: torch.dtype | None, log: bool) -> torch.Tensor:
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = _softmax_dim(input.ndim)
    if not _fused(input) or input.ndim == 0:
        return F.log_softmax(input, dim) if log else F.softmax(input, dim)
    return _ops.softmax(input, dim % input.ndim, log)


def log_softmax(
    input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> torch.Tensor:
    r"""Log-softmax along `dim`, as :func:`torch.nn.functional.log_softmax`.

    .. math:: y_i = x_i - \log \sum_j e^{x_j}

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.log_softmax(torch.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    return _normalise(input, dim, dtype, log=True)


def softmax(
    input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> torch.Tensor:
    r"""Softmax along `dim`, as :func:`torch.nn.functional.softmax`.

    .. math:: y_i = e^{x_i} / \sum_j e^{x_j}

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.softmax(torch.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    return _normalise(input, dim, dtype, log=False)


# --- classification -------------------------------------------------------------


def _cross_entropy_torch(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
) -> torch.Tensor:
    """The pure-torch cross-entropy: torch's, on soft-capped logits, plus the z-loss."""
    if softcap is not None:
        input = softcap * torch.tanh(input / softcap)
    loss = F.cross_entropy(
        input, target, weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    )
    if not z_loss:
        return loss
    class_dim = 0 if input.ndim == 1 else 1
    z = z_loss * torch.logsumexp(input, class_dim) ** 2
    if target.is_floating_point():
        divisor = z.new_tensor(float(z.numel()))
    else:
        # Ignored rows carry no z-term; 'mean' shares the loss's divisor (the
        # target weights of the kept rows, or their count).
        kept = target != ignore_index
        z = torch.where(kept, z, torch.zeros_like(z))
        if weight is None:
            divisor = kept.sum().to(z.dtype)
        else:
            divisor = torch.where(kept, weight[torch.where(kept, target, 0)], 0).sum().to(z.dtype)
    if reduction == "none":
        return loss + z
    if reduction == "sum":
        return loss + z.sum()
    return loss + z.sum() / divisor


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    z_loss: float = 0.0,
    softcap: float | None = None,
) -> torch.Tensor:
    r"""Cross-entropy, as :func:`torch.nn.functional.cross_entropy`, plus `z_loss` and `softcap`.

    With :math:`x` the logits, soft-capped to :math:`s \tanh(x / s)` when
    `softcap` is :math:`s`, and :math:`\operatorname{lse}(x_n) = \log\sum_c e^{x_{n,c}}`:

    .. math:: \ell_n = \ell^{\mathrm{torch}}_n(x) + z\,\operatorname{lse}(x_n)^2

    the z-term only on non-ignored rows, sharing the ``'mean'`` divisor (see
    :func:`nllkit.cross_entropy`). On CPU float32/float64/bfloat16 tensors the
    fused kernel computes loss and gradient in one pass over the logits; the
    gradient is kept and scaled by ``grad_output`` in backward.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As in :func:`torch.nn.functional.cross_entropy`.
    z_loss : float >= 0, keyword-only
    softcap : float > 0 or None, keyword-only

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> x = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], requires_grad=True)
    >>> loss = nllkit.torch.cross_entropy(x, torch.tensor([0, 1]))
    >>> round(loss.item(), 6)
    0.396378
    >>> loss.backward()
    >>> x.grad[0]
    tensor([-0.1072,  0.0876,  0.0196])
    """
    _check_reduction(reduction)
    if not _fused(input, target, weight) or _needs_grad(weight):
        return _cross_entropy_torch(input, target, weight, ignore_index, reduction, label_smoothing, z_loss, softcap)
    floats = [float(label_smoothing), float(z_loss), 0.0 if softcap is None else float(softcap)]
    return _loss("cross_entropy", reduction, [ignore_index], floats, [input, target, weight], 2)


def nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Negative log-likelihood of log-probabilities, as :func:`torch.nn.functional.nll_loss`.

    .. math:: \ell_n = -w_{y_n} x_{n, y_n}

    ``'mean'`` divides by :math:`\sum_n w_{y_n}` over non-ignored targets.

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.nll_loss(torch.tensor([[-0.5, -1.0]]), torch.tensor([1]))
    tensor(1.)
    """
    _check_reduction(reduction)
    if not _fused(input, target, weight) or _needs_grad(weight):
        return F.nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)
    return _loss("nll_loss", reduction, [ignore_index], [], [input, target, weight], 1)


# --- elementwise ------------------------------------------------------------------


def _expanded(reduction: str, arrays: list[torch.Tensor | None], differentiable: int) -> list[torch.Tensor | None]:
    """For ``reduction='none'``, the differentiable arguments broadcast to the
    loss's shape: the op's saved gradient is then elementwise and scaled by
    ``grad_output`` as it is, and autograd sums it back over broadcast axes."""
    if reduction != "none":
        return arrays
    shape = torch.broadcast_shapes(*(a.shape for a in arrays if a is not None))
    return [
        a.expand(shape) if i < differentiable and a is not None and _needs_grad(a) and a.shape != shape else a
        for i, a in enumerate(arrays)
    ]


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Binary cross-entropy on logits, as :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    .. math:: \ell = -w\,[p\,t \log\sigma(x) + (1 - t) \log(1 - \sigma(x))]

    with `pos_weight` :math:`p`.

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.binary_cross_entropy_with_logits(torch.tensor([0.0]), torch.tensor([1.0]))
    tensor(0.6931)
    """
    _check_reduction(reduction)
    if not _fused(input, target, weight, pos_weight) or _needs_grad(weight) or _needs_grad(pos_weight):
        return F.binary_cross_entropy_with_logits(input, target, weight, reduction=reduction, pos_weight=pos_weight)
    arrays = _expanded(reduction, [input, target, weight, pos_weight], 2)
    return _loss("binary_cross_entropy_with_logits", reduction, [], [], arrays, 2)


def poisson_nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Poisson negative log-likelihood, as :func:`torch.nn.functional.poisson_nll_loss`.

    .. math:: \ell = e^{x} - t\,x \quad (\text{log\_input}), \qquad \ell = x - t \log(x + \epsilon)

    plus Stirling's term for ``t > 1`` when `full`.

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.poisson_nll_loss(torch.tensor([0.0]), torch.tensor([2.0]))
    tensor(1.)
    """
    _check_reduction(reduction)
    if not _fused(input, target):
        return F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    arrays = _expanded(reduction, [input, target], 2)
    return _loss("poisson_nll_loss", reduction, [int(log_input), int(full)], [float(eps)], arrays, 2)


def gaussian_nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    var: torch.Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Gaussian negative log-likelihood, as :func:`torch.nn.functional.gaussian_nll_loss`.

    .. math:: \ell = \tfrac12 \left(\log \max(v, \epsilon) + \frac{(x - t)^2}{\max(v, \epsilon)}\right)
              \;(+ \tfrac12 \log 2\pi \text{ when full})

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> nllkit.torch.gaussian_nll_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0]))
    tensor(0.5000)
    """
    _check_reduction(reduction)
    if not isinstance(var, torch.Tensor):
        var = torch.full_like(input, float(var))
    if not _fused(input, target, var):
        return F.gaussian_nll_loss(input, target, var, full=full, eps=eps, reduction=reduction)
    if var.shape != input.shape and input.ndim and var.shape == input.shape[:-1]:
        var = var.unsqueeze(-1)  # one variance per row, torch's reading of this shape
    arrays = _expanded(reduction, [input, target, var], 3)
    return _loss("gaussian_nll_loss", reduction, [int(full)], [float(eps)], arrays, 3)
