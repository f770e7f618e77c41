"""PyTorch is the oracle: nllkit's values and gradients against torch 2.13.

Every test computes the same quantity twice, with nllkit on NumPy arrays
(gradients through ``nllkit.vjp`` with a random cotangent, or
``nllkit.value_and_grad``) and with ``torch.nn.functional`` (gradients through
``torch.autograd.grad``), and compares them: rtol 1e-6 / atol 1e-6 in
float32, rtol 1e-12 / atol 1e-12 in float64. The literal expectations are the
values verified against torch 2.13.0+cpu in
``/work/shared/reference/torch-semantics.md`` (section numbers below refer to
it); torch is checked against them too, so a change in the oracle shows up.

nllkit deviates from torch on purpose in a few places (documented in its
docstrings); those tests assert nllkit's behaviour and say so:

1. cross_entropy dispatches on the target dtype; any integer dtype is a
   class-index target.
2. weight (and gaussian var) may have another float dtype than input.
3. ValueError/TypeError/IndexError where torch raises RuntimeError; negative
   label_smoothing and NaN var raise ValueError.
4. An ignored row's input gradient is exactly 0 even with NaN/inf logits.
5. float16/bfloat16 are computed in float32 and rounded once.
6. gaussian var may have size 1 on any number of mismatched axes.
7. Poisson full=True target-gradient is 0 at t=0 (torch NaN); KL
   target-gradient at t=0 is -inf (torch NaN).
8. kl_div 'mean' does not warn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import nllkit

torch = pytest.importorskip("torch")
F = torch.nn.functional

# The edge cases feed inf and NaN on purpose; NumPy's "divide by zero" and
# "invalid value" RuntimeWarnings from nllkit's NumPy computation are expected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
REDUCTIONS = ["none", "mean", "sum"]
TOL = {np.dtype(np.float32): (1e-6, 1e-6), np.dtype(np.float64): (1e-12, 1e-12)}
C = 5  # classes in the classification grids
CLASS_SHAPES = [(C,), (4, C), (3, C, 2), (2, C, 3, 2)]
CLASS_SHAPE_IDS = ["C", "NC", "NCd", "NCdd"]


# --- helpers ------------------------------------------------------------------


def as_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def assert_match(ours: Any, ref: Any, *, what: str = "") -> None:
    """Same shape, same dtype, same values (NaN and inf at the same places).

    rtol and atol by dtype (``TOL``); large values are held to rtol.
    """
    o, r = as_numpy(ours), as_numpy(ref)
    assert o.shape == r.shape, f"{what}: shape {o.shape} != torch {r.shape}"
    assert o.dtype == r.dtype, f"{what}: dtype {o.dtype} != torch {r.dtype}"
    rtol, atol = TOL[np.dtype(r.dtype)]
    np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def to_torch(a: Any, requires_grad: bool = False) -> Any:
    if isinstance(a, (np.ndarray, np.generic)):
        t = torch.tensor(np.array(a))
        return t.requires_grad_(True) if requires_grad else t
    return a  # None, Python numbers


def cotangent_like(out: Any, rng: np.random.Generator) -> np.ndarray:
    o = np.asarray(out)
    return np.asarray(rng.standard_normal(o.shape) + 0.5, dtype=o.dtype)


def parity(
    ours_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    arrays: Sequence[Any],
    diff: Sequence[int],
    rng: np.random.Generator,
    *,
    torch_arrays: Sequence[Any] | None = None,
    grad_mask: dict[int, np.ndarray] | None = None,
) -> tuple[Any, tuple[Any, ...], Any, dict[int, Any]]:
    """Compare ``ours_fn(*arrays)`` with ``torch_fn(*tensors)``, value and VJP.

    ``diff``: indices of ``arrays`` to differentiate (both sides). ``torch_arrays``
    replaces the arrays torch sees (e.g. an int64 copy of a target).
    ``grad_mask[i]``: compare gradient ``i`` only where the mask is True.
    Returns nllkit's value and gradients and torch's.
    """
    out, pullback = nllkit.vjp(ours_fn, *arrays)
    t_in = [to_torch(a, i in diff) for i, a in enumerate(torch_arrays or arrays)]
    t_out = torch_fn(*t_in)
    assert_match(out, t_out, what="value")
    cot = cotangent_like(out, rng)
    grads = pullback(cot)
    t_grads: dict[int, Any] = {}
    if diff:
        got = torch.autograd.grad(t_out, [t_in[i] for i in diff], torch.from_numpy(cot.copy()))
        t_grads = dict(zip(diff, got, strict=True))
    for i in diff:
        assert grads[i] is not None, f"nllkit gives no gradient for argument {i}"
        g, tg = as_numpy(grads[i]), as_numpy(t_grads[i])
        if grad_mask is not None and i in grad_mask:
            m = np.broadcast_to(grad_mask[i], g.shape)
            assert g.shape == tg.shape
            g, tg = g[m], tg[m]
        assert_match(g, tg, what=f"gradient of argument {i}")
    return out, grads, t_out, t_grads


def mixed_parity(
    ours_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    arrays: Sequence[Any],
    diff: Sequence[int],
    rng: np.random.Generator,
) -> Any:
    """Parity for arguments of mixed precision (float32 with float64 or integers).

    torch promotes late: it computes some intermediates (log_softmax of a
    float32 input, (x - t) of float32 means, log of an integer target) in
    float32 and only then meets the float64 argument, so its float64 result
    carries float32 rounding. nllkit promotes every argument first. Hence:
    nllkit == torch on the arguments promoted up front, at float64 tolerance
    (gradients at the tolerance of their argument's dtype); and nllkit ==
    torch on the raw arguments at float32 tolerance. The result dtype is torch's.
    """
    out, pullback = nllkit.vjp(ours_fn, *arrays)
    raw = [to_torch(a, i in diff) for i, a in enumerate(arrays)]
    promoted = [
        to_torch(a.astype(np.float64) if isinstance(a, np.ndarray) else a, i in diff)
        for i, a in enumerate(arrays)
    ]
    t_raw, t_promoted = torch_fn(*raw), torch_fn(*promoted)
    assert np.asarray(out).dtype == as_numpy(t_raw).dtype == np.float64
    assert_match(out, t_promoted, what="value vs torch on promoted arguments")
    np.testing.assert_allclose(out, as_numpy(t_raw), rtol=1e-6, atol=1e-6, err_msg="value vs torch")
    cot = cotangent_like(out, rng)
    grads = pullback(cot)
    g_raw = torch.autograd.grad(t_raw, [raw[i] for i in diff], torch.from_numpy(cot.copy()))
    g_promoted = torch.autograd.grad(t_promoted, [promoted[i] for i in diff], torch.from_numpy(cot.copy()))
    for i, gr, gp in zip(diff, g_raw, g_promoted, strict=True):
        assert grads[i].dtype == arrays[i].dtype
        assert_match(grads[i], as_numpy(gp).astype(arrays[i].dtype), what=f"gradient {i} vs promoted")
        np.testing.assert_allclose(grads[i], as_numpy(gr), rtol=1e-6, atol=1e-6, err_msg=f"gradient {i}")
    return out


def index_target(rng: np.random.Generator, shape: tuple[int, ...], ignore_index: int) -> np.ndarray:
    """Class indices for an input of ``shape``; every third one is ``ignore_index``.

    For ignore_index=1 the ignored value is a valid class. A 1-D input gets a
    0-d target: class 3 with ignore_index=-100, and the ignored class 1 with
    ignore_index=1 (a fully ignored single sample).
    """
    if len(shape) == 1:
        return np.asarray(3 if ignore_index == -100 else 1, dtype=np.int64)
    tshape = (shape[0], *shape[2:])
    flat = rng.integers(0, shape[1], size=math.prod(tshape)).astype(np.int64)
    flat[::3] = ignore_index
    flat[1] = 4 if ignore_index != 4 else 0  # at least one counted target
    return flat.reshape(tshape)


def prob_target(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    axis = 0 if len(shape) == 1 else 1
    p = rng.random(shape) + 0.05
    return (p / p.sum(axis=axis, keepdims=True)).astype(dtype)


def logits(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.asarray(2 * rng.standard_normal(shape), dtype=dtype)


def class_weight(rng: np.random.Generator, dtype: Any, n: int = C) -> np.ndarray:
    return rng.uniform(0.5, 2.0, n).astype(dtype)


# --- cross_entropy ------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=CLASS_SHAPE_IDS)
@pytest.mark.parametrize(
    ("kind", "ignore_index"),
    [("index", -100), ("index", 1), ("prob", -100)],
    ids=["index-ign-100", "index-ign1", "prob"],
)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=["ls0", "ls0.2"])
@pytest.mark.parametrize("weighted", [False, True], ids=["w=None", "w"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_grid(reduction, weighted, label_smoothing, kind, ignore_index, shape, dtype, rng):
    x = logits(rng, shape, dtype)
    w = class_weight(rng, dtype) if weighted else None
    if kind == "index":
        t = index_target(rng, shape, ignore_index)
        diff = (0,)
    else:
        t = prob_target(rng, shape, dtype)
        # torch differentiates probability targets and, on this path, the weight.
        diff = (0, 1, 2) if weighted else (0, 1)

    def ours(x, t, w):
        return nllkit.cross_entropy(x, t, w, ignore_index, reduction, label_smoothing)

    def ref(x, t, w):
        return F.cross_entropy(
            x, t, w, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
        )

    _, grads, _, _ = parity(ours, ref, (x, t, w), diff, rng)
    if kind == "index":
        # Integer targets and the class weight of the index path have no gradient (as in torch).
        assert grads[1] is None and grads[2] is None


# --- nll_loss -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=CLASS_SHAPE_IDS)
@pytest.mark.parametrize("ignore_index", [-100, 1], ids=["ign-100", "ign1"])
@pytest.mark.parametrize("weighted", [False, True], ids=["w=None", "w"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_grid(reduction, weighted, ignore_index, shape, dtype, rng):
    x = logits(rng, shape, dtype)  # nll takes any real input as it is
    w = class_weight(rng, dtype) if weighted else None
    t = index_target(rng, shape, ignore_index)

    def ours(x, t, w):
        return nllkit.nll_loss(x, t, w, ignore_index, reduction)

    def ref(x, t, w):
        return F.nll_loss(x, t, w, ignore_index=ignore_index, reduction=reduction)

    _, grads, _, _ = parity(ours, ref, (x, t, w), (0,), rng)
    assert grads[1] is None and grads[2] is None


def test_nll_loss_of_log_softmax_is_cross_entropy(rng):
    """Composition through the tape: nll(log_softmax(x)) == cross_entropy(x), grads too."""
    x = logits(rng, (4, C, 3), np.float64)
    t = index_target(rng, x.shape, -100)
    w = class_weight(rng, np.float64)

    def ours(x):
        return nllkit.nll_loss(nllkit.log_softmax(x, 1), t, w)

    def ref(x):
        return F.cross_entropy(x, torch.from_numpy(t), torch.from_numpy(w))

    parity(ours, ref, (x,), (0,), rng)


def test_nll_weighted_single_sample_rounding():
    """Section 3: a weighted mean is (sum -x w)/sum w, ~1.2345677614 in float32."""
    x = np.array([0.1, -1.2345678], dtype=np.float32)
    w = np.array([1.0, 3.0], dtype=np.float32)
    ours = nllkit.nll_loss(x, np.asarray(1), w)
    ref = F.nll_loss(torch.from_numpy(x), torch.tensor(1), torch.from_numpy(w))
    assert_match(ours, ref)
    np.testing.assert_allclose(float(ours), 1.2345677614, rtol=1e-6)


# --- softmax, log_softmax, logsumexp --------------------------------------------

SOFTMAX_CASES = [
    ((), 0), ((), -1),
    ((5,), 0), ((5,), -1),
    ((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((3, 4), -2),
    ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -1), ((2, 3, 4), -2), ((2, 3, 4), -3),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("shape", "dim"), SOFTMAX_CASES, ids=[f"{s}-dim{d}" for s, d in SOFTMAX_CASES])
@pytest.mark.parametrize(
    ("ours_fn", "torch_fn"),
    [(nllkit.softmax, F.softmax), (nllkit.log_softmax, F.log_softmax)],
    ids=["softmax", "log_softmax"],
)
def test_softmax_family_grid(ours_fn, torch_fn, shape, dim, dtype, rng):
    x = logits(rng, shape, dtype)
    parity(lambda x: ours_fn(x, dim), lambda x: torch_fn(x, dim=dim), (x,), (0,), rng)


LOGSUMEXP_CASES = [
    ((), 0), ((), -1), ((5,), 0), ((5,), -1),
    ((3, 4), 0), ((3, 4), -1), ((3, 4), (0, 1)), ((3, 4), (-1, 0)),
    ((2, 3, 4), 1), ((2, 3, 4), -3), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, -2)), ((2, 3, 4), (0, 1, 2)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize(("shape", "dim"), LOGSUMEXP_CASES, ids=[f"{s}-dim{d}" for s, d in LOGSUMEXP_CASES])
def test_logsumexp_grid(shape, dim, keepdim, dtype, rng):
    x = logits(rng, shape, dtype)
    parity(
        lambda x: nllkit.logsumexp(x, dim, keepdim),
        lambda x: torch.logsumexp(x, dim, keepdim=keepdim),
        (x,),
        (0,),
        rng,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "row",
    [
        [1e30, 0.0, -1e30],
        [3e38, 3e38, 0.0],
        [100.0, 0.0, 1.0],
        [math.inf, 0.0, 1.0],
        [math.nan, 0.0, 1.0],
        [-math.inf, -math.inf, -math.inf],
        [-math.inf, 1.0, 0.0],
    ],
    ids=["1e30", "3e38", "100", "+inf", "nan", "all-inf", "-inf"],
)
@pytest.mark.parametrize(
    ("ours_fn", "torch_fn"),
    [(nllkit.softmax, F.softmax), (nllkit.log_softmax, F.log_softmax)],
    ids=["softmax", "log_softmax"],
)
def test_softmax_family_extreme_rows(ours_fn, torch_fn, row, dtype):
    """Section 2: max-subtraction, NaN for +inf/NaN/all -inf rows; gradients per output."""
    x = np.array([row, [0.5, -0.25, 2.0]], dtype=dtype)
    out, pullback = nllkit.vjp(lambda x: ours_fn(x, 1), x)
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch_fn(tx, dim=1)
    assert_match(out, t_out)
    # One output at a time, so a -inf output does not mix into the others.
    for j in range(3):
        cot = np.zeros_like(x)
        cot[0, j] = 1.0
        cot[1, j] = 1.0
        (tg,) = torch.autograd.grad(t_out, tx, torch.from_numpy(cot), retain_graph=True)
        assert_match(pullback(cot)[0], tg, what=f"gradient through output {j}")


def test_log_softmax_verified_rows():
    """Section 2 literals: ls([1e30,0,-1e30]), ls([3e38,3e38]), ls([100,0]), ls([-inf,1])."""
    f32 = np.float32
    np.testing.assert_array_equal(
        nllkit.log_softmax(np.array([1e30, 0, -1e30], f32), 0), f32([0, -1e30, -2e30])
    )
    np.testing.assert_allclose(
        nllkit.log_softmax(np.array([3e38, 3e38], f32), 0), [-0.6931472] * 2, rtol=1e-6
    )
    np.testing.assert_array_equal(nllkit.log_softmax(np.array([100, 0], f32), 0), [0, -100])
    np.testing.assert_array_equal(nllkit.log_softmax(np.array([-np.inf, 1], f32), 0), [-np.inf, 0])
    # Gradient through output[1] is [0, 0]; through output[0] it is [1, -1].
    _, pullback = nllkit.vjp(nllkit.log_softmax, np.array([-np.inf, 1.0], f32), 0)
    np.testing.assert_array_equal(pullback(np.array([0, 1], f32))[0], [0, 0])
    np.testing.assert_array_equal(pullback(np.array([1, 0], f32))[0], [1, -1])
    # 0-d input: softmax 1, log_softmax 0.
    assert float(nllkit.softmax(np.asarray(2.5), 0)) == 1.0 == float(F.softmax(torch.tensor(2.5), 0))
    assert (
        float(nllkit.log_softmax(np.asarray(2.5), -1)) == 0.0 == float(F.log_softmax(torch.tensor(2.5), -1))
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_logsumexp_infinite_and_empty_slices(dtype, rng):
    x = np.array(
        [
            [math.inf, 0.0, 1.0],
            [-math.inf, -math.inf, -math.inf],
            [-math.inf, 1.0, 2.0],
            [1000.0, 1000.0, 0.0],
        ],
        dtype=dtype,
    )
    parity(lambda x: nllkit.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1), (x,), (), rng)
    # Finite rows: gradient is the softmax.
    parity(lambda x: nllkit.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1), (x[2:],), (0,), rng)
    empty = np.zeros((2, 0), dtype=dtype)
    parity(lambda x: nllkit.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1), (empty,), (0,), rng)


# --- the extreme-logits table of section 4 ------------------------------------------

# logits -> ((loss, grad) for target 0, (loss, grad) for target 1); None = NaN everywhere.
CE_EXTREMES = {
    "1e30": ([1e30, 0.0, -1e30], (0.0, [0, 0, 0]), (1.0000000150e30, [1, -1, 0])),
    "+inf": ([math.inf, 0.0, 0.0], (math.nan, None), (math.nan, None)),
    "-inf": ([-math.inf, 0.0, 0.0], (math.inf, [-1, 0.5, 0.5]), (0.6931471824645996, [0, -0.5, 0.5])),
    "0,-inf,-inf": ([0.0, -math.inf, -math.inf], (0.0, [0, 0, 0]), (math.inf, [1, -1, 0])),
    "nan": ([math.nan, 0.0, 0.0], (math.nan, None), (math.nan, None)),
    "3e38": ([3e38, 3e38, 0.0], (0.6931471824645996, "skip"), (0.6931471824645996, "skip")),
    "-1e30": ([-1e30] * 3, (1.0986123085021973, "skip"), (1.0986123085021973, "skip")),
    "all-inf": ([-math.inf] * 3, (math.nan, "skip"), (math.nan, "skip")),
}


@pytest.mark.parametrize("target", [0, 1])
@pytest.mark.parametrize("case", list(CE_EXTREMES))
def test_cross_entropy_extreme_logits_table(case, target):
    """Section 4 table (float32, class-index target): loss and gradient, literal and vs torch."""
    row, *expected = CE_EXTREMES[case]
    want_loss, want_grad = expected[target]
    x = np.array([row], dtype=np.float32)
    t = np.array([target])
    with np.errstate(all="ignore"):
        loss, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, t)
    tx = torch.tensor(x, requires_grad=True)
    t_loss = F.cross_entropy(tx, torch.from_numpy(t))
    (t_grad,) = torch.autograd.grad(t_loss, tx)
    np.testing.assert_allclose(float(t_loss.detach()), want_loss, rtol=1e-6)  # the oracle agrees
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-6)
    assert_match(loss, t_loss)
    if want_grad == "skip":
        assert_match(grad, t_grad)
    elif want_grad is None:
        assert np.isnan(grad).all() and torch.isnan(t_grad).all()
    else:
        np.testing.assert_allclose(grad[0], want_grad, rtol=1e-6, atol=1e-7)
        assert_match(grad, t_grad)


def test_cross_entropy_smoothing_extreme_logits():
    """Section 4: [1e30,0,-1e30], target 0, eps=0.1 -> 1.0000001095e29; eps>0 with -inf -> inf."""
    x = np.array([[1e30, 0.0, -1e30]], dtype=np.float32)
    ours = nllkit.cross_entropy(x, np.array([0]), label_smoothing=0.1)
    ref = F.cross_entropy(torch.from_numpy(x), torch.tensor([0]), label_smoothing=0.1)
    np.testing.assert_allclose(float(ref), 1.0000001095e29, rtol=1e-6)
    np.testing.assert_allclose(float(ours), 1.0000001095e29, rtol=1e-6)
    x = np.array([[0.0, -np.inf, -np.inf]], dtype=np.float32)
    with np.errstate(all="ignore"):
        ours = nllkit.cross_entropy(x, np.array([0]), label_smoothing=0.1)
    ref = F.cross_entropy(torch.from_numpy(x), torch.tensor([0]), label_smoothing=0.1)
    assert float(ref) == math.inf
    assert float(ours) == math.inf


def test_cross_entropy_prob_target_zero_times_minus_inf():
    """Section 4: a -inf logit where the probability target is 0 gives NaN (0 * -inf)."""
    x = np.array([[0.0, -np.inf, 1.0]], dtype=np.float32)
    p = np.array([[0.5, 0.0, 0.5]], dtype=np.float32)
    with np.errstate(all="ignore"):
        ours = nllkit.cross_entropy(x, p)
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(p))
    assert math.isnan(float(ref)) and math.isnan(float(ours))


# --- worked examples of section 0 ------------------------------------------------------


def test_worked_examples_classification():
    x = np.array(
        [
            [0.0054, -0.8030, -0.5758, -0.6518],
            [-0.5518, 0.3904, 0.5296, 0.4973],
            [0.1608, 0.5822, 0.9536, -0.3173],
        ],
        dtype=np.float32,
    )
    t = np.array([0, 2, 3])
    logp = nllkit.log_softmax(x, 1)
    np.testing.assert_allclose(
        logp,
        [
            [-0.9254875183, -1.7338874340, -1.5066875219, -1.5826874971],
            [-2.2374603748, -1.2952604294, -1.1560603380, -1.1883603334],
            [-1.6777744293, -1.2563744783, -0.8849744797, -2.1558744907],
        ],
        rtol=1e-6,
    )
    np.testing.assert_allclose(float(nllkit.nll_loss(logp, t)), 1.4124741554260254, rtol=1e-6)
    np.testing.assert_allclose(float(nllkit.cross_entropy(x, t)), 1.4124741554260254, rtol=1e-6)
    np.testing.assert_allclose(
        nllkit.cross_entropy(x, t, reduction="none"), [0.9254875183, 1.1560603380, 2.1558744907], rtol=1e-6
    )
    assert_match(nllkit.cross_entropy(x, t), F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t)))

    f = np.array(
        [
            [-0.3280, -0.6004, -0.1753, 1.2293, 1.5320],
            [-0.4770, -2.7324, 0.5937, -1.8657, 0.4829],
            [-1.5907, 0.9821, -1.3793, 0.7273, 0.0256],
        ]
    )
    t = np.array([1, 0, 3])
    np.testing.assert_allclose(
        float(nllkit.cross_entropy(f.astype(np.float32), t)), 1.982669472694397, rtol=1e-6
    )
    # The float64 value of section 0 is torch's on the float32 logits cast to float64.
    f64 = f.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(float(nllkit.cross_entropy(f64, t)), 1.9826695297156463, rtol=1e-12)
    assert_match(nllkit.cross_entropy(f, t), F.cross_entropy(torch.from_numpy(f), torch.from_numpy(t)))
    np.testing.assert_allclose(
        nllkit.cross_entropy(f.astype(np.float32), t, reduction="none"),
        [2.9183089733, 1.9290671349, 1.1006324291],
        rtol=1e-6,
    )


def test_worked_example_poisson_tutorial():
    """Section 0(c): the tutorial's PoissonNLLLoss(log_input=True, full=True)."""
    x = np.array([[0.8, 0.9, 0.3]] * 4, dtype=np.float32)
    t = np.array([[1.0, 3, 5], [1, 0, 6], [1, 4, 5], [1, 1, 7]], dtype=np.float32)
    none = nllkit.poisson_nll_loss(x, t, full=True, reduction="none")
    np.testing.assert_allclose(
        none,
        [
            [1.4255409240722656, 1.5236848592758179, 4.620706081390381],
            [1.4255409240722656, 2.4596030712127686, 6.115234375],
            [1.4255409240722656, 2.016866445541382, 4.620706081390381],
            [1.4255409240722656, 1.5596030950546265, 7.763123512268066],
        ],
        rtol=1e-6,
    )
    np.testing.assert_allclose(float(nllkit.poisson_nll_loss(x, t, full=True)), 3.0318076610565186, rtol=1e-6)
    np.testing.assert_allclose(
        float(nllkit.poisson_nll_loss(x, t, full=True, reduction="sum")), 36.381690979003906, rtol=1e-6
    )
    np.testing.assert_allclose(float(nllkit.poisson_nll_loss(x, t)), 0.570000946521759, rtol=1e-6)
    np.testing.assert_allclose(
        float(nllkit.poisson_nll_loss(x.astype(np.float64), t.astype(np.float64), full=True)),
        3.0318074777476682,
        rtol=1e-12,
    )
    ref = F.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), full=True, reduction="none")
    assert_match(none, ref)


