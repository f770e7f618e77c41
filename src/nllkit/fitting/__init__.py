"""Maximum-likelihood fitting of univariate families: :func:`fit`, :class:`Fit` and :func:`compare`.

Censored observations (right-, left- and interval-censored) are a
:class:`Censored`, passed to :func:`fit` or :func:`compare` as the data.
A :class:`Fit` also gives bootstrap replicates (:meth:`Fit.bootstrap`, a
:class:`Bootstrap`) and goodness-of-fit tests (:meth:`Fit.gof`, a
:class:`GoodnessOfFit`).

The engine talks to a family only through the :class:`~nllkit.distributions.Family`
contract (sums over a weighted :class:`~nllkit.distributions.Sample`), so any
family, built in or user-written, fits the same way.
"""

from nllkit.fitting._bootstrap import Bootstrap
from nllkit.fitting._censored import Censored
from nllkit.fitting._compare import Comparison, compare
from nllkit.fitting._fit import fit
from nllkit.fitting._gof import GoodnessOfFit
from nllkit.fitting._result import Fit
from nllkit.fitting._warnings import ConvergenceWarning, FitWarning, HessianWarning

__all__ = [
    "Bootstrap",
    "Censored",
    "Comparison",
    "ConvergenceWarning",
    "Fit",
    "FitWarning",
    "GoodnessOfFit",
    "HessianWarning",
    "compare",
    "fit",
]
