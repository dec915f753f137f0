"""TensorBoard event files of a run, in ``RUN/events/``, so that
``tensorboard --logdir sweeps/`` (or ``runs/``) shows every run the field's usual way.

Per finished epoch (the step is the epoch number, 1-based): ``train/objective``,
``train/elbo``, ``valid/elbo``, ``valid/kl`` (KL(q(z|x) || p(z)) on up to 1000 validation
images), ``lr`` and ``seconds``; prior samples as ``samples`` at the first and the last
epoch and at about :data:`IMAGE_EPOCHS` epochs between.

Optional, like the dependency: events are written only when the ``tensorboard`` package is
installed (``pip install 'vaelab[tensorboard]'``).  They never break training: a writer
that fails warns once and turns itself off.  Every draw runs under a forked RNG, so
writing events leaves the run bit-for-bit what it is without them (exact resume holds).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import first_line
from ..runs.layout import EVENTS as EVENTS_DIR
IMAGE_EPOCHS = 4  # sample images at about this many epochs besides the first and the last
N_IMAGES = 16
KL_IMAGES = 1000
SCALARS = {"train_objective": "train/objective", "train_elbo": "train/elbo", "valid_elbo": "valid/elbo",
           "lr": "lr", "seconds": "seconds"}


def image_epochs(epochs: int) -> set[int]:
    """1, ``epochs`` and about IMAGE_EPOCHS evenly spaced epochs between (1-based)."""
    every = max(1, epochs // IMAGE_EPOCHS)
    return {1, epochs} | set(range(every, epochs + 1, every))


def _warn(err: BaseException) -> None:
    print(f"vaelab: warning: TensorBoard events are not written for this run ({first_line(err)})",
          file=sys.stderr, flush=True)


class EventWriter:
    """A run's TensorBoard writer, or a no-op when tensorboard is absent or failed."""

    def __init__(self, writer: Any = None, epochs: int = 1, image_shape: tuple[int, ...] = (1, 28, 28),
                 num_classes: int = 0):
        self._w = writer
        self.epochs = epochs
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes

    @classmethod
    def open(cls, run_path: Path, start_epoch: int, epochs: int, image_shape: tuple[int, ...],
             num_classes: int = 0) -> "EventWriter":
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional extra is not installed: no events, no warning
            return cls()
        try:
            # purge_step: a run resumed after a crash drops events of epochs it redoes.
            writer = SummaryWriter(str(Path(run_path) / EVENTS_DIR),
                                   purge_step=start_epoch + 1 if start_epoch else None)
        except Exception as err:  # a read-only disk, a broken install: training goes on
            _warn(err)
            return cls()
        return cls(writer, epochs, image_shape, num_classes)

    @property
    def enabled(self) -> bool:
        return self._w is not None

    def epoch(self, row: Mapping[str, Any], model: torch.nn.Module, valid_x: torch.Tensor,
              valid_y: torch.Tensor | None) -> None:
        """Write one finished epoch's row of metrics (and its images, at some epochs)."""
        if self._w is None:
            return
        step = int(row["epoch"])
        try:
            for key, tag in SCALARS.items():
                if isinstance(row.get(key), (int, float)):
                    self._w.add_scalar(tag, float(row[key]), step)
            devices = [valid_x.device] if valid_x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(step)
                was_training = model.training
                model.eval()
                try:
                    self._kl(model, valid_x, valid_y, step)
                    if step in image_epochs(self.epochs):
                        self._images(model, valid_x.device, step)
                finally:
                    model.train(was_training)
            self._w.flush()
        except Exception as err:  # never let logging stop training
            _warn(err)
            self.close()

    def _kl(self, model, valid_x: torch.Tensor, valid_y: torch.Tensor | None, step: int) -> None:
        x = valid_x[:KL_IMAGES]
        y = None if valid_y is None else valid_y[:KL_IMAGES]
        kl = model.log_weights(x, 1, y).kl  # (1, B)
        self._w.add_scalar("valid/kl", float(kl.double().mean()), step)

    def _images(self, model, device: torch.device, step: int) -> None:
        y = None
        if getattr(model, "cond_dim", 0):
            y = torch.arange(N_IMAGES, device=device) % max(1, self.num_classes)
        imgs = model.sample(N_IMAGES, y).float().clamp(0, 1).cpu()  # (N, D)
        self._w.add_images("samples", imgs.reshape(N_IMAGES, *self.image_shape), step, dataformats="NCHW")

    def close(self) -> None:
        if self._w is not None:
            try:
                self._w.close()
            except Exception:
                pass
            self._w = None
