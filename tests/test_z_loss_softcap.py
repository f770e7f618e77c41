"""``cross_entropy``'s z_loss and softcap (not in PyTorch), against a PyTorch
composition of their definitions, and by central differences."""

from __future__ import annotations

import numpy as np
import pytest

import nllkit

RNG = np.random.default_rng(5)


def _torch_reference(x, target, weight, ignore_index, reduction, label_smoothing, z_loss, softcap, prob):
    """The definition, composed from torch ops: cap, cross-entropy, plus z * lse^2."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    capped = x if softcap is None else softcap * torch.tanh(x / softcap)
    kwargs = {"weight": weight, "label_smoothing": label_smoothing}
    if not prob:
        kwargs["ignore_index"] = ignore_index
    per_row = F.cross_entropy(capped, target, reduction="none", **kwargs)
    z = z_loss * torch.logsumexp(capped, dim=1) ** 2
    if prob:
        denominator = torch.tensor(float(per_row.numel()), dtype=x.dtype)
    else:
        kept = target != ignore_index
        z = torch.where(kept, z, torch.zeros_like(z))
        w = torch.ones(x.shape[1], dtype=x.dtype) if weight is None else weight
        denominator = torch.where(kept, w[target.clamp(min=0)], torch.zeros_like(z)).sum()
    total = per_row + z
    if reduction == "none":
        return total
    return total.sum() if reduction == "sum" else total.sum() / denominator


@pytest.mark.parametrize("prob", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("z_loss", "softcap"), [(1e-3, None), (0.0, 3.0), (0.5, 2.0)])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2)])
def test_against_torch_composition(prob, reduction, weighted, z_loss, softcap, shape) -> None:
    torch = pytest.importorskip("torch")
    x = RNG.normal(scale=3.0, size=shape)
    weight = RNG.uniform(0.5, 2.0, size=shape[1]) if weighted else None
    if prob:
        target = RNG.random(shape)
        target /= target.sum(axis=1, keepdims=True)
        ignore_index = -100
    else:
        target = RNG.integers(0, shape[1], size=(shape[0],) + shape[2:])
        target.reshape(-1)[1] = -100
        ignore_index = -100
    settings = {"reduction": reduction, "label_smoothing": 0.1, "z_loss": z_loss, "softcap": softcap}
    out, pullback = nllkit.vjp(nllkit.cross_entropy, x, target, weight, **settings)
    cotangent = RNG.normal(size=np.shape(out))
    grads = pullback(cotangent)

    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target, requires_grad=prob)
    wt = None if weight is None else torch.tensor(weight, requires_grad=prob)
    expected = _torch_reference(xt, tt, wt, ignore_index, reduction, 0.1, z_loss, softcap, prob)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    inputs = [xt] + ([tt] + ([wt] if weighted else []) if prob else [])
    expected_grads = torch.autograd.grad(expected, inputs, torch.tensor(cotangent))
    for got, want in zip(grads, expected_grads, strict=False):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("z_loss", "softcap"), [(0.2, None), (0.0, 1.5), (0.3, 4.0)])
def test_central_differences(z_loss, softcap) -> None:
    x = RNG.normal(scale=2.0, size=(4, 3))
    target = np.array([0, 2, -100, 1])
    settings = {"z_loss": z_loss, "softcap": softcap, "label_smoothing": 0.05}
    _, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, target, **settings)
    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (
            nllkit.cross_entropy(up, target, **settings) - nllkit.cross_entropy(down, target, **settings)
        ) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(grad[2], 0.0)  # the ignored row


def test_defaults_change_nothing() -> None:
    x = RNG.normal(size=(4, 3))
    target = np.array([0, 2, 1, 1])
    np.testing.assert_array_equal(
        nllkit.cross_entropy(x, target, z_loss=0.0, softcap=None), nllkit.cross_entropy(x, target)
    )


def test_softcap_bounds_the_logits() -> None:
    x = np.array([[1e4, -1e4, 0.0]])
    out = nllkit.cross_entropy(x, np.array([1]), softcap=5.0)
    # Capped logits are [5, -5, 0]: the loss is finite, lse([5,-5,0]) + 5.
    np.testing.assert_allclose(out, np.log(np.exp(5.0) + np.exp(-5.0) + 1.0) + 5.0, rtol=1e-14)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"z_loss": -1.0}, "cross_entropy: z_loss must be between 0.0 and inf; got -1.0"),
        ({"z_loss": float("nan")}, "cross_entropy: z_loss must be between 0.0 and inf; got nan"),
        ({"softcap": 0.0}, "cross_entropy: softcap must be positive or None; got 0.0"),
        ({"softcap": -2.0}, "cross_entropy: softcap must be between 0.0 and inf; got -2.0"),
    ],
)
def test_bad_settings(settings, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nllkit.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), **settings)
