"""How many threads the fused kernels use.

All cores by default; ``nllkit.set_num_threads(n)`` or the environment
variable ``NLLKIT_NUM_THREADS`` change it. The kernels call no BLAS, so they
do not oversubscribe with it; the count only sets Numba's threads for
nllkit's own kernels.
"""

from __future__ import annotations

import os

_ENV = "NLLKIT_NUM_THREADS"
_requested: int | None = None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check(n: object, source: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _cores():
        raise ValueError(f"set_num_threads: {source} must be an int in [1, {_cores()}]; got {n!r}")
    return n


def set_num_threads(n: int | None) -> None:
    """Use `n` threads in nllkit's fused kernels (1 to the number of cores);
    ``None`` restores the default (``NLLKIT_NUM_THREADS``, else all cores).

    Examples
    --------
    >>> import nllkit
    >>> nllkit.set_num_threads(1)
    >>> nllkit.get_num_threads()
    1
    >>> nllkit.set_num_threads(None)
    """
    global _requested
    _requested = None if n is None else _check(n, "n")


def get_num_threads() -> int:
    """The number of threads nllkit's fused kernels use."""
    if _requested is not None:
        return _requested
    env = os.environ.get(_ENV)
    if env:
        try:
            return _check(int(env), _ENV)
        except ValueError:
            raise ValueError(f"{_ENV} must be an int in [1, {_cores()}]; got {env!r}") from None
    return _cores()


def apply_thread_setting() -> None:
    """Set Numba's thread count for the calling thread before a kernel runs."""
    import numba

    wanted = min(get_num_threads(), numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if numba.get_num_threads() != wanted:
        numba.set_num_threads(wanted)
