"""The ``torch.library`` custom ops behind :mod:`nllkit.torch`'s fused CPU path.

``nllkit::loss_and_grad`` runs one of nllkit's losses on NumPy views of the
tensors' memory (no copies: float32/float64 through ``Tensor.numpy()``,
bfloat16 reinterpreted as ``ml_dtypes.bfloat16`` through its 16-bit pattern),
and returns the loss together with the gradients of a unit cotangent, computed
in the same pass by the fused kernels. The registered backward only scales
those saved gradients by ``grad_output``. ``nllkit::softmax`` is the
normalisation (softmax or log-softmax) on the same views.

Being custom ops with fake (meta) implementations, they are opaque leaves to
``torch.compile``: it traces around them with no graph break.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import nllkit
from nllkit._autodiff import vjp

# Gradients not requested come back as this placeholder: an op output cannot be
# None, and an empty tensor costs nothing.
_NO_GRAD_SHAPE = (0,)


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy array sharing ``t``'s memory (bfloat16 as ``ml_dtypes.bfloat16``)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def as_tensor(a: Any) -> torch.Tensor:
    """A tensor sharing the memory of the NumPy result ``a`` (copied only when
    NumPy hands back a read-only scalar, which torch cannot wrap)."""
    a = np.asarray(a)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a).copy()
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


# Gradient buffers kept for reuse, by (shape, dtype): a logits-sized buffer
# freshly mapped costs its page faults (at 4096 x 32000 float32, 3 to 6 times
# the kernel's own time), so, like a caching allocator, the last large ones
# are kept. One is free when nothing but this list refers to it (the tensor
# handed out as ``.grad`` holds a reference to its array until it dies).
_POOL: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
_POOL_MIN_BYTES = 1 << 24  # smaller buffers are cheap to map
_POOL_PER_KEY = 2


def gradient_buffer(like: np.ndarray) -> np.ndarray | None:
    """A C-contiguous buffer of ``like``'s shape and dtype, reused when a pooled
    one is free; None (let the kernel allocate) for small arrays."""
    if like.nbytes < _POOL_MIN_BYTES:
        return None
    buffers = _POOL.setdefault((like.shape, like.dtype.str), [])
    for buffer in buffers:
        # References: the list, this loop's variable and getrefcount's argument,
        # nothing else (the check is atomic under the GIL, and a thread that
        # looks at the same buffer meanwhile holds a fourth).
        if sys.getrefcount(buffer) == 3:
            return buffer
    buffer = np.empty_like(like)
    buffers.append(buffer)
    if len(buffers) > _POOL_PER_KEY:
        buffers.pop(0)  # forgotten: freed once its tensor dies
    return buffer


def empty_cache() -> None:
    """Release the gradient buffers :func:`nllkit.torch.cross_entropy` keeps for reuse.

    Like torch's CUDA caching allocator, the fused cross-entropy keeps the last
    two gradient buffers of each large (>= 16 MiB) logits shape and dtype, and
    reuses one once its tensor (``.grad``) is gone: mapping fresh memory of
    that size costs several times the kernel. This forgets them; those still
    in use live on in their tensors.

    Examples
    --------
    >>> import nllkit.torch
    >>> nllkit.torch.empty_cache()
    """
    _POOL.clear()


def _numpy_call(name: str, ints: Sequence[int], floats: Sequence[float]) -> tuple[Any, dict[str, Any]]:
    """nllkit's NumPy loss for op ``name`` and its keyword settings, decoded from
    the op's flat int and float lists (lists of constants keep the op schema
    fixed and cost ``torch.compile`` nothing to guard on)."""
    if name == "cross_entropy":
        softcap = floats[2] if floats[2] > 0 else None  # 0 stands for None: softcap must be positive
        return nllkit.cross_entropy, {
            "ignore_index": ints[0],
            "label_smoothing": floats[0],
            "z_loss": floats[1],
            "softcap": softcap,
        }
    if name == "nll_loss":
        return nllkit.nll_loss, {"ignore_index": ints[0]}
    if name == "binary_cross_entropy_with_logits":
        return nllkit.binary_cross_entropy_with_logits, {}
    if name == "poisson_nll_loss":
        return nllkit.poisson_nll_loss, {"log_input": bool(ints[0]), "full": bool(ints[1]), "eps": floats[0]}
    if name == "gaussian_nll_loss":
        return nllkit.gaussian_nll_loss, {"full": bool(ints[0]), "eps": floats[0]}
    raise ValueError(f"nllkit::loss_and_grad: unknown loss {name!r}")


def _arguments(name: str, arrays: list[np.ndarray | None], settings: dict[str, Any], reduction: str) -> tuple:
    """Positional and keyword arguments of the NumPy loss, in its own order."""
    if name == "binary_cross_entropy_with_logits":
        x, t, w, pw = arrays
        return (x, t, w), {"reduction": reduction, "pos_weight": pw, **settings}
    if name == "gaussian_nll_loss":
        x, t, v, _ = arrays
        return (x, t, v), {"reduction": reduction, **settings}
    if name == "poisson_nll_loss":
        return tuple(arrays[:2]), {"reduction": reduction, **settings}
    return tuple(arrays[:3]), {"reduction": reduction, **settings}


@torch.library.custom_op("nllkit::loss_and_grad", mutates_args=())
def loss_and_grad(
    name: str,
    reduction: str,
    ints: list[int],
    floats: list[float],
    a0: torch.Tensor,
    a1: torch.Tensor,
    a2: torch.Tensor | None,
    a3: torch.Tensor | None,
    need: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, g0, g1, g2)``: the loss and, for each ``need[i]``, the gradient
    of a unit cotangent (ones for ``reduction='none'``) with respect to
    argument ``i``; an empty placeholder where not needed."""
    fn, settings = _numpy_call(name, ints, floats)
    tensors = [a0, a1, a2, a3]
    arrays = [None if t is None else as_numpy(t) for t in tensors]
    args, kwargs = _arguments(name, arrays, settings, reduction)
    grads: list[torch.Tensor] = [a0.new_empty(_NO_GRAD_SHAPE) for _ in range(3)]
    if not any(need):
        return as_tensor(fn(*args, **kwargs)), grads[0], grads[1], grads[2]
    if name == "cross_entropy" and reduction != "none" and need == [True, False, False]:
        # The fused kernel writes the gradient straight into the tensor's memory.
        buffer = gradient_buffer(args[0])
        loss, grad = nllkit.cross_entropy_with_grad(*args, **kwargs, out=buffer)
        return as_tensor(loss), as_tensor(grad), grads[1], grads[2]
    out, pullback = vjp(fn, *args, **kwargs)
    unit = np.ones(np.shape(out), dtype=np.asarray(out).dtype)
    for i, g in enumerate(pullback(unit)):
        if i < 3 and need[i]:
            grads[i] = as_tensor(g)
    return as_tensor(out), grads[0], grads[1], grads[2]