# --- deviations of the classification losses ----------------------------------------


@pytest.mark.parametrize("target_dtype", [np.int8, np.int16, np.int32, np.uint8, np.int64])
@pytest.mark.parametrize("shape", [(C,), (4, C), (2, C, 3)], ids=["C", "NC", "NCd"])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_any_integer_target_dtype(fn, shape, target_dtype, rng):
    """Deviation 1: any integer dtype is a class-index target (torch needs int64)."""
    x = logits(rng, shape, np.float64)
    t64 = index_target(rng, shape, ignore_index=2)
    t = t64.astype(target_dtype)
    kwargs: dict[str, Any] = {"ignore_index": 2, "reduction": "sum"}
    if fn == "cross_entropy":
        kwargs["label_smoothing"] = 0.1
    parity(
        lambda x, t: getattr(nllkit, fn)(x, t, **kwargs),
        lambda x, t: getattr(F, fn)(x, t, **kwargs),
        (x, t),
        (0,),
        rng,
        torch_arrays=(x, t64),
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_weight_of_another_float_dtype_index_path(fn, label_smoothing, rng):
    """Deviation 2: a float64 weight with float32 input; the result is float32."""
    x = logits(rng, (4, C), np.float32)
    t = index_target(rng, x.shape, -100)
    w = class_weight(rng, np.float64)
    kwargs: dict[str, Any] = {} if fn == "nll_loss" else {"label_smoothing": label_smoothing}
    parity(
        lambda x, t: getattr(nllkit, fn)(x, t, w, **kwargs),
        lambda x, t: getattr(F, fn)(x, t, torch.from_numpy(w.astype(np.float32)), **kwargs),
        (x, t),
        (0,),
        rng,
    )


def test_weight_of_another_float_dtype_prob_path(rng):
    """Prob targets promote as torch does: float32 input, float64 weight -> float64."""
    x = logits(rng, (4, C), np.float32)
    p = prob_target(rng, x.shape, np.float32)
    w = class_weight(rng, np.float64)
    mixed_parity(
        lambda x, p, w: nllkit.cross_entropy(x, p, w, label_smoothing=0.1),
        lambda x, p, w: F.cross_entropy(x, p, w, label_smoothing=0.1),
        (x, p, w),
        (0, 1, 2),
        rng,
    )


def test_prob_target_float64_with_float32_input(rng):
    x = logits(rng, (3, C), np.float32)
    p = prob_target(rng, x.shape, np.float64)
    mixed_parity(nllkit.cross_entropy, F.cross_entropy, (x, p), (0, 1), rng)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, "all-inf"], ids=["nan", "+inf", "-inf", "all-inf"]
)
def test_ignored_row_with_nonfinite_logits_has_zero_gradient(bad, label_smoothing, rng):
    """Deviation 4 (pytorch#11551): our ignored row's gradient is exactly 0; the rest is torch's."""
    x = logits(rng, (4, C), np.float64)
    if bad == "all-inf":
        x[2] = -math.inf
    else:
        x[2, 1] = bad
    t = np.array([0, 3, -100, 4])
    with np.errstate(all="ignore"):
        loss, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, t, label_smoothing=label_smoothing)
    tx = torch.tensor(x, requires_grad=True)
    t_loss = F.cross_entropy(tx, torch.from_numpy(t), label_smoothing=label_smoothing)
    (t_grad,) = torch.autograd.grad(t_loss, tx)
    assert_match(loss, t_loss)  # the forward ignores the row in both
    assert np.all(grad[2] == 0.0)
    keep = [0, 1, 3]
    assert_match(grad[keep], t_grad[keep])


