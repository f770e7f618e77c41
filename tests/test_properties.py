"""Property-based tests (hypothesis) of nllkit's losses and their gradients.

Total hypothesis examples: 961 (the sum of ``max_examples`` over the 26
``@given`` tests). Two of them are parametrised over the 6 elementwise loss
kinds and 5 take the ``backend`` fixture (5 backends, one skipped on JAX),
so a full run executes 1186 examples.

Most properties run on NumPy float64 arrays; a few also run on every backend
of the ``backend`` fixture with a handful of examples. Hypothesis is
derandomised (a fixed seed per test) and keeps no example database, so every
run tests the same examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nllkit


def budget(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def arrays(shape: tuple[int, ...], lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


def assert_close(actual: Any, expected: Any, *, rtol: float = 1e-10, atol: float = 1e-10) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def pull(
    fn: Callable[..., Any], args: tuple[Any, ...], cotangent: Any = None, **kw: Any
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Value and gradients of ``fn(*args, **kw)`` (cotangent of ones by default)."""
    out, pullback = nllkit.vjp(fn, *args, **kw)
    cot = np.ones(np.shape(out)) if cotangent is None else cotangent
    return np.asarray(out), pullback(cot)


def np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _bce_logits(input, target, weight=None, pos_weight=None, **kw):
    # pos_weight comes after `reduction` in the signature: pass it by name.
    return nllkit.binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight, **kw)


# --- class-index problems --------------------------------------------------------------------


@dataclass
class IndexProblem:
    x: np.ndarray  # logits / log-probabilities, (C,) or (N, C, d1..dK)
    t: np.ndarray  # int64 class indices, () or (N, d1..dK), ignore_index where ignored
    w: np.ndarray | None
    ignore_index: int

    @property
    def axis(self) -> int:
        return 0 if self.x.ndim == 1 else 1

    @property
    def num_classes(self) -> int:
        return self.x.shape[self.axis]

    @property
    def ignored(self) -> np.ndarray:
        return self.t == self.ignore_index

    def target_weight(self) -> np.ndarray:
        """w[y] per target, 0 where ignored."""
        safe = np.where(self.ignored, 0, self.t)
        w = np.ones(self.num_classes) if self.w is None else self.w
        return np.where(self.ignored, 0.0, w[safe])

    def expand(self, a: np.ndarray) -> np.ndarray:
        """A per-target array, broadcastable against ``x`` (class axis inserted)."""
        return a if self.x.ndim == 1 else np.expand_dims(a, 1)

    def one_hot(self) -> np.ndarray:
        safe = np.where(self.ignored, 0, self.t)
        return np.moveaxis(np.eye(self.num_classes)[safe], -1, self.axis)


@st.composite
def index_problems(
    draw: st.DrawFn,
    *,
    ndims: tuple[int, ...] = (1, 2, 3, 4),
    min_classes: int = 1,
    bound: float = 20.0,
    ignore: bool = True,
    weight: bool | None = None,
    min_rows: int = 1,
) -> IndexProblem:
    """Logits, class indices, optional class weights and an ignore_index.

    ``weight=None`` draws with or without a weight. ignore_index is -100, -1,
    or a valid class (whose targets are then skipped).
    """
    ndim = draw(st.sampled_from(ndims))
    c = draw(st.integers(min_classes, 5))
    if ndim == 1:
        shape: tuple[int, ...] = (c,)
    else:
        n = draw(st.integers(min_rows, 6))
        spatial = draw(hnp.array_shapes(min_dims=ndim - 2, max_dims=ndim - 2, min_side=1, max_side=3))
        shape = (n, c, *spatial)
    x = draw(arrays(shape, -bound, bound))
    tshape = () if ndim == 1 else (shape[0], *shape[2:])
    t = draw(hnp.arrays(np.int64, tshape, elements=st.integers(0, c - 1)))
    ignore_index = -100
    if ignore:
        ignore_index = draw(st.sampled_from([-100, -1, *range(c)]))
        mask = draw(hnp.arrays(np.bool_, tshape))
        t = np.asarray(np.where(mask, ignore_index, t), dtype=np.int64)
    use_weight = draw(st.booleans()) if weight is None else weight
    w = draw(arrays((c,), 0.1, 3.0)) if use_weight else None
    return IndexProblem(x, t, w, ignore_index)


smoothing = st.one_of(st.just(0.0), floats(0.0, 1.0))


INDEX_LOSSES = {"nll_loss": nllkit.nll_loss, "cross_entropy": nllkit.cross_entropy}


def index_loss(name: str, p: IndexProblem, reduction: str, ls: float = 0.0, x: Any = None) -> np.ndarray:
    kw: dict[str, Any] = {"ignore_index": p.ignore_index, "reduction": reduction}
    if name == "cross_entropy":
        kw["label_smoothing"] = ls
    return np.asarray(INDEX_LOSSES[name](p.x if x is None else x, p.t, p.w, **kw))