def loss_shape(name: str, reduction: str, arrays: Sequence[torch.Tensor | None]) -> tuple[int, ...]:
    """The loss's shape, from the shapes alone (for the fake implementation)."""
    if reduction != "none":
        return ()
    x = arrays[0]
    assert x is not None
    if name in ("cross_entropy", "nll_loss"):
        return tuple(x.shape[:1]) + tuple(x.shape[2:]) if x.ndim >= 2 else ()
    return tuple(torch.broadcast_shapes(*(a.shape for a in arrays if a is not None)))


def loss_dtype(name: str, arrays: Sequence[torch.Tensor | None]) -> torch.dtype:
    """The loss's dtype: the input's for class indices, else the promotion of
    the floating arguments (as nllkit and torch both do)."""
    x, t = arrays[0], arrays[1]
    assert x is not None and t is not None
    if name == "nll_loss" or (name == "cross_entropy" and not t.is_floating_point()):
        return x.dtype
    dtype = x.dtype
    for a in arrays[1:]:
        if a is not None and a.is_floating_point():
            dtype = torch.promote_types(dtype, a.dtype)
    return dtype


@loss_and_grad.register_fake
def _(name, reduction, ints, floats, a0, a1, a2, a3, need):  # type: ignore[no-untyped-def]
    arrays = [a0, a1, a2, a3]
    loss = a0.new_empty(loss_shape(name, reduction, arrays), dtype=loss_dtype(name, arrays))
    grads = [torch.empty_like(arrays[i]) if need[i] else a0.new_empty(_NO_GRAD_SHAPE) for i in range(3)]  # type: ignore[arg-type]
    return loss, *grads


