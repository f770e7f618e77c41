"""Accuracy of the vectorizable ``exp32`` / ``exp64`` used by the fused kernels.

Errors are measured in ulps of the *true* result rounded to the tested dtype:
the reference is ``exp`` evaluated in a wider type (float64 for float32 inputs,
80-bit ``np.longdouble`` for float64 inputs), and an ulp is the spacing of the
dtype at the reference value (the subnormal spacing below the normal range).
Measured on the grids below: exp32 max 1.05 ulp, exp64 max 0.98 ulp (normal and
subnormal results alike); both are asserted <= 2 ulp.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit

from nllkit._kernels._exp import exp32, exp64


@njit(cache=False)
def _map32(a: np.ndarray, out: np.ndarray) -> None:
    for i in range(a.size):
        out[i] = exp32(a[i])


@njit(cache=False)
def _map64(a: np.ndarray, out: np.ndarray) -> None:
    for i in range(a.size):
        out[i] = exp64(a[i])


def _exp(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    (_map32 if x.dtype == np.float32 else _map64)(x, out)
    return out


def _ulps(got: np.ndarray, ref: np.ndarray, dtype: type) -> np.ndarray:
    """|got - ref| in ulps of ``dtype`` at ``ref`` (``ref`` in a wider type)."""
    info = np.finfo(dtype)
    rounded = ref.astype(dtype)
    spacing = np.maximum(np.spacing(np.abs(rounded)).astype(ref.dtype), ref.dtype.type(info.smallest_subnormal))
    return (np.abs(got.astype(ref.dtype) - ref) / spacing).astype(np.float64)


def _grid(dtype: type, lo: float, hi: float, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            np.linspace(lo, hi, n, dtype=dtype),
            rng.uniform(lo, hi, n // 4).astype(dtype),
            # near 0 and around half-integers of x / ln 2 (the reduction boundaries)
            np.linspace(-1e-3, 1e-3, 10_001, dtype=dtype),
            (np.arange(-140, 128) * np.log(2) / 2).astype(dtype),
        ]
    )


@pytest.mark.parametrize(("lo", "hi"), [(-20.0, 0.0), (-104.0, 88.72)])
def test_exp32_ulp(lo: float, hi: float) -> None:
    x = _grid(np.float32, lo, hi, 4_000_001)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64))
        finite = np.isfinite(ref.astype(np.float32))
    err = _ulps(_exp(x), ref, np.float32)[finite]
    assert err.max() <= 2.0, (err.max(), x[finite][err.argmax()])


@pytest.mark.parametrize(("lo", "hi"), [(-40.0, 0.0), (-745.1, 709.78)])
def test_exp64_ulp(lo: float, hi: float) -> None:
    x = _grid(np.float64, lo, hi, 4_000_001)
    ref = np.exp(x.astype(np.longdouble))
    finite = np.isfinite(ref.astype(np.float64))
    err = _ulps(_exp(x), ref, np.float64)[finite]
    assert err.max() <= 2.0, (err.max(), x[finite][err.argmax()])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(dtype: type) -> None:
    big = 89.0 if dtype == np.float32 else 710.0
    tiny = -104.0 if dtype == np.float32 else -746.0
    x = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, big, tiny, 1e30, -1e30, 1.0], dtype=dtype)
    got = _exp(x)
    assert got[0] == 0.0 and got[1] == np.inf and np.isnan(got[2])
    assert got[3] == 1.0 and got[4] == 1.0
    assert got[5] == np.inf and got[6] == 0.0 and got[7] == np.inf and got[8] == 0.0
    assert got[9] == dtype(np.e) or abs(float(got[9]) - np.e) <= np.spacing(dtype(np.e))


def test_exp_overflow_threshold() -> None:
    # The last finite results and the first infinite ones agree with np.exp.
    for dtype, edge in ((np.float32, np.float32(88.72283)), (np.float64, 709.782712893384)):
        x = np.array(
            [edge, np.nextafter(edge, dtype(np.inf)), np.nextafter(np.nextafter(edge, dtype(0)), dtype(0))], dtype=dtype
        )
        with np.errstate(over="ignore"):
            ref = np.exp(x)
        np.testing.assert_array_equal(np.isinf(_exp(x)), np.isinf(ref))


def test_exp_is_vectorized() -> None:
    """LLVM must turn a loop over exp32 / exp64 into SIMD code (the reason they exist)."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("checks x86 vector rounding instructions")
    _exp(np.zeros(4, np.float32))
    _exp(np.zeros(4, np.float64))
    asm32 = "".join(_map32.inspect_asm().values())
    asm64 = "".join(_map64.inspect_asm().values())
    # AVX2 rounds with vroundp[sd]; AVX-512 targets (Zen 5 here) with vrndscalep[sd].
    assert ("vroundps" in asm32 or "vrndscaleps" in asm32) and ("ymm" in asm32 or "zmm" in asm32)
    assert "vroundpd" in asm64 or "vrndscalepd" in asm64
