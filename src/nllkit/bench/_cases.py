"""What is measured: the workloads (loss, shape, dtype), their cases and each case's implementations.

A *workload* is one input shape and dtype; opening it allocates the inputs
once (plus the peers' views of them and the reused buffers) and closing it
frees them, so only one shape's data is alive at a time. A *case* is one loss
and pass (``'fwd'`` or ``'fwd+bwd'``) on a workload, and holds its
*implementations*: zero-argument calls timed against each other.

Every case has two reference rows: ``nllkit`` (the ratio column's
denominator) and a *limit*, the memory traffic an ideal fused kernel cannot
avoid:

* ``read`` (forward): one read of the inputs, ``logits.sum()``; for
  bfloat16, ``logits.view(np.uint16).max()``, because ml_dtypes' bfloat16
  ``sum`` is a scalar loop many times slower than memory.
* ``copy`` (forward + backward): ``np.copyto`` of each differentiated input
  into a reused buffer (one read and one write, as the gradient needs), plus
  one read (``sum``) of every other floating input.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

import nllkit
from nllkit.bench._env import Environment

__all__ = ["Case", "Implementation", "Workload", "plan"]

#: The implementation every ratio is taken against.
NLLKIT = "nllkit"

#: Cross-entropy shapes (N, C): large vocabularies that fit a 24 GiB machine, and small C.
CROSS_ENTROPY_SHAPES = ((4096, 32000), (2048, 128256), (1024, 256000), (65536, 10), (65536, 1000))
QUICK_CROSS_ENTROPY_SHAPES = ((512, 32000), (8192, 10))
ELEMENTWISE_SIZE = 16 * 2**20
QUICK_ELEMENTWISE_SIZE = 2**20

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Implementation:
    """One timed call.

    Attributes
    ----------
    name : str
        ``'nllkit'``, ``'torch'``, ``'jax jit'``, ``'numpy naive'``, ``'read'``, ...
    call : callable
        Takes no arguments; returns the result (dropped after the clock stops).
    prepare : callable or None
        Run before every call, outside the timed region (refreshing a
        scratch copy, clearing a stale gradient).
    """

    name: str
    call: Callable[[], object]
    prepare: Callable[[], object] | None = None


@dataclass
class Case:
    """One loss and pass on one workload, with its implementations.

    Attributes
    ----------
    loss : str
        The nllkit function's name, such as ``'cross_entropy'``.
    mode : {'fwd', 'fwd+bwd'}
        Forward only, or the loss and its gradient.
    shape : tuple of int
        The input's shape.
    dtype : str
        ``'float32'`` or ``'bfloat16'``.
    limit : {'read', 'copy'}
        The name of the limit implementation.
    implementations : list of Implementation
        In the order they are reported.
    skipped : list of (str, str)
        Implementations that cannot run here, with the reason.
    """

    loss: str
    mode: str
    shape: tuple[int, ...]
    dtype: str
    limit: str
    implementations: list[Implementation] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A one-line label, such as ``'cross_entropy fwd 4096x32000 float32'``."""
        return f"{self.loss} {self.mode} {format_shape(self.shape)} {self.dtype}"

    def add(self, name: str, call: Callable[[], object], prepare: Callable[[], object] | None = None) -> None:
        """Append an implementation."""
        self.implementations.append(Implementation(name, call, prepare))

    def skip(self, name: str, reason: str) -> None:
        """Record an implementation that cannot run here."""
        self.skipped.append((name, reason))


def format_shape(shape: tuple[int, ...]) -> str:
    """``'4096x32000'``; a 1-D size that is a multiple of 2**20 as ``'16M'``."""
    if len(shape) == 1 and shape[0] >= 2**20 and shape[0] % 2**20 == 0:
        return f"{shape[0] // 2**20}M"
    return "x".join(str(n) for n in shape)


Builder = Callable[["Workload", Environment, np.random.Generator], list[Case]]


@dataclass(frozen=True)
class Workload:
    """One loss family on one input shape and dtype.

    Attributes
    ----------
    loss : str
        ``'cross_entropy'``, ``'poisson_nll_loss'`` or ``'gaussian_nll_loss'``.
    shape : tuple of int
        The input's shape.
    dtype : str
        ``'float32'`` or ``'bfloat16'``.
    modes : tuple of str
        The cases it opens, in order.
    """

    loss: str
    shape: tuple[int, ...]
    dtype: str
    modes: tuple[str, ...]

    @property
    def label(self) -> str:
        """``'cross_entropy 4096x32000 float32'``."""
        return f"{self.loss} {format_shape(self.shape)} {self.dtype}"

    @contextlib.contextmanager
    def open(self, env: Environment, seed: int = 0) -> Iterator[list[Case]]:
        """Allocate the inputs and yield the cases; free everything on exit.

        Parameters
        ----------
        env : Environment
            The peer libraries to build implementations for.
        seed : int
            Seeds the random inputs.

        Yields
        ------
        list of Case
            Valid inside the ``with`` block only: on exit their
            implementations are cleared, which frees the inputs even if the
            caller still holds the list.
        """
        cases = _BUILDERS[self.loss](self, env, np.random.default_rng(seed))
        try:
            yield cases
        finally:
            for case in cases:
                case.implementations.clear()
            del cases
            gc.collect()