# --- empty and fully ignored batches ---------------------------------------------------


def _empty_cases(dtype: Any) -> dict[str, tuple[Callable, Callable, tuple, tuple]]:
    e = np.zeros((0, C), dtype=dtype)
    e3 = np.zeros((0, C, 2), dtype=dtype)
    ti = np.zeros((0,), dtype=np.int64)
    w = np.linspace(0.5, 2.0, C).astype(dtype)
    return {
        "ce-index": (nllkit.cross_entropy, F.cross_entropy, (e, ti), (0,)),
        "ce-index-w-ls": (
            lambda x, t, w, **k: nllkit.cross_entropy(x, t, w, label_smoothing=0.2, **k),
            lambda x, t, w, **k: F.cross_entropy(x, t, w, label_smoothing=0.2, **k),
            (e, ti, w),
            (0,),
        ),
        "ce-index-3d": (nllkit.cross_entropy, F.cross_entropy, (e3, np.zeros((0, 2), np.int64)), (0,)),
        "ce-prob": (nllkit.cross_entropy, F.cross_entropy, (e, e.copy()), (0, 1)),
        "nll": (nllkit.nll_loss, F.nll_loss, (e, ti), (0,)),
        "bce": (nllkit.binary_cross_entropy, F.binary_cross_entropy, (e, e.copy()), (0, 1)),
        "bce-logits": (
            nllkit.binary_cross_entropy_with_logits,
            F.binary_cross_entropy_with_logits,
            (e, e.copy()),
            (0, 1),
        ),
        "poisson": (nllkit.poisson_nll_loss, F.poisson_nll_loss, (e, e.copy()), (0, 1)),
        "gaussian": (nllkit.gaussian_nll_loss, F.gaussian_nll_loss, (e, e.copy(), e + 1), (0, 1, 2)),
        "kl": (nllkit.kl_div, F.kl_div, (e, e.copy()), (0, 1)),
    }


