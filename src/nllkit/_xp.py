"""Array-namespace plumbing shared by every loss.

Everything here is backend-neutral: it works on any array that
array-api-compat recognises (NumPy, array-api-strict, PyTorch, JAX, CuPy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import array_api_compat as apc

Array = Any

_LOW_PRECISION = ("float16", "bfloat16")


def dtype_name(dtype: Any) -> str:
    """Return a backend-neutral name: ``'float32'`` for ``torch.float32`` too."""
    return str(dtype).removeprefix("torch.").removeprefix("array_api_strict.")


def is_floating(dtype: Any, xp: ModuleType) -> bool:
    # NumPy's isdtype rejects ml_dtypes' bfloat16, so low precision is named.
    return dtype_name(dtype) in _LOW_PRECISION or xp.isdtype(dtype, "real floating")


def is_integer(dtype: Any, xp: ModuleType) -> bool:
    return dtype_name(dtype) not in _LOW_PRECISION and xp.isdtype(dtype, "integral")


def namespace(*arrays: Any) -> ModuleType:
    """The array namespace of the arguments that are arrays.

    Python scalars, lists and ``None`` are skipped; if nothing is an array the
    namespace is NumPy's.
    """
    found = [a for a in arrays if apc.is_array_api_obj(a)]
    if not found:
        import numpy as np

        return apc.array_namespace(np.empty(0))
    return apc.array_namespace(*found)


def as_array(value: Any, xp: ModuleType, *, like: Array) -> Array:
    """``value`` as an array of ``xp`` on the device of ``like``; arrays pass through."""
    if apc.is_array_api_obj(value):
        return value
    return xp.asarray(value, device=apc.device(like))


def is_traced(x: Array) -> bool:
    """True when the values of ``x`` cannot be read now (JAX tracers, Dask)."""
    if apc.is_jax_array(x):
        import jax

        return isinstance(x, jax.core.Tracer)
    return bool(apc.is_lazy_array(x))


def work_dtype(dtype: Any, xp: ModuleType) -> Any:
    """The dtype to compute in: float16 and bfloat16 are computed in float32."""
    return xp.float32 if dtype_name(dtype) in _LOW_PRECISION else dtype


def to_dtype(x: Array, dtype: Any, xp: ModuleType) -> Array:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def float_result_type(*arrays: Array, xp: ModuleType) -> Any:
    """PyTorch-style promotion: the floating arrays decide; integers alone give
    the namespace's default floating dtype."""
    floats = [a for a in arrays if is_floating(a.dtype, xp)]
    if floats:
        return xp.result_type(*floats)
    return xp.__array_namespace_info__().default_dtypes()["real floating"]


def index_dtype(xp: ModuleType) -> Any:
    """int64, or the default integer of the namespace where int64 is unavailable
    (JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes()["indexing"]


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def sum_to_shape(grad: Array, shape: tuple[int, ...], xp: ModuleType) -> Array:
    """Sum a broadcast gradient back down to the shape of the argument."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return xp.reshape(grad, shape)


def class_mask(target: Array, num_classes: int, ndim: int, xp: ModuleType) -> Array:
    """Boolean one-hot mask of ``target`` (shape ``(N, d1..dK)``) along axis 1.

    Built by comparison rather than scatter so that it is jit-safe and has the
    same meaning on every backend; the class axis of the result is axis 1 of an
    array of ``ndim`` dimensions.
    """
    classes = xp.arange(num_classes, dtype=target.dtype, device=apc.device(target))
    classes = xp.reshape(classes, (1, num_classes) + (1,) * (ndim - 2))
    return xp.expand_dims(target, axis=1) == classes


def _divisor(reduction: str, shape: tuple[int, ...], batch: int | None) -> int:
    """What 'mean' (numel), 'batchmean' (the batch size) or 'sum' (1) divide by."""
    if reduction == "mean":
        return numel(shape)
    if reduction == "batchmean":
        assert batch is not None
        return batch
    return 1


def reduce_elementwise(loss: Array, reduction: str, xp: ModuleType, *, batch: int | None = None) -> Array:
    """'none', 'sum', 'mean' (sum / numel) or 'batchmean' (sum / `batch`);
    a division by 0 gives NaN."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    n = _divisor(reduction, tuple(loss.shape), batch)
    return total / n if n else total * math.nan


def grad_of_reduction(
    cotangent: Array, reduction: str, shape: tuple[int, ...], xp: ModuleType, *, batch: int | None = None
) -> Array:
    """The cotangent of the unreduced loss, given that of the reduced one."""
    if reduction == "none":
        return cotangent
    n = _divisor(reduction, shape, batch)
    return cotangent / n if n else cotangent
