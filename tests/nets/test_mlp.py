"""The MLP bodies: shapes for batch sizes 1 and 100, conditioning, parameter-major output."""

import pytest
import torch

from vaelab.config import ModelConfig
from vaelab.nets import NETS

SHAPE = (1, 28, 28)
D = 28 * 28


@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("cond", [0, 10])
def test_encoder_and_decoder_shapes(batch, cond):
    cfg = ModelConfig(hidden=(64, 32))
    arch = NETS.get("mlp")
    enc = arch.encoder(cfg, SHAPE, 2 * 5, cond)
    dec = arch.decoder(cfg, 5, SHAPE, 2, cond)
    c = torch.eye(10)[torch.randint(10, (batch,))] if cond else None
    assert enc(torch.rand(batch, D), c).shape == (batch, 10)
    assert dec(torch.randn(batch, 5), c).shape == (batch, 2 * D)


def test_decoder_mirrors_encoder_hidden_sizes():
    cfg = ModelConfig(hidden=(64, 32))
    dec = NETS.get("mlp").decoder(cfg, 5, SHAPE, 1)
    widths = [m.out_features for m in dec.net if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 64, D]


def test_condition_broadcasts_over_sample_dims():
    # (k, B, Z) latents with a (B, C) label: every sample of image b sees label b.
    mlp = NETS.get("mlp").decoder(ModelConfig(hidden=(16,)), 3, (1, 2, 2), 1, cond_dim=4)
    z = torch.randn(5, 2, 3)
    c = torch.eye(4)[[1, 3]]
    out = mlp(z, c)
    assert out.shape == (5, 2, 4)
    torch.testing.assert_close(out[:, 1], mlp(z[:, 1], c[1:2].expand(5, 4)))


def test_label_changes_the_output():
    dec = NETS.get("mlp").decoder(ModelConfig(hidden=(16,)), 3, (1, 2, 2), 1, cond_dim=4)
    z = torch.randn(1, 3)
    assert not torch.allclose(dec(z, torch.eye(4)[[0]]), dec(z, torch.eye(4)[[2]]))