EMPTY_KEYS = list(_empty_cases(np.float64))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's kl_div 'mean' warning
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", EMPTY_KEYS)
def test_empty_batch(case, reduction, dtype, rng):
    """Section 1: N=0 -> mean NaN, sum 0, 'none' empty; gradients empty."""
    ours_fn, torch_fn, arrays, diff = _empty_cases(dtype)[case]
    out, *_ = parity(
        lambda *a: ours_fn(*a, reduction=reduction),
        lambda *a: torch_fn(*a, reduction=reduction),
        arrays,
        diff,
        rng,
    )
    if reduction == "mean":
        assert math.isnan(float(out))
    elif reduction == "sum":
        assert float(out) == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kl_batchmean_of_empty_batch_is_nan(dtype, rng):
    e = np.zeros((0, 3), dtype=dtype)
    out, *_ = parity(
        lambda x, t: nllkit.kl_div(x, t, "batchmean"),
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        (e, e.copy()),
        (0, 1),
        rng,
    )
    assert math.isnan(float(out))


def test_cross_entropy_prob_target_empty_sum_is_negative_zero():
    """Section 1 / 4: the empty probability-target 'sum' is -0.0 in torch."""
    e = np.zeros((0, C), dtype=np.float32)
    ref = F.cross_entropy(torch.from_numpy(e), torch.from_numpy(e), reduction="sum")
    ours = nllkit.cross_entropy(e, e, reduction="sum")
    assert float(ref) == 0.0 and math.copysign(1.0, float(ref)) == -1.0
    assert float(ours) == 0.0
    assert math.copysign(1.0, float(ours)) == -1.0, "nllkit gives +0.0 where torch gives -0.0"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("fn", "label_smoothing", "weighted"),
    [("nll_loss", 0.0, False), ("nll_loss", 0.0, True), ("cross_entropy", 0.0, True),
     ("cross_entropy", 0.2, True), ("cross_entropy", 0.2, False)],
    ids=["nll", "nll-w", "ce-w", "ce-w-ls", "ce-ls"],
)  # fmt: skip
@pytest.mark.parametrize("ignore_index", [-100, 2], ids=["ign-100", "ign2"])
def test_fully_ignored_batch(fn, label_smoothing, weighted, ignore_index, reduction, dtype, rng):
    """Sections 3-4: every target ignored -> mean NaN, sum 0, gradient all zeros."""
    x = logits(rng, (3, C, 2), dtype)
    t = np.full((3, 2), ignore_index)
    w = class_weight(rng, dtype) if weighted else None
    kwargs: dict[str, Any] = {"ignore_index": ignore_index, "reduction": reduction}
    if fn == "cross_entropy":
        kwargs["label_smoothing"] = label_smoothing
    out, grads, *_ = parity(
        lambda x, t, w: getattr(nllkit, fn)(x, t, w, **kwargs),
        lambda x, t, w: getattr(F, fn)(x, t, w, **kwargs),
        (x, t, w),
        (0,),
        rng,
    )
    assert np.all(grads[0] == 0.0)
    if reduction == "mean":
        assert math.isnan(float(out))


@pytest.mark.parametrize("fn", ["nll_loss", "cross_entropy"])
def test_zero_weight_sum_gives_nan_value_and_gradient(fn, rng):
    """Section 3: sum of w[y] = 0 with targets present -> NaN mean, NaN gradient at the targets."""
    x = logits(rng, (3, C), np.float64)
    t = np.array([1, 1, 3])
    w = np.array([1.0, 0.0, 2.0, 0.0, 1.0])
    with np.errstate(all="ignore"):
        parity(
            lambda x, t: getattr(nllkit, fn)(x, t, w),
            lambda x, t: getattr(F, fn)(x, t, torch.from_numpy(w)),
            (x, t),
            (0,),
            rng,
        )


# --- binary_cross_entropy --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 1), (4, 3), (1, 1)], ids=str)
def test_bce_grid(weight_shape, reduction, dtype, rng):
    """Soft targets, broadcast weight; gradients w.r.t. input and target."""
    p = rng.uniform(0.02, 0.98, (4, 3)).astype(dtype)
    y = rng.uniform(0.0, 1.0, (4, 3)).astype(dtype)
    y[0, :2] = [0.0, 1.0]
    w = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape).astype(dtype)
    _, grads, _, _ = parity(
        lambda p, y, w: nllkit.binary_cross_entropy(p, y, w, reduction),
        lambda p, y, w: F.binary_cross_entropy(p, y, w, reduction=reduction),
        (p, y, w),
        (0, 1),
        rng,
    )
    if w is not None:
        assert grads[2] is None  # not differentiated, as in torch


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_edge_probabilities(reduction, dtype, rng):
    """p in {0, 1} (and near them): the -100 log clamp and the 1e-12 gradient floor."""
    p = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1e-30, 1e-6, 0.3, 0.6], dtype=dtype)
    y = np.array([1.0, 0.0, 0.5, 0.0, 1.0, 0.3, 1.0, 1.0, 0.0, 0.3], dtype=dtype)
    with np.errstate(all="ignore"):
        parity(
            lambda p, y: nllkit.binary_cross_entropy(p, y, reduction=reduction),
            lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction),
            (p, y),
            (0, 1),
            rng,
        )


def test_bce_verified_values():
    """Section 7, float32: forward clamp, signed zero, denormal, and the gradient table."""
    cases = [  # p, y, loss
        (0.0, 1.0, 100.0),
        (1.0, 0.0, 100.0),
        (0.0, 0.5, 50.0),
        (0.0, 0.0, 0.0),
        (1.0, 1.0, -0.0),
        (1e-45, 1.0, 100.0),
        (1 - 1e-7, 0.0, 15.9423847),
        (0.6, 0.3, 0.7946511507),
    ]
    p = np.array([c[0] for c in cases], dtype=np.float32)
    y = np.array([c[1] for c in cases], dtype=np.float32)
    want = np.array([c[2] for c in cases], dtype=np.float32)
    ours = nllkit.binary_cross_entropy(p, y, reduction="none")
    ref = F.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(y), reduction="none")
    np.testing.assert_allclose(ref.numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(ours, want, rtol=1e-6)
    assert np.signbit(ref.numpy()[4]) and np.signbit(ours[4]), "p=1, y=1 gives -0.0"

    p = np.array([0.0, 1.0, 1e-30, 0.0, 1.0, 1e-6], dtype=np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0], dtype=np.float32)
    _, pullback = nllkit.vjp(nllkit.binary_cross_entropy, p, y, reduction="none")
    with np.errstate(all="ignore"):
        grad_p, _ = pullback(np.ones(6, np.float32))
    np.testing.assert_array_equal(grad_p[:3], np.float32([-999999995904.0, 999999995904.0, -999999995904.0]))
    np.testing.assert_array_equal(grad_p[3:5], [0.0, 0.0])
    np.testing.assert_allclose(grad_p[5], -1e6, rtol=1e-6)
    # Target gradient: log(1-p) - log(p); p=0.3 gives 0.8472977877.
    _, pullback = nllkit.vjp(
        nllkit.binary_cross_entropy, np.float32([0.3]), np.float32([0.5]), reduction="none"
    )
    np.testing.assert_allclose(pullback(np.ones(1, np.float32))[1], [0.8472977877], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_bce_gradient_floor_literal(dtype):
    """The 1e-12 floor of torch's BCE backward is float32(1e-12) in every dtype.

    float32: 1/float32(1e-12) = 999999995904; float64 (verified on torch 2.13):
    1000000003995.8029, i.e. the floor is 9.99999996e-13, not 1e-12.
    """
    p = np.array([0.0, 1.0, 1e-30], dtype=dtype)
    y = np.array([1.0, 0.0, 1.0], dtype=dtype)
    tp = torch.tensor(p, requires_grad=True)
    (t_grad,) = torch.autograd.grad(F.binary_cross_entropy(tp, torch.from_numpy(y), reduction="sum"), tp)
    want = 1 / np.float64(np.float32(1e-12))
    expected = np.array([-want, want, -want]).astype(dtype)
    np.testing.assert_array_equal(t_grad.numpy(), expected)  # the oracle
    _, grad = nllkit.value_and_grad(nllkit.binary_cross_entropy)(p, y, reduction="sum")
    np.testing.assert_allclose(grad, expected, rtol=TOL[np.dtype(dtype)][0])


# --- binary_cross_entropy_with_logits ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight_shape", [None, (3,), (4, 3), (1, 3)], ids=lambda s: f"pw{s}")
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 1)], ids=lambda s: f"w{s}")
def test_bce_with_logits_grid(weight_shape, pos_weight_shape, reduction, dtype, rng):
    x = (3 * rng.standard_normal((4, 3))).astype(dtype)
    y = rng.uniform(0.0, 1.0, (4, 3)).astype(dtype)
    y[0] = [0.0, 1.0, 1.0]
    w = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape).astype(dtype)
    pw = None if pos_weight_shape is None else rng.uniform(0.3, 3.0, pos_weight_shape).astype(dtype)
    _, grads, _, _ = parity(
        lambda x, y, w, pw: nllkit.binary_cross_entropy_with_logits(x, y, w, reduction, pw),
        lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=pw),
        (x, y, w, pw),
        (0, 1),
        rng,
    )
    assert grads[2] is None and grads[3] is None  # weight, pos_weight: not differentiated


