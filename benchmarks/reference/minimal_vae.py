#!/usr/bin/env python
"""Independent minimal reference VAEs (torch, numpy, scipy, stdlib only; never imports vaelab).

Models: mlp (Bernoulli VAE), hvae (two stochastic layers, Burda et al. 2015 appendix),
conv (Bernoulli conv VAE), frey (Gaussian VAE on Frey Faces, Kingma & Welling 2014).
Prints one JSON line: test ELBO and importance-sampled log p(x) (nats, mean over test
images, higher is better) with standard errors, and timings.
"""
import argparse, gzip, json, math, pickle, sys, time

import numpy as np
import scipy.io
import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST = '/work/shared/data/mnist.pkl.gz'
FREY = '/work/shared/data/frey_rawface.mat'
TEST_BINARIZE_SEED = 0   # fixed generator seed for the one-off binarisation of the test set
FREY_SPLIT_SEED = 0      # torch.Generator seed of the fixed Frey permutation
LOG2PI = math.log(2 * math.pi)


def _sum(t):
    """Sum over the last dim; in float64 when gradients are off (evaluation)."""
    return t.sum(-1) if torch.is_grad_enabled() else t.double().sum(-1)


def log_normal(x, mu, logvar):
    return _sum(-0.5 * (LOG2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)))


def log_std_normal(z):
    return _sum(-0.5 * (LOG2PI + z ** 2))


def log_bernoulli(x, logits):
    return _sum(-F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction='none'))


def kl_std_normal(mu, logvar):
    return _sum(0.5 * (mu ** 2 + torch.exp(logvar) - 1.0 - logvar))


def mlp(sizes, act):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def glorot_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def logit_mean(x):
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    return torch.log(p) - torch.log1p(-p)


class GaussVAE(nn.Module):
    """One Gaussian latent layer, prior N(0, I); subclasses give encode() and log_px()."""

    def sample(self, mu, logvar, k):
        eps = torch.randn((k,) + mu.shape)
        return mu + torch.exp(0.5 * logvar) * eps                    # [k, B, Z]

    def elbo(self, x):
        """One-sample reconstruction term, analytic KL. Shape [B]."""
        mu, logvar = self.encode(x)
        z = self.sample(mu, logvar, 1)
        return self.log_px(x, z)[0] - kl_std_normal(mu, logvar)

    def log_w(self, x, k):
        """log p(x, z) - log q(z|x) for k samples z ~ q. Shape [k, B]."""
        mu, logvar = self.encode(x)
        z = self.sample(mu, logvar, k)
        return self.log_px(x, z) + log_std_normal(z) - log_normal(z, mu, logvar)


class MLPVAE(GaussVAE):
    def __init__(self, hidden, latent, act, x_mean, dim=784):
        super().__init__()
        self.enc = mlp([dim] + hidden + [2 * latent], act)
        self.dec = mlp([latent] + hidden[::-1] + [dim], act)
        glorot_init(self)
        with torch.no_grad():
            self.dec[-1].bias.copy_(logit_mean(x_mean))

    def encode(self, x):
        return self.enc(x).chunk(2, -1)

    def log_px(self, x, z):
        return log_bernoulli(x, self.dec(z))


class CondMLPVAE(MLPVAE):
    """Conditional VAE (Sohn et al. 2015): the one-hot label y is concatenated to the encoder's
    input and to the decoder's z; the prior N(0, I) does not see y, so the bound is on
    log p(x | y). Rows carry [x, y] (784 + 10 columns), so the training loop is unchanged."""

    def __init__(self, hidden, latent, act, x_mean, classes=10, dim=784):
        super().__init__(hidden, latent, act, x_mean[:, :dim], dim)
        self.dim = dim
        self.enc = mlp([dim + classes] + hidden + [2 * latent], act)
        self.dec = mlp([latent + classes] + hidden[::-1] + [dim], act)
        glorot_init(self)
        with torch.no_grad():
            self.dec[-1].bias.copy_(logit_mean(x_mean[:, :dim]))

    def log_px(self, xy, z):
        x, y = xy[..., :self.dim], xy[..., self.dim:]
        return log_bernoulli(x, self.dec(torch.cat([z, y.expand(z.shape[:-1] + y.shape[-1:])], -1)))


