"""The one optimizer factory: every network's optimizer, on every step path, and the lr schedule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from wgangp.config import TrainConfig
from wgangp.step.lazy import lazy_adam_hyperparameters

__all__ = ["build_optimizer", "build_schedulers"]


def build_optimizer(
    config: TrainConfig,
    params: Iterable[nn.Parameter],
    lr: float,
    *,
    graph: bool,
    device: torch.device,
    regularised: bool,
) -> torch.optim.Optimizer:
    """The optimizer for one network: Adam (WGAN-GP, the GAN) or RMSProp (weight clipping).

    A CUDA ``graph`` needs ``capturable=True`` (step counts on the GPU) and a tensor learning rate (a float
    would be baked into the captured kernels, and the lr schedule would stop acting). On CUDA, and for fp16
    anywhere, Adam is fused: one kernel per step, and ``GradScaler.step`` gets the overflow flag on the
    device. ``regularised`` marks the critic's optimizer, which the lazy Adam rescale applies to.
    """
    betas = (config.beta1, config.beta2)
    if regularised and config.lazy_adam_rescale and config.penalty_every > 1 and config.optimizer == "adam":
        lr, betas = lazy_adam_hyperparameters(lr, betas, config.penalty_every)
    decay = config.weight_decay  # L2 added to the gradient (torch's coupled weight_decay); 0 is a no-op
    eps = config.optimizer_eps
    if config.optimizer == "rmsprop":
        if graph:
            return torch.optim.RMSprop(
                params, lr=torch.tensor(lr, device=device), eps=eps, capturable=True, weight_decay=decay
            )
        return torch.optim.RMSprop(params, lr=lr, eps=eps, weight_decay=decay)
    if graph:
        return torch.optim.Adam(
            params,
            lr=torch.tensor(lr, device=device),
            betas=betas,
            eps=eps,
            capturable=True,
            fused=True,
            weight_decay=decay,
        )
    fused = device.type == "cuda" or config.precision == "fp16"
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=fused or None, weight_decay=decay)


def build_schedulers(
    config: TrainConfig, optimizers: Sequence[torch.optim.Optimizer]
) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """``lr_decay="linear"``: to 0 over the run, stepped once per generator iteration (paper ResNet)."""
    if config.lr_decay != "linear":
        return []
    return [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda it: max(0.0, 1.0 - it / config.steps))
        for opt in optimizers
    ]