@pytest.mark.parametrize("pos_weight", [None, 2.5, -0.5], ids=["pw=None", "pw2.5", "pw-0.5"])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3, 2.0])
def test_bce_with_logits_extremes_vs_torch(y, pos_weight, rng):
    """Section 8: extreme and non-finite logits, unchecked targets (y=2), negative pos_weight."""
    x = np.array([-100.0, -20.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 0.0, 15.0], dtype=np.float32)
    yy = np.full_like(x, y)
    pw = None if pos_weight is None else np.full(x.shape, pos_weight, np.float32)
    with np.errstate(all="ignore"):
        parity(
            lambda x, y: nllkit.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=pw),
            lambda x, y: F.binary_cross_entropy_with_logits(
                x, y, reduction="none", pos_weight=None if pw is None else torch.from_numpy(pw)
            ),
            (x, yy),
            (0,),
            rng,
        )


def test_bce_with_logits_verified_table():
    """Section 8 table (float32), literal: loss for y=0 and y=1, gradient for y=1."""
    x = np.array([-100.0, -20.0, 1e30, -1e30, np.inf, -np.inf, np.nan], dtype=np.float32)
    with np.errstate(all="ignore"):
        loss0 = nllkit.binary_cross_entropy_with_logits(x, np.zeros_like(x), reduction="none")
        loss1, pullback = nllkit.vjp(
            nllkit.binary_cross_entropy_with_logits, x, np.ones_like(x), reduction="none"
        )
        grad1 = pullback(np.ones_like(x))[0]
    np.testing.assert_allclose(loss0, [0, 0, 1e30, 0, np.inf, np.nan, np.nan], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(loss1, [100, 20, 0, 1e30, np.nan, np.nan, np.nan], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(grad1, [-1, -1, 0, -1, 0, -1, np.nan], rtol=1e-6, atol=1e-30)
    # y=2 is not range-checked: x=1 gives -0.6867.
    np.testing.assert_allclose(
        float(nllkit.binary_cross_entropy_with_logits(np.float32([1.0]), np.float32([2.0]))),
        -0.68673831,
        rtol=1e-6,
    )


# --- poisson_nll_loss --------------------------------------------------------------------

POISSON_T = np.array([[0.0, 1.0, 3.0], [2.5, 0.5, 7.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [1e-8, 0.5])
@pytest.mark.parametrize("full", [False, True], ids=["", "full"])
@pytest.mark.parametrize("log_input", [True, False], ids=["log", "lin"])
def test_poisson_grid(log_input, full, eps, reduction, dtype, rng):
    x = rng.standard_normal((2, 3)) if log_input else rng.uniform(0.1, 3.0, (2, 3))
    x = x.astype(dtype)
    t = POISSON_T.astype(dtype)
    # Deviation 7: at t=0 with full=True torch's target gradient is NaN; ours
    # excludes the masked Stirling term. Those points are asserted separately.
    mask = {1: t != 0} if full else None
    _, grads, _, t_grads = parity(
        lambda x, t: nllkit.poisson_nll_loss(x, t, log_input, full, eps, reduction),
        lambda x, t: F.poisson_nll_loss(x, t, log_input=log_input, full=full, eps=eps, reduction=reduction),
        (x, t),
        (0, 1),
        rng,
        grad_mask=mask,
    )
    if full:
        assert torch.isnan(t_grads[1][torch.from_numpy(t == 0)]).all()  # the torch defect
        assert np.isfinite(grads[1]).all()


@pytest.mark.parametrize("log_input", [True, False], ids=["log", "lin"])
def test_poisson_full_target_gradient_at_zero_count(log_input):
    """Deviation 7: at t=0 (and 0<t<=1) the target gradient is just that of -t*log(rate)."""
    x = np.array([0.7, 1.3, 2.0])
    t = np.array([0.0, 0.5, 1.0])
    _, pullback = nllkit.vjp(nllkit.poisson_nll_loss, x, t, log_input, True, reduction="sum")
    grad_t = pullback(np.asarray(1.0))[1]
    np.testing.assert_allclose(grad_t, -x if log_input else -np.log(x + 1e-8), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True], ids=["", "full"])
@pytest.mark.parametrize("shapes", [((2, 1), (2, 3)), ((2, 3), (2, 1)), ((3,), (2, 3))], ids=str)
def test_poisson_broadcasting(shapes, full, reduction, dtype, rng):
    """Section 5: input and target broadcast silently; 'mean' over the broadcast numel."""
    x = rng.standard_normal(shapes[0]).astype(dtype)
    t = rng.uniform(1.5, 6.0, shapes[1]).astype(dtype)
    parity(
        lambda x, t: nllkit.poisson_nll_loss(x, t, full=full, reduction=reduction),
        lambda x, t: F.poisson_nll_loss(x, t, full=full, reduction=reduction),
        (x, t),
        (0, 1),
        rng,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("full", [False, True], ids=["", "full"])
def test_poisson_integer_targets(full, dtype, rng):
    """Integer counts are promoted to the input's dtype; the target has no gradient.

    torch takes the log of an integer target in float32 (the default dtype) for
    the Stirling term, so with float64 input its full=True value carries float32
    rounding; nllkit promotes first. Compared strictly with torch on the
    promoted target, and at float32 tolerance with torch on the integer one.
    """
    x = rng.standard_normal((2, 3)).astype(dtype)
    t = np.array([[0, 1, 3], [2, 5, 7]], dtype=np.int64)
    _, grads, _, _ = parity(
        lambda x, t: nllkit.poisson_nll_loss(x, t, full=full),
        lambda x, t: F.poisson_nll_loss(x, t, full=full),
        (x, t),
        (0,),
        rng,
        torch_arrays=(x, t.astype(dtype)),
    )
    assert grads[1] is None
    out = nllkit.poisson_nll_loss(x, t, full=full)
    ref = F.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), full=full)
    assert np.asarray(out).dtype == as_numpy(ref).dtype == dtype
    np.testing.assert_allclose(out, as_numpy(ref), rtol=1e-6, atol=1e-6)


def test_poisson_verified_values():
    """Section 5 literals (float32 unless said)."""
    f32 = np.float32
    t = np.array([0, 0.5, 1, 1.0001, 2, 10], f32)
    x = np.full_like(t, 0.3)
    stirling = nllkit.poisson_nll_loss(x, t, full=True, reduction="none") - nllkit.poisson_nll_loss(
        x, t, reduction="none"
    )
    np.testing.assert_allclose(stirling, [0, 0, 0, -0.0810114, 0.6518065, 15.0960846], rtol=1e-5, atol=1e-6)
    # t = 2.5 (fractional, > 1) at x = 0.5: torch f32 1.5665320158, reference 1.5665319995.
    x5, t25 = np.array([0.5]), np.array([2.5])
    np.testing.assert_allclose(float(nllkit.poisson_nll_loss(x5, t25, full=True)), 1.5665319995, rtol=1e-9)
    np.testing.assert_allclose(
        float(nllkit.poisson_nll_loss(x5.astype(f32), t25.astype(f32), full=True)), 1.5665320158, rtol=1e-6
    )
    # A negative target gets no Stirling term: t=-2, x=0.5 -> 2.6487.
    np.testing.assert_allclose(
        float(nllkit.poisson_nll_loss(f32(0.5), f32(-2.0), full=True)), 2.6487213, rtol=1e-6
    )
    # log_input=False: x=0 with t=0, 2, 1; eps=0 edges; negative x.
    x0 = np.zeros(3, f32)
    np.testing.assert_allclose(
        nllkit.poisson_nll_loss(x0, np.array([0, 2, 1], f32), log_input=False, reduction="none"),
        [0.0, 36.8413619995, 18.4206809998],
        rtol=1e-6,
    )
    with np.errstate(all="ignore"):
        e0 = nllkit.poisson_nll_loss(
            np.zeros(2, f32), np.array([2, 0], f32), log_input=False, eps=0.0, reduction="none"
        )
        neg = nllkit.poisson_nll_loss(f32([-0.5]), f32([1.0]), log_input=False, reduction="none")
        big = nllkit.poisson_nll_loss(f32([100.0, 89.0]), f32([1.0, 1.0]), reduction="none")
    assert e0[0] == np.inf and np.isnan(e0[1])
    assert np.isnan(neg[0])
    assert np.all(big == np.inf)
    # Gradient w.r.t. input of log_input=False at x=0, t=2: 1 - 2/1e-8 = -2e8.
    _, g = nllkit.value_and_grad(nllkit.poisson_nll_loss)(f32([0.0]), f32([2.0]), False, reduction="sum")
    np.testing.assert_allclose(g, [-2e8], rtol=1e-6)
    # pytorch#28575's Stirling value 2.2777857780456543 is for log(5!) via t=5: check the term.
    t5 = f32([5.0])
    s5 = float(nllkit.poisson_nll_loss(f32([0.0]), t5, full=True) - nllkit.poisson_nll_loss(f32([0.0]), t5))
    np.testing.assert_allclose(s5, 5 * math.log(5) - 5 + 0.5 * math.log(2 * math.pi * 5), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_poisson_edge_values_vs_torch(dtype, rng):
    x = np.array([0.0, 0.0, 0.0, 1e-3, 5.0, 2.0], dtype=dtype)
    t = np.array([0.0, 2.0, 1.0, 2.5, 0.0, 1.0001], dtype=dtype)
    for eps in (1e-8, 0.0):
        with np.errstate(all="ignore"):
            parity(
                lambda x, t, eps=eps: nllkit.poisson_nll_loss(x, t, False, True, eps, "none"),
                lambda x, t, eps=eps: F.poisson_nll_loss(
                    x, t, log_input=False, full=True, eps=eps, reduction="none"
                ),
                (x, t),
                (0,),
                rng,
            )


# --- gaussian_nll_loss --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True], ids=["", "full"])
@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1), (1, 3), "float"], ids=str)
def test_gaussian_grid(var_shape, full, reduction, dtype, rng):
    """Section 6 var shapes: the input's, one fewer dim (per row), one size-1 dim, a Python float."""
    x = rng.standard_normal((4, 3)).astype(dtype)
    t = rng.standard_normal((4, 3)).astype(dtype)
    var: Any = 0.7 if var_shape == "float" else rng.uniform(0.2, 2.0, var_shape).astype(dtype)
    diff = (0, 1) if var_shape == "float" else (0, 1, 2)
    _, grads, _, _ = parity(
        lambda x, t, v: nllkit.gaussian_nll_loss(x, t, v, full, reduction=reduction),
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=full, reduction=reduction),
        (x, t, var),
        diff,
        rng,
    )
    if var_shape == "float":
        assert grads[2] is None


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("var", [0.0, 1e-7, 1e-6, 1e-5, 1.0])
def test_gaussian_var_below_eps_straight_through(var, dtype, rng):
    """Section 6 table: var <= eps is clamped for the value, the gradient still flows to var."""
    x = np.array([1.0, 0.5], dtype=dtype)
    t = np.array([0.0, 0.0], dtype=dtype)
    v = np.array([var, 2.0], dtype=dtype)
    parity(
        lambda x, t, v: nllkit.gaussian_nll_loss(x, t, v, reduction="sum"),
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, reduction="sum"),
        (x, t, v),
        (0, 1, 2),
        rng,
    )


