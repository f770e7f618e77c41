"""The warnings a fit gives instead of failing silently."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "FitWarning", "HessianWarning"]


class FitWarning(UserWarning):
    """Base class of nllkit's fitting warnings: filter this one to silence them all."""


class ConvergenceWarning(FitWarning):
    """The optimizer stopped before the gradient of the NLL was about zero (``Fit.converged`` is False)."""


class HessianWarning(FitWarning):
    """The observed information is not positive definite (or the estimate is on the boundary): NaN standard errors."""
