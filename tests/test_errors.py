"""Bad input: the exception class of the compatibility policy and a message
that names the function, the parameter, the expectation and what was found."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nllkit

X = np.zeros((4, 10))
Y = np.array([1, 2, 1, 3])

CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # class targets
    (
        "target out of range",
        lambda: nllkit.nll_loss(X, np.array([1, 2, 12, 3])),
        IndexError,
        "nll_loss: target must be a class index in [0, 10) or ignore_index=-100; got 12 at position (2,)",
    ),
    (
        "negative target",
        lambda: nllkit.cross_entropy(X, np.array([-1, 2, 1, 3])),
        IndexError,
        "cross_entropy: target must be a class index in [0, 10) or ignore_index=-100; got -1 at position (0,)",
    ),
    (
        "-100 not ignored",
        lambda: nllkit.cross_entropy(X, np.array([1, -100, 1, 3]), ignore_index=1),
        IndexError,
        "got -100 at position (1,)",
    ),
    (
        "k-dim position",
        lambda: nllkit.cross_entropy(np.zeros((2, 3, 2)), np.array([[0, 1], [2, 5]])),
        IndexError,
        "got 5 at position (1, 1)",
    ),
    (
        "count of bad targets",
        lambda: nllkit.nll_loss(X, np.array([10, 11, 1, 3])),
        IndexError,
        "(2 such entries)",
    ),
    (
        "target shape",
        lambda: nllkit.nll_loss(X, np.zeros((4, 10), dtype=int)),
        ValueError,
        "nll_loss: target must have shape (4,) for input of shape (4, 10); got (4, 10)",
    ),
    (
        "batch mismatch",
        lambda: nllkit.cross_entropy(X, np.array([1, 2])),
        ValueError,
        "target must have shape (4,) for input of shape (4, 10); got (2,)",
    ),
    (
        "1-d input, long target",
        lambda: nllkit.cross_entropy(np.zeros(3), np.array([0, 1])),
        ValueError,
        "target must have shape () or (1,) for input of shape (3,); got (2,)",
    ),
    (
        "0-d input",
        lambda: nllkit.nll_loss(np.zeros(()), np.array(0)),
        ValueError,
        "nll_loss: input must have 1 or more dimensions",
    ),
    (
        "integer input",
        lambda: nllkit.nll_loss(X.astype(int), Y),
        TypeError,
        "nll_loss: input must have a real floating dtype; got int64",
    ),
    (
        "bool target",
        lambda: nllkit.nll_loss(X, Y > 1),
        TypeError,
        "nll_loss: target must have an integer dtype (class indices); got bool",
    ),
    (
        "float index target",
        lambda: nllkit.cross_entropy(X, Y.astype(float)),
        TypeError,
        "cross_entropy: target of shape (4,) must have an integer dtype (class indices); got float64",
    ),
    (
        "weight length",
        lambda: nllkit.cross_entropy(X, Y, weight=np.ones(3)),
        ValueError,
        "cross_entropy: weight must have shape (10,), one entry per class; got (3,)",
    ),
    (
        "integer weight",
        lambda: nllkit.nll_loss(X, Y, weight=np.ones(10, dtype=int)),
        TypeError,
        "nll_loss: weight must have a real floating dtype; got int64",
    ),
    (
        "ignore_index type",
        lambda: nllkit.nll_loss(X, Y, ignore_index=1.5),
        TypeError,
        "nll_loss: ignore_index must be an int; got float",
    ),
    (
        "prob target ignore_index",
        lambda: nllkit.cross_entropy(X, np.zeros((4, 10)), ignore_index=0),
        ValueError,
        "cross_entropy: ignore_index must be negative (unused) with class-probability targets; got 0",
    ),
    (
        "negative smoothing",
        lambda: nllkit.cross_entropy(X, Y, label_smoothing=-0.1),
        ValueError,
        "cross_entropy: label_smoothing must be between 0.0 and 1.0; got -0.1",
    ),
    (
        "smoothing above 1",
        lambda: nllkit.cross_entropy(X, Y, label_smoothing=1.5),
        ValueError,
        "label_smoothing must be between 0.0 and 1.0; got 1.5",
    ),
    (
        "NaN smoothing",
        lambda: nllkit.cross_entropy(X, Y, label_smoothing=float("nan")),
        ValueError,
        "label_smoothing must be between 0.0 and 1.0; got nan",
    ),
    (
        "reduction",
        lambda: nllkit.nll_loss(X, Y, reduction="avg"),
        ValueError,
        "nll_loss: reduction must be one of 'none', 'mean', 'sum'; got 'avg'",
    ),
    (
        "kl reduction",
        lambda: nllkit.kl_div(X, X, reduction="batchsum"),
        ValueError,
        "kl_div: reduction must be one of 'none', 'mean', 'batchmean', 'sum'; got 'batchsum'",
    ),
    (
        "module reduction at construction",
        lambda: nllkit.CrossEntropyLoss(reduction="avg"),
        ValueError,
        "CrossEntropyLoss: reduction must be one of",
    ),
    # softmax family
    (
        "dim out of range",
        lambda: nllkit.log_softmax(X, 2),
        IndexError,
        "log_softmax: dim must be in [-2, 2) for an input with 2 dimensions; got 2",
    ),
    ("dim type", lambda: nllkit.softmax(X, None), TypeError, "softmax: dim must be an int; got NoneType"),
    (
        "repeated dim",
        lambda: nllkit.logsumexp(X, (1, -1)),
        ValueError,
        "logsumexp: dim must not repeat an axis",
    ),
    # binary
    (
        "bce input range",
        lambda: nllkit.binary_cross_entropy(np.array([0.5, 1.2]), np.array([0.0, 1.0])),
        ValueError,
        "binary_cross_entropy: all elements of input must be between 0 and 1; got 1.2 at position (1,)",
    ),
    (
        "bce NaN input",
        lambda: nllkit.binary_cross_entropy(np.array([np.nan, 0.2]), np.array([0.0, 1.0])),
        ValueError,
        "all elements of input must be between 0 and 1; got nan at position (0,)",
    ),
    (
        "bce target range",
        lambda: nllkit.binary_cross_entropy(np.array([0.5, 0.2]), np.array([0.0, -1.0])),
        ValueError,
        "all elements of target must be between 0 and 1; got -1.0 at position (1,)",
    ),
    (
        "bce shape",
        lambda: nllkit.binary_cross_entropy(np.array([0.5, 0.2]), np.array([[0.0, 1.0]])),
        ValueError,
        "binary_cross_entropy: target must have the input's shape (2,); got (1, 2)",
    ),
    (
        "bce weight enlarges",
        lambda: nllkit.binary_cross_entropy(
            np.full((2, 3), 0.5), np.zeros((2, 3)), weight=np.ones((4, 2, 3))
        ),
        ValueError,
        "weight must broadcast to the target shape (2, 3); got shape (4, 2, 3)",
    ),
    (
        "bce integer target",
        lambda: nllkit.binary_cross_entropy(np.array([0.5]), np.array([1])),
        TypeError,
        "binary_cross_entropy: target must have a real floating dtype; got int64",
    ),
    (
        "pos_weight shape",
        lambda: nllkit.binary_cross_entropy_with_logits(
            np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
        ),
        ValueError,
        "binary_cross_entropy_with_logits: pos_weight must broadcast to the target shape (2, 3); got shape (2,)",
    ),
    (
        "logits shape",
        lambda: nllkit.binary_cross_entropy_with_logits(np.zeros(3), np.zeros((3, 1))),
        ValueError,
        "target must have the input's shape (3,); got (3, 1)",
    ),
    # regression losses
    (
        "poisson broadcast",
        lambda: nllkit.poisson_nll_loss(np.zeros(2), np.zeros(3)),
        ValueError,
        "poisson_nll_loss: shapes must broadcast together; got input (2,), target (3,)",
    ),
    (
        "poisson eps",
        lambda: nllkit.poisson_nll_loss(np.zeros(2), np.zeros(2), eps=-1.0),
        ValueError,
        "poisson_nll_loss: eps must be between 0.0 and inf; got -1.0",
    ),
    (
        "poisson complex",
        lambda: nllkit.poisson_nll_loss(np.zeros(2, complex), np.zeros(2)),
        TypeError,
        "poisson_nll_loss: input must have a real floating or integer dtype; got complex128",
    ),
    (
        "var negative",
        lambda: nllkit.gaussian_nll_loss(X, X, np.array([1.0, -2.0, 1.0, 1.0])),
        ValueError,
        "gaussian_nll_loss: var must be non-negative (var has negative entry/entries); got -2.0 at position (1,)",
    ),
    (
        "float var negative",
        lambda: nllkit.gaussian_nll_loss(X, X, -1.0),
        ValueError,
        "gaussian_nll_loss: var has negative entry/entries; got -1.0",
    ),
    (
        "var NaN",
        lambda: nllkit.gaussian_nll_loss(X, X, np.array([1.0, np.nan, 1.0, 1.0])),
        ValueError,
        "gaussian_nll_loss: var must be free of NaN; got nan at position (1,)",
    ),
    (
        "var size",
        lambda: nllkit.gaussian_nll_loss(X, X, np.ones(2)),
        ValueError,
        "gaussian_nll_loss: var is of incorrect size",
    ),
    (
        "var integer",
        lambda: nllkit.gaussian_nll_loss(X, X, np.ones(4, dtype=int)),
        TypeError,
        "gaussian_nll_loss: var must have a real floating dtype; got int64",
    ),
    (
        "kl integer",
        lambda: nllkit.kl_div(np.zeros(2, dtype=int), np.zeros(2)),
        TypeError,
        "kl_div: input must have a real floating dtype; got int64",
    ),
    # differentiation
    (
        "non-scalar value_and_grad",
        lambda: nllkit.value_and_grad(nllkit.cross_entropy)(X, Y, reduction="none"),
        ValueError,
        "value_and_grad: fn must return a scalar; got an array of shape (4,)",
    ),
    (
        "non-differentiable argnum",
        lambda: nllkit.value_and_grad(nllkit.cross_entropy, argnums=1)(X, Y),
        TypeError,
        "value_and_grad: argument 1 has no gradient",
    ),
    (
        "argnum out of range",
        lambda: nllkit.value_and_grad(nllkit.cross_entropy, argnums=3)(X, Y),
        ValueError,
        "value_and_grad: argnums 3 is out of range for 2 positional arguments",
    ),
    (
        "foreign result",
        lambda: nllkit.vjp(lambda x: x * 2, X),
        TypeError,
        "vjp: fn must return the result of an nllkit function; got ndarray",
    ),
]


@pytest.mark.parametrize(("call", "exc", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error(call: Callable[[], Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=re.escape(message)):
        call()


def test_cotangent_shape_is_checked() -> None:
    _, pullback = nllkit.vjp(nllkit.cross_entropy, X, Y, reduction="none")
    with pytest.raises(
        ValueError, match=re.escape("vjp: cotangent must have the output's shape (4,); got (3,)")
    ):
        pullback(np.ones(3))


def test_mixed_namespaces_are_rejected() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="Multiple namespaces"):
        nllkit.cross_entropy(torch.zeros(2, 3), np.array([0, 1]))


def test_error_checks_do_not_modify_input() -> None:
    x = X.copy()
    with pytest.raises(IndexError):
        nllkit.cross_entropy(x, np.array([1, 2, 12, 3]))
    np.testing.assert_array_equal(x, X)
