"""Location-scale families on the real line: Student's t, Laplace and logistic.

Each is the law of :math:`\\mu + \\sigma Z` for a symmetric standard law with
density :math:`f_0(z) = e^{-g(z)}` (possibly with shape parameters, the t's
degrees of freedom). Per value the NLL is :math:`\\log\\sigma + g(z)` with
:math:`z = (x-\\mu)/\\sigma`, so with :math:`g', g''` the derivatives in
:math:`z`

.. math::
   \\partial_\\mu = -\\frac{g'}{\\sigma}, \\quad
   \\partial_\\sigma = \\frac{1 - z g'}{\\sigma}, \\quad
   \\partial^2_{\\mu\\mu} = \\frac{g''}{\\sigma^2}, \\quad
   \\partial^2_{\\mu\\sigma} = \\frac{g' + z g''}{\\sigma^2}, \\quad
   \\partial^2_{\\sigma\\sigma} = \\frac{2 z g' + z^2 g'' - 1}{\\sigma^2},

which :class:`LocationScale` implements once for all three.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np
from scipy import special

from nllkit.distributions._continuous import MemoFamily
from nllkit.distributions._family import POSITIVE, REAL, FloatArray, Sample, Support

_LOG_2 = math.log(2.0)


def weighted_median(x: FloatArray, w: FloatArray) -> float:
    """The weighted median, the midpoint of the two middle values where the weight splits exactly in half.

    That is ``np.median`` for equal weights, and it gives the same value for a
    sample and for its value-count table.
    """
    if np.all(w == w[0]):
        return float(np.median(x))
    order = np.argsort(x, kind="stable")
    xs, cw = x[order], np.cumsum(w[order])
    half = 0.5 * cw[-1]
    i = int(np.searchsorted(cw, half))
    if math.isclose(cw[i], half, rel_tol=1e-12) and i + 1 < xs.size:
        return 0.5 * float(xs[i] + xs[i + 1])
    return float(xs[i])


class LocationScale(MemoFamily):
    """A family :math:`\\mu + \\sigma Z`, ``theta = (*shape, loc, scale)``, with Z symmetric about 0.

    Subclasses give :meth:`_g` (:math:`-\\log f_0`), :meth:`_parts` (it with its
    derivatives, sharing their intermediate arrays) and the standard law's cdf,
    quantiles, variance and sampler; shape parameters come first and add their
    rows through :meth:`_shape_grad` and :meth:`_shape_hess`, which read the
    intermediate arrays :meth:`_parts` left.
    """

    support = Support(-math.inf, math.inf, lower_open=True, upper_open=True)

    # --- the standard law --------------------------------------------------------------------------

    @abc.abstractmethod
    def _g(self, z: FloatArray, *shape: Any) -> FloatArray:
        """:math:`g(z) = -\\log f_0(z)` per value."""

    @abc.abstractmethod
    def _parts(self, z: FloatArray, *shape: Any) -> dict[str, FloatArray]:
        """Per value: ``'g'``, ``'g1'`` and ``'g2'`` (:math:`g, g', g''`), and extras for the shape rows."""

    @abc.abstractmethod
    def _std_cdf(self, z: FloatArray, *shape: Any) -> FloatArray: ...

    def _std_logcdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        r""":math:`\log F_0(z)`: below 0 the log of the cdf, above it ``log1p`` of minus the tail (symmetry)."""
        z = np.asarray(z, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(z < 0.0, np.log(self._std_cdf(z, *shape)), np.log1p(-self._std_cdf(-z, *shape)))

    @abc.abstractmethod
    def _std_ppf(self, q: FloatArray, *shape: Any) -> FloatArray: ...

    @abc.abstractmethod
    def _std_var(self, *shape: Any) -> FloatArray: ...

    @abc.abstractmethod
    def _std_sample(self, rng: np.random.Generator, size: Any, *shape: Any) -> FloatArray: ...

    def _shape_grad(self, parts: dict[str, FloatArray], sample: Sample, *shape: float) -> list[float]:
        """The NLL's derivatives in the shape parameters."""
        return []

    def _shape_hess(
        self, parts: dict[str, FloatArray], z: FloatArray, scale: float, sample: Sample, *shape: float
    ) -> FloatArray:
        """Rows of the Hessian for the shape parameters, over all of ``theta``."""
        return np.empty((0, len(shape) + 2))

    def _start_shape(self, sample: Sample) -> tuple[float, ...]:
        return ()

    # --- the family --------------------------------------------------------------------------------

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return -self._g((np.asarray(x, dtype=float) - loc) / scale, *shape) - np.log(scale)

    def _at(self, theta: FloatArray, sample: Sample) -> tuple[FloatArray, dict[str, FloatArray]]:
        """:math:`z` and :meth:`_parts` at ``theta``: shared by the gradient and Hessian there."""

        def compute() -> tuple[FloatArray, dict[str, FloatArray]]:
            z = (sample.x - theta[-2]) / theta[-1]
            return z, self._parts(z, *theta[:-2])

        return self.at(theta, sample, compute)

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        *shape, _, scale = theta
        z, parts = self._at(theta, sample)
        g1 = parts["g1"]
        value = sample.sum(parts["g"]) + sample.n * math.log(scale)
        location = -sample.sum(g1) / scale
        spread = (sample.n - sample.sum(z * g1)) / scale
        return value, np.array([*self._shape_grad(parts, sample, *shape), location, spread])

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        *shape, _, scale = theta
        z, parts = self._at(theta, sample)
        g1, zg2 = parts["g1"], z * parts["g2"]
        cross = sample.sum(g1 + zg2)
        block = np.array([[sample.sum(parts["g2"]), cross], [cross, sample.sum(z * (2.0 * g1 + zg2)) - sample.n]])
        block /= scale**2
        rows = self._shape_hess(parts, z, scale, sample, *shape)
        k = len(shape)
        hess = np.empty((k + 2, k + 2))
        hess[:k] = rows
        hess[k:, :k] = rows[:, k:].T
        hess[k:, k:] = block
        return hess

    def start(self, sample: Sample) -> FloatArray:
        """Median, and the median absolute deviation over the standard law's (the quartile)."""
        loc = weighted_median(sample.x, sample.w)
        shape = self._start_shape(sample)
        spread = weighted_median(np.abs(sample.x - loc), sample.w)
        if not spread > 0.0:  # more than half the weight on one value: fall back on the rms deviation
            spread = math.sqrt(sample.mean((sample.x - loc) ** 2))
        scale = spread / float(self._std_ppf(np.float64(0.75), *shape))
        return np.array([*shape, loc, scale if 0.0 < scale < math.inf else 1.0])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return self._std_cdf((np.asarray(x, dtype=float) - loc) / scale, *shape)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return self._std_cdf((loc - np.asarray(x, dtype=float)) / scale, *shape)

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return self._std_logcdf((np.asarray(x, dtype=float) - loc) / scale, *shape)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return self._std_logcdf((loc - np.asarray(x, dtype=float)) / scale, *shape)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        return loc + scale * self._std_ppf(np.asarray(q, dtype=float), *shape)

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[-2], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        *shape, _, scale = theta
        return np.asarray(scale, dtype=float) ** 2 * self._std_var(*shape)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        *shape, loc, scale = theta
        if size is None:  # one independent draw per broadcast parameter value
            size = np.broadcast_shapes(*(np.shape(p) for p in theta))
        return loc + scale * self._std_sample(rng, size, *shape)


