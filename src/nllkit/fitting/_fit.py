"""``fit``: the maximum-likelihood estimate of a family's parameters, with its uncertainty."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from nllkit.distributions._family import Family, FloatArray, Sample
from nllkit.distributions._registry import get_family
from nllkit.fitting._problem import Problem, Scaling, Solution
from nllkit.fitting._result import Fit
from nllkit.fitting._warnings import ConvergenceWarning, HessianWarning

__all__ = ["as_real_array", "as_sample", "check_finite", "check_values", "check_weights", "first_bad", "fit"]


def first_bad(fn: str, what: str, expected: str, values: FloatArray, bad: FloatArray) -> ValueError:
    """The error for values that break a rule: how many, and the first one with its position."""
    where = np.flatnonzero(bad)
    return ValueError(
        f"{fn}: {what} must be {expected}; {where.size} value(s) are not, "
        f"the first is {values[where[0]].item()!r} at position {where[0]}"
    )


def as_real_array(fn: str, name: str, values: Any) -> FloatArray:
    """``values`` as a flat float64 array; TypeError unless they are real numbers."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name} must be real numbers; got an array of dtype {array.dtype}")
    return np.asarray(array, dtype=float).ravel()


def check_finite(fn: str, name: str, values: FloatArray) -> None:
    """ValueError naming the first value of ``values`` that is NaN or infinite."""
    finite = np.isfinite(values)
    if not finite.all():
        raise first_bad(fn, name, "finite", values, ~finite)


def check_values(fn: str, data: Any, weights: Any) -> tuple[FloatArray, FloatArray]:
    """Flattened float64 data and weights, checked; values of weight zero dropped.

    Data must be real, finite and non-empty; weights (None for ones) finite,
    non-negative, one per value, with a positive total.
    """
    x = as_real_array(fn, "data", data)
    if x.size == 0:
        raise ValueError(f"{fn}: data must be non-empty; got 0 values")
    check_finite(fn, "data", x)
    if weights is None:
        return x, np.ones_like(x)
    w = check_weights(fn, x.size, weights)
    keep = w > 0.0
    return (x, w) if keep.all() else (x[keep], w[keep])


def check_weights(fn: str, size: int, weights: Any) -> FloatArray:
    """Flattened float64 weights for ``size`` values (ones for None): finite, non-negative, positive total."""
    if weights is None:
        return np.ones(size)
    w = as_real_array(fn, "weights", weights)
    if w.size != size:
        raise ValueError(f"{fn}: weights must have one value per data value ({size}); got {w.size}")
    ok = np.isfinite(w) & (w >= 0.0)
    if not ok.all():
        raise first_bad(fn, "weights", "finite and non-negative", w, ~ok)
    total = float(np.sum(w))
    if not total > 0.0:
        raise ValueError(f"{fn}: weights must have a positive total; got {total!r}")
    return w


def as_sample(fn: str, data: Any, weights: Any, family: Family) -> Sample:
    """The checked, weighted sample a fit uses (compressed to a value-count table for discrete families).

    Parameters
    ----------
    fn : str
        The calling function's name, for error messages.
    data : array_like
        Real values; flattened.
    weights : array_like or None
        As for :func:`check_values`.
    family : Family
        Whose support the data must lie in.

    Returns
    -------
    Sample
    """
    x, w = check_values(fn, data, weights)
    family.check_data(x)
    # Discrete data become a value-count table (compressed() counts small integers with bincount).
    return Sample(x, w).compressed() if family.discrete else Sample(x, w)


def _check_fixed(family: Family, fixed: Mapping[str, Any]) -> dict[str, float]:
    unknown = [key for key in fixed if key not in family.param_names]
    if unknown:
        raise ValueError(
            f"{family.name}: fixed must name parameters of the family ({', '.join(family.param_names)}); "
            f"got {', '.join(map(repr, unknown))}"
        )
    checked = {}
    for name, value in fixed.items():
        domain = family.domains[family.param_names.index(name)]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{family.name}: fixed {name} must be a real number; got {value!r}") from None
        if not domain.contains(number):
            raise ValueError(f"{family.name}: fixed {name} must be {domain.describe()}; got {value!r}")
        checked[name] = number
    return checked


def _scale_of(family: Family, sample: Sample) -> float:
    """A power of two near the data's mean absolute value, or 1.0 when the family is not rescaled.

    A power of two makes the division exact, so rescaling changes no digit of
    the data; the mean absolute value costs one pass, where a median would
    cost a sort.
    """
    if family.discrete or (family.scale_powers is None and type(family).rescale is Family.rescale):
        return 1.0
    size = sample.mean(np.abs(sample.x))
    if not (size > 0.0 and math.isfinite(size)):
        return 1.0
    return 2.0 ** round(math.log2(size))


