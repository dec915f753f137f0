"""One training step captured as a CUDA graph (``train.cuda_graph``).

On a GPU, vaelab's models are small: a step of the study's MLP VAE is ~100 kernels of a few
microseconds each, so the host's launch overhead, not the GPU, sets the pace, and several
runs sharing one GPU slow each other down.  A CUDA graph records the step's forward and
backward once and replays it with a single launch.

What is captured: the loss, its batch sums and the backward pass, reading the batch from a
static input buffer and writing the gradients into the parameters' ``.grad`` tensors (which
the capture allocates and every replay overwrites: never set them to None afterwards).  The
optimiser steps eagerly after each replay, so learning-rate changes and checkpoints work as
without a graph.  Random draws (reparameterisation, input noise) come from the default CUDA
generator: a replay draws from the generator's current seed and offset and advances it
exactly as the eager kernels would, so per-epoch seeding still fixes every draw.
"""

from __future__ import annotations

from typing import Callable

import torch

WARMUP_STEPS = 3  # on a side stream before capturing, as torch's CUDA-graph notes ask


class GraphedStep:
    """``step(x, y) -> (loss, sums)`` replaying a captured forward + backward.

    ``terms(model, objective, x, y) -> (loss, objective_sum, elbo_sum)`` is the step's
    function; ``x``/``y`` a full batch, whose shape every later call must have (a shorter
    last batch goes through the eager step instead)."""

    def __init__(self, terms: Callable, model: torch.nn.Module, objective, x: torch.Tensor,
                 y: torch.Tensor | None):
        self.model = model
        self.static_x = x.detach().clone()
        self.static_y = None if y is None else y.detach().clone()
        # The warm-up and capture draw random numbers and run batch-norm updates: keep the
        # caller's RNG state and the model's buffers as they were.
        rng = torch.cuda.get_rng_state(x.device)
        buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                model.zero_grad(set_to_none=True)
                loss, _, _ = terms(model, objective, self.static_x, self.static_y)
                loss.backward()
            # free the warm-up's autograd graph, so the capture makes its own gradient
            # accumulators on its own stream (torch warned of a stream mismatch otherwise)
            del loss
        torch.cuda.current_stream(x.device).wait_stream(side)
        model.zero_grad(set_to_none=True)  # backward in the capture allocates .grad in the graph's pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss, obj_sum, elbo_sum = terms(model, objective, self.static_x, self.static_y)
            self.loss.backward()
            self.sums = torch.stack([obj_sum.detach(), elbo_sum.detach()])
        torch.cuda.synchronize(x.device)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        torch.cuda.set_rng_state(rng, x.device)
        self.batch = x.shape[0]

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        self.static_x.copy_(x)
        if self.static_y is not None:
            self.static_y.copy_(y)
        self.graph.replay()
        return self.loss, self.sums
