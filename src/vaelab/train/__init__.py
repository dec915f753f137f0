"""Training: the loop, optimisers, checkpoints and the run directory."""

from .checkpoint import TrainState, load_latest, save_checkpoint
from .loop import Trainer, resolve_device, train_run
from .rundir import RunDir

__all__ = ["TrainState", "Trainer", "RunDir", "load_latest", "resolve_device", "save_checkpoint", "train_run"]
