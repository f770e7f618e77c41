r"""The optimization problem behind a fit: the NLL of a sample on the unconstrained scale.

The free parameters :math:`\theta_k` (those neither held by the user nor
structural) are written :math:`\theta_k = \phi_k(u_k)` with the bijections of
their :class:`~nllkit.distributions.Domain` (identity, ``exp``, logistic),
and the objective is the *mean* NLL

.. math:: f(u) = \frac{1}{n} \mathrm{NLL}(\theta(u)),
   \qquad \frac{\partial f}{\partial u_k} = \frac{g_k \phi_k'}{n},
   \qquad \frac{\partial^2 f}{\partial u_k \partial u_l}
   = \frac{H_{kl} \phi_k' \phi_l' + [k = l]\, g_k \phi_k''}{n},

with :math:`g` and :math:`H` the family's analytic gradient and Hessian in
:math:`\theta`. Dividing by the total weight :math:`n` keeps the gradient
tolerance meaningful whatever the sample size (fitdistrplus' lesson for big
``n``). The problem talks to the family only through
:meth:`~nllkit.distributions.Family.nll_grad` and
:meth:`~nllkit.distributions.Family.nll_hess` on a
:class:`~nllkit.distributions.Sample`: sums over the data, so a chunked
sample could drive it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from nllkit.distributions._family import Family, FloatArray, Sample

__all__ = ["GTOL", "Problem", "Scaling", "Solution"]

#: A fit has converged when max_k |df/du_k| <= GTOL, f the NLL divided by the sample size.
GTOL = 1e-6
#: Where the optimizers stop: far inside GTOL. Newton polishing then goes on to the rounding level
#: (asked for directly, trust-exact shrinks its radius for many iterations at rounding noise).
_OPTIMIZER_GTOL = 1e-7
#: Where polishing stops.
_TARGET = 1e-12
_MAXITER = 500
_POLISH_STEPS = 8


@dataclass(frozen=True)
class Solution:
    """Where the optimizer stopped, on the problem's own (possibly rescaled) data.

    Attributes
    ----------
    theta : ndarray
        Every parameter, fixed ones included.
    nll : float
        The total weighted NLL at ``theta``.
    gradient : float
        ``max |df/du|`` of the mean NLL at ``theta`` (0.0 with nothing free).
    n_iter : int
        Optimizer iterations plus Newton polishing steps.
    converged : bool
    message : str
    """

    theta: FloatArray
    nll: float
    gradient: float
    n_iter: int
    converged: bool
    message: str


class Problem:
    """The mean NLL of ``sample`` in the free unconstrained coordinates of a family.

    The coordinates are the family's own (:meth:`Family.to_unconstrained`,
    :meth:`Family.from_unconstrained`): one per parameter by default, fewer for
    jointly constrained parameters (categorical probabilities); held
    coordinates keep their value from ``base``.

    Parameters
    ----------
    family : Family
        The (bound) family.
    sample : Sample
        The data the NLL is summed over.
    free : ndarray of bool
        Which unconstrained coordinates are estimated.
    base : ndarray
        Every unconstrained coordinate (the free ones are overwritten).
    """

    def __init__(self, family: Family, sample: Sample, free: np.ndarray, base: FloatArray) -> None:
        self.family = family
        self.sample = sample
        self.free = np.asarray(free, dtype=bool)
        self.coords = np.flatnonzero(self.free)
        self.base = np.array(base, dtype=float)
        self._has_hess: bool | None = None
        self._last: tuple[FloatArray, float, FloatArray] | None = None

    @property
    def m(self) -> int:
        """The number of free coordinates: the number of estimated parameters."""
        return int(self.coords.size)

    @property
    def aligned(self) -> bool:
        """Whether coordinate ``k`` belongs to parameter ``k`` alone (the default, per-parameter maps)."""
        return self.base.size == len(self.family.param_names)

    def with_fixed(self, k: int, value: float) -> Problem:
        """The same problem with coordinate ``k`` also held, at ``value``."""
        free = self.free.copy()
        free[k] = False
        base = self.base.copy()
        base[k] = value
        return self.replace(free, base)

    def replace(self, free: np.ndarray, base: FloatArray) -> Problem:
        """The same problem, of the same kind, with other free coordinates and base."""
        return Problem(self.family, self.sample, free, base)

    # --- coordinates ---------------------------------------------------------------------------

    def full_u(self, u: FloatArray) -> FloatArray:
        full = self.base.copy()
        full[self.coords] = u
        return full

    def to_u(self, theta: FloatArray) -> FloatArray:
        """The free coordinates of ``theta``."""
        with np.errstate(all="ignore"):
            return np.asarray(self.family.to_unconstrained(np.asarray(theta, dtype=float)), dtype=float)[self.coords]

    def chain(self, u: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``theta(u)``, its Jacobian ``(p, m)`` and second derivatives ``(p, m, m)`` in the free coordinates."""
        with np.errstate(all="ignore"):
            theta, jac, second = self.family.from_unconstrained(self.full_u(np.asarray(u, dtype=float)))
        jac = np.asarray(jac, dtype=float)[:, self.coords]
        second = np.asarray(second, dtype=float)[:, self.coords][:, :, self.coords]
        return np.asarray(theta, dtype=float), jac, second

    def theta(self, u: FloatArray) -> FloatArray:
        return self.chain(u)[0]

    # --- the objective -------------------------------------------------------------------------

    def nll_grad(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """The total NLL and its gradient in ``theta`` (every parameter), NaN mapped to +inf.

        The last evaluation is remembered: the optimizer asks for the value,
        the gradient and the Hessian at one point in separate calls, and each
        is a pass over the data.
        """
        theta = np.asarray(theta, dtype=float)
        if self._last is not None and np.array_equal(self._last[0], theta):
            return self._last[1], self._last[2].copy()
        value, grad = self._nll_grad(theta)
        self._last = (theta.copy(), value, grad)
        return value, grad.copy()

    def objective(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """The total NLL and its gradient in ``theta``, as the family computes them (no guards)."""
        return self.family.nll_grad(theta, self.sample)

    def _nll_grad(self, theta: FloatArray) -> tuple[float, FloatArray]:
        try:
            with np.errstate(all="ignore"):
                value, grad = self.objective(theta)
        except (ValueError, ZeroDivisionError, OverflowError):  # math.log(0) and the like, off the domain
            return math.inf, np.full(theta.size, np.nan)
        value = float(value)
        if math.isnan(value):
            value = math.inf
        return value, np.asarray(grad, dtype=float)

    def nll_hess(self, theta: FloatArray) -> FloatArray | None:
        """The family's analytic Hessian in ``theta``, or None (remembered after the first call)."""
        if self._has_hess is False:
            return None
        with np.errstate(all="ignore"):
            hess = self.family.nll_hess(theta, self.sample)
        self._has_hess = hess is not None
        return None if hess is None else np.asarray(hess, dtype=float)

    def value_grad(self, u: FloatArray) -> tuple[float, FloatArray]:
        """The mean NLL and its gradient ``J^T g / n`` in the free coordinates."""
        theta, jac, _ = self.chain(u)
        if not np.all(np.isfinite(theta)):
            return math.inf, np.zeros(self.m)
        value, grad = self.nll_grad(theta)
        grad_u = jac.T @ grad
        if not math.isfinite(value) or not np.all(np.isfinite(grad_u)):
            return math.inf, np.zeros(self.m)
        return value / self.sample.n, grad_u / self.sample.n

    def hess_u(self, u: FloatArray) -> FloatArray | None:
        """The analytic Hessian of the mean NLL in ``u``, ``(J^T H J + sum_k g_k T_k) / n``, or None."""
        theta, jac, second = self.chain(u)
        hess = self.nll_hess(theta)
        if hess is None:
            return None
        _, grad = self.nll_grad(theta)
        return (jac.T @ hess @ jac + np.einsum("k,kij->ij", grad, second)) / self.sample.n

    def hess_steps(self, u: FloatArray) -> FloatArray:
        """The central-difference steps of :meth:`_fd_hess_u` in the free coordinates."""
        return 1e-5 * np.maximum(1.0, np.abs(u))

    def _fd_hess_u(self, u: FloatArray) -> FloatArray:
        """Central differences of the analytic gradient in ``u``: the Hessian when the family has none."""
        steps = self.hess_steps(u)
        cols = []
        for j in range(self.m):
            e = np.zeros(self.m)
            e[j] = steps[j]
            cols.append((self.value_grad(u + e)[1] - self.value_grad(u - e)[1]) / (2.0 * steps[j]))
        hess = np.array(cols).T
        return 0.5 * (hess + hess.T)

    def any_hess_u(self, u: FloatArray) -> FloatArray:
        """The Hessian of the mean NLL in ``u``: analytic where the family has one, else differenced."""
        hess = self.hess_u(u)
        return self._fd_hess_u(u) if hess is None else hess

    def information(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The observed information ``J^T H J`` in the free coordinates (total NLL), and ``J``.

        ``H`` is the Hessian of the NLL in the family's parameters: analytic
        where the family has it, else recovered from central differences of
        the gradient in ``u`` by removing the ``sum_k g_k T_k`` term. Then
        ``vcov = J (J^T H J)^{-1} J^T``, which is ``H^{-1}`` on the free
        parameters when ``J`` is square.
        """
        u = self.to_u(theta)
        _, jac, second = self.chain(u)
        hess = self.nll_hess(theta)
        if hess is not None:
            info = jac.T @ (0.5 * (hess + hess.T)) @ jac
        else:
            _, grad = self.nll_grad(theta)
            info = self._fd_hess_u(u) * self.sample.n - np.einsum("k,kij->ij", grad, second)
        return info, jac

    # --- the solver ----------------------------------------------------------------------------

    def evaluate(self, theta: FloatArray, n_iter: int, how: str, note: str = "") -> Solution:
        """The solution record at ``theta``, judged by the relative gradient criterion."""
        if self.m == 0:
            theta = self.theta(np.empty(0))
            value = self.nll_grad(theta)[0]
            return Solution(theta, value, 0.0, 0, True, "all parameters fixed: the likelihood is only evaluated")
        theta = np.asarray(theta, dtype=float)
        value, grad = self.value_grad(self.to_u(theta))
        size = float(np.max(np.abs(grad))) if math.isfinite(value) else math.inf
        converged = size <= GTOL
        if converged:
            message = f"{how}, {n_iter} iterations: max |gradient| of the mean NLL {size:.1e} <= {GTOL:.0e}"
        elif not math.isfinite(value):
            message = f"did not converge ({how}): the NLL is not finite at the last point{note}"
        else:
            message = (
                f"did not converge ({how}, {n_iter} iterations): max |gradient| of the mean NLL "
                f"{size:.1e} > tolerance {GTOL:.0e}{note}"
            )
        return Solution(theta, value * self.sample.n, size, n_iter, converged, message)

    def solve(self, start: FloatArray, maxiter: int = _MAXITER) -> Solution:
        """Minimize from ``start`` (every parameter; the free entries are the starting point).

        Newton's method in a trust region (``scipy.optimize.minimize(method='trust-exact')``)
        when the family has an analytic Hessian, else L-BFGS-B; then a few
        safeguarded Newton steps polish the result to the gradient's rounding
        level, which costs little and makes the answer independent of the
        optimizer's own stopping rule.
        """
        start = np.asarray(start, dtype=float)
        if self.m == 0:
            return self.evaluate(start, 0, "nothing to estimate")
        u0 = self.to_u(start)
        newton = self.hess_u(u0) is not None
        options: dict[str, Any]
        if newton:
            method, options = "trust-exact", {"gtol": _OPTIMIZER_GTOL, "maxiter": maxiter}
            hess = self.hess_u
        else:
            method = "L-BFGS-B"
            options = {"gtol": _OPTIMIZER_GTOL, "ftol": 1e-15, "maxiter": maxiter, "maxcor": 20}
            hess = None
        with np.errstate(all="ignore"):
            result = optimize.minimize(self.value_grad, u0, jac=True, hess=hess, method=method, options=options)
        u, steps = self._polish(np.asarray(result.x, dtype=float))
        note = "" if result.success else f"; {method}: {result.message}"
        return self.evaluate(self.theta(u), int(result.nit) + steps, method, note)

    def _polish(self, u: FloatArray) -> tuple[FloatArray, int]:
        """Newton steps, halved until they shrink the gradient without raising the NLL beyond rounding."""
        value, grad = self.value_grad(u)
        steps = 0
        while steps < _POLISH_STEPS and math.isfinite(value) and np.max(np.abs(grad)) > _TARGET:
            try:
                step = np.linalg.solve(self.any_hess_u(u), grad)
            except np.linalg.LinAlgError:
                return u, steps
            slack = 8.0 * np.finfo(float).eps * max(1.0, abs(value))
            for _ in range(20):
                new_value, new_grad = self.value_grad(u - step)
                if new_value <= value + slack and np.max(np.abs(new_grad)) < np.max(np.abs(grad)):
                    break
                step = step / 2.0
            else:
                return u, steps
            u, value, grad = u - step, new_value, new_grad
            steps += 1
        return u, steps


class Scaling:
    r"""Fitting ``X / s`` instead of ``X``, and the way back.

    For a family closed under scaling, the law of :math:`X` with parameters
    :math:`\theta` is that of :math:`s Y` where :math:`Y = X / s` has
    parameters :math:`\theta_s`, and :math:`\theta =` ``family.rescale(theta_s, s)``.
    Densities pick up the Jacobian: :math:`\log f_X(x) = \log f_Y(x / s) - \log s`.

    Parameters
    ----------
    family : Family
    s : float
        The divisor (1.0: no rescaling).
    """

    def __init__(self, family: Family, s: float) -> None:
        self.family = family
        self.s = float(s)

    def sample(self, sample: Sample) -> Sample:
        return sample if self.s == 1.0 else Sample(sample.x / self.s, sample.w)

    def to_original(self, theta: FloatArray) -> FloatArray:
        theta = np.array(theta, dtype=float)
        return theta if self.s == 1.0 else np.asarray(self.family.rescale(theta, self.s), dtype=float)

    def to_scaled(self, theta: FloatArray) -> FloatArray:
        theta = np.array(theta, dtype=float)
        return theta if self.s == 1.0 else np.asarray(self.family.rescale(theta, 1.0 / self.s), dtype=float)

    def jacobian(self, theta: FloatArray) -> FloatArray:
        """d to_original / d theta at ``theta`` (diagonal ``s**power`` for the usual families)."""
        p = len(theta)
        if self.s == 1.0:
            return np.eye(p)
        if self.family.scale_powers is not None:
            return np.diag(self.s ** np.asarray(self.family.scale_powers, dtype=float))
        cols = []
        for j in range(p):  # an overridden rescale: difference it (it involves no data)
            h = 1e-6 * max(1.0, abs(theta[j]))
            e = np.zeros(p)
            e[j] = h
            cols.append((self.to_original(theta + e) - self.to_original(theta - e)) / (2.0 * h))
        return np.array(cols).T

    def loglik(self, loglik_scaled: float, n: float) -> float:
        return loglik_scaled - n * math.log(self.s)
