"""Fused multi-threaded CPU kernels for NumPy arrays, compiled with Numba.

Private: the losses choose them (see ``nllkit._autodiff.apply``) for NumPy
float32, float64 and bfloat16 (ml_dtypes) arrays when Numba is installed, and
fall back to the generic array-API path otherwise.

They are the default whenever Numba is installed (the ``fast`` extra);
``NLLKIT_DISABLE_FUSED=1`` in the environment forces the generic path, the
reference they agree with within 4 ulp. Numba is imported on first use, never
by ``import nllkit``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import numpy as np


@functools.cache
def numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


# Set by fused_kernels(): a context variable, so threads and async tasks each keep their own choice.
_chosen: contextvars.ContextVar[bool | None] = contextvars.ContextVar("nllkit_fused_kernels", default=None)


def enabled() -> bool:
    """Whether fused kernels may be used now."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen and numba_installed()
    return numba_installed() and os.environ.get("NLLKIT_DISABLE_FUSED", "") not in ("1", "true", "yes")


@contextlib.contextmanager
def fused_kernels(enable: bool) -> Iterator[None]:
    """Use (or avoid) the fused kernels inside a ``with`` block.

    The fused kernels agree with the generic array-API path within 4 ulp; the
    generic path follows PyTorch's order of operations, so avoid the kernels
    where torch's float32 result is wanted to the last bit. Without Numba
    the generic path is used either way. Outside any block, the kernels are
    used when Numba is installed unless ``NLLKIT_DISABLE_FUSED=1``.

    Parameters
    ----------
    enable : bool
        True to use the kernels for NumPy arrays, False for the generic path.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x, y = np.array([[0.0054, -0.803, -0.5758, -0.6518]], np.float32), np.array([0])
    >>> with nllkit.fused_kernels(False):
    ...     float(nllkit.cross_entropy(x, y))
    0.9254875183105469
    """
    token = _chosen.set(bool(enable))
    try:
        yield
    finally:
        _chosen.reset(token)


def takes(arrays: tuple[Any, ...]) -> bool:
    """True when every array argument is a NumPy array (``None`` allowed) and
    kernels are enabled."""
    return enabled() and all(a is None or isinstance(a, np.ndarray) for a in arrays)


class Fused:
    """A fused forward, ``module:name``, imported on first call so that
    ``import nllkit`` never imports Numba."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    @functools.cached_property
    def function(self) -> Any:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Fused({self.module}:{self.name})"