# --- elementwise and probability-target cases --------------------------------------------------


@dataclass
class Case:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    batched: tuple[bool, ...] = ()  # is axis 0 of this argument the batch axis?


def _shrunk_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape`` without enlarging it (trailing axes, some 1)."""
    k = draw(st.integers(0, len(shape)))
    tail = shape[len(shape) - k :]
    return tuple(1 if draw(st.booleans()) else n for n in tail)


ELEMENTWISE = ("bce", "bce_logits", "poisson", "gaussian", "kl", "ce_prob")


@st.composite
def cases(draw: st.DrawFn, name: str, *, batch_weights: bool = True) -> Case:
    """A loss call of kind ``name`` on random float64 data.

    With ``batch_weights=False`` the optional weights have only trailing
    (non-batch) axes, so that permuting the batch leaves them alone.
    """
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    n = len(shape)

    def optional_weight(lo: float, hi: float) -> np.ndarray | None:
        kind = draw(st.sampled_from(["none", "shrunk", "full"] if batch_weights else ["none", "shrunk"]))
        if kind == "none":
            return None
        wshape = shape if kind == "full" else _shrunk_shape(draw, shape)
        if not batch_weights:
            wshape = wshape[-(n - 1) :] if n > 1 and len(wshape) == n else wshape
            wshape = () if n == 1 else wshape
        return draw(arrays(wshape, lo, hi))

    def batched(a: Any) -> bool:
        return isinstance(a, np.ndarray) and a.ndim == n and a.shape[0] == shape[0]

    if name == "bce":
        args: tuple[Any, ...] = (
            draw(arrays(shape, 0.0, 1.0)),
            draw(arrays(shape, 0.0, 1.0)),
            optional_weight(0.0, 3.0),
        )
        return Case(nllkit.binary_cross_entropy, args, {}, tuple(map(batched, args)))
    if name == "bce_logits":
        args = (
            draw(arrays(shape, -30.0, 30.0)),
            draw(arrays(shape, 0.0, 1.0)),
            optional_weight(0.0, 3.0),
            optional_weight(0.1, 5.0),
        )
        return Case(_bce_logits, args, {}, tuple(map(batched, args)))
    if name == "poisson":
        log_input = draw(st.booleans())
        x = draw(arrays(shape, -5.0, 3.0) if log_input else arrays(shape, 0.0, 10.0))
        t = draw(arrays(shape, 0.0, 15.0))
        return Case(
            nllkit.poisson_nll_loss,
            (x, t),
            {"log_input": log_input, "full": draw(st.booleans())},
            (True, True),
        )
    if name == "gaussian":
        kind = draw(st.sampled_from(["same", "rows", "ones"]))
        if kind == "same":
            vshape = shape
        elif kind == "rows":
            vshape = shape[:-1]
        else:
            vshape = tuple(1 if draw(st.booleans()) else s for s in shape)
        args = (
            draw(arrays(shape, -5.0, 5.0)),
            draw(arrays(shape, -5.0, 5.0)),
            draw(arrays(vshape, 0.0, 4.0)),
        )
        var_batched = (kind == "rows" and n > 1 and vshape[0] == shape[0]) or batched(args[2])
        return Case(nllkit.gaussian_nll_loss, args, {"full": draw(st.booleans())}, (True, True, var_batched))
    if name == "kl":
        log_target = draw(st.booleans())
        t = draw(arrays(shape, -8.0, 0.0) if log_target else arrays(shape, 0.0, 1.0))
        return Case(
            nllkit.kl_div, (draw(arrays(shape, -8.0, 0.0)), t), {"log_target": log_target}, (True, True)
        )
    if name == "ce_prob":
        c = shape[0] if n == 1 else shape[1]
        w = draw(st.none() | arrays((c,), 0.1, 3.0))
        args = (draw(arrays(shape, -20.0, 20.0)), draw(arrays(shape, 0.0, 1.0)), w)
        # A 1-D input is a single row: nothing to permute.
        return Case(nllkit.cross_entropy, args, {"label_smoothing": draw(smoothing)}, (n > 1, n > 1, False))
    raise AssertionError(name)


def all_cases(**kw: Any) -> st.SearchStrategy[list[Case]]:
    """One case of every kind."""
    return st.tuples(*(cases(name, **kw) for name in ELEMENTWISE)).map(list)


def call(case: Case, reduction: str, args: tuple[Any, ...] | None = None) -> np.ndarray:
    return np.asarray(case.fn(*(case.args if args is None else args), reduction=reduction, **case.settings))


# =========================== reductions ========================================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(80)
@given(p=index_problems(), name=st.sampled_from(sorted(INDEX_LOSSES)), ls=smoothing)
def test_index_reductions(p, name, ls):
    """'sum' is the sum of 'none'; 'mean' divides it by Σ w[y] over non-ignored targets."""
    none = index_loss(name, p, "none", ls)
    assert none.shape == p.t.shape
    assert np.all(none[p.ignored] == 0)
    assert_close(index_loss(name, p, "sum", ls), none.sum())
    denominator = p.target_weight().sum()
    mean = index_loss(name, p, "mean", ls)
    if denominator == 0:  # every target ignored: the mean of an empty set
        assert np.isnan(mean)
    else:
        assert_close(mean, none.sum() / denominator)


@pytest.mark.parametrize("name", ELEMENTWISE)
@budget(15)
@given(data=st.data())
def test_elementwise_reductions(name, data):
    """'mean' is 'none'.mean() (not renormalised by weights) and 'sum' is 'none'.sum()."""
    case = data.draw(cases(name))
    none = call(case, "none")
    assert_close(call(case, "sum"), none.sum())
    assert_close(call(case, "mean"), none.mean())
    if case.fn is nllkit.kl_div:
        rows = case.args[0].shape[0]
        assert_close(call(case, "batchmean"), none.sum() / rows)


# =========================== batch permutation ===================================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(40)
@given(
    p=index_problems(ndims=(2, 3, 4)),
    name=st.sampled_from(sorted(INDEX_LOSSES)),
    ls=smoothing,
    data=st.data(),
)
def test_index_batch_permutation(p, name, ls, data):
    perm = np.asarray(data.draw(st.permutations(range(p.x.shape[0]))), dtype=np.intp)
    q = IndexProblem(p.x[perm], p.t[perm], p.w, p.ignore_index)
    np.testing.assert_array_equal(index_loss(name, q, "none", ls), index_loss(name, p, "none", ls)[perm])
    for reduction in ("sum", "mean"):
        assert_close(index_loss(name, q, reduction, ls), index_loss(name, p, reduction, ls), atol=1e-9)
    kw = {"ignore_index": p.ignore_index, "reduction": "sum"}
    if name == "cross_entropy":
        kw["label_smoothing"] = ls
    g_p = pull(INDEX_LOSSES[name], (p.x, p.t, p.w), **kw)[1][0]
    g_q = pull(INDEX_LOSSES[name], (q.x, q.t, q.w), **kw)[1][0]
    np.testing.assert_array_equal(g_q, g_p[perm])


@pytest.mark.parametrize("name", ELEMENTWISE)
@budget(10)
@given(data=st.data())
def test_elementwise_batch_permutation(name, data):
    case = data.draw(cases(name, batch_weights=False))
    n = case.args[0].shape[0]
    perm = np.asarray(data.draw(st.permutations(range(n))), dtype=np.intp)
    args = tuple(a[perm] if b else a for a, b in zip(case.args, case.batched, strict=True))
    none_p, none_q = call(case, "none"), call(case, "none", args)
    if none_p.ndim:  # 1-D probability-target CE gives a single value
        np.testing.assert_array_equal(none_q, none_p[perm])
    for reduction in ("sum", "mean"):
        assert_close(call(case, reduction, args), call(case, reduction), atol=1e-9)


# =========================== ignored rows =======================================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(60)
@given(
    p=index_problems(ignore=False),
    name=st.sampled_from(sorted(INDEX_LOSSES)),
    ls=smoothing,
    reduction=st.sampled_from(["none", "mean", "sum"]),
    data=st.data(),
)
def test_ignored_rows_have_no_loss_and_no_gradient(p, name, ls, reduction, data):
    """Whatever an ignored row holds (NaN, ±inf), it adds nothing to the loss
    and gets an exactly zero gradient (unlike PyTorch, pytorch#11551)."""
    ignore_index = data.draw(st.sampled_from([-100, -1]))
    ignored = data.draw(hnp.arrays(np.bool_, p.t.shape))
    t = np.asarray(np.where(ignored, ignore_index, p.t), dtype=np.int64)
    junk = data.draw(
        hnp.arrays(np.float64, p.x.shape, elements=st.sampled_from([np.nan, np.inf, -np.inf, 3.0]))
    )
    row_ignored = np.broadcast_to(p.expand(ignored), p.x.shape)
    x_bad = np.where(row_ignored, junk, p.x)
    clean = IndexProblem(p.x, t, p.w, ignore_index)
    kw: dict[str, Any] = {"ignore_index": ignore_index, "reduction": reduction}
    if name == "cross_entropy":
        kw["label_smoothing"] = ls
    fn = INDEX_LOSSES[name]
    cot = data.draw(arrays(np.shape(fn(p.x, t, p.w, **kw)), -2.0, 2.0))
    out_bad, (g_bad, g_t, g_w) = pull(fn, (x_bad, t, p.w), cot, **kw)
    out_clean, (g_clean, _, _) = pull(fn, (p.x, t, p.w), cot, **kw)
    assert g_t is None and g_w is None
    if reduction == "none":
        assert np.all(out_bad[ignored] == 0)
    # The bad rows change nothing: not the loss, not the other rows' gradients.
    np.testing.assert_array_equal(out_bad, out_clean)
    assert np.all(g_bad[row_ignored] == 0)
    np.testing.assert_array_equal(g_bad, g_clean)
    assert np.all(np.isfinite(g_bad))
    if clean.target_weight().sum() > 0:
        assert np.all(np.isfinite(out_bad))


# =========================== cross_entropy vs nll_loss ===========================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(60)
@given(p=index_problems(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_cross_entropy_is_nll_of_log_softmax(p, reduction):
    kw = {"ignore_index": p.ignore_index, "reduction": reduction}
    ce_out, ce_grads = pull(nllkit.cross_entropy, (p.x, p.t, p.w), **kw)

    def composed(x, t, w):
        return nllkit.nll_loss(nllkit.log_softmax(x, p.axis), t, w, **kw)

    nll_out, nll_grads = pull(composed, (p.x, p.t, p.w))
    np.testing.assert_allclose(ce_out, nll_out, rtol=1e-14, atol=0)
    assert_close(ce_grads[0], nll_grads[0], rtol=1e-12, atol=1e-15)
    assert ce_grads[1:] == (None, None) and nll_grads[1:] == (None, None)


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(60)
@given(p=index_problems(min_classes=1), ls=floats(0.0, 1.0))
def test_label_smoothing_is_the_documented_mixture(p, ls):
    r"""(1-ε)·w[y]·(-log p_y) + (ε/C)·Σ_c w_c·(-log p_c), zero on ignored rows,
    'mean' divided by Σ w[y]."""
    logp = np_log_softmax(p.x, p.axis)
    w = np.ones(p.num_classes) if p.w is None else p.w
    wshape = [1] * p.x.ndim
    wshape[p.axis] = p.num_classes
    nll = -np.sum(p.one_hot() * logp, axis=p.axis) * p.target_weight()
    smooth = np.where(p.ignored, 0.0, -np.sum(w.reshape(wshape) * logp, axis=p.axis))
    expected = (1 - ls) * nll + ls / p.num_classes * smooth
    kw = {"ignore_index": p.ignore_index, "label_smoothing": ls}
    scale = 1e-12 * (1 + np.abs(expected).sum())
    assert_close(
        nllkit.cross_entropy(p.x, p.t, p.w, reduction="none", **kw), expected, rtol=1e-11, atol=scale
    )
    assert_close(
        nllkit.cross_entropy(p.x, p.t, p.w, reduction="sum", **kw), expected.sum(), rtol=1e-11, atol=scale
    )
    denominator = p.target_weight().sum()
    mean = nllkit.cross_entropy(p.x, p.t, p.w, reduction="mean", **kw)
    if denominator == 0:
        assert np.isnan(mean)
    else:
        assert_close(mean, expected.sum() / denominator, rtol=1e-11, atol=scale)


@budget(50)
@given(
    p=index_problems(ignore=False, weight=False),
    ls=smoothing,
    reduction=st.sampled_from(["none", "mean", "sum"]),
)
def test_smoothed_index_target_is_smoothed_one_hot(p, ls, reduction):
    """Without weights or ignored targets, index targets and one-hot
    probabilities agree with any smoothing, in value and in gradient."""
    kw = {"reduction": reduction, "label_smoothing": ls}
    out_i, (g_i, *_) = pull(nllkit.cross_entropy, (p.x, p.t), **kw)
    out_p, (g_p, g_target) = pull(nllkit.cross_entropy, (p.x, p.one_hot()), **kw)
    assert_close(out_i, out_p, atol=1e-11)
    assert_close(g_i, g_p, atol=1e-13)
    assert g_target is not None and g_target.shape == p.x.shape


# =========================== shift invariance ==================================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(50)
@given(p=index_problems(), ls=smoothing, reduction=st.sampled_from(["none", "mean", "sum"]), data=st.data())
def test_logit_shift_invariance(p, ls, reduction, data):
    """Adding a constant per row (per position for K-dim input) changes no
    probability: CE (index and probability targets), log_softmax and softmax
    are unchanged and logsumexp moves by the constant."""
    cshape = list(p.x.shape)
    cshape[p.axis] = 1
    c = data.draw(arrays(tuple(cshape), -100.0, 100.0))
    y = p.x + c
    kw = {"ignore_index": p.ignore_index, "reduction": reduction, "label_smoothing": ls}
    assert_close(
        nllkit.cross_entropy(y, p.t, p.w, **kw), nllkit.cross_entropy(p.x, p.t, p.w, **kw), atol=1e-9
    )
    probs = data.draw(arrays(p.x.shape, 0.0, 1.0))
    kw.pop("ignore_index")
    assert_close(
        nllkit.cross_entropy(y, probs, p.w, **kw), nllkit.cross_entropy(p.x, probs, p.w, **kw), atol=1e-9
    )
    assert_close(nllkit.log_softmax(y, p.axis), nllkit.log_softmax(p.x, p.axis), atol=1e-11)
    assert_close(nllkit.softmax(y, p.axis), nllkit.softmax(p.x, p.axis), atol=1e-13)
    lse = nllkit.logsumexp(p.x, p.axis, keepdim=True)
    assert_close(nllkit.logsumexp(y, p.axis, keepdim=True), lse + c, atol=1e-11)
    assert_close(nllkit.logsumexp(y, p.axis), np.squeeze(lse + c, axis=p.axis), atol=1e-11)


@budget(40)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), elements=floats(-30, 30)),
    data=st.data(),
)
def test_logsumexp_shift_over_several_axes(x, data):
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, x.ndim - 1), min_size=1))))
    c = data.draw(arrays(tuple(1 if d in dims else n for d, n in enumerate(x.shape)), -100.0, 100.0))
    expected = nllkit.logsumexp(x, dims, keepdim=True) + c
    assert_close(nllkit.logsumexp(x + c, dims, keepdim=True), expected, atol=1e-11)
    assert_close(nllkit.logsumexp(x + c, dims), np.squeeze(expected, axis=dims), atol=1e-11)
    # logsumexp is the log-normaliser: softmax over the same axes sums to 1.
    assert_close(np.exp(x - expected + c).sum(axis=dims), 1.0, atol=1e-12)


