"""nllkit: the negative log-likelihood, computed, differentiated and fitted.

The losses follow PyTorch 2.13's definitions exactly and take NumPy,
array-api-strict, PyTorch, JAX and CuPy arrays; :func:`value_and_grad` and
:func:`vjp` differentiate them with analytic rules.
"""

from nllkit._autodiff import value_and_grad, vjp
from nllkit._kernels import fused_kernels
from nllkit._kernels._threads import get_num_threads, set_num_threads
from nllkit.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_grad,
    gaussian_nll_loss,
    kl_div,
    linear_cross_entropy,
    log_softmax,
    logsumexp,
    nll_loss,
    poisson_nll_loss,
    softmax,
)
from nllkit.modules import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    KLDivLoss,
    LogSoftmax,
    NLLLoss,
    PoissonNLLLoss,
    Softmax,
)

__version__ = "0.1.0"

# Fitting pulls in scipy.stats (~0.5 s): imported on first use, so the losses and
# the command line start fast.
_LAZY = {"Fit": "nllkit.fitting", "compare": "nllkit.fitting", "fit": "nllkit.fitting"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nllkit' has no attribute {name!r}")


__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Fit",
    "GaussianNLLLoss",
    "KLDivLoss",
    "LogSoftmax",
    "NLLLoss",
    "PoissonNLLLoss",
    "Softmax",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "compare",
    "cross_entropy",
    "cross_entropy_with_grad",
    "fit",
    "fused_kernels",
    "gaussian_nll_loss",
    "get_num_threads",
    "kl_div",
    "linear_cross_entropy",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "poisson_nll_loss",
    "set_num_threads",
    "softmax",
    "value_and_grad",
    "vjp",
]
