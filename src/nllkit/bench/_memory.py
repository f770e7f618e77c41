"""The peak memory one call adds to the process.

On Linux the process's peak resident set size (``VmHWM`` in
``/proc/self/status``) is reset to the current one by writing ``5`` to
``/proc/self/clear_refs``; after the call, the peak minus the resident size
before it is what the call added at its worst moment, whichever library
allocated it (NumPy, PyTorch, XLA, Numba). Before that, glibc's
``malloc_trim(0)`` gives the free memory malloc keeps back to the system, so
that a call reusing it is counted too. Memory a library keeps in a pool of its
own is not counted: it is reused, not added.

Where ``/proc`` is unavailable, :mod:`tracemalloc` is used instead. It sees
only allocations made through Python's allocator hooks, which include NumPy's
array data but not PyTorch's or XLA's, so their figures are then too low; the
report says which method was used.
"""

from __future__ import annotations

import ctypes
import functools
import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["PeakMemory", "probe"]

_MIB = 1024.0 * 1024.0
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(*keys: str) -> dict[str, int]:
    """Fields of ``/proc/self/status`` given in kB, such as ``VmRSS``."""
    found: dict[str, int] = {}
    with open(_STATUS, encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in keys:
                found[key] = int(value.split()[0])
    missing = [k for k in keys if k not in found]
    if missing:
        raise OSError(f"{_STATUS} has no {', '.join(missing)}")
    return found


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def _reset_peak() -> None:
    with open(_CLEAR_REFS, "w", encoding="ascii") as f:
        f.write("5")


class PeakMemory:
    """Measure the extra memory at the peak of one call.

    Parameters
    ----------
    method : {'rss', 'tracemalloc'}
        ``'rss'``: the peak resident set size from ``/proc`` (Linux);
        ``'tracemalloc'``: Python-visible allocations only.
    """

    def __init__(self, method: str) -> None:
        if method not in ("rss", "tracemalloc"):
            raise ValueError(f"method must be 'rss' or 'tracemalloc'; got {method!r}")
        self.method = method

    @property
    def description(self) -> str:
        """How the figures were measured, for a report."""
        if self.method == "rss":
            return "peak RSS (VmHWM, reset through /proc/self/clear_refs) minus RSS before the call"
        return (
            "tracemalloc (no /proc here): counts NumPy's allocations but not PyTorch's or XLA's, "
            "so figures for those are too low"
        )

    def measure(self, call: Callable[[], object]) -> float:
        """Run `call` once and return its peak extra memory.

        Parameters
        ----------
        call : callable
            Takes no arguments; its result is dropped after the measurement.

        Returns
        -------
        float
            MiB, at least 0.
        """
        if self.method == "rss":
            trim = _malloc_trim()
            if trim is not None:
                trim(0)
            _reset_peak()
            before = _status_kib("VmRSS")["VmRSS"]
            result = call()
            peak = _status_kib("VmHWM")["VmHWM"]
            del result
            return max(0.0, (peak - before) * 1024.0 / _MIB)
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            result = call()
            _, peak = tracemalloc.get_traced_memory()
            del result
        finally:
            if started:
                tracemalloc.stop()
        return max(0.0, (peak - before) / _MIB)


def probe() -> PeakMemory:
    """The best method this platform supports.

    Returns
    -------
    PeakMemory
        ``'rss'`` where ``/proc/self/clear_refs`` can reset the peak,
        ``'tracemalloc'`` otherwise.
    """
    try:
        _reset_peak()
        _status_kib("VmRSS", "VmHWM")
    except (OSError, ValueError, IndexError):
        return PeakMemory("tracemalloc")
    return PeakMemory("rss")
