"""Shared checks for the distribution families: finite-difference derivatives and a reference Newton solve.

The helpers are fixtures (so test modules need no imports from here); each
works on any :class:`~nllkit.distributions.Family` and a weighted
:class:`~nllkit.distributions.Sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nllkit.distributions._family import Family, Sample


def _central(f: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, rel: float) -> np.ndarray:
    """Central differences of ``f`` at ``theta``, one column per coordinate (steps relative to |theta|)."""
    columns = []
    for k in range(theta.size):
        h = rel * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        columns.append((np.asarray(f(up), dtype=float) - np.asarray(f(down), dtype=float)) / (2.0 * h))
    return np.stack(columns, axis=-1)


@pytest.fixture
def check_derivatives() -> Callable[..., None]:
    """Assert that ``nll_grad`` matches ``nll_value`` and its differences, and ``nll_hess`` the gradient's."""

    def check(family: Family, theta: np.ndarray, sample: Sample, rtol: float = 1e-6, skip_hess=()) -> None:
        theta = np.asarray(theta, dtype=float)
        value, grad = family.nll_grad(theta, sample)
        np.testing.assert_allclose(value, family.nll_value(theta, sample), rtol=1e-12)
        scale = abs(value) + 1.0  # differences are accurate relative to the NLL's size
        numeric = _central(lambda t: family.nll_value(t, sample), theta, 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=rtol, atol=rtol * scale * 1e-3)
        hess = family.nll_hess(theta, sample)
        if hess is None:
            return
        numeric_hess = _central(lambda t: family.nll_grad(t, sample)[1], theta, 1e-6)
        mask = np.ones_like(hess, dtype=bool)
        for i, j in skip_hess:
            mask[i, j] = mask[j, i] = False
        np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=0.0)
        np.testing.assert_allclose(hess[mask], numeric_hess[mask], rtol=rtol, atol=rtol * scale * 1e-3)

    return check


def _newton(family: Family, sample: Sample, theta: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, int]:
    """Damped Newton on the unconstrained scale with the family's analytic derivatives.

    A reference solver for the tests, independent of :func:`nllkit.fit`: it
    checks that a family's start, gradient and Hessian are enough to reach the
    optimum. Returns the estimate and the number of iterations.
    """
    domains = family.domains
    u = np.array([d.to_unconstrained(v) for d, v in zip(domains, theta, strict=True)], dtype=float)

    def evaluate(u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        parts = [d.from_unconstrained(v) for d, v in zip(domains, u, strict=True)]
        t = np.array([p[0] for p in parts], dtype=float)
        d1 = np.array([p[1] for p in parts], dtype=float)
        d2 = np.array([p[2] for p in parts], dtype=float)
        value, g = family.nll_grad(t, sample)
        h = family.nll_hess(t, sample)
        return value, g * d1, d1[:, None] * h * d1[None, :] + np.diag(g * d2), t

    value, grad, hess, t = evaluate(u)
    for it in range(iterations):
        try:
            np.linalg.cholesky(hess)
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad / (np.linalg.norm(grad) + 1.0)
        step_size = 1.0
        while step_size > 1e-12:
            trial = u - step_size * step
            trial_value = family.nll_value(
                np.array([d.from_unconstrained(v)[0] for d, v in zip(domains, trial, strict=True)]), sample
            )
            if np.isfinite(trial_value) and trial_value <= value + 1e-13 * abs(value):
                break
            step_size *= 0.5
        u = trial
        value, grad, hess, t = evaluate(u)
        if np.max(np.abs(step_size * step)) < 1e-11:
            return t, it + 1
    raise AssertionError(f"reference Newton did not converge for {family.name} from {theta}")


@pytest.fixture
def newton() -> Callable[..., tuple[np.ndarray, int]]:
    return _newton