# =========================== gradient rows sum to zero =========================================


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(50)
@given(p=index_problems(), ls=smoothing, reduction=st.sampled_from(["none", "mean", "sum"]), data=st.data())
def test_cross_entropy_gradient_rows_sum_to_zero(p, ls, reduction, data):
    """Every logit row's gradient sums to 0: softmax is invariant to a shift."""
    kw = {"reduction": reduction, "label_smoothing": ls}
    _, (g, *_) = pull(nllkit.cross_entropy, (p.x, p.t, p.w), ignore_index=p.ignore_index, **kw)
    assert np.all(np.isfinite(g))
    assert_close(g.sum(axis=p.axis), 0.0, atol=1e-13)
    normalise = data.draw(st.booleans())
    probs = data.draw(arrays(p.x.shape, 0.0, 1.0))
    if normalise:
        probs = probs / np.maximum(probs.sum(axis=p.axis, keepdims=True), 1e-300)
    _, (g, *_) = pull(nllkit.cross_entropy, (p.x, probs, p.w), **kw)
    assert_close(g.sum(axis=p.axis), 0.0, atol=1e-12)


# =========================== large logits ==================================================


big = st.one_of(st.sampled_from([-1e4, 1e4, 0.0]), floats(-1e4, 1e4))


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(50)
@given(p=index_problems(), ls=smoothing, data=st.data())
def test_finite_at_large_logits(p, ls, data):
    x = data.draw(hnp.arrays(np.float64, p.x.shape, elements=big))
    kw = {"ignore_index": p.ignore_index, "label_smoothing": ls}
    for reduction in ("none", "sum"):
        out, (g, *_) = pull(nllkit.cross_entropy, (x, p.t, p.w), reduction=reduction, **kw)
        assert np.all(np.isfinite(out)) and np.all(out >= 0)
        assert np.all(np.isfinite(g))
    probs = data.draw(arrays(p.x.shape, 0.0, 1.0))
    out, (g, g_t, g_w) = pull(nllkit.cross_entropy, (x, probs, p.w), reduction="sum", label_smoothing=ls)
    assert np.isfinite(out) and out >= 0
    for grad in (g, g_t, g_w):
        assert grad is None or np.all(np.isfinite(grad))
    logp, (g,) = pull(nllkit.log_softmax, (x,), data.draw(arrays(x.shape, -1.0, 1.0)), dim=p.axis)
    assert np.all(np.isfinite(logp)) and np.all(logp <= 0) and np.all(np.isfinite(g))
    s, (g,) = pull(nllkit.softmax, (x,), data.draw(arrays(x.shape, -1.0, 1.0)), dim=p.axis)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(g))
    assert_close(s.sum(axis=p.axis), 1.0, atol=1e-12)
    lse, (g,) = pull(nllkit.logsumexp, (x,), dim=p.axis)
    assert np.all(np.isfinite(lse)) and np.all(np.isfinite(g))
    y = data.draw(arrays(x.shape, 0.0, 1.0))
    pw = data.draw(st.none() | arrays(x.shape[-1:], 0.1, 5.0))
    out, (g, g_y, *_) = pull(_bce_logits, (x, y, None, pw), reduction="none")
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(g_y))


