"""The MLP VAE written the way a tutorial writes it: the yardstick vaelab is timed against.

Modelled on pytorch/examples ``vae/main.py`` (the most copied VAE training loop), with the
study's sizes so that it runs exactly the same GEMMs as vaelab's ``vae`` preset:
784-500-20 with tanh, Bernoulli decoder, Adagrad lr 0.02, batch 100, dynamic binarisation.

What makes it "plain", on purpose, because that is what people write:

* a ``DataLoader`` over a ``TensorDataset`` of the grey-level images (shuffle=True),
* a fresh ``torch.bernoulli`` of every batch (per-batch dynamic binarisation),
* sigmoid then ``F.binary_cross_entropy`` on probabilities, closed-form KL,
* the default optimiser step (torch's per-tensor loop on the CPU), ``loss.item()`` per batch.

Run on its own: ``python benchmarks/plain_loop.py --epochs 1`` prints seconds per epoch.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class PlainVAE(nn.Module):
    def __init__(self, d: int = 784, h: int = 500, z: int = 20):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc21 = nn.Linear(h, z)  # mean
        self.fc22 = nn.Linear(h, z)  # log-variance
        self.fc3 = nn.Linear(z, h)
        self.fc4 = nn.Linear(h, d)

    def encode(self, x):
        h1 = torch.tanh(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = torch.tanh(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    # Reconstruction + KL divergence losses summed over all elements and batch
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    # Appendix B of Kingma & Welling 2014
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def build(train_x: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 100, seed: int = 1):
    """-> (model, loader, optimizer) over grey-level images ``train_x`` (N, 784) in [0, 1]."""
    torch.manual_seed(seed)
    model = PlainVAE().to(device)
    loader = DataLoader(TensorDataset(train_x), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.02)
    return model, loader, optimizer


def train_epoch(model, loader, optimizer, device) -> float:
    """One epoch; returns the mean negative ELBO per image."""
    model.train()
    train_loss = 0.0
    for (data,) in loader:
        data = torch.bernoulli(data.to(device))  # dynamic binarisation, per batch
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar) / data.shape[0]
        loss.backward()
        train_loss += loss.item() * data.shape[0]
        optimizer.step()
    return train_loss / len(loader.dataset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default=None, help="folder holding mnist.pkl.gz (default: vaelab's search)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from vaelab.config import DataConfig
    from vaelab.data import load_dataset

    ds = load_dataset(DataConfig(), args.data)
    device = torch.device(args.device)
    model, loader, opt = build(ds.train.x, device)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        loss = train_epoch(model, loader, opt, device)
        print(f"epoch {epoch + 1}: -ELBO {loss:.2f}  {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
