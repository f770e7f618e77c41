r"""Profile-likelihood confidence intervals (MINOS-style).

For a free parameter :math:`\theta_k` the profile NLL is
:math:`p(t) = \min_{\theta_{-k}} \mathrm{NLL}(\theta_k = t, \theta_{-k})`, and the
interval at level :math:`1 - \alpha` is
:math:`\{t : 2\,(p(t) - \mathrm{NLL}_{\min}) \le \chi^2_{1, 1-\alpha}\}`.
Each end is found on the parameter's unconstrained coordinate :math:`u_k`:
steps of one standard error (in :math:`u_k`), doubled until the profile
exceeds the threshold, then Brent's method between the last two points, each
profile value re-optimizing the other free parameters from the previous
solution. An end that is never reached (a flat profile) is the domain's limit
(``-inf``/``inf`` for a real parameter, 0 or ``inf`` for a positive one, 0 or 1
for a probability).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

from nllkit.fitting._problem import Problem, Scaling, Solution
from nllkit.fitting._warnings import ConvergenceWarning

__all__ = ["profile_intervals"]

_DOUBLINGS = 60
_LIMITS = {"real": (-math.inf, math.inf), "positive": (0.0, math.inf), "unit": (0.0, 1.0)}


def profile_intervals(
    problem: Problem, solution: Solution, scaling: Scaling, level: float, se: np.ndarray
) -> dict[int, tuple[float, float]]:
    """The profile interval of every free parameter, on the original scale, by parameter index.

    Parameters
    ----------
    problem : Problem
        The (rescaled) problem the estimate solves.
    solution : Solution
        The estimate.
    scaling : Scaling
        The map back to the data's scale.
    level : float
        The confidence level, in (0, 1).
    se : ndarray
        Standard errors on the original scale (NaN allowed): they set the first step.
    """
    if not problem.aligned:
        raise NotImplementedError(
            f"{problem.family.name}: profile intervals need one unconstrained coordinate per parameter; "
            "use method='wald'"
        )
    threshold = 0.5 * float(stats.chi2.ppf(level, 1))
    u_hat = problem.to_u(solution.theta)
    _, jac, _ = problem.chain(u_hat)
    rescale = np.diag(scaling.jacobian(solution.theta))
    unconverged = 0
    intervals = {}
    for i, k in enumerate(problem.coords):
        step = abs(se[k] / rescale[k] / jac[k, i])
        if not (math.isfinite(step) and step > 0.0):
            step = 0.1
        ends = []
        for sign, limit in zip((-1.0, 1.0), _LIMITS[problem.family.domains[k].kind], strict=True):
            end, misses = _end(problem, solution, int(k), u_hat[i], sign * step, threshold)
            unconverged += misses
            ends.append(limit if end is None else float(scaling.to_original(end)[k]))
        intervals[int(k)] = (min(ends), max(ends))
    if unconverged:
        warnings.warn(
            f"{problem.family.name}: {unconverged} profile optimization(s) did not converge; "
            "the profile intervals may be too wide",
            ConvergenceWarning,
            stacklevel=3,
        )
    return intervals


def _end(
    problem: Problem, solution: Solution, k: int, u0: float, step: float, threshold: float
) -> tuple[np.ndarray | None, int]:
    """The parameters (rescaled problem) at one end of parameter ``k``'s interval, or None; and the misses."""
    domain = problem.family.domains[k]
    warm = [solution.theta]
    misses = [0]

    def profile(t: float) -> tuple[float, np.ndarray]:
        sub = problem.with_fixed(k, t)
        found = sub.solve(warm[-1])
        if found.converged:
            warm.append(found.theta)
        else:
            misses[0] += 1
        return found.nll - solution.nll - threshold, found.theta

    inner = u0
    full = problem.base.copy()
    full[problem.coords] = problem.to_u(solution.theta)
    for doubling in range(_DOUBLINGS):
        outer = u0 + step * 2.0**doubling
        full[k] = outer
        with np.errstate(all="ignore"):
            value = float(problem.family.from_unconstrained(full)[0][k])
        if not domain.contains(value):
            break  # the domain's limit (0, 1 or infinity in floating point) comes first
        if profile(outer)[0] > 0.0:
            root = optimize.brentq(lambda t: profile(t)[0], inner, outer, xtol=1e-9 * abs(step), rtol=1e-12)
            return profile(root)[1], misses[0]
        inner = outer
    return None, misses[0]
