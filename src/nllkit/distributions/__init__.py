"""Distribution families whose negative log-likelihoods :func:`nllkit.fit` minimizes."""

from nllkit.distributions._family import Domain, Family, Sample, Support
from nllkit.distributions._normal import normal

__all__ = ["Domain", "Family", "Sample", "Support", "normal"]
