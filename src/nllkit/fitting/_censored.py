r"""Censored observations: the input form, their likelihood, and the problem :func:`fit` solves with them.

An observation is *exact* (the value is known), *left-censored* at
:math:`x` (only :math:`X \le x` is known: a detection limit), *right-censored*
at :math:`x` (only :math:`X \ge x`: a survival time at the end of a study) or
*interval-censored* in :math:`(l, u]` (an inspection interval). With
:math:`f, F, S` the family's density, cdf and survival function, the weighted
negative log-likelihood is

.. math::
   \mathrm{NLL}(\theta) = -\sum_{\text{exact}} w_i \log f(x_i)
     - \sum_{\text{left}} w_i \log F(x_i)
     - \sum_{\text{right}} w_i \log S(x_i)
     - \sum_{\text{interval}} w_i \log\bigl(F(u_i) - F(l_i)\bigr),

every term in log space (:meth:`Family.logcdf`, :meth:`Family.logsf`, and
:func:`log_probability` for intervals), so that observations far in a tail
keep their digits.

:class:`Censored` holds the observations as pairs of bounds ``(lower, upper)``
in the convention of fitdistrplus's ``fitdistcens`` (and of R's
``Surv(type='interval2')``): ``lower == upper`` is an exact value, a missing
or ``-inf`` lower bound a left-censored one, a missing or ``inf`` upper bound a
right-censored one, and two different finite bounds an interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from nllkit.distributions._continuous import log1mexp
from nllkit.distributions._family import Family, FloatArray, Sample
from nllkit.fitting._fit import as_real_array, check_finite
from nllkit.fitting._problem import Problem, Solution

__all__ = ["Censored", "CensoredProblem", "CensoredSample", "censored_sample", "log_probability"]

#: The central-difference step of the censored terms' gradient, in each parameter's
#: unconstrained coordinate (log of a positive parameter): about the cube root of the
#: machine epsilon, where truncation and rounding errors balance.
_STEP = 1e-5
#: Without exact values, a mean NLL this close to 0 means every row has probability about 1.
_DEGENERATE = 1e-6


def _real_array(fn: str, name: str, values: Any) -> FloatArray:
    """A flat float64 copy of ``values``; None entries become NaN (a missing bound)."""
    array = np.asarray(values)
    if array.dtype.kind == "O":  # a list with None in it: None means a missing bound, as NaN does
        try:
            array = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{fn}: {name} must be real numbers; got {array.dtype} values") from None
    return as_real_array(fn, name, array).copy()


def _stack(exact: FloatArray, left: FloatArray, right: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """Rows of bounds ``(2, m)`` in the order exact, left-censored, right-censored, interval."""
    return np.array(
        [
            np.concatenate([exact, np.full(left.size, -np.inf), right, lower]),
            np.concatenate([exact, left, np.full(right.size, np.inf), upper]),
        ]
    )


def _bad_rows(fn: str, rule: str, lower: FloatArray, upper: FloatArray, bad: FloatArray) -> ValueError:
    """The error for rows that break ``rule``: how many, and the first one with its bounds."""
    where = np.flatnonzero(bad)
    i = int(where[0])
    return ValueError(
        f"{fn}: {rule}; {where.size} row(s) are not, the first is row {i} "
        f"(lower {lower[i].item()!r}, upper {upper[i].item()!r})"
    )


class Censored:
    r"""Observations known exactly or only up to an interval: the data form of a censored fit.

    Mirrors :class:`scipy.stats.CensoredData`: pass :func:`nllkit.fitting.fit`
    a ``Censored`` as its data. Each row is a pair of bounds,
    :math:`\text{lower} \le X \le \text{upper}`:

    ==================  ==================  ==========================================
    lower               upper               the observation
    ==================  ==================  ==========================================
    ``x``               ``x``               exact: :math:`X = x`
    ``-inf`` (or NaN)   ``x``               left-censored: :math:`X \le x`
    ``x``               ``inf`` (or NaN)    right-censored: :math:`X \ge x`
    ``l``               ``u > l``           interval-censored: :math:`l < X \le u`
    ==================  ==================  ==========================================

    This constructor takes the observations by kind; :meth:`from_bounds`
    takes the two columns of bounds (fitdistrplus's ``fitdistcens``
    convention, what ``nllkit fit --censored`` reads), and
    :meth:`right_censored`/:meth:`left_censored` a value column with a
    censoring indicator (survival data). Rows are numbered exact, left,
    right, interval in that order: weights passed to ``fit`` go one per row,
    in that order.

    Parameters
    ----------
    exact : array_like, optional
        Exactly observed values (finite).
    left : array_like, optional
        Upper bounds of left-censored values (finite): each value is at most its bound.
    right : array_like, optional
        Lower bounds of right-censored values (finite): each value is at least its bound.
    interval : array_like of shape (m, 2), optional
        ``(lower, upper)`` rows with ``lower <= upper``. As in scipy, an infinite
        lower bound makes a row left-censored, an infinite upper bound
        right-censored, and equal bounds exact.

    Attributes
    ----------
    lower, upper : ndarray
        The bounds of every row (read-only): ``-inf``/``inf`` where missing.

    Notes
    -----
    For a continuous law :math:`P(l < X \le u) = P(l \le X \le u) = F(u) - F(l)`,
    so open and closed ends are the same likelihood. A row whose bounds are
    both missing says nothing and is rejected.

    Examples
    --------
    >>> import numpy as np
    >>> from nllkit.fitting import fit
    >>> from nllkit.fitting import Censored
    >>> data = Censored([1.2, 0.4, 2.2], right=[3.0, 3.0], interval=[[0.5, 1.0]])
    >>> data
    Censored(3 exact, 0 left-censored, 2 right-censored, 1 interval-censored)
    >>> data.lower, data.upper
    (array([1.2, 0.4, 2.2, 3. , 3. , 0.5]), array([1.2, 0.4, 2.2, inf, inf, 1. ]))
    >>> result = fit(data, "exponential")
    >>> round(result.params["rate"], 6), result.n
    (0.379431, 6.0)
    >>> Censored.from_bounds([1.0, None, 2.0], [1.0, 0.5, np.nan]).kinds()
    array(['exact', 'left', 'right'], dtype='<U8')
    """

    def __init__(self, exact: Any = (), *, left: Any = (), right: Any = (), interval: Any = ()) -> None:
        fn = "Censored"
        parts = {name: _real_array(fn, name, v) for name, v in (("exact", exact), ("left", left), ("right", right))}
        for name, values in parts.items():
            check_finite(fn, name, values)
        pairs = _real_array(fn, "interval", interval)
        if pairs.size % 2:
            raise ValueError(f"{fn}: interval must be (lower, upper) pairs, shape (m, 2); got {np.shape(interval)}")
        pairs = pairs.reshape(-1, 2)
        nan = np.isnan(pairs).any(axis=1)
        if nan.any():
            raise _bad_rows(fn, "interval bounds must not be NaN", pairs[:, 0], pairs[:, 1], nan)
        lower, upper = _stack(parts["exact"], parts["left"], parts["right"], pairs[:, 0], pairs[:, 1])
        self._set(fn, lower, upper)

    @classmethod
    def from_bounds(cls, lower: Any, upper: Any) -> Censored:
        r"""Observations from two columns of bounds, ``lower <= X <= upper`` row by row.

        The convention of fitdistrplus's ``fitdistcens`` (its ``left`` and
        ``right`` columns): a missing lower bound (NaN, None or ``-inf``)
        means left-censored at the upper bound, a missing upper bound (NaN,
        None or ``inf``) right-censored at the lower bound, equal bounds an
        exact value, two finite bounds an interval. This is the form the
        command line's two-column input takes.

        Parameters
        ----------
        lower, upper : array_like
            One bound per row, the same number of each.

        Returns
        -------
        Censored

        Raises
        ------
        ValueError
            Different lengths, no rows, ``lower > upper``, both bounds missing,
            a lower bound of ``inf`` or an upper bound of ``-inf``.

        Examples
        --------
        >>> Censored.from_bounds([0.0, 1.0, 5.0], [1.0, 1.0, None])
        Censored(1 exact, 0 left-censored, 1 right-censored, 1 interval-censored)
        """
        fn = "Censored.from_bounds"
        lo, hi = _real_array(fn, "lower", lower), _real_array(fn, "upper", upper)
        if lo.size != hi.size:
            raise ValueError(f"{fn}: lower and upper must have one bound per row each; got {lo.size} and {hi.size}")
        missing = np.isnan(lo) & np.isnan(hi)
        if missing.any():
            raise _bad_rows(fn, "each row must have at least one bound", lo, hi, missing)
        self = cls.__new__(cls)
        self._set(fn, np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi))
        return self

    @classmethod
    def right_censored(cls, x: Any, censored: Any) -> Censored:
        """Survival data: values ``x``, each either observed or right-censored (``censored`` True: :math:`X \\ge x`).

        The form of :meth:`scipy.stats.CensoredData.right_censored`.

        Examples
        --------
        >>> Censored.right_censored([3.0, 5.0, 8.0], [False, True, False]).upper
        array([ 3., inf,  8.])
        """
        return cls._indicated("Censored.right_censored", x, censored, right=True)

    @classmethod
    def left_censored(cls, x: Any, censored: Any) -> Censored:
        """Values ``x``, each either observed or left-censored (``censored`` True: :math:`X \\le x`, a detection limit).

        The form of :meth:`scipy.stats.CensoredData.left_censored`.

        Examples
        --------
        >>> Censored.left_censored([0.1, 0.7], [True, False]).lower
        array([-inf,  0.7])
        """
        return cls._indicated("Censored.left_censored", x, censored, right=False)

    @classmethod
    def _indicated(cls, fn: str, x: Any, censored: Any, right: bool) -> Censored:
        values = _real_array(fn, "x", x)
        flags = np.asarray(censored).ravel()
        if flags.dtype.kind not in "biu" or not np.isin(flags, (0, 1)).all():
            raise TypeError(f"{fn}: censored must be booleans (or 0/1); got {flags.dtype} values")
        if flags.size != values.size:
            raise ValueError(f"{fn}: censored must have one flag per value ({values.size}); got {flags.size}")
        flags = flags.astype(bool)
        check_finite(fn, "x", values)
        missing = np.inf if right else -np.inf
        lower = np.where(flags & (not right), -np.inf, values)
        upper = np.where(flags & right, missing, values)
        self = cls.__new__(cls)
        self._set(fn, lower, upper)
        return self

    def _set(self, fn: str, lower: FloatArray, upper: FloatArray) -> None:
        """Check the bounds of every row and keep them."""
        if lower.size == 0:
            raise ValueError(f"{fn}: data must be non-empty; got 0 rows")
        order = ~(lower <= upper)
        if order.any():
            raise _bad_rows(fn, "lower bounds must be at most upper bounds", lower, upper, order)
        empty = (lower == np.inf) | (upper == -np.inf) | ((lower == -np.inf) & (upper == np.inf))
        if empty.any():
            raise _bad_rows(fn, "each row must have a finite bound", lower, upper, empty)
        lower.flags.writeable = False
        upper.flags.writeable = False
        self.lower, self.upper = lower, upper

    # --- what the rows are -------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.lower.size)

    def kinds(self) -> FloatArray:
        """Per row ``'exact'``, ``'left'``, ``'right'`` or ``'interval'``."""
        return np.select(
            [self.lower == self.upper, self.lower == -np.inf, self.upper == np.inf],
            ["exact", "left", "right"],
            "interval",
        )

    def num_censored(self) -> int:
        """The number of rows that are not exact."""
        return int(np.count_nonzero(self.lower != self.upper))

    def to_scipy(self) -> Any:
        """The same observations as a :class:`scipy.stats.CensoredData`.

        Examples
        --------
        >>> print(Censored([1.0], right=[2.0]).to_scipy())
        CensoredData(2 values: 1 not censored, 1 right-censored)
        """
        from scipy import stats

        kinds = self.kinds()
        return stats.CensoredData(
            uncensored=self.lower[kinds == "exact"],
            left=self.upper[kinds == "left"],
            right=self.lower[kinds == "right"],
            interval=np.column_stack([self.lower, self.upper])[kinds == "interval"],
        )

    def __repr__(self) -> str:
        kinds = self.kinds()
        counts = [int(np.count_nonzero(kinds == k)) for k in ("exact", "left", "right", "interval")]
        return "Censored({} exact, {} left-censored, {} right-censored, {} interval-censored)".format(*counts)


@dataclass(frozen=True)
class CensoredSample:
    """Censored observations checked against a family's support, grouped by kind, with weights.

    Attributes
    ----------
    exact : Sample
        Exact values.
    left : Sample
        Bounds of left-censored values (:math:`X \\le x`).
    right : Sample
        Bounds of right-censored values (:math:`X \\ge x`).
    interval : Sample
        Lower bounds of interval-censored values; :attr:`interval_upper` their upper bounds.
    interval_upper : ndarray
    n : float
        The total weight, rows that carry no information (right-censored
        below the support, say) included: the sample size.
    """

    exact: Sample
    left: Sample
    right: Sample
    interval: Sample
    interval_upper: FloatArray
    n: float
    censored: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "censored", self.left.n + self.right.n + self.interval.n)

    def scaled(self, s: float) -> CensoredSample:
        """The observations of ``X / s``: every bound divided by ``s``."""
        if s == 1.0:
            return self
        exact, left, right, interval = (
            Sample(part.x / s, part.w) for part in (self.exact, self.left, self.right, self.interval)
        )
        return CensoredSample(exact, left, right, interval, self.interval_upper / s, self.n)

    def rows(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Every informative row as ``(lower, upper, weight)``, ordered exact, left, right, interval.

        ``Censored.from_bounds(lower, upper)`` with ``weights=weight`` gives
        these observations back (without the rows that carry no information).
        """
        parts = (self.exact, self.left, self.right, self.interval)
        lower, upper = _stack(self.exact.x, self.left.x, self.right.x, self.interval.x, self.interval_upper)
        return lower, upper, np.concatenate([p.w for p in parts])

    @cached_property
    def pseudo(self) -> Sample:
        """Stand-in values for starting points: exact values, censoring bounds, interval midpoints."""
        middle = 0.5 * (self.interval.x + self.interval_upper)
        parts = (self.exact, self.left, self.right, Sample(middle, self.interval.w))
        return Sample(np.concatenate([p.x for p in parts]), np.concatenate([p.w for p in parts]))


