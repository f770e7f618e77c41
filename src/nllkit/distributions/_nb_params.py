r"""Converters between the negative binomial's parameterizations.

nllkit's :data:`~nllkit.distributions.negative_binomial` uses ``(mean, size)``:
``Y`` counts failures before the ``size``-th success, with

.. math:: E[Y] = \mu, \qquad \mathrm{Var}[Y] = \mu + \mu^2 / r

(``size`` = :math:`r` is R's ``size``, scvi's ``theta``). The other ecosystems:

============================  ==========================  ====================================
ecosystem                     parameters                  relation to ``(mean, size)``
============================  ==========================  ====================================
scipy ``nbinom(n, p)``, R     ``n``, success prob ``p``   ``n = size``, ``p = size/(size+mean)``
torch ``NegativeBinomial``    ``total_count``, ``probs``  ``total_count = size``,
                                                          ``probs = mean/(size+mean) = 1 - p``
torch, with ``logits``        ``total_count``, ``logits`` ``logits = log(mean) - log(size)``
statsmodels NB2               ``mu``, ``alpha``           ``mu = mean``, ``alpha = 1/size``
============================  ==========================  ====================================

torch counts *successes* before ``total_count`` failures, so its ``probs`` is
scipy's ``1 - p``; the two laws are the same. Every converter takes scalars or
arrays (broadcast together), checks its inputs and returns float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nllkit.distributions._family import FloatArray

_NAME = "negative_binomial"


def _checked(name: str, value: Any, low: float, high: float, expected: str) -> FloatArray:
    """``value`` as float64, every element in the open interval (low, high)."""
    array = np.asarray(value, dtype=float)
    bad = ~((array > low) & (array < high))
    if bad.any():
        first = array.ravel()[np.flatnonzero(bad.ravel())[0]].item()
        raise ValueError(f"{_NAME}: {name} must be {expected}; got {first!r}")
    return array


def _positive(name: str, value: Any) -> FloatArray:
    return _checked(name, value, 0.0, np.inf, "positive and finite")


def _probability(name: str, value: Any) -> FloatArray:
    return _checked(name, value, 0.0, 1.0, "in (0, 1)")


def nb_to_scipy(mean: Any, size: Any) -> tuple[FloatArray, FloatArray]:
    r"""``(mean, size)`` to scipy's ``nbinom(n, p)``: ``n = size``, ``p = size / (size + mean)``.

    Parameters
    ----------
    mean, size : float or array_like
        Positive and finite.

    Returns
    -------
    n, p : ndarray
        The number of successes and the success probability, broadcast together.

    Examples
    --------
    >>> from scipy import stats
    >>> n, p = nb_to_scipy(4.0, 2.0)
    >>> float(n), float(p)
    (2.0, 0.3333333333333333)
    >>> round(float(stats.nbinom.mean(n, p)), 12), round(float(stats.nbinom.var(n, p)), 12)
    (4.0, 12.0)
    """
    mean, size = np.broadcast_arrays(_positive("mean", mean), _positive("size", size))
    # 1 / (1 + mean/size) keeps p accurate when size >> mean.
    return size.astype(float), 1.0 / (1.0 + mean / size)


def nb_from_scipy(n: Any, p: Any) -> tuple[FloatArray, FloatArray]:
    r"""scipy's ``nbinom(n, p)`` to ``(mean, size)``: ``mean = n (1 - p) / p``, ``size = n``.

    Parameters
    ----------
    n : float or array_like
        Number of successes, positive (need not be an integer).
    p : float or array_like
        Success probability in (0, 1).

    Returns
    -------
    mean, size : ndarray

    Examples
    --------
    >>> mean, size = nb_from_scipy(2.0, 1 / 3)
    >>> round(float(mean), 12), float(size)
    (4.0, 2.0)
    """
    n, p = np.broadcast_arrays(_positive("n", n), _probability("p", p))
    return n * (1.0 - p) / p, n.astype(float)


def nb_to_torch(mean: Any, size: Any, *, logits: bool = False) -> tuple[FloatArray, FloatArray]:
    r"""``(mean, size)`` to torch's ``NegativeBinomial(total_count, probs)`` (or ``logits``).

    torch counts successes before ``total_count`` failures with success
    probability ``probs``, so ``total_count = size`` and
    ``probs = mean / (size + mean)``, or ``logits = log(mean) - log(size)``
    (computed from the logs, exact for any ratio).

    Parameters
    ----------
    mean, size : float or array_like
        Positive and finite.
    logits : bool
        Return ``logits`` instead of ``probs``.

    Returns
    -------
    total_count, probs_or_logits : ndarray

    Examples
    --------
    >>> total_count, probs = nb_to_torch(4.0, 2.0)
    >>> float(total_count), float(probs)
    (2.0, 0.6666666666666666)
    >>> float(nb_to_torch(4.0, 2.0, logits=True)[1])
    0.6931471805599453
    """
    mean, size = np.broadcast_arrays(_positive("mean", mean), _positive("size", size))
    if logits:
        return size.astype(float), np.log(mean) - np.log(size)
    return size.astype(float), 1.0 / (1.0 + size / mean)


def nb_from_torch(total_count: Any, probs: Any = None, *, logits: Any = None) -> tuple[FloatArray, FloatArray]:
    r"""torch's ``NegativeBinomial(total_count, probs | logits)`` to ``(mean, size)``.

    ``mean = total_count * probs / (1 - probs) = total_count * exp(logits)``
    and ``size = total_count``. Give exactly one of ``probs`` and ``logits``,
    as torch requires.

    Parameters
    ----------
    total_count : float or array_like
        Positive.
    probs : float or array_like, optional
        In (0, 1).
    logits : float or array_like, optional
        Finite.

    Returns
    -------
    mean, size : ndarray

    Examples
    --------
    >>> mean, size = nb_from_torch(2.0, logits=0.6931471805599453)
    >>> round(float(mean), 12), float(size)
    (4.0, 2.0)
    """
    if (probs is None) == (logits is None):
        given = "both" if probs is not None else "neither"
        raise ValueError(f"{_NAME}: exactly one of probs and logits must be given; got {given}")
    count = _positive("total_count", total_count)
    if logits is not None:
        count, lg = np.broadcast_arrays(count, _checked("logits", logits, -np.inf, np.inf, "finite"))
        return count * np.exp(lg), count.astype(float)
    count, pr = np.broadcast_arrays(count, _probability("probs", probs))
    return count * pr / (1.0 - pr), count.astype(float)


def nb_to_statsmodels(mean: Any, size: Any) -> tuple[FloatArray, FloatArray]:
    r"""``(mean, size)`` to statsmodels' NB2 ``(mu, alpha)``: ``alpha = 1 / size``.

    statsmodels' ``NegativeBinomial(loglike_method='nb2')`` has variance
    :math:`\mu + \alpha \mu^2`; with an intercept-only model, ``exp(const) = mu``.

    Examples
    --------
    >>> mu, alpha = nb_to_statsmodels(4.0, 2.0)
    >>> float(mu), float(alpha)
    (4.0, 0.5)
    """
    mean, size = np.broadcast_arrays(_positive("mean", mean), _positive("size", size))
    return mean.astype(float), 1.0 / size


def nb_from_statsmodels(mu: Any, alpha: Any) -> tuple[FloatArray, FloatArray]:
    r"""statsmodels' NB2 ``(mu, alpha)`` to ``(mean, size)``: ``size = 1 / alpha``.

    Examples
    --------
    >>> mean, size = nb_from_statsmodels(4.0, 0.5)
    >>> float(mean), float(size)
    (4.0, 2.0)
    """
    mu, alpha = np.broadcast_arrays(_positive("mu", mu), _positive("alpha", alpha))
    return mu.astype(float), 1.0 / alpha
