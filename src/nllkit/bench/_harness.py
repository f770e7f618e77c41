"""Timing: warm up, repeat interleaved, summarise, and measure memory.

For each case every implementation is first warmed up (JIT compilation,
first-touch page faults), then the repetitions run *round-robin*: one call of
each implementation per repetition, starting one implementation later each
time, so that drift in the machine's speed (a shared, noisy host) reaches all
of them alike. Per-call preparation (refreshing a scratch copy, clearing a
stale gradient) runs outside the timed region, and each call's result is
dropped only after the clock stops. After the repetitions, one more untimed
call of each implementation measures its peak extra memory.

An implementation that raises is reported as skipped with the error; the
others go on.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import numpy as np

from nllkit.bench import _env
from nllkit.bench._cases import NLLKIT, Case, Implementation, plan
from nllkit.bench._memory import PeakMemory, probe

__all__ = ["Report", "Result", "Settings", "Skip", "run", "run_case"]


@dataclass(frozen=True)
class Settings:
    """How much to repeat.

    Attributes
    ----------
    warmup : int
        Untimed calls of each implementation before timing.
    min_repetitions, max_repetitions : int
        Bounds on the timed calls of each implementation.
    target_seconds : float
        The number of repetitions is chosen so that the timed loop of a case
        takes about this long (within the bounds), from the last warm-up.
    """

    warmup: int
    min_repetitions: int
    max_repetitions: int
    target_seconds: float

    @classmethod
    def for_run(cls, quick: bool) -> Settings:
        """The settings of ``nllkit bench`` (`quick`: those of the smoke test)."""
        if quick:
            return cls(warmup=1, min_repetitions=3, max_repetitions=7, target_seconds=0.5)
        return cls(warmup=2, min_repetitions=5, max_repetitions=31, target_seconds=12.0)

    def repetitions(self, seconds_per_round: float) -> int:
        """The repetition count for a round (one call of each implementation) of this length."""
        if seconds_per_round <= 0:
            return self.max_repetitions
        wanted = math.ceil(self.target_seconds / seconds_per_round)
        return max(self.min_repetitions, min(self.max_repetitions, wanted))


@dataclass(frozen=True)
class Result:
    """The timings of one implementation on one case.

    Attributes
    ----------
    case, loss, mode, dtype : str
        As in :class:`~nllkit.bench._cases.Case`.
    shape : tuple of int
    implementation : str
    times_ms : tuple of float
        Every timed call, in order.
    ratio_to_nllkit : float or None
        Median over nllkit's median on the same case (``None`` if nllkit
        could not run it).
    limit : str
        ``'read'`` or ``'copy'``.
    ratio_to_limit : float or None
        Median over the limit's median on the same case.
    peak_extra_mib : float or None
        Peak memory added by one call; ``None`` if that call failed.
    """

    case: str
    loss: str
    mode: str
    shape: tuple[int, ...]
    dtype: str
    implementation: str
    times_ms: tuple[float, ...]
    ratio_to_nllkit: float | None
    limit: str
    ratio_to_limit: float | None
    peak_extra_mib: float | None

    @property
    def median_ms(self) -> float:
        """The median time of a call."""
        return float(np.median(self.times_ms))

    @property
    def iqr_ms(self) -> float:
        """The interquartile range of the times."""
        q25, q75 = np.percentile(self.times_ms, [25, 75])
        return float(q75 - q25)

    @property
    def min_ms(self) -> float:
        """The fastest call."""
        return float(min(self.times_ms))


@dataclass(frozen=True)
class Skip:
    """An implementation that did not run on a case, and why."""

    case: str
    implementation: str
    reason: str


@dataclass
class Report:
    """Everything one run measured.

    Attributes
    ----------
    environment : dict
        From :func:`nllkit.bench._env.describe`.
    settings : dict
        ``quick``, ``threads`` and the :class:`Settings`.
    results : list of Result
        Grouped by case, in run order.
    skipped : list of Skip
    """

    environment: dict[str, Any]
    settings: dict[str, Any]
    results: list[Result] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


class Progress:
    """A status line on a stream: rewritten in place on a terminal, plain lines otherwise.

    Parameters
    ----------
    stream : file or None
        Where to write; ``None`` writes nothing.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._width = 0

    def step(self, text: str) -> None:
        """A milestone: a line of its own when not on a terminal."""
        self._write(text, always=True)

    def detail(self, text: str) -> None:
        """Fine-grained status: shown on a terminal only."""
        self._write(text, always=False)

    def _write(self, text: str, always: bool) -> None:
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
            self._width = len(text)
        elif always:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the status line on a terminal."""
        if self.stream is not None and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _timed(impl: Implementation) -> float:
    """One call of `impl`, prepared outside the clock; seconds."""
    if impl.prepare is not None:
        impl.prepare()
    start = time.perf_counter_ns()
    result = impl.call()
    elapsed = time.perf_counter_ns() - start
    del result
    return elapsed * 1e-9


def run_case(
    case: Case,
    settings: Settings,
    memory: PeakMemory | None,
    progress: Progress | None = None,
    label: str = "",
) -> tuple[list[Result], list[Skip]]:
    """Time the implementations of one case against each other.

    Parameters
    ----------
    case : Case
        Its implementations must include ``nllkit`` and ``case.limit`` for
        the ratios to be defined.
    settings : Settings
    memory : PeakMemory or None
        Measures one extra call per implementation; ``None`` skips that.
    progress : Progress, optional
    label : str
        Prefix of the progress lines.

    Returns
    -------
    results : list of Result
        In the order of ``case.implementations``.
    skipped : list of Skip
        ``case.skipped`` and every implementation that raised.
    """
    progress = progress or Progress(None)
    skipped = [Skip(case.name, name, reason) for name, reason in case.skipped]
    ready: list[Implementation] = []
    last_warmup: dict[str, float] = {}
    for impl in case.implementations:
        progress.detail(f"{label}: warm-up {impl.name}")
        try:
            for _ in range(settings.warmup):
                last_warmup[impl.name] = _timed(impl)
        except Exception as exc:  # a peer failing is a finding, not the end of the run
            skipped.append(Skip(case.name, impl.name, _one_line(exc)))
            gc.collect()
            continue
        ready.append(impl)

    repetitions = settings.repetitions(sum(last_warmup.get(impl.name, 0.0) for impl in ready))
    times: dict[str, list[float]] = {impl.name: [] for impl in ready}
    for rep in range(repetitions):
        progress.detail(f"{label}: repetition {rep + 1}/{repetitions}")
        shift = rep % len(ready) if ready else 0
        for impl in ready[shift:] + ready[:shift]:
            if impl.name not in times:
                continue  # failed earlier in this loop
            try:
                times[impl.name].append(_timed(impl) * 1e3)
            except Exception as exc:
                skipped.append(Skip(case.name, impl.name, _one_line(exc)))
                del times[impl.name]
                gc.collect()
    ready = [impl for impl in ready if impl.name in times]

    peaks: dict[str, float | None] = {}
    for impl in ready:
        if memory is None:
            peaks[impl.name] = None
            continue
        progress.detail(f"{label}: memory of {impl.name}")
        try:
            if impl.prepare is not None:
                impl.prepare()
            gc.collect()
            peaks[impl.name] = memory.measure(impl.call)
        except Exception:
            peaks[impl.name] = None
        gc.collect()

    medians = {name: float(np.median(t)) for name, t in times.items()}
    reference = medians.get(NLLKIT)
    limit = medians.get(case.limit)
    results = [
        Result(
            case=case.name,
            loss=case.loss,
            mode=case.mode,
            shape=case.shape,
            dtype=case.dtype,
            implementation=impl.name,
            times_ms=tuple(times[impl.name]),
            ratio_to_nllkit=_ratio(medians[impl.name], reference),
            limit=case.limit,
            ratio_to_limit=_ratio(medians[impl.name], limit),
            peak_extra_mib=peaks[impl.name],
        )
        for impl in ready
    ]
    return results, skipped


def _ratio(value: float, reference: float | None) -> float | None:
    if reference is None or not reference > 0:
        return None
    ratio = value / reference
    return ratio if math.isfinite(ratio) and ratio > 0 else None


def run(
    quick: bool = False,
    threads: int = 2,
    progress: TextIO | Literal["stderr"] | None = "stderr",
    settings: Settings | None = None,
    select: Callable[[str], bool] | None = None,
) -> Report:
    """Run the benchmark: every workload, one after the other.

    Parameters
    ----------
    quick : bool
        Small shapes and few repetitions (a smoke test of well under a minute).
    threads : int
        Threads for nllkit, PyTorch and XLA.
    progress : file, 'stderr' or None
        Where the status line goes: ``'stderr'`` is :data:`sys.stderr` at the
        time of the call; ``None`` shows nothing.
    settings : Settings, optional
        Overrides the repetition settings of `quick`.
    select : callable, optional
        ``select(workload_label) -> bool`` keeps only some workloads.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        `threads` is not a positive integer, or nllkit refuses it.
    """
    settings = settings or Settings.for_run(quick)
    env = _env.prepare(threads)
    status = Progress(sys.stderr if isinstance(progress, str) else progress)
    try:
        memory = probe()
        report = Report(
            environment=_env.describe(env, memory.description),
            settings={"quick": quick, "threads": threads, **settings.__dict__},
        )
        workloads = [w for w in plan(quick, env) if select is None or select(w.label)]
        total = sum(len(w.modes) for w in workloads)
        done = 0
        for workload in workloads:
            status.step(f"bench [{done + 1}/{total}] preparing {workload.label}")
            with workload.open(env) as cases:
                for case in cases:
                    done += 1
                    label = f"bench [{done}/{total}] {case.name}"
                    status.step(label)
                    results, skipped = run_case(case, settings, memory, status, label)
                    report.results += results
                    report.skipped += skipped
        report.environment["load_average_at_end"] = _env.load_average()
        return report
    finally:
        status.close()
        env.restore()
