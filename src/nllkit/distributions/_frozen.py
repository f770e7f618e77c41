"""A distribution with its parameters fixed: what calling a family, or a fit, gives back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nllkit.distributions._family import Family, FloatArray


class Frozen:
    r"""A member of a :class:`~nllkit.distributions.Family` with fixed parameters.

    Parameters
    ----------
    family : Family
        The family.
    theta : mapping or sequence
        The parameters by name or in the order of ``family.param_names``; they are
        checked against the family's domains.

    Notes
    -----
    Every method forwards to the family with the frozen parameters, so a frozen
    distribution and its family always agree. ``pdf`` is :math:`e^{\log f}`, and
    for discrete families ``logpmf``/``pmf`` name the same functions.

    Examples
    --------
    >>> from nllkit.distributions._positive import gamma
    >>> d = gamma(shape=2.0, scale=3.0)
    >>> d
    gamma(shape=2, scale=3)
    >>> float(d.mean()), float(d.var())
    (6.0, 18.0)
    >>> round(float(d.cdf(d.ppf(0.25))), 12)
    0.25
    """

    def __init__(self, family: Family, theta: Mapping[str, Any] | Sequence[Any] | FloatArray) -> None:
        self.family = family
        self.theta = family.theta(theta if isinstance(theta, Mapping) else list(theta))

    @property
    def params(self) -> dict[str, float]:
        """The parameters by name (a fresh dict)."""
        return {name: float(v) for name, v in zip(self.family.param_names, self.theta, strict=True)}

    def logpdf(self, x: Any) -> FloatArray:
        """Log density (log mass for a discrete family); ``-inf`` outside the support."""
        return self.family.logpdf(x, *self.theta)

    def pdf(self, x: Any) -> FloatArray:
        return np.exp(self.logpdf(x))

    logpmf = logpdf
    pmf = pdf

    def cdf(self, x: Any) -> FloatArray:
        return self.family.cdf(x, *self.theta)

    def sf(self, x: Any) -> FloatArray:
        """The survival function :math:`P(X > x)`."""
        return self.family.sf(x, *self.theta)

    def logcdf(self, x: Any) -> FloatArray:
        r"""The log of the cdf, :math:`\log F(x)`, accurate far in the lower tail where :math:`F` underflows.

        Examples
        --------
        >>> from scipy import stats
        >>> from nllkit.distributions._normal import normal
        >>> d = normal(loc=1.0, scale=2.0)
        >>> x = [-80.0, 0.0, 3.0]
        >>> bool(np.allclose(d.logcdf(x), stats.norm(1.0, 2.0).logcdf(x), rtol=1e-12))
        True
        """
        return self.family.logcdf(x, *self.theta)

    def logsf(self, x: Any) -> FloatArray:
        r"""The log of the survival function, :math:`\log S(x)`, accurate far in the upper tail.

        Examples
        --------
        >>> from scipy import stats
        >>> from nllkit.distributions._positive import weibull
        >>> d = weibull(shape=1.5, scale=2.0)
        >>> x = [0.5, 2.0, 300.0]
        >>> bool(np.allclose(d.logsf(x), stats.weibull_min(1.5, scale=2.0).logsf(x), rtol=1e-12))
        True
        """
        return self.family.logsf(x, *self.theta)

    def ppf(self, q: Any) -> FloatArray:
        """The quantile function, the inverse of :meth:`cdf`."""
        return self.family.ppf(q, *self.theta)

    def mean(self) -> FloatArray:
        return self.family.mean(*self.theta)

    def var(self) -> FloatArray:
        return self.family.var(*self.theta)

    def std(self) -> FloatArray:
        return np.sqrt(self.var())

    def sample(self, rng: Any = None, size: Any = None) -> FloatArray:
        """Random draws; ``rng`` is a Generator, a seed or None (fresh entropy)."""
        return self.family.sample(np.random.default_rng(rng), size, *self.theta)

    def nll(self, data: Any, weights: Any = None, reduction: str = "sum") -> float | FloatArray:
        """The negative log-likelihood of ``data``; see :meth:`Family.nll`."""
        return self.family.nll(self.params, data, weights, reduction)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: the family's name and the parameters."""
        return {"family": self.family.name, "params": self.params}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frozen):
            return NotImplemented
        return self.family is other.family and bool(np.array_equal(self.theta, other.theta))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value:.6g}" for name, value in self.params.items())
        return f"{self.family.name}({args})"
