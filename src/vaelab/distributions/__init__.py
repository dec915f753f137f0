"""Distributions in log space: the Gaussian posterior, the decoder likelihoods, the priors.

The likelihoods and priors a config names (``model.likelihood``, ``model.prior``) are
listed here: :data:`LIKELIHOODS`, :data:`PRIORS`."""

from ..registry import Registry
from .likelihoods import BernoulliLikelihood, GaussianLikelihood, Likelihood
from .normal import LOG_2PI, DiagonalGaussian, standard_normal_log_prob
from .priors import Prior, StandardNormalPrior
from .vamp import VampPrior

LIKELIHOODS: Registry = Registry("likelihood", {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood},
                                 plugins="likelihood")
PRIORS: Registry = Registry("prior", {"normal": StandardNormalPrior, "vamp": VampPrior}, plugins="prior")

__all__ = [
    "LIKELIHOODS", "PRIORS", "LOG_2PI", "DiagonalGaussian", "standard_normal_log_prob", "Likelihood",
    "BernoulliLikelihood", "GaussianLikelihood", "Prior", "StandardNormalPrior", "VampPrior",
]
