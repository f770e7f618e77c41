"""Families by name, imported lazily, and the families that suit a data set's support.

Names map to ``(module, attribute)`` pairs inside :mod:`nllkit.distributions`
and the module is imported only when a family is asked for, so looking up one
family never imports the others (and a family whose module is missing fails
only when asked for).

Examples
--------
>>> from nllkit.distributions._registry import get_family
>>> get_family("normal").param_names
('loc', 'scale')
>>> get_family("normal") is get_family(get_family("normal"))
True
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from nllkit.distributions._family import Family

__all__ = ["AUTO_FAMILIES", "FAMILY_NAMES", "auto_families", "get_family", "support_kind"]

_LOCATIONS: dict[str, tuple[str, str]] = {
    "normal": ("_normal", "normal"),
    "student_t": ("_location_scale", "student_t"),
    "laplace": ("_location_scale", "laplace"),
    "logistic": ("_location_scale", "logistic"),
    "lognormal": ("_positive", "lognormal"),
    "exponential": ("_positive", "exponential"),
    "gamma": ("_positive", "gamma"),
    "weibull": ("_positive", "weibull"),
    "beta": ("_beta", "beta"),
    "bernoulli": ("_categorical", "bernoulli"),
    "binomial": ("_categorical", "binomial"),
    "categorical": ("_categorical", "categorical"),
    "poisson": ("_counts", "poisson"),
    "geometric": ("_counts", "geometric"),
    "negative_binomial": ("_counts", "negative_binomial"),
    "zero_inflated_poisson": ("_counts", "zero_inflated_poisson"),
    "zero_inflated_negative_binomial": ("_counts", "zero_inflated_negative_binomial"),
}

#: Every family's canonical name, in the issue's order.
FAMILY_NAMES: tuple[str, ...] = tuple(_LOCATIONS)

#: Other spellings accepted by :func:`get_family`.
_ALIASES = {
    "t": "student_t",
    "gaussian": "normal",
    "nbinom": "negative_binomial",
    "zip": "zero_inflated_poisson",
    "zinb": "zero_inflated_negative_binomial",
}

_REAL = ("normal", "student_t", "laplace", "logistic")
_POSITIVE = (*_REAL, "lognormal", "exponential", "gamma", "weibull")
_COUNTS = ("poisson", "geometric", "negative_binomial", "zero_inflated_poisson", "zero_inflated_negative_binomial")

#: The families ``compare(data, 'auto')`` tries, by the kind of support the data show.
AUTO_FAMILIES: dict[str, tuple[str, ...]] = {
    "real": _REAL,
    "positive": _POSITIVE,
    "unit": (*_POSITIVE, "beta"),
    "counts": _COUNTS,
    "binary": ("bernoulli",),
}


def get_family(family: Any) -> Family:
    """The family named ``family`` (a :class:`Family` instance is returned as it is).

    Parameters
    ----------
    family : str or Family
        A name from :data:`FAMILY_NAMES` (case-insensitive, ``'-'`` or ``' '``
        for ``'_'``), an alias (``'t'``, ``'zip'``, ``'zinb'``, ``'nbinom'``,
        ``'gaussian'``), or a family.

    Returns
    -------
    Family

    Raises
    ------
    TypeError
        If ``family`` is neither a string nor a family.
    ValueError
        If the name is unknown (the message lists the known names).
    ImportError
        If the family's module is not available.
    """
    if isinstance(family, Family):
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a Family or one of its names; got {type(family).__name__}")
    key = family.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in _LOCATIONS:
        raise ValueError(f"family must be one of {', '.join(FAMILY_NAMES)}; got {family!r}")
    module, attribute = _LOCATIONS[key]
    found = getattr(importlib.import_module(f"nllkit.distributions.{module}"), attribute)
    if not isinstance(found, Family):  # pragma: no cover - a wiring mistake, not a user error
        raise TypeError(f"nllkit.distributions.{module}.{attribute} is not a Family")
    return found


def support_kind(x: np.ndarray) -> str:
    """The narrowest support kind of :data:`AUTO_FAMILIES` that holds every finite value of ``x``.

    ``'binary'`` (only 0 and 1), ``'counts'`` (non-negative integers),
    ``'unit'`` (inside (0, 1)), ``'positive'`` or ``'real'``.

    Examples
    --------
    >>> import numpy as np
    >>> [support_kind(np.array(v)) for v in ([0., 1.], [0., 3.], [.2, .5], [.5, 2.], [-1., 2.])]
    ['binary', 'counts', 'unit', 'positive', 'real']
    """
    x = np.asarray(x, dtype=float)
    if x.size and np.all(x == np.floor(x)) and x.min() >= 0.0:
        return "binary" if x.max() <= 1.0 else "counts"
    if x.size and x.min() > 0.0:
        return "unit" if x.max() < 1.0 else "positive"
    return "real"


def auto_families(x: np.ndarray) -> tuple[str, ...]:
    """The names of the families that ``compare(x, 'auto')`` fits."""
    return AUTO_FAMILIES[support_kind(x)]
