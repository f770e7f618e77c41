"""``nllkit.torch.linear_cross_entropy``: the chunked loop of
:mod:`nllkit.losses._linear` on PyTorch tensors.

The matrix products are torch's (``addmm_`` accumulates the weight's
gradient in place); on CPU each chunk's cross-entropy is the fused NumPy
kernel working on the chunk buffer's own memory, elsewhere (or with
``nllkit.fused_kernels(False)``) nllkit's generic array-API path on the tensors.
"""

from __future__ import annotations

from typing import Any

import torch

from nllkit import _kernels as kernels
from nllkit.losses._linear import Grads, check_linear, chunk_rows, chunked_loss_and_grads, count_kept
from nllkit.losses._with_grad import cross_entropy_with_grad
from nllkit.torch._ops import as_numpy


class TorchOps:
    """The chunked loop's operations on tensors of one device."""

    def empty(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.empty(shape, dtype=like.dtype, device=like.device)

    def zeros(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(shape, dtype=like.dtype, device=like.device)

    def matmul(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
        torch.matmul(a, b, out=out)

    def add_at_b(self, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        c.addmm_(a.T, b)

    def add_col_sum(self, c: torch.Tensor, g: torch.Tensor) -> None:
        c.add_(g.sum(dim=0))

    def add_row(self, x: torch.Tensor, b: torch.Tensor) -> None:
        x.add_(b)

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor, settings: dict[str, Any]) -> tuple[float, Any]:
        if logits.device.type == "cpu" and kernels.enabled():
            view = as_numpy(logits)
            loss, _ = cross_entropy_with_grad(view, target.numpy(), **settings, out=view)
            return float(loss), logits
        loss, g = cross_entropy_with_grad(logits, target, **settings)
        return float(loss), g


class _LinearCrossEntropy(torch.autograd.Function):
    """Loss and gradients in the forward; the backward scales the saved gradients."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        bias: torch.Tensor | None,
        reduction: str,
        chunk_size: int | None,
        settings: dict[str, Any],
    ) -> torch.Tensor:
        hidden, weight = hidden.contiguous(), weight.contiguous()
        grads = chunked_loss_and_grads(
            TorchOps(),
            hidden,
            weight,
            target,
            bias,
            count_kept(target, settings["ignore_index"]),
            wanted=(ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[3]),
            chunk=chunk_rows(hidden.shape[0], weight.shape[0], hidden.element_size(), chunk_size),
            settings=settings,
        )
        ctx.grads = grads
        ctx.scale = grads.scale(reduction)
        return torch.tensor(grads.loss(reduction), dtype=hidden.dtype, device=hidden.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grads: Grads = ctx.grads
        c = grad_output * ctx.scale

        def scaled(g: torch.Tensor | None) -> torch.Tensor | None:
            return None if g is None else g.mul_(c.to(g.dtype))

        # Each saved gradient is scaled in place and handed over once.
        ctx.grads = None
        return scaled(grads.grad_hidden), scaled(grads.grad_weight), None, scaled(grads.grad_bias), None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""``F.cross_entropy(hidden @ weight.T + bias, target)`` without the ``N x V`` logits.

    The same value as the expression above, and, through autograd, the same
    gradients with respect to `hidden`, `weight` and `bias`; see
    :func:`nllkit.linear_cross_entropy` for the math and the chunking. The
    loss and the gradients are all computed in the forward, chunk by chunk
    (logits of a chunk into one reused buffer, the fused kernel overwriting
    them with their gradient :math:`G`, then :math:`\partial L/\partial h = G W`
    and :math:`\partial L/\partial W \mathrel{+}= G^\top h`); the backward
    multiplies them by ``grad_output``. The extra memory is one chunk, by
    default 128 MiB (``chunk_size = 128 MiB // (V * itemsize)`` rows), plus
    the gradients themselves.

    Parameters
    ----------
    hidden : torch.Tensor, shape (N, D)
        float32, float64 or bfloat16.
    weight : torch.Tensor, shape (V, D)
        ``torch.nn.Linear``'s layout, `hidden`'s dtype and device.
    target : torch.Tensor, shape (N,)
        Class indices in ``[0, V)`` or `ignore_index`.
    bias : torch.Tensor, shape (V,), optional
    ignore_index, label_smoothing, z_loss, softcap
        As in ``nllkit.torch.cross_entropy`` (`z_loss` and `softcap` are
        nllkit's additions).
    reduction : {'mean', 'sum'}
    chunk_size : int, optional
        Tokens per chunk.

    Returns
    -------
    torch.Tensor
        Shape ``()``, `hidden`'s dtype.

    Examples
    --------
    >>> import torch
    >>> from nllkit.torch._linear import linear_cross_entropy
    >>> _ = torch.manual_seed(0)
    >>> h = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    >>> y = torch.tensor([0, 8, 3, -100, 2, 2])
    >>> loss = linear_cross_entropy(h, w, y, chunk_size=4)
    >>> ref = torch.nn.functional.cross_entropy(h @ w.T, y)
    >>> bool(torch.isclose(loss, ref))
    True
    >>> loss.backward()
    >>> gh, gw = torch.autograd.grad(ref, (h, w))
    >>> bool(torch.allclose(h.grad, gh) and torch.allclose(w.grad, gw))
    True
    """
    settings, chunk_size = check_linear(
        "linear_cross_entropy",
        hidden,
        weight,
        target,
        bias,
        ignore_index,
        reduction,
        label_smoothing,
        z_loss,
        softcap,
        chunk_size,
    )
    out: torch.Tensor = _LinearCrossEntropy.apply(hidden, weight, target, bias, reduction, chunk_size, settings)
    return out
