"""Shared fixtures: the array backends every backend-generic test runs on.

``backend`` is parametrised over numpy, numpy:readonly (input arrays are not
writeable, so any mutation of user input fails), array_api_strict, torch and
jax (calls jitted through :meth:`Backend.call`). ``--backend NAME`` (repeat
it) restricts the run; backends that are not installed are skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat as apc
import numpy as np
import pytest

BACKENDS = ("numpy", "numpy:readonly", "array_api_strict", "torch", "jax")

if importlib.util.find_spec("jax") is not None:
    import jax

    # float64 tests need x64; nllkit itself never changes this setting.
    jax.config.update("jax_enable_x64", True)


if importlib.util.find_spec("array_api_strict") is not None:
    import array_api_strict

    # The rules jit-safe code must follow: no boolean indexing, no
    # data-dependent output shapes.
    array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="run backend-generic tests on this backend only (repeatable)",
    )


@dataclass(frozen=True)
class Backend:
    """One array library as the tests see it."""

    name: str
    xp: ModuleType

    @property
    def readonly(self) -> bool:
        return self.name == "numpy:readonly"

    @property
    def is_lazy(self) -> bool:
        """Calls are traced: value checks are skipped (documented)."""
        return self.name == "jax"

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    def asarray(self, data: Any, dtype: str | None = None) -> Any:
        arr = self.xp.asarray(np.asarray(data), dtype=None if dtype is None else self.dtype(dtype))
        if self.readonly:
            arr = np.array(arr)
            arr.flags.writeable = False
        return arr

    def numpy(self, a: Any) -> np.ndarray:
        if apc.is_torch_array(a):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def call(self, fn: Callable[..., Any], *arrays: Any, **settings: Any) -> Any:
        """``fn(*arrays, **settings)``, jitted on JAX with everything that is
        not an array (settings, ``None``, strings) static."""
        if self.name != "jax":
            return fn(*arrays, **settings)
        traced = [i for i, a in enumerate(arrays) if apc.is_array_api_obj(a)]

        def with_static(*values: Any) -> Any:
            args = list(arrays)
            for i, v in zip(traced, values, strict=True):
                args[i] = v
            return fn(*args, **settings)

        return jax.jit(with_static)(*(arrays[i] for i in traced))

    def assert_namespace(self, a: Any) -> None:
        """``a`` belongs to this backend (not, say, plain NumPy by accident)."""
        expected = apc.array_namespace(self.asarray([0.0]))
        assert apc.array_namespace(a) is expected, f"{type(a)} is not an array of {self.name}"


def _available(name: str) -> bool:
    module = name.split(":")[0]
    return importlib.util.find_spec(module) is not None


def _namespace(name: str) -> ModuleType:
    module = name.split(":")[0]
    if module == "numpy":
        return apc.array_namespace(np.empty(0))
    if module == "array_api_strict":
        import array_api_strict

        return array_api_strict
    if module == "torch":
        import torch

        return apc.array_namespace(torch.empty(0))
    import jax.numpy as jnp

    return apc.array_namespace(jnp.empty(0))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or BACKENDS
        metafunc.parametrize("backend", chosen, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    if not _available(request.param):
        pytest.skip(f"{request.param} is not installed")
    return Backend(request.param, _namespace(request.param))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
