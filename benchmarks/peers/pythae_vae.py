"""Pythae's VAE on binarised MNIST, as its README trains one: the peer side of the
MLP-epoch comparison in BENCHMARKS.md ("Against a peer library").

Runs in its own virtual environment (Pythae is not a vaelab dependency)::

    python3 -m venv /tmp/pythae-venv
    /tmp/pythae-venv/bin/pip install torch==2.13.0 pythae
    /tmp/pythae-venv/bin/python benchmarks/peers/pythae_vae.py --epochs 3 --out /tmp/pythae-run

Same data and budget as ``vaelab train --model vae-tuned --latent 20 --binarize seed-paper``:
the 50,000 MNIST training images binarised as grey > 0, the 10,000 validation images
evaluated after every epoch, batch 100, Adam at 1e-3.  Pythae's default networks for a
784-dimensional input: 784-512-(20, 20) ReLU encoder, 20-512-784 ReLU/sigmoid decoder,
Bernoulli (BCE) reconstruction.  Timing is left to the caller: time the whole command at
two epoch counts and take the difference.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pickle
from pathlib import Path


def load_mnist(path: Path):
    """The deeplearning.net pickle: (train, valid, test), each (images (N, 784) in [0, 1], labels)."""
    with gzip.open(path, "rb") as f:
        train, valid, _test = pickle.load(f, encoding="latin1")
    return train[0], valid[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--out", required=True, help="Pythae's output folder (its final model goes there)")
    ap.add_argument("--data", default=os.environ.get("VAELAB_DATA", "."), help="folder with mnist.pkl.gz")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    train, valid = load_mnist(Path(args.data) / "mnist.pkl.gz")
    train = (train > 0).astype(np.float32).reshape(-1, 1, 28, 28)  # the study's binarisation
    valid = (valid > 0).astype(np.float32).reshape(-1, 1, 28, 28)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"))
    config = BaseTrainerConfig(output_dir=args.out, num_epochs=args.epochs, learning_rate=1e-3,
                               per_device_train_batch_size=100, per_device_eval_batch_size=100,
                               no_cuda=True)
    TrainingPipeline(training_config=config, model=model)(train_data=train, eval_data=valid)


if __name__ == "__main__":
    main()
