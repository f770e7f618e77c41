"""The fitting benchmark: ``nllkit.fitting.fit`` against scipy's (and statsmodels') fits, per family.

Every family is fitted to ``n`` seeded draws (1e6 by default) and timed
(median of ``repeat`` runs, after one untimed warm-up) against its peers:
``scipy.stats.<dist>.fit`` with ``floc=0`` for the positive families (the
two-parameter model nllkit fits), scipy's defaults with a free location for
gamma, Weibull and t (what a user gets by default: a harder, different
model), and statsmodels' intercept-only count models for the negative
binomial and zero-inflated Poisson, on a smaller sample (scipy has no fit for
discrete families). Peers slower than a second are timed once. The goals:
every family under 0.5 s, closed-form ones under 50 ms.

Examples
--------
>>> from nllkit.bench._fit_cases import run_fit, format_fit_table
>>> print(format_fit_table(run_fit(n=10_000, repeat=1, peers=False)))  # doctest: +SKIP
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nllkit.bench._report import align

__all__ = ["FIT_CASES", "FitCase", "FitTiming", "format_fit_table", "run_fit"]

#: Goals in seconds at n = 1e6.
CLOSED_FORM_GOAL = 0.05
GOAL = 0.5
#: statsmodels' count models take seconds per 1e5 values: they get this many.
STATSMODELS_N = 100_000

Draw = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Peer:
    """A competitor: ``call(x)`` fits ``x``; ``n`` caps the sample it gets (None: all of it)."""

    label: str
    call: Callable[[np.ndarray], Any]
    n: int | None = None


def _scipy(dist: str, **kwargs: Any) -> Callable[[np.ndarray], Any]:
    def call(x: np.ndarray) -> Any:
        from scipy import stats

        return getattr(stats, dist).fit(x, **kwargs)

    return call


def _statsmodels(model: str) -> Callable[[np.ndarray], Any]:
    def call(y: np.ndarray) -> Any:
        import statsmodels.api as sm

        ones = np.ones((y.size, 1))
        if model == "NegativeBinomial":
            return sm.NegativeBinomial(y, ones, loglike_method="nb2").fit(disp=0)
        return sm.ZeroInflatedPoisson(y, ones, exog_infl=ones).fit(disp=0, method="newton")

    return call


@dataclass(frozen=True)
class FitCase:
    """One family: how to draw its data, what is held fixed, and its peers."""

    family: str
    draw: Draw
    fixed: dict[str, float] | None = None
    peers: tuple[Peer, ...] = field(default_factory=tuple)


def _zero_inflated(r: np.random.Generator, n: int, draw: np.ndarray) -> np.ndarray:
    return np.where(r.random(n) < 0.3, 0, draw)


FIT_CASES: tuple[FitCase, ...] = (
    FitCase("normal", lambda r, n: r.normal(1.0, 2.0, n), peers=(Peer("norm.fit", _scipy("norm")),)),
    FitCase(
        "lognormal",
        lambda r, n: r.lognormal(0.3, 0.8, n),
        peers=(Peer("lognorm.fit floc=0", _scipy("lognorm", floc=0)),),
    ),
    FitCase(
        "exponential", lambda r, n: r.exponential(2.0, n), peers=(Peer("expon.fit floc=0", _scipy("expon", floc=0)),)
    ),
    FitCase(
        "gamma",
        lambda r, n: r.gamma(2.5, 1.5, n),
        peers=(Peer("gamma.fit floc=0", _scipy("gamma", floc=0)), Peer("gamma.fit free loc", _scipy("gamma"))),
    ),
    FitCase(
        "weibull",
        lambda r, n: 3.0 * r.weibull(1.7, n),
        peers=(
            Peer("weibull_min.fit floc=0", _scipy("weibull_min", floc=0)),
            Peer("weibull_min.fit free loc", _scipy("weibull_min")),
        ),
    ),
    FitCase("student_t", lambda r, n: 2.0 * r.standard_t(5.0, n) + 1.0, peers=(Peer("t.fit", _scipy("t")),)),
    FitCase("laplace", lambda r, n: r.laplace(1.0, 2.0, n), peers=(Peer("laplace.fit", _scipy("laplace")),)),
    FitCase("logistic", lambda r, n: r.logistic(1.0, 2.0, n), peers=(Peer("logistic.fit", _scipy("logistic")),)),
    FitCase(
        "beta",
        lambda r, n: r.beta(2.0, 5.0, n),
        peers=(Peer("beta.fit floc=0 fscale=1", _scipy("beta", floc=0, fscale=1)),),
    ),
    FitCase("bernoulli", lambda r, n: (r.random(n) < 0.3).astype(float)),
    FitCase("binomial", lambda r, n: r.binomial(10, 0.3, n).astype(float), fixed={"trials": 10.0}),
    FitCase("categorical", lambda r, n: r.choice(5, n, p=[0.1, 0.2, 0.3, 0.25, 0.15]).astype(float)),
    FitCase("poisson", lambda r, n: r.poisson(3.5, n).astype(float)),
    FitCase("geometric", lambda r, n: r.geometric(0.3, n) - 1.0),
    FitCase(
        "negative_binomial",
        lambda r, n: r.negative_binomial(2.0, 1.0 / 3.0, n).astype(float),
        peers=(Peer("statsmodels NegativeBinomial", _statsmodels("NegativeBinomial"), STATSMODELS_N),),
    ),
    FitCase(
        "zero_inflated_poisson",
        lambda r, n: _zero_inflated(r, n, r.poisson(3.0, n)).astype(float),
        peers=(Peer("statsmodels ZeroInflatedPoisson", _statsmodels("ZeroInflatedPoisson"), STATSMODELS_N),),
    ),
    FitCase(
        "zero_inflated_negative_binomial",
        lambda r, n: _zero_inflated(r, n, r.negative_binomial(3.0, 0.5, n)).astype(float),
    ),
)


@dataclass(frozen=True)
class FitTiming:
    """One row: nllkit's median time for a family, and one peer's (NaN when none or unavailable)."""

    family: str
    n: int
    nllkit: float
    closed_form: bool
    converged: bool
    peer: str = ""
    peer_n: int = 0
    peer_time: float = float("nan")
    note: str = ""

    @property
    def goal(self) -> float:
        return CLOSED_FORM_GOAL if self.closed_form else GOAL

    @property
    def ratio(self) -> float:
        """How many times faster nllkit is than the peer (on the peer's ``n``, scaled linearly to ``n``)."""
        return self.peer_time * (self.n / self.peer_n) / self.nllkit if self.peer_n else float("nan")


def _median_time(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_fit(
    n: int = 1_000_000,
    repeat: int = 5,
    seed: int = 0,
    families: Sequence[str] | None = None,
    peers: bool = True,
    progress: Callable[[str], Any] | None = None,
) -> list[FitTiming]:
    """Time ``fit`` per family at ``n`` values, and its peers.

    Parameters
    ----------
    n : int
        Sample size.
    repeat : int
        Timed runs of nllkit (the median is kept); peers under a second get
        as many, slower ones one.
    seed : int
        For ``np.random.default_rng``.
    families : sequence of str, optional
        A subset of :data:`FIT_CASES` by family name.
    peers : bool
        Time the peers too (scipy's free-location t fit alone takes ~20 s at 1e6).
    progress : callable, optional
        Called with a short line before each timing.

    Returns
    -------
    list of FitTiming
        One row per (family, peer), or one per family without peers.
    """
    from nllkit.fitting import fit

    rows = []
    for case in FIT_CASES:
        if families is not None and case.family not in families:
            continue
        x = case.draw(np.random.default_rng(seed), n)
        if progress is not None:
            progress(f"nllkit {case.family}")
        result = fit(x, case.family, fixed=case.fixed)  # warm-up: imports, caches
        elapsed = _median_time(lambda: fit(x, case.family, fixed=case.fixed), repeat)  # noqa: B023
        base = FitTiming(case.family, n, elapsed, result.n_iter == 0 and result.k > 0, result.converged)
        timed = [base] if not (peers and case.peers) else []
        for peer in case.peers if peers else ():
            data = x[: peer.n] if peer.n else x
            if progress is not None:
                progress(f"{peer.label} {case.family}")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    first = _median_time(lambda: peer.call(data), 1)  # noqa: B023
                    more = _median_time(lambda: peer.call(data), repeat) if first < 1.0 else first  # noqa: B023
                timed.append(replace(base, peer=peer.label, peer_n=data.size, peer_time=more))
            except ImportError as error:
                timed.append(replace(base, peer=peer.label, note=f"not installed: {error.name}"))
        rows.extend(timed)
    return rows


def format_fit_table(rows: Sequence[FitTiming]) -> str:
    """An aligned text table: family, nllkit's time and goal, the peer, its time and the speed-up."""
    header = ("family", "n", "nllkit", "goal", "", "peer", "peer n", "peer time", "speed-up")
    lines = [header]
    for row in rows:
        ok = "ok" if row.nllkit <= row.goal and row.converged else ("NOT CONVERGED" if not row.converged else "SLOW")
        lines.append(
            (
                row.family,
                f"{row.n:.0e}",
                f"{row.nllkit * 1e3:.1f} ms",
                f"{row.goal * 1e3:.0f} ms",
                ok,
                row.peer or "-",
                f"{row.peer_n:.0e}" if row.peer_n else "",
                f"{row.peer_time * 1e3:.1f} ms" if row.peer_n else row.note,
                f"{row.ratio:.1f}x" if row.peer_n else "",
            )
        )
    text = align(lines, left=(0, 4, 5))
    text.append("speed-up: peer time / nllkit time, with a peer's time on a smaller sample scaled linearly to n")
    return "\n".join(text)
