"""Argument checks and the error messages they raise.

Messages follow one pattern, ``{function}: {parameter} must be {expected};
got {found}``, and data errors name the offending value and its position.
Checks that read values (``check_*_values``) run only on eager arrays: under
``jax.jit`` they are skipped, as documented.
"""

from __future__ import annotations

import math
import numbers
import operator
from types import ModuleType
from typing import Any

from nllkit._xp import Array, dtype_name, is_floating, is_integer, is_traced

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(fn: str, reduction: Any, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        options = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{fn}: reduction must be one of {options}; got {reduction!r}")


def check_floating(fn: str, name: str, x: Array, xp: ModuleType) -> None:
    if not is_floating(x.dtype, xp):
        raise TypeError(f"{fn}: {name} must have a real floating dtype; got {dtype_name(x.dtype)}")


def check_real(fn: str, name: str, x: Array, xp: ModuleType) -> None:
    """Real floating or integer (promoted to floating, as PyTorch does)."""
    if not (is_floating(x.dtype, xp) or is_integer(x.dtype, xp)):
        raise TypeError(f"{fn}: {name} must have a real floating or integer dtype; got {dtype_name(x.dtype)}")


def check_integer(fn: str, name: str, x: Array, xp: ModuleType, hint: str = "") -> None:
    if not is_integer(x.dtype, xp):
        raise TypeError(f"{fn}: {name} must have an integer dtype; got {dtype_name(x.dtype)}{hint}")


def check_int(fn: str, name: str, value: Any) -> int:
    """A Python or NumPy integer (not a bool) as an int."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{fn}: {name} must be an int; got {type(value).__name__}")


def check_dim(fn: str, dim: Any, ndim: int) -> int:
    """Normalise ``dim`` to ``[0, ndim)`` (a 0-d array accepts 0 and -1)."""
    dim = check_int(fn, "dim", dim)
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(
            f"{fn}: dim must be in [{-size}, {size}) for an input with {ndim} dimensions; got {dim}"
        )
    return dim % size


def check_broadcast_into(
    fn: str, name: str, shape: tuple[int, ...], into: tuple[int, ...], into_name: str
) -> None:
    """``shape`` must broadcast to ``into`` without enlarging it."""
    tail = into[len(into) - len(shape) :]
    ok = len(shape) <= len(into) and all(s in (1, t) for s, t in zip(shape, tail, strict=True))
    if not ok:
        raise ValueError(
            f"{fn}: {name} must broadcast to the {into_name} shape {into}; got shape {tuple(shape)}"
        )


def broadcast_shape(fn: str, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast of named shapes, or a ValueError naming them."""
    ndim = max(len(s) for s in shapes.values())
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes.values() if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            found = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
            raise ValueError(f"{fn}: shapes must broadcast together; got {found}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def first_true(mask: Array, xp: ModuleType) -> tuple[int, ...] | None:
    """Position of the first True of ``mask`` in C order, or None.

    Uses ``argmax`` rather than ``nonzero`` so that it works where
    data-dependent shapes are forbidden.
    """
    if mask.ndim == 0:
        return () if bool(mask) else None
    flat = xp.reshape(mask, (-1,))
    if flat.shape[0] == 0 or not bool(xp.any(flat)):
        return None
    index = int(xp.argmax(xp.astype(flat, xp.int8)))
    position = []
    for n in reversed(mask.shape):
        position.append(index % n)
        index //= n
    return tuple(reversed(position))


def value_at(x: Array, position: tuple[int, ...]) -> float | int:
    """The Python number at ``position`` of ``x``, as an int for integer data."""
    v = x[position] if position else x
    return float(v) if "float" in dtype_name(v.dtype) else int(v)


def check_values(
    fn: str, name: str, x: Array, bad: Array, expected: str, xp: ModuleType, exc: type = ValueError
) -> None:
    """Raise ``exc`` naming the first value of ``x`` where ``bad`` holds.

    Skipped when the values cannot be read (traced arrays).
    """
    if is_traced(x) or is_traced(bad):
        return
    position = first_true(bad, xp)
    if position is None:
        return
    count = int(xp.count_nonzero(bad))
    where = f" at position {position}" if position else ""
    more = f" ({count} such entries)" if count > 1 else ""
    raise exc(f"{fn}: {name} must be {expected}; got {value_at(x, position)}{where}{more}")


def check_scalar(fn: str, name: str, value: Any, lo: float, hi: float) -> float:
    """A Python number in ``[lo, hi]``; NaN and other types are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number; got {type(value).__name__}")
    value = float(value)
    if not lo <= value <= hi or math.isnan(value):
        raise ValueError(f"{fn}: {name} must be between {lo} and {hi}; got {value}")
    return value
