"""``torch.nn.Module`` wrappers of :mod:`nllkit.torch`'s functions.

Each mirrors its ``torch.nn`` namesake without the legacy ``size_average`` and
``reduce`` (arguments after the first are keyword-only, as in
:mod:`nllkit.modules`). ``weight`` and ``pos_weight`` are buffers under torch's
names, registered even when None, so ``state_dict`` and ``load_state_dict``
work in both directions with torch's modules.
"""

from __future__ import annotations

import torch
from torch import nn

from nllkit.torch import _functional as F

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(nn.Module):
    def __init__(self, reduction: str) -> None:
        super().__init__()
        # Checked here as well as on call: a typo fails where it was made.
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    weight: torch.Tensor | None

    def __init__(self, weight: torch.Tensor | None, reduction: str) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    r""":func:`nllkit.torch.cross_entropy` with stored settings.

    Examples
    --------
    >>> import torch, nllkit.torch
    >>> loss = nllkit.torch.CrossEntropyLoss(z_loss=1e-4)
    >>> round(loss(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])).item(), 6)
    0.241814
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
    ) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.softcap = softcap

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            input,
            target,
            self.weight,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
        )


class NLLLoss(_WeightedLoss):
    """:func:`nllkit.torch.nll_loss` with stored `weight`, `ignore_index` and `reduction`."""

    def __init__(
        self, weight: torch.Tensor | None = None, *, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """:func:`nllkit.torch.binary_cross_entropy_with_logits` with stored settings."""

    pos_weight: torch.Tensor | None

    def __init__(
        self, weight: torch.Tensor | None = None, *, reduction: str = "mean", pos_weight: torch.Tensor | None = None
    ) -> None:
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class PoissonNLLLoss(_Loss):
    """:func:`nllkit.torch.poisson_nll_loss` with stored settings."""

    def __init__(
        self, log_input: bool = True, *, full: bool = False, eps: float = 1e-8, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.poisson_nll_loss(log_input, target, self.log_input, self.full, self.eps, self.reduction)


class GaussianNLLLoss(_Loss):
    """:func:`nllkit.torch.gaussian_nll_loss` with stored settings."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor, var: torch.Tensor | float) -> torch.Tensor:
        return F.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class _Normalisation(nn.Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(_Normalisation):
    """:func:`nllkit.torch.log_softmax` along `dim`."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(input, self.dim)


class Softmax(_Normalisation):
    """:func:`nllkit.torch.softmax` along `dim`."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.softmax(input, self.dim)
