r"""Families on a finite set of outcomes: Bernoulli, binomial and categorical.

Their MLEs are closed-form frequencies from additive counts. The binomial's
number of trials and the categorical's number of categories are structure, not
estimated parameters: a fit reads them from ``fixed={'trials': n}`` or from the
data through :meth:`~nllkit.distributions.Family.bind`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
from scipy import special, stats

from nllkit.distributions._discrete import DiscreteFamily, floor_cdf, interior_start, stack, symmetric
from nllkit.distributions._family import UNIT, Domain, Family, FloatArray, Sample, Support

TRIALS = Domain("fixed", integer=True)
_NO_TRIALS = "the number of trials must be given, e.g. fixed={'trials': 10}"


def _binomial_logpmf(x: FloatArray, trials: Any, p: Any) -> FloatArray:
    """``log C(n, x) + x log p + (n - x) log(1 - p)`` for ``0 <= x <= n``."""
    trials, p = np.asarray(trials, dtype=float), np.asarray(p, dtype=float)
    log_choose = special.gammaln(trials + 1.0) - special.gammaln(x + 1.0) - special.gammaln(trials - x + 1.0)
    return log_choose + special.xlogy(x, p) + special.xlog1py(trials - x, -p)


def _binomial_dp(x: FloatArray, trials: float, p: float, hess: bool) -> tuple[FloatArray, FloatArray | None]:
    """First and second derivatives of the binomial log mass in ``p``, per value."""
    grad = x / p - (trials - x) / (1.0 - p)
    return grad, (-x / p**2 - (trials - x) / (1.0 - p) ** 2) if hess else None


class DataStructured(DiscreteFamily):
    """A family whose support depends on a parameter: :meth:`nll` checks data against the bound family."""

    def specialised(self, theta: FloatArray) -> Family:
        """The family with the structure ``theta`` implies (its support), ``self`` when already bound."""
        return self

    def nll(
        self,
        params: Mapping[str, Any] | Sequence[Any],
        data: Any,
        weights: Any = None,
        reduction: str = "sum",
    ) -> float | FloatArray:
        family = self.specialised(self.theta(params))
        if family is self:
            return super().nll(params, data, weights, reduction)
        return family.nll(params, data, weights, reduction)

    def __call__(self, *args: Any, **params: Any) -> Any:
        """A frozen distribution of the bound family, so its support is the one its parameters imply."""
        theta = self.theta(params if params else args)
        return Family.__call__(self.specialised(theta), *theta)


class Bernoulli(DiscreteFamily):
    r"""Bernoulli distribution on {0, 1} with success probability ``p``.

    .. math:: \log f(y) = y \log p + (1 - y) \log(1 - p)

    The MLE is the weighted share of ones.

    Examples
    --------
    >>> from nllkit.distributions._categorical import bernoulli
    >>> float(bernoulli.logpdf(1, 0.25)), float(bernoulli.var(0.25))
    (-1.3862943611198906, 0.1875)
    """

    name: ClassVar[str] = "bernoulli"
    param_names: ClassVar[tuple[str, ...]] = ("p",)
    domains = (UNIT,)
    support = Support(0.0, 1.0, integer=True)

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        return _binomial_logpmf(x, 1.0, theta[0])

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        grad, second = _binomial_dp(x, 1.0, theta[0], hess)
        return stack(grad), None if second is None else second[:, None, None]

    def mle(self, sample: Sample) -> FloatArray:
        return np.array([sample.mean(sample.x)])

    def start(self, sample: Sample) -> FloatArray:
        return np.array([interior_start(sample.mean(sample.x), sample.n)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        p = np.asarray(theta[0], dtype=float)
        return floor_cdf(x, lambda k: np.where(k >= 1.0, 1.0, 1.0 - p))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return stats.bernoulli.ppf(q, theta[0])

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        p = np.asarray(theta[0], dtype=float)
        return p * (1.0 - p)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return (rng.random(size) < theta[0]).astype(float)


class Binomial(DataStructured):
    r"""Binomial distribution: successes in ``trials`` independent trials with success probability ``p``.

    .. math:: \log f(y) = \log\binom{n}{y} + y \log p + (n - y) \log(1 - p),
       \qquad y = 0, \dots, n

    ``trials`` is structural (a :class:`~nllkit.distributions.Domain` of kind
    ``'fixed'``): a fit never estimates it and must receive it as
    ``fixed={'trials': n}``; its gradient entry is 0. The MLE of ``p`` is
    :math:`\sum_i w_i y_i / (n \sum_i w_i)`.

    Examples
    --------
    >>> from nllkit.distributions._categorical import binomial
    >>> round(float(binomial.logpdf(3, 10, 0.25)), 12)
    -1.38516584774
    >>> binomial.bind(Sample(np.array([3.0]), np.array([1.0])), {})
    Traceback (most recent call last):
    ...
    ValueError: binomial: the number of trials must be given, e.g. fixed={'trials': 10}
    """

    name: ClassVar[str] = "binomial"
    param_names: ClassVar[tuple[str, ...]] = ("trials", "p")
    domains = (TRIALS, UNIT)
    trials: ClassVar[int | None] = None

    def _outside(self, x: FloatArray, *theta: Any) -> FloatArray:
        return self.support.outside(x) | (x > np.asarray(theta[0], dtype=float))

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        return _binomial_logpmf(x, *theta)

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        grad, second = _binomial_dp(x, theta[0], theta[1], hess)
        return stack(0.0, grad), None if second is None else symmetric({(1, 1): second}, x.size, 2)

    def specialised(self, theta: FloatArray) -> Family:
        return binomial_with(int(theta[0]))

    def bind(self, sample: Sample, fixed: Mapping[str, float]) -> Family:
        """The binomial with the given number of trials, after checking the data lie in [0, trials]."""
        if "trials" not in fixed:
            raise ValueError(f"{self.name}: {_NO_TRIALS}")
        trials = fixed["trials"]
        if not TRIALS.contains(float(trials)):
            raise ValueError(f"{self.name}: parameter trials must be {TRIALS.describe()}; got {trials!r}")
        bound = binomial_with(int(trials))
        bound.check_data(sample.x)
        return bound

    def _trials(self) -> int:
        if self.trials is None:
            raise ValueError(f"{self.name}: {_NO_TRIALS}")
        return self.trials

    def mle(self, sample: Sample) -> FloatArray:
        trials = self._trials()
        return np.array([trials, sample.mean(sample.x) / trials])

    def start(self, sample: Sample) -> FloatArray:
        trials, p = self.mle(sample)
        return np.array([trials, interior_start(p, sample.n * trials)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return stats.binom.cdf(x, *theta)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return stats.binom.ppf(q, *theta)

    def mean(self, *theta: Any) -> FloatArray:
        trials, p = (np.asarray(t, dtype=float) for t in theta)
        return trials * p

    def var(self, *theta: Any) -> FloatArray:
        trials, p = (np.asarray(t, dtype=float) for t in theta)
        return trials * p * (1.0 - p)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.binomial(np.asarray(theta[0], dtype=np.int64), theta[1], size).astype(float)


@functools.cache
def binomial_with(trials: int) -> Binomial:
    """The binomial family bound to ``trials``: its support is [0, trials], so data errors name the bound."""
    attrs = {"trials": trials, "support": Support(0.0, float(trials), integer=True), "__doc__": Binomial.__doc__}
    return cast(Binomial, type("Binomial", (Binomial,), attrs)())


def _take(table: FloatArray, k: Any) -> FloatArray:
    """``table[..., k]`` with the leading axes of ``table`` broadcast against ``k``."""
    k = np.asarray(k)
    shape = np.broadcast_shapes(k.shape, table.shape[:-1])
    index = np.broadcast_to(k, shape).astype(np.intp)[..., None]
    return np.take_along_axis(np.broadcast_to(table, (*shape, table.shape[-1])), index, axis=-1)[..., 0]


class Categorical(DataStructured):
    r"""Categorical distribution on {0, ..., K-1} with probabilities ``probs``.

    .. math:: \log f(y) = \log p_y, \qquad \sum_k p_k = 1

    ``categorical(probs=[...])`` gives a frozen distribution, and
    ``categorical.logpdf(y, probs)`` takes probabilities along the last axis
    (broadcast against ``y``). A fit binds the family to ``K = max(data) + 1``
    categories with parameters ``p0, ..., p{K-1}``; they live on the simplex,
    so the optimizer's coordinates are the ``K - 1`` log-ratios
    :math:`u_j = \log(p_j / p_{K-1})` (the last category is always observed)
    and the probabilities their softmax (see :meth:`from_unconstrained`);
    they cannot be held fixed. The MLE is the weighted frequencies.

    Examples
    --------
    >>> from nllkit.distributions._categorical import categorical
    >>> float(categorical.logpdf(2, [0.2, 0.3, 0.5]))
    -0.6931471805599453
    >>> categorical.bind(Sample(np.array([0.0, 2.0]), np.array([1.0, 3.0])), {})
    <nllkit family categorical(p0, p1, p2)>
    """

    name: ClassVar[str] = "categorical"
    param_names: ClassVar[tuple[str, ...]] = ("probs",)
    domains = (UNIT,)
    k: ClassVar[int | None] = None

    # --- probabilities and their validation -----------------------------------------------------

    @staticmethod
    def _probs(theta: Sequence[Any]) -> FloatArray:
        """Probabilities along the last axis, from one array or from ``K`` per-category parameters."""
        if len(theta) == 1:
            return np.atleast_1d(np.asarray(theta[0], dtype=float))
        return np.stack(np.broadcast_arrays(*(np.asarray(t, dtype=float) for t in theta)), axis=-1)

    def theta(self, params: Mapping[str, Any] | Sequence[Any]) -> FloatArray:
        """The probabilities as a vector, given as ``probs=[...]``, by name ``p0, ...`` or in order.

        Each must be in [0, 1] and they must sum to 1 (within 1e-9; they are
        then renormalized exactly).
        """
        if isinstance(params, Mapping):
            if set(params) == {"probs"}:
                values = params["probs"]
            elif self.k is not None and set(params) == set(self.param_names):
                values = [params[p] for p in self.param_names]
            else:
                expected = "probs" + ("" if self.k is None else f" or {', '.join(self.param_names)}")
                raise ValueError(f"{self.name}: parameters must be {expected}; got {', '.join(map(str, params))}")
        else:
            values = params[0] if len(params) == 1 and np.ndim(params[0]) == 1 else params
        try:
            probs = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{self.name}: probs must be a sequence of real numbers; got {values!r}") from None
        if probs.ndim != 1 or probs.size == 0 or (self.k is not None and probs.size != self.k):
            size = "a non-empty 1-D sequence" if self.k is None else f"{self.k} probabilities"
            raise ValueError(f"{self.name}: probs must be {size}; got shape {probs.shape}")
        bad = ~((probs >= 0.0) & (probs <= 1.0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{self.name}: parameter p{k} must be in [0, 1]; got {probs[k].item()!r}")
        total = float(probs.sum())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"{self.name}: probs must sum to 1; got sum {total!r}")
        return probs / total

    # --- structure ------------------------------------------------------------------------------

    def specialised(self, theta: FloatArray) -> Family:
        return categorical_with(theta.size)

    def bind(self, sample: Sample, fixed: Mapping[str, float]) -> Family:
        """The family with ``K = max(data) + 1`` categories (or this one's ``K`` when already bound)."""
        if fixed:
            raise ValueError(
                f"{self.name}: probabilities cannot be held fixed (they share the simplex); "
                f"got fixed {', '.join(map(str, fixed))}"
            )
        if sample.x.size == 0:
            raise ValueError(f"{self.name}: data must not be empty; got 0 values")
        self.check_data(sample.x)
        return self if self.k is not None else categorical_with(self._size(sample))

    def _outside(self, x: FloatArray, *theta: Any) -> FloatArray:
        return self.support.outside(x) | (x >= self._probs(theta).shape[-1])

    # --- the likelihood -------------------------------------------------------------------------

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        with np.errstate(divide="ignore"):
            return _take(np.log(self._probs(theta)), x)

    def _size(self, sample: Sample) -> int:
        """``K``: this family's, or ``max(data) + 1`` when not yet bound."""
        return self.k if self.k is not None else int(sample.x.max()) + 1

    def _counts(self, sample: Sample, k: int) -> FloatArray:
        return np.bincount(sample.x.astype(np.intp), weights=sample.w, minlength=k)

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        rows, index = np.arange(x.size), x.astype(np.intp)
        p = theta[index]
        grad = np.zeros((x.size, theta.size))
        grad[rows, index] = 1.0 / p
        if not hess:
            return grad, None
        second = np.zeros((x.size, theta.size, theta.size))
        second[rows, index, index] = -1.0 / p**2
        return grad, second

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        # From the K category counts: the per-value (m, K) arrays of derivs would cost K times more.
        theta = np.asarray(theta, dtype=float)
        counts = self._counts(sample, theta.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = np.where(counts > 0.0, -counts / theta, 0.0)
        return -float(special.xlogy(counts, theta).sum()), grad

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        theta = np.asarray(theta, dtype=float)
        counts = self._counts(sample, theta.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.diag(np.where(counts > 0.0, counts / theta**2, 0.0))

    def mle(self, sample: Sample) -> FloatArray:
        return self._counts(sample, self._size(sample)) / sample.n

    def start(self, sample: Sample) -> FloatArray:
        # Half a count in every category keeps the start inside the simplex.
        counts = self._counts(sample, self._size(sample)) + 0.5
        return counts / counts.sum()

    # --- the simplex transform ------------------------------------------------------------------

    def to_unconstrained(self, theta: FloatArray) -> FloatArray:
        """The ``K - 1`` log-ratios :math:`u_j = \\log(p_j / p_{K-1})`."""
        log_p = np.log(np.asarray(theta, dtype=float))
        return log_p[:-1] - log_p[-1]

    def from_unconstrained(self, u: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The softmax of ``(u, 0)``, its Jacobian ``(K, K-1)`` and second derivatives ``(K, K-1, K-1)``.

        With :math:`p = \\mathrm{softmax}(u, 0)`:
        :math:`\\partial p_k / \\partial u_j = p_k (\\delta_{kj} - p_j)` and
        :math:`\\partial^2 p_k / \\partial u_i \\partial u_j = p_k (\\delta_{ki} - p_i)(\\delta_{kj} - p_j)
        - p_k p_j (\\delta_{ij} - p_i)`.
        """
        u = np.asarray(u, dtype=float)
        p = special.softmax(np.append(u, 0.0))
        m = u.size
        delta = np.eye(p.size)[:, :m]  # delta[k, j]
        centred = delta - p[:m]  # (delta_kj - p_j)
        jac = p[:, None] * centred
        inner = np.eye(m) - p[:m][:, None]  # (delta_ij - p_i), indexed [i, j]
        second = p[:, None, None] * (centred[:, :, None] * centred[:, None, :] - p[:m] * inner)
        return p, jac, second

    # --- distribution functions -----------------------------------------------------------------

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        cumulative = np.cumsum(self._probs(theta), axis=-1)
        last = cumulative.shape[-1] - 1
        return floor_cdf(x, lambda k: _take(cumulative, np.minimum(k, last)))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        """The smallest ``k`` with ``cdf(k) >= q``; ``ppf(0) = -1`` as in scipy's discrete families."""
        cumulative = np.cumsum(self._probs(theta), axis=-1)
        q = np.asarray(q, dtype=float)
        below = (cumulative < q[..., None]).sum(axis=-1)
        k = np.minimum(below, cumulative.shape[-1] - 1).astype(float)
        return np.where((q < 0.0) | (q > 1.0) | np.isnan(q), np.nan, np.where(q == 0.0, -1.0, k))

    def mean(self, *theta: Any) -> FloatArray:
        probs = self._probs(theta)
        return probs @ np.arange(probs.shape[-1], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        probs = self._probs(theta)
        k = np.arange(probs.shape[-1], dtype=float)
        mean = probs @ k
        return probs @ (k * k) - mean * mean

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        # Inverse cdf of uniforms in (0, 1]: broadcasts over batched probabilities like every other family.
        return self.ppf(1.0 - rng.random(size), *theta)


@functools.cache
def categorical_with(k: int) -> Categorical:
    """The categorical family on {0, ..., k-1}, with parameters ``p0, ..., p{k-1}``."""
    attrs = {
        "k": k,
        "param_names": tuple(f"p{j}" for j in range(k)),
        "domains": (UNIT,) * k,
        "support": Support(0.0, float(k - 1), integer=True),
        "__doc__": Categorical.__doc__,
    }
    return cast(Categorical, type("Categorical", (Categorical,), attrs)())


bernoulli = Bernoulli()
binomial = Binomial()
categorical = Categorical()
