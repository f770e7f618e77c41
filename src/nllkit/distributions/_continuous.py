"""Machinery shared by the continuous families: support-aware evaluation and per-sample caching.

An optimizer asks a family for the NLL's gradient and Hessian at the same
parameters, often twice, and on the same sample at every iteration; what
depends only on the sample (logs, sufficient statistics) or on the sample and
the parameters (standardized values and their transforms) is computed once
and kept in a :class:`SampleMemo` for as long as that sample lives.
"""

from __future__ import annotations

import abc
import math
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

from nllkit.distributions._family import Family, FloatArray, Sample

T = TypeVar("T")


def piecewise(
    x: Any,
    inside: Callable[[FloatArray], Any],
    below: float,
    above: float,
    lower: float = 0.0,
    upper: float = math.inf,
    open_lower: bool = False,
) -> FloatArray:
    """``inside(x)`` on the finite ``x`` in [lower, upper], ``below``/``above`` beyond, NaN kept.

    ``inside`` only ever sees values in the interval (the others are replaced by
    a harmless one), so it never warns about logs of negatives; the formulas
    are written in log space and broadcast against the parameters.

    Examples
    --------
    >>> piecewise([-1.0, 0.5, 2.0, np.nan], np.log, -np.inf, 0.0, upper=1.0)
    array([       -inf, -0.69314718,  0.        ,         nan])
    """
    x = np.asarray(x, dtype=float)
    low = (x <= lower) if open_lower else (x < lower)
    high = x > upper
    ok = ~(low | high) & np.isfinite(x)
    safe = np.where(ok | np.isnan(x), x, 0.5 * (lower + min(upper, lower + 2.0)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = inside(safe)
    return np.where(low, below, np.where(high | (x == np.inf), above, values))


def log1mexp(a: Any) -> FloatArray:
    r""":math:`\log(1 - e^{a})` for :math:`a \le 0`, accurate at both ends (Maechler 2012).

    ``log(-expm1(a))`` near 0, where :math:`e^a` is close to 1, and
    ``log1p(-exp(a))`` below :math:`-\log 2`, where it is small; ``-inf`` at
    :math:`a = 0` and 0 at :math:`a = -\infty`.

    Examples
    --------
    >>> log1mexp(np.array([-1e-20, -1.0, -700.0]))
    array([-4.60517019e+001, -4.58675145e-001, -9.85967654e-305])
    """
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(a > -math.log(2.0), np.log(-np.expm1(np.minimum(a, -0.0))), np.log1p(-np.exp(a)))


def unit_quantile(q: Any, inside: Callable[[FloatArray], Any]) -> FloatArray:
    """A quantile function, NaN outside [0, 1] (where some closed forms, -log1p(-q) say, stay finite)."""
    return piecewise(q, inside, np.nan, np.nan, upper=1.0)


class SampleMemo:
    """Values computed from one :class:`Sample`, kept while it is alive and the one asked about.

    Each ``label`` holds one value with a ``tag`` (the parameters' bytes, say):
    asking with another tag recomputes and replaces it, so the memo never
    grows. Asking about another sample starts afresh; the memo lets go of the
    values when their sample is garbage-collected. A sample's arrays are taken
    to be immutable, as :class:`Sample` is frozen.

    Examples
    --------
    >>> memo = SampleMemo()
    >>> sample = Sample(np.array([1.0, 2.0]), np.ones(2))
    >>> memo.get(sample, "n", None, lambda: sample.n), memo.get(sample, "n", None, lambda: -1.0)
    (2.0, 2.0)
    """

    def __init__(self) -> None:
        # One (weak reference, entries) pair, replaced as a whole, so that a concurrent caller
        # holding the previous pair never reads entries computed from another sample.
        self._state: tuple[weakref.ref[Sample], dict[str, tuple[Hashable, Any]]] | None = None

    def get(self, sample: Sample, label: str, tag: Hashable, compute: Callable[[], T]) -> T:
        state = self._state
        if state is None or state[0]() is not sample:
            state = (weakref.ref(sample, self._forget), {})
            self._state = state
        entry = state[1].get(label)
        if entry is not None and entry[0] == tag:
            return entry[1]  # type: ignore[no-any-return]
        value = compute()
        state[1][label] = (tag, value)
        return value

    def _forget(self, ref: weakref.ref[Sample]) -> None:
        state = self._state
        if state is not None and state[0] is ref:
            self._state = None


class MemoFamily(Family):
    """A family with a :class:`SampleMemo` of its own."""

    def __init__(self) -> None:
        self.memo = SampleMemo()

    def at(self, theta: FloatArray, sample: Sample, compute: Callable[[], T]) -> T:
        """``compute()``, the per-value pieces at ``theta``, remembered for the next call at the same point."""
        return self.memo.get(sample, "at", np.asarray(theta, dtype=float).tobytes(), compute)


def log_sample(family: MemoFamily, sample: Sample) -> Sample:
    """The sample of the logs of the values (remembered per sample)."""
    return family.memo.get(sample, "log", None, lambda: Sample(np.log(sample.x), sample.w))


class SufficientStatistics(MemoFamily):
    """A family whose NLL depends on the data only through a few additive sums.

    Subclasses give :meth:`stats` (one pass over the data; sums over chunks add
    up) and :meth:`_derivatives` (the NLL, gradient and Hessian from them at
    O(1) cost), which serve :meth:`nll_grad` and :meth:`nll_hess`: after the
    first call on a sample, an optimizer's iterations cost nothing per value.
    """

    @staticmethod
    @abc.abstractmethod
    def stats(sample: Sample) -> tuple[float, ...]:
        """The additive sufficient statistics of ``sample``."""

    @staticmethod
    @abc.abstractmethod
    def _derivatives(theta: FloatArray, stats: Any) -> tuple[float, FloatArray, FloatArray]:
        """The NLL, its gradient and its Hessian from :meth:`stats`."""

    def sample_stats(self, sample: Sample) -> Any:
        """:meth:`stats`, remembered per sample."""
        return self.memo.get(sample, "stats", None, lambda: self.stats(sample))

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        value, grad, _ = self._derivatives(theta, self.sample_stats(sample))
        return value, grad

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        return self._derivatives(theta, self.sample_stats(sample))[2]
