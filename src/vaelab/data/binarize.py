"""How grey levels in [0, 1] become {0, 1} pixels for a Bernoulli decoder (``data.binarize``).

Each rule (:data:`BINARIZATIONS`) maps one split's grey images to what the model sees::

    rule(x, split, sample) -> x'      x (N, D) grey levels; split: train | valid | test;
                                      sample(): the split's fixed-seed Bernoulli sample

* ``dynamic``: the training images stay grey and the trainer draws a fresh Bernoulli
  sample of them every epoch (Burda et al. 2015, sec. 5; ``Dataset.dynamic``); the
  validation and test images are one Bernoulli sample each, under the fixed seeds
  :data:`VALID_SEED` and :data:`TEST_SEED`, drawn over the whole split and then cut, so
  that ``test_limit=N`` gives exactly the first N images of the full evaluation set;
* ``threshold``: grey > 0.5;
* ``seed-paper``: grey > 0 (what the study did).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Registry

VALID_SEED, TEST_SEED = 0, 1
SEEDS = {"valid": VALID_SEED, "test": TEST_SEED}


def fixed_sample(x: torch.Tensor, split: str) -> torch.Tensor:
    """One Bernoulli sample of a whole evaluation split under its fixed seed."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(SEEDS[split]))


def _dynamic(x: torch.Tensor, split: str, sample: Callable[[], torch.Tensor]) -> torch.Tensor:
    if split == "train":
        return x.clone()  # grey; the trainer samples it every epoch
    return sample()[: len(x)].clone()


BINARIZATIONS: Registry = Registry("binarisation", {
    "dynamic": _dynamic,
    "threshold": lambda x, split, sample: (x > 0.5).float(),
    "seed-paper": lambda x, split, sample: (x > 0).float(),
})
DYNAMIC = "dynamic"  # the rule whose training images the trainer binarises afresh each epoch


def binarize_dynamic(x: torch.Tensor, generator: torch.Generator | None = None,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """A fresh Bernoulli sample of grey levels ``x``: each pixel is 1 with probability x.

    Drawn anew every epoch this is the dynamic binarisation of Burda et al. (2015, sec. 5),
    which regularises far better than one fixed binary copy of the training set.  ``out``
    (x's shape, float) receives the sample: the same draws, without a new allocation.
    """
    return torch.bernoulli(x.float(), generator=generator, out=out)