def test_gaussian_verified_table():
    """Section 6 literals (float32, x=1, t=0, 'sum')."""
    rows = {0.0: (1e6, -499999506432.0), 1e-7: (1e6, -499999506432.0), 1e-6: (1e6, -499999506432.0),
            1e-5: (1e5, -4999949824.0), 1.0: (1.0, 0.0)}  # fmt: skip
    for var, (d_input, d_var) in rows.items():
        _, (gx, gv) = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=(0, 2))(
            np.float32([1.0]), np.float32([0.0]), np.float32([var]), reduction="sum"
        )
        np.testing.assert_allclose(gx, [d_input], rtol=1e-6, err_msg=f"var={var}")
        np.testing.assert_allclose(gv, [d_var], rtol=1e-6, atol=1e-30, err_msg=f"var={var}")
    v0 = nllkit.gaussian_nll_loss(np.float32([1.0]), np.float32([0.0]), np.float32([0.0]), reduction="sum")
    np.testing.assert_allclose(float(v0), 499993.09375, rtol=1e-6)
    with np.errstate(all="ignore"):
        nan = nllkit.gaussian_nll_loss(np.float32([1.0]), np.float32([0.0]), np.float32([0.0]), eps=0.0)
    assert math.isnan(float(nan))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    ("input_shape", "var_shape"),
    [
        ((4, 3), (1, 1)),
        ((2, 3, 4, 5), (2, 1, 1, 5)),
        ((2, 3, 4, 5), (1, 3, 1, 1)),
        ((2, 3, 4, 5), (2, 1, 4, 5)),
    ],
    ids=str,
)
def test_gaussian_var_size_one_on_many_axes(input_shape, var_shape, dtype, rng):
    """Deviation 6 (torch#176244 fixed): size 1 on any number of mismatched axes.

    torch rejects all but the last case, so it is fed the var expanded to the
    input's shape; its autograd sums the gradient back over the expansion.
    """
    x = rng.standard_normal(input_shape).astype(dtype)
    t = rng.standard_normal(input_shape).astype(dtype)
    v = rng.uniform(0.2, 2.0, var_shape).astype(dtype)
    parity(
        lambda x, t, v: nllkit.gaussian_nll_loss(x, t, v),
        lambda x, t, v: F.gaussian_nll_loss(x, t, v.expand(input_shape)),
        (x, t, v),
        (0, 1, 2),
        rng,
    )
    if sum(1 for a, b in zip(var_shape, input_shape, strict=True) if a != b) > 1:
        with pytest.raises(ValueError, match="var is of incorrect size"):
            F.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(v))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("input_shape", "target_shape", "var_shape"),
    [((4, 3), (4, 1), (4, 3)), ((3, 1), (3, 4), (3, 1)), ((3, 3), (3, 3), (3,))],
    ids=["target(4,1)", "target(3,4)", "square-per-row-var"],
)
def test_gaussian_target_broadcast_and_per_row_var(input_shape, target_shape, var_shape, reduction, rng):
    """Section 6: the target shape is never checked; a (3,) var of a (3,3) input is per row."""
    x = rng.standard_normal(input_shape)
    t = rng.standard_normal(target_shape)
    v = rng.uniform(0.2, 2.0, var_shape)
    parity(
        lambda x, t, v: nllkit.gaussian_nll_loss(x, t, v, reduction=reduction),
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, reduction=reduction),
        (x, t, v),
        (0, 1, 2),
        rng,
    )


def test_gaussian_var_of_another_float_dtype(rng):
    """Deviation 2: a float64 var with float32 input promotes as torch does."""
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = rng.standard_normal((4, 3)).astype(np.float32)
    v = rng.uniform(0.2, 2.0, (4, 1))
    mixed_parity(nllkit.gaussian_nll_loss, F.gaussian_nll_loss, (x, t, v), (0, 1, 2), rng)


# --- kl_div -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("log_target", [False, True], ids=["", "log_target"])
@pytest.mark.parametrize("reduction", ["none", "mean", "batchmean", "sum"])
@pytest.mark.parametrize(("input_shape", "target_shape"), [((3, 4), (3, 4)), ((3, 4), (1, 4)),
                                                          ((3, 1), (3, 4)),
                                                          ((4,), (4,)), ((), ())], ids=str)  # fmt: skip
