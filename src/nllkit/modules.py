"""Module classes: settings stored once, behaviour from the functional API.

Each class mirrors its PyTorch namesake (``torch.nn.CrossEntropyLoss`` ...)
without the legacy ``size_average``/``reduce`` arguments; arguments after the
first are keyword-only. Calling an instance calls the function with the
stored settings, so ``nllkit.value_and_grad(CrossEntropyLoss())`` works.
"""

from __future__ import annotations

from typing import Any

from nllkit._validation import REDUCTIONS, check_reduction
from nllkit._xp import Array
from nllkit.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    kl_div,
    log_softmax,
    nll_loss,
    poisson_nll_loss,
    softmax,
)


class _Module:
    """Stores settings; ``__call__`` forwards to :meth:`forward`."""

    def __call__(self, *args: Any) -> Array:
        return self.forward(*args)

    def forward(self, *args: Any) -> Array:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class _Loss(_Module):
    def __init__(self, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
        # Checked here as well as on call: a typo fails where it was made.
        check_reduction(type(self).__name__, reduction, allowed)
        self.reduction = reduction


class Softmax(_Module):
    """:func:`nllkit.softmax` along `dim`."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, input: Array) -> Array:
        return softmax(input, self.dim)


class LogSoftmax(_Module):
    """:func:`nllkit.log_softmax` along `dim`."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, input: Array) -> Array:
        return log_softmax(input, self.dim)


class NLLLoss(_Loss):
    """:func:`nllkit.nll_loss` with stored `weight`, `ignore_index` and `reduction`.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> loss = nllkit.NLLLoss(ignore_index=1)
    >>> print(loss(np.log(np.array([[0.5, 0.5], [0.9, 0.1]])), np.array([0, 1])))
    0.6931471805599453
    """

    def __init__(
        self, weight: Array | None = None, *, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, input: Array, target: Array) -> Array:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_Loss):
    """:func:`nllkit.cross_entropy` with stored settings.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> loss = nllkit.CrossEntropyLoss(label_smoothing=0.1)
    >>> print(round(float(loss(np.array([[2.0, 0.0, -1.0]]), np.array([0]))), 6))
    0.336513
    """

    def __init__(
        self,
        weight: Array | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
    ) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.softcap = softcap

    def forward(self, input: Array, target: Array) -> Array:
        return cross_entropy(
            input,
            target,
            self.weight,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
        )


class BCELoss(_Loss):
    """:func:`nllkit.binary_cross_entropy` with stored `weight` and `reduction`."""

    def __init__(self, weight: Array | None = None, *, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """:func:`nllkit.binary_cross_entropy_with_logits` with stored settings."""

    def __init__(
        self, weight: Array | None = None, *, reduction: str = "mean", pos_weight: Array | None = None
    ) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class PoissonNLLLoss(_Loss):
    """:func:`nllkit.poisson_nll_loss` with stored settings."""

    def __init__(
        self, log_input: bool = True, full: bool = False, *, eps: float = 1e-8, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Array, target: Array) -> Array:
        return poisson_nll_loss(log_input, target, self.log_input, self.full, self.eps, self.reduction)


class GaussianNLLLoss(_Loss):
    """:func:`nllkit.gaussian_nll_loss` with stored settings (keyword-only, as in PyTorch)."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Array, target: Array, var: Array | float) -> Array:
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class KLDivLoss(_Loss):
    """:func:`nllkit.kl_div` with stored settings."""

    def __init__(self, *, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction, ("none", "mean", "batchmean", "sum"))
        self.log_target = log_target

    def forward(self, input: Array, target: Array) -> Array:
        return kl_div(input, target, self.reduction, self.log_target)
