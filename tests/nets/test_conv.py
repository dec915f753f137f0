"""The study's CNN bodies (appendix A.2): shapes for any image size they support, a clear
error for those they cannot, parameter-major output like the MLP, and conditioning."""

import pytest
import torch

from vaelab.config import ModelConfig
from vaelab.errors import ConfigError
from vaelab.models import VAE, DataInfo
from vaelab.nets.conv import feature_sizes
from vaelab.nets import NETS

CFG = ModelConfig(arch="conv", latent=4)
CONV = NETS.get("conv")


@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 28, 20), (1, 27, 13), (3, 8, 5), (1, 4, 8)])
def test_shapes_for_mnist_frey_and_odd_sizes(shape, batch):
    c, h, w = shape
    enc = CONV.encoder(CFG, shape, 8)
    dec = CONV.decoder(CFG, 4, shape, 2)
    assert enc(torch.rand(batch, c * h * w)).shape == (batch, 8)  # train mode, batch norm on
    assert dec(torch.randn(batch, 4)).shape == (batch, 2 * c * h * w)


def test_mnist_goes_28_14_7():
    assert feature_sizes((1, 28, 28)) == [(28, 28), (14, 14), (7, 7)]
    assert feature_sizes((1, 28, 20)) == [(28, 20), (14, 10), (7, 5)]  # Frey Faces


@pytest.mark.parametrize("shape", [(1, 3, 28), (1, 28, 2), (1, 4, 4), (1, 7, 7)])
def test_too_small_images_are_a_config_error(shape):
    with pytest.raises(ConfigError, match="at least 4x4 pixels"):
        CONV.encoder(CFG, shape, 8)


def test_output_is_grouped_parameter_major():
    # Channel p*C + c of the last transposed conv feeds block p of the output: changing the
    # weights of the second parameter's channels moves only the second half; and the
    # per-pixel output bias is laid out in the same order.
    shape = (2, 8, 8)
    dec = CONV.decoder(CFG, 4, shape, 2).eval()
    z = torch.randn(3, 4)
    before = dec(z)
    d = 2 * 8 * 8
    with torch.no_grad():
        dec.deconv[-1].weight[:, 2:] += 0.5  # channels of parameter 1 (C = 2)
    after = dec(z)
    torch.testing.assert_close(after[:, :d], before[:, :d])
    assert not torch.allclose(after[:, d:], before[:, d:])
    with torch.no_grad():
        dec.output_bias[d:] += 1.0
    torch.testing.assert_close(dec(z)[:, :d], after[:, :d])
    torch.testing.assert_close(dec(z)[:, d:], after[:, d:] + 1.0)


def test_label_reaches_both_nets():
    shape = (1, 8, 8)
    enc = CONV.encoder(CFG, shape, 6, cond_dim=3).eval()
    dec = CONV.decoder(CFG, 4, shape, 1, cond_dim=3).eval()
    x, z = torch.rand(2, 64), torch.randn(2, 4)
    a, b = torch.eye(3)[[0, 0]], torch.eye(3)[[1, 1]]
    assert not torch.allclose(enc(x, a), enc(x, b))
    assert not torch.allclose(dec(z, a), dec(z, b))


def test_conv_vae_log_weights_and_eval_mode_is_deterministic():
    # Batch norm uses running statistics in eval mode: a decoder output then depends on
    # its own row only, not on the rest of the batch.
    torch.manual_seed(0)
    model = VAE(CFG, DataInfo((1, 28, 20), binary=True)).eval()
    x = torch.bernoulli(torch.full((5, 560), 0.3))
    assert model.log_weights(x, 3).log_w.shape == (3, 5)
    z = torch.randn(4, 4)
    torch.testing.assert_close(model.decode(z)[:1], model.decode(z[:1]))
    assert torch.isfinite(model.log_weights(x, 3).log_w).all()


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 28, 20), (1, 27, 13), (3, 8, 5), (1, 4, 8)])
@pytest.mark.parametrize("n_params,cond_dim", [(1, 0), (2, 0), (1, 3)])
def test_inference_form_is_the_eval_mode_decoder(shape, n_params, cond_dim):
    # Batch norm folded into the first transposed conv, the last one as a GEMM plus an
    # overlap-add, rows in blocks: the same function up to float rounding, for every image
    # size the decoder supports (odd sides use output_padding) and more rows than a block.
    torch.manual_seed(0)
    dec = CONV.decoder(CFG, 4, shape, n_params, cond_dim)
    cond = torch.eye(3)[torch.randint(0, 3, (700,))] if cond_dim else None
    with torch.no_grad():
        dec.train()(torch.randn(700, 4), cond)  # running statistics that are not (0, 1)
        bn = dec.deconv[1]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
        dec.output_bias.uniform_(-1.0, 1.0)
    dec.eval()
    fast = dec.for_inference()
    z = torch.randn(2, 350, 4)  # a leading sample dim, 700 rows: a block of 512 and a partial one
    with torch.no_grad():
        want = dec(z, cond[:350] if cond_dim else None)
        got = fast(z, cond[:350] if cond_dim else None)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