def test_kl_div_grid(input_shape, target_shape, reduction, log_target, dtype, rng):
    """All reductions x log_target, broadcasting (batchmean divides by input.shape[0])."""
    x = np.asarray(np.log(rng.uniform(0.05, 1.0, input_shape)), dtype=dtype)
    t = rng.uniform(0.05, 1.0, target_shape)  # t > 0: torch's target gradient is NaN at 0
    t = np.asarray(np.log(t) if log_target else t, dtype=dtype)
    parity(
        lambda x, t: nllkit.kl_div(x, t, reduction, log_target),
        lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
        (x, t),
        (0, 1),
        rng,
    )


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("reduction", ["none", "mean", "batchmean", "sum"])
def test_kl_div_zero_and_negative_targets(reduction, rng):
    """t=0 gives 0 (t=0 with x=-inf: NaN), t<0 NaN; target gradient at t=0 is -inf (deviation 7)."""
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]))
    t = np.array([[0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])
    mask = {1: t != 0}
    with np.errstate(all="ignore"):
        _, grads, _, t_grads = parity(
            lambda x, t: nllkit.kl_div(x, t, reduction),
            lambda x, t: F.kl_div(x, t, reduction=reduction),
            (x, t),
            (0, 1),
            rng,
            grad_mask=mask,
        )
    assert np.isinf(grads[1][0, 0])
    assert torch.isnan(t_grads[1][0, 0])
    # Our value there, for any reduction: cotangent * (log 0 + 1 - x) = -inf times its sign.
    with np.errstate(all="ignore"):
        _, pullback = nllkit.vjp(lambda x, t: nllkit.kl_div(x, t, reduction), x, t)
        g = pullback(np.ones((2, 3)) if reduction == "none" else np.asarray(1.0))[1]
    assert g[0, 0] == -np.inf
    # Pointwise NaN cases (values only).
    xs = np.array([-np.inf, 0.5, 0.5])
    ts = np.array([0.0, -0.5, 0.0])
    with np.errstate(all="ignore"):
        ours = nllkit.kl_div(xs, ts, "none")
        ours_log = nllkit.kl_div(xs[1:], np.array([-np.inf, 0.0]), "none", True)
    assert_match(ours, F.kl_div(torch.from_numpy(xs), torch.from_numpy(ts), reduction="none"))
    assert_match(
        ours_log,
        F.kl_div(torch.tensor(xs[1:]), torch.tensor([-np.inf, 0.0]), reduction="none", log_target=True),
    )
    assert np.isnan(ours[0]) and np.isnan(ours[1]) and ours[2] == 0.0
    assert np.isnan(ours_log[0])


def test_kl_div_mean_does_not_warn(rng):
    """Deviation 8: torch warns about 'mean' on every call; nllkit does not."""
    x = np.log(rng.uniform(0.05, 1.0, (2, 3)))
    t = rng.uniform(0.05, 1.0, (2, 3))
    with pytest.warns(UserWarning, match="batchmean"):
        ref = F.kl_div(torch.from_numpy(x), torch.from_numpy(t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = nllkit.kl_div(x, t)
        ours_module = nllkit.KLDivLoss()(x, t)
    assert_match(ours, ref)
    assert_match(ours_module, ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kl_div_float64_target_promotes(dtype, rng):
    x = np.log(rng.uniform(0.05, 1.0, (2, 3))).astype(np.float32)
    t = rng.uniform(0.05, 1.0, (2, 3)).astype(dtype)
    out, *_ = parity(
        lambda x, t: nllkit.kl_div(x, t, "sum"),
        lambda x, t: F.kl_div(x, t, reduction="sum"),
        (x, t),
        (0, 1),
        rng,
    )
    assert np.asarray(out).dtype == dtype


# --- half precision -----------------------------------------------------------------------------


# Deviation 5: nllkit computes float16/bfloat16 in float32 and rounds once;
# torch's half kernels round intermediates, so the two differ in the last few
# half ulps. Compared with rtol=atol=1e-2, as documented.
HALF_TOL = {"rtol": 1e-2, "atol": 1e-2}


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "case",
    ["cross_entropy", "cross_entropy_prob", "nll_loss", "log_softmax", "softmax", "logsumexp", "bce",
     "bce_logits", "poisson", "gaussian", "kl_div"],
)  # fmt: skip
def test_half_precision_on_torch_tensors(case, dtype):
    gen = torch.Generator().manual_seed(7)
    td = getattr(torch, dtype)
    x = torch.randn(4, C, generator=gen)
    y = torch.rand(4, C, generator=gen)
    t = torch.tensor([0, 3, -100, 4])
    probs = torch.softmax(torch.randn(4, C, generator=gen), 1)
    calls = {
        "cross_entropy": (nllkit.cross_entropy, F.cross_entropy, (x, t), {"label_smoothing": 0.1}),
        "cross_entropy_prob": (nllkit.cross_entropy, F.cross_entropy, (x, probs), {}),
        "nll_loss": (nllkit.nll_loss, F.nll_loss, (x, t), {}),
        "log_softmax": (nllkit.log_softmax, F.log_softmax, (x,), {"dim": 1}),
        "softmax": (nllkit.softmax, F.softmax, (x,), {"dim": 1}),
        "logsumexp": (nllkit.logsumexp, torch.logsumexp, (x,), {"dim": 1}),
        "bce": (nllkit.binary_cross_entropy, F.binary_cross_entropy, (probs, y), {}),
        "bce_logits": (
            nllkit.binary_cross_entropy_with_logits,
            F.binary_cross_entropy_with_logits,
            (x, y),
            {},
        ),
        "poisson": (nllkit.poisson_nll_loss, F.poisson_nll_loss, (x, 3 * y), {"full": True}),
        "gaussian": (nllkit.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, y + 0.5), {}),
        "kl_div": (nllkit.kl_div, F.kl_div, (torch.log(probs), y), {}),
    }
    ours_fn, torch_fn, args, kwargs = calls[case]
    args = tuple(a.to(td) if a.is_floating_point() else a for a in args)
    ours = ours_fn(*args, **kwargs)
    ref = torch_fn(*args, **kwargs)
    assert ours.dtype == ref.dtype == td
    np.testing.assert_allclose(ours.float().numpy(), ref.float().numpy(), **HALF_TOL)
    # And ours is the float32 result rounded once.
    exact = ours_fn(*(a.float() if a.is_floating_point() else a for a in args), **kwargs)
    np.testing.assert_array_equal(ours.float().numpy(), exact.to(td).float().numpy())


# --- errors (deviation 3) --------------------------------------------------------------------------


def _x(*shape: int) -> np.ndarray:
    return np.linspace(-1, 1, math.prod(shape)).reshape(shape)


ERROR_CASES = {
    # name: (nllkit call, torch call, our exception, torch's exception or None if torch accepts)
    "ce-weight-length": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.array([0, 1, 2]), np.ones(2)),
        lambda: F.cross_entropy(
            torch.tensor(_x(3, 4)), torch.tensor([0, 1, 2]), torch.ones(2, dtype=torch.float64)
        ),
        ValueError, RuntimeError,
    ),
    "ce-target-out-of-range": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.array([0, 4, 2])),
        lambda: F.cross_entropy(torch.tensor(_x(3, 4)), torch.tensor([0, 4, 2])),
        IndexError, IndexError,
    ),
    "nll-target-minus-100-not-ignored": (
        lambda: nllkit.nll_loss(_x(3, 4), np.array([0, -100, 2]), ignore_index=1),
        lambda: F.nll_loss(torch.tensor(_x(3, 4)), torch.tensor([0, -100, 2]), ignore_index=1),
        IndexError, IndexError,
    ),
    "ce-label-smoothing-1.5": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.array([0, 1, 2]), label_smoothing=1.5),
        lambda: F.cross_entropy(torch.tensor(_x(3, 4)), torch.tensor([0, 1, 2]), label_smoothing=1.5),
        ValueError, RuntimeError,
    ),
    "ce-label-smoothing-negative": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.array([0, 1, 2]), label_smoothing=-0.1),
        lambda: F.cross_entropy(torch.tensor(_x(3, 4)), torch.tensor([0, 1, 2]), label_smoothing=-0.1),
        ValueError, None,
    ),
    "ce-prob-ignore-index": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.full((3, 4), 0.25), ignore_index=1),
        lambda: F.cross_entropy(
            torch.tensor(_x(3, 4)), torch.full((3, 4), 0.25, dtype=torch.float64), ignore_index=1
        ),
        ValueError, RuntimeError,
    ),
    "ce-same-shape-integer-target": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.zeros((3, 4), np.int64)),
        lambda: F.cross_entropy(torch.tensor(_x(3, 4)), torch.zeros((3, 4), dtype=torch.int64)),
        ValueError, RuntimeError,
    ),
    "nll-4d-input-2d-target": (
        lambda: nllkit.nll_loss(_x(2, 3, 4, 4), np.zeros((2, 4), np.int64)),
        lambda: F.nll_loss(torch.tensor(_x(2, 3, 4, 4)), torch.zeros((2, 4), dtype=torch.int64)),
        ValueError, RuntimeError,
    ),
    "nll-batch-mismatch": (
        lambda: nllkit.nll_loss(_x(4, 3), np.zeros(2, np.int64)),
        lambda: F.nll_loss(torch.tensor(_x(4, 3)), torch.zeros(2, dtype=torch.int64)),
        ValueError, ValueError,
    ),
    "nll-0d-input": (
        lambda: nllkit.nll_loss(np.asarray(1.0), np.asarray(0)),
        lambda: F.nll_loss(torch.tensor(1.0), torch.tensor(0)),
        ValueError, ValueError,
    ),
    "nll-integer-input": (
        lambda: nllkit.nll_loss(np.zeros((2, 3), np.int64), np.zeros(2, np.int64)),
        lambda: F.nll_loss(torch.zeros((2, 3), dtype=torch.int64), torch.zeros(2, dtype=torch.int64)),
        TypeError, NotImplementedError,
    ),
    "bce-input-range": (
        lambda: nllkit.binary_cross_entropy(np.array([0.5, 1.5]), np.array([0.0, 1.0])),
        lambda: F.binary_cross_entropy(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0])),
        ValueError, RuntimeError,
    ),
    "bce-target-range": (
        lambda: nllkit.binary_cross_entropy(np.array([0.5, 0.5]), np.array([0.0, -1.0])),
        lambda: F.binary_cross_entropy(torch.tensor([0.5, 0.5]), torch.tensor([0.0, -1.0])),
        ValueError, RuntimeError,
    ),
    "bce-size": (
        lambda: nllkit.binary_cross_entropy(np.full((3, 1), 0.5), np.full(3, 0.5)),
        lambda: F.binary_cross_entropy(torch.full((3, 1), 0.5), torch.full((3,), 0.5)),
        ValueError, ValueError,
    ),
    "bce-logits-size": (
        lambda: nllkit.binary_cross_entropy_with_logits(np.zeros((3, 1)), np.zeros(3)),
        lambda: F.binary_cross_entropy_with_logits(torch.zeros(3, 1), torch.zeros(3)),
        ValueError, ValueError,
    ),
    "bce-logits-pos-weight-shape": (
        lambda: nllkit.binary_cross_entropy_with_logits(
            np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
        ),
        lambda: F.binary_cross_entropy_with_logits(
            torch.zeros(2, 3), torch.zeros(2, 3), pos_weight=torch.ones(2)
        ),
        ValueError, RuntimeError,
    ),
    "poisson-shapes": (
        lambda: nllkit.poisson_nll_loss(np.zeros(2), np.zeros(3)),
        lambda: F.poisson_nll_loss(torch.zeros(2), torch.zeros(3)),
        ValueError, RuntimeError,
    ),
    "gauss-var-negative": (
        lambda: nllkit.gaussian_nll_loss(np.zeros(3), np.zeros(3), np.array([1.0, -1.0, 1.0])),
        lambda: F.gaussian_nll_loss(torch.zeros(3), torch.zeros(3), torch.tensor([1.0, -1.0, 1.0])),
        ValueError, ValueError,
    ),
    "gauss-var-nan": (
        lambda: nllkit.gaussian_nll_loss(np.zeros(3), np.zeros(3), np.array([1.0, np.nan, 1.0])),
        lambda: F.gaussian_nll_loss(torch.zeros(3), torch.zeros(3), torch.tensor([1.0, math.nan, 1.0])),
        ValueError, None,
    ),
    "gauss-var-size": (
        lambda: nllkit.gaussian_nll_loss(np.zeros((4, 3)), np.zeros((4, 3)), np.ones(3)),
        lambda: F.gaussian_nll_loss(torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(3)),
        ValueError, ValueError,
    ),
    "gauss-var-3d-of-4d": (
        lambda: nllkit.gaussian_nll_loss(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)), np.ones((3, 4, 5))),
        lambda: F.gaussian_nll_loss(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5), torch.ones(3, 4, 5)),
        ValueError, ValueError,
    ),
    "gauss-bad-reduction": (
        lambda: nllkit.gaussian_nll_loss(np.zeros(3), np.zeros(3), np.ones(3), reduction="batchmean"),
        lambda: F.gaussian_nll_loss(torch.zeros(3), torch.zeros(3), torch.ones(3), reduction="batchmean"),
        ValueError, ValueError,
    ),
    "ce-bad-reduction": (
        lambda: nllkit.cross_entropy(_x(3, 4), np.array([0, 1, 2]), reduction="batchmean"),
        lambda: F.cross_entropy(torch.tensor(_x(3, 4)), torch.tensor([0, 1, 2]), reduction="batchmean"),
        ValueError, ValueError,
    ),
    "kl-integer-inputs": (
        lambda: nllkit.kl_div(np.zeros(3, np.int64), np.zeros(3, np.int64)),
        lambda: F.kl_div(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64)),
        TypeError, RuntimeError,
    ),
    "log-softmax-integer": (
        lambda: nllkit.log_softmax(np.arange(3), 0),
        lambda: F.log_softmax(torch.arange(3), 0),
        TypeError, NotImplementedError,
    ),
    "softmax-dim-out-of-range": (
        lambda: nllkit.softmax(np.asarray(1.0), 1),
        lambda: F.softmax(torch.tensor(1.0), 1),
        IndexError, IndexError,
    ),
}  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors(case):
    ours, theirs, our_exc, torch_exc = ERROR_CASES[case]
    if torch_exc is None:
        theirs()  # torch accepts it; nllkit rejects on purpose (deviation 3)
    else:
        with pytest.raises(torch_exc):
            theirs()
    with pytest.raises(our_exc):
        ours()


