"""Fused multi-threaded CPU kernels for NumPy arrays, compiled with Numba.

Private: the losses choose them (see ``nllkit._autodiff.apply``) for NumPy
float32, float64 and bfloat16 (ml_dtypes) arrays when Numba is installed, and
fall back to the generic array-API path otherwise.

**Experimental: opt-in for now.** Set ``NLLKIT_FUSED=1`` to use them; they
become the default once they pass the whole parity suite (the work of the
fused-kernel issue). ``NLLKIT_DISABLE_FUSED=1`` forces the generic path even
then. Numba is imported on first use, never by ``import nllkit``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from typing import Any

import numpy as np


@functools.cache
def numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether fused kernels may be used now."""
    return (
        numba_installed()
        and os.environ.get("NLLKIT_FUSED", "") == "1"
        and os.environ.get("NLLKIT_DISABLE_FUSED", "") not in ("1", "true", "yes")
    )


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
        from nllkit._kernels._threads import apply_thread_setting

        apply_thread_setting()
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Fused({self.module}:{self.name})"
