"""Analytic reverse-mode differentiation of nllkit's losses.

Each loss is a *primitive*: a forward function that returns its value and a
*pullback*, the closure that maps the cotangent of the value to one gradient
per array argument (``None`` where the loss is not differentiable in that
argument). The rule for each loss lives beside the loss. This module routes
a primitive to whatever should differentiate it:

* inside :func:`vjp` / :func:`value_and_grad`, a tape records every primitive
  and runs the pullbacks in reverse, so compositions such as
  ``nll_loss(log_softmax(x, 1), t)`` differentiate too;
* a PyTorch tensor that requires grad goes through a ``torch.autograd.Function``
  whose backward is the pullback;
* a JAX array goes through ``jax.custom_vjp``, so ``jax.grad`` and ``jax.jit``
  use the same rules;
* anything else just runs the forward.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import array_api_compat as apc

from nllkit import _kernels as kernels
from nllkit._kernels import Fused
from nllkit._xp import Array, is_floating, namespace, to_dtype

Pullback = Callable[[Array], Sequence[Array | None]]
Forward = Callable[..., tuple[Array, Pullback]]


def apply(forward: Forward, arrays: tuple[Any, ...], *, fused: Fused | None = None, **settings: Any) -> Array:
    """Evaluate the primitive ``forward(*arrays, **settings)``.

    ``arrays`` are the caller's own objects (``None`` for an absent optional
    array); ``settings`` are hashable Python values. ``fused``, if given, is
    the primitive's fused NumPy kernel: ``fused(*arrays, need_grad=...,
    **settings)`` returns what ``forward`` does, or None to decline. It is
    tried first for NumPy arrays, and asked for the gradient in the same
    pass when a tape will need it.
    """
    tape = _TAPE.get()
    result = None
    if fused is not None and kernels.takes(arrays):
        result = fused(*arrays, need_grad=tape is not None, **settings)
    if tape is not None:
        out, pullback = result if result is not None else forward(*arrays, **settings)
        tape.entries.append(_Entry(arrays, out, _typed(pullback, arrays)))
        return out
    if result is not None:
        return result[0]
    if any(_torch_needs_grad(a) for a in arrays):
        return _torch_function().apply(forward, settings, *arrays)
    if any(apc.is_jax_array(a) for a in arrays):
        return _jax_primitive(forward, tuple(sorted(settings.items())))(*arrays)
    return forward(*arrays, **settings)[0]


def _typed(pullback: Pullback, arrays: tuple[Any, ...]) -> Callable[[Array], list[Array | None]]:
    """Give each gradient the dtype of its argument; none for non-float ones."""

    def typed(cotangent: Array) -> list[Array | None]:
        grads: list[Array | None] = []
        for a, g in zip(arrays, pullback(cotangent), strict=True):
            if g is None or not _is_float_array(a):
                grads.append(None)
            else:
                grads.append(to_dtype(g, a.dtype, namespace(a)))
        return grads

    return typed


def _is_float_array(a: Any) -> bool:
    return apc.is_array_api_obj(a) and is_floating(a.dtype, namespace(a))


# --- PyTorch ------------------------------------------------------------------


def _torch_needs_grad(a: Any) -> bool:
    if not apc.is_torch_array(a) or not a.requires_grad:
        return False
    import torch

    return torch.is_grad_enabled()


@functools.cache
def _torch_function() -> Any:
    import torch

    class Primitive(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, forward: Forward, settings: dict[str, Any], *arrays: Any) -> Any:
            out, pullback = forward(*arrays, **settings)
            ctx.pullback = _typed(pullback, arrays)
            return out

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, cotangent: Any) -> Any:
            return (None, None, *ctx.pullback(cotangent))

    return Primitive


# --- JAX ----------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _jax_primitive(forward: Forward, settings: tuple[tuple[str, Any], ...]) -> Callable[..., Any]:
    import jax

    kwargs = dict(settings)

    @jax.custom_vjp
    def primitive(*arrays: Any) -> Any:
        return forward(*arrays, **kwargs)[0]

    def fwd(*arrays: Any) -> tuple[Any, Any]:
        return forward(*arrays, **kwargs)[0], arrays

    def bwd(arrays: Any, cotangent: Any) -> tuple[Any, ...]:
        # Residuals must be arrays, not closures, so the pullback is rebuilt
        # here; under jit XLA shares the recomputed forward.
        pullback = _typed(forward(*arrays, **kwargs)[1], arrays)
        return tuple(pullback(cotangent))

    primitive.defvjp(fwd, bwd)
    return primitive


# --- the tape -------------------------------------------------------------------


@dataclass
class _Entry:
    inputs: tuple[Any, ...]
    output: Array
    pullback: Callable[[Array], list[Array | None]]


@dataclass
class _Tape:
    entries: list[_Entry] = field(default_factory=list)


_TAPE: ContextVar[_Tape | None] = ContextVar("nllkit_tape", default=None)


def vjp(
    fn: Callable[..., Array], *args: Any, **kwargs: Any
) -> tuple[Array, Callable[[Any], tuple[Array | None, ...]]]:
    r"""Evaluate ``fn(*args, **kwargs)`` and return its value with its pullback.

    ``pullback(cotangent)`` returns one entry per positional argument: the
    vector-Jacobian product :math:`\bar v^\top \partial\,\mathrm{fn}/\partial a`
    for a floating array ``a``, and ``None`` for integer arrays, Python
    numbers, arrays the losses are not differentiable in (for example the
    class ``weight`` of :func:`nll_loss`, as in PyTorch), and arrays from
    which no nllkit call leads to the result.

    ``fn`` is an nllkit function or module, or a Python function that builds
    its result from them; the analytic rule of every nllkit call on the way is
    used. Operations done outside nllkit (slicing, arithmetic) are not seen:
    an argument that reaches the result only through them gets ``None``, never
    a silently wrong gradient. Differentiate such code with JAX or PyTorch,
    whose arrays nllkit also accepts. Lists of numbers among ``args`` are
    converted to NumPy arrays. An array passed in several positions gets its
    own gradient in each.

    Parameters
    ----------
    fn : callable
        Returns an array produced by an nllkit function.
    *args, **kwargs
        Its arguments. Only positional arguments are differentiated.

    Returns
    -------
    out : array
        ``fn(*args, **kwargs)``.
    pullback : callable
        ``pullback(cotangent)``, with ``cotangent`` of the shape of ``out``.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    >>> out, pullback = nllkit.vjp(nllkit.cross_entropy, x, np.array([1, 2]), reduction="none")
    >>> grad_x, grad_target = pullback(np.ones(2))
    >>> print(np.round(grad_x, 4))
    [[ 0.2312 -0.3715  0.1402]
     [ 0.0466  0.0171 -0.0638]]
    >>> grad_target is None
    True
    """
    args = _distinct(tuple(_as_numpy_if_sequence(a) for a in args))
    tape = _Tape()
    token = _TAPE.set(tape)
    try:
        out = fn(*args, **kwargs)
    finally:
        _TAPE.reset(token)
    if not any(entry.output is out for entry in tape.entries):
        raise TypeError(
            "vjp: fn must return the result of an nllkit function; got "
            f"{type(out).__name__}. Operations outside nllkit are not differentiated"
        )

    def pullback(cotangent: Any) -> tuple[Array | None, ...]:
        xp = namespace(out)
        cotangent = xp.asarray(cotangent, dtype=out.dtype, device=apc.device(out))
        if tuple(cotangent.shape) != tuple(out.shape):
            raise ValueError(
                f"vjp: cotangent must have the output's shape {tuple(out.shape)}; "
                f"got {tuple(cotangent.shape)}"
            )
        grads: dict[int, Array] = {id(out): cotangent}
        for entry in reversed(tape.entries):
            g = grads.pop(id(entry.output), None)
            if g is None:
                continue
            for a, ga in zip(entry.inputs, entry.pullback(g), strict=True):
                if ga is not None:
                    grads[id(a)] = grads[id(a)] + ga if id(a) in grads else ga
        # No gradient rather than a zero one for an argument no differentiable
        # nllkit call leads from: it may be used through operations nllkit
        # cannot see, and a silent zero would be wrong.
        return tuple(grads.get(id(a)) if _is_float_array(a) else None for a in args)

    return out, pullback


def _distinct(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Give an array passed in several positions a fresh view in each later
    one, so that each position gets its own gradient (as in ``jax.vjp``)."""
    seen: set[int] = set()
    out = []
    for a in args:
        if apc.is_array_api_obj(a) and id(a) in seen:
            a = a[...]
        seen.add(id(a))
        out.append(a)
    return tuple(out)