class ConvVAE(GaussVAE):
    def __init__(self, latent, x_mean):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2)
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.BatchNorm2d(32), lrelu(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), lrelu(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 2 * latent))
        self.dec = nn.Sequential(
            nn.Linear(latent, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1, bias=False), nn.Flatten())
        glorot_init(self)
        self.pixel_bias = nn.Parameter(logit_mean(x_mean))

    def encode(self, x):
        return self.enc(x.view(-1, 1, 28, 28)).chunk(2, -1)

    def log_px(self, x, z):
        logits = self.dec(z.reshape(-1, z.shape[-1])) + self.pixel_bias
        return log_bernoulli(x, logits.view(z.shape[:-1] + (784,)))


class FreyVAE(GaussVAE):
    def __init__(self, latent, x_mean, hidden=200, dim=560):
        super().__init__()
        self.enc = mlp([dim, hidden, 2 * latent], nn.Tanh)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh())
        self.dec_mean = nn.Linear(hidden, dim)
        self.dec_std = nn.Linear(hidden, dim)
        glorot_init(self)
        with torch.no_grad():
            self.dec_mean.bias.copy_(logit_mean(x_mean))           # std bias stays 0

    def encode(self, x):
        return self.enc(x).chunk(2, -1)

    def log_px(self, x, z):
        h = self.dec(z)
        mean = torch.sigmoid(self.dec_mean(h))
        std = 0.01 + F.softplus(self.dec_std(h))
        return _sum(-0.5 * LOG2PI - torch.log(std) - 0.5 * ((x - mean) / std) ** 2)


class HVAE(nn.Module):
    """x -> z1 (100) -> z2 (50); p(z2) N(0,I), p(z1|z2), p(x|z1) Bernoulli. All tanh MLPs."""

    def __init__(self, x_mean):
        super().__init__()
        self.q1 = mlp([784, 200, 200, 200], nn.Tanh)   # -> (mu, logvar) of z1
        self.q2 = mlp([100, 100, 100, 100], nn.Tanh)   # -> (mu, logvar) of z2
        self.p1 = mlp([50, 100, 100, 200], nn.Tanh)    # -> (mu, logvar) of z1
        self.px = mlp([100, 200, 200, 784], nn.Tanh)   # -> logits of x
        glorot_init(self)
        with torch.no_grad():
            self.px[-1].bias.copy_(logit_mean(x_mean))

    def log_w(self, x, k):
        mu1, lv1 = self.q1(x).chunk(2, -1)
        z1 = mu1 + torch.exp(0.5 * lv1) * torch.randn((k,) + mu1.shape)
        mu2, lv2 = self.q2(z1).chunk(2, -1)
        z2 = mu2 + torch.exp(0.5 * lv2) * torch.randn_like(mu2)
        pmu1, plv1 = self.p1(z2).chunk(2, -1)
        log_p = log_bernoulli(x, self.px(z1)) + log_normal(z1, pmu1, plv1) + log_std_normal(z2)
        log_q = log_normal(z1, mu1, lv1) + log_normal(z2, mu2, lv2)
        return log_p - log_q

    def elbo(self, x):
        return self.log_w(x, 1)[0]


def load_data(args):
    """Returns (train grey levels or fixed train data, test data, dim); test is already final."""
    if args.model == 'frey':
        ff = scipy.io.loadmat(FREY)['ff']                             # 560 x 1965 uint8
        x = torch.from_numpy(ff.T.reshape(-1, 560).astype(np.float32) / 255.0)
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(FREY_SPLIT_SEED))
        return x[perm[:1769]], x[perm[1769:]]
    with gzip.open(MNIST) as f:
        (trx, try_), _, (tex, tey) = pickle.load(f, encoding='latin1')
    trx, tex = torch.from_numpy(trx), torch.from_numpy(tex)
    if args.binarize == 'seed-paper':
        trx, tex = (trx > 0).float(), (tex > 0).float()
    else:
        g = torch.Generator().manual_seed(TEST_BINARIZE_SEED)
        tex = torch.bernoulli(tex, generator=g)
    if args.cond:   # one-hot labels as 10 extra 0/1 columns (a Bernoulli draw leaves them as they are)
        trx = torch.cat([trx, F.one_hot(torch.from_numpy(try_).long(), 10).float()], 1)
        tex = torch.cat([tex, F.one_hot(torch.from_numpy(tey).long(), 10).float()], 1)
    return trx, tex


