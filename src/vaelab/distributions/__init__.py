"""Distributions in log space: the Gaussian posterior, the decoder likelihoods, the priors."""

from .likelihoods import BernoulliLikelihood, GaussianLikelihood, Likelihood
from .normal import LOG_2PI, DiagonalGaussian, standard_normal_log_prob
from .priors import Prior, StandardNormalPrior
from .vamp import VampPrior

__all__ = [
    "LOG_2PI", "DiagonalGaussian", "standard_normal_log_prob", "Likelihood",
    "BernoulliLikelihood", "GaussianLikelihood", "Prior", "StandardNormalPrior", "VampPrior",
]