def _as_numpy_if_sequence(a: Any) -> Any:
    if isinstance(a, (list, tuple)):
        import numpy as np

        return np.asarray(a)
    return a




def value_and_grad(
    fn: Callable[..., Array], argnums: int | tuple[int, ...] = 0
) -> Callable[..., tuple[Array, Any]]:
    """Make a function that returns ``fn``'s scalar value and its gradient.

    Parameters
    ----------
    fn : callable
        An nllkit function or module (or a function built from them, see
        :func:`vjp`) returning a 0-d array.
    argnums : int or tuple of int
        The positional arguments to differentiate.

    Returns
    -------
    callable
        ``(*args, **kwargs) -> (value, grad)``, where ``grad`` is a tuple
        when ``argnums`` is a tuple.

    Examples
    --------
    >>> import numpy as np, nllkit
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    >>> loss, grad = nllkit.value_and_grad(nllkit.cross_entropy)(x, np.array([1, 2]))
    >>> print(round(float(loss), 6))
    0.265126
    >>> print(np.round(grad, 4))
    [[ 0.1156 -0.1857  0.0701]
     [ 0.0233  0.0086 -0.0319]]
    >>> bool(np.allclose(grad.sum(axis=1), 0.0))  # each row sums to 0
    True
    """
    indices = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(fn)
    def value_and_grad_fn(*args: Any, **kwargs: Any) -> tuple[Array, Any]:
        for i in indices:
            if not -len(args) <= i < len(args):
                raise ValueError(
                    f"value_and_grad: argnums {i} is out of range for {len(args)} positional arguments"
                )
        out, pullback = vjp(fn, *args, **kwargs)
        if out.ndim != 0:
            raise ValueError(
                "value_and_grad: fn must return a scalar; got an array of shape "
                f"{tuple(out.shape)} (use reduction='mean' or 'sum', or nllkit.vjp)"
            )
        grads = pullback(1.0)
        for i in indices:
            if grads[i] is None:
                raise TypeError(
                    f"value_and_grad: argument {i} has no gradient: it must be a floating "
                    "array that the function is differentiable in, reaching the result "
                    "through nllkit functions only"
                )
        picked = tuple(grads[i] for i in indices)
        return out, picked[0] if isinstance(argnums, int) else picked

    return value_and_grad_fn