def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
    name, reduction, _, _, a0, _, _, _, need = inputs
    ctx.need = need
    # The gradient outputs are results, not functions of the inputs to
    # differentiate: no zero cotangents the size of the logits for them.
    ctx.set_materialize_grads(False)
    # With reduction='none' a class-axis loss has one cotangent per row: it
    # scales the whole row of the saved gradient (broadcast over the classes).
    ctx.row_axis = reduction == "none" and name in ("cross_entropy", "nll_loss") and a0.ndim >= 2
    # Traced (dynamo, or AOTAutograd on fake/functional tensor subclasses):
    # the graph needs the gradients as proper saved tensors.
    ctx.compiled = torch.compiler.is_compiling() or any(type(t) is not torch.Tensor for t in output)
    if ctx.compiled:
        ctx.save_for_backward(*output[1:])
    else:
        # Eager: the gradients are kept as plain (detached, so no reference
        # cycle through this node) attributes that backward hands over and
        # drops. Then nothing else holds them, the gradient is scaled in place
        # and autograd adopts it as ``.grad`` instead of copying it: backward
        # allocates nothing the size of the logits.
        ctx.stash = [g.detach() for g in output[1:]]


def _keep_graph() -> bool:
    """Whether the running backward keeps the graph (``retain_graph=True``): the
    test AOTAutograd makes for the same purpose; assumed true if unavailable."""
    probe = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return True if probe is None else bool(probe())


def _backward(ctx: Any, grad_loss: torch.Tensor | None, *_: Any) -> tuple:
    if grad_loss is None:  # only the gradient outputs were used: nothing flows back
        return (None,) * 9
    g = grad_loss.unsqueeze(1) if ctx.row_axis else grad_loss
    if ctx.compiled or _keep_graph():
        # The gradients may be asked for again (retain_graph, gradcheck): keep them intact.
        saved = ctx.saved_tensors if ctx.compiled else ctx.stash
        grads = [saved[i] * g if ctx.need[i] else None for i in range(3)]
    else:
        saved, ctx.stash = ctx.stash, None
        unit = g.numel() == 1 and bool(g.reshape(()) == 1)
        grads = [(saved[i] if unit else saved[i].mul_(g)) if ctx.need[i] else None for i in range(3)]
        del saved
    return None, None, None, None, *grads, None, None


loss_and_grad.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("nllkit::softmax", mutates_args=())
def softmax(input: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    """Softmax (``log=False``) or log-softmax of ``input`` along ``dim``."""
    fn = nllkit.log_softmax if log else nllkit.softmax
    return as_tensor(fn(as_numpy(input), dim))


@softmax.register_fake
def _(input, dim, log):  # type: ignore[no-untyped-def]
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _softmax_setup(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    _, ctx.dim, ctx.log = inputs
    ctx.save_for_backward(output)


def _softmax_backward(ctx: Any, g: torch.Tensor) -> tuple:
    # The Jacobian-vector products of (log-)softmax, from the output alone.
    (y,) = ctx.saved_tensors
    if ctx.log:
        return g - torch.exp(y) * g.sum(ctx.dim, keepdim=True), None, None
    return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None, None


softmax.register_autograd(_softmax_backward, setup_context=_softmax_setup)
