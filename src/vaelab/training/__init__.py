"""Training: the loop (open, build, fit), optimisers and schedules, TensorBoard events.

Run directories and checkpoints are :mod:`vaelab.runs`'s; devices are :mod:`vaelab.devices`'s."""

from .loop import Trainer, train_run

__all__ = ["Trainer", "train_run"]
