"""How a generator's BatchNorm layers normalise when it samples: running averages or the batch's own statistics.

``running`` (PyTorch's ``eval()``): every BatchNorm layer uses its ``running_mean``/``running_var``, so a
sample does not depend on the others in its batch. ``batch``: the layers normalise with the statistics of
the batch being sampled, exactly as in training, which is what the official WGAN-GP generators do at
sample time (tflib's BatchNorm in gan_cifar.py/gan_64x64.py is always called with the training
statistics; Gulrajani et al. 2017, §5.6 and the official code). Either way the running buffers and
``num_batches_tracked`` are left untouched, every other layer (Dropout, …) is in eval mode, and a global
(torchrun) BatchNorm normalises with this process's batch alone, with no collective.

    with sample_batchnorm(generator, "batch"):
        images = generator(z)                      # [N, C, R, R]; the batch's statistics

or ``generate(generator, z, batchnorm="batch")``, the same without gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from wgangp.errors import UserError
from wgangp.models.global_bn import local_batch_statistics

__all__ = ["SAMPLE_BATCHNORM", "SampleBatchNorm", "generate", "sample_batchnorm"]

SampleBatchNorm = Literal["running", "batch"]
SAMPLE_BATCHNORM: tuple[SampleBatchNorm, ...] = ("running", "batch")


@contextlib.contextmanager
def sample_batchnorm(module: nn.Module, mode: SampleBatchNorm) -> Iterator[nn.Module]:
    """Inside: ``module`` in eval mode, its BatchNorm layers on running (``"running"``) or batch statistics.

    ``"batch"``: ``y = γ·(x − μ_B)/√(σ²_B + eps) + β`` with μ_B, σ²_B (biased) of the call's batch, the
    training-mode output of one process, while the buffers stay as they were. On exit every submodule's
    ``training`` flag (and BatchNorm's ``track_running_stats``) is restored. Yields ``module``.

    >>> g = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    >>> with sample_batchnorm(g, "batch"):
    ...     y = g(torch.randn(4, 2))
    >>> g.training, bool(g[1].running_mean.eq(0).all())
    (True, True)
    """
    if mode not in SAMPLE_BATCHNORM:
        raise UserError(f"sample_batchnorm must be one of {', '.join(SAMPLE_BATCHNORM)}; got {mode!r}")
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        if mode == "batch":
            # Training-mode BatchNorm with track_running_stats off normalises by the batch and skips the
            # buffer update (local_batch_statistics also turns the global layers' collectives off).
            with local_batch_statistics(module):
                for m in module.modules():
                    if isinstance(m, _BatchNorm):
                        m.train()
                yield module
        else:
            yield module
    finally:
        for m, training in modes:
            m.training = training


def generate(
    generator: nn.Module, z: Tensor, *inputs: Tensor, batchnorm: SampleBatchNorm = "running"
) -> Tensor:
    """``G(z)`` without gradients, its BatchNorm on ``batchnorm`` statistics (:func:`sample_batchnorm`).

    ``z``: ``[N, latent_dim]`` → the generator's output ``[N, ...]``. With ``"batch"`` a sample depends on
    the rest of its batch, so ``N`` must be at least 2 when the generator has BatchNorm, and chunking a large
    ``N`` changes the outputs (sample the whole eval batch in one call).

    >>> g = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    >>> generate(g, torch.randn(5, 2), batchnorm="batch").mean(0).abs().max().item() < 1e-6
    True
    """
    has_bn = any(isinstance(m, _BatchNorm) for m in generator.modules())
    if batchnorm == "batch" and has_bn and z.shape[0] < 2:
        raise UserError(f"sample_batchnorm=batch needs at least 2 samples per batch; got {z.shape[0]}")
    with torch.no_grad(), sample_batchnorm(generator, batchnorm):
        return generator(z, *inputs)
