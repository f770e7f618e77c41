"""nllkit: the negative log-likelihood, computed, differentiated and fitted.

The losses follow PyTorch 2.13's definitions exactly and take NumPy,
array-api-strict, PyTorch, JAX and CuPy arrays; :func:`value_and_grad` and
:func:`vjp` differentiate them with analytic rules.
"""

from nllkit._autodiff import value_and_grad, vjp
from nllkit._kernels._threads import get_num_threads, set_num_threads
from nllkit.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_grad,
    gaussian_nll_loss,
    kl_div,
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

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "KLDivLoss",
    "LogSoftmax",
    "NLLLoss",
    "PoissonNLLLoss",
    "Softmax",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "cross_entropy_with_grad",
    "gaussian_nll_loss",
    "get_num_threads",
    "kl_div",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "poisson_nll_loss",
    "set_num_threads",
    "softmax",
    "value_and_grad",
    "vjp",
]