def plan(quick: bool, env: Environment) -> list[Workload]:
    """The workloads of a run, in order.

    Parameters
    ----------
    quick : bool
        Small shapes (a smoke test) instead of the full ones.
    env : Environment
        bfloat16 workloads are planned only when ml_dtypes is installed.

    Returns
    -------
    list of Workload
    """
    dtypes = ("float32", "bfloat16") if env.ml_dtypes is not None else ("float32",)
    shapes = QUICK_CROSS_ENTROPY_SHAPES if quick else CROSS_ENTROPY_SHAPES
    size = QUICK_ELEMENTWISE_SIZE if quick else ELEMENTWISE_SIZE
    workloads = [Workload("cross_entropy", s, d, ("fwd", "fwd+bwd")) for s in shapes for d in dtypes]
    elementwise = ("poisson_nll_loss", "gaussian_nll_loss")
    workloads += [Workload(loss, (size,), "float32", ("fwd+bwd",)) for loss in elementwise]
    return workloads


# --- conversions -----------------------------------------------------------------


def _numpy_dtype(name: str, env: Environment) -> Any:
    if name == "bfloat16":
        if env.ml_dtypes is None:
            raise ValueError("bfloat16 needs ml_dtypes")
        return env.ml_dtypes.bfloat16
    return np.dtype(name)


def _is_bfloat16(a: Array) -> bool:
    return a.dtype.name == "bfloat16"


def _torch_tensor(env: Environment, a: Array) -> Any:
    """A tensor sharing `a`'s memory (bfloat16 through a same-width integer view)."""
    torch = env.torch
    assert torch is not None
    if _is_bfloat16(a):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _read(a: Array) -> Any:
    """One read of `a`: the ``read`` limit."""
    if _is_bfloat16(a):
        return a.view(np.uint16).max()
    return a.sum()


def _torch_grad_call(loss: Callable[[], Any], leaves: list[Any]) -> tuple[Callable[[], object], Callable[[], object]]:
    """A ``(call, prepare)`` pair for torch forward + ``backward()``.

    `prepare` drops the previous gradients (untimed), so each call allocates
    fresh ones as a training step with ``zero_grad(set_to_none=True)`` does.
    """

    def prepare() -> None:
        for leaf in leaves:
            leaf.grad = None

    def call() -> object:
        value = loss()
        value.backward()
        return value

    return call, prepare


# --- cross-entropy ---------------------------------------------------------------


def _naive_log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def naive_cross_entropy(x: Array, y: Array) -> Any:
    """Mean cross-entropy the textbook way: ``log_softmax``, then pick each row's target.

    Parameters
    ----------
    x : numpy.ndarray
        Logits, (N, C).
    y : numpy.ndarray
        Class indices, (N,).

    Returns
    -------
    numpy scalar
    """
    logp = _naive_log_softmax(x)
    return -logp[np.arange(x.shape[0]), y].mean()


def naive_cross_entropy_with_grad(x: Array, y: Array) -> tuple[Any, Array]:
    """The textbook loss and its analytic gradient, ``(softmax(x) - onehot(y)) / N``.

    Parameters
    ----------
    x : numpy.ndarray
        Logits, (N, C).
    y : numpy.ndarray
        Class indices, (N,).

    Returns
    -------
    loss : numpy scalar
    grad : numpy.ndarray
        (N, C), the dtype of `x`.
    """
    n = x.shape[0]
    rows = np.arange(n)
    logp = _naive_log_softmax(x)
    loss = -logp[rows, y].mean()
    grad = np.exp(logp)
    grad[rows, y] -= 1
    grad /= n
    return loss, grad