def censored_sample(fn: str, data: Censored, w: FloatArray, family: Family) -> CensoredSample:
    """The observations of ``data`` with weights ``w`` (one per row, zeros dropped), checked for ``family``.

    Bounds beyond the support are moved onto it (an interval reaching below
    a positive family's support is a left-censored value); rows left with
    probability one carry no information and count only in ``n``.

    Raises
    ------
    ValueError
        A discrete family; exact values outside the support; rows of
        probability zero under every member of the family (left-censored at
        or below the support's lower end, say).
    """
    if family.discrete:
        raise ValueError(
            f"{fn}: censored data are supported for continuous families; got {family.name}, a discrete family"
        )
    lower, upper = data.lower, data.upper
    keep = w > 0.0
    exact = lower == upper
    bad = keep & exact & family.support.outside(lower)
    if bad.any():
        raise _bad_rows(fn, f"exact values must be {family.support.describe()} ({family.name})", lower, upper, bad)
    low, high = family.support.lower, family.support.upper
    bad = keep & ~exact & ((upper <= low) | (lower >= high))
    if bad.any():
        raise _bad_rows(
            fn,
            f"censored rows must overlap the support of {family.name}, {family.support.describe()}",
            lower,
            upper,
            bad,
        )
    lo = np.where(lower <= low, -np.inf, lower)
    hi = np.where(upper >= high, np.inf, upper)
    kinds = (
        keep & exact,
        keep & ~exact & (lo == -np.inf) & (hi < np.inf),
        keep & ~exact & (hi == np.inf) & (lo > -np.inf),
        keep & ~exact & (lo > -np.inf) & (hi < np.inf),
    )
    values = (lower, hi, lo, lo)
    exact_s, left, right, interval = (Sample(v[k], w[k]) for v, k in zip(values, kinds, strict=True))
    return CensoredSample(exact_s, left, right, interval, hi[kinds[3]], float(np.sum(w)))