# =========================== zero gradient at the MLE =========================================


@budget(40)
@given(
    counts=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.integers(0, 30).map(float)
    ),
    log_input=st.booleans(),
    full=st.booleans(),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_poisson_gradient_vanishes_at_the_mle(counts, log_input, full, reduction):
    """One rate per row, at its MLE (the row mean), has zero gradient."""
    counts[:, 0] += 1.0  # every row has a positive mean
    rate = counts.mean(axis=1, keepdims=True)
    x = np.log(rate) if log_input else rate
    # eps=0: the rate-input loss has its minimum exactly at the mean.
    _, (g, _) = pull(
        nllkit.poisson_nll_loss, (x, counts), log_input=log_input, full=full, eps=0.0, reduction=reduction
    )
    assert g.shape == x.shape
    assert_close(g, 0.0, atol=1e-12 * counts.sum())


@budget(40)
@given(
    t=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)), elements=floats(-10, 10)),
    full=st.booleans(),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_gaussian_gradient_vanishes_at_the_mle(t, full, reduction):
    """Per row, mean = sample mean and var = mean squared residual is a stationary point."""
    t[:, 0] += 1.0
    t[:, 1] -= 1.0  # rows are not constant: the MLE variance is positive
    mean = t.mean(axis=1, keepdims=True)
    var = ((t - mean) ** 2).mean(axis=1, keepdims=True)
    _, (g_mean, g_t, g_var) = pull(nllkit.gaussian_nll_loss, (mean, t, var), full=full, reduction=reduction)
    assert g_mean.shape == mean.shape and g_var.shape == var.shape and g_t.shape == t.shape
    assert_close(g_mean, 0.0, atol=1e-12 * (1 + np.abs(t).sum()))
    assert_close(g_var * var, 0.0, atol=1e-12 * t.size)
    # The same variance given per row as a (N,) array: one fewer axis.
    rows = np.broadcast_to(mean, t.shape).copy()
    _, (_, _, g_rows) = pull(nllkit.gaussian_nll_loss, (rows, t, var[:, 0]), full=full, reduction=reduction)
    assert g_rows.shape == (t.shape[0],)
    assert_close(g_rows * var[:, 0], 0.0, atol=1e-12 * t.size)