def _covariance(problem: Problem, solution: Solution, scaling: Scaling, free: np.ndarray) -> tuple[FloatArray, str]:
    """vcov of every parameter on the original scale, and a note for the message ('' when all is well).

    With ``I = J^T H J`` the observed information in the free coordinates,
    ``vcov = R J I^{-1} J^T R^T`` where ``R`` maps the rescaled parameters
    back to the data's scale.
    """
    p = free.size
    nan = np.where(np.outer(free, free), np.nan, 0.0)
    family, theta = problem.family, solution.theta
    original = scaling.to_original(theta)
    outside = [
        f"{family.param_names[k]} = {original[k]:g} is not {family.domains[k].describe()}"
        for k in np.flatnonzero(free)
        if not family.domains[k].contains(original[k])
    ]
    if outside:
        return nan, f"the estimate is on the boundary of the parameter space ({'; '.join(outside)})"
    if not solution.converged:
        return nan, ""  # standard errors at a point that is not the optimum would mislead
    if problem.m == 0:
        return np.zeros((p, p)), ""
    info, jac = problem.information(theta)
    if not np.all(np.isfinite(info)):
        return nan, "the Hessian of the NLL is not finite at the estimate"
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(info)[0])
        return (
            nan,
            f"the Hessian of the NLL is not positive definite at the estimate (smallest eigenvalue {smallest:.3g})",
        )
    half = scaling.jacobian(theta) @ jac @ np.linalg.inv(chol).T
    return half @ half.T, ""


def _problem(family: Family, scaled: Sample, scaling: Scaling, held: dict[str, float]) -> Problem:
    """The rescaled problem, its free coordinates and held values set, based at the family's start."""
    names = family.param_names
    start = np.asarray(family.start(scaled), dtype=float)
    # The held values, mapped into the rescaled problem together with the start.
    original = scaling.to_original(start)
    for name, value in held.items():
        original[names.index(name)] = value
    is_held = np.array([name in held for name in names])
    base = np.asarray(family.to_unconstrained(np.where(is_held, scaling.to_scaled(original), start)), dtype=float)
    if base.size == len(names):
        free = np.array([not h and d.kind != "fixed" for h, d in zip(is_held, family.domains, strict=True)])
    elif held:
        raise ValueError(f"{family.name}: fixed must be empty, the parameters are constrained jointly; got {held}")
    else:
        free = np.ones(base.size, dtype=bool)
    return Problem(family, scaled, free, base)