def _jax_cross_entropy(jax: Any) -> Callable[[Any, Any], Any]:
    jnp = jax.numpy

    def loss(x: Any, y: Any) -> Any:
        picked = jnp.take_along_axis(x, y[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(x, axis=1) - picked)

    return loss


def _cross_entropy(workload: Workload, env: Environment, rng: np.random.Generator) -> list[Case]:
    n, c = workload.shape
    x = rng.standard_normal((n, c), dtype=np.float32)
    if workload.dtype != "float32":
        x = x.astype(_numpy_dtype(workload.dtype, env))
    y = rng.integers(0, c, size=n, dtype=np.int64)
    fwd = Case("cross_entropy", "fwd", workload.shape, workload.dtype, limit="read")
    both = Case("cross_entropy", "fwd+bwd", workload.shape, workload.dtype, limit="copy")

    fwd.add(NLLKIT, lambda: nllkit.cross_entropy(x, y))
    value_and_grad = nllkit.value_and_grad(nllkit.cross_entropy)
    both.add(NLLKIT, lambda: value_and_grad(x, y))
    with_grad = getattr(nllkit, "cross_entropy_with_grad", None)
    if with_grad is None:
        both.skip("nllkit in-place", "this nllkit has no cross_entropy_with_grad")
    else:
        scratch = np.empty_like(x)
        both.add(
            "nllkit in-place",
            lambda: with_grad(scratch, y, out=scratch),
            prepare=lambda: np.copyto(scratch, x),
        )

    torch = env.torch
    if torch is None:
        for case in (fwd, both):
            case.skip("torch", env.missing.get("torch", "not installed"))
    else:
        functional = torch.nn.functional
        xt, yt = _torch_tensor(env, x), torch.from_numpy(y)
        fwd.add("torch", lambda: functional.cross_entropy(xt, yt))
        xg = _torch_tensor(env, x).requires_grad_(True)
        call, prepare = _torch_grad_call(lambda: functional.cross_entropy(xg, yt), [xg])
        both.add("torch", call, prepare)
        # The drop-in for torch users: the fused kernels behind a torch custom op.
        import nllkit.torch as nllkit_torch

        fwd.add("nllkit.torch", lambda: nllkit_torch.cross_entropy(xt, yt))
        xd = _torch_tensor(env, x).requires_grad_(True)
        call, prepare = _torch_grad_call(lambda: nllkit_torch.cross_entropy(xd, yt), [xd])
        both.add("nllkit.torch", call, prepare)

    jax = env.jax
    if jax is None:
        for case in (fwd, both):
            case.skip("jax jit", env.missing.get("jax", "not installed"))
    else:
        xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(y.astype(np.int32))
        loss = _jax_cross_entropy(jax)
        forward, forward_backward = jax.jit(loss), jax.jit(jax.value_and_grad(loss))
        fwd.add("jax jit", lambda: jax.block_until_ready(forward(xj, yj)))
        both.add("jax jit", lambda: jax.block_until_ready(forward_backward(xj, yj)))

    fwd.add("numpy naive", lambda: naive_cross_entropy(x, y))
    both.add("numpy naive", lambda: naive_cross_entropy_with_grad(x, y))

    fwd.add("read", lambda: _read(x))
    buffer = np.empty_like(x)
    both.add("copy", lambda: np.copyto(buffer, x))
    return [fwd, both]


# --- elementwise NLLs --------------------------------------------------------------


def _poisson(workload: Workload, env: Environment, rng: np.random.Generator) -> list[Case]:
    (n,) = workload.shape
    log_rate = (0.5 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
    counts = rng.poisson(np.exp(log_rate.astype(np.float64))).astype(np.float32)
    case = Case("poisson_nll_loss", "fwd+bwd", workload.shape, workload.dtype, limit="copy")

    value_and_grad = nllkit.value_and_grad(nllkit.poisson_nll_loss)
    case.add(NLLKIT, lambda: value_and_grad(log_rate, counts, log_input=True))
    torch = env.torch
    if torch is None:
        case.skip("torch", env.missing.get("torch", "not installed"))
    else:
        functional = torch.nn.functional
        xg, tt = torch.from_numpy(log_rate).requires_grad_(True), torch.from_numpy(counts)
        call, prepare = _torch_grad_call(lambda: functional.poisson_nll_loss(xg, tt, log_input=True), [xg])
        case.add("torch", call, prepare)

    buffer = np.empty_like(log_rate)

    def copy() -> object:
        np.copyto(buffer, log_rate)
        return counts.sum()

    case.add("copy", copy)
    return [case]


def _gaussian(workload: Workload, env: Environment, rng: np.random.Generator) -> list[Case]:
    (n,) = workload.shape
    mean = rng.standard_normal(n, dtype=np.float32)
    target = mean + rng.standard_normal(n, dtype=np.float32)
    var = rng.uniform(0.5, 2.0, size=n).astype(np.float32)
    case = Case("gaussian_nll_loss", "fwd+bwd", workload.shape, workload.dtype, limit="copy")

    value_and_grad = nllkit.value_and_grad(nllkit.gaussian_nll_loss, argnums=(0, 2))
    case.add(NLLKIT, lambda: value_and_grad(mean, target, var))
    torch = env.torch
    if torch is None:
        case.skip("torch", env.missing.get("torch", "not installed"))
    else:
        functional = torch.nn.functional
        mg, tt = torch.from_numpy(mean).requires_grad_(True), torch.from_numpy(target)
        vg = torch.from_numpy(var).requires_grad_(True)
        call, prepare = _torch_grad_call(lambda: functional.gaussian_nll_loss(mg, tt, vg), [mg, vg])
        case.add("torch", call, prepare)

    mean_buffer, var_buffer = np.empty_like(mean), np.empty_like(var)

    def copy() -> object:
        np.copyto(mean_buffer, mean)
        np.copyto(var_buffer, var)
        return target.sum()

    case.add("copy", copy)
    return [case]


_BUILDERS: dict[str, Builder] = {
    "cross_entropy": _cross_entropy,
    "poisson_nll_loss": _poisson,
    "gaussian_nll_loss": _gaussian,
}