@budget(40)
@given(
    q=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=floats(0.05, 1.0)),
    ls=smoothing,
    reduction=st.sampled_from(["none", "mean", "sum"]),
    data=st.data(),
)
def test_cross_entropy_gradient_vanishes_at_the_target(q, ls, reduction, data):
    """With probability targets, logits = log(smoothed target) (+ any per-row
    constant) minimise the cross-entropy: the gradient is 0."""
    t = q / q.sum(axis=1, keepdims=True)
    c = t.shape[1]
    x = np.log((1 - ls) * t + ls / c) + data.draw(arrays((t.shape[0], 1), -5.0, 5.0))
    _, (g, _) = pull(nllkit.cross_entropy, (x, t), reduction=reduction, label_smoothing=ls)
    assert_close(g, 0.0, atol=1e-14)


@budget(40)
@given(
    extra=hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(0, 4)),
    c=st.integers(1, 5),
    ls=smoothing,
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_index_cross_entropy_gradient_vanishes_at_the_class_frequencies(extra, c, ls, reduction):
    """One logit row shared by all samples, at the log of the (smoothed) class
    frequencies, is the MLE: the gradients summed over rows vanish."""
    t = np.concatenate([np.arange(c), extra % c])
    freq = np.bincount(t, minlength=c) / t.size
    row = np.log((1 - ls) * freq + ls / c)
    x = np.tile(row, (t.size, 1))
    _, (g, *_) = pull(nllkit.cross_entropy, (x, t), reduction=reduction, label_smoothing=ls)
    assert_close(g.sum(axis=0), 0.0, atol=1e-13 * t.size)


