"""How many threads the fused kernels use, and the pool that runs them.

All cores by default; ``nllkit.set_num_threads(n)`` or the environment
variable ``NLLKIT_NUM_THREADS`` change it. The kernels call no BLAS, so they
do not oversubscribe with it; the count only sizes the pool of Python threads
(:func:`pool`) on which the callers run blocks of nllkit's own kernels (the
kernels release the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

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


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process id, threads)


def pool(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` worker threads, made on first use. Keyed by process
    too: a forked child inherits the parent's pools but not their threads."""
    key = (os.getpid(), threads)
    executor = _POOLS.get(key)
    if executor is None:
        executor = _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="nllkit")
    return executor