def fit(data: Any, family: Any, *, weights: Any = None, fixed: Mapping[str, Any] | None = None) -> Fit:
    r"""Fit a family to data by maximum likelihood.

    Minimizes the weighted negative log-likelihood

    .. math:: \mathrm{NLL}(\theta) = -\sum_i w_i \log f(x_i; \theta)

    over the free parameters (for censored data, a :class:`~nllkit.fitting.Censored`,
    the censored rows contribute :math:`\log F`, :math:`\log S` or the log
    probability of their interval instead of :math:`\log f`). A closed-form estimate is used where the family
    has one and nothing is held fixed; otherwise Newton's method in a trust
    region (analytic Hessian) or L-BFGS (analytic gradient) runs on the
    unconstrained scale (``log`` of positive parameters, ``logit`` of
    probabilities) on the mean NLL, from the family's data-driven start, with
    continuous data divided internally by a power of two near their mean
    absolute value. Convergence means that the gradient of the mean NLL in
    the unconstrained coordinates is at most ``1e-6`` (the NLL divided by the
    total weight, so that the criterion does not depend on the sample size).

    The covariance is the inverse of the observed information (the Hessian of
    the NLL in the family's parameters at the estimate: analytic where the
    family has it, else central differences of its analytic gradient).

    Parameters
    ----------
    data : array_like or Censored
        Real values in the family's support; flattened. Discrete data are
        compressed to a table of distinct values and their total weights.
        A :class:`~nllkit.fitting.Censored` holds exact, left-,
        right- and interval-censored observations (continuous families only):
        the censored part of the NLL is minimized by L-BFGS-B with
        central-difference derivatives, and the covariance comes from central
        differences of that gradient. Data without censored rows give the
        ordinary fit.
    family : Family or str
        A family or its name (``'normal'``, ``'gamma'``, ``'t'``, ``'negative_binomial'`` ...).
    weights : array_like, optional
        Finite non-negative weights, one per value (per row of a ``Censored``),
        with a positive total: the weighted likelihood. ``n`` (and BIC's
        ``log n``) use the total weight.
    fixed : mapping, optional
        Parameters held at given values, such as ``{'loc': 0.0}``; they get
        standard error 0 and do not count in ``k``. With every parameter fixed
        the fit only evaluates the likelihood.

    Returns
    -------
    Fit

    Raises
    ------
    TypeError
        Non-numeric data, weights or fixed values.
    ValueError
        Empty data; NaN or infinite values; values outside the support;
        bad weights; fixed names that are not parameters, or values outside
        their domains; censored data with a discrete family, or censored rows
        of probability zero under the family. Messages name the count and
        first position of bad values.

    Warns
    -----
    ConvergenceWarning
        The optimizer stopped short (``converged`` is False; ``message`` says why).
    HessianWarning
        The observed information is not positive definite or the estimate is
        on the boundary: standard errors and ``vcov`` are NaN, with the reason
        in ``message``.

    Examples
    --------
    >>> import numpy as np
    >>> from nllkit.fitting import fit
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=10_000)
    >>> result = fit(x, "normal")
    >>> bool(abs(result.params["loc"] - x.mean()) < 1e-12), bool(abs(result.se["loc"] - x.std() / 100) < 1e-12)
    (True, True)
    >>> fit(x, "normal", fixed={"loc": 3.0}).k
    1

    Survival times, the last two still running at the end of the study:

    >>> from nllkit.fitting import Censored
    >>> times = Censored.right_censored([2.0, 3.5, 1.0, 6.0, 6.0], [False, False, False, True, True])
    >>> round(fit(times, "exponential").params["rate"], 6)  # events / total time
    0.162162
    """
    # Imported here: the censored module builds on this one's checks.
    from nllkit.fitting._censored import Censored, CensoredProblem, censored_sample

    family = get_family(family)
    censored = None
    if isinstance(data, Censored):
        censored = censored_sample("fit", data, check_weights("fit", len(data), weights), family)
        if censored.exact.n == 0.0 and censored.censored == 0.0:
            raise ValueError(
                f"fit: data must carry information about {family.name}; got only rows that every member "
                "of the family gives probability one"
            )
        # Starts, structure and the data's scale come from stand-in values (bounds, midpoints).
        sample = censored.pseudo
        if censored.exact.n == censored.n:  # nothing censored: the ordinary fit of the values
            sample, censored = censored.exact, None
    else:
        sample = as_sample("fit", data, weights, family)
    held = {} if fixed is None else _check_fixed(family, dict(fixed))
    family = family.bind(sample, held)
    held = _check_fixed(family, held)
    scaling = Scaling(family, _scale_of(family, sample))
    scaled = scaling.sample(sample)

    problem = _problem(family, scaled, scaling, held)
    if censored is not None:
        if not problem.aligned:
            raise ValueError(
                f"fit: censored data need one unconstrained coordinate per parameter; {family.name} has not"
            )
        problem = CensoredProblem(family, censored.scaled(scaling.s), problem.free, problem.base)
    # A parameter is estimated when it moves with some free coordinate.
    free = np.any(problem.chain(problem.base[problem.coords])[1] != 0.0, axis=1)

    # Structural parameters (binomial trials) are given, not held: they leave the closed form usable.
    structural = {name for name, d in zip(family.param_names, family.domains, strict=True) if d.kind == "fixed"}
    closed = None if set(held) - structural or censored is not None else family.mle(scaled)
    if closed is not None:
        closed = np.asarray(closed, dtype=float)
        # Exact by construction, so not judged by the gradient: at a kink (the Laplace median) there is none.
        nll = problem.nll_grad(closed)[0]
        solution = Solution(closed, nll, math.nan, 0, True, family.mle_how)
    else:
        solution = problem.solve(problem.theta(problem.base[problem.coords]))

    vcov, note = _covariance(problem, solution, scaling, free)
    message = solution.message + (f"; {note}: standard errors are NaN" if note else "")
    if not solution.converged:
        warnings.warn(f"{family.name}: {message}", ConvergenceWarning, stacklevel=2)
    elif note:
        warnings.warn(f"{family.name}: {message}", HessianWarning, stacklevel=2)

    return Fit(
        family=family,
        theta=scaling.to_original(solution.theta),
        free=free,
        k=problem.m,
        vcov=vcov,
        # Only densities pick up the Jacobian of the rescaling; probabilities of censored rows do not.
        loglik=scaling.loglik(-solution.nll, scaled.n if censored is None else censored.exact.n),
        n=sample.n if censored is None else censored.n,
        converged=solution.converged,
        message=message,
        n_iter=solution.n_iter,
        problem=problem,
        solution=solution,
        scaling=scaling,
    )