@budget(40)
@given(
    y=hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=floats(0.01, 0.99)
    )
)
def test_bce_gradients_vanish_at_the_target(y):
    _, (g, _) = pull(nllkit.binary_cross_entropy, (y.copy(), y))
    assert np.all(g == 0)
    logits = np.log(y) - np.log1p(-y)
    _, (g, *_) = pull(_bce_logits, (logits, y))
    assert_close(g, 0.0, atol=1e-15)


# =========================== identities =======================================================


@budget(40)
@given(
    q=hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=floats(1e-3, 1.0)
    ),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
)
def test_kl_of_a_distribution_from_itself_is_zero(q, reduction):
    axis = 0 if q.ndim == 1 else 1
    p = q / q.sum(axis=axis, keepdims=True)
    logp = np.log(p)
    assert_close(nllkit.kl_div(logp, p, reduction=reduction), 0.0, atol=1e-15)
    assert_close(nllkit.kl_div(logp, logp, reduction=reduction, log_target=True), 0.0, atol=1e-15)
    # KL is non-negative against any other distribution.
    other = np_log_softmax(np.flip(logp, axis=-1) * 2.0, axis)
    assert np.sum(nllkit.kl_div(other, p, reduction="none")) >= -1e-12


@budget(50)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=floats(-8, 8)),
    data=st.data(),
    reduction=st.sampled_from(["none", "mean", "sum"]),
)
def test_bce_with_logits_is_bce_of_sigmoid(x, data, reduction):
    y = data.draw(arrays(x.shape, 0.0, 1.0))
    w = data.draw(st.none() | arrays(x.shape[-1:], 0.0, 3.0))
    sig = 1.0 / (1.0 + np.exp(-x))
    out_l, (g_l, gy_l, *_) = pull(_bce_logits, (x, y, w), reduction=reduction)
    out_p, (g_p, gy_p, _) = pull(nllkit.binary_cross_entropy, (sig, y, w), reduction=reduction)
    assert_close(out_l, out_p, rtol=1e-9, atol=1e-12)
    # The chain rule through the sigmoid.
    assert_close(g_l, g_p * sig * (1 - sig), rtol=1e-8, atol=1e-12)
    assert_close(gy_l, gy_p, rtol=1e-8, atol=1e-11)


