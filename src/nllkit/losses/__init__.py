"""The NLL-family losses, with PyTorch's semantics, on any array namespace."""

from nllkit.losses._binary import binary_cross_entropy, binary_cross_entropy_with_logits
from nllkit.losses._classification import cross_entropy, nll_loss
from nllkit.losses._gaussian import gaussian_nll_loss
from nllkit.losses._kl import kl_div
from nllkit.losses._linear import linear_cross_entropy
from nllkit.losses._poisson import poisson_nll_loss
from nllkit.losses._softmax import log_softmax, logsumexp, softmax
from nllkit.losses._with_grad import cross_entropy_with_grad

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "cross_entropy_with_grad",
    "gaussian_nll_loss",
    "kl_div",
    "linear_cross_entropy",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "poisson_nll_loss",
    "softmax",
]