def log_probability(family: Family, lower: Any, upper: Any, *theta: Any) -> FloatArray:
    r"""The log probability of an interval, :math:`\log(F(u) - F(l))`, computed in log space.

    Where :math:`l` is above the median the difference is taken of survival
    functions, :math:`\log S(l) + \operatorname{log1mexp}(\log S(u) - \log S(l))`,
    else of cdfs, :math:`\log F(u) + \operatorname{log1mexp}(\log F(l) - \log F(u))`:
    the smaller tail keeps its digits, and an interval far in either tail
    has a finite log probability where :math:`F(u) - F(l)` would round to 0.

    Examples
    --------
    >>> from nllkit.distributions import normal
    >>> round(float(log_probability(normal, 40.0, 41.0, 0.0, 1.0)), 9)  # F(41) - F(40) rounds to 0
    -804.608442014
    """
    log_f_lo, log_f_hi = family.logcdf(lower, *theta), family.logcdf(upper, *theta)
    log_s_lo, log_s_hi = family.logsf(lower, *theta), family.logsf(upper, *theta)
    upper_tail = log_s_lo < log_f_lo
    big = np.where(upper_tail, log_s_lo, log_f_hi)
    small = np.where(upper_tail, log_s_hi, log_f_lo)
    with np.errstate(invalid="ignore"):
        out = big + log1mexp(small - big)
    return np.where(np.isnan(out), -np.inf, out)  # both ends underflowed: the interval is beyond reach