@budget(50)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), elements=floats(-50, 50)),
    data=st.data(),
)
def test_softmax_sums_to_one_and_is_exp_log_softmax(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    s = nllkit.softmax(x, dim)
    assert s.shape == x.shape and np.all(s >= 0) and np.all(s <= 1)
    assert_close(s.sum(axis=dim), 1.0, atol=1e-13)
    assert_close(s, np.exp(nllkit.log_softmax(x, dim)), rtol=1e-12, atol=1e-300)
    assert_close(nllkit.log_softmax(x, dim), np_log_softmax(x, dim), atol=1e-12)


# =========================== inputs are never modified ========================================


def _all_calls(
    p: IndexProblem, elementwise: list[Case], ls: float
) -> list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    kw = {"ignore_index": p.ignore_index}
    calls = [
        (nllkit.nll_loss, (p.x, p.t, p.w), kw),
        (nllkit.cross_entropy, (p.x, p.t, p.w), {**kw, "label_smoothing": ls}),
        (nllkit.log_softmax, (p.x,), {"dim": p.axis}),
        (nllkit.softmax, (p.x,), {"dim": p.axis}),
        (nllkit.logsumexp, (p.x,), {"dim": p.axis}),
        (lambda x, t, w: nllkit.nll_loss(nllkit.log_softmax(x, p.axis), t, w, **kw), (p.x, p.t, p.w), {}),
    ]
    for case in elementwise:
        for reduction in ("none", "mean", "sum"):
            calls.append((case.fn, case.args, {**case.settings, "reduction": reduction}))
    return calls


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(30)
@given(p=index_problems(), elementwise=all_cases(), ls=smoothing, data=st.data())
def test_inputs_are_never_modified(p, elementwise, ls, data):
    for fn, args, kw in _all_calls(p, elementwise, ls):
        before = [None if a is None else np.copy(a) for a in args]
        out, pullback = nllkit.vjp(fn, *args, **kw)
        cot = data.draw(arrays(np.shape(out), -2.0, 2.0))
        cot_before = cot.copy()
        fn(*args, **kw)
        pullback(cot)
        pullback(cot)  # a pullback may be called again
        for a, b in zip(args, before, strict=True):
            if a is not None:
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(cot, cot_before)


# =========================== on every backend =================================================


def _to(backend, a: Any) -> Any:
    if a is None:
        return None
    return backend.asarray(a, "float64" if a.dtype == np.float64 else None)


def _grad_of(fn: Callable[..., Any], **kw: Any) -> Callable[..., Any]:
    """``(*args, cotangent) -> (value, grad of argument 0)``: jittable on JAX."""

    def value_and_grad(*args: Any) -> Any:
        *args, cot = args
        out, pullback = nllkit.vjp(fn, *args, **kw)
        return out, pullback(cot)[0]

    return value_and_grad


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(6)
@given(p=index_problems(bound=10.0), ls=smoothing, data=st.data())
def test_backend_index_losses(backend, p, ls, data):
    """Reductions, CE == nll(log_softmax) and junk in ignored rows, on each backend."""
    x, t = backend.asarray(p.x, "float64"), backend.asarray(p.t)
    w = _to(backend, p.w)
    ii = p.ignore_index
    none = backend.call(nllkit.cross_entropy, x, t, w, ignore_index=ii, reduction="none", label_smoothing=ls)
    total = backend.call(nllkit.cross_entropy, x, t, w, ignore_index=ii, reduction="sum", label_smoothing=ls)
    mean = backend.call(nllkit.cross_entropy, x, t, w, ignore_index=ii, reduction="mean", label_smoothing=ls)
    for a in (none, total, mean):
        backend.assert_namespace(a)
    none_np = backend.numpy(none)
    assert_close(backend.numpy(total), none_np.sum())
    denominator = p.target_weight().sum()
    if denominator > 0:
        assert_close(backend.numpy(mean), none_np.sum() / denominator)
    else:
        assert np.isnan(backend.numpy(mean))

    def composed(x, t, w):
        return nllkit.nll_loss(nllkit.log_softmax(x, p.axis), t, w, ignore_index=ii, reduction="sum")

    ce_sum = backend.call(nllkit.cross_entropy, x, t, w, ignore_index=ii, reduction="sum")
    assert_close(
        backend.numpy(backend.call(composed, x, t, w)), backend.numpy(ce_sum), rtol=1e-13, atol=1e-13
    )

    junk = data.draw(hnp.arrays(np.float64, p.x.shape, elements=st.sampled_from([np.nan, np.inf, -np.inf])))
    x_bad = backend.asarray(np.where(np.broadcast_to(p.expand(p.ignored), p.x.shape), junk, p.x), "float64")
    cot = backend.asarray(np.ones(p.t.shape), "float64")
    fn = _grad_of(nllkit.cross_entropy, ignore_index=ii, reduction="none", label_smoothing=ls)
    out_bad, g_bad = backend.call(fn, x_bad, t, w, cot)
    out_clean, g_clean = backend.call(fn, x, t, w, cot)
    backend.assert_namespace(g_bad)
    np.testing.assert_array_equal(backend.numpy(out_bad), backend.numpy(out_clean))
    np.testing.assert_array_equal(backend.numpy(g_bad), backend.numpy(g_clean))
    assert np.all(backend.numpy(g_bad)[np.broadcast_to(p.expand(p.ignored), p.x.shape)] == 0)


@budget(4)
@given(elementwise=all_cases())
def test_backend_elementwise_reductions(backend, elementwise):
    for case in elementwise:
        args = tuple(_to(backend, a) for a in case.args)
        none = backend.numpy(backend.call(case.fn, *args, reduction="none", **case.settings))
        assert_close(none, call(case, "none"), rtol=1e-12, atol=1e-12)
        for reduction, expected in (("sum", none.sum()), ("mean", none.mean())):
            got = backend.call(case.fn, *args, reduction=reduction, **case.settings)
            backend.assert_namespace(got)
            assert_close(backend.numpy(got), expected)


@budget(6)
@given(p=index_problems(ignore=False), data=st.data())
def test_backend_shift_invariance_and_softmax(backend, p, data):
    cshape = list(p.x.shape)
    cshape[p.axis] = 1
    c = data.draw(arrays(tuple(cshape), -100.0, 100.0))
    x, y = backend.asarray(p.x, "float64"), backend.asarray(p.x + c, "float64")
    t = backend.asarray(p.t)
    assert_close(
        backend.numpy(backend.call(nllkit.cross_entropy, y, t, reduction="none")),
        backend.numpy(backend.call(nllkit.cross_entropy, x, t, reduction="none")),
        atol=1e-9,
    )
    logp_x = backend.call(nllkit.log_softmax, x, dim=p.axis)
    assert_close(
        backend.numpy(backend.call(nllkit.log_softmax, y, dim=p.axis)), backend.numpy(logp_x), atol=1e-11
    )
    s = backend.call(nllkit.softmax, y, dim=p.axis)
    backend.assert_namespace(s)
    assert_close(backend.numpy(s).sum(axis=p.axis), 1.0, atol=1e-13)
    assert_close(backend.numpy(s), np.exp(backend.numpy(logp_x)), rtol=1e-12, atol=1e-300)
    lse_x = backend.numpy(backend.call(nllkit.logsumexp, x, dim=p.axis, keepdim=True))
    lse_y = backend.numpy(backend.call(nllkit.logsumexp, y, dim=p.axis, keepdim=True))
    assert_close(lse_y, lse_x + c, atol=1e-11)


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(6)
@given(p=index_problems(), ls=smoothing)
def test_backend_gradient_rows_sum_to_zero(backend, p, ls):
    x, t, w = backend.asarray(p.x, "float64"), backend.asarray(p.t), _to(backend, p.w)
    fn = _grad_of(nllkit.cross_entropy, ignore_index=p.ignore_index, label_smoothing=ls, reduction="sum")
    _, g = backend.call(fn, x, t, w, backend.asarray(1.0, "float64"))
    backend.assert_namespace(g)
    g_np = backend.numpy(g)
    assert np.all(np.isfinite(g_np))
    assert_close(g_np.sum(axis=p.axis), 0.0, atol=1e-13)


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
@budget(4)
@given(p=index_problems(), elementwise=all_cases(), ls=smoothing)
def test_backend_inputs_are_never_modified(backend, p, elementwise, ls):
    """On numpy:readonly a write raises; elsewhere the values must not change."""
    if backend.name == "jax":
        pytest.skip("JAX arrays are immutable: nothing to check")
    q = IndexProblem(p.x, p.t, p.w, p.ignore_index)
    for fn, args, kw in _all_calls(q, elementwise, ls):
        arrays_ = tuple(_to(backend, a) for a in args)
        before = [None if a is None else backend.numpy(a).copy() for a in arrays_]
        out, pullback = nllkit.vjp(fn, *arrays_, **kw)
        fn(*arrays_, **kw)
        pullback(backend.asarray(np.ones(np.shape(backend.numpy(out))), "float64"))
        for a, b in zip(arrays_, before, strict=True):
            if a is not None:
                np.testing.assert_array_equal(backend.numpy(a), b)
