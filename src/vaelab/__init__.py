"""vaelab: train, evaluate and compare variational autoencoders with honest numbers."""

__version__ = "0.1.0"
