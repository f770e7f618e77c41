r"""Vocabulary-parallel cross-entropy over ``torch.distributed``.

For tensor-parallel output layers (Megatron-LM): every rank of a process group
holds the columns ``[vocab_start, vocab_start + V_local)`` of the ``N x V``
logits (or the matching rows of the output projection). The loss of row
:math:`n` needs only three numbers per row from the whole vocabulary, the row
max, the sum of exponentials and the target logit (plus the logit sum for label
smoothing), so each is combined with one all-reduce of ``N`` elements:
communication is :math:`O(N \cdot \text{ranks})`, never :math:`O(N V)`. The
gradient of each shard is then local: the backward sends nothing (the linear
version all-reduces the ``N x D`` hidden-state gradient, as a column-parallel
linear layer does).

Without an initialised process group (and ``group=None``) the functions run as
a single rank holding the whole vocabulary, which is what the doctests use.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from nllkit._validation import check_reduction, check_scalar

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]

_FN = "vocab_parallel_cross_entropy"


def _rank_and_world(group: Any) -> tuple[int, int]:
    # No process group at all means one rank with the whole vocabulary; an
    # explicit group without initialisation is a user error torch reports.
    if group is None and not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def _all_reduce(t: torch.Tensor, op: Any, group: Any, world: int) -> torch.Tensor:
    if world > 1:
        # Looked up on the module at call time, so tests can instrument it.
        dist.all_reduce(t, op=op, group=group)
    return t


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    # Reduced precisions accumulate in float32, as the fused kernels do.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _shard_loss_and_grad(
    logits: torch.Tensor,
    target: torch.Tensor,
    group: Any,
    vocab_start: int | None,
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    softcap: float | None,
    reduction: str,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Row losses (ignored rows 0), the gradient with respect to this rank's
    logits of their sum, or of their mean for 'mean' (or None), and the
    number of non-ignored rows."""
    rank, world = _rank_and_world(group)
    v_local = logits.shape[1]
    if vocab_start is None:
        vocab_start = rank * v_local
        vocab = world * v_local
    else:
        # Shards may be unequal: one scalar all-reduce gives the vocabulary size.
        vocab_t = _all_reduce(torch.tensor([v_local], dtype=torch.int64), dist.ReduceOp.SUM, group, world)
        vocab = int(vocab_t.item())
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= vocab))
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise IndexError(f"{_FN}: target {int(target[row])} at row {row} is out of bounds for {vocab} classes")

    x = logits.to(_work_dtype(logits.dtype))
    tanh = None
    if softcap is not None:
        tanh = torch.div(x, softcap).tanh_()
        x = tanh * softcap

    m = _all_reduce(x.amax(dim=1), dist.ReduceOp.MAX, group, world)
    e = torch.sub(x, m[:, None]).exp_()
    sum_exp = _all_reduce(e.sum(dim=1), dist.ReduceOp.SUM, group, world)
    lse = m + torch.log(sum_exp)

    # Only the owning rank contributes the target logit; the others add 0.
    local = target - vocab_start
    owned = valid & (local >= 0) & (local < v_local)
    index = local.clamp(0, v_local - 1)[:, None]
    picked = torch.where(owned, x.gather(1, index)[:, 0], torch.zeros((), dtype=x.dtype))
    picked = _all_reduce(picked, dist.ReduceOp.SUM, group, world)

    # With q = (1 - eps) onehot + eps / V, the loss -sum_j q_j log p_j is
    # lse - (1 - eps) x_y - (eps / V) sum_j x_j.
    loss = lse - (1 - label_smoothing) * picked
    if label_smoothing > 0:
        total = _all_reduce(x.sum(dim=1), dist.ReduceOp.SUM, group, world)
        loss = loss - (label_smoothing / vocab) * total
    if z_loss > 0:
        loss = loss + z_loss * lse * lse
    loss = torch.where(valid, loss, torch.zeros((), dtype=x.dtype))
    # 'mean' divides by the non-ignored rows, as torch does without class weights.
    count = valid.sum().to(x.dtype)
    if not need_grad:
        return loss, None, count

    # d loss / d x_j = (1 + 2 z lse) p_j - (1 - eps) onehot_j - eps / V, times
    # c = 1 / count for 'mean' so that the usual backward of 1 needs no pass,
    # built in place in the exponentials' buffer (one extra N x V_local).
    c = 1 / count if reduction == "mean" else torch.ones((), dtype=x.dtype)
    factor = c / sum_exp
    if z_loss > 0:
        factor = factor * (1 + 2 * z_loss * lse)
    grad = e.mul_(factor[:, None])
    if label_smoothing > 0:
        grad.sub_(c * (label_smoothing / vocab))
    grad.scatter_add_(1, index, (-(1 - label_smoothing) * c * owned.to(x.dtype))[:, None])
    if tanh is not None:
        # d softcap(x) / dx = 1 - tanh(x / s)^2.
        grad.mul_(tanh.mul_(tanh).neg_().add_(1))
    # Ignored rows get exactly 0, even when they hold NaN or inf; only their
    # rows are written.
    grad.index_fill_(0, (~valid).nonzero()[:, 0], 0)
    return loss, grad, count


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Loss and shard gradient in one forward; the backward only scales."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        target: torch.Tensor,
        group: Any,
        vocab_start: int | None,
        ignore_index: int,
        reduction: str,
        label_smoothing: float,
        z_loss: float,
        softcap: float | None,
    ) -> torch.Tensor:
        shape = target.shape
        loss, grad, count = _shard_loss_and_grad(
            logits.reshape(-1, logits.shape[-1]),
            target.reshape(-1),
            group,
            vocab_start,
            ignore_index,
            label_smoothing,
            z_loss,
            softcap,
            reduction,
            ctx.needs_input_grad[0],
        )
        ctx.reduction = reduction
        ctx.logits_shape = logits.shape
        ctx.logits_dtype = logits.dtype
        ctx.save_for_backward(grad)
        if reduction == "none":
            out = loss.reshape(shape)
        elif reduction == "sum":
            out = loss.sum()
        else:
            out = loss.sum() / count
        return out.to(logits.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        if grad is None:
            return (None,) * 9
        g = grad_output.to(grad.dtype)
        # 'mean' was divided by the row count in the forward already.
        scaled = grad * (g.reshape(-1, 1) if ctx.reduction == "none" else g)
        return (scaled.reshape(ctx.logits_shape).to(ctx.logits_dtype),) + (None,) * 8


def _loss(
    fn: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    group: Any,
    vocab_start: Any,
    ignore_index: Any,
    reduction: Any,
    label_smoothing: Any,
    z_loss: Any,
    softcap: Any,
) -> torch.Tensor:
    """Check the arguments (on behalf of `fn`) and apply the autograd function."""
    check_reduction(fn, reduction)
    if not logits.is_floating_point():
        raise TypeError(f"{fn}: logits must have a floating dtype; got {logits.dtype}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"{fn}: target must hold class indices (an integer dtype); got {target.dtype}")
    if logits.ndim < 1 or tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"{fn}: target must have the logits' shape without the last (vocabulary) axis;"
            f" got logits {tuple(logits.shape)} and target {tuple(target.shape)}"
        )
    if vocab_start is not None and (isinstance(vocab_start, bool) or not isinstance(vocab_start, int)):
        raise TypeError(f"{fn}: vocab_start must be an int or None; got {type(vocab_start).__name__}")
    eps = check_scalar(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    z = check_scalar(fn, "z_loss", z_loss, 0.0, float("inf"))
    cap = None
    if softcap is not None:
        cap = check_scalar(fn, "softcap", softcap, 0.0, float("inf"))
        if cap == 0:
            raise ValueError(f"{fn}: softcap must be positive or None; got {softcap}")
    out: torch.Tensor = _VocabParallelCrossEntropy.apply(
        logits, target, group, vocab_start, int(ignore_index), reduction, eps, z, cap
    )
    return out


def vocab_parallel_cross_entropy(
    logits_shard: torch.Tensor,
    target: torch.Tensor,
    *,
    group: Any = None,
    vocab_start: int | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of logits sharded over the vocabulary across ranks.

    Every rank of `group` passes its columns of the logits and the same
    (replicated) targets, and gets the same loss, equal to
    ``nllkit.cross_entropy`` (and ``F.cross_entropy`` without the extra
    options) of the full logits; the gradient it receives is its shard's.
    With :math:`M_n = \max_j x_{nj}`, :math:`S_n = \sum_j e^{x_{nj} - M_n}`
    and :math:`\ell_n = M_n + \log S_n`, each of :math:`M`, :math:`S`, the
    target logit :math:`x_{n y_n}` and (for label smoothing) :math:`\sum_j
    x_{nj}` is a per-rank partial combined with one all-reduce of ``N``
    numbers, and the loss of a non-ignored row is

    .. math::

        L_n = \ell_n - (1 - \varepsilon) x_{n y_n}
              - \frac{\varepsilon}{V} \sum_j x_{nj} + z \ell_n^2 .

    The gradient of each shard, :math:`(1 + 2 z \ell_n) p_{nj} - (1 -
    \varepsilon) [j = y_n] - \varepsilon / V` (times the softcap's slope), is
    computed in the forward from local data; the backward scales it by the
    incoming gradient and communicates nothing.

    Parameters
    ----------
    logits_shard : torch.Tensor, shape (..., V_local)
        This rank's columns of the logits, vocabulary last (Megatron's layout).
        float32, float64, bfloat16 or float16 (the latter two computed in
        float32).
    target : torch.Tensor of int, shape (...)
        Class indices into the full vocabulary, the same on every rank.
    group : ProcessGroup or None, keyword-only
        The tensor-parallel group; None is the default group, or a single
        rank holding the whole vocabulary when ``torch.distributed`` is not
        initialised.
    vocab_start : int or None, keyword-only
        First vocabulary index of this rank's shard. None assumes equal shards
        in rank order, ``rank * V_local``; an explicit value allows unequal
        shards (one more scalar all-reduce then finds :math:`V`).
    ignore_index : int, keyword-only
        Rows with this target contribute 0 and get a zero gradient.
    reduction : {'mean', 'sum', 'none'}, keyword-only
        'mean' divides by the number of non-ignored rows.
    label_smoothing : float in [0, 1], keyword-only
        Mixes the one-hot target with the uniform distribution over :math:`V`.
    z_loss : float >= 0, keyword-only
        Adds :math:`z \ell_n^2` to each non-ignored row (PaLM).
    softcap : float > 0 or None, keyword-only
        The logits first pass through :math:`s \tanh(x / s)` (Gemma 2).

    Returns
    -------
    torch.Tensor
        The loss, identical on every rank, in the logits' dtype: a scalar, or
        shape (...) for ``reduction='none'``.

    Raises
    ------
    IndexError
        If a non-ignored target is outside ``[0, V)``.

    Notes
    -----
    Each call makes three all-reduces of ``N`` elements (four with label
    smoothing; plus one scalar when `vocab_start` is given) and saves one
    ``N x V_local`` gradient for the backward, in float32 or float64.

    Examples
    --------
    Without a process group it is a single rank holding the whole vocabulary:

    >>> import torch
    >>> from nllkit.torch._parallel import vocab_parallel_cross_entropy
    >>> x = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], requires_grad=True)
    >>> y = torch.tensor([1, 2])
    >>> loss = vocab_parallel_cross_entropy(x, y)
    >>> torch.allclose(loss, torch.nn.functional.cross_entropy(x, y))
    True
    >>> loss.backward()
    >>> torch.allclose(x.grad, torch.softmax(x, 1) / 2 - torch.eye(3)[y] / 2)
    True
    """
    return _loss(
        _FN, logits_shard, target, group, vocab_start, ignore_index, reduction, label_smoothing, z_loss, softcap
    )


class _CopyToParallelRegion(torch.autograd.Function):
    """Identity forward; the backward sums the ranks' partial gradients
    (Megatron's ``copy_to_tensor_model_parallel_region``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        _, world = _rank_and_world(ctx.group)
        return _all_reduce(grad.contiguous(), dist.ReduceOp.SUM, ctx.group, world), None


def vocab_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    weight_shard: torch.Tensor,
    target: torch.Tensor,
    bias_shard: torch.Tensor | None = None,
    *,
    group: Any = None,
    vocab_start: int | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of ``hidden @ weight.T + bias`` with the output layer
    sharded over the vocabulary across ranks.

    `hidden` is replicated; each rank holds the rows ``[vocab_start,
    vocab_start + V_local)`` of the ``(V, D)`` weight (nn.Linear's layout)
    and of the bias. The loss is :func:`vocab_parallel_cross_entropy` of
    this rank's logits shard; in the backward the hidden-state gradient
    :math:`\sum_r G_r W_r` is one all-reduce of ``N x D`` (as in a
    column-parallel linear layer), and the weight and bias gradients stay
    local.

    Parameters
    ----------
    hidden : torch.Tensor, shape (..., D)
        The same on every rank.
    weight_shard : torch.Tensor, shape (V_local, D)
    target : torch.Tensor of int, shape (...)
    bias_shard : torch.Tensor of shape (V_local,) or None
    group, vocab_start, ignore_index, reduction, label_smoothing, z_loss, softcap
        As in :func:`vocab_parallel_cross_entropy`.

    Returns
    -------
    torch.Tensor
        The loss, identical on every rank.

    Notes
    -----
    This version materialises the ``N x V_local`` logits shard of this rank
    (it is not chunked over tokens).

    Examples
    --------
    >>> import torch
    >>> from nllkit.torch._parallel import vocab_parallel_linear_cross_entropy
    >>> h = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> y = torch.tensor([2, 0])
    >>> loss = vocab_parallel_linear_cross_entropy(h, w, y)
    >>> torch.allclose(loss, torch.nn.functional.cross_entropy(h @ w.T, y))
    True
    """
    logits = F.linear(_CopyToParallelRegion.apply(hidden, group), weight_shard, bias_shard)
    fn = "vocab_parallel_linear_cross_entropy"
    return _loss(fn, logits, target, group, vocab_start, ignore_index, reduction, label_smoothing, z_loss, softcap)
