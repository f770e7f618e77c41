"""The differentiation API: ``vjp`` and ``value_and_grad``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nllkit

RNG = np.random.default_rng(11)
X = RNG.normal(size=(4, 5))
Y = np.array([0, 4, 2, -100])


def test_value_and_grad_equals_vjp_with_unit_cotangent() -> None:
    value, grad = nllkit.value_and_grad(nllkit.cross_entropy)(X, Y, label_smoothing=0.1)
    out, pullback = nllkit.vjp(nllkit.cross_entropy, X, Y, label_smoothing=0.1)
    np.testing.assert_array_equal(value, out)
    np.testing.assert_array_equal(grad, pullback(1.0)[0])


def test_argnums_tuple_returns_tuple() -> None:
    var = RNG.uniform(0.5, 1.5, size=(4, 5))
    _, grads = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=(0, 2))(X, X + 1, var)
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_allclose(grads[0], -1 / var / X.size, rtol=1e-13)
    np.testing.assert_allclose(grads[1], 0.5 * (1 / var - 1 / var**2) / X.size, rtol=1e-13)


def test_negative_argnums() -> None:
    _, g = nllkit.value_and_grad(nllkit.kl_div, argnums=-1)(np.log(np.full(3, 1 / 3)), np.full(3, 1 / 3))
    np.testing.assert_allclose(g, (np.log(1 / 3) + 1 - np.log(1 / 3)) / 3, rtol=1e-13)


def test_pullback_entries_per_positional_argument() -> None:
    w = np.linspace(0.5, 2.0, 5)
    _, pullback = nllkit.vjp(nllkit.nll_loss, X, Y, w)
    grad_x, grad_y, grad_w = pullback(1.0)
    assert grad_x.shape == X.shape
    assert grad_y is None  # integer target
    assert grad_w is None  # nll_loss is not differentiable in weight, as in torch


def test_module_instances_differentiate() -> None:
    module = nllkit.CrossEntropyLoss(weight=np.ones(5), label_smoothing=0.2)
    value, grad = nllkit.value_and_grad(module)(X, Y)
    expected_value, expected_grad = nllkit.value_and_grad(nllkit.cross_entropy)(
        X, Y, np.ones(5), label_smoothing=0.2
    )
    np.testing.assert_array_equal(value, expected_value)
    np.testing.assert_array_equal(grad, expected_grad)


def test_composition_nll_of_log_softmax_equals_cross_entropy_gradient() -> None:
    value, grad = nllkit.value_and_grad(lambda x: nllkit.nll_loss(nllkit.log_softmax(x, 1), Y))(X)
    expected_value, expected_grad = nllkit.value_and_grad(nllkit.cross_entropy)(X, Y)
    np.testing.assert_allclose(value, expected_value, rtol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_argument_used_twice_accumulates() -> None:
    def twice(x: np.ndarray) -> object:
        return nllkit.kl_div(nllkit.log_softmax(x, 1), nllkit.softmax(x, 1), reduction="sum")

    value, grad = nllkit.value_and_grad(twice)(X)
    np.testing.assert_allclose(value, 0.0, atol=1e-12)  # KL(p || p) = 0
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)  # a minimum in x


def test_argument_outside_nllkit_has_no_gradient() -> None:
    """Not a silent zero: a slice taken by NumPy hides the argument from the tape."""
    _, pullback = nllkit.vjp(lambda x, unused: nllkit.cross_entropy(x[:, ::-1], Y), X, np.ones(3))
    assert pullback(1.0) == (None, None)
    with pytest.raises(TypeError, match="argument 0 has no gradient"):
        nllkit.value_and_grad(lambda x: nllkit.cross_entropy(x[:, ::-1], Y))(X)


def test_lists_are_accepted() -> None:
    value, grad = nllkit.value_and_grad(nllkit.cross_entropy)([[1.0, 2.0, 3.0]], [2])
    expected_value, expected_grad = nllkit.value_and_grad(nllkit.cross_entropy)(
        np.array([[1.0, 2.0, 3.0]]), np.array([2])
    )
    np.testing.assert_array_equal(value, expected_value)
    np.testing.assert_array_equal(grad, expected_grad)


def test_gradient_keeps_argument_dtype_and_shape() -> None:
    var = np.full((4,), 0.5, dtype=np.float32)
    _, grads = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=(0, 2))(X, X + 1, var)
    assert grads[0].dtype == np.float64 and grads[0].shape == X.shape
    assert grads[1].dtype == np.float32 and grads[1].shape == (4,)


def test_tape_does_not_leak_between_calls() -> None:
    nllkit.vjp(nllkit.cross_entropy, X, Y)
    from nllkit._autodiff import _TAPE

    assert _TAPE.get() is None


def test_import_does_not_load_optional_frameworks() -> None:
    code = (
        "import sys, nllkit, nllkit.cli; "
        "loaded = [m for m in ('torch', 'jax', 'dask', 'matplotlib', 'cupy') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_gives_nan_value_and_zero_gradient(reduction: str) -> None:
    value, grad = nllkit.value_and_grad(nllkit.cross_entropy)(X, np.full(4, -100), reduction=reduction)
    assert np.isnan(value) if reduction == "mean" else value == 0.0
    np.testing.assert_array_equal(grad, np.zeros_like(X))
