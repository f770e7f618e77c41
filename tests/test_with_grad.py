"""cross_entropy_with_grad (gradient into the caller's buffer) and the thread setting."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nllkit

RNG = np.random.default_rng(3)


@pytest.fixture(params=["fused", "generic"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fused":
        pytest.importorskip("numba")
        monkeypatch.delenv("NLLKIT_DISABLE_FUSED", raising=False)
    else:
        monkeypatch.setenv("NLLKIT_DISABLE_FUSED", "1")
    return str(request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("prob", [False, True])
def test_matches_value_and_grad(path: str, dtype: type, prob: bool) -> None:
    x = RNG.normal(size=(6, 5)).astype(dtype)
    target = RNG.dirichlet(np.ones(5), size=6).astype(dtype) if prob else np.array([0, 4, -100, 1, 2, 3])
    settings = {"label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 20.0, "reduction": "sum"}
    expected_loss, expected_grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, target, **settings)
    loss, grad = nllkit.cross_entropy_with_grad(x, target, **settings)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6 if dtype == np.float32 else 1e-13)
    buffer = np.empty_like(x)
    loss, grad = nllkit.cross_entropy_with_grad(x, target, out=buffer, **settings)
    assert grad is buffer
    np.testing.assert_allclose(buffer, expected_grad, rtol=1e-5, atol=1e-6 if dtype == np.float32 else 1e-13)


def test_in_place_into_the_logits(path: str) -> None:
    x = RNG.normal(size=(64, 33))
    target = RNG.integers(0, 33, size=64)
    expected_loss, expected_grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, target, label_smoothing=0.2)
    logits = x.copy()
    loss, grad = nllkit.cross_entropy_with_grad(logits, target, label_smoothing=0.2, out=logits)
    assert grad is logits
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(logits, expected_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        (
            {"reduction": "none"},
            ValueError,
            "cross_entropy_with_grad: reduction must be one of 'mean', 'sum'; got 'none'",
        ),
        ({"out": np.empty((2, 3), np.float32)}, ValueError, "out must have the input's shape (2, 3) and dtype float64"),
        ({"out": np.empty((3, 2))}, ValueError, "out must have the input's shape (2, 3)"),
        ({"out": np.empty((3, 2)).T}, ValueError, "out must be C-contiguous and writeable"),
        ({"out": [[0.0] * 3] * 2}, TypeError, "out must be a NumPy array, for NumPy input; got list"),
        ({"label_smoothing": 2.0}, ValueError, "cross_entropy_with_grad: label_smoothing must be between 0.0 and 1.0"),
    ],
)
def test_errors(kwargs: dict, exc: type, message: str) -> None:
    with pytest.raises(exc, match=re.escape(message)):
        nllkit.cross_entropy_with_grad(np.zeros((2, 3)), np.array([0, 1]), **kwargs)


def test_out_refused_for_other_namespaces() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="out must be a NumPy array, for NumPy input"):
        nllkit.cross_entropy_with_grad(torch.zeros(2, 3), torch.tensor([0, 1]), out=np.zeros((2, 3)))
    _, grad = nllkit.cross_entropy_with_grad(torch.zeros(2, 3), torch.tensor([0, 1]))
    assert isinstance(grad, torch.Tensor)


def test_thread_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    nllkit.set_num_threads(1)
    try:
        assert nllkit.get_num_threads() == 1
        with pytest.raises(ValueError, match=r"set_num_threads: n must be an int in \[1, "):
            nllkit.set_num_threads(0)
        with pytest.raises(ValueError, match="n must be an int"):
            nllkit.set_num_threads(1.5)  # type: ignore[arg-type]
    finally:
        nllkit.set_num_threads(None)
    monkeypatch.setenv("NLLKIT_NUM_THREADS", "1")
    assert nllkit.get_num_threads() == 1
    monkeypatch.setenv("NLLKIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="NLLKIT_NUM_THREADS must be an int"):
        nllkit.get_num_threads()