def censored_nll(family: Family, theta: FloatArray, data: CensoredSample) -> float:
    """The censored observations' part of the NLL: ``-sum w log F(x) - sum w log S(x) - sum w log P(l, u)``."""
    total = 0.0
    with np.errstate(all="ignore"):
        if data.left.x.size:
            total -= data.left.sum(family.logcdf(data.left.x, *theta))
        if data.right.x.size:
            total -= data.right.sum(family.logsf(data.right.x, *theta))
        if data.interval.x.size:
            total -= data.interval.sum(log_probability(family, data.interval.x, data.interval_upper, *theta))
    return total


class CensoredProblem(Problem):
    """The mean NLL of censored observations in the free unconstrained coordinates of a family.

    The exact values' part and its gradient come from the family
    (:meth:`Family.nll_grad`); the censored part is :func:`censored_nll`, and
    its gradient central differences in each free parameter's unconstrained
    coordinate (second-order accurate in theta, and generic: no family needs
    the derivatives of its cdf in its parameters). The Hessian, for the
    polishing steps and the standard errors, is then the engine's central
    differences of that gradient; the optimizer is L-BFGS-B.

    Parameters
    ----------
    family : Family
        A continuous family with one unconstrained coordinate per parameter.
    data : CensoredSample
        The (rescaled) observations.
    free, base : ndarray
        As for :class:`Problem`.
    steps : ndarray, optional
        The differencing step of each coordinate (computed from the data when None).
    """

    sample: CensoredSample  # type: ignore[assignment]

    def __init__(
        self, family: Family, data: CensoredSample, free: np.ndarray, base: FloatArray, steps: FloatArray | None = None
    ) -> None:
        super().__init__(family, data, free, base)  # type: ignore[arg-type]
        self.steps = self._steps() if steps is None else steps

    def replace(self, free: np.ndarray, base: FloatArray) -> CensoredProblem:
        return CensoredProblem(self.family, self.sample, free, base, self.steps)

    def _steps(self) -> FloatArray:
        r"""Differencing steps in the unconstrained coordinates.

        ``_STEP`` in the log or logit of a bounded parameter, whose natural
        unit is 1; a real parameter (a location) is stepped in units of its
        spread per observation, :math:`\sqrt{n / H_{kk}}` from the exact-data
        Hessian of the stand-in values at the start (the scale, for a
        location), as rescaling the data does not make a location's unit 1.
        """
        family, theta = self.family, self.theta(self.base[self.coords])
        steps = np.full(theta.size, _STEP)
        real = [k for k, d in enumerate(family.domains) if d.kind == "real"]
        if not real:
            return steps
        pseudo = self.sample.pseudo
        with np.errstate(all="ignore"):
            try:
                hess = family.nll_hess(theta, pseudo)
            except (ValueError, ZeroDivisionError, OverflowError):
                hess = None
        for k in real:
            curvature = math.nan if hess is None else float(hess[k, k]) / pseudo.n
            unit = 1.0 / math.sqrt(curvature) if curvature > 0.0 and math.isfinite(curvature) else 0.0
            steps[k] = _STEP * (unit if 0.0 < unit < math.inf else max(1.0, abs(theta[k])))
        return steps

    def objective(self, theta: FloatArray) -> tuple[float, FloatArray]:
        data, family = self.sample, self.family
        if data.exact.n > 0.0:
            value, grad = family.nll_grad(theta, data.exact)
            value, grad = float(value), np.array(grad, dtype=float)
        else:
            value, grad = 0.0, np.zeros(theta.size)
        value += censored_nll(family, theta, data)
        # Only the free parameters' derivatives are used (a held one's Jacobian column is zero).
        for k in self.coords:
            domain = family.domains[k]
            u = float(domain.to_unconstrained(theta[k]))
            ends = []
            for h in (self.steps[k], -self.steps[k]):
                moved = theta.copy()
                moved[k] = float(domain.from_unconstrained(np.float64(u + h))[0])
                ends.append((moved[k], censored_nll(family, moved, data)))
            (t_plus, f_plus), (t_minus, f_minus) = ends
            grad[k] += (f_plus - f_minus) / (t_plus - t_minus)
        return value, grad

    def nll_hess(self, theta: FloatArray) -> FloatArray | None:
        return None

    def hess_steps(self, u: FloatArray) -> FloatArray:
        """Ten gradient steps: the differenced gradient is itself a difference, and its noise wants a wider step."""
        return 10.0 * self.steps[self.coords]

    def evaluate(self, theta: FloatArray, n_iter: int, how: str, note: str = "") -> Solution:
        """:meth:`Problem.evaluate`, and not converged where censored rows alone have probability about 1.

        Without exact values the log-likelihood is at most 0, and it tends to
        0 when the law runs off to a boundary of the parameter space that puts
        every row's mass inside its interval (all rows right-censored, or
        intervals with a common point): the gradient vanishes there too, but
        there is no maximum.
        """
        solution = super().evaluate(theta, n_iter, how, note)
        if self.m and self.sample.exact.n == 0.0 and solution.nll <= _DEGENERATE * self.sample.n:
            params = ", ".join(f"{k} = {v:.3g}" for k, v in zip(self.family.param_names, solution.theta, strict=True))
            message = (
                f"did not converge ({how}): every censored row has probability about 1 at the last point "
                f"({params}, rescaled data): the likelihood has no maximum"
            )
            return replace(solution, converged=False, message=message)
        return solution