def build_model(args, x_mean):
    if args.model == 'mlp':
        act = {'tanh': nn.Tanh, 'relu': nn.ReLU}[args.act]
        if args.cond:
            return CondMLPVAE([int(h) for h in args.hidden.split(',')], args.latent, act, x_mean)
        return MLPVAE([int(h) for h in args.hidden.split(',')], args.latent, act, x_mean)
    if args.model == 'hvae':
        return HVAE(x_mean)
    if args.model == 'conv':
        return ConvVAE(args.latent, x_mean)
    return FreyVAE(args.latent, x_mean)


def loss_fn(model, x, args):
    if args.objective == 'iwae':
        lw = model.log_w(x, args.k_train)
        return -(torch.logsumexp(lw, 0) - math.log(args.k_train)).mean()
    return -model.elbo(x).mean()


@torch.no_grad()
def evaluate(model, x, k, batch=50, max_rows=5000):
    """Test ELBO (1 sample) and IS log p(x) with k samples, per image, float64."""
    model.eval()
    elbos, lls = [], []
    kc = max(1, max_rows // batch)                                    # samples per chunk
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        elbos.append(model.elbo(xb).double())
        lw = torch.cat([model.log_w(xb, min(kc, k - j)).double() for j in range(0, k, kc)], 0)
        lls.append(torch.logsumexp(lw, 0) - math.log(k))
    elbo, ll = torch.cat(elbos).numpy(), torch.cat(lls).numpy()
    se = lambda a: float(a.std(ddof=1) / math.sqrt(len(a)))
    return float(elbo.mean()), se(elbo), float(ll.mean()), se(ll)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--model', choices=['mlp', 'hvae', 'conv', 'frey'], required=True)
    p.add_argument('--hidden', default='200,200')
    p.add_argument('--act', choices=['tanh', 'relu'], default='tanh')
    p.add_argument('--latent', type=int, default=50)
    p.add_argument('--cond', action='store_true',
                   help='mlp only: condition encoder and decoder on the one-hot label (CVAE; bounds log p(x | y))')
    p.add_argument('--objective', choices=['elbo', 'iwae'], default='elbo')
    p.add_argument('--k-train', type=int, default=1)
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--train-limit', type=int, default=0, help='use only the first N training images (0 = all)')
    p.add_argument('--batch-size', type=int, default=100)
    p.add_argument('--optim', choices=['adam', 'adagrad'], default='adam')
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--betas', default='0.9,0.999')
    p.add_argument('--eps', type=float, default=1e-4)
    p.add_argument('--binarize', choices=['dynamic', 'seed-paper'], default='dynamic')
    p.add_argument('--k', type=int, default=200, help='importance samples for the test log-likelihood')
    p.add_argument('--test-limit', type=int, default=2000, help='evaluate on the first N test images (0 = all)')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    if args.cond and args.model != 'mlp':
        p.error('--cond applies to --model mlp only')
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    t0 = time.time()

    train, test = load_data(args)
    if args.train_limit:
        train = train[:args.train_limit]
    if args.test_limit:
        test = test[:args.test_limit]
    dynamic = args.model != 'frey' and args.binarize == 'dynamic'
    model = build_model(args, train)          # output bias from the mean training pixel
    if args.optim == 'adam':
        betas = tuple(float(b) for b in args.betas.split(','))
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=betas, eps=args.eps)
    else:
        opt = torch.optim.Adagrad(model.parameters(), lr=args.lr)

    n = train.shape[0]
    for epoch in range(args.epochs):
        model.train()
        data = torch.bernoulli(train) if dynamic else train
        perm, total = torch.randperm(n), 0.0
        for i in range(0, n, args.batch_size):
            xb = data[perm[i:i + args.batch_size]]
            loss = loss_fn(model, xb, args)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        print(f'epoch {epoch + 1} train loss {total / n:.3f} ({time.time() - t0:.0f}s)',
              file=sys.stderr, flush=True)
    t1 = time.time()

    elbo, elbo_se, ll, ll_se = evaluate(model, test, args.k)
    t2 = time.time()
    print(json.dumps({'args': vars(args), 'n_train': n, 'n_test': test.shape[0],
                      'final_train_loss': total / n, 'test_elbo': elbo, 'test_elbo_se': elbo_se,
                      'is_ll': ll, 'is_ll_se': ll_se, 'train_seconds': round(t1 - t0, 1),
                      'eval_seconds': round(t2 - t1, 1), 'seconds': round(t2 - t0, 1)}), flush=True)


if __name__ == '__main__':
    main()
