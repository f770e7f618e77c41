"""Distribution families whose negative log-likelihoods :func:`nllkit.fit` minimizes.

Every family is an instance of a :class:`Family` subclass: ``normal.logpdf(x,
loc, scale)``, ``normal.nll({'loc': 0, 'scale': 1}, data)``, and
``normal(loc=0, scale=1)`` for a frozen distribution. :func:`get_family`
finds one by name (``'normal'``, ``'t'``, ``'zinb'`` ...).

Examples
--------
>>> from nllkit.distributions import poisson, get_family
>>> round(float(poisson.logpdf(200, 180.0)), 6)
-4.640617
>>> get_family("nbinom").param_names
('mean', 'size')
"""

from nllkit.distributions._beta import beta
from nllkit.distributions._categorical import bernoulli, binomial, categorical
from nllkit.distributions._counts import (
    geometric,
    negative_binomial,
    poisson,
    zero_inflated_negative_binomial,
    zero_inflated_poisson,
)
from nllkit.distributions._family import Domain, Family, Sample, Support
from nllkit.distributions._frozen import Frozen
from nllkit.distributions._location_scale import laplace, logistic, student_t
from nllkit.distributions._nb_params import (
    nb_from_scipy,
    nb_from_statsmodels,
    nb_from_torch,
    nb_to_scipy,
    nb_to_statsmodels,
    nb_to_torch,
)
from nllkit.distributions._normal import normal
from nllkit.distributions._positive import exponential, gamma, lognormal, weibull
from nllkit.distributions._registry import FAMILY_NAMES, get_family

__all__ = [
    "FAMILY_NAMES",
    "Domain",
    "Family",
    "Frozen",
    "Sample",
    "Support",
    "bernoulli",
    "beta",
    "binomial",
    "categorical",
    "exponential",
    "gamma",
    "geometric",
    "get_family",
    "laplace",
    "logistic",
    "lognormal",
    "nb_from_scipy",
    "nb_from_statsmodels",
    "nb_from_torch",
    "nb_to_scipy",
    "nb_to_statsmodels",
    "nb_to_torch",
    "negative_binomial",
    "normal",
    "poisson",
    "student_t",
    "weibull",
    "zero_inflated_negative_binomial",
    "zero_inflated_poisson",
]
