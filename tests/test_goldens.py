"""nllkit reproduces torch 2.13's golden values, on every backend, without torch.

``data/torch_goldens_2.13.json`` holds the outputs of torch 2.13.0+cpu on
the literal inputs of ``make-torch-goldens.py`` (see ``data/README.md``).
The inputs are re-typed below as NumPy literals; every key of the JSON is
recomputed for float32 and float64 on each backend of the ``backend``
fixture (JAX calls are jitted through ``Backend.call``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nllkit

GOLDEN_FILE = Path(__file__).parent / "data" / "torch_goldens_2.13.json"
GOLDENS = json.loads(GOLDEN_FILE.read_text())
DTYPES = ("float32", "float64")
RTOL = {"float32": 1e-6, "float64": 1e-12}
ATOL = 1e-30  # only so that exact zeros compare; every nonzero value is held to rtol

# The literal inputs of make-torch-goldens.py.
X = np.array([[1.0, -0.5, 2.0, 0.25], [0.0, 3.0, -1.0, 0.5], [-2.0, 0.1, 0.2, 0.3]])
T = np.array([2, -100, 0], dtype=np.int64)
W = np.array([0.5, 1.0, 2.0, 4.0])
P = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])
BCE_X = np.array([[0.2, 0.9, 1e-3], [0.0, 1.0, 0.5]])
BCE_Y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])
LOGITS = np.array([[-3.0, 0.5, 20.0], [0.0, -40.0, 2.5]])
POS_WEIGHT = np.array([2.0, 0.5, 1.0])
BCE_W = np.array([1.0, 2.0, 3.0])
POIS_X = np.array([0.5, 0.0, 2.0, 1e-3])
POIS_T = np.array([0.0, 1.0, 3.0, 2.5])
GAUSS_X = np.array([[1.0, 2.0], [0.5, -1.0]])
GAUSS_T = np.array([[0.0, 2.5], [0.5, 1.0]])
GAUSS_VAR = np.array([0.5, 1e-9])
KL_Q = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])  # the script's input is log(KL_Q)
KL_T = np.array([[0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])


def _typed(a: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(a, dtype=dtype)


def _bce_logits(input: Any, target: Any, weight: Any, pos_weight: Any, *, reduction: str) -> Any:
    # pos_weight comes after reduction in the signature; arrays go positionally to Backend.call.
    return nllkit.binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)


def _kl_input(dtype: str) -> np.ndarray:
    # torch.log of the literal, taken in the working dtype as the script does.
    return np.log(_typed(KL_Q, dtype))


def _kl_log_target(dtype: str) -> np.ndarray:
    kt = _typed(KL_T, dtype)
    return np.log(kt + kt.dtype.type(1e-3))


# key -> dtype -> (function, arrays as (NumPy data, dtype name) pairs, settings)
Case = Callable[[str], tuple[Callable[..., Any], list[tuple[np.ndarray, str]], dict[str, Any]]]


def _classification_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for red in ("none", "mean", "sum"):
        cases[f"ce_{red}"] = lambda dt, red=red: (
            nllkit.cross_entropy,
            [(X, dt), (T, "int64")],
            {"reduction": red},
        )
        cases[f"ce_w_{red}"] = lambda dt, red=red: (
            nllkit.cross_entropy,
            [(X, dt), (T, "int64"), (W, dt)],
            {"reduction": red},
        )
        cases[f"ce_w_ls0.2_{red}"] = lambda dt, red=red: (
            nllkit.cross_entropy,
            [(X, dt), (T, "int64"), (W, dt)],
            {"reduction": red, "label_smoothing": 0.2},
        )
        cases[f"ce_prob_w_ls0.1_{red}"] = lambda dt, red=red: (
            nllkit.cross_entropy,
            [(X, dt), (P, dt), (W, dt)],
            {"reduction": red, "label_smoothing": 0.1},
        )
        # The script feeds the raw logits to nll_loss (it does not validate them).
        cases[f"nll_w_{red}"] = lambda dt, red=red: (
            nllkit.nll_loss,
            [(X, dt), (T, "int64"), (W, dt)],
            {"reduction": red},
        )
    return cases


def _elementwise_cases() -> dict[str, Case]:
    return {
        "bce_none": lambda dt: (
            nllkit.binary_cross_entropy,
            [(BCE_X, dt), (BCE_Y, dt)],
            {"reduction": "none"},
        ),
        "bce_mean": lambda dt: (nllkit.binary_cross_entropy, [(BCE_X, dt), (BCE_Y, dt)], {}),
        "bcel_pw_none": lambda dt: (
            _bce_logits,
            [(LOGITS, dt), (BCE_Y, dt), (None, dt), (POS_WEIGHT, dt)],
            {"reduction": "none"},
        ),
        "bcel_pw_w_mean": lambda dt: (
            _bce_logits,
            [(LOGITS, dt), (BCE_Y, dt), (BCE_W, dt), (POS_WEIGHT, dt)],
            {"reduction": "mean"},
        ),
        "pois_log_full_none": lambda dt: (
            nllkit.poisson_nll_loss,
            [(POIS_X, dt), (POIS_T, dt)],
            {"log_input": True, "full": True, "reduction": "none"},
        ),
        "pois_lin_full_none": lambda dt: (
            nllkit.poisson_nll_loss,
            [(POIS_X, dt), (POIS_T, dt)],
            {"log_input": False, "full": True, "reduction": "none"},
        ),
        "gauss_var1d_full_none": lambda dt: (
            nllkit.gaussian_nll_loss,
            [(GAUSS_X, dt), (GAUSS_T, dt), (GAUSS_VAR, dt)],
            {"full": True, "reduction": "none"},
        ),
        "kl_batchmean": lambda dt: (
            nllkit.kl_div,
            [(_kl_input(dt), dt), (KL_T, dt)],
            {"reduction": "batchmean"},
        ),
        "kl_none": lambda dt: (nllkit.kl_div, [(_kl_input(dt), dt), (KL_T, dt)], {"reduction": "none"}),
        "kl_logt_sum": lambda dt: (
            nllkit.kl_div,
            [(_kl_input(dt), dt), (_kl_log_target(dt), dt)],
            {"reduction": "sum", "log_target": True},
        ),
    }


VALUE_CASES: dict[str, Case] = {**_classification_cases(), **_elementwise_cases()}
GRADIENT_KEYS = ("ce_w_ls0.2_mean_grad", "gauss_var1d_sum_dvar")


def _golden(key: str, dtype: str) -> np.ndarray:
    return np.asarray(GOLDENS["values"][f"torch.{dtype}"][key], dtype=np.float64)


def _assert_golden(ours: np.ndarray, key: str, dtype: str) -> None:
    expected = _golden(key, dtype)
    assert ours.dtype == np.dtype(dtype), f"{key}: dtype {ours.dtype}, expected {dtype}"
    assert ours.shape == expected.shape, f"{key}: shape {ours.shape}, expected {expected.shape}"
    np.testing.assert_allclose(ours, expected, rtol=RTOL[dtype], atol=ATOL, err_msg=key)


def test_golden_file_is_the_torch_2_13_reference() -> None:
    assert GOLDENS["torch_version"] == "2.13.0+cpu"
    assert set(GOLDENS["values"]) == {"torch.float32", "torch.float64"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_golden_key_is_reproduced(dtype: str) -> None:
    """No key of the JSON is left without a test, and no test lacks a key."""
    assert set(GOLDENS["values"][f"torch.{dtype}"]) == set(VALUE_CASES) | set(GRADIENT_KEYS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", sorted(VALUE_CASES))
def test_golden_value(backend: Any, key: str, dtype: str) -> None:
    fn, specs, settings = VALUE_CASES[key](dtype)
    arrays = [None if data is None else backend.asarray(data, dt) for data, dt in specs]
    out = backend.call(fn, *arrays, **settings)
    backend.assert_namespace(out)
    _assert_golden(backend.numpy(out), key, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_golden_cross_entropy_gradient(dtype: str) -> None:
    """``ce_w_ls0.2_mean_grad``: d/dx of weighted, smoothed, mean CE with an ignored row."""
    x, w = _typed(X, dtype), _typed(W, dtype)
    value, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, T, w, label_smoothing=0.2)
    _assert_golden(np.asarray(value), "ce_w_ls0.2_mean", dtype)
    _assert_golden(np.asarray(grad), "ce_w_ls0.2_mean_grad", dtype)
    # The same through vjp with a unit cotangent.
    _, pullback = nllkit.vjp(nllkit.cross_entropy, x, T, w, label_smoothing=0.2)
    grad_x, grad_t, grad_w = pullback(np.ones((), dtype=dtype))
    assert grad_t is None and grad_w is None  # index targets; weight not differentiated
    _assert_golden(np.asarray(grad_x), "ce_w_ls0.2_mean_grad", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_golden_gaussian_var_gradient(dtype: str) -> None:
    """``gauss_var1d_sum_dvar``: straight-through clamp of var=1e-9 at eps=1e-6."""
    x, t, v = _typed(GAUSS_X, dtype), _typed(GAUSS_T, dtype), _typed(GAUSS_VAR, dtype)
    _, grad_v = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=2)(x, t, v, reduction="sum")
    _assert_golden(np.asarray(grad_v), "gauss_var1d_sum_dvar", dtype)
