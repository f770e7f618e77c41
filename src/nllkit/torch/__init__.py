"""PyTorch front end of nllkit (imported explicitly: ``import nllkit.torch``;
``import nllkit`` alone never imports torch).

Drop-in replacements for torch.nn.functional's likelihood losses and their
modules, running nllkit's fused kernels on CPU tensors' memory (see
:mod:`nllkit.torch._functional`), and a pure-torch fallback elsewhere;
:func:`linear_cross_entropy`, which never holds the logits; and the
vocabulary-parallel cross-entropies over ``torch.distributed``.
"""

from nllkit.torch._functional import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    log_softmax,
    nll_loss,
    poisson_nll_loss,
    pure_torch,
    softmax,
)
from nllkit.torch._modules import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    LogSoftmax,
    NLLLoss,
    PoissonNLLLoss,
    Softmax,
)
from nllkit.torch._ops import empty_cache

# The linear and vocabulary-parallel cross-entropies, imported on first use
# (the latter pulls in torch.distributed).
_LAZY = {
    "linear_cross_entropy": "nllkit.torch._linear",
    "vocab_parallel_cross_entropy": "nllkit.torch._parallel",
    "vocab_parallel_linear_cross_entropy": "nllkit.torch._parallel",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nllkit.torch' has no attribute {name!r}")


__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "LogSoftmax",
    "NLLLoss",
    "PoissonNLLLoss",
    "Softmax",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "empty_cache",
    "gaussian_nll_loss",
    "linear_cross_entropy",
    "log_softmax",
    "nll_loss",
    "poisson_nll_loss",
    "pure_torch",
    "softmax",
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
]
