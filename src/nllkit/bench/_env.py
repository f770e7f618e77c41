"""Where a benchmark runs: thread counts, the optional peer libraries, and the record of both.

The thread count is set for every library that has one before anything is
timed: ``torch.set_num_threads``, ``nllkit.set_num_threads`` (when this nllkit
has it) and, for XLA, the environment variable ``XLA_FLAGS``. XLA reads it
only when JAX starts, so it is set only if JAX has not been imported yet; JAX
is imported here, lazily, after that. NumPy's thread count does not matter:
the NumPy code paths measured make no BLAS calls.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import nllkit

__all__ = ["Environment", "describe", "load_average", "prepare"]

#: The distributions whose versions a report records (distribution name: label).
_VERSIONS = {
    "nllkit": "nllkit",
    "numpy": "numpy",
    "numba": "numba",
    "torch": "torch",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "ml_dtypes": "ml_dtypes",
}


@dataclass
class Environment:
    """The libraries a run uses and how their threads were set.

    Attributes
    ----------
    threads : int
        The requested number of threads.
    torch, jax, ml_dtypes : module or None
        The imported peer libraries; ``None`` when not installed (or when
        the import failed, see `missing`).
    threads_set : dict of str to str
        Per library, how its threads were set (or why not).
    missing : dict of str to str
        Per optional library that cannot be used, why.
    """

    threads: int
    torch: ModuleType | None = None
    jax: ModuleType | None = None
    ml_dtypes: ModuleType | None = None
    threads_set: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def restore(self) -> None:
        """Put back the thread settings and environment variables changed by :func:`prepare`."""
        while self._undo:
            self._undo.pop()()


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import(name: str, env: Environment) -> ModuleType | None:
    if not _installed(name):
        env.missing[name] = "not installed"
        return None
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken install is a skipped peer, not a failed benchmark
        env.missing[name] = f"import failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        return None


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _xla_threads(env: Environment) -> None:
    """Set ``XLA_FLAGS`` for `env.threads` if JAX has not started yet."""
    if not _installed("jax"):
        return
    if "jax" in sys.modules:
        env.threads_set["xla"] = (
            "not set: JAX was imported before the benchmark started, so XLA_FLAGS could not take effect"
        )
        return
    flags = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={env.threads}"
    old = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = flags if not old else f"{old} {flags}"
    env.threads_set["xla"] = f"XLA_FLAGS={os.environ['XLA_FLAGS']}"
    env._undo.append(lambda: _set_env("XLA_FLAGS", old))


def _torch_threads(env: Environment) -> None:
    torch = env.torch
    if torch is None:
        return
    old = torch.get_num_threads()
    torch.set_num_threads(env.threads)
    env._undo.append(lambda: torch.set_num_threads(old))
    env.threads_set["torch"] = f"torch.set_num_threads({env.threads})"


def _nllkit_threads(env: Environment) -> None:
    setter = getattr(nllkit, "set_num_threads", None)
    if setter is None:
        env.threads_set["nllkit"] = "not set: this nllkit has no set_num_threads"
        return
    getter = getattr(nllkit, "get_num_threads", None)
    old = getter() if getter is not None else None
    try:
        setter(env.threads)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--threads {env.threads}: nllkit.set_num_threads refused it: {exc}") from None
    if old is not None:
        env._undo.append(lambda: setter(old))
    env.threads_set["nllkit"] = f"nllkit.set_num_threads({env.threads})"


def prepare(threads: int) -> Environment:
    """Set the thread counts and import the peer libraries that are installed.

    Parameters
    ----------
    threads : int
        The number of threads every library may use (at least 1).

    Returns
    -------
    Environment
        Call its :meth:`~Environment.restore` when the benchmark is done.

    Raises
    ------
    ValueError
        `threads` is not a positive integer, or nllkit refuses it.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a positive integer; got {threads!r}")
    env = Environment(threads=threads)
    try:
        _xla_threads(env)  # before JAX is imported
        env.torch = _import("torch", env)
        env.jax = _import("jax", env)
        env.ml_dtypes = _import("ml_dtypes", env)
        _torch_threads(env)
        _nllkit_threads(env)
    except BaseException:
        env.restore()
        raise
    env.threads_set["numpy"] = "not set: the NumPy code paths measured make no BLAS calls"
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes slow a shared machine down)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fused_kernels() -> bool | None:
    """Whether nllkit's fused kernels are in use; ``None`` if this nllkit has none."""
    try:
        kernels = importlib.import_module("nllkit._kernels")
    except ImportError:
        return None
    enabled: Any = getattr(kernels, "enabled", None)
    return bool(enabled()) if callable(enabled) else None


def describe(env: Environment, memory_method: str) -> dict[str, Any]:
    """The record of the machine and libraries for a report.

    Parameters
    ----------
    env : Environment
        From :func:`prepare`.
    memory_method : str
        How peak memory was measured.

    Returns
    -------
    dict
        JSON-ready: date, Python, platform, CPU model and count, load
        average, library versions, thread settings, the nllkit features found, and the
        memory method.
    """
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_average_at_start": load_average(),
        "versions": {label: _version(dist) for dist, label in _VERSIONS.items()},
        "threads": {"requested": env.threads, **env.threads_set},
        "missing": dict(env.missing),
        "nllkit_features": {
            "set_num_threads": hasattr(nllkit, "set_num_threads"),
            "cross_entropy_with_grad": hasattr(nllkit, "cross_entropy_with_grad"),
            "fused_kernels": _fused_kernels(),
        },
        "memory_method": memory_method,
    }