class StudentT(LocationScale):
    r"""Student's t distribution with ``df`` degrees of freedom :math:`\nu`, location and scale.

    .. math::
       \log f(x) = c(\nu) - \log\sigma - \frac{\nu+1}{2}\log\Bigl(1 + \frac{z^2}{\nu}\Bigr),
       \qquad c(\nu) = -\log B\bigl(\tfrac12, \tfrac\nu2\bigr) - \tfrac12\log\nu

    (the beta function keeps :math:`c` accurate for large :math:`\nu`). With
    :math:`r = 1/(\nu + z^2)`, :math:`g' = (\nu+1) z r` and
    :math:`g'' = (\nu+1)(\nu - z^2) r^2`; the derivatives in :math:`\nu` are

    .. math::
       \partial_\nu = -c' + \tfrac12\log(1 + z^2/\nu) - \frac{\nu+1}{2\nu} z^2 r, \quad
       \partial^2_{\nu\mu} = \frac{z r^2 (1 - z^2)}{\sigma}, \quad
       \partial^2_{\nu\sigma} = \frac{z^2 r^2 (1 - z^2)}{\sigma},

    .. math::
       \partial^2_{\nu\nu} = -c'' + \frac{(1-\nu) z^2 r}{2\nu^2} + \frac{(\nu+1) z^2 r^2}{2\nu}.

    The start takes ``df`` from the sample kurtosis (:math:`\nu = 4 + 6/\kappa`,
    at most 100), the location from the median and the scale from the median
    absolute deviation.

    Examples
    --------
    >>> from nllkit.distributions._location_scale import student_t
    >>> round(float(student_t.logpdf(1e6, 3.0, 0.0, 1.0)), 6)
    -54.065707
    """

    name: ClassVar[str] = "student_t"
    param_names: ClassVar[tuple[str, ...]] = ("df", "loc", "scale")
    domains = (POSITIVE, REAL, POSITIVE)
    scale_powers = (0, 1, 1)

    @staticmethod
    def _log1p_q(z: FloatArray, z2: FloatArray, df: Any) -> FloatArray:
        """:math:`\\log(1 + z^2/\\nu)` given :math:`z^2`, also where :math:`z^2` overflowed (|z| > 1e154)."""
        with np.errstate(over="ignore"):
            q = np.asarray(z2 / df, dtype=float)  # an array (not a NumPy scalar) for out=
        out = np.log1p(q, out=q)
        huge = np.isinf(out) & np.isfinite(z)
        if huge.any():  # rare: keep the common path free of a second log
            out = np.where(huge, 2.0 * np.log(np.abs(np.where(huge, z, 1.0))) - np.log(df), out)
        return out

    @staticmethod
    def _const(df: Any) -> Any:
        """:math:`-c(\\nu) = \\log B(\\tfrac12, \\tfrac\\nu2) + \\tfrac12\\log\\nu`."""
        return special.betaln(0.5, 0.5 * df) + 0.5 * np.log(df)

    def _g(self, z: FloatArray, *shape: Any) -> FloatArray:
        (df,) = shape
        with np.errstate(over="ignore"):
            z2 = z * z
        return self._const(df) + 0.5 * (df + 1.0) * self._log1p_q(z, z2, df)

    def _parts(self, z: FloatArray, *shape: Any) -> dict[str, FloatArray]:
        (df,) = shape
        # In place where it can be: the t is fitted iteratively, and at n = 1e6 each temporary
        # is an 8 MB allocation that costs about as much as the arithmetic.
        with np.errstate(over="ignore"):
            z2 = z * z
        r = z2 + df
        np.reciprocal(r, out=r)
        z2r = r * -df
        z2r += 1.0  # z^2 r = 1 - df r, finite (1) where z^2 overflows
        g1 = z * r
        g1 *= df + 1.0
        g2 = z2r * -2.0
        g2 += 1.0
        g2 *= r
        g2 *= df + 1.0
        log1p_q = self._log1p_q(z, z2, df)
        g = log1p_q * (0.5 * (df + 1.0))
        g += self._const(df)
        return {"g": g, "g1": g1, "g2": g2, "r": r, "z2r": z2r, "log1p_q": log1p_q}

    def _shape_grad(self, parts: dict[str, FloatArray], sample: Sample, *shape: float) -> list[float]:
        (df,) = shape
        c1 = 0.5 * (special.digamma(0.5 * (df + 1.0)) - special.digamma(0.5 * df)) - 0.5 / df
        per_value = 0.5 * parts["log1p_q"] - (df + 1.0) / (2.0 * df) * parts["z2r"]
        return [sample.sum(per_value) - sample.n * c1]

    def _shape_hess(
        self, parts: dict[str, FloatArray], z: FloatArray, scale: float, sample: Sample, *shape: float
    ) -> FloatArray:
        (df,) = shape
        r, z2r = parts["r"], parts["z2r"]
        c2 = 0.25 * (special.polygamma(1, 0.5 * (df + 1.0)) - special.polygamma(1, 0.5 * df)) + 0.5 / df**2
        d_dd = sample.sum((1.0 - df) / (2.0 * df**2) * z2r + (df + 1.0) / (2.0 * df) * z2r * r) - sample.n * c2
        tail = r - z2r  # (1 - z^2) r
        d_dl = sample.sum(z * r * tail) / scale
        d_ds = sample.sum(z2r * tail) / scale
        return np.array([[d_dd, d_dl, d_ds]])

    def _start_shape(self, sample: Sample) -> tuple[float, ...]:
        centred = sample.x - sample.mean(sample.x)
        with np.errstate(over="ignore", invalid="ignore"):
            squares = centred * centred
            m2 = sample.mean(squares)
            excess = sample.mean(squares * squares) / m2**2 - 3.0
        df = 4.0 + 6.0 / excess if excess > 0.0 and math.isfinite(excess) else 100.0
        return (min(df, 100.0),)

    def _std_cdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        return special.stdtr(shape[0], z)

    def _std_ppf(self, q: FloatArray, *shape: Any) -> FloatArray:
        # stdtrit(df, 0) is +inf, not -inf.
        return np.where(q == 0.0, -np.inf, special.stdtrit(shape[0], q))

    def _std_var(self, *shape: Any) -> FloatArray:
        df = np.asarray(shape[0], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(df > 2.0, df / (df - 2.0), np.where(df > 1.0, np.inf, np.nan))

    def _std_sample(self, rng: np.random.Generator, size: Any, *shape: Any) -> FloatArray:
        return rng.standard_t(shape[0], size=size)

    def mean(self, *theta: Any) -> FloatArray:
        return np.where(np.asarray(theta[0]) > 1.0, np.asarray(theta[1], dtype=float), np.nan)


class Laplace(LocationScale):
    r"""Laplace (double exponential) distribution with location :math:`\mu` and scale :math:`b`.

    .. math:: \log f(x) = -\log 2b - |x - \mu|/b

    The MLE is closed-form: the weighted median and the mean absolute deviation
    about it. The NLL is piecewise linear in :math:`\mu`, so its second
    derivative there is zero almost everywhere; :meth:`nll_hess` puts the
    expected information :math:`n/b^2` in its place (the derivative of the
    score's expectation), which is what the standard error of the median needs.

    Examples
    --------
    >>> from nllkit.distributions._location_scale import laplace
    >>> float(laplace.logpdf(3.0, 1.0, 2.0))
    -2.386294361119891
    """

    name: ClassVar[str] = "laplace"
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")
    domains = (REAL, POSITIVE)
    scale_powers = (1, 1)

    def _g(self, z: FloatArray, *shape: Any) -> FloatArray:
        return np.abs(z) + _LOG_2

    def _parts(self, z: FloatArray, *shape: Any) -> dict[str, FloatArray]:
        return {"g": self._g(z), "g1": np.sign(z), "g2": np.zeros_like(z)}

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        hess = super().nll_hess(theta, sample)
        hess[0, 0] = sample.n / theta[1] ** 2
        return hess

    def mle(self, sample: Sample) -> FloatArray | None:
        def compute() -> FloatArray | None:
            loc = weighted_median(sample.x, sample.w)
            scale = sample.mean(np.abs(sample.x - loc))
            return np.array([loc, scale]) if scale > 0.0 else None

        # The median is the costly part, and a fit asks for the start and then the MLE.
        estimate = self.memo.get(sample, "mle", None, compute)
        return None if estimate is None else estimate.copy()

    def start(self, sample: Sample) -> FloatArray:
        estimate = self.mle(sample)
        return super().start(sample) if estimate is None else estimate

    def _std_cdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        tail = 0.5 * np.exp(-np.abs(z))
        return np.where(z < 0.0, tail, 1.0 - tail)

    def _std_logcdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        # z - log 2 stays finite where 0.5 e^z underflows.
        z = np.asarray(z, dtype=float)
        return np.where(z < 0.0, z - _LOG_2, np.log1p(-0.5 * np.exp(-np.abs(z))))

    def _std_ppf(self, q: FloatArray, *shape: Any) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(q < 0.5, np.log(2.0 * q), -np.log(2.0 - 2.0 * q))

    def _std_var(self, *shape: Any) -> FloatArray:
        return np.float64(2.0)

    def _std_sample(self, rng: np.random.Generator, size: Any, *shape: Any) -> FloatArray:
        return rng.laplace(0.0, 1.0, size=size)


class Logistic(LocationScale):
    r"""Logistic distribution with location :math:`\mu` and scale :math:`s`.

    .. math:: \log f(x) = -|z| - 2\log(1 + e^{-|z|}) - \log s, \qquad z = (x-\mu)/s

    (written with :math:`|z|` so that nothing overflows), with
    :math:`g' = \tanh(z/2)` and :math:`g'' = 2\,\sigma(z)\sigma(-z)`. The start
    is the median and the median absolute deviation over :math:`\log 3`.

    Examples
    --------
    >>> from nllkit.distributions._location_scale import logistic
    >>> round(float(logistic.logpdf(800.0, 0.0, 1.0)), 6)
    -800.0
    """

    name: ClassVar[str] = "logistic"
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")
    domains = (REAL, POSITIVE)
    scale_powers = (1, 1)

    def _g(self, z: FloatArray, *shape: Any) -> FloatArray:
        a = np.abs(z)
        return a + 2.0 * np.log1p(np.exp(-a))

    def _parts(self, z: FloatArray, *shape: Any) -> dict[str, FloatArray]:
        a = np.abs(z)
        e = np.exp(-a)  # in (0, 1]: sigma(z) sigma(-z) = e / (1 + e)^2 without overflow
        return {"g": a + 2.0 * np.log1p(e), "g1": np.tanh(0.5 * z), "g2": 2.0 * e / (1.0 + e) ** 2}

    def _std_cdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        return special.expit(z)

    def _std_logcdf(self, z: FloatArray, *shape: Any) -> FloatArray:
        return special.log_expit(z)

    def _std_ppf(self, q: FloatArray, *shape: Any) -> FloatArray:
        return special.logit(q)

    def _std_var(self, *shape: Any) -> FloatArray:
        return np.float64(math.pi**2 / 3.0)

    def _std_sample(self, rng: np.random.Generator, size: Any, *shape: Any) -> FloatArray:
        return rng.logistic(0.0, 1.0, size=size)


student_t = StudentT()
laplace = Laplace()
logistic = Logistic()