# --- module classes ------------------------------------------------------------------------------


def _module_cases(dtype: Any, rng: np.random.Generator) -> dict[str, tuple]:
    x = logits(rng, (4, C), dtype)
    t = index_target(rng, x.shape, -100)
    w = class_weight(rng, dtype)
    p = rng.uniform(0.05, 0.95, (4, C)).astype(dtype)
    y = rng.uniform(0.0, 1.0, (4, C)).astype(dtype)
    pw = rng.uniform(0.5, 2.0, C).astype(dtype)
    v = rng.uniform(0.2, 2.0, (4, 1)).astype(dtype)
    probs = prob_target(rng, x.shape, dtype)
    tw = torch.from_numpy(w)
    return {
        # name: (nllkit module, torch module, function call, arrays, differentiable argnums)
        "NLLLoss": (
            nllkit.NLLLoss(w, ignore_index=1, reduction="sum"),
            torch.nn.NLLLoss(tw, ignore_index=1, reduction="sum"),
            lambda a, b: nllkit.nll_loss(a, b, w, 1, "sum"),
            (x, np.where(t == -100, 1, t)),
            (0,),
        ),
        "CrossEntropyLoss": (
            nllkit.CrossEntropyLoss(w, label_smoothing=0.15),
            torch.nn.CrossEntropyLoss(tw, label_smoothing=0.15),
            lambda a, b: nllkit.cross_entropy(a, b, w, label_smoothing=0.15),
            (x, t),
            (0,),
        ),
        "CrossEntropyLoss-prob": (
            nllkit.CrossEntropyLoss(w, reduction="none"),
            torch.nn.CrossEntropyLoss(tw, reduction="none"),
            lambda a, b: nllkit.cross_entropy(a, b, w, reduction="none"),
            (x, probs),
            (0, 1),
        ),
        "BCELoss": (
            nllkit.BCELoss(w, reduction="sum"),
            torch.nn.BCELoss(tw, reduction="sum"),
            lambda a, b: nllkit.binary_cross_entropy(a, b, w, "sum"),
            (p, y),
            (0, 1),
        ),
        "BCEWithLogitsLoss": (
            nllkit.BCEWithLogitsLoss(w, pos_weight=pw),
            torch.nn.BCEWithLogitsLoss(tw, pos_weight=torch.from_numpy(pw)),
            lambda a, b: nllkit.binary_cross_entropy_with_logits(a, b, w, pos_weight=pw),
            (x, y),
            (0, 1),
        ),
        "PoissonNLLLoss": (
            nllkit.PoissonNLLLoss(False, True, eps=1e-3, reduction="none"),
            torch.nn.PoissonNLLLoss(False, True, eps=1e-3, reduction="none"),
            lambda a, b: nllkit.poisson_nll_loss(a, b, False, True, 1e-3, "none"),
            (p, 3 * y + 1.5),
            (0, 1),
        ),
        "GaussianNLLLoss": (
            nllkit.GaussianNLLLoss(full=True, eps=1e-3),
            torch.nn.GaussianNLLLoss(full=True, eps=1e-3),
            lambda a, b, c: nllkit.gaussian_nll_loss(a, b, c, True, 1e-3),
            (x, y, v),
            (0, 1, 2),
        ),
        "KLDivLoss": (
            nllkit.KLDivLoss(reduction="batchmean", log_target=True),
            torch.nn.KLDivLoss(reduction="batchmean", log_target=True),
            lambda a, b: nllkit.kl_div(a, b, "batchmean", True),
            (np.log(p), np.log(probs)),
            (0, 1),
        ),
        "Softmax": (nllkit.Softmax(-1), torch.nn.Softmax(-1), lambda a: nllkit.softmax(a, -1), (x,), (0,)),
        "LogSoftmax": (
            nllkit.LogSoftmax(0),
            torch.nn.LogSoftmax(0),
            lambda a: nllkit.log_softmax(a, 0),
            (x,),
            (0,),
        ),
    }


MODULE_KEYS = list(_module_cases(np.float64, np.random.default_rng(0)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", MODULE_KEYS)
def test_modules(name, dtype, rng):
    """Modules give the functions' results and torch's modules' results, values and grads."""
    module, torch_module, function, arrays, diff = _module_cases(dtype, rng)[name]
    out, *_ = parity(module, torch_module, arrays, diff, rng)
    fn_out, fn_pullback = nllkit.vjp(function, *arrays)
    np.testing.assert_array_equal(out, fn_out)
    cot = cotangent_like(out, np.random.default_rng(1))
    _, pullback = nllkit.vjp(module, *arrays)
    for g, fg in zip(pullback(cot), fn_pullback(cot), strict=True):
        if g is None:
            assert fg is None
        else:
            np.testing.assert_array_equal(g, fg)
    if np.ndim(out) == 0:
        value, grad = nllkit.value_and_grad(module)(*arrays)
        np.testing.assert_array_equal(value, out)
        assert_match(grad, pullback(np.ones((), dtype=np.asarray(out).dtype))[0])


# --- nllkit on torch tensors: torch autograd through the analytic rules ---------------------------


def _torch_cases(dtype: Any) -> dict[str, tuple]:
    gen = torch.Generator().manual_seed(11)
    td = torch.float32 if dtype == np.float32 else torch.float64

    def r(*shape: int, lo: float = -2.0, hi: float = 2.0) -> Any:
        return (torch.rand(*shape, generator=gen, dtype=td) * (hi - lo) + lo).requires_grad_(False)

    x4 = r(3, C, 2, 2)
    t4 = torch.tensor([[[0, 1], [-100, 4]], [[2, 2], [3, -100]], [[4, 0], [1, 1]]])
    w = r(C, lo=0.5, hi=2.0)
    probs = torch.softmax(r(3, C, 2, 2), 1)
    p = r(4, 3, lo=0.05, hi=0.95)
    y = r(4, 3, lo=0.0, hi=1.0)
    x = r(4, 3)
    pw = r(3, lo=0.5, hi=2.0)
    return {
        # name: (nllkit fn, torch fn, args, which args require grad, kwargs)
        "cross_entropy": (nllkit.cross_entropy, F.cross_entropy, (x4, t4, w), (0,), {"label_smoothing": 0.1}),
        "cross_entropy_prob": (nllkit.cross_entropy, F.cross_entropy, (x4, probs, w), (0, 1, 2), {}),
        "nll_loss": (nllkit.nll_loss, F.nll_loss, (x4, t4, w), (0,), {"reduction": "sum"}),
        "log_softmax": (nllkit.log_softmax, F.log_softmax, (x4,), (0,), {"dim": 1}),
        "softmax": (nllkit.softmax, F.softmax, (x4,), (0,), {"dim": -1}),
        "logsumexp": (nllkit.logsumexp, torch.logsumexp, (x4,), (0,), {"dim": (1, 3)}),
        "binary_cross_entropy": (
            nllkit.binary_cross_entropy,
            F.binary_cross_entropy,
            (p, y, r(3, lo=0.5, hi=2.0)),
            (0, 1),
            {},
        ),
        "binary_cross_entropy_with_logits": (
            lambda a, b, **k: nllkit.binary_cross_entropy_with_logits(a, b, pos_weight=pw, **k),
            lambda a, b, **k: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw, **k),
            (x, y),
            (0, 1),
            {},
        ),
        "poisson_nll_loss": (
            nllkit.poisson_nll_loss,
            F.poisson_nll_loss,
            (x, r(4, 1, lo=1.5, hi=6.0)),
            (0, 1),
            {"full": True},
        ),
        "gaussian_nll_loss": (
            nllkit.gaussian_nll_loss,
            F.gaussian_nll_loss,
            (x, y, r(4, lo=1e-7, hi=2.0)),
            (0, 1, 2),
            {"full": True},
        ),
        "kl_div": (nllkit.kl_div, F.kl_div, (torch.log(p), y + 0.1), (0, 1), {"reduction": "batchmean"}),
    }


TORCH_KEYS = list(_torch_cases(np.float64))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", TORCH_KEYS)
def test_backward_through_torch_tensors(name, dtype):
    """nllkit called on tensors that require grad: loss.backward() gives F.*'s gradients."""
    ours_fn, torch_fn, args, diff, kwargs = _torch_cases(dtype)[name]

    def leaves() -> list[Any]:
        return [a.detach().clone().requires_grad_(i in diff) for i, a in enumerate(args)]

    ours_in, ref_in = leaves(), leaves()
    ours = ours_fn(*ours_in, **kwargs)
    ref = torch_fn(*ref_in, **kwargs)
    assert isinstance(ours, torch.Tensor) and ours.requires_grad
    assert_match(ours, ref)
    if ours.ndim:
        cot = torch.linspace(-1.0, 2.0, ours.numel(), dtype=ours.dtype).reshape(ours.shape)
        ours.backward(cot)
        ref.backward(cot)
    else:
        ours.backward()
        ref.backward()
    for i in diff:
        assert ours_in[i].grad is not None, f"no gradient reached argument {i}"
        assert_match(ours_in[i].grad, ref_in[i].grad, what=f"gradient of argument {i}")


# Parity grid size (pytest --collect-only -q tests/oracle/test_torch_parity.py,
# torch 2.13.0+cpu): 1197 collected cases. Of these, the main grids are
# cross_entropy 288 (3 reductions x 2 weights x 2 smoothings x 3 target kinds
# x 4 shapes x 2 dtypes), nll_loss 96, kl_div 80, bce_with_logits 72,
# gaussian 60, softmax/log_softmax 56, logsumexp 52, poisson 48 + 36
# (broadcasting), bce 30; the rest are edge cases, modules, torch-tensor
# backward, half precision and errors.
