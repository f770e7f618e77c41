"""What the discrete families share: masking outside the support and per-value derivatives.

A fit compresses discrete data into a value-count :class:`Sample`, so the NLL,
its gradient and its Hessian are weighted sums over the *distinct* values.
Each family therefore gives the derivatives of ``log f(x; theta)`` per value
(:meth:`DiscreteFamily.derivs`) and this base class sums them; the
zero-inflated families reuse the derivatives of their base family.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np

from nllkit.distributions._family import Family, FloatArray, Sample, Support

COUNTS = Support(0.0, math.inf, integer=True)


class DiscreteFamily(Family):
    """A family on the integers: subclasses give ``_logpmf`` and ``derivs``."""

    discrete: ClassVar[bool] = True
    support: ClassVar[Support] = COUNTS

    @abc.abstractmethod
    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        """Log mass at ``x`` inside the support (other values are masked by :meth:`logpdf`)."""

    def _outside(self, x: FloatArray, *theta: Any) -> FloatArray:
        """Where ``x`` is outside the support; families whose support depends on ``theta`` override it."""
        return self.support.outside(x)

    @abc.abstractmethod
    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        """Per-value gradient ``(m, p)`` and Hessian ``(m, p, p)`` of ``log f(x; theta)`` in ``theta``.

        ``x`` holds ``m`` values inside the support and ``theta`` one set of
        parameters; the Hessian is None unless ``hess``.
        """

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        x = np.asarray(x, dtype=float)
        bad = self._outside(x, *theta)
        if not np.any(bad):
            return self._logpmf(x, *theta)
        # Evaluate at a harmless in-support value where x is outside, then mask.
        safe = np.where(bad, self.support.lower, x)
        return np.where(bad, -np.inf, self._logpmf(safe, *theta))

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        theta = np.asarray(theta, dtype=float)
        grad, _ = self.derivs(sample.x, theta, hess=False)
        return self.nll_value(theta, sample), -(sample.w @ grad)

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        _, hess = self.derivs(sample.x, np.asarray(theta, dtype=float), hess=True)
        assert hess is not None
        return -np.einsum("i,ijk->jk", sample.w, hess)


def floor_cdf(x: Any, cdf_at_floor: Any) -> FloatArray:
    """A discrete cdf: ``cdf_at_floor(floor(x))`` for ``x >= 0`` and 0 below (NaN stays NaN)."""
    x = np.asarray(x, dtype=float)
    k = np.floor(np.where(x < 0.0, 0.0, x))
    return np.where(x < 0.0, 0.0, cdf_at_floor(k))


def interior_start(p: float, n: float) -> float:
    """A probability estimate moved off 0 and 1 by half an observation, so a start is inside (0, 1)."""
    margin = 0.5 / (n + 1.0)
    return min(max(p, margin), 1.0 - margin)


def stack(*columns: Any) -> FloatArray:
    """Per-value derivative columns (scalars broadcast) as an ``(m, p)`` array."""
    return np.stack(np.broadcast_arrays(*columns), axis=-1).astype(float)


def positive_start(value: float, n: float) -> float:
    """A rate or mean estimate moved off 0 by half an observation's worth, so a start is positive."""
    return max(value, 0.5 / (n + 1.0))


def symmetric(entries: dict[tuple[int, int], Any], m: int, p: int) -> FloatArray:
    """Per-value ``(m, p, p)`` Hessians from their upper-triangle entries (scalars broadcast, others 0)."""
    hess = np.zeros((m, p, p))
    for (i, j), value in entries.items():
        hess[:, i, j] = hess[:, j, i] = value
    return hess
