"""``Fit``: a maximum-likelihood estimate with its uncertainty, information criteria and status."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from nllkit.distributions._family import Family, FloatArray, Sample
from nllkit.fitting._problem import Problem, Scaling, Solution

if TYPE_CHECKING:
    from nllkit.fitting._bootstrap import Bootstrap
    from nllkit.fitting._gof import GoodnessOfFit

__all__ = ["Fit"]

_CI_METHODS = ("wald", "profile", "bootstrap")
_CI_LABELS = {"wald": "Wald", "profile": "profile", "bootstrap": "bootstrap"}


def check_level(fn: str, level: Any) -> float:
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: level must be a real number; got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"{fn}: level must be in (0, 1); got {level!r}")
    return value


def format_rows(rows: Sequence[Sequence[str]]) -> list[str]:
    """Table lines: the first column left-aligned, the others right-aligned, two spaces apart."""
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    return [
        "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]).rstrip()
        for row in rows
    ]


class Fit:
    r"""The result of :func:`nllkit.fitting.fit`.

    Attributes
    ----------
    family : Family
        The family fitted (bound to the data's structure where it has any).
    params : dict of str to float
        The estimates, in the family's parameter order.
    se : dict of str to float
        Standard errors :math:`\sqrt{\mathrm{diag}\, V}`; 0.0 for held
        parameters, NaN when the observed information is not positive definite.
    vcov : ndarray, shape (p, p)
        :math:`V`, the inverse of the observed information (the Hessian of the
        NLL in the family's parameters at the estimate) over the free
        parameters; held parameters have zero rows and columns.
    corr : ndarray, shape (p, p)
        The correlation matrix from ``vcov`` (zero rows and columns for held parameters).
    loglik : float
        The maximized (weighted) log-likelihood.
    aic, aicc, bic : float
        :math:`2k - 2\ell`; :math:`\mathrm{AIC} + 2k(k+1)/(n-k-1)` (NaN when
        :math:`n - k - 1 \le 0`); :math:`k \log n - 2\ell`.
    n : float
        The number of observations: the total weight.
    k : int
        The number of estimated parameters.
    converged : bool
        Whether the gradient of the mean NLL at the estimate is about zero
        (closed-form estimates count as converged).
    message : str
        How the estimate was found, and any reason for NaN standard errors.
    n_iter : int
        Optimizer iterations (0 for a closed form).
    dist : Frozen
        The fitted distribution (logpdf, cdf, ppf, mean, var, sample).
    data : Sample or CensoredSample
        The data fitted, on their own scale: values and positive weights
        (for a discrete family, the table of distinct values and their total
        weights); for censored data, the observations grouped by kind.
    """

    def __init__(
        self,
        *,
        family: Family,
        theta: FloatArray,
        free: np.ndarray,
        k: int,
        vcov: FloatArray,
        loglik: float,
        n: float,
        converged: bool,
        message: str,
        n_iter: int,
        problem: Problem,
        solution: Solution,
        scaling: Scaling,
    ) -> None:
        self.family = family
        self.theta = np.asarray(theta, dtype=float)
        self.free = np.asarray(free, dtype=bool)
        self.k = int(k)
        self.vcov = vcov
        self.loglik = float(loglik)
        self.n = float(n)
        self.converged = bool(converged)
        self.message = message
        self.n_iter = int(n_iter)
        self._problem = problem
        self._solution = solution
        self._scaling = scaling
        self._profiles: dict[float, dict[int, tuple[float, float]]] = {}
        self._dist: Any = None
        self._bootstraps: dict[tuple[str, int, int], Bootstrap] = {}

    # --- estimates -----------------------------------------------------------------------------

    @property
    def params(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.family.param_names, self.theta, strict=True)}

    @property
    def _se(self) -> FloatArray:
        return np.sqrt(np.where(self.free, np.diag(self.vcov), 0.0))

    @property
    def se(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.family.param_names, self._se, strict=True)}

    @property
    def corr(self) -> FloatArray:
        se = self._se
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = self.vcov / np.outer(se, se)
        held = ~self.free
        corr[held, :] = 0.0
        corr[:, held] = 0.0
        return corr

    # --- information criteria ------------------------------------------------------------------

    @property
    def aic(self) -> float:
        return 2.0 * self.k - 2.0 * self.loglik

    @property
    def aicc(self) -> float:
        room = self.n - self.k - 1.0
        return self.aic + 2.0 * self.k * (self.k + 1.0) / room if room > 0.0 else math.nan

    @property
    def bic(self) -> float:
        return self.k * math.log(self.n) - 2.0 * self.loglik

    # --- the fitted distribution ---------------------------------------------------------------

    @property
    def dist(self) -> Any:
        if self._dist is None:
            from nllkit.distributions._frozen import Frozen

            self._dist = Frozen(self.family, self.theta)
        return self._dist

    @property
    def data(self) -> Any:
        sample: Any = self._problem.sample
        if self._scaling.s == 1.0:
            return sample
        # The fit divided the data by a power of two: multiplying back is exact.
        if isinstance(sample, Sample):
            return Sample(sample.x * self._scaling.s, sample.w)
        return sample.scaled(1.0 / self._scaling.s)  # censored observations

    # --- confidence intervals ------------------------------------------------------------------

    def ci(
        self,
        level: float = 0.95,
        method: str = "wald",
        *,
        n_boot: int = 999,
        kind: str = "parametric",
        seed: Any = None,
        functions: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> dict[str, tuple[float, float]]:
        r"""Confidence intervals for every parameter (held ones are a single point).

        Parameters
        ----------
        level : float
            The confidence level, in (0, 1).
        method : {'wald', 'profile', 'bootstrap'}
            ``'wald'``: :math:`\hat\theta_k \pm z_{(1+\text{level})/2}\, \mathrm{se}_k`
            in the family's own parameter (the textbook definition: symmetric,
            and it can leave the domain of a scale parameter for small
            samples). ``'profile'``: the profile-likelihood interval
            :math:`\{t : 2(\min_{\theta_{-k}} \mathrm{NLL}(t, \theta_{-k}) - \mathrm{NLL}_{\min})
            \le \chi^2_{1,\text{level}}\}`, found as Minuit's MINOS does by
            re-optimizing the other parameters; it follows the likelihood's
            asymmetry and is invariant under reparametrization.
            ``'bootstrap'``: the percentile interval
            :math:`[q_{(1-\text{level})/2}, q_{(1+\text{level})/2}]` of
            ``n_boot`` refits (see :meth:`bootstrap`).
        n_boot, kind, seed
            The bootstrap's settings (``method='bootstrap'`` only): the number
            of refits, ``'parametric'`` or ``'nonparametric'``, and an int
            seed or a :class:`numpy.random.Generator`. With an int seed the
            replicates are kept, so later calls with the same settings (other
            levels, other functions) reuse them.
        functions : mapping of str to callable, optional
            More quantities to bound (``method='bootstrap'`` only), by name:
            each takes the fitted distribution of a replicate (a
            :class:`~nllkit.distributions.Frozen`) and returns a number, such
            as ``{'median': lambda d: d.ppf(0.5), 'mean': lambda d: d.mean()}``.

        Returns
        -------
        dict of str to (float, float)
            The parameters, in order, then ``functions``.

        Examples
        --------
        >>> import numpy as np
        >>> from nllkit.fitting import fit
        >>> result = fit(np.random.default_rng(0).gamma(2.0, 3.0, size=300), "gamma")
        >>> wald, boot = result.ci()["shape"], result.ci(method="bootstrap", n_boot=200, seed=0)["shape"]
        >>> bool(abs(wald[0] - boot[0]) < 0.2 and abs(wald[1] - boot[1]) < 0.2)
        True
        >>> lo, hi = result.ci(method="bootstrap", n_boot=200, seed=0, functions={"p90": lambda d: d.ppf(0.9)})["p90"]
        >>> bool(lo < float(result.dist.ppf(0.9)) < hi)
        True
        """
        level = check_level("Fit.ci", level)
        if method not in _CI_METHODS:
            raise ValueError(f"Fit.ci: method must be one of {', '.join(map(repr, _CI_METHODS))}; got {method!r}")
        if functions is not None and method != "bootstrap":
            raise ValueError(f"Fit.ci: functions must be None unless method='bootstrap'; got method={method!r}")
        theta, se = self.theta, self._se
        if method == "bootstrap":
            boot = self.bootstrap(n_boot, kind=kind, seed=seed)
            out = boot.ci(level)
            for name, func in (functions or {}).items():
                if name in out:
                    raise ValueError(f"Fit.ci: functions must not reuse a parameter's name; got {name!r}")
                lo, hi = boot.ci_of(func, level)
                out[name] = (float(lo), float(hi))
            return out
        if method == "wald":
            z = float(special.ndtri(0.5 + 0.5 * level))
            ends = {k: (theta[k] - z * se[k], theta[k] + z * se[k]) for k in range(theta.size)}
        else:
            if level not in self._profiles:
                from nllkit.fitting._profile import profile_intervals

                self._profiles[level] = profile_intervals(self._problem, self._solution, self._scaling, level, se)
            profiled = self._profiles[level]
            ends = {k: profiled.get(k, (theta[k], theta[k])) for k in range(theta.size)}
        return {name: (float(ends[k][0]), float(ends[k][1])) for k, name in enumerate(self.family.param_names)}

    # --- resampling ----------------------------------------------------------------------------

    def bootstrap(
        self,
        n_boot: int = 999,
        *,
        kind: str = "parametric",
        seed: Any = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> Bootstrap:
        r"""Refit the family to ``n_boot`` resampled data sets: the bootstrap distribution of the estimates.

        Parametric: samples of size :math:`n` from the fitted distribution.
        Nonparametric: the data resampled with replacement (integer weights
        are counts of identical observations; non-integer weights, continuous
        data only, make the rows the units, each carrying its weight;
        censored rows are resampled whole, and only nonparametrically). Each
        replicate is refitted with the same family and held parameters; the
        percentile intervals of :meth:`Bootstrap.ci` and
        :meth:`Bootstrap.ci_of` come from them. Refits that raise, do not
        converge or land on the boundary of the parameter space are counted
        in ``n_failed`` (with a :class:`FitWarning`), not used.

        The cost is ``n_boot`` fits: about 0.1-0.5 ms each for a closed-form
        family at n = 500 and a few ms for one fitted by Newton's method
        (student_t), so 999 replicates take from a fraction of a second to a few seconds.

        Parameters
        ----------
        n_boot : int
            The number of replicates (at least 1; 999 or more for stable 95% ends).
        kind : {'parametric', 'nonparametric'}
        seed : int, numpy.random.Generator or None
            The same int seed gives the same replicates (and, on this fit, the same cached object).
        progress : callable, optional
            Called as ``progress(done, n_boot)`` after each replicate (for a progress bar).

        Returns
        -------
        Bootstrap

        Raises
        ------
        ValueError
            A parametric bootstrap of a fit with non-integer weights (the
            simulated sample size would be undefined) or of censored data;
            ``n_boot`` below 1; an unknown ``kind``; every refit failing.

        Examples
        --------
        >>> import numpy as np
        >>> from nllkit.fitting import fit
        >>> result = fit(np.random.default_rng(0).poisson(4.0, size=500), "poisson")
        >>> boot = result.bootstrap(300, seed=0)
        >>> bool(abs(boot.se["rate"] / result.se["rate"] - 1.0) < 0.15)
        True
        >>> boot is result.bootstrap(300, seed=0), boot.n_failed
        (True, 0)
        """
        from nllkit.fitting._bootstrap import bootstrap, seed_label

        label = seed_label(seed)
        key = (kind, n_boot, label) if label is not None else None
        if key is not None and key in self._bootstraps:
            return self._bootstraps[key]
        result = bootstrap(self, n_boot, kind=kind, seed=seed, progress=progress)
        if key is not None:
            self._bootstraps[key] = result
        return result

    def gof(
        self, n_boot: int = 199, *, seed: Any = None, progress: Callable[[int, int], Any] | None = None
    ) -> GoodnessOfFit:
        r"""Goodness of fit: Kolmogorov-Smirnov, Cramer-von Mises, Anderson-Darling (and chi-square, discrete).

        The statistics compare the fitted CDF with the data's ECDF (see
        :mod:`nllkit.fitting._gof` for the formulas; the continuous ones are
        those of :func:`scipy.stats.goodness_of_fit`, the discrete ones
        Choulakian, Lockhart and Stephens' analogues on the support points,
        plus :math:`X^2` over bins of expected count at least 5 with
        :math:`\mathrm{df} = \text{bins} - 1 - k`). Their p-values come from
        a parametric bootstrap that accounts for the estimated parameters:
        ``n_boot`` samples of size :math:`n` from the fitted distribution,
        each refitted with the same family and held parameters,
        :math:`p = (1 + \#\{T^*_b \ge T\}) / (1 + B)`. The smallest
        attainable p-value is :math:`1 / (1 + B)`.

        Weights must be integer counts (the data are the expanded sample);
        censored data are refused. A saturated family (bernoulli,
        categorical) reproduces the observed frequencies exactly: its
        statistics are 0 and its p-values 1.

        The cost is ``n_boot`` fits plus the statistics: at n = 500, about
        0.1 s for 199 refits of a closed-form family (normal, gamma, poisson)
        and about a second for one fitted by Newton's method (student_t).

        Parameters
        ----------
        n_boot : int
            The number of bootstrap refits; 0 computes the statistics only (p-values NaN).
        seed : int, numpy.random.Generator or None
            The same seed gives the same p-values.
        progress : callable, optional
            Called as ``progress(done, n_boot)`` after each refit.

        Returns
        -------
        GoodnessOfFit
            ``statistic``, ``pvalue``, ``null`` by key (``'ks'``, ``'cvm'``,
            ``'ad'``, ``'chi2'``), ``str()`` a table, ``to_dict()``.

        Examples
        --------
        >>> import numpy as np
        >>> from nllkit.fitting import fit
        >>> x = np.random.default_rng(0).normal(size=200)
        >>> test = fit(x, "normal").gof(n_boot=99, seed=0)
        >>> sorted(test.statistic), bool(test.pvalue["ad"] > 0.05)
        (['ad', 'cvm', 'ks'], True)
        >>> bool(fit(np.exp(x), "normal").gof(n_boot=99, seed=0).pvalue["ad"] < 0.05)
        True
        """
        from nllkit.fitting._gof import gof

        return gof(self, n_boot, seed=seed, progress=progress)

    # --- reports -------------------------------------------------------------------------------

    def summary(
        self, level: float = 0.95, method: str = "wald", *, gof: GoodnessOfFit | None = None, **options: Any
    ) -> str:
        """A printed table: parameter, estimate, SE, interval; then loglik, AIC, AICc, BIC, n, status.

        Parameters
        ----------
        level, method, **options
            The intervals, as for :meth:`ci` (95% Wald by default).
        gof : GoodnessOfFit, optional
            A :meth:`gof` result, whose table is appended.

        Notes
        -----
        For censored data a line says how many observations (total weight)
        were exact and left-, right- or interval-censored; rows that carry no
        information (censored beyond the support) are counted in ``n`` only.

        Examples
        --------
        >>> from nllkit.fitting import Censored, fit
        >>> data = Censored([1.2, 0.4, 2.2], right=[3.0, 3.0], interval=[[0.5, 1.0]])
        >>> print(fit(data, "exponential").summary())  # doctest: +ELLIPSIS
        exponential fitted by maximum likelihood
        parameter  estimate      SE           95% CI (Wald)
        rate       0.379431  0.1898  [0.00745622, 0.751406]
        loglik -8.57098  AIC 19.142  AICc 20.142  BIC 18.9337  n 6  k 1
        converged: yes; ...
        censored data: 3 exact, 2 right-censored, 1 interval-censored (n 6)
        """
        names = self.family.param_names
        ci = self.ci(level, method, **options)
        rows = [("parameter", "estimate", "SE", f"{100.0 * level:g}% CI ({_CI_LABELS[method]})")]
        for k, name in enumerate(names):
            if self.free[k]:
                lo, hi = ci[name]
                rows.append((name, f"{self.theta[k]:.6g}", f"{self._se[k]:.4g}", f"[{lo:.6g}, {hi:.6g}]"))
            else:
                rows.append((name, f"{self.theta[k]:.6g}", "fixed", ""))
        lines = [f"{self.family.name} fitted by maximum likelihood", *format_rows(rows)]
        lines.append(
            f"loglik {self.loglik:.6g}  AIC {self.aic:.6g}  AICc {self.aicc:.6g}  BIC {self.bic:.6g}  "
            f"n {self.n:g}  k {self.k}"
        )
        lines.append(f"converged: {'yes' if self.converged else 'NO'}; {self.message}")
        censoring = self._censoring()
        if censoring:
            lines.append(censoring)
        if gof is not None:
            lines.append(str(gof))
        return "\n".join(lines)

    def _censoring(self) -> str:
        """The summary's line on censored data: the weight of each kind of observation ('' without censoring)."""
        data = self._problem.sample
        if isinstance(data, Sample):
            return ""
        kinds = {"exact": data.exact, "left-censored": data.left, "right-censored": data.right}
        kinds["interval-censored"] = data.interval
        counts = ", ".join(f"{part.n:g} {kind}" for kind, part in kinds.items() if part.n > 0.0)
        return f"censored data: {counts} (n {data.n:g})"

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python floats, lists, strings and bools (``json.dumps`` takes it; NaN stays NaN)."""
        return {
            "family": self.family.name,
            "params": self.params,
            "se": self.se,
            "fixed": [name for name, free in zip(self.family.param_names, self.free, strict=True) if not free],
            "vcov": self.vcov.tolist(),
            "corr": self.corr.tolist(),
            "loglik": self.loglik,
            "aic": self.aic,
            "aicc": self.aicc,
            "bic": self.bic,
            "n": self.n,
            "k": self.k,
            "converged": self.converged,
            "message": self.message,
            "n_iter": self.n_iter,
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={value:.6g}" for name, value in self.params.items())
        status = "" if self.converged else ", not converged"
        return f"<Fit {self.family.name}({params}), loglik={self.loglik:.6g}, n={self.n:g}{status}>"

    def plot(self, kind: str = "all", *, ax: Any = None) -> Any:
        r"""Diagnostic plots of the fit: density, Q-Q, P-P, CDF, or all four (needs matplotlib).

        ``'density'``: histogram (or, discrete, the observed frequencies) with
        :math:`f(x; \hat\theta)`; ``'qq'``: :math:`F^{-1}(p_i; \hat\theta)`
        against the sorted data, with Hazen's positions
        :math:`p_i = (i - 1/2)/n`; ``'pp'``: :math:`F(x_{(i)}; \hat\theta)`
        against :math:`p_i`; ``'cdf'``: the empirical step CDF with
        :math:`F(x; \hat\theta)`. See :mod:`nllkit.fitting._plot`.

        Parameters
        ----------
        kind : {'density', 'qq', 'pp', 'cdf', 'all'}
            ``'all'`` draws the four on a 2x2 figure.
        ax : matplotlib Axes, optional
            Where to draw a single kind; a new figure when None.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ImportError
            matplotlib is missing (``pip install 'nllkit[plot]'``).

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")  # draw off screen, for files
        >>> import numpy as np
        >>> from nllkit.fitting import fit
        >>> result = fit(np.random.default_rng(0).gamma(2.0, size=200), "gamma")
        >>> figure = result.plot()
        >>> [ax.get_title() for ax in figure.axes]
        ['Density', 'CDF', 'Q-Q plot', 'P-P plot']
        >>> figure.savefig("gamma-fit.png")  # doctest: +SKIP
        >>> import matplotlib.pyplot as plt; plt.close(figure)  # pyplot keeps every figure until closed
        """
        from nllkit.fitting._plot import plot

        return plot([self], kind, ax=ax, fn="Fit.plot")
