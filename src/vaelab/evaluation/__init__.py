"""Evaluation: the importance-sampled log-likelihood, the ELBO, active units.

A separate entry point from training (``vaelab eval``), computed the same way for every
model on the clean test set."""

from .likelihood import EvalResult, active_units, evaluate_model, importance_sampled

__all__ = ["EvalResult", "active_units", "evaluate_model", "importance_sampled"]
